"""Task categories: one of `CATEGORIES` per synthesized pair, by ordered rules.

The paper reports 49-51 task categories over 9 scenarios (PAPER.md section 3); the category
names and cue tables are in `template_pools`. Grounding (whether an answer is copied from the
text) is decided here too, since extractive categories depend on it and the quality filters
check it.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

from instruct_pt.data.formats import QAPair
from instruct_pt.synthesis import template_pools as pools
from instruct_pt.synthesis.recovery import (COT_QUESTION_MARKER, is_cot_question,
                                            is_unanswerable, normalize, split_options)
from instruct_pt.synthesis.template_pools import CATEGORIES

__all__ = ["CATEGORIES", "EXTRACTIVE_CATEGORIES", "categorize", "grounded"]

# Categories whose answers must be copied from the text (checked by `QualityFilter`).
EXTRACTIVE_CATEGORIES = ("extractive_qa", "list_extraction", "keyword_extraction")
EXTRACTIVE_SPAN_MAX_WORDS = 10  # longest span answer `categorize` tags as extractive
YES_NO_ANSWERS = frozenset({"yes", "no", "yes it is", "no it is not", "yes it does",
                            "no it does not", "true", "false"})

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_ARITHMETIC = re.compile(r"\d\s*[+*/×÷^=]\s*\d|\d\s+-\s+\d|\b(plus|minus|times|divided by"
                         r"|multiplied by)\s+\d")
_MATH_WORDS = re.compile(r"\bhow (many|much)\b|\bcalculate\b|\bcompute\b|\btotal\b|\baverage\b"
                         r"|\bpercent|\bratio\b|\bsolve\b|\bequation\b|\bcost\b|\bprice\b"
                         r"|\bwhat is\b|\bfind\b")
_COUNTING = re.compile(r"\bhow many\b")


def _compile(rules: Sequence[tuple[str, str]]) -> tuple[tuple[str, re.Pattern], ...]:
  return tuple((name, re.compile(pattern)) for name, pattern in rules)


_TASK_CUES = _compile(pools.TASK_CUES)
_REASONING_CUES = _compile(pools.REASONING_CUES)
_WH_CUES = _compile(pools.WH_CUES)


def categorize(pair: QAPair, context: str) -> str:
  """Tags a pair with exactly one of `CATEGORIES`, by the first rule that matches.

  Order: explicit task cues in the question stem (`template_pools.TASK_CUES`: code,
  translation, summarisation, ...); options present (multiple choice, with or without CoT);
  arithmetic expressions, word problems (>= 2 numbers and a math cue) and counting
  ("how many"); a CoT marker; yes/no and unanswerable answers; reasoning cues
  (`REASONING_CUES`); wh-cues (`WH_CUES`); a short answer that is a span of the context
  (extractive); else `abstractive_qa`.

  Args:
    pair: the pair as the synthesizer wrote it.
    context: the raw text the pair was made from.
  """
  is_cot = is_cot_question(pair.question)
  stem = pair.question.strip()
  if is_cot:
    stem = stem[:-len(COT_QUESTION_MARKER.strip())]
  stem, options = split_options(stem.strip())
  stem = stem.lower()
  rule = (_first_match(_TASK_CUES, stem)
          or (options and ("multiple_choice_cot" if is_cot else "multiple_choice"))
          or _numeric_category(stem)
          or (is_cot and "cot_reasoning")
          or _answer_shape_category(pair.answer)
          or _first_match(_REASONING_CUES, stem)
          or _first_match(_WH_CUES, stem))
  if rule:
    return rule
  short = len(pair.answer.split()) <= EXTRACTIVE_SPAN_MAX_WORDS
  return "extractive_qa" if short and grounded(pair.answer, context) else "abstractive_qa"


def _first_match(rules: Sequence[tuple[str, re.Pattern]], text: str) -> Optional[str]:
  return next((name for name, pattern in rules if pattern.search(text)), None)


def _numeric_category(stem: str) -> Optional[str]:
  if _ARITHMETIC.search(stem):
    return "arithmetic"
  if len(_NUMBER.findall(stem)) >= 2 and _MATH_WORDS.search(stem):
    return "math_word_problem"
  return "counting" if _COUNTING.search(stem) else None


def _answer_shape_category(answer: str) -> Optional[str]:
  if normalize(answer) in YES_NO_ANSWERS:
    return "yes_no"
  return "unanswerable" if is_unanswerable(answer) else None



def grounded(answer: str, context: str) -> bool:
  """Whether the normalised answer occurs in the normalised context on word boundaries."""
  key = normalize(answer)
  return bool(key) and f" {key} " in f" {normalize(context)} "
