"""Known answers for comparing evaluation results (`instruct_pt.evaluation.compare`): which
results.json a source names, the metrics read from lm-eval's results, the run labels, the
side-by-side and paired markdown tables and the bar chart. No model: hand-written results."""

import json
import os

import matplotlib
import numpy as np
import pytest
from matplotlib import image
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from instruct_pt.evaluation import compare, paired


def _results_with_samples(margins, rolling, acc):
  """A results.json dict as lm-eval writes it: a multiple-choice task whose item i has gold
  option 0 ahead of option 1 by margins[i] nats, a rolling task of (log-likelihood, bytes)
  documents, and the aggregate acc."""
  choice = [{"doc_id": i, "doc": {"paragraph": i // 2}, "target": 0, "doc_hash": f"d{i}",
             "filtered_resps": [[-1.0, False], [-1.0 - margin, False]], "filter": "none",
             "metrics": ["acc"], "acc": float(margin > 0)} for i, margin in enumerate(margins)]
  documents = [{"doc_id": i, "doc_hash": f"p{i}", "bits_per_byte": [ll, length],
                "filter": "none"} for i, (ll, length) in enumerate(rolling)]
  return {"results": {"demo_rc": {"acc,none": acc, "acc_stderr,none": 0.1},
                      "demo_perplexity": {"bits_per_byte,none": 1.0,
                                          "bits_per_byte_stderr,none": "N/A"}},
          "higher_is_better": {"demo_rc": {"acc": True},
                               "demo_perplexity": {"bits_per_byte": False}},
          "configs": {"demo_rc": {"output_type": "multiple_choice"},
                      "demo_perplexity": {"output_type": "loglikelihood_rolling"}},
          "samples": {"demo_rc": choice, "demo_perplexity": documents}}


def test_compare_adds_each_runs_paired_differences_to_the_first(tmp_path):
  """With per-item samples, compare.md holds each later run's paired differences to the
  first (margin, acc, bits per byte, clustered by `cluster_field`); without them, or on
  different items, it says why there are none and keeps the side-by-side table."""
  runs = {"A": _results_with_samples([0.5, -0.2, 1.0, 0.3], [(-80.0, 60), (-30.0, 20)], 0.75),
          # Every margin 0.1 higher; 0.2 nats more per document.
          "B": _results_with_samples([0.6, -0.1, 1.1, 0.4], [(-79.8, 60), (-29.8, 20)], 0.75),
          "C": _results_with_samples([0.5, -0.2, 1.0, 0.3], [(-80.0, 60), (-30.0, 20)], 0.75)}
  paths = []
  for label, results in runs.items():
    paths.append(tmp_path / label / "results.json")
    paths[-1].parent.mkdir()
    paths[-1].write_text(json.dumps(results))
  comparison = compare.compare([str(p) for p in paths], output_dir=str(tmp_path),
                               labels=list(runs), cluster_field="paragraph")
  assert list(comparison.differences) == ["B − A", "C − A"]
  margin, acc, bits = comparison.differences["B − A"]
  assert (margin.metric, margin.difference, margin.n_items, margin.n_clusters) == (
      "margin", pytest.approx(0.1), 4, 2)
  assert (acc.metric, acc.difference, bits.metric) == ("acc", 0.0, "bits_per_byte")
  assert bits.difference == pytest.approx(-0.4 / (80 * np.log(2)))
  table = (tmp_path / "compare.md").read_text()
  assert table == comparison.table
  assert ("\nPaired differences to A on the same items (95% CI; margin: gold-option "
          "log-probability margin in nats):\n\n| Comparison |") in table
  assert table.startswith(compare.markdown_table(comparison.labels, comparison.rows))
  assert ("| B − A | demo_rc | margin ↑ | +0.1000 [+0.1000, +0.1000] | 0.0000 | < 0.001 | "
          "4 / 2 | beyond noise (better) | cluster-robust paired t (CR1, df = 1) |") in table
  assert "| C − A | demo_perplexity | bits_per_byte ↓ | +0.0000 [+0.0000, +0.0000] |" in table
  # Without samples, and on different items.
  del runs["C"]["samples"]
  paths[2].write_text(json.dumps(runs["C"]))
  comparison = compare.compare([str(p) for p in paths], output_dir=str(tmp_path),
                               labels=list(runs))
  assert comparison.differences == {}
  assert comparison.table.endswith("No paired differences: the results of C hold no per-item "
                                   "samples (lm-eval's `samples`, which `instruct-pt evaluate` "
                                   "writes).\n")
  assert "| demo_rc | acc ↑ |" in comparison.table
  runs["B"]["samples"]["demo_rc"].pop()
  paths[1].write_text(json.dumps(runs["B"]))
  comparison = compare.compare([str(p) for p in paths[:2]], output_dir=str(tmp_path),
                               labels=["A", "B"])
  assert comparison.table.endswith("No paired differences (B − A): demo_rc: the runs scored "
                                   "different items (4 and 3, 3 in common); evaluate both on "
                                   "the same documents (same --limit).\n")


def test_paired_table_by_hand():
  """paired_table writes each estimate as a row: the difference, its CI and SE to 4 places,
  p by `paired.format_p`, items / clusters, the verdict (the CI excludes 0 and the difference
  is positive on a higher-is-better metric: better; the CI holds 0: within noise)."""
  estimate = paired.Estimate("demo_rc", "margin", 0.0213, 0.0091, 0.0031, 0.0395, 0.0234, 120,
                             30, "cluster-robust paired t (CR1, df = 29)")
  zero = paired.Estimate("demo_perplexity", "bits_per_byte", 0.0, 0.0, 0.0, 0.0, 1.0, 20, 20,
                         "paired bootstrap over documents (2000 resamples)",
                         higher_is_better=False)
  assert compare.paired_table({"Instruct PT − Vanilla PT": [estimate], "A/A": [zero]}) == (
      "| Comparison | Task | Metric | Difference [95% CI] | SE | p | Items / clusters | Verdict "
      "| Method |\n|---|---|---|---|---|---|---|---|---|\n"
      "| Instruct PT − Vanilla PT | demo_rc | margin ↑ | +0.0213 [+0.0031, +0.0395] | 0.0091 | "
      "0.023 | 120 / 30 | beyond noise (better) | cluster-robust paired t (CR1, df = 29) |\n"
      "| A/A | demo_perplexity | bits_per_byte ↓ | +0.0000 [+0.0000, +0.0000] | 0.0000 | "
      "1.000 | 20 / 20 | within noise | paired bootstrap over documents (2000 resamples) |\n")


def test_bar_chart_draws_error_bars_only_where_lm_eval_gives_a_stderr(tmp_path, monkeypatch):
  """acc has stderrs: one error bar per run and task; perplexity has none: no error bars (not
  zero-width ones)."""
  figures = []
  save = Figure.savefig
  monkeypatch.setattr(Figure, "savefig", lambda figure, *a, **k: (figures.append(figure),
                                                                   save(figure, *a, **k)))
  rows = [compare.Row("demo_rc", "acc", (0.70, 0.72), (0.05, 0.04), True),
          compare.Row("demo_rc_closed", "acc", (0.40, 0.41), (0.06, None), True),
          compare.Row("demo_perplexity", "word_perplexity", (30.0, 29.0), (None, None), False)]
  compare.bar_chart(["A", "B"], rows, str(tmp_path / "compare.png"))
  acc, perplexity = figures[0].axes
  bars = [c for c in acc.containers if isinstance(c, ErrorbarContainer)]
  # Run A: both tasks; run B: demo_rc only (no stderr for demo_rc_closed).
  assert [len(c.lines[2][0].get_segments()) for c in bars] == [2, 1]
  [segment] = bars[1].lines[2][0].get_segments()
  assert segment[:, 1].tolist() == pytest.approx([0.68, 0.76])
  assert not [c for c in perplexity.containers if isinstance(c, ErrorbarContainer)]
  assert (tmp_path / "compare.png").stat().st_size > 1000


# ---- Which results.json a source names.

def _write(path, results):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(results))
  return str(path)


