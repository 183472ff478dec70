"""The demo's comparison: the measures its report leads with, and their paired estimates.

The report of `instruct_pt.demo` declares its design first (`design`), then one row per measure
of `MEASURES` (the first is the primary one) for each comparison of two arms: the per-item
gold-option margin on each reading-comprehension task and its open-minus-closed difference
(paired t clustered by passage, `CLUSTER_FIELD`), and bits per byte (paired bootstrap over
documents), all from lm-eval's per-item samples (`instruct_pt.evaluation.paired`); and
`mixed_passes`, how often an arm that mixes two sources read each.
"""

from __future__ import annotations

from typing import Any, Sequence

from instruct_pt.evaluation import paired

OPEN_BOOK, ONE_SHOT, CLOSED_BOOK, PERPLEXITY = (
    "demo_rc", "demo_rc_one_shot", "demo_rc_closed", "demo_perplexity")
# Reading-comprehension items share passages: their `paragraph` field clusters them.
CLUSTER_FIELD = "paragraph"

# The report's measures, in its order (the first is the declared primary one): name, task,
# and what the row measures.
MEASURES = (
    ("open-book, zero-shot (primary)", OPEN_BOOK, "gold-option margin"),
    ("open-book, one-shot", ONE_SHOT, "gold-option margin"),
    ("closed-book (control)", CLOSED_BOOK, "gold-option margin"),
    ("open − closed (reading)", f"{OPEN_BOOK} − {CLOSED_BOOK}", "gold-option margin"),
    ("held-out perplexity", PERPLEXITY, "bits per byte"),
)


def paired_estimates(results_a: dict[str, Any], results_b: dict[str, Any],
                     resamples: int = 2000) -> list[paired.Estimate]:
  """The paired estimates (b − a) of `MEASURES`, in order: the per-item gold-option margin
  on each reading-comprehension task (a paired t clustered by passage), its open-minus-closed
  difference per item, and bits per byte (a paired bootstrap over documents).

  Args:
    results_a: lm-eval results (with samples) of the run subtracted.
    results_b: those of the run compared.
    resamples: bootstrap resamples for bits per byte.

  Raises:
    ValueError: the runs scored different items, or a task is missing.
  """
  margins = {}
  for task in (OPEN_BOOK, ONE_SHOT, CLOSED_BOOK):
    a = paired.choice_items(results_a, task, CLUSTER_FIELD)
    b = paired.choice_items(results_b, task, CLUSTER_FIELD)
    ids = paired.paired_ids(a, b, task)
    margins[task] = ({i: b[i].margin - a[i].margin for i in ids},
                     {i: a[i].cluster for i in ids})
  estimates = [paired.paired_t(list(margins[task][0].values()), list(margins[task][1].values()),
                               task=task, metric=paired.MARGIN)
               for task in (OPEN_BOOK, ONE_SHOT, CLOSED_BOOK)]
  (open_d, clusters), (closed_d, _) = margins[OPEN_BOOK], margins[CLOSED_BOOK]
  paired.paired_ids(open_d, closed_d, f"{OPEN_BOOK} and {CLOSED_BOOK}")
  estimates.append(paired.paired_t([open_d[i] - closed_d[i] for i in open_d],
                                   [clusters[i] for i in open_d],
                                   task=MEASURES[3][1], metric=paired.MARGIN))
  a, b = (paired.rolling_documents(r, PERPLEXITY) for r in (results_a, results_b))
  ids = paired.paired_ids(a, b, PERPLEXITY)
  estimates.append(paired.paired_bootstrap_bits_per_byte([a[i] for i in ids], [b[i] for i in ids],
                                                         resamples, task=PERPLEXITY))
  return estimates


