"""Stimuli for unit analysis: read from files, or generated offline by the package.

A stimuli source is a path (`.jsonl`: one JSON object per line with a text field; anything
else: one stimulus per non-empty line) or `builtin:NAME[:COUNT]`:

* `sentences`: 12-word sentences from CPython's documentation (the demo corpus), the offline
  stand-in for the Fedorenko et al. (2010) language-localizer sentences;
* `pseudowords`: lists of 12 pronounceable pseudowords from a consonant-vowel syllable
  generator, the stand-in for the localizer's non-word lists;
* `code`: 12-line snippets of Python standard-library source;
* `prose`: documentation paragraphs (the demo corpus's held-out split).
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Callable

import numpy as np

from instruct_pt.data import sources

WORDS_PER_SENTENCE = 12
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
# Standard-library modules whose source is the `code` stimuli (pure Python in every CPython).
_CODE_MODULES = ("textwrap", "string", "shlex", "fnmatch", "colorsys", "bisect", "heapq",
                 "calendar", "difflib", "statistics", "fractions", "base64", "queue",
                 "glob", "posixpath", "ntpath", "gettext", "locale", "tokenize", "ast")


def sentences(count: int = 240, seed: int = 0) -> list[str]:
  """`count` distinct sentences of exactly 12 words from the documentation corpus.

  Args:
    count: how many.
    seed: which ones (a shuffle of all candidates).
  """
  found = set()
  for paragraph in sources.demo_corpus("train"):
    for sentence in re.split(r"(?<=[.!?])\s+", " ".join(paragraph.split())):
      words = sentence.split()
      if len(words) >= WORDS_PER_SENTENCE and all(w.isascii() for w in words):
        if re.fullmatch(r"[A-Za-z ,;'.-]+", " ".join(words[:WORDS_PER_SENTENCE])):
          found.add(" ".join(words[:WORDS_PER_SENTENCE]).rstrip(",;") + ".")
  return _pick(sorted(found), count, seed, "sentences")


def pseudowords(count: int = 240, seed: int = 0) -> list[str]:
  """`count` lists of 12 pronounceable pseudowords (1 to 3 consonant-vowel syllables each).

  Args:
    count: how many.
    seed: the generator's seed.
  """
  rng = np.random.default_rng(seed)

  def word() -> str:
    return "".join(rng.choice(list(_CONSONANTS)) + rng.choice(list(_VOWELS))
                   for _ in range(rng.integers(1, 4)))
  return [" ".join(word() for _ in range(WORDS_PER_SENTENCE)) for _ in range(count)]


def code(count: int = 240, seed: int = 0, lines: int = 12) -> list[str]:
  """`count` snippets of `lines` non-blank lines of standard-library Python source.

  Args:
    count: how many.
    seed: which ones.
    lines: lines per snippet.
  """
  chunks = []
  for name in _CODE_MODULES:
    module = __import__(name)
    body = [line for line in inspect.getsource(module).splitlines() if line.strip()]
    chunks += ["\n".join(body[i:i + lines]) for i in range(0, len(body) - lines + 1, lines)]
  return _pick(chunks, count, seed, "code snippets")


def prose(count: int = 240, seed: int = 0) -> list[str]:
  """`count` documentation paragraphs of at least 40 words (held-out split first).

  Args:
    count: how many.
    seed: which ones.
  """
  paragraphs = [p for split in ("held_out", "train") for p in sources.demo_corpus(split)
                if len(p.split()) >= 40]
  return _pick(paragraphs, count, seed, "prose paragraphs")


def _pick(items: list[str], count: int, seed: int, what: str) -> list[str]:
  if count > len(items):
    raise ValueError(f"builtin stimuli: {count} {what} asked for; {len(items)} exist")
  order = np.random.default_rng(seed).permutation(len(items))[:count]
  return [items[i] for i in order]


BUILTIN: dict[str, Callable[..., list[str]]] = {
    "sentences": sentences, "pseudowords": pseudowords, "code": code, "prose": prose}


def read(source: str, text_field: str = "text") -> list[str]:
  """The stimuli of a file or of `builtin:NAME[:COUNT]` (see the module doc).

  Args:
    source: the path or builtin name.
    text_field: the JSONL field holding each stimulus.

  Raises:
    FileNotFoundError: no such file.
    ValueError: an unknown builtin, a malformed JSONL line (naming the file and line).
  """
  if source.startswith("builtin:"):
    name, _, count = source[len("builtin:"):].partition(":")
    if name not in BUILTIN:
      raise ValueError(f"stimuli {source!r}: unknown builtin {name!r}; choose one of "
                       f"{sorted(BUILTIN)}")
    if count and not count.isdigit():
      raise ValueError(f"stimuli {source!r}: the count {count!r} is not a number")
    return BUILTIN[name](int(count)) if count else BUILTIN[name]()
  with open(source, encoding="utf-8") as f:
    lines = f.read().splitlines()
  if not source.endswith(".jsonl"):
    return [line.strip() for line in lines if line.strip()]
  texts = []
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      texts.append(str(json.loads(line)[text_field]))
    except (ValueError, KeyError, TypeError) as e:
      raise ValueError(f"{source}:{number}: expected a JSON object with a {text_field!r} "
                       f"field ({type(e).__name__}: {e})") from e
  return texts