def test_results_file_of_a_file_an_evaluation_and_a_run(tmp_path):
  """A file is itself; an evaluation directory holds results.json; a run directory's
  evaluations are its eval/<name>/ holding one (a directory without one is not listed)."""
  run = tmp_path / "run"
  x = _write(run / "eval" / "x" / "results.json", {})
  (run / "eval" / "y").mkdir()  # no results.json: not an evaluation
  assert compare.results_file(x) == x
  assert compare.results_file(str(run / "eval" / "x")) == x
  assert compare.results_file(str(run)) == x
  assert compare.results_file(str(run), "x") == x
  with pytest.raises(FileNotFoundError, match=rf"^{run}: no evaluation 'y' \({run}/eval/y/"
                     r"results.json does not exist; it has x\)$"):
    compare.results_file(str(run), "y")
  z = _write(run / "eval" / "z" / "results.json", {})
  with pytest.raises(FileNotFoundError, match=r"; it has x, z\)$"):
    compare.results_file(str(run), "y")
  assert compare.results_file(str(run), "z") == z
  with pytest.raises(ValueError, match=rf"^{run}: several evaluations \(x, z\); choose one "
                     r"with --name$"):
    compare.results_file(str(run))
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(FileNotFoundError, match=rf"^{empty}: no evaluation results \(run "
                     r"instruct-pt evaluate first\)$"):
    compare.results_file(str(empty))
  with pytest.raises(FileNotFoundError, match=r"; it has none\)$"):
    compare.results_file(str(empty), "x")


