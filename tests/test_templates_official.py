"""Templatify in official mode against facts of the release's rules (microsoft/LMOps
`instruction_pretrain/utils/read_compre.py` and `read_compre_pt.py`), each written here by hand:
its pool sizes and pattern directions, its joint rates (measured on the release over the seeds
12345..22344, the README's `idx + 12345`), its formats and its separator rule."""

import re

import pytest

from instruct_pt.data.formats import QAPair
from instruct_pt.synthesis import template_official as official
from instruct_pt.synthesis import template_official_patterns as official_patterns
from instruct_pt.synthesis import recovery, templates

SEEDS = range(12345, 22345)  # 10,000 seeds, the release's: entry index + 12345
CONTEXT = "The Danube flows through Vienna and Budapest before reaching the Black Sea."
PLAIN = QAPair("Which sea does the Danube reach", "The Black Sea")
SECOND = QAPair("Which capital does it pass first", "Vienna")
OPTIONS = QAPair("Which city does it pass?\nOptions:\n- Vienna\n- Paris\n- Rome", "Vienna")
COT = QAPair("How many capitals are named?\nLet's think step by step.",
             "Vienna and Budapest are named.\nTherefore, the answer is two")
RATIONALE = "Vienna and Budapest are named"


@pytest.fixture(scope="module")
def text_styles():
  return {seed: templates.official_text_style(seed) for seed in SEEDS}


def test_release_pool_sizes_and_pattern_directions():
  """The release's four pools hold 79 plain, 48 options, 210 CoT and 240 options + CoT pair
  patterns. Not all go question -> answer: 10 of the 79 plain ones put the answer in the inputs
  and ask for the question, 5 drop the answer; 90 of the 210 CoT and 90 of the 240 options + CoT
  ones put the answer or the rationale in the inputs."""
  pools = {"plain": official_patterns.PLAIN, "options": official_patterns.OPTIONS,
           "cot": official_patterns.COT, "options_cot": official_patterns.OPTIONS_COT}
  assert {mode: len(pool) for mode, pool in pools.items()} == {
      "plain": 79, "options": 48, "cot": 210, "options_cot": 240}
  answers = ("{answer}", "{option_answer}")

  def inputs_of(pattern):
    return pattern[0] + pattern[1]

  def targets_of(pattern):
    return pattern[3] + pattern[4]

  reverse = [p for p in pools["plain"] if "{answer}" in inputs_of(p)
             and "{question}" in targets_of(p)]
  dropped = [p for p in pools["plain"] if not any(a in "".join(p) for a in answers)]
  assert (len(reverse), len(dropped)) == (10, 5)
  for mode in ("cot", "options_cot"):
    in_inputs = [p for p in pools[mode]
                 if any(f in inputs_of(p) for f in answers + ("{cot}",))]
    assert len(in_inputs) == 90, mode


def _group_rates(min_pairs, text_styles):
  counts = {"classic": 0, "bare_no_comprehension": 0, "inverted_classic": 0,
            "inverted_other": 0, "layouts": {}}
  for seed in SEEDS:
    group = templates.official_group_style(seed, min_pairs, text_styles[seed].patterns)
    counts["layouts"][group.layout] = counts["layouts"].get(group.layout, 0) + 1
    if group.layout != "classic":
      counts["inverted_other"] += group.inverted
      continue
    counts["classic"] += 1
    counts["inverted_classic"] += group.inverted
    read_start, _, comprehension_start = group.read
    counts["bare_no_comprehension"] += read_start == "{context}" and not comprehension_start
  return counts


