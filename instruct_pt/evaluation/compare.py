"""Several runs' evaluation results side by side (the paper's "Vanilla PT vs Instruct PT").

`compare` reads lm-eval's `results.json` of each run (a run directory's `eval/<name>/`, or the
file itself) and makes one table: every task's metrics for each run with lm-eval's stderr,
and each run's difference to the first; `compare.md` holds it and `compare.png` draws it as
bars with stderr error bars (one panel per metric). When the results hold lm-eval's per-item
samples, `compare.md` adds each run's paired differences to the first on the same items, with
their 95% CIs and noise verdicts (`paired`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Mapping, Optional, Sequence

from instruct_pt import run_dir
from instruct_pt.evaluation import paired, runner

TABLE_FILE = "compare.md"
CHART_FILE = "compare.png"
# Per-task entries of lm-eval's results that are not metrics.
_NOT_METRICS = ("alias", "name", "sample_len", "sample_count")


@dataclasses.dataclass(frozen=True)
class Row:
  """One metric of one task across the runs.

  Attributes:
    task: the task name.
    metric: the metric (with lm-eval's filter when it is not "none").
    values: one per run (None where the run lacks it).
    stderrs: lm-eval's standard errors (None where it gives none, e.g. perplexities).
    higher_is_better: the metric's direction, when lm-eval records one.
  """

  task: str
  metric: str
  values: tuple[Optional[float], ...]
  stderrs: tuple[Optional[float], ...]
  higher_is_better: Optional[bool]


@dataclasses.dataclass(frozen=True)
class Comparison:
  """The side-by-side table.

  Attributes:
    labels: one per run.
    sources: the results file of each run.
    rows: the metrics.
    table: the markdown table (with the paired differences, or why there are none).
    table_path: where it was written.
    chart_path: the bar chart.
    differences: "<run> − <first run>" -> that run's paired estimates against the first
      (`paired.compare_runs`); empty when they could not be computed (the table says why).
    results: each run's loaded results.json, in `labels`' order (for callers that compute
      more from the samples without reading the files again).
  """

  labels: tuple[str, ...]
  sources: tuple[str, ...]
  rows: tuple[Row, ...]
  table: str
  table_path: str
  chart_path: str
  differences: dict[str, tuple[paired.Estimate, ...]] = dataclasses.field(
      default_factory=dict)
  results: tuple[dict[str, Any], ...] = ()


def results_file(source: str, name: Optional[str] = None) -> str:
  """The `results.json` a source names.

  Args:
    source: a results.json file, an evaluation's directory, or a run directory.
    name: the evaluation of a run directory (`eval/<name>`); None when it has just one.

  Raises:
    FileNotFoundError / ValueError: nothing there, or several evaluations and no `name`;
      the message names what there is.
  """
  if os.path.isfile(source):
    return source
  if os.path.isfile(os.path.join(source, runner.RESULTS_FILE)):
    return os.path.join(source, runner.RESULTS_FILE)
  run = run_dir.RunDir(source)
  names = [n for n in run.eval_names() if (run.eval_dir(n) / runner.RESULTS_FILE).exists()]
  if name is not None:
    path = str(run.eval_dir(name) / runner.RESULTS_FILE)
    if not os.path.isfile(path):
      raise FileNotFoundError(f"{source}: no evaluation {name!r} ({path} does not exist; it "
                              f"has {', '.join(names) or 'none'})")
    return path
  if not names:
    raise FileNotFoundError(f"{source}: no evaluation results (run instruct-pt evaluate "
                            f"first)")
  if len(names) > 1:
    raise ValueError(f"{source}: several evaluations ({', '.join(names)}); choose one with "
                     f"--name")
  return str(run.eval_dir(names[0]) / runner.RESULTS_FILE)


def _number(value: Any) -> Optional[float]:
  if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
    return float(value)
  return None


def _metrics(results: dict[str, Any]) -> dict[tuple[str, str], tuple[float, Optional[float]]]:
  """`(task, metric) -> (value, stderr)` of an lm-eval results dict, in its order."""
  found = {}
  for task, entries in results.get("results", {}).items():
    for key, value in entries.items():
      metric, _, filter_name = key.partition(",")
      if metric in _NOT_METRICS or metric.endswith("_stderr") or _number(value) is None:
        continue
      label = metric if filter_name in ("", "none") else f"{metric} ({filter_name})"
      stderr = entries.get(f"{metric}_stderr,{filter_name}" if filter_name else
                           f"{metric}_stderr")
      found[(task, label)] = (_number(value), _number(stderr))
  return found


def _labels(files: Sequence[str]) -> tuple[str, ...]:
  """Short unique names: the run directory's name, else more of the path."""
  parts = [os.path.abspath(f).split(os.sep) for f in files]
  for depth in range(4, max(len(p) for p in parts) + 1):
    labels = tuple(os.sep.join(p[-depth:-3] or p[-depth:]) for p in parts)
    if len(set(labels)) == len(labels):
      return labels
  return tuple(os.path.abspath(f) for f in files)


def compare(sources: Sequence[str], name: Optional[str] = None,
            output_dir: Optional[str] = None,
            labels: Optional[Sequence[str]] = None,
            cluster_field: Optional[str] = None) -> Comparison:
  """Reads each source's results and writes the table and chart.

  Args:
    sources: at least two run directories, evaluation directories or results.json files.
    name: the evaluation of each run directory (`eval/<name>`).
    output_dir: where `compare.md` / `compare.png` go (default: beside the first results).
    labels: the runs' names in the table (default: their directories' names).
    cluster_field: the doc field clustering multiple-choice items in the paired
      differences (e.g. "paragraph"); None: each item its own cluster.

  Raises:
    ValueError: fewer than two sources, labels not one per source, or results with no
      metric in common.
  """
  if len(sources) < 2:
    raise ValueError(f"--compare needs at least two runs, got {len(sources)}")
  if labels is not None and len(labels) != len(sources):
    raise ValueError(f"{len(labels)} labels for {len(sources)} runs")
  files = [results_file(source, name) for source in sources]
  loaded = []
  for path in files:
    with open(path, encoding="utf-8") as f:
      try:
        loaded.append(json.load(f))
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not a results.json ({e.msg})") from e
  metrics = [_metrics(results) for results in loaded]
  keys = list(dict.fromkeys(key for m in metrics for key in m))
  if not any(all(key in m for m in metrics) for key in keys):
    raise ValueError(f"the results share no metric ({', '.join(files)})")
  rows = []
  for task, metric in keys:
    direction = None
    for results in loaded:
      direction = results.get("higher_is_better", {}).get(task, {}).get(
          metric.split(" ")[0], direction)
    pairs = [m.get((task, metric), (None, None)) for m in metrics]
    rows.append(Row(task, metric, tuple(v for v, _ in pairs), tuple(s for _, s in pairs),
                    direction))
  labels = tuple(labels) if labels is not None else _labels(files)
  output_dir = output_dir or os.path.dirname(os.path.abspath(files[0]))
  os.makedirs(output_dir, exist_ok=True)
  estimates, note = _paired(labels, loaded, cluster_field)
  table = markdown_table(labels, rows) + "\n" + note
  table_path = os.path.join(output_dir, TABLE_FILE)
  with open(table_path, "w", encoding="utf-8") as f:
    f.write(table)
  chart_path = os.path.join(output_dir, CHART_FILE)
  bar_chart(labels, rows, chart_path)
  return Comparison(labels, tuple(files), tuple(rows), table, table_path, chart_path,
                    estimates, tuple(loaded))


def _paired(labels: Sequence[str], loaded: Sequence[dict[str, Any]],
            cluster_field: Optional[str]) -> tuple[dict[str, tuple[paired.Estimate, ...]], str]:
  """Each later run's paired estimates against the first, and their markdown (or why there
  are none: no samples, different items, too few items)."""
  missing = [label for label, results in zip(labels, loaded) if not results.get("samples")]
  if missing:
    return {}, (f"No paired differences: the results of {', '.join(missing)} hold no per-item "
                f"samples (lm-eval's `samples`, which `instruct-pt evaluate` writes).\n")
  estimates = {}
  for label, results in zip(labels[1:], loaded[1:]):
    name = f"{label} − {labels[0]}"
    try:
      estimates[name] = tuple(paired.compare_runs(loaded[0], results, cluster_field))
    except ValueError as e:
      return {}, f"No paired differences ({name}): {e}.\n"
  if not any(estimates.values()):
    return {}, ("No paired differences: the runs share no multiple-choice or "
                "loglikelihood_rolling task in their samples.\n")
  return estimates, (f"Paired differences to {labels[0]} on the same items (95% CI; margin: "
                     f"gold-option log-probability margin in nats):\n\n"
                     + paired_table(estimates))


def _cell(value: Optional[float], stderr: Optional[float]) -> str:
  if value is None:
    return "—"
  return f"{value:.4f}" + ("" if stderr is None else f" ± {stderr:.4f}")


def markdown_table(labels: Sequence[str], rows: Sequence[Row]) -> str:
  """Task | metric | each run (± stderr) | each later run minus the first."""
  header = ["Task", "Metric", *labels, *[f"{label} − {labels[0]}" for label in labels[1:]]]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for row in rows:
    arrow = {True: " ↑", False: " ↓"}.get(row.higher_is_better, "")
    cells = [row.task, row.metric + arrow]
    cells += [_cell(v, s) for v, s in zip(row.values, row.stderrs)]
    first = row.values[0]
    cells += ["—" if first is None or v is None else f"{v - first:+.4f}"
              for v in row.values[1:]]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def paired_table(estimates: Mapping[str, Sequence[paired.Estimate]]) -> str:
  """Markdown: one row per paired estimate, with its 95% CI, SE, p, items / clusters and
  noise verdict (`paired.verdict`).

  Args:
    estimates: a comparison's label (e.g. "Instruct PT − Vanilla PT") -> its estimates.
  """
  header = ["Comparison", "Task", "Metric", "Difference [95% CI]", "SE", "p",
            "Items / clusters", "Verdict", "Method"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for label, found in estimates.items():
    for e in found:
      arrow = " ↑" if e.higher_is_better else " ↓"
      p = paired.format_p(e.p)
      cells = [label, e.task, e.metric + arrow,
               f"{e.difference:+.4f} [{e.ci_low:+.4f}, {e.ci_high:+.4f}]", f"{e.se:.4f}", p,
               f"{e.n_items} / {e.n_clusters}", paired.verdict(e), e.method]
      lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def bar_chart(labels: Sequence[str], rows: Sequence[Row], path: str) -> None:
  """One panel per metric: a group of bars per task, one bar per run, stderr error bars
  where lm-eval gives a stderr (none elsewhere, e.g. perplexities)."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  panels = list(dict.fromkeys(row.metric for row in rows))
  figure = Figure(figsize=(4 + 1.2 * max(len([r for r in rows if r.metric == m])
                                         for m in panels) * len(labels) / 2,
                           2.8 * len(panels)), layout="constrained")
  axes = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
  width = 0.8 / len(labels)
  for ax, metric in zip(axes, panels):
    chosen = [row for row in rows if row.metric == metric]
    for k, label in enumerate(labels):
      values = [row.values[k] if row.values[k] is not None else math.nan for row in chosen]
      positions = [i + (k - (len(labels) - 1) / 2) * width for i in range(len(chosen))]
      ax.bar(positions, values, width, label=label)
      errors = [(x, v, row.stderrs[k]) for x, v, row in zip(positions, values, chosen)
                if row.stderrs[k] is not None]
      if errors:
        ax.errorbar(*zip(*errors), fmt="none", ecolor="black", capsize=3)
    ax.set_xticks(range(len(chosen)), [row.task for row in chosen])
    direction = {True: " (higher is better)", False: " (lower is better)"}.get(
        chosen[0].higher_is_better, "")
    ax.set_title(metric + direction)
    ax.legend(fontsize="small")
  figure.savefig(path, dpi=100)