# ---- Metrics and labels.

def test_number_keeps_finite_numbers_only():
  """ints and floats become floats; booleans, NaN, infinities, strings and None are no
  number."""
  assert compare._number(3) == 3.0 and isinstance(compare._number(3), float)
  assert compare._number(-0.25) == -0.25
  for value in (True, False, float("nan"), float("inf"), -float("inf"), "0.5", "N/A", None):
    assert compare._number(value) is None, value


def test_metrics_reads_values_with_their_stderrs_and_filters():
  """`metric,filter` keys: "none" (or no filter) gives the bare metric name, another filter
  is named in parentheses; the stderr is `metric_stderr,filter`; lm-eval's bookkeeping
  entries, stderrs themselves and non-numbers are no metrics."""
  results = {"results": {
      "t1": {"alias": 1, "name": 2, "sample_len": 10, "sample_count": 3,
             "acc,none": 0.5, "acc_stderr,none": 0.1,
             "exact_match,strict-match": 0.25, "exact_match_stderr,strict-match": 0.05,
             "exact_match,none": 0.75,  # no stderr
             "f1": 0.5, "f1_stderr": 0.125,  # lm-eval before filters: no ",none"
             "word_perplexity,none": 12, "word_perplexity_stderr,none": "N/A",
             "text,none": "N/A", "flag,none": True, "nan,none": float("nan")},
      "t2": {"acc,none": 1.0}}}
  found = compare._metrics(results)
  assert list(found.items()) == [
      (("t1", "acc"), (0.5, 0.1)),
      (("t1", "exact_match (strict-match)"), (0.25, 0.05)),
      (("t1", "exact_match"), (0.75, None)),
      (("t1", "f1"), (0.5, 0.125)),
      (("t1", "word_perplexity"), (12.0, None)),
      (("t2", "acc"), (1.0, None))]
  assert compare._metrics({}) == {}


