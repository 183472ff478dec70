"""Templatification and task categories of synthesized pairs (recovery and quality filters:
tests/test_recovery.py, tests/test_filters.py)."""

import collections
import dataclasses
import itertools
import random
import re

import pytest

from instruct_pt.synthesis import template_official as official
from instruct_pt.synthesis import template_official_patterns as official_patterns
from instruct_pt.synthesis import template_pools as pools
from instruct_pt.synthesis import categories, recovery, templates
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
  # The option format: every item name is a lead of the pool, a label and a space; one item
  # end for all options, ";" in 1 of 3 texts (the pool's weights 2 : 1 for "" and ";"); the
  # unanswerable string is one of the release's.
  for style in styles[:500]:
    assert [item[:1] for item in style.options.items] == [style.options.items[0][:1]] * 3
    assert style.options.items[0][:1] in pools.OPTION_LEADS
    assert all(item.endswith(" ") for item in style.options.items)
    assert len(set(style.options.ends)) == 1 and style.options.ends[0] in pools.OPTION_ENDS
    assert style.unanswerable in pools.UNANSWERABLE_OPTIONS
  semicolons = sum(s.options.ends == (";",) * 3 for s in styles) / 8000
  assert abs(semicolons - 1 / 3) < 0.02, semicolons
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
  """Equal seeds give equal texts, 30 seeds 30 different texts; an unknown mode is refused."""
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


# ---- Rendering written out by hand ----------------------------------------------------------

CUE, MARKER = "\nLet's think step by step.", "\nTherefore, the answer is "
HAND_PATTERNS = {
    "plain": templates.Pattern("Q: ", "{question}", " ", "A: ", "{answer}", "\n\n"),
    "options": templates.Pattern("", "{question}{options}", " ", "", "{option_answer}", "\n--\n"),
    "cot": templates.Pattern("", "{question} Think.", "\n", "", "{cot}. So {answer}", "\n"),
    "options_cot": templates.Pattern("", "{question}{options}", "\n", "", "{cot}: {answer}", "\n"),
}


def _plain(i):
  """Plain pair i (question `Q<i>?`, answer `A<i>`) with its fields."""
  item = recovery.recover(QAPair(f"Q{i}?", f"A{i}"))
  return item, {"question": f"Q{i}?", "answer": f"A{i}", "cot": "", "options": "",
                "option_answer": f"A{i}"}


def _cot(i):
  """CoT pair i (rationale `R<i>`) with its fields."""
  item = recovery.recover(QAPair(f"Q{i}?" + CUE, f"R{i}." + MARKER + f"A{i}"))
  assert item.cot == f"R{i}"
  return item, {"question": f"Q{i}?", "answer": f"A{i}", "cot": f"R{i}", "options": "",
                "option_answer": f"A{i}"}


def test_render_entry_classic_and_dialog_written_out():
  """Classic: read start with the context, the read end only when a comprehension start
  follows, then the last pair's separator and the pairs joined by it; Dialog: context, dialog
  start, separator, pairs; inverted: pairs start with the pairs, pairs end, text start with
  the context. Pairs [plain 1, CoT 2]: the CoT pattern's separator "\\n" is used."""
  pairs = [_plain(1), _cot(2)]
  written = "Q: Q1? A: A1" + "\n" + "Q2? Think.\nR2. So A2"
  classic = templates.GroupStyle("classic", HAND_PATTERNS,
                                 read=("Read: {context}", " END", "Answer:"))
  assert templates.render_entry("CTX", pairs, classic) == "Read: CTX END" + "Answer:" + "\n" + (
      written)
  bare = dataclasses.replace(classic, read=("Read: {context}", " END", ""))
  assert templates.render_entry("CTX", pairs, bare) == "Read: CTX" + "\n" + written
  # the plain pattern's separator when the plain pair is last
  assert templates.render_entry("CTX", pairs[::-1], bare) == (
      "Read: CTX\n\nQ2? Think.\nR2. So A2\n\nQ: Q1? A: A1")
  dialog = templates.GroupStyle("dialog", HAND_PATTERNS, dialog_start=" | Talk:")
  assert templates.render_entry("CTX", pairs, dialog) == "CTX | Talk:" + "\n" + written
  for layout in ("classic", "dialog"):
    inverted = templates.GroupStyle(layout, HAND_PATTERNS, inverted=True,
                                    inversion=("First: {pairs}", "\n==\n", "Text: {context}"),
                                    read=("Read: {context}", " END", "Answer:"))
    assert templates.render_entry("CTX", pairs, inverted) == (
        "First: " + written + "\n==\n" + "Text: CTX")