@pytest.mark.parametrize("min_pairs, layouts, bare_no_comprehension, inverted_classic", [
    # The release over the 10,000 seeds: Classic 9,547 / Dialog 453; bare text with no
    # comprehension start in 772 Classic groups (8.1%); 523 inverted (5.5%, by hand 5/95: the
    # release draws layout and inversion from one number u, inverted iff u < .05, Classic iff
    # u < .95).
    (1, {"classic": 0.95, "dialog": 0.05}, 0.081, 0.055),
    # Groups whose entries all have >= 2 pairs: 8,082 Classic, 646 bare with no comprehension
    # start (8.0%), 523 inverted (6.5%; by hand 5/80).
    (2, {"classic": 0.80, "dialog": 0.05, "numbered_questions": 0.05, "inline_few_shot": 0.05,
         "next_turn_dialog": 0.05}, 0.080, 0.065),
])
def test_joint_rates_match_the_release(min_pairs, layouts, bare_no_comprehension,
                                       inverted_classic, text_styles):
  """Over 10,000 seeds, the correlated choices go together as in the release, within 1 point
  (ours, filtered, draws them independently: 25% bare with no comprehension start, and Dialog
  groups inverted too); only Classic groups are ever inverted."""
  counts = _group_rates(min_pairs, text_styles)
  for layout, share in layouts.items():
    assert abs(counts["layouts"][layout] / len(SEEDS) - share) < 0.01, counts
  assert abs(counts["bare_no_comprehension"] / counts["classic"] - bare_no_comprehension) < 0.01
  assert abs(counts["inverted_classic"] / counts["classic"] - inverted_classic) < 0.01
  assert counts["inverted_other"] == 0


def test_bare_text_without_comprehension_start_in_written_texts(text_styles):
  """The same joint rate read off the written texts of single-pair entries: a Classic text that
  starts with the raw text, then the pair's separator and the pair (no read end: the release
  blanks it when the comprehension start is empty), about 8% of the Classic texts."""
  bare = classic = 0
  for seed in SEEDS:
    group = templates.official_group_style(seed, 1, text_styles[seed].patterns)
    if group.layout != "classic" or group.inverted:
      continue
    classic += 1
    (output,) = templates.templatify([templates.Entry(CONTEXT, [PLAIN])], seed, "official")
    pattern = text_styles[seed].patterns["plain"]
    bare += output.text.startswith(CONTEXT + pattern.separator + pattern.inputs_prefix
                                   + pattern.inputs.split("{", 1)[0])
  assert abs(bare / classic - 0.081) < 0.015, (bare, classic)


ROMAN_LABEL = r"(?:^|[ \n])[\[(]?(?:i|ii|iii|I|II|III)[\])]?\.? "


def test_every_release_option_format_occurs():
  """Option item names in roman numerals (" (ii) Paris") and the bullet "\\n -" with no space
  before the option ("\\n -Paris") both occur over 10,000 seeds, in written texts."""
  roman = no_space_bullet = 0
  for seed in SEEDS:
    (output,) = templates.templatify([templates.Entry(CONTEXT, [OPTIONS])], seed, "official")
    roman += bool(re.search(ROMAN_LABEL + "(?:Vienna|Paris|Rome)", output.text))
    no_space_bullet += bool(re.search(r"\n -(?:Vienna|Paris|Rome)", output.text))
  assert roman > 100 and no_space_bullet > 20, (roman, no_space_bullet)


def test_numbered_questions_in_roman_numerals_and_with_semicolon_ends(text_styles):
  """Numbered questions occur with roman item names (" (ii) <question>") and with a ";" item
  end (the release re-uses its option item ends, reversed, for them), in the written texts.
  Never both at once: the release draws both from the same generator state, and the top bits
  that pick a roman name (the first 16 of 64 lists) pick the first of the three ends ("")."""
  kinds = set()
  for seed in SEEDS:
    group = templates.official_group_style(seed, 2, text_styles[seed].patterns)
    if group.layout != "numbered_questions":
      continue
    roman = bool(re.fullmatch(ROMAN_LABEL, group.number_items[1]))
    kinds.add((roman, group.number_ends[0]))
    (output,) = templates.templatify([templates.Entry(CONTEXT, [PLAIN, SECOND])], seed,
                                     "official")
    second = output.text.index(group.number_items[1])
    question = output.text.index("Which capital does it pass first", second)
    if group.number_ends[0] == ";":
      assert ";" + group.number_items[1] in output.text[:question]
  assert kinds == {(True, ""), (False, ""), (False, ";")}