def test_labels_are_the_shortest_unique_names():
  """`<run>/eval/<name>/results.json`: the run directory's name; the same name in two places:
  one more directory; a file too short for that: its whole path; nothing unique: the paths."""
  a, b = "/x/runs/A/eval/demo/results.json", "/x/runs/B/eval/demo/results.json"
  assert compare._labels([a, b]) == ("A", "B")
  # ['', 'one', 'RUN', 'eval', 'demo', 'results.json']: unique from depth 5 of 6.
  assert compare._labels(["/one/RUN/eval/demo/results.json",
                          "/two/RUN/eval/demo/results.json"]) == ("one/RUN", "two/RUN")
  # ['', 'r', 'results.json'] has nothing above its last three parts: all of it.
  assert compare._labels(["/r/results.json", a]) == ("/r/results.json", "A")
  # The same evaluation twice never differs: the absolute paths.
  assert compare._labels([a, a]) == (a, a)
  assert compare._labels(["results.json", "results.json"]) == (
      os.path.abspath("results.json"),) * 2


# ---- The tables.

def test_markdown_table_by_hand():
  """Each run's value (± lm-eval's stderr where there is one) to 4 places, the direction's
  arrow, each later run minus the first (signed), and "—" where a value is missing."""
  rows = [compare.Row("demo_rc", "acc", (0.5, 0.625, None), (0.1, None, None), True),
          compare.Row("demo_ppl", "word_perplexity", (30.0, 29.5, 31.25), (None,) * 3, False),
          compare.Row("gen", "exact_match (strict-match)", (None, 0.25, 0.5),
                      (None, 0.125, 0.0), None)]
  assert compare.markdown_table(["A", "B", "C"], rows) == (
      "| Task | Metric | A | B | C | B − A | C − A |\n"
      "|---|---|---|---|---|---|---|\n"
      "| demo_rc | acc ↑ | 0.5000 ± 0.1000 | 0.6250 | — | +0.1250 | — |\n"
      "| demo_ppl | word_perplexity ↓ | 30.0000 | 29.5000 | 31.2500 | -0.5000 | +1.2500 |\n"
      "| gen | exact_match (strict-match) | — | 0.2500 ± 0.1250 | 0.5000 ± 0.0000 | — | — |\n")


def _plain(metrics, directions=None):
  """lm-eval-shaped results without samples: {task: {key: value}}, higher_is_better."""
  return {"results": metrics, "higher_is_better": directions or {}}


def test_compare_reads_runs_and_writes_the_table_beside_the_first(tmp_path):
  """Two run directories (one evaluation each): labels are the runs' names, compare.md and
  compare.png go beside the first run's results.json; rows are every metric of any run in
  order of appearance, None where a run lacks it; a direction is the last run's that gives
  one, else an earlier one's."""
  a = _write(tmp_path / "runs" / "A" / "eval" / "demo" / "results.json", _plain(
      {"t": {"acc,none": 0.5, "acc_stderr,none": 0.1, "f1,none": 0.25,
             "em,strict": 0.5}},
      {"t": {"acc": True, "f1": True, "em": False}}))
  b = _write(tmp_path / "runs" / "B" / "eval" / "demo" / "results.json", _plain(
      {"t": {"acc,none": 0.75, "em,none": 1.0}, "u": {"acc,none": 0.125}},
      {"t": {"acc": False, "em": True}}))
  c = _write(tmp_path / "runs" / "C" / "eval" / "demo" / "results.json",
             {"results": {"t": {"acc,none": 0.5}}})  # no higher_is_better at all
  # Another evaluation in each run: --name chooses.
  for run in "ABC":
    _write(tmp_path / "runs" / run / "eval" / "other" / "results.json", {})
  comparison = compare.compare([str(tmp_path / "runs" / run) for run in "ABC"], name="demo")
  assert comparison.labels == ("A", "B", "C") and comparison.sources == (a, b, c)
  # "em (strict)" takes em's direction: A's False, then B's True.
  assert comparison.rows == (
      compare.Row("t", "acc", (0.5, 0.75, 0.5), (0.1, None, None), False),
      compare.Row("t", "f1", (0.25, None, None), (None, None, None), True),
      compare.Row("t", "em (strict)", (0.5, None, None), (None, None, None), True),
      compare.Row("t", "em", (None, 1.0, None), (None, None, None), True),
      compare.Row("u", "acc", (None, 0.125, None), (None, None, None), None))
  assert comparison.results == tuple(json.loads(open(f, encoding="utf-8").read())
                                     for f in (a, b, c))
  here = os.path.dirname(a)
  assert (comparison.table_path, comparison.chart_path) == (
      os.path.join(here, "compare.md"), os.path.join(here, "compare.png"))
  assert comparison.differences == {}
  assert comparison.table == compare.markdown_table(("A", "B", "C"), comparison.rows) + (
      "\nNo paired differences: the results of A, B, C hold no per-item samples (lm-eval's "
      "`samples`, which `instruct-pt evaluate` writes).\n")
  with open(comparison.table_path, encoding="utf-8") as f:
    assert f.read() == comparison.table
  assert os.path.getsize(comparison.chart_path) > 1000
  # An output directory of its own, created; labels given.
  out = tmp_path / "new" / "out"
  again = compare.compare([a, b], output_dir=str(out), labels=["x", "y"])
  assert again.labels == ("x", "y") and again.table_path == str(out / "compare.md")
  assert (out / "compare.png").is_file()