def test_render_entry_next_turn_dialog_written_out():
  """Next-turn dialog: the history is each earlier pair preceded by its own pattern's
  separator, the next turn the last pair alone, all in the layout's template."""
  group = templates.GroupStyle("next_turn_dialog", HAND_PATTERNS,
                               next_turn="{context}|{history}|{next_turn}")
  pairs = [_plain(1), _cot(2), _plain(3)]
  assert templates.render_entry("CTX", pairs, group) == (
      "CTX|" + "\n\nQ: Q1? A: A1" + "\n" + "Q2? Think.\nR2. So A2" + "|Q: Q3? A: A3")


INLINE_EXPLAINED = templates.InlinePattern("{context}#{examples}#{test}",
                                           "<{input}={output} since {explanation}>",
                                           "[{input}=?{output}]")
INLINE_PLAIN = templates.InlinePattern("{context}#{examples}#{test}",
                                       "<{input}={output}{explanation}>", "[{input}=?{output}]")


def test_render_entry_inline_few_shot_written_out():
  """Inline few-shot: every pair but the last is an example, the last the test, all written
  with the inputs and targets (no prefixes) of their kind's pattern without CoT (plain here:
  "Q1?" / "A1", not the CoT pattern's "Q1? Think."); the explaining
  pattern, with each rationale, only when every pair has one. A pair without rationale has an
  empty explanation."""
  group = templates.GroupStyle("inline_few_shot", HAND_PATTERNS,
                               inline=(INLINE_EXPLAINED, INLINE_PLAIN))
  all_cot = [_cot(1), _cot(2), _cot(3)]
  assert templates.render_entry("CTX", all_cot, group) == (
      "CTX#<Q1?=A1 since R1><Q2?=A2 since R2>#[Q3?=?A3]")
  mixed = [_plain(1), _plain(2), _cot(3)]
  assert templates.render_entry("CTX", mixed, group) == (
      "CTX#<Q1?=A1><Q2?=A2>#[Q3?=?A3]")
  assert templates.render_entry("CTX", [_plain(1)], group) == "CTX##[Q1?=?A1]"


def test_fields_of_plain_cot_and_option_pairs():
  """The fields a pattern is filled with: question stem, answer, rationale ("" without),
  options block ("" without) and the option answer (the answer itself without options, else
  the gold option's label as `render_options` writes it)."""
  text = _style(templates.OptionStyle(" Opts:", ("\n(a) ", "\n(b) "), (";", ";"), True))
  plain_item, plain_fields = _plain(1)
  assert templates._fields(plain_item, text, 0) == plain_fields  # pylint: disable=protected-access
  cot_item, cot_fields = _cot(2)
  assert templates._fields(cot_item, text, 0) == cot_fields  # pylint: disable=protected-access
  item = recovery.recover(QAPair("Pick?\nOptions:\n- x\n- y", "y"))
  for seed in range(4):
    order = ["x", "y"]
    random.Random(seed).shuffle(order)  # the documented shuffle: random.Random(seed)
    fields = templates._fields(item, text, seed)  # pylint: disable=protected-access
    assert fields == {"question": "Pick?", "answer": "y", "cot": "",
                      "options": f" Opts:\n(a) {order[0]};\n(b) {order[1]};",
                      "option_answer": "(a)" if order[0] == "y" else "(b)"}


