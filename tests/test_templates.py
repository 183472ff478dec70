"""Format recovery, templatification, task categories and quality filters of synthesized pairs."""

import collections
import random
import re

import pytest

from instruct_pt.synthesis import template_pools as pools
from instruct_pt.synthesis import categories, filters, recovery, templates
from instruct_pt.data.formats import QAPair

CONTEXT = ("Marie Curie was born in Warsaw in 1867. She moved to Paris, where she studied "
           "physics and chemistry, and won the Nobel Prize in 1903 with Pierre Curie.")
PLAIN = QAPair("Where was Marie Curie born?", "Warsaw")
OPTIONS = QAPair("Which city did she move to?\nOptions:\n- Berlin\n- Paris\n- Vienna\n- London",
                 "paris")
COT = QAPair("How many years after her birth did she win the prize?\nLet's think step by step.",
             "She was born in 1867 and won in 1903.\n1903 - 1867 = 36.\n"
             "Therefore, the answer is 36")
OPTIONS_COT = QAPair("Which field did she study?\nOptions:\n- Law\n- Physics\n- Music\n"
                     "Let's think step by step.",
                     "The text says physics and chemistry.\nTherefore, the answer is Physics")
MALFORMED_COT = QAPair("Why did she move?\nLet's think step by step.", "To study.")
CHAIN = [(CONTEXT, [PLAIN, OPTIONS, COT, OPTIONS_COT]),
         ("Pierre Curie was a French physicist.", [QAPair("Who was Pierre Curie?",
                                                          "A French physicist"),
                                                   QAPair("What was his nationality?", "French")]),
         ("A text that produced no pairs.", [])]


def test_recover_plain_options_cot_and_malformed():
  """Each marker is parsed; a CoT pair without the answer marker is malformed (None)."""
  plain = recovery.recover(PLAIN)
  assert (plain.question, plain.answer, plain.options, plain.cot) == (
      "Where was Marie Curie born?", "Warsaw", None, None)
  options = recovery.recover(OPTIONS)
  assert options.question == "Which city did she move to?"
  assert options.options == ["Berlin", "Paris", "Vienna", "London"]
  assert options.answer_option_index == 1 and options.cot is None
  cot = recovery.recover(COT)
  assert cot.question == "How many years after her birth did she win the prize?"
  assert cot.cot == "She was born in 1867 and won in 1903.\n1903 - 1867 = 36."
  assert cot.answer == "36" and cot.options is None
  both = recovery.recover(OPTIONS_COT)
  assert both.options == ["Law", "Physics", "Music"] and both.answer_option_index == 1
  assert both.cot == "The text says physics and chemistry." and both.answer == "Physics"
  assert recovery.recover(MALFORMED_COT) is None
  items, malformed = recovery.recover_all([PLAIN, MALFORMED_COT, COT])
  assert len(items) == 2 and malformed == 1


def test_recover_unmatched_and_duplicate_options_have_no_index():
  """An answer matching no option, or options that are not unique, map to no index."""
  assert recovery.recover(QAPair("Q?\nOptions:\n- a\n- b", "c")).answer_option_index is None
  assert recovery.recover(QAPair("Q?\nOptions:\n- a\n- A", "a")).answer_option_index is None


def _read_back(block, answer, options):
  """The option text the answer's label points to in a rendered block."""
  for option in options:
    if answer.endswith(" " + option) or answer == option:
      label = answer[:-len(option)].strip()
      assert block.count(f"{label} {option}" if label else option) == 1
      if label:  # the label names exactly one option, and it is this one
        assert re.findall(re.escape(label) + r" (\w+)", block) == [option]
      return option
  raise AssertionError(f"answer {answer!r} names no option")


def test_option_shuffle_keeps_the_answer_label_consistent():
  """Over many seeds the gold moves around, and its label always points at the gold option."""
  options = ["Berlin", "Paris", "Vienna", "London"]
  positions = collections.Counter()
  for seed in range(200):
    block, answer = templates.render_options(options, 1, random.Random(seed))
    assert _read_back(block, answer, options) == "Paris"
    positions[block.index("Paris") > block.index("Berlin")] += 1
  assert len(positions) == 2  # Paris is sometimes before Berlin, sometimes after


def test_unanswerable_gold_option_is_replaced_from_the_pool():
  """A "None of the above" gold option and its answer both become one pool string."""
  block, answer = templates.render_options(["red", "blue", "None of the above"], 2,
                                           random.Random(3))
  assert any(answer.endswith(text) for text in pools.UNANSWERABLE_OPTIONS)
  assert answer in block and "red" in block and "blue" in block


