"""Known answers for the report's difference verdicts (`demo_report.difference_verdicts`)."""

from __future__ import annotations

from instruct_pt import demo_report
from instruct_pt.evaluation.compare import Row


def _verdict(values, stderrs, higher_is_better=True):
  row = Row("task", "acc", tuple(values), tuple(stderrs), higher_is_better)
  [line] = demo_report.difference_verdicts(["A", "B"], [row], "A", "B")
  return line


def test_difference_verdicts_by_hand():
  # se = hypot(0.03, 0.04) = 0.05: a difference of 0.06 is z = 1.2 (noise), of -0.15 z = 3.
  assert _verdict([0.50, 0.56], [0.03, 0.04]) == (
      "- task acc: B − A = +0.0600 ± 0.0500 (|z| = 1.20): **within noise**.")
  assert _verdict([0.50, 0.35], [0.03, 0.04]) == (
      "- task acc: B − A = -0.1500 ± 0.0500 (|z| = 3.00): **beyond noise (worse)**.")
  # Lower is better (a loss): the same drop is an improvement.
  assert _verdict([0.50, 0.35], [0.03, 0.04], higher_is_better=False).endswith(
      "**beyond noise (better)**.")


def test_zero_standard_errors_give_a_verdict_not_nan():
  """Two runs identical on every item: no difference is within the (zero) noise; any
  difference is beyond it."""
  assert _verdict([0.7, 0.7], [0.0, 0.0]).endswith("(|z| = 0.00): **within noise**.")
  assert _verdict([0.7, 0.8], [0.0, 0.0]).endswith("(|z| = inf): **beyond noise (better)**.")
  assert "no noise verdict" in _verdict([0.7, 0.8], [None, 0.0])
