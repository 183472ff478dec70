"""Quality filters of synthesized pairs (`synthesis.filters`): reasons, counters, MinHash."""

import collections
import hashlib
import random
import re

import pytest

from instruct_pt.data.formats import QAPair
from instruct_pt.synthesis import categories, filters

CONTEXT = ("Marie Curie was born in Warsaw in 1867. She moved to Paris, where she studied "
           "physics and chemistry, and won the Nobel Prize in 1903 with Pierre Curie.")
LONG_QUESTION = ("According to the second paragraph of the article, what were the main reasons "
                 "that led the young scientist to leave her home country and move to the French "
                 "capital to continue her studies?")
# 20 words; replacing one word in the middle removes 3 of its 18 word 3-shingles and adds 3,
# so the true Jaccard similarity is 15 / 21 = 0.714, just above the default threshold 0.7.
BASE_20 = ("according to the second paragraph what were the main reasons that led the young "
           "scientist to leave her home country")


def _one_word_changed(position):
  words = BASE_20.split()
  words[position] = "brilliant"
  return " ".join(words)


_PRIME = (1 << 61) - 1


def _reference_signature(text, num_perm=128, shingle=3, seed=0):
  """MinHash as the `MinHashIndex` docstring specifies it, written from hashlib and random:
  `num_perm` pairs (a in [1, p), b in [0, p)) drawn in order from `random.Random(seed)`,
  p = 2**61 - 1; word shingles of the normalised text (one shingle when shorter); 64-bit
  little-endian BLAKE2b hashes h; slot i is min over shingles of (a_i * h + b_i) mod p."""
  rng = random.Random(seed)
  params = [(rng.randrange(1, _PRIME), rng.randrange(_PRIME)) for _ in range(num_perm)]
  words = " ".join(re.sub(r"[\W_]+", " ", text.lower()).split()).split()
  grams = {" ".join(words[i:i + shingle]) for i in range(max(1, len(words) - shingle + 1))}
  hashes = [int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little")
            for g in grams]
  return tuple(min((a * h + b) % _PRIME for h in hashes) for a, b in params)


def _estimate(first, second, seed):
  """The reference share of equal signature slots (the Jaccard estimate) of two texts."""
  pairs = zip(_reference_signature(first, seed=seed), _reference_signature(second, seed=seed))
  return sum(a == b for a, b in pairs) / 128


def test_filter_reasons_are_each_triggered_and_counted():
  """Empty, over-long, ungrounded and in-text duplicate pairs are dropped with their reason."""
  quality = filters.QualityFilter(max_answer_chars=50)
  pairs = [QAPair("  ", "x"), QAPair("What?", ""),
           QAPair("Describe her life.", "y" * 51),
           QAPair("Extract the city where she was born.", "Krakow"),
           QAPair("Extract the city where she was born.", "Warsaw"),
           QAPair("extract the city where she was born.", "Warsaw"),
           QAPair("List the sciences she studied.", "physics, biology"),
           QAPair("Who shared the prize with her?", "Pierre Curie")]
  kept, counts, kept_categories = quality.filter_pairs(CONTEXT, pairs)
  assert counts == collections.Counter(empty=2, answer_too_long=1, ungrounded=2,
                                       duplicate_in_text=1, kept=2)
  assert [p.answer for p in kept] == ["Warsaw", "Pierre Curie"]
  assert kept_categories == [categories.categorize(p, CONTEXT) for p in kept]
  assert kept_categories[0] == "extractive_qa"
  assert quality.counts == counts


def test_answer_length_limit_is_inclusive():
  """An answer of exactly `max_answer_chars` characters is kept, one more is dropped; the
  default limit is 2000 (the constructor's documented default)."""
  quality = filters.QualityFilter(max_answer_chars=50)
  _, counts, _ = quality.filter_pairs(CONTEXT, [QAPair("Describe her life.", "y" * 50)])
  assert counts == collections.Counter(kept=1)
  default = filters.QualityFilter()
  _, counts, _ = default.filter_pairs(CONTEXT, [QAPair("Describe her life.", "y" * 2000),
                                                QAPair("Describe her work.", "y" * 2001)])
  assert counts == collections.Counter(kept=1, answer_too_long=1)