def _all_labels(count):
  """Every label the option styles can write for `count` options."""
  alphabets = {"upper": "ABCDEFGHIJ", "lower": "abcdefghij", "digit": list(range(1, 11))}
  return {fmt.format(symbol) for alphabet, fmt in pools.OPTION_LABEL_STYLES
          if alphabet != "bullet" for symbol in alphabets[alphabet][:count]}


def test_templatify_answer_label_reads_back_from_the_text():
  """In rendered texts, the label before the final answer labels the gold option in the list."""
  labels = _all_labels(4)
  checked = 0
  for seed in range(100):
    text = templates.templatify([(CONTEXT, [OPTIONS])], seed)
    answer_at = text.rindex("Paris")
    label = max((l for l in labels if text[:answer_at].endswith(l + " ")), key=len,
                default=None)
    bullets = re.search(r"\n[-*+] Berlin", text)
    if label is None or bullets or "Berlin" not in text:  # bullet style, or options hidden
      continue
    assert text.count(f"{label} Paris") == 2  # once in the list, once as the answer
    assert all(f"{label} {other}" not in text for other in ("Berlin", "Vienna", "London"))
    checked += 1
  assert checked >= 30


def test_templatify_is_deterministic_and_seed_dependent():
  """Equal seeds give equal texts; several seeds give several texts and layouts."""
  outputs = [templates.templatify(CHAIN, seed) for seed in range(30)]
  assert outputs == [templates.templatify(CHAIN, seed) for seed in range(30)]
  assert len(set(outputs)) == 30
  layouts = {layout for seed in range(30)
             for layout, _ in templates.plan_layouts([2, 2], random.Random(seed))}
  assert len(layouts) >= 2


def test_templatify_keeps_every_question_answer_and_raw_text():
  """Every question stem, answer and rationale appears; the pair-less text is emitted raw."""
  for seed in range(40):
    text = templates.templatify(CHAIN, seed)
    for item in [recovery.recover(p) for _, pairs in CHAIN for p in pairs]:
      gold = item.answer
      if item.answer_option_index is not None:
        gold = item.options[item.answer_option_index]  # written with the option's casing
      assert item.question in text and gold in text
      assert item.cot is None or item.cot in text
    assert text.endswith(pools.ENTRY_SEPARATOR + "A text that produced no pairs.")
    assert text.count(pools.ENTRY_SEPARATOR) >= 2


def test_text_without_pairs_is_raw():
  """A chain of one pair-less text (or only malformed pairs) gives the text unchanged."""
  assert templates.templatify([("Just text.", [])], 7) == "Just text."
  assert templates.templatify([("Just text.", [MALFORMED_COT])], 7) == "Just text."


def test_inversion_places_pairs_before_the_text():
  """Some seed inverts the entry (question before the text); most do not."""
  positions = [templates.templatify([(CONTEXT, [PLAIN])], seed).index("Where was Marie")
               < templates.templatify([(CONTEXT, [PLAIN])], seed).index("Marie Curie was born")
               for seed in range(200)]
  assert 1 <= sum(positions) <= 25


def test_layout_weights_over_2000_seeds():
  """Layout shares are within 3 percentage points of the official weights (2,000 seeds)."""
  for counts, weights in (([2, 3], templates.MULTI_PAIR_WEIGHTS),
                          ([1, 3], templates.SINGLE_PAIR_WEIGHTS)):
    tally, inverted = collections.Counter(), 0
    for seed in range(2000):
      layout, flip = templates.plan_layouts(counts, random.Random(seed))[0]
      tally[layout] += 1
      inverted += flip
    for layout, weight in weights.items():
      assert abs(tally[layout] / 2000 - weight / 100) <= 0.03, (layout, tally)
    assert set(tally) == set(weights)
    assert abs(inverted / 2000 - templates.INVERSION_RATE) <= 0.02


@pytest.mark.parametrize("layout", templates.LAYOUTS)
def test_every_layout_renders_all_pairs(layout, monkeypatch):
  """Each layout, forced, keeps the questions and answers of a three-pair text."""
  monkeypatch.setattr(templates, "plan_layouts", lambda counts, rng: [(layout, False)])
  text = templates.templatify([(CONTEXT, [PLAIN, OPTIONS, COT])], 1)
  for fragment in ("Where was Marie Curie born?", "Warsaw", "Which city did she move to?",
                   "Paris", "How many years after her birth", "36"):
    assert fragment in text


def test_pool_sizes():
  """The pools are as large as the brief asks."""
  assert len(pools.QA) >= 20 and len(pools.QA_OPTIONS) >= 10
  assert len(pools.QA_COT) >= 10 and len(pools.QA_OPTIONS_COT) >= 10
  assert len(pools.UNANSWERABLE_OPTIONS) >= 10 and len(pools.DIALOG_SPEAKERS) >= 10
  assert len(pools.QUESTION_LABELS) >= 10 and len(pools.OPTION_LABEL_STYLES) >= 10