def test_compare_reads_and_writes_utf8_whatever_the_default_encoding(tmp_path, monkeypatch):
  """results.json is UTF-8 (lm-eval writes task aliases as they are) and compare.md holds
  "↑" and "−": both are read and written as UTF-8 even where files open as ASCII by default
  (simulated: `open` without an encoding means ASCII)."""
  import builtins  # pylint: disable=import-outside-toplevel

  def ascii_by_default(file, mode="r", encoding=None, **kwargs):
    return builtins.open(file, mode, encoding=encoding or "ascii", **kwargs)

  paths = []
  for run in ("A", "B"):
    paths.append(tmp_path / run / "results.json")
    paths[-1].parent.mkdir()
    paths[-1].write_text(json.dumps(_plain({"tâche": {"acc,none": 0.5}},
                                           {"tâche": {"acc": True}}), ensure_ascii=False),
                         encoding="utf-8")
  monkeypatch.setattr(compare, "open", ascii_by_default, raising=False)
  comparison = compare.compare([str(p) for p in paths], output_dir=str(tmp_path),
                               labels=["A", "B"])
  assert comparison.rows == (compare.Row("tâche", "acc", (0.5, 0.5), (None, None), True),)
  assert (tmp_path / "compare.md").read_text(encoding="utf-8") == comparison.table
  assert "| tâche | acc ↑ | 0.5000 | 0.5000 | +0.0000 |" in comparison.table


def test_compare_refuses_bad_input(tmp_path):
  """Fewer than two runs, labels not one per run, a file that is not JSON (named with its
  line) and runs with no metric in common are refused."""
  a = _write(tmp_path / "a.json", _plain({"t": {"acc,none": 0.5}}))
  b = _write(tmp_path / "b.json", _plain({"u": {"acc,none": 0.5}}))
  with pytest.raises(ValueError, match=r"^--compare needs at least two runs, got 1$"):
    compare.compare([a])
  with pytest.raises(ValueError, match=r"^1 labels for 2 runs$"):
    compare.compare([a, a], labels=["x"])
  bad = tmp_path / "bad.json"
  bad.write_text("{\n  oops\n}")
  with pytest.raises(ValueError, match=rf"^{bad}:2: not a results.json \(Expecting property "
                     r"name enclosed in double quotes\)$"):
    compare.compare([a, str(bad)])
  with pytest.raises(ValueError, match=rf"^the results share no metric \({a}, {b}\)$"):
    compare.compare([a, b])
  # One metric in common is enough.
  c = _write(tmp_path / "c.json", _plain({"t": {"acc,none": 0.5}, "u": {"acc,none": 0.5}}))
  assert len(compare.compare([a, c], output_dir=str(tmp_path), labels=["a", "c"]).rows) == 2