def test_grounding_whole_span_for_extractive_qa_and_per_item_for_lists():
  """An `extractive_qa` answer must occur whole: "Warsaw and Paris" is not in the text though
  each city is. A `list_extraction` answer is checked item by item (split on , ; newline and
  "and"): "physics, chemistry" is kept though the text says "physics and chemistry", and an
  answer with no item at all (only separators) is ungrounded."""
  quality = filters.QualityFilter()
  whole = QAPair("Extract the cities where she lived.", "Warsaw and Paris")
  listed = QAPair("List the sciences she studied.", "physics, chemistry")
  listed_and = QAPair("List the sciences she studied in Paris.", "chemistry and physics")
  no_items = QAPair("List the prizes she won.", " , ;")
  assert [categories.categorize(p, CONTEXT) for p in (whole, listed, listed_and, no_items)] == [
      "extractive_qa", "list_extraction", "list_extraction", "list_extraction"]
  kept, counts, _ = quality.filter_pairs(CONTEXT, [whole, listed, listed_and, no_items])
  assert kept == [listed, listed_and]
  assert counts == collections.Counter(ungrounded=2, kept=2)


def test_in_text_duplicates_compare_lowercased_questions():
  """The duplicate key is the lowercased question: the Kelvin sign lowercases to "k" (Unicode
  maps U+212A to U+006B; its uppercase is itself), so "Is 5 \u212a cold?" repeats "Is 5 k
  cold?"; the same question in another text is no in-text duplicate (and is too short for
  the near-duplicate check)."""
  quality = filters.QualityFilter()
  _, counts, _ = quality.filter_pairs(CONTEXT, [QAPair("Is 5 k cold?", "Yes"),
                                                QAPair("Is 5 \u212a cold?", "Yes")])
  assert counts == collections.Counter(kept=1, duplicate_in_text=1)
  _, counts, _ = quality.filter_pairs("Another text.", [QAPair("Is 5 k cold?", "Yes")])
  assert counts == collections.Counter(kept=1)


def test_near_duplicates_across_documents():
  """Case/punctuation variants and a one-word change are caught corpus-wide; others are not."""
  quality = filters.QualityFilter()
  quality.filter_pairs(CONTEXT, [QAPair(LONG_QUESTION, "To study.")])
  variant = LONG_QUESTION.upper().replace(",", "").replace("?", " !")
  one_word = LONG_QUESTION.replace("young", "brilliant")
  unrelated = ("Which experimental methods did the two researchers use to isolate the new "
               "radioactive elements in their laboratory?")
  _, counts, _ = quality.filter_pairs("another document",
                                      [QAPair(variant, "a"), QAPair(one_word, "b"),
                                       QAPair(unrelated, "c")])
  assert counts == collections.Counter(near_duplicate=2, kept=1)
  assert quality.counts == collections.Counter(near_duplicate=2, kept=2)


def test_near_duplicate_check_starts_at_min_words():
  """A question of exactly `near_duplicate_min_words` (default 8) normalised words is checked,
  so its repeat in another text is a near-duplicate; one of 7 words is not checked."""
  eight = "Which city did the young scientist move to?"
  seven = "Which city did the scientist move to?"
  quality = filters.QualityFilter()
  quality.filter_pairs(CONTEXT, [QAPair(eight, "Paris"), QAPair(seven, "Paris")])
  _, counts, _ = quality.filter_pairs("Another text.", [QAPair(eight, "Paris"),
                                                        QAPair(seven, "Paris")])
  assert counts == collections.Counter(near_duplicate=1, kept=1)


