"""Post-processing of synthesized pairs: format recovery, templates, categories and filters.

Follows the official post-processing (PAPER.md section 2) with pools written for this project:

* **Format recovery** (`recover`): a synthesizer pair is parsed into a `Structured` item. A CoT
  question ends with `COT_QUESTION_MARKER` and its answer holds `COT_ANSWER_MARKER` (rationale
  before, final answer after); options are written `\\nOptions:\\n- a\\n- b` in the question.
* **Templatification** (`templatify`): a chain of (raw text, pairs) entries becomes ONE
  pre-training text. Each entry gets a layout (weights `MULTI_PAIR_WEIGHTS` when every text of
  the chain has >= 2 pairs, else `SINGLE_PAIR_WEIGHTS`) and is inverted (pairs before the text)
  with probability `INVERSION_RATE`. Options are shuffled with a per-item seed and relabelled,
  and the answer's label follows the shuffle.
* **Task categories** (`categorize`, `CATEGORIES`): one category per pair by ordered rules.
* **Quality filters** (`QualityFilter`): empty, over-long, ungrounded, duplicate within a text
  and near-duplicate across the corpus (MinHash over word 3-shingles with LSH banding).

Everything is deterministic: randomness comes from `random.Random(seed)` only.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import random
import re
from typing import Callable, Optional, Sequence

from instruct_pt.synthesis import template_pools as pools
from instruct_pt.synthesis.formats import QAPair
from instruct_pt.synthesis.template_pools import CATEGORIES

__all__ = ["CATEGORIES", "EXTRACTIVE_CATEGORIES", "LAYOUTS", "MinHashIndex", "QualityFilter",
           "Structured", "categorize", "plan_layouts", "recover", "recover_all",
           "render_options", "templatify"]

COT_QUESTION_MARKER = "\nLet's think step by step."
COT_ANSWER_MARKER = "\nTherefore, the answer is "
OPTIONS_MARKER = "\nOptions:\n"

LAYOUTS = ("classic", "dialog", "numbered_questions", "inline_few_shot", "next_turn_dialog")
MULTI_PAIR_WEIGHTS = {"classic": 80, "dialog": 5, "numbered_questions": 5,
                      "inline_few_shot": 5, "next_turn_dialog": 5}
SINGLE_PAIR_WEIGHTS = {"classic": 95, "dialog": 5}
INVERSION_RATE = 0.05
BARE_CONTEXT_RATE = 0.5  # share of entries whose text is not wrapped in a read-start string
NO_COMPREHENSION_START_RATE = 0.5

# Categories whose answers must be copied from the text (checked by `QualityFilter`).
EXTRACTIVE_CATEGORIES = ("extractive_qa", "list_extraction", "keyword_extraction")
EXTRACTIVE_SPAN_MAX_WORDS = 10  # longest span answer `categorize` tags as extractive
YES_NO_ANSWERS = frozenset({"yes", "no", "yes it is", "no it is not", "yes it does",
                            "no it does not", "true", "false"})

_LIST_ITEM_SPLIT = re.compile(r"[,;\n]|\band\b")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_ARITHMETIC = re.compile(r"\d\s*[+*/×÷^=]\s*\d|\d\s+-\s+\d|\b(plus|minus|times|divided by"
                         r"|multiplied by)\s+\d")
_MATH_WORDS = re.compile(r"\bhow (many|much)\b|\bcalculate\b|\bcompute\b|\btotal\b|\baverage\b"
                         r"|\bpercent|\bratio\b|\bsolve\b|\bequation\b|\bcost\b|\bprice\b"
                         r"|\bwhat is\b|\bfind\b")
_COUNTING = re.compile(r"\bhow many\b")


def _compile(rules: Sequence[tuple[str, str]]) -> tuple[tuple[str, re.Pattern], ...]:
  return tuple((name, re.compile(pattern)) for name, pattern in rules)


_TASK_CUES = _compile(pools.TASK_CUES)
_REASONING_CUES = _compile(pools.REASONING_CUES)
_WH_CUES = _compile(pools.WH_CUES)


# ----------------------------------------------------------------------------------------------
# Format recovery.


@dataclasses.dataclass
class Structured:
  """A pair with its format recovered.

  Attributes:
    question: the question stem, without the options block or the CoT cue.
    options: the options in the synthesizer's order, or None.
    answer: the final answer (for CoT pairs the text after `COT_ANSWER_MARKER`).
    cot: the rationale of a CoT pair, or None.
    answer_option_index: index in `options` of the answer, when it matches exactly one option.
  """

  question: str
  options: Optional[list[str]]
  answer: str
  cot: Optional[str]
  answer_option_index: Optional[int]


def recover(pair: QAPair) -> Optional[Structured]:
  """Parses the CoT and options markers of a synthesized pair.

  Args:
    pair: the pair as the synthesizer wrote it.

  Returns:
    The structured item, or None for a malformed CoT pair (a CoT question whose answer lacks
    `COT_ANSWER_MARKER`, or has an empty rationale or final answer).
  """
  question, answer, cot = pair.question.strip(), pair.answer.strip(), None
  if _is_cot_question(question):
    question = question[:-len(COT_QUESTION_MARKER.strip())].rstrip()
    rationale, marker, final = pair.answer.rpartition(COT_ANSWER_MARKER)
    if not marker or not rationale.strip() or not final.strip():
      return None
    cot, answer = rationale.strip(), final.strip()
  question, options = _split_options(question)
  return Structured(question, options, answer, cot, _match_option(answer, options))


def recover_all(pairs: Sequence[QAPair]) -> tuple[list[Structured], int]:
  """Recovers every pair, dropping malformed ones.

  Args:
    pairs: pairs of one text.

  Returns:
    The structured items and the number of malformed pairs dropped.
  """
  items = [recover(pair) for pair in pairs]
  kept = [item for item in items if item is not None]
  return kept, len(items) - len(kept)


def _is_cot_question(question: str) -> bool:
  return ("\n" + question.strip()).endswith(COT_QUESTION_MARKER)


def _split_options(question: str) -> tuple[str, Optional[list[str]]]:
  """The question stem and its `- option` lines (continuation lines join the option above)."""
  stem, marker, tail = question.partition(OPTIONS_MARKER)
  if not marker:
    return question, None
  options = []
  for line in (line.strip() for line in tail.split("\n")):
    if line.startswith("-"):
      options.append(line[1:].strip())
    elif line and options:
      options[-1] = f"{options[-1]} {line}"
  options = [option for option in options if option]
  return stem.rstrip(), options or None


def _match_option(answer: str, options: Optional[list[str]]) -> Optional[int]:
  """The index of the option equal to `answer` (case-insensitive), when options are unique."""
  if not options:
    return None
  keys = [_option_key(option) for option in options]
  if len(set(keys)) < len(keys):
    return None
  key = _option_key(answer)
  return keys.index(key) if key in keys else None


def _option_key(text: str) -> str:
  return " ".join(text.lower().split()).rstrip(".").strip()


def _is_unanswerable(text: str) -> bool:
  return _normalize(text) in _UNANSWERABLE_KEYS


# ----------------------------------------------------------------------------------------------
# Rendering.


def render_options(options: Sequence[str], gold: Optional[int],
                   rng: random.Random) -> tuple[str, Optional[str]]:
  """Shuffles and labels the options of one item.

  A "None of the above"-style gold option is replaced by a string of the unanswerable pool.

  Args:
    options: the options in the synthesizer's order.
    gold: index of the correct option in `options`, or None.
    rng: the item's own generator (its seed decides the shuffle and the style).

  Returns:
    The option block (start string, then labelled options) and the gold answer as written in
    the block (`"(b) Paris"`; the bare option for bullet styles), or None without a gold index.
  """
  order = list(range(len(options)))
  rng.shuffle(order)
  texts = [options[index] for index in order]
  if gold is not None and _is_unanswerable(options[gold]):
    texts[order.index(gold)] = rng.choice(pools.UNANSWERABLE_OPTIONS)
  alphabet, label_format = rng.choice(pools.OPTION_LABEL_STYLES)
  if alphabet in ("upper", "lower") and len(texts) > 26:
    alphabet = "digit"
  if alphabet == "bullet":
    items, delimiter = [f"{label_format} {text}" for text in texts], "\n"
    answers = texts
  else:
    labels = [label_format.format(_label(alphabet, index)) for index in range(len(texts))]
    items = answers = [f"{label} {text}" for label, text in zip(labels, texts)]
    delimiter = rng.choice(pools.OPTION_DELIMITERS)
  start = rng.choice(pools.OPTION_STARTS)
  body = delimiter.join(items)
  block = f"{start}\n{body}" if start else body
  return block, None if gold is None else answers[order.index(gold)]


def _label(alphabet: str, index: int) -> str:
  if alphabet == "digit":
    return str(index + 1)
  letter = chr(ord("A") + index)
  return letter if alphabet == "upper" else letter.lower()


def _fields(item: Structured, rng: random.Random, show_options: bool) -> dict[str, str]:
  """Template fields of one item; its options are shuffled with a per-item seed."""
  answer = item.answer
  if item.answer_option_index is not None:
    answer = item.options[item.answer_option_index]
  fields = {"question": item.question, "options": "", "answer": answer, "cot": item.cot or ""}
  item_rng = random.Random(rng.getrandbits(64))
  if item.options and show_options:
    block, gold = render_options(item.options, item.answer_option_index, item_rng)
    fields["options"] = block
    fields["answer"] = gold or answer
  return fields


def _classic_pair(item: Structured, rng: random.Random) -> str:
  if item.options:
    pool = pools.QA_OPTIONS_COT if item.cot else pools.QA_OPTIONS + pools.QA_OPTIONS_HIDDEN
  else:
    pool = pools.QA_COT if item.cot else pools.QA
  template = rng.choice(pool)
  q_label, a_label = rng.choice(pools.QUESTION_LABELS)
  fields = _fields(item, rng, show_options="{options}" in template)
  return template.format(q_label=q_label, a_label=a_label, **fields)


def _bare_pair(item: Structured, rng: random.Random) -> tuple[str, str]:
  """(prompt, response) of an item without a QA template, for the non-classic layouts."""
  fields = _fields(item, rng, show_options=True)
  prompt = f"{item.question}\n{fields['options']}" if item.options else item.question
  response = fields["answer"]
  if item.cot:
    prompt = f"{prompt}\n{rng.choice(pools.COT_CUES)}"
    response = f"{item.cot}\n{rng.choice(pools.COT_FINALS).format(answer=response)}"
  return prompt, response


def _dialog_lines(pairs: Sequence[tuple[str, str]], user: str, assistant: str) -> str:
  return "\n".join(f"{user}: {prompt}\n{assistant}: {response}" for prompt, response in pairs)


def _classic(items: Sequence[Structured], rng: random.Random) -> str:
  return "\n\n".join(_classic_pair(item, rng) for item in items)


def _dialog(items: Sequence[Structured], rng: random.Random) -> str:
  user, assistant = rng.choice(pools.DIALOG_SPEAKERS)
  return _dialog_lines([_bare_pair(item, rng) for item in items], user, assistant)


def _numbered_questions(items: Sequence[Structured], rng: random.Random) -> str:
  template = rng.choice(pools.NUMBERED_QUESTIONS)
  number = rng.choice(pools.NUMBER_FORMATS)
  pairs = [_bare_pair(item, rng) for item in items]
  questions = "\n".join(f"{number.format(n)} {p}" for n, (p, _) in enumerate(pairs, 1))
  answers = "\n".join(f"{number.format(n)} {r}" for n, (_, r) in enumerate(pairs, 1))
  return template.format(questions=questions, answers=answers)


def _inline_few_shot(items: Sequence[Structured], rng: random.Random) -> str:
  template = rng.choice(pools.INLINE_FEW_SHOT)
  q_label, a_label = rng.choice(pools.QUESTION_LABELS)
  *examples, (question, answer) = [_bare_pair(item, rng) for item in items]
  shown = "\n\n".join(f"{q_label} {prompt}\n{a_label} {response}"
                      for prompt, response in examples)
  return template.format(examples=shown, question=question, answer=answer)


def _next_turn_dialog(items: Sequence[Structured], rng: random.Random) -> str:
  template = rng.choice(pools.NEXT_TURN_DIALOG)
  user, assistant = rng.choice(pools.DIALOG_SPEAKERS)
  *history, (question, answer) = [_bare_pair(item, rng) for item in items]
  return template.format(history=_dialog_lines(history, user, assistant), user=user,
                         assistant=assistant, question=question, answer=answer)


_RENDERERS: dict[str, Callable[[Sequence[Structured], random.Random], str]] = {
    "classic": _classic, "dialog": _dialog, "numbered_questions": _numbered_questions,
    "inline_few_shot": _inline_few_shot, "next_turn_dialog": _next_turn_dialog}


def _render_entry(text: str, items: Sequence[Structured], layout: str, inverted: bool,
                  rng: random.Random) -> str:
  """One text with its templated pairs; the raw text alone when it has no pairs."""
  if not items:
    return text
  pairs = _RENDERERS[layout](items, rng)
  if inverted:
    qa_start = rng.choice(pools.INVERTED_QA_STARTS)
    text_start = rng.choice(pools.INVERTED_TEXT_STARTS)
    return "\n\n".join((_prefixed(qa_start, pairs), _prefixed(text_start, text)))
  read = "{context}"
  if rng.random() >= BARE_CONTEXT_RATE:
    read = rng.choice(pools.READ_STARTS)
  comprehension = ""
  if rng.random() >= NO_COMPREHENSION_START_RATE:
    comprehension = rng.choice(pools.COMPREHENSION_STARTS)
  return "\n\n".join(p for p in (read.format(context=text), comprehension, pairs) if p)


def _prefixed(start: str, body: str) -> str:
  return f"{start}\n{body}" if start else body


def plan_layouts(pair_counts: Sequence[int], rng: random.Random) -> list[tuple[str, bool]]:
  """Draws (layout, inverted) for each entry of a chain.

  Args:
    pair_counts: the number of recovered pairs of each entry.
    rng: the chain's generator (`templatify` passes `random.Random(seed)`).

  Returns:
    One `(layout, inverted)` per entry: `MULTI_PAIR_WEIGHTS` when every entry has >= 2 pairs,
    else `SINGLE_PAIR_WEIGHTS`; inverted with probability `INVERSION_RATE`.
  """
  multi = bool(pair_counts) and all(count >= 2 for count in pair_counts)
  weights = MULTI_PAIR_WEIGHTS if multi else SINGLE_PAIR_WEIGHTS
  names, values = list(weights), list(weights.values())
  return [(rng.choices(names, values)[0], rng.random() < INVERSION_RATE) for _ in pair_counts]


def templatify(chain: Sequence[tuple[str, Sequence[QAPair]]], seed: int) -> str:
  """Assembles a chain of (raw text, pairs) entries into ONE pre-training text.

  Each text is followed by its templated pairs (preceded on inversion); a text without valid
  pairs is emitted raw; entries are joined by `ENTRY_SEPARATOR`. Malformed CoT pairs are dropped
  (use `recover_all` to count them).

  Args:
    chain: the entries of one multi-round conversion, earliest round first.
    seed: the only source of randomness; equal seeds give equal texts.
  """
  rng = random.Random(seed)
  entries = [(text, recover_all(pairs)[0]) for text, pairs in chain]
  plans = plan_layouts([len(items) for _, items in entries], rng)
  return pools.ENTRY_SEPARATOR.join(
      _render_entry(text, items, layout, inverted, rng)
      for (text, items), (layout, inverted) in zip(entries, plans))


# ----------------------------------------------------------------------------------------------
# Task categories.


def categorize(pair: QAPair, context: str) -> str:
  """Tags a pair with exactly one of `CATEGORIES`, by the first rule that matches.

  Order: explicit task cues in the question stem (`template_pools.TASK_CUES`: code,
  translation, summarisation, ...); options present (multiple choice, with or without CoT);
  arithmetic expressions, word problems (>= 2 numbers and a math cue) and counting
  ("how many"); a CoT marker; yes/no and unanswerable answers; reasoning cues
  (`REASONING_CUES`); wh-cues (`WH_CUES`); a short answer that is a span of the context
  (extractive); else `abstractive_qa`.

  Args:
    pair: the pair as the synthesizer wrote it.
    context: the raw text the pair was made from.
  """
  is_cot = _is_cot_question(pair.question)
  stem = pair.question.strip()
  if is_cot:
    stem = stem[:-len(COT_QUESTION_MARKER.strip())]
  stem, options = _split_options(stem.strip())
  stem = stem.lower()
  rule = (_first_match(_TASK_CUES, stem)
          or (options and ("multiple_choice_cot" if is_cot else "multiple_choice"))
          or _numeric_category(stem)
          or (is_cot and "cot_reasoning")
          or _answer_shape_category(pair.answer)
          or _first_match(_REASONING_CUES, stem)
          or _first_match(_WH_CUES, stem))
  if rule:
    return rule
  short = len(pair.answer.split()) <= EXTRACTIVE_SPAN_MAX_WORDS
  return "extractive_qa" if short and _grounded(pair.answer, context) else "abstractive_qa"


def _first_match(rules: Sequence[tuple[str, re.Pattern]], text: str) -> Optional[str]:
  return next((name for name, pattern in rules if pattern.search(text)), None)


def _numeric_category(stem: str) -> Optional[str]:
  if _ARITHMETIC.search(stem):
    return "arithmetic"
  if len(_NUMBER.findall(stem)) >= 2 and _MATH_WORDS.search(stem):
    return "math_word_problem"
  return "counting" if _COUNTING.search(stem) else None


def _answer_shape_category(answer: str) -> Optional[str]:
  key = _normalize(answer)
  if key in YES_NO_ANSWERS:
    return "yes_no"
  return "unanswerable" if key in _UNANSWERABLE_KEYS else None


# ----------------------------------------------------------------------------------------------
# Quality filters.


def _normalize(text: str) -> str:
  """Lowercase, punctuation to spaces, whitespace collapsed."""
  return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


_UNANSWERABLE_KEYS = frozenset(_normalize(text) for text in pools.UNANSWERABLE_ANSWERS)


def _grounded(answer: str, context: str) -> bool:
  """Whether the normalised answer occurs in the normalised context on word boundaries."""
  key = _normalize(answer)
  return bool(key) and f" {key} " in f" {_normalize(context)} "


def _items_grounded(answer: str, context: str) -> bool:
  """Whether every comma/semicolon/line/"and"-separated item of a list answer is grounded."""
  items = [item for item in _LIST_ITEM_SPLIT.split(answer) if _normalize(item)]
  return bool(items) and all(_grounded(item, context) for item in items)


_PRIME = (1 << 61) - 1


class MinHashIndex:
  """Corpus-wide near-duplicate index: MinHash over word shingles, LSH banding.

  Texts are normalised (`_normalize`: case, punctuation, whitespace) and cut into word
  `shingle`-grams (a text shorter than that is one shingle). The signature holds `num_perm`
  minima of `(a * h + b) mod (2**61 - 1)` over the shingles' 64-bit BLAKE2b hashes. Signatures
  are split into `bands` bands; texts sharing a band are candidates, and a candidate is a
  near-duplicate when the share of equal signature slots (an estimate of the Jaccard
  similarity of the shingle sets) is >= `threshold`. With 3-shingles, one substituted word in
  an n-word text gives Jaccard (n - 5) / (n + 1): >= 0.7 from n = 19 words, while short
  questions differing in one word stay far apart.
  """

  def __init__(self, threshold: float = 0.7, num_perm: int = 128, bands: int = 32,
               shingle: int = 3, seed: int = 0):
    """Builds an empty index.

    Args:
      threshold: estimated Jaccard similarity at or above which a text is a near-duplicate.
      num_perm: signature length.
      bands: number of LSH bands (`num_perm` must be a multiple).
      shingle: words per shingle.
      seed: seed of the hash parameters.
    """
    if num_perm % bands:
      raise ValueError(f"num_perm={num_perm} is not a multiple of bands={bands}")
    rng = random.Random(seed)
    self.threshold, self.shingle = threshold, shingle
    self._rows = num_perm // bands
    self._params = [(rng.randrange(1, _PRIME), rng.randrange(_PRIME)) for _ in range(num_perm)]
    self._buckets: list[dict[tuple[int, ...], list[int]]] = [{} for _ in range(bands)]
    self._signatures: list[tuple[int, ...]] = []

  def signature(self, text: str) -> tuple[int, ...]:
    """The MinHash signature of `text`.

    Args:
      text: any text.
    """
    words = _normalize(text).split()
    grams = {" ".join(words[i:i + self.shingle])
             for i in range(max(1, len(words) - self.shingle + 1))}
    hashes = [int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "little")
              for gram in grams]
    return tuple(min((a * h + b) % _PRIME for h in hashes) for a, b in self._params)

  def check_and_add(self, text: str) -> bool:
    """Adds `text` unless it near-duplicates an indexed text.

    Args:
      text: the text to check.

    Returns:
      True when `text` is a near-duplicate (and was not added).
    """
    signature = self.signature(text)
    keys = [signature[band * self._rows:(band + 1) * self._rows]
            for band in range(len(self._buckets))]
    candidates = {index for bucket, key in zip(self._buckets, keys)
                  for index in bucket.get(key, ())}
    if any(self._similarity(signature, self._signatures[index]) >= self.threshold
           for index in candidates):
      return True
    for bucket, key in zip(self._buckets, keys):
      bucket.setdefault(key, []).append(len(self._signatures))
    self._signatures.append(signature)
    return False

  @staticmethod
  def _similarity(first: tuple[int, ...], second: tuple[int, ...]) -> float:
    return sum(a == b for a, b in zip(first, second)) / len(first)


class QualityFilter:
  """Pair filters with counters, stateful across documents (near-duplicates are corpus-wide).

  Checks, in order (the first failing one is the pair's reason): `empty` question or answer;
  `answer_too_long`; `ungrounded` (a pair of `EXTRACTIVE_CATEGORIES` whose answer, or each
  item of a list answer, is not in the text after normalising case, whitespace and
  punctuation); `duplicate_in_text` (the same question, case-insensitive, earlier in the same
  text); `near_duplicate` (a `MinHashIndex` hit against every question kept so far). Kept
  pairs are counted under `kept`.

  Questions shorter than `near_duplicate_min_words` skip the near-duplicate check: short
  generic questions ("What is the main idea of the text?") recur legitimately across texts.
  """

  def __init__(self, max_answer_chars: int = 2000, near_duplicate_threshold: float = 0.7,
               near_duplicate_min_words: int = 8, seed: int = 0):
    """Builds a filter with empty counters and an empty near-duplicate index.

    Args:
      max_answer_chars: longest answer kept, in characters.
      near_duplicate_threshold: `MinHashIndex` threshold.
      near_duplicate_min_words: questions with fewer (normalised) words are not checked.
      seed: seed of the MinHash parameters.
    """
    self.max_answer_chars = max_answer_chars
    self.near_duplicate_min_words = near_duplicate_min_words
    self.counts: collections.Counter = collections.Counter()
    self._index = MinHashIndex(threshold=near_duplicate_threshold, seed=seed)

  def remember(self, questions: Sequence[str]) -> None:
    """Adds already-kept questions (e.g. of shards written by an earlier run) to the index,
    so that near-duplicate filtering continues as if they had just been filtered here.

    Args:
      questions: kept questions, in the order they were kept.
    """
    for question in questions:
      if len(_normalize(question).split()) >= self.near_duplicate_min_words:
        self._index.check_and_add(question)

  def filter_pairs(self, context: str, pairs: Sequence[QAPair]
                   ) -> tuple[list[QAPair], collections.Counter, list[str]]:
    """Filters the pairs of one text; also adds the counts to `self.counts`.

    Args:
      context: the raw text the pairs were made from.
      pairs: its pairs, in order.

    Returns:
      The kept pairs, this call's counts (reasons, and `kept`) and the kept pairs' categories
      (`categorize`, computed once for the grounding check).
    """
    kept, counts, categories, seen = [], collections.Counter(), [], set()
    for pair in pairs:
      category = categorize(pair, context)
      reason = self._reason(context, pair, category, seen)
      counts[reason or "kept"] += 1
      if reason is None:
        kept.append(pair)
        categories.append(category)
    self.counts.update(counts)
    return kept, counts, categories

  def _reason(self, context: str, pair: QAPair, category: str,
              seen: set[str]) -> Optional[str]:
    question, answer = pair.question.strip(), pair.answer.strip()
    if not question or not answer:
      return "empty"
    if len(answer) > self.max_answer_chars:
      return "answer_too_long"
    if category in EXTRACTIVE_CATEGORIES:
      check = _grounded if category == "extractive_qa" else _items_grounded
      if not check(answer, context):
        return "ungrounded"
    key = question.lower()
    if key in seen:
      return "duplicate_in_text"
    seen.add(key)
    long_enough = len(_normalize(question).split()) >= self.near_duplicate_min_words
    if long_enough and self._index.check_and_add(question):
      return "near_duplicate"
    return None
