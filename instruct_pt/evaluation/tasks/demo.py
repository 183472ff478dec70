"""The demo-domain tasks, generated from the held-out split of the demo corpus snapshot.

lm-eval tasks (YAML beside the data in `demo/`) over CPython's documentation paragraphs that
the shipped corpus snapshot (`instruct_pt.data.demo_corpus`) holds out of training. First,
**held-out passages**: each distinct held-out paragraph that no training paragraph contains
and that is not a near-duplicate of one (`difflib` similarity of the whitespace-collapsed
texts >= `NEAR_DUPLICATE_RATIO`, e.g. `str.rjust` beside `str.ljust`); every task draws from
these only.

* `demo_rc`, `demo_rc_one_shot`, `demo_rc_closed` (group `demo_rc`; multiple choice, acc):
  reading comprehension, the demo's primary evaluation. A passage's sentence with one key
  term cut out, and the question which term it was; the choices are the term and three terms
  of the same kind (dunder name, exception, quoted keyword, emphasised glossary term, quoted
  identifier) from other passages and absent from this one. Open-book (`demo_rc`) gives the
  passage first; `demo_rc_one_shot` puts one solved item from another passage ahead of it;
  `demo_rc_closed` asks the same question without the passage, so the open-minus-closed
  difference separates reading from knowledge. The wording (`RC_PASSAGE`, `RC_QUESTION`) is
  none of the synthesis template pool's, so a gain is not format matching. Items share
  passages (up to `RC_ITEMS_PER_PASSAGE` each): `paragraph` names it, for clustered statistics.
* `demo_cloze` (group `demo`; multiple choice, acc and acc_norm): a prose passage up to a
  blanked key term (up to ITEMS_PER_PARAGRAPH items per passage); each choice is a term
  followed by the rest of its sentence, the distractors as above.
* `demo_perplexity` (group `demo`; loglikelihood_rolling: word and byte perplexity, bits per
  byte): each held-out passage as written.

No answer is written by hand, and nothing comes from the training split: besides the passage
filter, an item whose sentence (or, for the cloze, context plus true choice) occurs in a
training paragraph is dropped. Choices, distractors and one-shot examples are drawn by
generators seeded from each item's own text, so a rebuild gives byte-identical files.
`manifest.json` records the snapshot's digest; `check_snapshot` stops the demo with one line
when the files were built from another snapshot, and `leaks` is the check the tests run.

Rebuild: `python -m instruct_pt.evaluation.tasks` (see `tasks/__main__.py`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import keyword
import os
import random
import re
import zlib
from typing import Any, Callable, Optional, Sequence

from instruct_pt.data import demo_corpus, sources

DEMO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo")
CLOZE_FILE = "cloze.jsonl"
PERPLEXITY_FILE = "perplexity.jsonl"
RC_FILE = "rc.jsonl"
MANIFEST_FILE = "manifest.json"
DATA_FILES = (RC_FILE, CLOZE_FILE, PERPLEXITY_FILE)

# A held-out paragraph at least this similar to a training paragraph (difflib's ratio of the
# whitespace-collapsed texts) counts as a leak and is left out of every task.
NEAR_DUPLICATE_RATIO = 0.8
# At most this many reading-comprehension items per passage (each a different term).
RC_ITEMS_PER_PASSAGE = 3
# The reading-comprehension wording: the passage block (open-book only), then the question,
# then each choice is " " + term. None of it is in `instruct_pt.synthesis.template_pools`.
RC_PASSAGE = 'From the Python reference manual:\n"""\n{passage}\n"""\n'
RC_QUESTION = ('One term was removed from this sentence of the Python reference manual: '
               '"{gapped}"\nThe removed term is')
RC_GAP = "____"

# At most this many cloze items per paragraph (each a different term), so a few long
# paragraphs do not dominate the task.
ITEMS_PER_PARAGRAPH = 3
# Shorter contexts (e.g. "An *") give the model nothing to go on.
MIN_CONTEXT_CHARS = 24
NUM_CHOICES = 4

_KEYWORDS = "|".join(keyword.kwlist)
# Kinds of key term, in the order a term is classified (the first kind that matches wins).
TERM_KINDS = {
    "dunder": r"__[a-z][a-z0-9_]*__",
    "exception": r"\b[A-Z][A-Za-z]*(?:Error|Exception|Warning)\b",
    "keyword": r'(?<=")(?:' + _KEYWORDS + r')(?=")',
    "glossary": r"(?<=\*)[a-z][a-z -]{2,40}[a-z](?=\*)",
    "identifier": r'(?<=")(?!__)[a-z][a-z0-9]*_?[a-z0-9_]{2,}(?=")',
}
# Sentence boundary: end punctuation, whitespace, then what may start a sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“*(])")


def _collapse(text: str) -> str:
  """The text with each run of whitespace (hard line wraps, indentation) as one space."""
  return " ".join(text.split())


def _is_prose(paragraph: str) -> bool:
  """Running text, not an interactive session, grammar or code block."""
  return (">>>" not in paragraph and "::=" not in paragraph and paragraph.endswith(".")
          and paragraph[:1].isupper())


def _terms(paragraph: str) -> list[tuple[int, str, str]]:
  """`(start, term, kind)` of each key term's first occurrence, in text order."""
  found: dict[str, tuple[int, str, str]] = {}
  for kind, pattern in TERM_KINDS.items():
    for match in re.finditer(pattern, paragraph):
      if match.group() not in found and not any(
          start <= match.start() < start + len(term) for start, term, _ in found.values()):
        found[match.group()] = (match.start(), match.group(), kind)
  return sorted(found.values())


