"""The report's comparison: the chart of paired differences (`demo_report.difference_chart`),
what it draws, and the estimates, table and verdict lines of `demo_comparison`, written out."""

from __future__ import annotations

import math

import pytest
from matplotlib.figure import Figure

from instruct_pt import demo_comparison, demo_report
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


# ---- The demo's comparison (`demo_comparison`): its estimates, tables and verdict lines.

def _two_option_samples(margins, paragraphs):
  """lm-eval-shaped samples of a 2-option task whose gold option (0) leads by each margin:
  log-likelihoods -1 and -1 - m give the margin m exactly (halves are exact in binary)."""
  return [{"doc_id": i, "doc_hash": f"h{i}", "doc": {"paragraph": p}, "target": 0,
           "filtered_resps": [[-1.0, False], [-1.0 - m, False]], "acc": m > 0}
          for i, (m, p) in enumerate(zip(margins, paragraphs))]


def _demo_results(open_book, one_shot, closed, documents, paragraphs=("p", "p", "q", "q")):
  """Results of one demo arm; the task names are written out (not taken from the module), so
  a wrong task name in `demo_comparison` cannot pass."""
  samples = {"demo_rc": _two_option_samples(open_book, paragraphs),
             "demo_rc_one_shot": _two_option_samples(one_shot, paragraphs),
             "demo_rc_closed": _two_option_samples(closed, paragraphs),
             "demo_perplexity": [{"doc_id": i, "doc_hash": f"d{i}", "bits_per_byte": [ll, n]}
                                 for i, (ll, n) in enumerate(documents)]}
  return {"samples": samples}


def test_paired_estimates_of_the_demo_by_hand():
  """Run a has margin 0.5 on every item; run b's margins give the per-item differences
  open 1, 2, 3, 6 and closed 0, 1, 0, 2 in passages p, p, q, q.

  Open: mean 3, residuals -2, -1, 0, 3, passage sums -3, 3: SE² = 2/1 · 18 / 16, SE 1.5.
  One-shot: +0.5 on every item, SE 0. Closed: mean 0.75, residuals -0.75, 0.25, -0.75, 1.25,
  sums -0.5, 0.5: SE² = 2 · 0.5 / 16, SE 0.25. Open − closed per item: 1, 1, 3, 4, mean 2.25,
  residuals -1.25, -1.25, 0.75, 1.75, sums -2.5, 2.5: SE² = 2 · 12.5 / 16, SE 1.25.
  Bits per byte: b needs ln 2 more nats per byte of both documents, exactly +1 bit per byte,
  the same in every resample (a zero-width interval)."""
  a = _demo_results([0.5] * 4, [0.5] * 4, [0.5] * 4, [(-60.0, 40), (-30.0, 20)])
  b = _demo_results([1.5, 2.5, 3.5, 6.5], [1.0] * 4, [0.5, 1.5, 0.5, 2.5],
                    [(-60.0 - 40 * math.log(2), 40), (-30.0 - 20 * math.log(2), 20)])
  open_book, one_shot, closed, reading, bits = demo_comparison.paired_estimates(a, b)
  assert [(e.task, e.metric) for e in (open_book, one_shot, closed, reading, bits)] == [
      ("demo_rc", "margin"), ("demo_rc_one_shot", "margin"), ("demo_rc_closed", "margin"),
      ("demo_rc − demo_rc_closed", "margin"), ("demo_perplexity", "bits_per_byte")]
  assert (open_book.difference, open_book.se) == (3.0, pytest.approx(1.5, rel=1e-12))
  assert (one_shot.difference, one_shot.se, one_shot.p) == (0.5, 0.0, 0.0)
  assert (closed.difference, closed.se) == (0.75, pytest.approx(0.25, rel=1e-12))
  assert (reading.difference, reading.se) == (2.25, pytest.approx(1.25, rel=1e-12))
  # Clustered by passage: 4 items, 2 clusters, a t with 1 degree of freedom.
  assert [(e.n_items, e.n_clusters) for e in (open_book, one_shot, closed, reading)] == [
      (4, 2)] * 4
  assert reading.method == "cluster-robust paired t (CR1, df = 1)"
  assert bits.difference == pytest.approx(1.0, rel=1e-12)
  assert (bits.ci_low, bits.ci_high) == (pytest.approx(1.0, rel=1e-12),) * 2
  assert not bits.higher_is_better and (bits.n_items, bits.n_clusters) == (2, 2)
  # The default is 2000 resamples; a given count reaches the bootstrap.
  assert bits.method == "paired bootstrap over documents (2000 resamples)"
  assert demo_comparison.paired_estimates(a, b, resamples=30)[4].method == (
      "paired bootstrap over documents (30 resamples)")


