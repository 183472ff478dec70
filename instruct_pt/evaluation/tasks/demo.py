"""The demo-domain tasks, generated from the held-out split of the embedded corpus.

Two lm-eval tasks (YAML beside the data in `demo/`, group `demo`) over CPython's documentation
paragraphs that `sources.demo_corpus("held_out")` keeps out of training:

* `demo_cloze` (multiple choice, acc and acc_norm): a prose paragraph with one key term
  blanked out (up to ITEMS_PER_PARAGRAPH items per paragraph, each a different term). The
  context is the paragraph up to the term; each choice is a term followed by the rest of its
  sentence. The true term's three distractors are terms of the same kind (dunder name,
  exception, quoted keyword, emphasised glossary term, quoted identifier) found in other
  held-out paragraphs and nowhere in this one.
* `demo_perplexity` (loglikelihood_rolling: word and byte perplexity, bits per byte): each
  distinct held-out paragraph.

No answer is written by hand, and nothing comes from the training split: an item whose
sentence, or whose context plus true choice, occurs in a training paragraph is dropped, as is
a paragraph that occurs in one. Choices and distractors are drawn by generators seeded from
each item's own text, so a rebuild gives byte-identical files for the same corpus (the
corpus is the running Python's `pydoc_data`; `manifest.json` records which one).

Rebuild: `python -m instruct_pt.evaluation.tasks` (see `tasks/__main__.py`).
"""

from __future__ import annotations

import hashlib
import json
import keyword
import os
import platform
import random
import re
import zlib
from typing import Any, Optional

from instruct_pt.data import sources

DEMO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo")
CLOZE_FILE = "cloze.jsonl"
PERPLEXITY_FILE = "perplexity.jsonl"
MANIFEST_FILE = "manifest.json"

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


def cloze_items(held_out: list[str], train: list[str]) -> list[dict[str, Any]]:
  """Multiple-choice cloze items from held-out paragraphs.

  Args:
    held_out: the held-out paragraphs.
    train: the training paragraphs (nothing of theirs may appear in an item).

  Returns:
    Items `{"id", "kind", "context", "choices", "label", "sentence"}`, in paragraph order.
  """
  paragraphs = list(dict.fromkeys(_collapse(p) for p in held_out))
  train_text = "\n".join(_collapse(p) for p in train)
  pools: dict[str, set[str]] = {kind: set() for kind in TERM_KINDS}
  for paragraph in paragraphs:
    for _, term, kind in _terms(paragraph):
      pools[kind].add(term)
  items = []
  for paragraph in filter(_is_prose, paragraphs):
    taken = 0
    for start, term, kind in _terms(paragraph):
      if taken == ITEMS_PER_PARAGRAPH:
        break
      end = _sentence_end(paragraph, start)
      sentence = paragraph[_sentence_start(paragraph, start):end]
      context, rest = paragraph[:start], paragraph[start + len(term):end]
      if (len(context) < MIN_CONTEXT_CHARS or sentence in train_text
          or context + term + rest in train_text):
        continue
      candidates = sorted(t for t in pools[kind] if t not in paragraph)
      if len(candidates) < NUM_CHOICES - 1:
        continue
      rng = random.Random(zlib.crc32((context + term).encode("utf-8")))
      terms = [term] + rng.sample(candidates, NUM_CHOICES - 1)
      rng.shuffle(terms)
      items.append({"id": len(items), "kind": kind, "context": context,
                    "choices": [t + rest for t in terms], "label": terms.index(term),
                    "sentence": sentence})
      taken += 1
  return items


def perplexity_docs(held_out: list[str], train: list[str]) -> list[dict[str, Any]]:
  """Each distinct held-out paragraph that no training paragraph contains.

  Args:
    held_out: the held-out paragraphs.
    train: the training paragraphs.

  Returns:
    Documents `{"id", "text"}` (the paragraph as written, line wraps included).
  """
  train_text = "\n".join(_collapse(p) for p in train)
  docs = []
  for paragraph in dict.fromkeys(held_out):
    if _collapse(paragraph) not in train_text:
      docs.append({"id": len(docs), "text": paragraph})
  return docs


def corpus_digest(held_out: list[str]) -> str:
  """SHA-256 of the held-out paragraphs (which `pydoc_data` the files were built from)."""
  return hashlib.sha256("\n\n".join(held_out).encode("utf-8")).hexdigest()


def build(directory: Optional[str] = None) -> dict[str, Any]:
  """Writes the demo tasks' data and manifest; returns the manifest.

  Args:
    directory: where to write (default: the shipped `demo/` beside the YAML files).
  """
  directory = directory or DEMO_DIR
  held_out, train = sources.demo_corpus("held_out"), sources.demo_corpus("train")
  items = cloze_items(held_out, train)
  docs = perplexity_docs(held_out, train)
  os.makedirs(directory, exist_ok=True)
  for name, records in ((CLOZE_FILE, items), (PERPLEXITY_FILE, docs)):
    with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
      f.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
  kinds: dict[str, int] = {}
  for item in items:
    kinds[item["kind"]] = kinds.get(item["kind"], 0) + 1
  manifest = {"generator": "python -m instruct_pt.evaluation.tasks",
              "python": platform.python_version(), "held_out_sha256": corpus_digest(held_out),
              "cloze_items": len(items), "cloze_kinds": kinds, "perplexity_docs": len(docs),
              "perplexity_chars": sum(len(d["text"]) for d in docs)}
  with open(os.path.join(directory, MANIFEST_FILE), "w", encoding="utf-8") as f:
    f.write(json.dumps(manifest, indent=2) + "\n")
  return manifest
