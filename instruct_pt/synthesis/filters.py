"""Quality filters of synthesized pairs: our addition, not in the official release.

The official post-processing keeps every parsed pair except exact duplicate questions within
one text (docs/design.md s.2). `QualityFilter` also drops empty, over-long and ungrounded
(extractive but not found in the text) pairs, and near-duplicate questions across the corpus
(`MinHashIndex`: MinHash over word 3-shingles with LSH banding).
"""

from __future__ import annotations

import collections
import hashlib
import random
import re
from typing import Optional, Sequence

from instruct_pt.data.formats import QAPair
from instruct_pt.synthesis.categories import EXTRACTIVE_CATEGORIES, categorize, grounded
from instruct_pt.synthesis.recovery import normalize

_LIST_ITEM_SPLIT = re.compile(r"[,;\n]|\band\b")


def _items_grounded(answer: str, context: str) -> bool:
  """Whether every comma/semicolon/line/"and"-separated item of a list answer is grounded."""
  items = [item for item in _LIST_ITEM_SPLIT.split(answer) if normalize(item)]
  return bool(items) and all(grounded(item, context) for item in items)


_PRIME = (1 << 61) - 1


class MinHashIndex:
  """Corpus-wide near-duplicate index: MinHash over word shingles, LSH banding.

  Texts are normalised (`recovery.normalize`: case, punctuation, whitespace) and cut into word
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
    words = normalize(text).split()
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
      if len(normalize(question).split()) >= self.near_duplicate_min_words:
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
      check = grounded if category == "extractive_qa" else _items_grounded
      if not check(answer, context):
        return "ungrounded"
    key = question.lower()
    if key in seen:
      return "duplicate_in_text"
    seen.add(key)
    long_enough = len(normalize(question).split()) >= self.near_duplicate_min_words
    if long_enough and self._index.check_and_add(question):
      return "near_duplicate"
    return None