def _sentence_end(paragraph: str, position: int) -> int:
  """Where the sentence containing `position` ends (exclusive)."""
  for boundary in _SENTENCE_END.finditer(paragraph):
    if boundary.start() > position:
      return boundary.start()
  return len(paragraph)


def _sentence_start(paragraph: str, position: int) -> int:
  start = 0
  for boundary in _SENTENCE_END.finditer(paragraph):
    if boundary.end() <= position:
      start = boundary.end()
  return start


@dataclasses.dataclass(frozen=True)
class Passage:
  """A held-out paragraph every task may use.

  Attributes:
    id: its index among the passages (what `paragraph` fields name).
    text: the paragraph as written (line wraps included).
    collapsed: the text with each run of whitespace as one space.
  """

  id: int
  text: str
  collapsed: str


def similarity(a: str, b: str) -> float:
  """difflib's ratio of two whitespace-collapsed texts (1.0: identical).

  Args:
    a: a text.
    b: another.
  """
  return difflib.SequenceMatcher(None, _collapse(a), _collapse(b), autojunk=False).ratio()


def nearest_training_paragraph(text: str, train: Sequence[str]) -> tuple[float, int]:
  """`(similarity, index)` of the (first) training paragraph most similar to `text` among those
  that could reach `NEAR_DUPLICATE_RATIO` (difflib's cheap upper bounds skip the others), or
  `(0.0, -1)` when none can.

  Args:
    text: a held-out text.
    train: the training paragraphs.
  """
  matcher = difflib.SequenceMatcher(None, autojunk=False)
  matcher.set_seq2(_collapse(text))
  best = (0.0, -1)
  for index, paragraph in enumerate(train):
    matcher.set_seq1(_collapse(paragraph))
    if (matcher.real_quick_ratio() < NEAR_DUPLICATE_RATIO
        or matcher.quick_ratio() < NEAR_DUPLICATE_RATIO):
      continue
    ratio = matcher.ratio()
    if ratio > best[0]:
      best = (ratio, index)
  return best


def held_out_passages(held_out: Sequence[str], train: Sequence[str]) -> list[Passage]:
  """The distinct held-out paragraphs that no training paragraph contains and none is a
  near-duplicate of (similarity >= `NEAR_DUPLICATE_RATIO`).

  Args:
    held_out: the held-out paragraphs.
    train: the training paragraphs.
  """
  train_text = "\n".join(_collapse(p) for p in train)
  passages, seen = [], set()
  for paragraph in held_out:
    collapsed = _collapse(paragraph)
    if collapsed in seen or collapsed in train_text:
      continue
    seen.add(collapsed)
    if nearest_training_paragraph(collapsed, train)[0] < NEAR_DUPLICATE_RATIO:
      passages.append(Passage(len(passages), paragraph, collapsed))
  return passages


def _term_pools(passages: Sequence[Passage]) -> dict[str, set[str]]:
  pools: dict[str, set[str]] = {kind: set() for kind in TERM_KINDS}
  for passage in passages:
    for _, term, kind in _terms(passage.collapsed):
      pools[kind].add(term)
  return pools


def _choice_terms(term: str, kind: str, passage: str, pools: dict[str, set[str]],
                  seed_text: str) -> Optional[list[str]]:
  """`term` and `NUM_CHOICES - 1` terms of `kind` absent from `passage`, shuffled by a
  generator seeded from `seed_text`; None if there are too few such terms."""
  candidates = sorted(t for t in pools[kind] if t not in passage)
  if len(candidates) < NUM_CHOICES - 1:
    return None
  rng = random.Random(zlib.crc32(seed_text.encode("utf-8")))
  terms = [term] + rng.sample(candidates, NUM_CHOICES - 1)
  rng.shuffle(terms)
  return terms