def test_dialog_delimiters_and_shared_speaker_bullets(text_styles):
  """Dialog groups end a question with "", ";" or "." before the answer's speaker, and some
  speakers share one bullet (" - " for both); a shared bullet starts every turn of the text."""
  delimiters, shared = set(), 0
  for seed in SEEDS:
    group = templates.official_group_style(seed, 1, text_styles[seed].patterns)
    if group.layout != "dialog":
      continue
    plain = group.patterns["plain"]
    delimiters.add(plain.delimiter)
    if plain.inputs_prefix == plain.targets_prefix:
      shared += 1
      (output,) = templates.templatify([templates.Entry(CONTEXT, [PLAIN, SECOND])], seed,
                                       "official")
      assert output.text.count(plain.inputs_prefix) >= 4, (seed, output.text)
  assert delimiters == {"", ";", "."}
  assert shared >= 20


def test_inline_few_shot_switches_the_whole_pattern_when_every_pair_explains(text_styles):
  """Inline few-shot texts whose pairs all have a rationale use the explaining pattern, whose
  whole text differs (template, example and test): "Let me give you some task examples" and the
  rationale after "Here is why: "; with one pair without a rationale, the plain pattern ("Let me
  give you some QA examples") and no rationale."""
  checked = 0
  for seed in SEEDS:
    group = templates.official_group_style(seed, 2, text_styles[seed].patterns)
    if (group.layout != "inline_few_shot"
        or "Let me give you some task examples" not in group.inline[0].template):
      continue
    (explained,) = templates.templatify([templates.Entry(CONTEXT, [COT, COT])], seed,
                                        "official")
    (mixed,) = templates.templatify([templates.Entry(CONTEXT, [COT, PLAIN])], seed, "official")
    assert "Let me give you some task examples: " in explained.text
    assert "Here is why: " + RATIONALE in explained.text
    assert "Let me give you some QA examples: " in mixed.text
    assert RATIONALE not in mixed.text
    checked += 1
  assert checked >= 3


def test_pairs_are_joined_by_the_last_pairs_separator():
  """The release joins a Classic group's pairs, and follows its head, with the separator of the
  last pair's pattern (by hand, plain "\\n\\n", CoT "\\n****\\n")."""
  plain = templates.Pattern("Q: ", "{question}", "\n", "A: ", "{answer}", "\n\n")
  cot = templates.Pattern("", "{question}", " ", "", "{cot}. So {answer}.", "\n****\n")
  group = templates.GroupStyle("classic", {"plain": plain, "cot": cot},
                               read=("Text: {context}", "\n", "Answer these:"))
  p, c = recovery.recover(PLAIN), recovery.recover(COT)
  fields_p = {"question": p.question, "answer": p.answer, "cot": ""}
  fields_c = {"question": c.question, "answer": c.answer, "cot": c.cot}
  assert templates.render_entry("CTX", [(p, fields_p), (c, fields_c)], group) == (
      "Text: CTX\nAnswer these:\n****\nQ: Which sea does the Danube reach\nA: The Black Sea"
      "\n****\nHow many capitals are named? Vienna and Budapest are named. So two.")
  assert templates.render_entry("CTX", [(c, fields_c), (p, fields_p)], group) == (
      "Text: CTX\nAnswer these:\n\nHow many capitals are named? Vienna and Budapest are named. "
      "So two.\n\nQ: Which sea does the Danube reach\nA: The Black Sea")


def test_cot_separators_occur_in_texts_ending_with_a_cot_pair():
  """The CoT pools' separators "\\n--\\n", "\\n****\\n" and "\\n====\\n" (which no plain pattern
  has) reach texts whose last pair is a CoT pair: here the only one, after the head. (With two
  pairs, the one number that picks "\n====\n", the 209th of 210 CoT patterns, makes the group
  a Dialog, whose separator is "" or "\n".)"""
  seen = set()
  for seed in SEEDS:
    (output,) = templates.templatify([templates.Entry(CONTEXT, [COT])], seed, "official")
    seen.update(s for s in ("\n--\n", "\n****\n", "\n====\n") if s in output.text)
  assert seen == {"\n--\n", "\n****\n", "\n====\n"}