def test_render_options_edge_cases():
  """An unanswerable string that is itself an option is answered by its label, not by the
  text's unanswerable string; a gold option shuffled beyond the item names drops the pair
  (None), with two names for three options (order by `random.Random(seed).shuffle`)."""
  item = recovery.recover(QAPair("Which city?\nOptions:\n- Rome\n- None", "None"))
  style = _style(templates.our_option_style("", " ", ("upper", "{}."), "", 2), "Not stated")
  for seed in range(4):
    block, answer = templates.render_options(item, style, seed)
    assert answer == ("A." if block.startswith(" A. None") else "B."), (block, answer)
  three = recovery.recover(QAPair("Which city?\nOptions:\n- Rome\n- Paris\n- Oslo", "Paris"))
  outcomes = set()
  for seed in range(12):
    order = ["Rome", "Paris", "Oslo"]
    random.Random(seed).shuffle(order)
    expected = None if order[2] == "Paris" else (
        f" A. {order[0]} B. {order[1]}", "AB"[order.index("Paris")] + ".")
    assert templates.render_options(three, style, seed) == expected, seed
    outcomes.add(expected is None)
  assert outcomes == {True, False}


def test_labels_beyond_the_alphabet_are_numbers():
  """Letters name the first 26 options; the 27th on is numbered (27, 28), in both cases."""
  upper = templates.our_option_style("", "", ("upper", "{}."), "", 28)
  assert upper.items[24:] == ("Y. ", "Z. ", "27. ", "28. ")
  lower = templates.our_option_style("", "\n", ("lower", "({})"), ";", 27)
  assert lower.items[:2] + lower.items[25:] == ("\n(a) ", "\n(b) ", "\n(z) ", "\n(27) ")
  assert lower.ends == (";",) * 27 and lower.labelled
  bullets = templates.our_option_style("", " ", ("bullet", "*"), "", 2)
  assert bullets.items == (" * ", " * ") and not bullets.labelled


def _forced_groups(monkeypatch, layout, inverted=False, count=40):
  """Our group choices with the layout forced, over `count` seeds, with their text style."""
  monkeypatch.setattr(templates, "draw_layout", lambda min_pairs, rng: (layout, inverted))
  groups = []
  for seed in range(count):
    rng = random.Random(seed)
    text = templates.draw_text_style(rng, 3)
    group = templates._draw_group(2, 3, text, rng)  # pylint: disable=protected-access
    groups.append((text, group))
  return groups


def test_our_classic_group_strings(monkeypatch):
  """Classic: the read start is the bare context or one of the pool's, the read end one of the
  pool's, the comprehension start empty or one of the pool's, each way seen; not inverted, the
  inversion strings keep their defaults; inverted, all three come from the pools."""
  groups = _forced_groups(monkeypatch, "classic")
  for text, group in groups:
    read_start, read_end, compre_start = group.read
    assert read_start == "{context}" or read_start in pools.READ_STARTS
    assert read_end in pools.READ_ENDS and group.inline is None
    assert compre_start == "" or compre_start in pools.COMPREHENSION_STARTS
    assert group.patterns == text.patterns and group.layout == "classic"
    assert group.inversion == ("{pairs}", "", "{context}")
  assert {g.read[0] == "{context}" for _, g in groups} == {True, False}
  assert {g.read[2] == "" for _, g in groups} == {True, False}
  for _, group in _forced_groups(monkeypatch, "classic", inverted=True):
    qa_start, qa_end, text_start = group.inversion
    assert group.inverted and qa_start in pools.INVERTED_QA_STARTS
    assert qa_end in pools.INVERTED_QA_ENDS and text_start in pools.INVERTED_TEXT_STARTS