def _items_per_term(passages: Sequence[Passage], per_passage: int,
                    make: Callable[..., Optional[dict[str, Any]]]) -> list[dict[str, Any]]:
  """Items `{"id", "paragraph", "kind", **make(...)}` from the key terms of the prose passages,
  in text order, up to `per_passage` a passage; `make(paragraph, start, term, kind, pools)`
  returns None for a term that makes no item (pools: `_term_pools` of all passages)."""
  pools = _term_pools(passages)
  items: list[dict[str, Any]] = []
  for passage in passages:
    if not _is_prose(passage.collapsed):
      continue
    taken = 0
    for start, term, kind in _terms(passage.collapsed):
      if taken == per_passage:
        break
      made = make(passage.collapsed, start, term, kind, pools)
      if made is not None:
        items.append({"id": len(items), "paragraph": passage.id, "kind": kind, **made})
        taken += 1
  return items


def cloze_items(passages: Sequence[Passage], train: Sequence[str]) -> list[dict[str, Any]]:
  """Multiple-choice cloze items from the held-out passages.

  Args:
    passages: the held-out passages (`held_out_passages`).
    train: the training paragraphs (no item's sentence may occur in one).

  Returns:
    Items `{"id", "paragraph", "kind", "context", "choices", "label", "sentence"}`, in
    passage order.
  """
  train_text = "\n".join(_collapse(p) for p in train)

  def item(paragraph: str, start: int, term: str, kind: str, pools) -> Optional[dict[str, Any]]:
    end = _sentence_end(paragraph, start)
    sentence = paragraph[_sentence_start(paragraph, start):end]
    context, rest = paragraph[:start], paragraph[start + len(term):end]
    if (len(context) < MIN_CONTEXT_CHARS or sentence in train_text
        or context + term + rest in train_text):
      return None
    terms = _choice_terms(term, kind, paragraph, pools, context + term)
    if terms is None:
      return None
    return {"context": context, "choices": [t + rest for t in terms],
            "label": terms.index(term), "sentence": sentence}

  return _items_per_term(passages, ITEMS_PER_PARAGRAPH, item)


def rc_prompts(passage: str, gapped: str) -> tuple[str, str]:
  """`(open_book, closed_book)` prompts of one reading-comprehension question: the same
  question, with and without the passage ahead of it.

  Args:
    passage: the passage (as written).
    gapped: its sentence with the term replaced by `RC_GAP`.
  """
  question = RC_QUESTION.format(gapped=gapped)
  return RC_PASSAGE.format(passage=passage) + question, question


def rc_items(passages: Sequence[Passage], train: Sequence[str]) -> list[dict[str, Any]]:
  """Reading-comprehension items (open-book, one-shot and closed-book prompts of the same
  question) from the held-out prose passages.

  A term makes an item when it occurs once in its sentence, the sentence is at least
  `MIN_CONTEXT_CHARS` long and occurs in no training paragraph, and three distractors of its
  kind exist. The one-shot example is another passage's item, solved, drawn by a generator
  seeded from this item's text.

  Args:
    passages: the held-out passages (`held_out_passages`).
    train: the training paragraphs.

  Returns:
    Items `{"id", "paragraph", "kind", "term", "sentence", "open_book", "one_shot",
    "closed_book", "choices", "label"}`; choices are " " + term.
  """
  train_text = "\n".join(_collapse(p) for p in train)

  def item(paragraph: str, start: int, term: str, kind: str, pools) -> Optional[dict[str, Any]]:
    sentence = paragraph[_sentence_start(paragraph, start):_sentence_end(paragraph, start)]
    if (sentence.count(term) != 1 or len(sentence) < MIN_CONTEXT_CHARS
        or sentence in train_text):
      return None
    terms = _choice_terms(term, kind, paragraph, pools, sentence + term)
    if terms is None:
      return None
    open_book, closed_book = rc_prompts(texts[paragraph], sentence.replace(term, RC_GAP))
    return {"term": term, "sentence": sentence, "open_book": open_book,
            "closed_book": closed_book, "choices": [" " + t for t in terms],
            "label": terms.index(term)}

  texts = {passage.collapsed: passage.text for passage in passages}
  items = _items_per_term(passages, RC_ITEMS_PER_PASSAGE, item)
  for item in items:
    others = [o for o in items if o["paragraph"] != item["paragraph"]]
    shot = random.Random(zlib.crc32(item["sentence"].encode("utf-8"))).choice(others)
    item["one_shot"] = (shot["open_book"] + shot["choices"][shot["label"]] + ".\n\n"
                        + item["open_book"])
  return items


def perplexity_docs(passages: Sequence[Passage]) -> list[dict[str, Any]]:
  """Each held-out passage as written.

  Args:
    passages: the held-out passages (`held_out_passages`).

  Returns:
    Documents `{"id", "paragraph", "text"}`.
  """
  return [{"id": i, "paragraph": p.id, "text": p.text} for i, p in enumerate(passages)]


