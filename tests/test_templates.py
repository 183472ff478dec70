"""Format recovery, templatification, task categories and quality filters of synthesized pairs."""

import collections
import dataclasses
import itertools
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
OPTIONS_WITH_GOLD = QAPair("Which city did she move to?\nOptions:\n- Berlin\n- Paris\n- Vienna",
                           "Paris")


def _recovered(question, answer):
  item = recovery.recover(QAPair(question, answer))
  return None if item is None else (item.question, item.options, item.answer, item.cot)


def test_recover_official_cot_rules():
  """Hand-derived from the official `parse_QA_list`: the cue must end the question, the answer
  must hold exactly one marker, one trailing period leaves the rationale; else dropped."""
  cue, marker = "\nLet's think step by step.", "\nTherefore, the answer is "
  assert _recovered("How many?" + cue, "2+2 is 4." + marker + "4") == (
      "How many?", None, "4", "2+2 is 4")
  assert _recovered("How many?" + cue, "no marker") is None
  assert _recovered("How many?", "r." + marker + "4") is None  # marker without the cue
  assert _recovered("How many?" + cue, "a" + marker + "b" + marker + "c") is None
  assert _recovered("How many?" + cue, "r.." + marker + "4.") == ("How many?", None, "4.", "r.")
  assert _recovered(cue.strip(), "r" + marker + "4") is None  # no stem
  assert _recovered("Pick\nOptions:\n- 3\n- 4" + cue, "r." + marker + "4") == (
      "Pick", ("3", "4"), "4", "r")
  items, dropped = recovery.recover_all([PLAIN, MALFORMED_COT, COT])
  assert len(items) == 2 and dropped == 1


def test_recover_official_option_rules():
  """Options kept verbatim (an empty one too); the answer must equal an option (stripped,
  case-sensitive) or be an unanswerable string that is no option; else dropped."""
  question = "Which city?\nOptions:\n- Rome\n- Paris\n- Oslo"
  assert _recovered(question, "Paris") == ("Which city?", ("Rome", "Paris", "Oslo"), "Paris",
                                           None)
  assert _recovered(question, "paris") is None
  # The release's unanswerable strings (82: 41 and their lowercased copies): "None" and
  # "none" are on it, "None of the above" is not, and a missing comma in the release runs
  # two strings together, so "None of the options fit" alone is not either.
  assert _recovered(question, "None") == ("Which city?", ("Rome", "Paris", "Oslo"), "None",
                                          None)
  assert _recovered(question, "none of the above choices")[2] == "none of the above choices"
  joined = ("None of the available choices adequately meet the specified conditions"
            "None of the options fit")
  assert _recovered(question, joined)[2] == joined
  for dropped in ("None of the above", "None of the options fit", "NONE", "Madrid"):
    assert _recovered(question, dropped) is None, dropped
  assert len(pools.UNANSWERABLE_OPTIONS) == 82 == len(pools.UNANSWERABLE_OPTION_SET)
  assert pools.UNANSWERABLE_OPTIONS[0] == "None of the above choices"
  assert pools.UNANSWERABLE_OPTIONS[41] == "none of the above choices"
  assert _recovered("Q?\nOptions:\n- a\n- \n- b\nmore", "b\nmore") == (
      "Q?", ("a", "", "b\nmore"), "b\nmore", None)
  assert _recovered("Q?\nOptions:\n- a\nOptions:\n- b", "a") is None  # two markers
  assert _recovered("\nOptions:\n- a\n- b", "a") is None  # no stem


def _style(options, unanswerable="None of these"):
  """Our text style with the given option format (and unanswerable string)."""
  base = templates.draw_text_style(random.Random(0), 3)
  return dataclasses.replace(base, options=options, unanswerable=unanswerable)


def test_option_block_and_label_only_answer():
  """`start + lead + label + option + end` per option, shuffled per pair; the answer is the
  gold option's label alone, and that label is the gold option's in the block."""
  item = recovery.recover(QAPair("Which city?\nOptions:\n- Rome\n- Paris\n- Oslo", "Paris"))
  style = _style(templates.our_option_style("Options:", " ", ("upper", "{}."), "", 3))
  blocks = set()
  for seed in range(40):
    block, answer = templates.render_options(item, style, seed)
    order = re.findall(r" ([A-C])\. (\w+)", block)
    assert block.startswith("Options: A. ") and [o for _, o in order] in (
        [list(p) for p in itertools.permutations(["Rome", "Paris", "Oslo"])])
    assert answer == dict((o, l) for l, o in order)["Paris"] + "."
    blocks.add(block)
  assert len(blocks) > 1  # the gold moves around
  bullets = _style(templates.our_option_style("", "\n", ("bullet", "-"), ";", 3))
  block, answer = templates.render_options(item, bullets, 1)
  assert answer == "Paris" and sorted(block.split("\n")[1:]) == ["- Oslo;", "- Paris;",
                                                                 "- Rome;"]
  unanswerable = recovery.recover(QAPair("Which city?\nOptions:\n- Rome\n- Oslo", "None"))
  block, answer = templates.render_options(unanswerable, _style(bullets.options, "Not stated"),
                                           2)
  assert answer == "Not stated" and "Rome" in block and "Oslo" in block


