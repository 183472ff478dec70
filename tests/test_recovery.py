"""Format recovery of synthesized pairs (`synthesis.recovery`): the official parse rules."""

from instruct_pt.data.formats import QAPair
from instruct_pt.synthesis import recovery
from instruct_pt.synthesis import template_pools as pools

PLAIN = QAPair("Where was Marie Curie born?", "Warsaw")
COT = QAPair("How many years after her birth did she win the prize?\nLet's think step by step.",
             "She was born in 1867 and won in 1903.\n1903 - 1867 = 36.\n"
             "Therefore, the answer is 36")
MALFORMED_COT = QAPair("Why did she move?\nLet's think step by step.", "To study.")


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


def test_recover_drops_an_empty_rationale_or_answer():
  """A rationale that is only the period the rule strips is empty, and so is an answer of
  whitespace: each alone drops the pair (the rule needs both non-empty)."""
  cue, marker = "\nLet's think step by step.", "\nTherefore, the answer is "
  assert _recovered("How many?" + cue, " ." + marker + "4") is None
  assert _recovered("How many?" + cue, "Two and two." + marker + "  ") is None
  assert _recovered("How many?" + cue, "." + marker + " ") is None


def test_modes_of_recovered_pairs():
  """`mode` reads the options and the rationale: plain, options, cot, options_cot."""
  question = "Pick?\nOptions:\n- 3\n- 4"
  cue, marker = "\nLet's think step by step.", "\nTherefore, the answer is "
  pairs = [QAPair("Pick?", "4"), QAPair(question, "4"), QAPair("Pick?" + cue, "r" + marker + "4"),
           QAPair(question + cue, "r" + marker + "4")]
  assert [recovery.recover(p).mode for p in pairs] == list(recovery.QA_MODES)


def test_split_options_leniently():
  """The stem before the first "\\nOptions:\\n" (right-stripped only), then every line starting
  with "-" with that dash and the spaces around the option removed ("-Oslo" too); other lines
  and empty options are skipped; no option at all or no block gives None."""
  assert recovery.split_options("  Which city? \nOptions:\n- Rome\n-Oslo\n  -  Paris \nnote") == (
      "  Which city?", ["Rome", "Oslo", "Paris"])
  assert recovery.split_options("Q?\nOptions:\n- a\nOptions:\n- b") == ("Q?", ["a", "b"])
  assert recovery.split_options("Q?\nOptions:\n- \n-") == ("Q?", None)
  assert recovery.split_options(" Q? ") == (" Q? ", None)
  assert recovery.split_options("Q? Options: - a") == ("Q? Options: - a", None)


def test_is_cot_question_and_normalize():
  """The cue ends the question, surrounding whitespace aside; `normalize` lowercases, turns
  punctuation and underscores to spaces and collapses whitespace."""
  assert recovery.is_cot_question("Why?\nLet's think step by step.\n")
  assert recovery.is_cot_question("Why? Let's think step by step.")
  assert not recovery.is_cot_question("Let's think step by step. Why?")
  assert recovery.normalize("  Hello,   World!_x\n") == "hello world x"