def test_no_paired_differences_without_a_paired_task(tmp_path):
  """Samples of generation tasks only: compare_runs gives no estimate, and the table says
  so."""
  results = _plain({"gen": {"exact_match,none": 0.5}})
  results["configs"] = {"gen": {"output_type": "generate_until"}}
  results["samples"] = {"gen": [{"doc_id": 0, "doc_hash": "h"}]}
  a = _write(tmp_path / "a.json", results)
  comparison = compare.compare([a, a], output_dir=str(tmp_path), labels=["a", "b"])
  assert comparison.differences == {}
  assert comparison.table.endswith(
      "\nNo paired differences: the runs share no multiple-choice or loglikelihood_rolling "
      "task in their samples.\n")


# ---- The chart.

def test_bar_chart_layout_by_hand(tmp_path, monkeypatch):
  """Three runs: bars 0.8 / 3 wide centred at task i - w, i, i + w (a missing value is a NaN
  bar); one panel per metric titled with its direction, tasks as ticks, the runs in the
  legend (small); error bars black with caps of 3 points and no line through them; a figure
  of (4 + 1.2 * 2 tasks * 3 runs / 2) x (2.8 * 3 panels) inches at 100 dpi, laid out
  constrained."""
  figures = []
  save = Figure.savefig
  monkeypatch.setattr(Figure, "savefig", lambda figure, *a, **k: (figures.append(figure),
                                                                   save(figure, *a, **k)))
  rows = [compare.Row("t1", "acc", (0.5, 0.6, None), (0.1, None, None), True),
          compare.Row("t2", "acc", (0.25, 0.3, 0.4), (None, None, None), True),
          compare.Row("t1", "ppl", (9.0, 8.0, 7.0), (None, None, None), False),
          compare.Row("t1", "score", (1.0, 2.0, 3.0), (None, None, None), None)]
  path = tmp_path / "chart.png"
  # 100 dpi is the chart's own, not the settings' (here 50).
  with matplotlib.rc_context({"figure.dpi": 50, "savefig.dpi": 50}):
    compare.bar_chart(["A", "B", "C"], rows, str(path))
  [figure] = figures
  assert isinstance(figure.get_layout_engine(), ConstrainedLayoutEngine)
  assert figure.get_size_inches().tolist() == pytest.approx([7.6, 8.4])
  assert image.imread(str(path)).shape[:2] == (840, 760)
  acc, ppl, score = figure.axes
  assert [ax.get_title() for ax in figure.axes] == [
      "acc (higher is better)", "ppl (lower is better)", "score"]
  assert [t.get_text() for t in acc.get_xticklabels()] == ["t1", "t2"]
  assert acc.get_xticks().tolist() == [0, 1]
  assert [t.get_text() for t in ppl.get_xticklabels()] == ["t1"]
  assert [p.get_height() for p in score.patches] == [1.0, 2.0, 3.0]
  assert [t.get_text() for t in acc.get_legend().get_texts()] == ["A", "B", "C"]
  # matplotlib's "small": 0.833 of the default font size, 10 points.
  assert acc.get_legend().get_texts()[0].get_fontsize() == pytest.approx(8.33)
  w = 0.8 / 3
  centres = [p.get_x() + p.get_width() / 2 for p in acc.patches]
  assert centres == pytest.approx([-w, 1 - w, 0, 1, w, 1 + w])
  assert [p.get_width() for p in acc.patches] == pytest.approx([w] * 6)
  heights = [p.get_height() for p in acc.patches]
  assert heights[:4] + heights[5:] == pytest.approx([0.5, 0.25, 0.6, 0.3, 0.4])
  assert np.isnan(heights[4])  # run C lacks t1
  [bars] = [c for c in acc.containers if isinstance(c, ErrorbarContainer)]
  data_line, caps, (segments,) = bars.lines
  assert data_line is None
  np.testing.assert_allclose(segments.get_segments()[0], [[-w, 0.4], [-w, 0.6]])
  assert segments.get_colors().tolist() == [[0.0, 0.0, 0.0, 1.0]]
  assert [cap.get_markersize() for cap in caps] == [6.0, 6.0]
