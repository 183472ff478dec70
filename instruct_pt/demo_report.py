"""Pieces of an experiment report: plots (matplotlib, no display) and markdown sections.

Nothing here knows which experiment it reports: `instruct_pt.demo` composes `report.md` from
these with its own numbers.
"""

from __future__ import annotations

import os
import platform
from typing import Any, Mapping, Optional, Sequence

from instruct_pt.evaluation import paired

# The x axis of each metric's panel in `difference_chart`.
_AXIS_NAMES = {paired.MARGIN: "gold-option margin (nats)", paired.ACC: "accuracy",
               paired.BITS_PER_BYTE: "bits per byte"}


def machine() -> str:
  """One line naming this machine: OS, CPU count, the JAX backend and device kind."""
  import jax  # pylint: disable=import-outside-toplevel
  device = jax.devices()[0]
  return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, JAX "
          f"{jax.__version__} on {jax.device_count()} {device.platform} device(s) "
          f"({device.device_kind})")


def loss_chart(curves: dict[str, Sequence[tuple[int, float]]], path: str, title: str) -> None:
  """Training loss against step, one line per run, on one axis.

  Args:
    curves: run label -> (step, loss) points.
    path: the PNG to write.
    title: the chart's title.
  """
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  figure = Figure(figsize=(6, 3.6), layout="constrained")
  ax = figure.subplots()
  for label, points in curves.items():
    ax.plot([s for s, _ in points], [v for _, v in points], marker="o", markersize=3,
            label=label)
  ax.set_xlabel("step")
  ax.set_ylabel("training loss")
  ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend()
  figure.savefig(path, dpi=100)


def category_chart(counts: dict[str, int], path: str, title: str) -> None:
  """Horizontal bars of pair counts per task category, largest first.

  Args:
    counts: category -> pairs.
    path: the PNG to write.
    title: the chart's title.
  """
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
  figure = Figure(figsize=(6, 1.2 + 0.3 * max(1, len(ordered))), layout="constrained")
  ax = figure.subplots()
  ax.barh([name for name, _ in ordered][::-1], [n for _, n in ordered][::-1])
  ax.set_xlabel("pairs")
  ax.set_title(title if ordered else title + " (no pairs)")
  figure.savefig(path, dpi=100)


def difference_chart(differences: Mapping[str, Sequence[paired.Estimate]], path: str,
                     title: str) -> None:
  """A forest plot of paired differences: each as a point with its 95% CI against a zero
  line, one panel per metric (their units differ), a colour per comparison.

  Args:
    differences: a comparison's label (e.g. "Instruct PT − Vanilla PT") -> its estimates
      (`paired.compare_runs`).
    path: the PNG to write.
    title: the chart's title.

  Raises:
    ValueError: no estimates.
  """
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  found = [e for estimates in differences.values() for e in estimates]
  if not found:
    raise ValueError(f"{path}: no paired differences to chart")
  metrics = list(dict.fromkeys(e.metric for e in found))
  tasks = {m: list(dict.fromkeys(e.task for e in found if e.metric == m)) for m in metrics}
  rows = [len(tasks[m]) * len(differences) for m in metrics]
  figure = Figure(figsize=(7.2, 0.6 + sum(1.0 + 0.25 * n for n in rows)), layout="constrained")
  axes = figure.subplots(len(metrics), 1, squeeze=False,
                         height_ratios=[1.0 + 0.25 * n for n in rows])[:, 0]
  step = 0.8 / len(differences)
  for ax, metric in zip(axes, metrics):
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    for k, (label, estimates) in enumerate(differences.items()):
      chosen = [e for e in estimates if e.metric == metric]
      if not chosen:
        continue
      ys = [tasks[metric].index(e.task) + (k - (len(differences) - 1) / 2) * step
            for e in chosen]
      ax.hlines(ys, [e.ci_low for e in chosen], [e.ci_high for e in chosen], color=f"C{k}")
      ax.plot([e.difference for e in chosen], ys, "o", color=f"C{k}", label=label)
    ax.set_yticks(range(len(tasks[metric])), tasks[metric])
    ax.set_ylim(len(tasks[metric]) - 0.5, -0.5)
    higher = next(e.higher_is_better for e in found if e.metric == metric)
    ax.set_xlabel(f"difference in {_AXIS_NAMES.get(metric, metric)} "
                  f"({'right' if higher else 'left'} of 0 is better)")
    ax.grid(axis="x", alpha=0.3)
  legend = {}  # one entry per comparison, from whichever panel draws it
  for ax in axes:
    legend.update(zip(*reversed(ax.get_legend_handles_labels())))
  figure.legend(list(legend.values()), list(legend), loc="outside lower center",
                fontsize="small")
  axes[0].set_title(title)
  figure.savefig(path, dpi=100)


def sample_pairs(records: Sequence[dict], documents: dict[str, str], count: int,
                 chars: int = 400) -> str:
  """Markdown of the first `count` synthesized documents that have pairs: the source text
  (shortened) and its pairs.

  Args:
    records: synthesis output records (`source_ids`, `pairs` per source).
    documents: source id -> raw text.
    count: documents to show.
    chars: characters of source text shown.
  """
  shown = []
  for record in records:
    for source_id, pairs in zip(record["source_ids"], record["pairs"]):
      if not pairs or len(shown) == count:
        continue
      text = documents.get(source_id, "(source text not found)")
      quoted = "\n".join("> " + line for line in _shorten(text, chars).splitlines())
      listed = "\n".join(f"{i}. **Q:** {_one_line(p['question'])}  \n   **A:** "
                         f"{_one_line(p['answer'])}" for i, p in enumerate(pairs, 1))
      shown.append(f"**Source `{source_id}`:**\n\n{quoted}\n\n{listed}\n")
  return "\n".join(shown) if shown else "(no synthesized document has pairs)\n"


def _shorten(text: str, chars: int) -> str:
  return text if len(text) <= chars else text[:chars].rstrip() + " …"


def _one_line(text: str, chars: Optional[int] = 300) -> str:
  return _shorten(" ".join(text.split()), chars)


def synthesis_line(stats: dict[str, Any]) -> str:
  """One sentence of a synthesis run's `stats.json`: documents, shards, pairs kept and lost,
  augmented texts, generation speed.

  Args:
    stats: the synthesis statistics.
  """
  return (f"{stats['documents']} documents in {stats['shards']} shards "
          f"({stats['post_processing']} post-processing): {stats.get('pairs', 0)} pairs kept, "
          f"{stats.get('malformed_pairs', 0)} malformed, "
          f"{stats.get('documents_without_pairs', 0)} documents without pairs, "
          f"{stats.get('texts', 0)} instruction-augmented texts, "
          f"{stats['tokens_per_second']:.0f} generated tokens/s.")


def train_settings(run: Any) -> str:
  """One line of a training run's settings: steps x rows x tokens, optimizer, data seed.

  Args:
    run: a `config.TrainRun`.
  """
  t, o = run.train, run.optimizer
  return (f"{t.num_steps} steps x {t.batch_size} rows x {t.seq_len} tokens = "
          f"{t.num_steps * t.batch_size * t.seq_len:,} tokens, AdamW lr {o.learning_rate:g} "
          f"({o.schedule}, {o.warmup_steps} warm-up steps), data seed {t.seed}")