def test_paired_estimates_need_the_same_items_in_open_and_closed_book():
  """Open − closed pairs the two tasks' items: closed-book with one item fewer (in both runs,
  so each task alone pairs) is one error naming both tasks; documents that differ in number
  are one error naming the perplexity task."""
  a = _demo_results([0.5] * 4, [0.5] * 4, [0.5] * 3, [(-60.0, 40), (-30.0, 20)])
  with pytest.raises(ValueError, match=r"^demo_rc and demo_rc_closed: the runs scored "
                     r"different items \(4 and 3, 3 in common\)"):
    demo_comparison.paired_estimates(a, a, resamples=10)
  b = _demo_results([0.5] * 4, [0.5] * 4, [0.5] * 4, [(-60.0, 40), (-30.0, 20)])
  more = _demo_results([0.5] * 4, [0.5] * 4, [0.5] * 4, [(-60.0, 40)] * 3)
  with pytest.raises(ValueError, match=r"^demo_perplexity: the runs scored different items "
                     r"\(2 and 3, 2 in common\)"):
    demo_comparison.paired_estimates(b, more, resamples=10)


def test_paired_estimates_check_each_task_and_both_runs_passages():
  """A task whose items differ between the runs is one error naming that task; both runs'
  items are read by passage, so a run whose docs lack the `paragraph` field is an error."""
  a = _demo_results([0.5] * 4, [0.5] * 4, [0.5] * 4, [(-60.0, 40), (-30.0, 20)])
  fewer = _demo_results([0.5] * 3, [0.5] * 4, [0.5] * 4, [(-60.0, 40), (-30.0, 20)])
  with pytest.raises(ValueError, match=r"^demo_rc: the runs scored different items \(4 and 3, "
                     r"3 in common\)"):
    demo_comparison.paired_estimates(a, fewer, resamples=10)
  unclustered = _demo_results([0.5] * 4, [0.5] * 4, [0.5] * 4, [(-60.0, 40), (-30.0, 20)])
  for sample in unclustered["samples"]["demo_rc"]:
    del sample["doc"]["paragraph"]
  with pytest.raises(ValueError, match=r"^demo_rc doc_id 0: the doc has no field 'paragraph'"):
    demo_comparison.paired_estimates(a, unclustered, resamples=10)


def _est(difference, low, high, p=0.5, higher_is_better=True, method="test", items=40,
         clusters=10):
  return Estimate("task", "margin", difference, (high - low) / 4, low, high, p, items, clusters,
                  method, higher_is_better)


def test_primary_table_written_out():
  """One row per measure, in MEASURES' order, with each comparison's difference [CI] (three
  decimals, signed) and p (`format_p`), and the verdict of the first comparison only: the
  A/A column is within noise on every row, the first comparison's verdicts differ by row."""
  first = [_est(0.1234, 0.05, 0.2, p=0.0004), _est(-0.02, -0.1, 0.06, p=0.6),
           _est(-0.3, -0.5, -0.1, p=0.01), _est(0.5, 0.2, 0.8, p=0.002),
           _est(-0.01, -0.02, -0.005, p=0.0, higher_is_better=False)]
  aa = [_est(0.001, -0.01, 0.012, p=0.9)] * 5
  table = demo_comparison.primary_table({"X − Y": first, "A/A": aa})
  assert table == "\n".join([
      "| measure | unit | X − Y [95% CI] | p | A/A [95% CI] | p | X − Y: verdict |",
      "|---|---|---|---|---|---|---|",
      "| open-book, zero-shot (primary) | gold-option margin | +0.123 [+0.050, +0.200] | "
      "< 0.001 | +0.001 [-0.010, +0.012] | 0.900 | beyond noise (better) |",
      "| open-book, one-shot | gold-option margin | -0.020 [-0.100, +0.060] | 0.600 | "
      "+0.001 [-0.010, +0.012] | 0.900 | within noise |",
      "| closed-book (control) | gold-option margin | -0.300 [-0.500, -0.100] | 0.010 | "
      "+0.001 [-0.010, +0.012] | 0.900 | beyond noise (worse) |",
      "| open − closed (reading) | gold-option margin | +0.500 [+0.200, +0.800] | 0.002 | "
      "+0.001 [-0.010, +0.012] | 0.900 | beyond noise (better) |",
      "| held-out perplexity | bits per byte | -0.010 [-0.020, -0.005] | < 0.001 | "
      "+0.001 [-0.010, +0.012] | 0.900 | beyond noise (better) |"])


_PRIMARY = ("**Primary measure, Instruct PT − Vanilla PT: {} nats [{}], p {} (cluster-robust "
            "paired t (CR1, df = 9), 40 items from 10 passages): {}.**\n\n")
_AA_WITHIN = ("The A/A run differs from Vanilla PT by {} [{}] on the same items (within "
              "noise): the data order alone does not move the primary measure beyond the "
              "test's interval.")
_AA_BEYOND = ("The A/A run differs from Vanilla PT by {} [{}] on the same items ({}): the data "
              "order alone moves the primary measure beyond the test's interval, so that "
              "interval understates the noise between training runs.")