def leaks(directory: str, train: Sequence[str]) -> list[str]:
  """What of the task files at `directory` leaks training text: one line per passage
  (`perplexity.jsonl` holds each once, and every item's passage must be one of them) that a
  training paragraph contains or that is a near-duplicate (>= `NEAR_DUPLICATE_RATIO`) of one,
  and per item whose sentence a training paragraph contains. Empty when nothing leaks.

  Args:
    directory: a directory of task files (`build`'s output).
    train: the training paragraphs.
  """
  train_text = "\n".join(_collapse(p) for p in train)
  found = []

  def check(where: str, text: str, near: bool = True) -> None:
    if _collapse(text) in train_text:
      found.append(f"{where}: occurs in the training split: {_collapse(text)[:60]!r}")
    elif near:
      ratio, index = nearest_training_paragraph(text, train)
      if ratio >= NEAR_DUPLICATE_RATIO:
        found.append(f"{where}: {ratio:.2f} similar to training paragraph {index}: "
                     f"{_collapse(text)[:60]!r}")

  checked = set()
  for line, doc in enumerate(_read_jsonl(os.path.join(directory, PERPLEXITY_FILE)), 1):
    check(f"{PERPLEXITY_FILE}:{line}", doc["text"])
    checked.add(doc["paragraph"])
  for name in (RC_FILE, CLOZE_FILE):
    for line, item in enumerate(_read_jsonl(os.path.join(directory, name)), 1):
      check(f"{name}:{line} sentence", item["sentence"], near=False)
      if item["paragraph"] not in checked:
        found.append(f"{name}:{line}: passage {item['paragraph']} is not among the checked "
                     f"passages of {PERPLEXITY_FILE}")
  return found


def _read_jsonl(path: str) -> list[dict[str, Any]]:
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f]


def build(directory: Optional[str] = None) -> dict[str, Any]:
  """Writes the demo tasks' data and manifest from the corpus snapshot; returns the manifest.

  Args:
    directory: where to write (default: the shipped `demo/` beside the YAML files).
  """
  directory = directory or DEMO_DIR
  held_out, train = sources.demo_corpus("held_out"), sources.demo_corpus("train")
  passages = held_out_passages(held_out, train)
  files = {RC_FILE: rc_items(passages, train), CLOZE_FILE: cloze_items(passages, train),
           PERPLEXITY_FILE: perplexity_docs(passages)}
  os.makedirs(directory, exist_ok=True)
  for name, records in files.items():
    with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
      f.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
  distinct = len(dict.fromkeys(_collapse(p) for p in held_out))
  manifest = {
      "generator": "python -m instruct_pt.evaluation.tasks",
      "corpus_sha256": demo_corpus.digest(),
      "held_out_paragraphs": distinct,
      "passages": len(passages), "near_duplicates_dropped": distinct - len(passages),
      "rc_items": len(files[RC_FILE]),
      "rc_passages": len({item["paragraph"] for item in files[RC_FILE]}),
      "rc_kinds": _count(item["kind"] for item in files[RC_FILE]),
      "cloze_items": len(files[CLOZE_FILE]),
      "cloze_kinds": _count(item["kind"] for item in files[CLOZE_FILE]),
      "perplexity_docs": len(passages),
      "perplexity_chars": sum(len(p.text) for p in passages)}
  with open(os.path.join(directory, MANIFEST_FILE), "w", encoding="utf-8") as f:
    f.write(json.dumps(manifest, indent=2) + "\n")
  return manifest


def _count(values) -> dict[str, int]:
  counts: dict[str, int] = {}
  for value in values:
    counts[value] = counts.get(value, 0) + 1
  return counts


def check_snapshot(directory: Optional[str] = None) -> None:
  """Stops with one line when the task files were built from another corpus snapshot than
  the one training reads (their held-out split could then overlap its training split).

  Args:
    directory: the task files (default: the shipped `demo/`).

  Raises:
    ValueError: the digests differ, or the manifest is missing.
  """
  path = os.path.join(directory or DEMO_DIR, MANIFEST_FILE)
  try:
    with open(path, encoding="utf-8") as f:
      built_from = json.load(f).get("corpus_sha256")
  except FileNotFoundError as e:
    raise ValueError(f"{path} is missing; rebuild the demo tasks with "
                     f"python -m instruct_pt.evaluation.tasks") from e
  if built_from != demo_corpus.digest():
    raise ValueError(f"{path}: the demo tasks were built from corpus snapshot "
                     f"{str(built_from)[:12]}..., but training reads {demo_corpus.digest()[:12]}"
                     f"...; rebuild them with python -m instruct_pt.evaluation.tasks")
