"""Format recovery: the structure a synthesized pair writes in plain text.

The synthesizer marks a chain-of-thought pair by a question ending in `COT_QUESTION_MARKER`
and an answer holding `COT_ANSWER_MARKER` (rationale before it, final answer after), and
writes options as `\\nOptions:\\n- a\\n- b` after the question stem (PAPER.md section 2).
`recover` parses a pair into a `Structured` item; templates render items, and categories and
filters read the same markers through this module.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional, Sequence

from instruct_pt.data.formats import QAPair
from instruct_pt.synthesis import template_pools as pools

COT_QUESTION_MARKER = "\nLet's think step by step."
COT_ANSWER_MARKER = "\nTherefore, the answer is "
OPTIONS_MARKER = "\nOptions:\n"


@dataclasses.dataclass
class Structured:
  """A pair with its format recovered.

  Attributes:
    question: the question stem, without the options block or the CoT cue.
    options: the options in the synthesizer's order, or None.
    answer: the final answer (for CoT pairs the text after `COT_ANSWER_MARKER`).
    cot: the rationale of a CoT pair, or None.
    answer_option_index: index in `options` of the answer, when it matches exactly one option.
  """

  question: str
  options: Optional[list[str]]
  answer: str
  cot: Optional[str]
  answer_option_index: Optional[int]


def recover(pair: QAPair) -> Optional[Structured]:
  """Parses the CoT and options markers of a synthesized pair.

  Args:
    pair: the pair as the synthesizer wrote it.

  Returns:
    The structured item, or None for a malformed CoT pair (a CoT question whose answer lacks
    `COT_ANSWER_MARKER`, or has an empty rationale or final answer).
  """
  question, answer, cot = pair.question.strip(), pair.answer.strip(), None
  if is_cot_question(question):
    question = question[:-len(COT_QUESTION_MARKER.strip())].rstrip()
    rationale, marker, final = pair.answer.rpartition(COT_ANSWER_MARKER)
    if not marker or not rationale.strip() or not final.strip():
      return None
    cot, answer = rationale.strip(), final.strip()
  question, options = split_options(question)
  return Structured(question, options, answer, cot, _match_option(answer, options))


def recover_all(pairs: Sequence[QAPair]) -> tuple[list[Structured], int]:
  """Recovers every pair, dropping malformed ones.

  Args:
    pairs: pairs of one text.

  Returns:
    The structured items and the number of malformed pairs dropped.
  """
  items = [recover(pair) for pair in pairs]
  kept = [item for item in items if item is not None]
  return kept, len(items) - len(kept)


def is_cot_question(question: str) -> bool:
  return ("\n" + question.strip()).endswith(COT_QUESTION_MARKER)


def split_options(question: str) -> tuple[str, Optional[list[str]]]:
  """The question stem and its `- option` lines (continuation lines join the option above)."""
  stem, marker, tail = question.partition(OPTIONS_MARKER)
  if not marker:
    return question, None
  options = []
  for line in (line.strip() for line in tail.split("\n")):
    if line.startswith("-"):
      options.append(line[1:].strip())
    elif line and options:
      options[-1] = f"{options[-1]} {line}"
  options = [option for option in options if option]
  return stem.rstrip(), options or None


def _match_option(answer: str, options: Optional[list[str]]) -> Optional[int]:
  """The index of the option equal to `answer` (case-insensitive), when options are unique."""
  if not options:
    return None
  keys = [_option_key(option) for option in options]
  if len(set(keys)) < len(keys):
    return None
  key = _option_key(answer)
  return keys.index(key) if key in keys else None


def _option_key(text: str) -> str:
  return " ".join(text.lower().split()).rstrip(".").strip()



def normalize(text: str) -> str:
  """Lowercase, punctuation to spaces, whitespace collapsed."""
  return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


_UNANSWERABLE_KEYS = frozenset(normalize(text) for text in pools.UNANSWERABLE_ANSWERS)


def is_unanswerable(text: str) -> bool:
  """Whether `text` says the question cannot be answered ("None of the above", ...)."""
  return normalize(text) in _UNANSWERABLE_KEYS