@pytest.mark.parametrize("layout", ["dialog", "next_turn_dialog"])
def test_our_dialog_group_strings(monkeypatch, layout):
  """Dialog layouts: every pattern of the text gets the same speakers as "\\n<user>: " and
  "\\n<assistant>: " prefixes, no delimiter, and one of the pool's dialog separators; the
  rest of the pattern is the text's; the dialog start is a join and a start of the pools."""
  starts = {join + start for join in pools.DIALOG_JOINS for start in pools.DIALOG_STARTS}
  for text, group in _forced_groups(monkeypatch, layout):
    first = group.patterns["plain"]
    assert any((first.inputs_prefix, first.targets_prefix) == (f"\n{u}: ", f"\n{a}: ")
               for u, a in pools.DIALOG_SPEAKERS), first
    assert first.separator in pools.DIALOG_SEPARATORS
    for mode, pattern in text.patterns.items():
      assert group.patterns[mode] == dataclasses.replace(
          pattern, inputs_prefix=first.inputs_prefix, delimiter="",
          targets_prefix=first.targets_prefix, separator=first.separator)
    assert group.dialog_start in starts and group.next_turn in pools.NEXT_TURN_DIALOG


def test_our_inline_group_strings(monkeypatch):
  """Inline few-shot: one template and test of the pools for both patterns, the plain one
  with an example of `INLINE_EXAMPLES`, the explaining one with one of
  `INLINE_EXPLAINED_EXAMPLES`."""
  for text, group in _forced_groups(monkeypatch, "inline_few_shot"):
    explained, plain = group.inline
    assert plain.template == explained.template and plain.template in pools.INLINE_FEW_SHOT
    assert plain.test == explained.test and plain.test in pools.INLINE_TESTS
    assert plain.example in pools.INLINE_EXAMPLES
    assert explained.example in pools.INLINE_EXPLAINED_EXAMPLES
    assert group.patterns == text.patterns


def test_templatify_keeps_pairs_after_a_dropped_one():
  """A pair the recovery drops (a malformed CoT) leaves the pairs after it in the text."""
  entry = templates.Entry(CONTEXT, [MALFORMED_COT, PLAIN])
  for mode in templates.MODES:
    (output,) = templates.templatify([entry], 7, mode)
    assert "Where was Marie Curie born?" in output.text and "Why did she move?" not in output.text


def test_our_option_shuffle_differs_across_seeds():
  """Ours shuffles each pair's options from the text's stream: the listed order of the first
  pair's options (the only one here) changes with the seed."""
  entry = [templates.Entry("No city named here.", [OPTIONS_WITH_GOLD])]
  orders = set()
  for seed in range(40):
    text = templates.templatify(entry, seed, "filtered")[0].text
    if all(city in text for city in ("Berlin", "Vienna")):  # the options are listed
      orders.add(tuple(sorted(("Berlin", "Paris", "Vienna"), key=text.index)))
  assert len(orders) >= 3, orders


# ---- Official mode: each choice is the first draw of a fresh generator -----------------------
# The release (LMOps `read_compre.cook_pt_entries`, `read_compre_pt.get_patterns`) draws every
# choice as `random.Random(seed).choice(pool)` (the entry separator from `seed + 1`, each pair's
# option shuffle `random.Random(seed * index).shuffle`), and draws the dialog speakers from its
# speaker list reversed. The expected values below follow those rules with the stdlib.


