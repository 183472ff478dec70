"""Format recovery: the structure a synthesized pair writes in plain text (official rules).

The synthesizer marks a chain-of-thought pair by a question ending in `COT_QUESTION_MARKER`
and an answer holding `COT_ANSWER_MARKER` (rationale before it, final answer after), and
writes options as `\\nOptions:\\n- a\\n- b` after the question stem (docs/design.md s.2).
`recover` parses a pair into a `Structured` item, or drops it, exactly as the official
`parse_QA_list` does:

* CoT: a pair whose question holds the cue or whose answer holds the marker must have a
  question *ending* with the cue, a non-empty stem, and exactly one marker in the answer; the
  rationale loses one trailing period (templates add their own); rationale and final answer
  must be non-empty. Anything else drops the pair.
* Options (looked for after the CoT cue is removed): the stem must split on
  `OPTIONS_MARKER` into exactly two parts with a non-empty stem; the options are the tail
  split on `"\\n- "`, kept verbatim (an empty option too); the answer must equal an option
  (both stripped, case-sensitive) or, being none of them, one of the unanswerable strings
  (`is_unanswerable_option`); anything else drops the pair.

Categories and filters read the same markers through this module.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional, Sequence

from instruct_pt.data.formats import QAPair
from instruct_pt.synthesis import template_pools as pools

COT_QUESTION_MARKER = "\nLet's think step by step."
COT_ANSWER_MARKER = "\nTherefore, the answer is "
OPTIONS_MARKER = "\nOptions:\n- "
OPTION_SEPARATOR = "\n- "
# Kinds of pairs; each kind has its own pattern in a templatified text.
QA_MODES = ("plain", "options", "cot", "options_cot")


@dataclasses.dataclass(frozen=True)
class Structured:
  """A pair with its format recovered.

  Attributes:
    question: the question stem, without the options block or the CoT cue.
    options: the options in the synthesizer's order, or None.
    answer: the final answer (for CoT pairs the text after `COT_ANSWER_MARKER`).
    cot: the rationale of a CoT pair, or None.
  """

  question: str
  options: Optional[tuple[str, ...]]
  answer: str
  cot: Optional[str]

  @property
  def mode(self) -> str:
    """Its `QA_MODES` entry."""
    if self.options is not None:
      return "options_cot" if self.cot is not None else "options"
    return "cot" if self.cot is not None else "plain"


def recover(pair: QAPair) -> Optional[Structured]:
  """Parses the CoT and options markers of a synthesized pair (the official rules above).

  Args:
    pair: the pair as the synthesizer wrote it.

  Returns:
    The structured item, or None when the official rules drop the pair.
  """
  question, answer, cot = pair.question, pair.answer, None
  if COT_QUESTION_MARKER in question or COT_ANSWER_MARKER in answer:
    if not question.endswith(COT_QUESTION_MARKER):
      return None
    question = question[:-len(COT_QUESTION_MARKER)].strip()
    parts = answer.split(COT_ANSWER_MARKER)
    if not question or len(parts) != 2:
      return None
    cot, answer = parts[0].strip(), parts[1].strip()
    if cot.endswith("."):
      cot = cot[:-1]
    if not cot or not answer:
      return None
  options = None
  if OPTIONS_MARKER in question:
    parts = question.split(OPTIONS_MARKER)
    if len(parts) != 2 or not parts[0].strip():
      return None
    question, options = parts[0].strip(), tuple(parts[1].split(OPTION_SEPARATOR))
    matches = answer.strip() in [option.strip() for option in options]
    if not matches and not (answer not in options and is_unanswerable_option(answer)):
      return None
  return Structured(question.strip(), options, answer.strip(), cot)


def recover_all(pairs: Sequence[QAPair]) -> tuple[list[Structured], int]:
  """Recovers every pair, dropping those the official rules drop.

  Args:
    pairs: pairs of one text.

  Returns:
    The structured items and the number of pairs dropped.
  """
  items = [recover(pair) for pair in pairs]
  kept = [item for item in items if item is not None]
  return kept, len(items) - len(kept)


def is_cot_question(question: str) -> bool:
  """Whether `question` ends with the CoT cue."""
  return question.strip().endswith(COT_QUESTION_MARKER.strip())


def split_options(question: str) -> tuple[str, Optional[list[str]]]:
  """The question stem and its options (None without an options block), leniently: for
  classifying pairs, not for templates (`recover` decides what templates keep)."""
  stem, marker, tail = question.partition(OPTIONS_MARKER.rstrip("- "))
  if not marker:
    return question, None
  options = [line.strip()[1:].strip() for line in tail.split("\n")
             if line.strip().startswith("-")]
  return stem.rstrip(), [option for option in options if option] or None


def normalize(text: str) -> str:
  """Lowercase, punctuation to spaces, whitespace collapsed."""
  return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def is_unanswerable_option(answer: str) -> bool:
  """Whether `answer` is, exactly, one of the unanswerable option strings (official rule)."""
  return answer in pools.UNANSWERABLE_OPTION_SET
