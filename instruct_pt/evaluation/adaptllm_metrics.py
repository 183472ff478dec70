"""The AdaptLLM domain tasks' metrics, as the official evaluation defines them.

The official code (microsoft/LMOps `adaptllm/src/utils/metric.py` and `qa_utils.py`) scores
the pre-templated tasks of `AdaptLLM/{medicine,finance,law}-tasks` with scikit-learn's F1
scores, nereval's entity F1 and a number matcher. These are the same rules, written without
those packages (scikit-learn semantics: the labels are the union of gold and predicted ones,
a label with no predictions or no gold items has F1 0). Scores are fractions in [0, 1]; the
paper prints them times 100.

* `micro_f1`: ChemProt, RCT (single-label, so it equals accuracy), and SCOTUS, CaseHOLD.
* `macro_f1`: SCOTUS, CaseHOLD (the unweighted mean of per-label F1).
* `weighted_f1`: FPB, FiQA SA (per-label F1 weighted by gold support).
* `headline_f1`: Headline, the weighted F1 of each of its 9 questions (`class_id`),
  averaged over the questions.
* `ner_f1`: NER, per entry: entities parsed as `word (TYPE)`, scored by nereval's rules;
  averaged over entries.
* `convfinqa_match`: ConvFinQA, the gold answer's first number against every number of the
  prediction's first line, within 0.01.
* `multi_label_hit`: UNFAIR_ToS, the prediction is one of the gold labels.
"""

from __future__ import annotations

import ast
import collections
import math
import re
from typing import Hashable, Optional, Sequence

import numpy as np

# A name (one run of non-space characters) then its entity type in parentheses.
_NER_PATTERN = re.compile(r"([^\s]+[\s]+)(\([^\s]+\))", re.IGNORECASE)
# A number as the official matcher finds it: sign, digits with thousands commas, decimals,
# exponent, and trailing percent signs.
_NUMBER_PATTERN = re.compile(r"[-+]?[.]?[\d]+(?:,\d\d\d)*[\.]?\d*(?:[eE][-+]?\d+)?[%]*")
CONVFINQA_TOLERANCE = 1e-2
HEADLINE_QUESTIONS = 9


def _per_label_f1(golds: Sequence[Hashable], preds: Sequence[Hashable]
                  ) -> dict[Hashable, tuple[float, int]]:
  """Each label of gold or prediction: its F1 and its gold support."""
  if len(golds) != len(preds):
    raise ValueError(f"{len(golds)} gold labels but {len(preds)} predictions")
  true_positive = collections.Counter(g for g, p in zip(golds, preds) if g == p)
  gold_count = collections.Counter(golds)
  pred_count = collections.Counter(preds)
  scores = {}
  for label in set(gold_count) | set(pred_count):
    denominator = gold_count[label] + pred_count[label]
    scores[label] = (2 * true_positive[label] / denominator if denominator else 0.0,
                     gold_count[label])
  return scores


def weighted_f1(golds: Sequence[Hashable], preds: Sequence[Hashable]) -> float:
  """Per-label F1 averaged with each label's gold count as its weight.

  Args:
    golds: the gold label of each item.
    preds: the predicted label of each item.
  """
  scores = _per_label_f1(golds, preds)
  support = sum(count for _, count in scores.values())
  return sum(f1 * count for f1, count in scores.values()) / support if support else 0.0


def macro_f1(golds: Sequence[Hashable], preds: Sequence[Hashable]) -> float:
  """The unweighted mean of per-label F1 over the labels of gold and prediction.

  Args:
    golds: the gold label of each item.
    preds: the predicted label of each item.
  """
  scores = _per_label_f1(golds, preds)
  return sum(f1 for f1, _ in scores.values()) / len(scores) if scores else 0.0


def micro_f1(golds: Sequence[Hashable], preds: Sequence[Hashable]) -> float:
  """F1 of the pooled counts; with one label per item it is the accuracy.

  Args:
    golds: the gold label of each item.
    preds: the predicted label of each item.
  """
  if len(golds) != len(preds):
    raise ValueError(f"{len(golds)} gold labels but {len(preds)} predictions")
  return sum(g == p for g, p in zip(golds, preds)) / len(golds) if golds else 0.0


def headline_f1(items: Sequence[tuple[int, Hashable, Hashable]]) -> float:
  """Headline's metric: the weighted F1 of each question, averaged over the questions.

  The official code divides by its 9 questions and fails when one has no items; here the
  mean is over the questions present (the same number on the full test set).

  Args:
    items: (question `class_id`, gold, prediction) per item.
  """
  by_question = collections.defaultdict(lambda: ([], []))
  for question, gold, pred in items:
    by_question[question][0].append(gold)
    by_question[question][1].append(pred)
  if not by_question:
    return 0.0
  return sum(weighted_f1(g, p) for g, p in by_question.values()) / len(by_question)