CATEGORY_EXAMPLES = [
    (QAPair("Translate 'good morning' into French.", "Bonjour"), "translation"),
    (QAPair("Summarize the passage in one sentence.", "Curie won a Nobel Prize."),
     "summarization"),
    (QAPair("Suggest a title for this text.", "A Life in Science"), "title_generation"),
    (QAPair("Write a Python function that returns the square of x.",
            "def square(x):\n  return x * x"), "code"),
    (OPTIONS, "multiple_choice"),
    (OPTIONS_COT, "multiple_choice_cot"),
    (QAPair("What is 12 + 30?", "42"), "arithmetic"),
    (QAPair("Tom buys 3 pens at 2 dollars each. How much does he pay in total?", "6 dollars"),
     "math_word_problem"),
    (QAPair("How many prizes are mentioned?", "One"), "counting"),
    (QAPair("Did Marie Curie study chemistry?", "Yes"), "yes_no"),
    (QAPair("Why did she move to Paris?", "To study physics."), "cause_effect"),
    (QAPair("When did she win the Nobel Prize?", "In 1903"), "date_time"),
    (PLAIN, "location"),
    (QAPair("Who shared the prize with her?", "Pierre Curie"), "entity_recognition"),
    (QAPair("What does the word 'physics' mean?", "The science of matter and energy."),
     "definition"),
    (QAPair("Premise: She won a prize. Hypothesis: She won an award. Does the premise entail "
            "the hypothesis?", "Yes"), "nli"),
    (QAPair("What is the sentiment of the review 'I loved it'?", "Positive"), "sentiment"),
    (QAPair("In the second sentence, who does 'she' refer to?", "Marie Curie"), "coreference"),
    (QAPair("Fill in the blank: Curie was born in ____.", "Warsaw"), "fill_in_the_blank"),
    (QAPair("Rephrase the first sentence.", "Curie's birthplace was Warsaw."), "paraphrase"),
    (QAPair("What did she study in Paris?", "physics and chemistry"), "extractive_qa"),
    (QAPair("What can be inferred about her career?", "It was successful."), "inference"),
    (QAPair("What kind of person was she?\nLet's think step by step.",
            "She worked hard.\nTherefore, the answer is diligent"), "cot_reasoning"),
    (QAPair("List the sciences she studied.", "physics, chemistry"), "list_extraction"),
    (QAPair("Is it true that she was born in 1867?", "True"), "fact_verification"),
    (QAPair("Compare her early and later life.", "Her later life was more famous."),
     "comparison"),
    (QAPair("What do you think of her work?", "It was admirable."), "opinion"),
    (QAPair("Explain how radioactivity was discovered.", "Through experiments."),
     "explanation"),
    (QAPair("What is her favourite food?", "None of the above"), "unanswerable"),
]


def test_categories_cover_at_least_40():
  """At least 40 categories, each with a description, with the fallback among them."""
  assert len(categories.CATEGORIES) >= 40
  assert all(isinstance(d, str) and d for d in categories.CATEGORIES.values())
  rule_names = {name for rules in (pools.TASK_CUES, pools.REASONING_CUES, pools.WH_CUES)
                for name, _ in rules}
  assert rule_names <= set(categories.CATEGORIES)
  assert "abstractive_qa" in categories.CATEGORIES


def test_categorize_hand_written_examples():
  """Hand-written pairs of many categories get the expected tag."""
  got = {(pair.question, expected): categories.categorize(pair, CONTEXT)
         for pair, expected in CATEGORY_EXAMPLES}
  wrong = {key: value for key, value in got.items() if key[1] != value}
  assert not wrong
  assert len({expected for _, expected in CATEGORY_EXAMPLES}) >= 12
  assert all(tag in categories.CATEGORIES for tag in got.values())


def test_categorize_fallback_is_abstractive():
  """A question no rule matches, with a free answer, falls back to abstractive QA."""
  pair = QAPair("What legacy did she leave?", "A foundation for modern nuclear science")
  assert categories.categorize(pair, CONTEXT) == "abstractive_qa"


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


LONG_QUESTION = ("According to the second paragraph of the article, what were the main reasons "
                 "that led the young scientist to leave her home country and move to the French "
                 "capital to continue her studies?")


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


def test_minhash_similarity_tracks_jaccard():
  """Short questions differing in one word are not near-duplicates; signatures are stable."""
  index = filters.MinHashIndex()
  assert index.signature("A b, c!") == index.signature("a B c")
  assert not index.check_and_add("What is the capital of France?")
  assert not index.check_and_add("What is the capital of Spain?")
  assert index.check_and_add("what is the capital of france")