def test_reverse_direction_and_answer_dropping_patterns_reach_texts():
  """In official mode the answer may come before its question (answer -> question patterns)
  or be missing (the 5 answer-dropping ones), as in the release."""
  answer_first = dropped = 0
  for seed in SEEDS:
    (output,) = templates.templatify([templates.Entry(CONTEXT, [PLAIN])], seed, "official")
    text = output.text[len(CONTEXT):] if output.text.startswith(CONTEXT) else output.text
    question = text.find("Which sea does the Danube reach")
    answer = text.find("The Black Sea")
    if answer < 0:
      dropped += 1
    elif question >= 0 and answer < question:
      answer_first += 1
  # 10 and 5 of the 79 patterns; the context also names the Black Sea, so only the pair's
  # part of a text is read (inverted texts put the pairs first).
  assert 600 < answer_first < 1900 and 250 < dropped < 1000, (answer_first, dropped)


def test_dialog_speakers_stay_in_the_chains_earlier_groups(text_styles):
  """The release changes its patterns in place: when the chain's last group (written first) is a
  Dialog, an earlier Classic group of the same chain writes its pairs with the same speakers.
  Hand-derived: u in [.80, .85) makes a >= 2-pair group a Dialog and a 1-pair group Classic."""
  checked = 0
  for seed in SEEDS:
    last = templates.official_group_style(seed, 2, text_styles[seed].patterns)
    if last.layout != "dialog":
      continue
    earlier = templates.official_group_style(seed, 1, last.patterns)
    assert earlier.layout == "classic"
    first, second = templates.templatify(
        [templates.Entry("First text.", [PLAIN]),
         templates.Entry(CONTEXT, [PLAIN, SECOND], linked=False)], seed, "official")
    speaker = last.patterns["plain"].inputs_prefix
    assert earlier.patterns["plain"].inputs_prefix == speaker
    if not earlier.inverted:
      assert first.text.count(speaker) >= 1 and second.text.count(speaker) >= 2
    checked += 1
    if checked == 20:
      break
  assert checked == 20


def test_options_beyond_26_are_not_written_and_their_gold_drops_the_pair():
  """The release names at most 26 option items: a 30-option block writes 26, and a pair whose
  gold option is shuffled past them is dropped when the items are labels; with bullets the
  answer is the option's text and the pair stays. (The pair is the entry's second: the release
  shuffles pair i's options with seed * i, the same order for every first pair.)"""
  options = [f"choice{n:02d}" for n in range(30)]
  pair = QAPair("Pick one?\nOptions:\n- " + "\n- ".join(options), "choice07")
  dropped = 0
  for seed in range(12345, 13345):
    (output,) = templates.templatify([templates.Entry(CONTEXT, [PLAIN, pair])], seed,
                                     "official")
    if "Pick one" not in output.text:
      dropped += 1
      continue
    # the block hides or writes 26; a bullet answer past them is written as its text
    assert sum(option in output.text for option in options) in (0, 1, 26, 27)
  # by hand: labelled items in 64 of the 87 item-name lists, gold past 26 in 4 of 30
  # shuffles: about 98 of 1,000
  assert 50 < dropped < 150, dropped


def test_official_pools_have_the_release_shapes():
  """Read starts: 50 bare then 50 worded; comprehension starts: 84 worded then 84 empty; 87
  option item-name lists of 26 (23 bullets, 64 numbered, the release's 24 ordinal lists
  twice); 50 dialog speaker pairs (23 sharing one bullet)."""
  assert official.READ_STARTS[:50] == ("{context}",) * 50 and len(official.READ_STARTS) == 100
  assert official.COMPREHENSION_STARTS[84:] == ("",) * 84
  assert len(official.COMPREHENSION_STARTS) == 168
  assert len(official.OPTION_ITEMS) == 87 and {len(i) for i in official.OPTION_ITEMS} == {26}
  assert sum(len(set(items)) == 1 for items in official.OPTION_ITEMS) == 23
  assert len(official.DIALOG_SPEAKERS) == 50
  assert sum(asker == answerer for asker, answerer in official.DIALOG_SPEAKERS) == 23