def test_near_duplicate_threshold_and_seed_reach_the_index():
  """Borderline pairs (one word of 20 replaced: true Jaccard 0.714) fall either side of the
  default threshold 0.7 depending on the MinHash seed; the reference estimates (written
  independently above) are: word 4 replaced 0.766 with seed 0, 0.6875 with seed 1; word 6
  replaced 0.680 with seed 0, 0.711 with seed 1; word 0 replaced 0.930 with seed 0. So the
  default filter (seed 0) flags the first and keeps the second, seed 1 the reverse, and a
  threshold of 0.8 keeps the first but flags the third."""
  expected = {(4, 0): 0.765625, (4, 1): 0.6875, (6, 0): 0.6796875, (6, 1): 0.7109375,
              (0, 0): 0.9296875}
  for (position, seed), estimate in expected.items():
    assert _estimate(BASE_20, _one_word_changed(position), seed) == estimate

  def verdict(position, **kwargs):
    quality = filters.QualityFilter(**kwargs)
    quality.filter_pairs(CONTEXT, [QAPair(BASE_20, "a")])
    _, counts, _ = quality.filter_pairs("x", [QAPair(_one_word_changed(position), "a")])
    return next(iter(counts))

  assert verdict(4) == "near_duplicate" and verdict(6) == "kept"
  assert verdict(4, seed=1) == "kept" and verdict(6, seed=1) == "near_duplicate"
  assert verdict(4, near_duplicate_threshold=0.8) == "kept"
  assert verdict(0, near_duplicate_threshold=0.8) == "near_duplicate"


def test_remember_indexes_long_questions_without_counting():
  """`remember` adds earlier kept questions of at least `near_duplicate_min_words` words (one
  of exactly 8 too) to the index, so that they are near-duplicates afterwards; it counts
  nothing."""
  eight = "Which city did the young scientist move to?"
  quality = filters.QualityFilter()
  quality.remember([LONG_QUESTION, eight, "Where was she born?"])
  assert not quality.counts
  _, counts, _ = quality.filter_pairs(CONTEXT, [QAPair(LONG_QUESTION, "a"),
                                                QAPair(eight, "Paris"),
                                                QAPair("Where was she born?", "Warsaw")])
  assert counts == collections.Counter(near_duplicate=2, kept=1)


def test_minhash_similarity_tracks_jaccard():
  """Short questions differing in one word are not near-duplicates; signatures are stable."""
  index = filters.MinHashIndex()
  assert index.signature("A b, c!") == index.signature("a B c")
  assert not index.check_and_add("What is the capital of France?")
  assert not index.check_and_add("What is the capital of Spain?")
  assert index.check_and_add("what is the capital of france")


@pytest.mark.parametrize("text", ["solo", "two words", "What is the capital of France?",
                                  BASE_20])
def test_minhash_signature_matches_the_documented_construction(text):
  """The signature equals the docstring's construction written independently here
  (`_reference_signature`), with the defaults (128 slots, 3-shingles, seed 0), another seed,
  and 1-word shingles; texts shorter than a shingle included."""
  assert filters.MinHashIndex().signature(text) == _reference_signature(text)
  assert filters.MinHashIndex(seed=7).signature(text) == _reference_signature(text, seed=7)
  assert filters.MinHashIndex(num_perm=4, bands=2, shingle=1).signature(text) == (
      _reference_signature(text, num_perm=4, shingle=1))


def test_minhash_banding_and_threshold_edge():
  """With 2 slots in 2 bands of one slot and word shingles, the reference signatures give:
  "green" and "red green" equal in slot 0 only, "red" and "green" in no slot. A text is a
  candidate only when a whole band is equal, and a candidate is a near-duplicate at
  similarity >= threshold: "red green" shares band 0 with "green", similarity 1/2 >= 0.5;
  "green" shares no band with "red", so even threshold 0 does not flag it."""
  def equal_slots(first, second):
    return [a == b for a, b in zip(_reference_signature(first, 2, 1),
                                   _reference_signature(second, 2, 1))]

  assert equal_slots("green", "red green") == [True, False]
  assert equal_slots("red", "green") == [False, False]
  index = filters.MinHashIndex(threshold=0.5, num_perm=2, bands=2, shingle=1)
  assert not index.check_and_add("green")
  assert index.check_and_add("red green")
  index = filters.MinHashIndex(threshold=0.0, num_perm=2, bands=2, shingle=1)
  assert not index.check_and_add("red")
  assert not index.check_and_add("green")
  assert index.check_and_add("red")  # an indexed text again: every band equal


def test_minhash_rejects_bands_that_do_not_divide_the_signature():
  """`num_perm` must be a multiple of `bands`; the message names both."""
  with pytest.raises(ValueError, match=r"num_perm=100 is not a multiple of bands=32"):
    filters.MinHashIndex(num_perm=100)
  filters.MinHashIndex(num_perm=96)  # 96 = 3 * 32