def test_every_option_label_style_written_out():
  """Each label style of the pool on three options, the block as it must read (labels by
  hand: A B C, a b c, 1 2 3, or the bullet itself), in the shuffled order of the block; the
  answer is the gold option's label (its text for bullets)."""
  item = recovery.recover(QAPair("Pick?\nOptions:\n- x\n- y\n- z", "y"))
  ordinals = {"upper": "ABC", "lower": "abc", "digit": "123"}
  for alphabet, label_format in pools.OPTION_LABEL_STYLES:
    style = _style(templates.our_option_style("", "\n", (alphabet, label_format), "", 3))
    block, answer = templates.render_options(item, style, 5)
    lines = block.split("\n")[1:]
    options = [line.rsplit(" ", 1)[1] for line in lines]
    assert sorted(options) == ["x", "y", "z"], block
    if alphabet == "bullet":
      expected = [f"{label_format} {option}" for option in options]
      assert answer == "y"
    else:
      labels = [label_format.format(ordinal) for ordinal in ordinals[alphabet]]
      expected = [f"{label} {option}" for label, option in zip(labels, options)]
      assert answer == labels[options.index("y")]
    assert lines == expected, (alphabet, label_format, block)


def test_numbered_questions_count_from_one(monkeypatch):
  """Ours numbers a group's questions and answers 1, 2, 3 in one of our formats, no item end
  (by hand: "\n1. ", "\n2. ", ...); each answer is under the number of its question."""
  monkeypatch.setattr(templates, "draw_layout",
                      lambda min_pairs, rng: ("numbered_questions", False))
  text = templates.draw_text_style(random.Random(0), 0)
  for seed in range(20):
    group = templates._draw_group(  # pylint: disable=protected-access
        3, 3, text, random.Random(seed))
    assert any(group.number_items == (form.format(1), form.format(2), form.format(3))
               for form in pools.NUMBER_FORMATS), group.number_items
    assert group.number_ends == ("", "", "")
  pairs = [(recovery.recover(QAPair(f"Q{i}?", f"A{i}!")),
            {"question": f"Q{i}?", "answer": f"A{i}!"}) for i in (1, 2, 3)]
  plain = templates.Pattern("", "{question}", " ", "", "{answer}", "")
  group = templates.GroupStyle(
      "numbered_questions", {"plain": plain},
      numbered="{context}|{questions}|{answers}", number_items=("\n1. ", "\n2. ", "\n3. "),
      number_ends=("", "", ""))
  assert templates.render_entry("CTX", pairs, group) == (
      "CTX|\n1. Q1?\n2. Q2?\n3. Q3?|\n1. A1!\n2. A2!\n3. A3!")


def _gaps(text, count):
  """Between each question `Q<i>?` and its answer `A<i>!`, the text a pattern puts there."""
  gaps = []
  for i in range(count):
    start, end = text.index(f"Q{i}?"), text.index(f"A{i}!")
    gaps.append(text[start + len(f"Q{i}?"):end])
  return gaps


def test_every_pair_of_a_text_shares_one_pattern(monkeypatch):
  """The official sampling unit, in our pools (filtered; the release's include answer ->
  question patterns, which `_gaps` cannot read): within one text, every plain pair is written
  with the same pattern (the same text between question and answer), across both linked
  entries, in each layout that writes whole pairs; across texts (seeds), the patterns vary."""
  entries = [templates.Entry(f"Text {e}.", [QAPair(f"Q{i}?", f"A{i}!")
                                            for i in range(3 * e, 3 * e + 3)], linked=e == 1)
             for e in range(2)]
  shapes = set()
  for layout in ("classic", "dialog", "next_turn_dialog"):
    monkeypatch.setattr(templates, "draw_layout", lambda min_pairs, rng, l=layout: (l, False))
    for seed in range(30):
      (output,) = templates.templatify(entries, seed, "filtered")
      assert output.entries == (0, 1)
      gaps = _gaps(output.text, 6)
      assert len(set(gaps)) == 1, (layout, seed, gaps)
      shapes.add(gaps[0])
  assert len(shapes) >= 20


