"""Pieces of an experiment report: plots (matplotlib, no display) and markdown sections.

Nothing here knows which experiment it reports: `instruct_pt.demo` composes `report.md` from
these with its own numbers.
"""

from __future__ import annotations

import math
import os
import platform
from typing import Optional, Sequence

from instruct_pt.evaluation.compare import Row

# |difference| / standard error of the difference below which a difference is called noise.
NOISE_Z = 2.0


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


def difference_verdicts(labels: Sequence[str], rows: Sequence[Row], first: str,
                        second: str) -> list[str]:
  """One markdown bullet per metric: `second − first`, its standard error and whether it is
  within noise.

  The standard error of the difference is sqrt(se1² + se2²) from lm-eval's per-run
  stderrs: it treats the runs as independent samples, which overstates the noise of runs
  scored on the same items (a paired test would be sharper).

  Args:
    labels: the comparison's run labels.
    rows: its metrics.
    first: the label subtracted.
    second: the label compared.
  """
  a, b = labels.index(first), labels.index(second)
  lines = []
  for row in rows:
    x, y = row.values[a], row.values[b]
    if x is None or y is None:
      continue
    difference = y - x
    name = f"{row.task} {row.metric}"
    se_x, se_y = row.stderrs[a], row.stderrs[b]
    if se_x is None or se_y is None:
      lines.append(f"- {name}: {second} − {first} = {difference:+.4f}; lm-eval gives no "
                   f"standard error for this metric, so no noise verdict.")
      continue
    se = math.hypot(se_x, se_y)
    if se > 0:
      z = difference / se
    else:  # no noise at all: any difference is beyond it, none is within it
      z = math.inf if difference else 0.0
    verdict = ("within noise" if abs(z) < NOISE_Z else
               f"beyond noise ({'better' if _better(row, difference) else 'worse'})")
    lines.append(f"- {name}: {second} − {first} = {difference:+.4f} ± {se:.4f} "
                 f"(|z| = {abs(z):.2f}): **{verdict}**.")
  return lines


def _better(row: Row, difference: float) -> bool:
  return (difference > 0) == (row.higher_is_better is not False)


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