def _verdict_lines(primary, aa, *more):
  method = "cluster-robust paired t (CR1, df = 9)"
  estimates = {"Instruct PT − Vanilla PT": [_est(*primary, method=method), _est(0, 0, 0)],
               "A/A": [_est(*aa, method=method)]}
  for i, extra in enumerate(more):  # later comparisons do not enter the verdict
    estimates[f"other {i}"] = [_est(*extra)]
  return demo_comparison.verdict_lines(estimates)


def test_verdict_lines_written_out():
  """The primary measure's estimate and verdict in bold, then the A/A run's; when the primary
  difference is beyond noise, whether its interval's nearer end lies farther from 0 than the
  A/A difference's size: 0.1 > 0.05 lies beyond; 0.1 against |-0.2| does not (the nearer end
  counts, not the farther 0.5); an end exactly at the A/A size does not lie beyond it."""
  lies = (" The primary difference's interval lies wholly beyond the A/A difference "
          "({} nats in size).")
  does_not = (" The primary difference's interval does not lie wholly beyond the A/A "
              "difference ({} nats in size).")
  assert _verdict_lines((0.3, 0.1, 0.5, 0.0004), (0.05, -0.02, 0.12), (9.0, 8.0, 10.0)) == (
      _PRIMARY.format("+0.300", "+0.100, +0.500", "< 0.001", "beyond noise (better)")
      + _AA_WITHIN.format("+0.050", "-0.020, +0.120") + lies.format("0.050"))
  # A worse primary difference: the nearer end is -0.1, 0.1 in size.
  assert _verdict_lines((-0.3, -0.5, -0.1, 0.002), (0.05, -0.02, 0.12)) == (
      _PRIMARY.format("-0.300", "-0.500, -0.100", "= 0.002", "beyond noise (worse)")
      + _AA_WITHIN.format("+0.050", "-0.020, +0.120") + lies.format("0.050"))
  assert _verdict_lines((0.3, 0.1, 0.5, 0.0004), (-0.2, -0.3, -0.1)) == (
      _PRIMARY.format("+0.300", "+0.100, +0.500", "< 0.001", "beyond noise (better)")
      + _AA_BEYOND.format("-0.200", "-0.300, -0.100", "beyond noise (worse)")
      + does_not.format("0.200"))
  assert _verdict_lines((0.3, 0.1, 0.5, 0.0004), (0.1, -0.02, 0.22)).endswith(
      does_not.format("0.100"))
  # Within noise: no sentence on the A/A size.
  assert _verdict_lines((0.02, -0.01, 0.05, 0.25), (0.08, 0.04, 0.12)) == (
      _PRIMARY.format("+0.020", "-0.010, +0.050", "= 0.250", "within noise")
      + _AA_BEYOND.format("+0.080", "+0.040, +0.120", "beyond noise (better)"))


def test_design_declares_the_primary_measure_and_size():
  """The design paragraph, written out for the quick size."""
  assert demo_comparison.design("quick") == (
      "Declared before the numbers: the primary measure is the per-item **gold-option "
      "margin** (log-likelihood of the right term minus the best wrong one, in nats) on "
      "**open-book reading comprehension, zero-shot** (`demo_rc`): a held-out "
      "passage, then which term was cut from one of its sentences, four terms to choose "
      "from. The question's wording is not in the synthesis template pool. Compared: "
      "Instruct PT − Vanilla PT, item by item, with a paired t clustered by passage "
      "(several items share one); verdict: beyond noise when the 95% interval excludes "
      "0. Controls: the same questions **closed-book** (`demo_rc_closed`, no passage: "
      "knowledge, not reading) and their open − closed difference; the **A/A run** "
      "(Vanilla PT with another data-order seed) on the same items, to size training "
      "noise. Secondary: one-shot (`demo_rc_one_shot`), bits per byte on the held-out "
      "passages (paired bootstrap over documents), accuracy (McNemar, in the full "
      "table below). Not run: \"Vanilla PT + general instructions\", which would "
      "separate augmentation from mixing instructions in. Size `quick`; the "
      "numbers come from one run of this design.")


def test_mixed_passes_with_unequal_lengths_by_hand():
  """Mean lengths 200 (augmented: 100, 300) and 50 (instructions: four of 50): the augmented
  texts get 200/250 = 0.8 of 1000 tokens, 800 over their 400 tokens = 2 passes; the
  instructions 200 over their 200 = 1 pass. A source alone gets every token; an empty source
  reads nothing."""
  assert demo_comparison.mixed_passes(1000, [100, 300], [50] * 4) == pytest.approx((2.0, 1.0))
  assert demo_comparison.mixed_passes(1000, [100, 300], []) == (pytest.approx(2.5), 0.0)
  assert demo_comparison.mixed_passes(1000, [], [50] * 4) == (0.0, pytest.approx(5.0))
  assert demo_comparison.mixed_passes(1000, [], []) == (0.0, 0.0)
  # Equal means (100 and 100) split the tokens in half: 150 over 200 and 150 over 100.
  assert demo_comparison.mixed_passes(300, [100, 100], [100]) == pytest.approx((0.75, 1.5))