@pytest.mark.parametrize("mode", templates.MODES)
def test_output_units_follow_the_official_chain_breaks(mode):
  """Hand-derived from the official `cook_pt_entries` (A, B, C the three rounds), in both modes:
  all linked -> one text; B without pairs (so C not linked) -> A, B raw, C; B's only pair a
  malformed CoT while linked -> A and C in one text, then B raw; unlinked A-B -> two texts."""
  a = templates.Entry("A1 text.", [QAPair("qa1", "x")])
  b = templates.Entry("B1 text.", [QAPair("qb1", "y")], linked=True)
  c = templates.Entry("C1 text.", [QAPair("qc1", "z")], linked=True)

  def units(entries):
    return [(o.entries, o.text if o.text in {e.text for e in entries} else None)
            for o in templates.templatify(entries, 12345, mode)]

  assert units([a, b, c]) == [((0, 1, 2), None)]
  b_empty = templates.Entry("B1 text.", [], linked=False)
  c_cut = dataclasses.replace(c, linked=False)
  assert units([a, b_empty, c_cut]) == [((0,), None), ((1,), "B1 text."), ((2,), None)]
  b_bad = templates.Entry("B1 text.", [MALFORMED_COT], linked=True)
  assert units([a, b_bad, c]) == [((0, 2), None), ((1,), "B1 text.")]
  assert units([a, dataclasses.replace(b, linked=False)]) == [((0,), None), ((1,), None)]
  # A group whose entries have no pairs at all gives only raw texts (no empty text).
  assert units([templates.Entry("Just text.", [])]) == [((0,), "Just text.")]
  # Several pair-less entries of one group come after its text, the latest first.
  d = templates.Entry("D1 text.", [MALFORMED_COT], linked=True)
  assert units([a, b_bad, d]) == [((0,), None), ((2,), "D1 text."), ((1,), "B1 text.")]


def test_texts_keep_every_question_answer_and_rationale():
  """Ours (filtered) whatever the layout: each kept question stem and answer is in its text;
  rationales too, except in Inline few-shot texts whose pairs are not all CoT (the official
  layout shows a rationale only when every example has one). Not in official mode: the
  release's pools drop the answer in 5 of 79 plain patterns (and the rationale in some CoT
  ones), so there an answer need not be in the text."""
  entries = [templates.Entry(CONTEXT, [PLAIN, OPTIONS_COT, COT]),
             templates.Entry("Pierre Curie was a French physicist.",
                             [QAPair("Who was Pierre Curie?", "A French physicist"),
                              QAPair("What was his nationality?", "French")], linked=True)]
  without_rationale = 0
  for seed in range(40):
    (output,) = templates.templatify(entries, seed, "filtered")
    items = recovery.recover_all(entries[0].pairs + list(entries[1].pairs))[0]
    for item in items:
      assert item.question in output.text
      # an option pair's answer is one of its options, written in its block (the pair's
      # own answer is then the gold option's label)
      assert item.answer in output.text
    without_rationale += any(item.cot not in output.text for item in items if item.cot)
  assert without_rationale <= 6


def test_our_layout_and_inversion_rates_pinned_here():
  """Ours draws the official marginal rates, written here (not read from the module): Classic
  80, Dialog 5, Numbered 5, Inline 5, Next-turn 5 when every entry has >= 2 pairs, else Classic
  95, Dialog 5; inversion 5% of Classic and Dialog groups, never of the others (20,000 draws
  each; independent draws, so Dialog groups are inverted too, which the release never does)."""
  official = {2: {"classic": 0.80, "dialog": 0.05, "numbered_questions": 0.05,
                  "inline_few_shot": 0.05, "next_turn_dialog": 0.05},
              1: {"classic": 0.95, "dialog": 0.05}}
  for min_pairs, shares in official.items():
    rng = random.Random(min_pairs)
    draws = [templates.draw_layout(min_pairs, rng) for _ in range(20000)]
    tally = collections.Counter(layout for layout, _ in draws)
    assert set(tally) == set(shares)
    for layout, share in shares.items():
      assert abs(tally[layout] / 20000 - share) < 0.01, (layout, tally)
    inverted = collections.Counter(layout for layout, flip in draws if flip)
    assert set(inverted) <= {"classic", "dialog"}
    rate = sum(inverted.values()) / (tally["classic"] + tally["dialog"])
    assert abs(rate - 0.05) < 0.008, rate
  assert templates.draw_layout(0, random.Random(0))[0] in ("classic", "dialog")