def parse_entities(text: str) -> list[tuple[str, str]]:
  """The (name, type) entities of `text` written `word (TYPE)`, first occurrence each.

  Only the word just before the parenthesis is the name ("Bank of America (ORG)" gives
  ("America", "ORG")), and the whitespace character before the parenthesis is dropped, as
  the official parser does.

  Args:
    text: a gold answer or a generation.
  """
  entities = []
  for name, kind in _NER_PATTERN.findall(text):
    entity = (name[:-1], kind[1:-1])
    if entity not in entities:
      entities.append(entity)
  return entities


def ner_f1(gold_text: str, pred_text: str) -> float:
  """nereval's F1 of one entry's predicted entities against its gold ones.

  Each gold entity is compared with the predictions in order until the first one with the
  same name or the same type (every official entity starts at offset 0, so any two non-empty
  names overlap): a same name counts one correct, a same type one more. Precision is
  correct / (2 × predicted), recall correct / (2 × gold); an entry with no gold or no
  predicted entities scores 0.

  Args:
    gold_text: the gold answer.
    pred_text: the generation.
  """
  gold, pred = parse_entities(gold_text), parse_entities(pred_text)
  correct = 0
  for gold_name, gold_type in gold:
    for pred_name, pred_type in pred:
      same_name = gold_name == pred_name
      same_type = gold_type == pred_type and bool(gold_name) and bool(pred_name)
      correct += same_name + same_type
      if same_name or same_type:
        break
  precision = correct / (2 * len(pred)) if pred else 0.0
  recall = correct / (2 * len(gold)) if gold else 0.0
  return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _number_value(literal: str) -> float:
  """A matched number's value as the official code computes it: commas dropped, each `%`
  a division by 100, and infinity for what Python does not read as a number (`007`)."""
  body = literal.rstrip("%").replace(",", "")
  try:
    value = ast.literal_eval(body)
  except (SyntaxError, ValueError):
    return math.inf
  for _ in range(len(literal) - len(literal.rstrip("%"))):
    value /= 100
  return value


def first_line_numbers(text: str) -> list[float]:
  """The numbers of the first line of `text`, in order.

  Args:
    text: a gold answer or a generation.
  """
  return [_number_value(m) for m in _NUMBER_PATTERN.findall(text.split("\n")[0].strip())]


def convfinqa_match(gold_text: str, pred_text: str) -> bool:
  """Whether any number of the prediction is within 0.01 of the gold answer's first number.

  Args:
    gold_text: the gold answer.
    pred_text: the generation.
  """
  gold, pred = first_line_numbers(gold_text), first_line_numbers(pred_text)
  return bool(gold) and any(math.isclose(p, gold[0], abs_tol=CONVFINQA_TOLERANCE)
                            for p in pred)


def multi_label_hit(golds: int | Sequence[int], pred: int) -> bool:
  """Whether `pred` is one of the gold labels (UNFAIR_ToS's simplified accuracy).

  Args:
    golds: the gold label, or the list of gold labels.
    pred: the predicted label.
  """
  return pred in (golds if isinstance(golds, (list, tuple)) else [golds])


def mean_token_choice(loglikelihoods: Sequence[float], token_counts: Sequence[int]) -> int:
  """The option with the highest log-likelihood per token of its continuation (the official
  choice: the lowest mean token loss), the first on ties.

  Args:
    loglikelihoods: each option's summed log-likelihood.
    token_counts: each option's continuation length in tokens.

  Raises:
    ValueError: the lengths differ, or an option has no token.
  """
  if len(loglikelihoods) != len(token_counts):
    raise ValueError(f"{len(loglikelihoods)} log-likelihoods but {len(token_counts)} token "
                     f"counts")
  if min(token_counts, default=1) < 1:
    raise ValueError(f"an option has no continuation token: {list(token_counts)}")
  means = [ll / n for ll, n in zip(loglikelihoods, token_counts)]
  return max(range(len(means)), key=lambda i: (means[i], -i))


def bootstrap_stderr(aggregate, items: Sequence, resamples: int = 1000,
                     seed: int = 0) -> Optional[float]:
  """The standard deviation of `aggregate` over resamples of `items` with replacement.

  Args:
    aggregate: a corpus metric, list of items -> float.
    items: the per-item values it aggregates.
    resamples: bootstrap resamples.
    seed: the resampling seed.

  Returns:
    The standard error, or None with fewer than 2 items.
  """
  if len(items) < 2:
    return None
  rng = np.random.default_rng(seed)
  values = [aggregate([items[i] for i in rng.integers(0, len(items), len(items))])
            for _ in range(resamples)]
  return float(np.std(values, ddof=1))