def test_official_text_and_group_choices_are_first_draws():
  """Per text: the option item names (labelled when all differ: the release's `is_abc_style`),
  the unanswerable string from the release's 82, the entry separator that of the plain pattern
  drawn with `seed + 1`. Per group, with the release's weights written here: the layout
  (Classic 80, Dialog 5, Numbered 5, Inline 5, Next-turn 5 when every entry has >= 2 pairs,
  else Classic 95, Dialog 5) and the inversion (True 5 : False 95), both from
  `choices(..., k=1)[0]` of the same fresh generator; the inversion strings; Classic groups'
  read start, read end and comprehension start; Dialog groups' join + start and speakers (the
  release's list reversed: 50 entries, the last "\\n P1) " / "\\n P2) "); Numbered groups'
  template, item names and item ends (the release's end list reversed); Inline groups' two
  patterns."""
  assert len(official.DIALOG_SPEAKERS) == 50
  assert official.DIALOG_SPEAKERS[-1] == ("\n P1) ", "\n P2) ")
  weights = {2: {"classic": 80, "dialog": 5, "numbered_questions": 5, "inline_few_shot": 5,
                 "next_turn_dialog": 5},
             1: {"classic": 95, "dialog": 5}}
  seen = collections.Counter()
  for seed in range(12345, 12645):
    def first(pool, seed=seed):
      return random.Random(seed).choice(pool)

    text = templates.official_text_style(seed)
    items = first(official.OPTION_ITEMS)
    assert text.options.items == items
    assert text.options.labelled == (len(set(items)) == len(items))
    seen["labelled", text.options.labelled] += 1
    assert text.unanswerable == first(pools.UNANSWERABLE_OPTIONS)
    assert text.entry_separator == random.Random(seed + 1).choice(official_patterns.PLAIN)[5]
    for min_pairs in (1, 2):
      group = templates.official_group_style(seed, min_pairs, text.patterns)
      layouts = weights[min_pairs]
      assert group.layout == random.Random(seed).choices(list(layouts), list(layouts.values()),
                                                         k=1)[0]
      assert group.inverted == random.Random(seed).choices([True, False], [5, 95], k=1)[0]
      seen[group.layout] += 1
      seen["inverted", group.inverted] += 1
      assert group.inversion == (first(official.INVERTED_QA_STARTS),
                                 first(official.INVERTED_QA_ENDS),
                                 first(official.INVERTED_TEXT_STARTS))
      if group.layout == "classic":
        assert group.read == (first(official.READ_STARTS), first(official.READ_ENDS),
                              first(official.COMPREHENSION_STARTS))
      if group.layout in ("dialog", "next_turn_dialog"):
        speakers = first(list(reversed(official.DIALOG_SPEAKERS)))
        plain = group.patterns["plain"]
        assert (plain.inputs_prefix, plain.targets_prefix) == speakers, seed
        assert group.dialog_start == first(official.DIALOG_JOINS) + first(official.DIALOG_STARTS)
      if group.layout == "numbered_questions":
        assert group.numbered == first(official.NUMBERED_QUESTIONS)
        assert group.number_items == first(official.NUMBERED_ITEMS)
        assert group.number_ends == first(list(reversed(official.OPTION_ITEM_ENDS)))
      if group.layout == "inline_few_shot":
        explained, plain = group.inline
        assert (explained.template, explained.example, explained.test) == (
            first(official.INLINE_EXPLAINED))
        assert (plain.template, plain.example, plain.test) == first(official.INLINE_PLAIN)
  for key in ("dialog", "next_turn_dialog", "numbered_questions", "inline_few_shot",
              ("labelled", True), ("labelled", False), ("inverted", True)):
    assert seen[key] >= 5, (key, seen)
  assert len({templates.official_text_style(s).entry_separator for s in range(50)}) > 1


def test_official_option_shuffle_is_seeded_by_seed_times_index():
  """The option pair at index 2 of its entry is shuffled by `random.Random(seed * 2)`: its
  options are written in that order (when the drawn pattern writes them)."""
  pairs = [QAPair("Where is it?", "Here"), QAPair("Why?", "Because"),
           QAPair("Pick one?\nOptions:\n- Xylo\n- Yarrow\n- Zinnia\n- Wombat", "Yarrow")]
  written = 0
  for seed in range(12345, 12385):
    (output,) = templates.templatify([templates.Entry("Some text.", pairs)], seed, "official")
    order = ["Xylo", "Yarrow", "Zinnia", "Wombat"]
    random.Random(seed * 2).shuffle(order)
    if all(option in output.text for option in order):
      written += 1
      assert sorted(order, key=output.text.index) == order, seed
  assert written >= 20