def test_our_separator_and_hidden_option_rates_pinned_here():
  """Ours: the entry separator and one pair separator per text (every pattern of the text has
  it) follow the release's plain-QA separator shares (36/34/7/1/1 of 79 for `\n\n\n`, `\n\n`,
  `\n`, and the two dashed rules); half the texts hide options."""
  styles = [templates.draw_text_style(random.Random(seed), 3) for seed in range(8000)]
  assert all(len({p.separator for p in s.patterns.values()}) == 1 for s in styles)
  for name, separator_of in (("entry", lambda s: s.entry_separator),
                             ("pair", lambda s: s.patterns["plain"].separator)):
    tally = collections.Counter(separator_of(s) for s in styles)
    for separator, count in (("\n\n\n", 36), ("\n\n", 34), ("\n", 7)):
      assert abs(tally[separator] / 8000 - count / 79) < 0.02, (name, tally)
  hidden = sum(s.patterns["options"] == s.patterns["plain"] for s in styles) / 8000
  assert abs(hidden - 0.5) < 0.02
  # In texts, a hidden list leaves the wrong options out (the answer is written as its text).
  entry = [templates.Entry(CONTEXT, [OPTIONS_WITH_GOLD, PLAIN])]
  with_list = sum("Vienna" in templates.templatify(entry, seed, "filtered")[0].text
                  for seed in range(200))
  assert 70 <= with_list <= 130


def test_every_layout_writes_every_pair(monkeypatch):
  """Ours: every layout, forced (inverted too where the official code inverts), writes all
  the questions and answers of both entries of a group."""
  entries = [templates.Entry(CONTEXT, [PLAIN, COT]),
             templates.Entry("Another text.", [QAPair("Q0?", "A0!"), QAPair("Q1?", "A1!")],
                             linked=True)]
  for layout in templates.LAYOUTS:
    for inverted in (False, True) if layout in templates.INVERTIBLE_LAYOUTS else (False,):
      monkeypatch.setattr(templates, "draw_layout",
                          lambda min_pairs, rng, l=layout, i=inverted: (l, i))
      (output,) = templates.templatify(entries, 3, "filtered")
      for fragment in ("Where was Marie Curie born?", "Warsaw", "Q0?", "A0!", "Q1?", "A1!",
                       "How many years after her birth", "36", CONTEXT, "Another text."):
        assert fragment in output.text, (layout, inverted, fragment)
      if inverted:
        assert output.text.index("Where was Marie") < output.text.index(CONTEXT)


@pytest.mark.parametrize("mode", templates.MODES)
def test_templatify_is_deterministic_and_seed_dependent(mode):
  entries = [templates.Entry(CONTEXT, [PLAIN, OPTIONS_COT])]
  outputs = [templates.templatify(entries, seed, mode) for seed in range(30)]
  assert outputs == [templates.templatify(entries, seed, mode) for seed in range(30)]
  assert len({o[0].text for o in outputs}) == 30
  with pytest.raises(ValueError, match="mode"):
    templates.templatify(entries, 0, "strict")


# A target that starts with a label of its own ("Answer: x"), stacked on a targets prefix (two
# letters at least: "C:" alone is an option's label).
LEADING_LABEL = re.compile(r"^[A-Za-z][\w' ]{1,24}: ")


def test_no_label_is_stacked_on_our_targets_prefix(monkeypatch):
  """Ours writes no "A: Answer: x" (17 of our 90 plain prefix-target combinations and 51 of the
  216 CoT ones did; the release's plain and CoT pools never do): no target phrasing starts
  with a label, and no Classic text has a targets prefix followed by one."""
  for targets in (pools.QA_TARGETS, pools.OPTION_TARGETS, pools.COT_TARGETS,
                  pools.OPTION_COT_TARGETS):
    assert not [t for t in targets if LEADING_LABEL.match(t)]
  monkeypatch.setattr(templates, "draw_layout", lambda min_pairs, rng: ("classic", False))
  entries = [templates.Entry(CONTEXT, [PLAIN, COT])]  # option blocks read like labels
  prefixes = {targets_prefix for _, targets_prefix in pools.QA_PREFIXES if targets_prefix}
  for seed in range(300):
    text = templates.templatify(entries, seed, "filtered")[0].text
    for prefix in prefixes:
      stacked = re.search(r"(?:^|\s)" + re.escape(prefix) + LEADING_LABEL.pattern[1:], text)
      assert not stacked, (seed, stacked)


def test_pool_sizes_as_the_docstring_states():
  """Pattern parts multiply to thousands of patterns per kind of pair; no duplicate entries."""
  parts = {"plain": (pools.QA_INPUTS, pools.QA_TARGETS),
           "options": (pools.OPTION_INPUTS, pools.OPTION_TARGETS),
           "cot": (pools.COT_INPUTS, pools.COT_TARGETS),
           "options_cot": (pools.OPTION_COT_INPUTS, pools.OPTION_COT_TARGETS)}
  for inputs, targets in parts.values():
    assert len(pools.QA_PREFIXES) * len(inputs) * len(targets) * len(pools.DELIMITERS) >= 3000
  for name in dir(pools):
    value = getattr(pools, name)
    if name.isupper() and isinstance(value, tuple) and not name.endswith("WEIGHTS"):
      assert len(value) == len(set(value)), name


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
  rule_names = {name for rules in (categories.TASK_CUES, categories.REASONING_CUES,
                                  categories.WH_CUES) for name, _ in rules}
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