def primary_table(estimates: dict[str, list[paired.Estimate]]) -> str:
  """Markdown: one row per measure of `MEASURES`, one column pair per comparison (difference
  [95% CI] and p), and the verdict of the first comparison.

  Args:
    estimates: comparison label -> `paired_estimates`.
  """
  labels = list(estimates)
  header = ["measure", "unit"]
  for label in labels:
    header += [f"{label} [95% CI]", "p"]
  header.append(f"{labels[0]}: verdict")
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for row, (name, _, unit) in enumerate(MEASURES):
    cells = [name, unit]
    for label in labels:
      e = estimates[label][row]
      cells += [f"{e.difference:+.3f} [{e.ci_low:+.3f}, {e.ci_high:+.3f}]", paired.format_p(e.p)]
    cells.append(paired.verdict(estimates[labels[0]][row]))
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def verdict_lines(estimates: dict[str, list[paired.Estimate]]) -> str:
  """The verdict in words: the primary measure's paired test, and the A/A run on it.

  Args:
    estimates: comparison label -> `paired_estimates` (the first: Instruct − Vanilla; the
      second: the A/A run).
  """
  (label, primary), (_, aa) = [(k, v[0]) for k, v in list(estimates.items())[:2]]
  first = (f"**Primary measure, {label}: {primary.difference:+.3f} nats "
           f"[{primary.ci_low:+.3f}, {primary.ci_high:+.3f}], p {_p_clause(primary.p)} "
           f"({primary.method}, {primary.n_items} items from {primary.n_clusters} passages): "
           f"{paired.verdict(primary)}.**")
  second = (f"The A/A run differs from Vanilla PT by {aa.difference:+.3f} "
            f"[{aa.ci_low:+.3f}, {aa.ci_high:+.3f}] on the same items "
            f"({paired.verdict(aa)}): ")
  if paired.verdict(aa) == "within noise":
    second += ("the data order alone does not move the primary measure beyond the test's "
               "interval.")
  else:
    second += ("the data order alone moves the primary measure beyond the test's interval, "
               "so that interval understates the noise between training runs.")
  beyond_aa = min(abs(primary.ci_low), abs(primary.ci_high)) > abs(aa.difference)
  if paired.verdict(primary) != "within noise":
    second += (f" The primary difference's interval {'lies' if beyond_aa else 'does not lie'} "
               f"wholly beyond the A/A difference ({abs(aa.difference):.3f} nats in size).")
  return first + "\n\n" + second


def _p_clause(p: float) -> str:
  formatted = paired.format_p(p)
  return formatted if formatted.startswith("<") else "= " + formatted


def design(size_name: str) -> str:
  """The design, declared in the report before its numbers.

  Args:
    size_name: the demo's size ("full" or "quick").
  """
  return (f"Declared before the numbers: the primary measure is the per-item **gold-option "
          f"margin** (log-likelihood of the right term minus the best wrong one, in nats) on "
          f"**open-book reading comprehension, zero-shot** (`{OPEN_BOOK}`): a held-out "
          f"passage, then which term was cut from one of its sentences, four terms to choose "
          f"from. The question's wording is not in the synthesis template pool. Compared: "
          f"Instruct PT − Vanilla PT, item by item, with a paired t clustered by passage "
          f"(several items share one); verdict: beyond noise when the 95% interval excludes "
          f"0. Controls: the same questions **closed-book** (`{CLOSED_BOOK}`, no passage: "
          f"knowledge, not reading) and their open − closed difference; the **A/A run** "
          f"(Vanilla PT with another data-order seed) on the same items, to size training "
          f"noise. Secondary: one-shot (`{ONE_SHOT}`), bits per byte on the held-out "
          f"passages (paired bootstrap over documents), accuracy (McNemar, in the full "
          f"table below). Not run: \"Vanilla PT + general instructions\", which would "
          f"separate augmentation from mixing instructions in. Size `{size_name}`; the "
          f"numbers come from one run of this design.")


def mixed_passes(row_tokens: int, augmented: Sequence[int],
                 instructions: Sequence[int]) -> tuple[float, float]:
  """Estimated passes over two sources drawn 1:1 by example into `row_tokens` tokens: each
  source gets the share of the tokens that its mean example length has of the two means
  together, divided by its total tokens.

  Args:
    row_tokens: tokens read.
    augmented: tokens of each augmented text.
    instructions: tokens of each general instruction.

  Returns:
    (passes over the augmented texts, passes over the instructions); 0 for an empty source.
  """
  mean_a = sum(augmented) / len(augmented) if augmented else 0.0
  mean_i = sum(instructions) / len(instructions) if instructions else 0.0
  share = mean_a / (mean_a + mean_i) if mean_a + mean_i else 0.0
  return (row_tokens * share / sum(augmented) if augmented else 0.0,
          row_tokens * (1 - share) / sum(instructions) if instructions else 0.0)
