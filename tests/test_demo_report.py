"""The report's chart of paired differences (`demo_report.difference_chart`): what it draws."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from instruct_pt import demo_report
from instruct_pt.evaluation.paired import Estimate


def _estimate(task, metric, difference, low, high, higher_is_better=True):
  return Estimate(task, metric, difference, (high - low) / 4, low, high, 0.01, 40, 10, "test",
                  higher_is_better)


@pytest.fixture()
def drawn(monkeypatch):
  """The figures `savefig` writes, kept for inspection."""
  figures = []
  save = Figure.savefig

  def keep(figure, *args, **kwargs):
    figures.append(figure)
    return save(figure, *args, **kwargs)

  monkeypatch.setattr(Figure, "savefig", keep)
  return figures


def test_difference_chart_draws_each_difference_with_its_interval_against_zero(tmp_path,
                                                                              drawn):
  """One panel per metric; each estimate a point at its difference and a line over its 95%
  CI, a colour per comparison; the x axis spans the intervals and 0, so a 0.02 difference
  with a CI of [0.01, 0.03] stands clear of the zero line."""
  differences = {
      "Instruct PT − Vanilla PT": [_estimate("demo_rc", "margin", 0.02, 0.01, 0.03),
                                   _estimate("demo_rc", "acc", 0.05, -0.02, 0.12),
                                   _estimate("demo_rc_closed", "margin", -0.01, -0.04, 0.02),
                                   _estimate("demo_perplexity", "bits_per_byte", -0.003,
                                             -0.005, -0.001, higher_is_better=False)],
      "A/A": [_estimate("demo_rc", "margin", 0.001, -0.01, 0.012)],
  }
  path = tmp_path / "differences.png"
  demo_report.difference_chart(differences, str(path), "paired differences")
  assert path.stat().st_size > 1000
  [figure] = drawn
  margin, acc, bits = figure.axes
  assert [t.get_text() for t in margin.get_yticklabels()] == ["demo_rc", "demo_rc_closed"]
  assert margin.get_title() == "paired differences"
  assert "margin" in margin.get_xlabel() and "right of 0 is better" in margin.get_xlabel()
  assert "left of 0 is better" in bits.get_xlabel()
  # The points: Instruct PT's two margins, then A/A's, each at its difference.
  points = [line for line in margin.get_lines() if line.get_marker() == "o"]
  assert [list(p.get_xdata()) for p in points] == [[0.02, -0.01], [0.001]]
  assert [p.get_label() for p in points] == ["Instruct PT − Vanilla PT", "A/A"]
  # The intervals, and the zero line.
  intervals = [segment[:, 0].tolist() for collection in margin.collections
               for segment in collection.get_segments()]
  assert intervals == [[0.01, 0.03], [-0.04, 0.02], [-0.01, 0.012]]
  assert any(list(line.get_xdata()) == [0, 0] for line in margin.get_lines())
  low, high = margin.get_xlim()
  assert low <= -0.04 and 0.03 <= high and high - low < 0.2
  assert bits.get_xlim()[0] <= -0.005 and bits.get_xlim()[1] >= 0
  assert [list(p.get_xdata()) for p in acc.get_lines() if p.get_marker() == "o"] == [[0.05]]


def test_difference_chart_without_estimates_says_so(tmp_path):
  with pytest.raises(ValueError, match="no paired differences to chart"):
    demo_report.difference_chart({"A/A": []}, str(tmp_path / "x.png"), "t")
