"""Paired differences between two evaluations scored on the same items, with their noise.

Two runs scored on the same documents differ item by item much less than two independent
samples do, so their difference has a much smaller standard error than lm-eval's per-run
stderrs suggest (sqrt(se_a² + se_b²) treats the runs as independent). This module reads
lm-eval's per-item `samples` (`simple_evaluate(log_samples=True)`, which `instruct-pt
evaluate` keeps in results.json) and tests the differences item by item:

- multiple choice: the gold-option log-probability margin (primary: a paired t, clustered
  when several items come from one source) and accuracy (secondary: McNemar's exact test);
- loglikelihood_rolling: bits per byte (a paired bootstrap over documents).

Each test gives an `Estimate`: the difference (second run minus first), its standard error,
95% confidence interval and two-sided p; `verdict` says whether it is within noise.

Sample fields read: `doc_id`, `doc` (the cluster field), `doc_hash`, and for multiple choice
`target` (the gold option), `filtered_resps` ([log-likelihood, is_greedy] per option),
`metrics` (to drop mutual-information options), `acc`; for loglikelihood_rolling
`bits_per_byte` or `byte_perplexity` ([log-likelihood, bytes] of the document); the task's
`output_type` and `target_delimiter` from `configs`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Hashable, Mapping, Optional, Sequence

import numpy as np
from scipy import stats

MARGIN = "margin"
ACC = "acc"
BITS_PER_BYTE = "bits_per_byte"
MULTIPLE_CHOICE = "multiple_choice"
ROLLING = "loglikelihood_rolling"
CONFIDENCE = 0.95
# Resampled document indices held at once by the bootstrap (bounds its memory).
_BOOTSTRAP_CHUNK = 1 << 21


@dataclasses.dataclass(frozen=True)
class Estimate:
  """A paired difference (second run minus first) and its noise.

  Attributes:
    task: what is compared (the lm-eval task).
    metric: the per-item quantity (`margin`, `acc`, `bits_per_byte`, ...).
    difference: its mean difference (for bits per byte, the difference of the corpus rates).
    se: the standard error of `difference`.
    ci_low: the lower end of its 95% confidence interval.
    ci_high: the upper end.
    p: the two-sided p-value of "no difference".
    n_items: items (documents) compared.
    n_clusters: independent units the noise was estimated from (items, or their sources).
    method: the test, in words.
    higher_is_better: whether a positive difference favours the second run.
  """

  task: str
  metric: str
  difference: float
  se: float
  ci_low: float
  ci_high: float
  p: float
  n_items: int
  n_clusters: int
  method: str
  higher_is_better: bool = True


@dataclasses.dataclass(frozen=True)
class ChoiceItem:
  """One multiple-choice item as lm-eval scored it.

  Attributes:
    loglikelihoods: the log-likelihood of each option.
    gold: the index of the gold option.
    margin: the gold option's log-likelihood minus the largest among the other options
      (> 0 exactly when lm-eval's `acc` is 1, ties apart).
    correct: lm-eval's `acc` for the item.
    cluster: the item's cluster (a doc field's value, or the doc_id).
  """

  loglikelihoods: tuple[float, ...]
  gold: int
  margin: float
  correct: bool
  cluster: Hashable


def choice_items(results: Mapping[str, Any], task: str,
                 cluster_field: Optional[str] = None) -> dict[int, ChoiceItem]:
  """Each item's scores of a multiple-choice task, by doc_id.

  Args:
    results: a loaded lm-eval results dict with `samples`.
    task: the task's name.
    cluster_field: the doc field whose value clusters items (e.g. "paragraph", for items
      made from one source); None: each item is its own cluster.

  Raises:
    ValueError: no samples for the task, an item without the cluster field, or a gold
      target that is not one of the options; one line naming the task and item.
  """
  config = results.get("configs", {}).get(task, {})
  items = {}
  for doc_id, sample in _samples(results, task).items():
    loglikelihoods = [float(response[0]) for response in sample["filtered_resps"]]
    if "acc_mutual_info" in sample.get("metrics", ()):  # the second half is unconditional
      loglikelihoods = loglikelihoods[:len(loglikelihoods) // 2]
    if len(loglikelihoods) < 2:
      raise ValueError(f"{task} doc_id {doc_id}: {len(loglikelihoods)} option(s); a margin "
                       f"needs at least 2")
    gold = _gold_index(task, doc_id, sample, config.get("target_delimiter", " "),
                       len(loglikelihoods))
    margin = loglikelihoods[gold] - max(ll for i, ll in enumerate(loglikelihoods) if i != gold)
    correct = (bool(sample["acc"]) if "acc" in sample else
               int(np.argmax(loglikelihoods)) == gold)
    if cluster_field is None:
      cluster = doc_id
    elif cluster_field in sample.get("doc", {}):
      cluster = sample["doc"][cluster_field]
    else:
      raise ValueError(f"{task} doc_id {doc_id}: the doc has no field {cluster_field!r} to "
                       f"cluster by (it has: {', '.join(sample.get('doc', {})) or 'none'})")
    items[doc_id] = ChoiceItem(tuple(loglikelihoods), gold, margin, correct, cluster)
  return items


def _gold_index(task: str, doc_id: int, sample: Mapping[str, Any], delimiter: str,
                options: int) -> int:
  """The gold option's index: lm-eval's integer target, or the option whose continuation
  is the target string (lm-eval's `choices.index(target)`)."""
  target = sample["target"]
  if isinstance(target, str):
    continuations = [argument[1] for argument in sample["arguments"][:options]]
    if delimiter + target in continuations:
      return continuations.index(delimiter + target)
  elif isinstance(target, int) and not isinstance(target, bool) and 0 <= target < options:
    return target
  raise ValueError(f"{task} doc_id {doc_id}: target {target!r} is not one of its {options} "
                   f"options (a margin needs a single gold option)")


def rolling_documents(results: Mapping[str, Any], task: str) -> dict[int, tuple[float, int]]:
  """Each document's `(log-likelihood, bytes)` of a loglikelihood_rolling task, by doc_id.

  Args:
    results: a loaded lm-eval results dict with `samples`.
    task: the task's name (it must list the metric bits_per_byte or byte_perplexity).

  Raises:
    ValueError: no samples for the task, or a sample without either metric's entry.
  """
  documents = {}
  for doc_id, sample in _samples(results, task).items():
    entry = sample.get(BITS_PER_BYTE, sample.get("byte_perplexity"))
    if entry is None:
      raise ValueError(f"{task} doc_id {doc_id}: no per-document bits_per_byte or "
                       f"byte_perplexity entry (list one of them in the task's metric_list)")
    loglikelihood, length = entry
    documents[doc_id] = (float(loglikelihood), int(length))
  return documents


def _samples(results: Mapping[str, Any], task: str) -> dict[int, dict[str, Any]]:
  """A task's samples by doc_id."""
  samples = results.get("samples")
  if not samples:
    raise ValueError(f"{task}: the results hold no per-item samples (lm-eval's log_samples)")
  if task not in samples:
    raise ValueError(f"{task}: not in the results' samples (they hold {len(samples)} tasks: "
                     f"{', '.join(samples)})")
  by_id = {}
  for sample in samples[task]:
    if sample["doc_id"] in by_id:
      raise ValueError(f"{task}: doc_id {sample['doc_id']} appears twice in the samples "
                       f"(several filters?)")
    by_id[sample["doc_id"]] = sample
  return by_id


def paired_ids(a: Mapping[int, Any], b: Mapping[int, Any], task: str) -> list[int]:
  """The doc_ids both runs scored, sorted; they must have scored the same items.

  Args:
    a: the first run's items by doc_id (`choice_items`, `rolling_documents`).
    b: the second run's.
    task: the task, for the error.

  Raises:
    ValueError: the item sets differ (e.g. different `limit`), naming the task and counts.
  """
  if a.keys() != b.keys():
    raise ValueError(f"{task}: the runs scored different items ({len(a)} and {len(b)}, "
                     f"{len(a.keys() & b.keys())} in common); evaluate both on the same "
                     f"documents (same --limit)")
  return sorted(a)


def paired_t(differences: Sequence[float], clusters: Optional[Sequence[Hashable]] = None, *,
             task: str = "", metric: str = "difference",
             higher_is_better: bool = True) -> Estimate:
  """The mean of per-item differences with a cluster-robust standard error (CR1).

  SE² = G/(G−1) · Σ_g (Σ_{i∈g} (d_i − d̄))² / n², with G clusters and n items; the t
  distribution with G − 1 degrees of freedom gives the 95% CI and the two-sided p. With every
  item its own cluster this is the ordinary paired t (`scipy.stats.ttest_rel`).

  Args:
    differences: per-item differences (second run minus first).
    clusters: each item's cluster (items from one source); None: each item its own.
    task: what is compared, for the estimate.
    metric: the differenced quantity, for the estimate.
    higher_is_better: the quantity's direction, for the estimate.

  Returns:
    The estimate. Zero noise gives a verdict, not nan: all differences 0 give difference 0
    and p = 1; a constant nonzero difference gives p = 0 and a zero-width CI.

  Raises:
    ValueError: non-finite differences, clusters not one per item, or fewer than 2 clusters.
  """
  name = f"{task} {metric}".strip()
  d = np.asarray(differences, np.float64)
  if d.ndim != 1 or not np.all(np.isfinite(d)):
    raise ValueError(f"{name}: differences must be a sequence of finite numbers")
  if clusters is None:
    codes = np.arange(len(d))
  elif len(clusters) != len(d):
    raise ValueError(f"{name}: {len(clusters)} clusters for {len(d)} differences")
  else:
    index: dict[Hashable, int] = {}
    codes = np.asarray([index.setdefault(c, len(index)) for c in clusters], np.int64)
  groups = int(codes.max()) + 1 if len(d) else 0
  if groups < 2:
    raise ValueError(f"{name}: a paired t needs at least 2 clusters, got {groups} "
                     f"({len(d)} items)")
  mean = float(d.mean())
  sums = np.bincount(codes, weights=d - mean, minlength=groups)
  se = math.sqrt(groups / (groups - 1) * float(sums @ sums)) / len(d)
  df = groups - 1
  if se > 0:
    p = float(2 * stats.t.sf(abs(mean) / se, df))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * se
  else:
    p, half = (1.0 if mean == 0 else 0.0), 0.0
  method = ("paired t" if groups == len(d) else
            f"cluster-robust paired t (CR1, df = {df})")
  return Estimate(task, metric, mean, se, mean - half, mean + half, p, len(d), groups, method,
                  higher_is_better)


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool], *,
            task: str = "") -> Estimate:
  """The accuracy difference (b − a) with McNemar's exact test on the discordant items.

  p = min(1, 2 · P(X ≤ min(n_a, n_b))) for X ~ Binomial(n_a + n_b, 1/2), with n_a the items
  only run a gets right and n_b those only b gets right. The 95% CI is the Clopper–Pearson
  interval of n_b / (n_a + n_b), scaled to the accuracy difference (it excludes 0 exactly when
  p < 0.05); the SE is the paired-proportion one, sqrt(n_a + n_b − (n_b − n_a)²/n) / n. Items
  count as independent (no clustering).

  Args:
    correct_a: per item, whether run a got it right.
    correct_b: the same items for run b.
    task: what is compared, for the estimate.

  Raises:
    ValueError: no items, or the two runs' items differ in number.
  """
  a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
  if a.shape != b.shape or a.ndim != 1 or not len(a):
    raise ValueError(f"{task} acc: McNemar needs the same items from both runs (got "
                     f"{a.size} and {b.size})")
  n = len(a)
  only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
  discordant = only_a + only_b
  difference = (only_b - only_a) / n
  se = math.sqrt(max(discordant - (only_b - only_a) ** 2 / n, 0.0)) / n
  if discordant:
    p = min(1.0, float(2 * stats.binom.cdf(min(only_a, only_b), discordant, 0.5)))
    interval = stats.binomtest(only_b, discordant).proportion_ci(CONFIDENCE, method="exact")
    low, high = ((2 * bound - 1) * discordant / n for bound in (interval.low, interval.high))
  else:
    p, low, high = 1.0, 0.0, 0.0
  return Estimate(task, ACC, difference, se, low, high, p, n, n,
                  f"McNemar exact ({only_a} vs {only_b} discordant)")


def paired_bootstrap_bits_per_byte(docs_a: Sequence[tuple[float, int]],
                                   docs_b: Sequence[tuple[float, int]], resamples: int = 2000,
                                   seed: int = 0, *, task: str = "") -> Estimate:
  """The difference in bits per byte (b − a) with a paired bootstrap over documents.

  Each arm's bits per byte is −Σ loglikelihood / (ln 2 · Σ bytes). Each resample draws
  documents with replacement, the same ones for both arms; the SE is the resampled
  differences' standard deviation, the 95% CI their percentiles, and p = min(1, 2 · the
  smaller fraction of resampled differences on either side of 0) (0 means below
  1 / resamples).

  Args:
    docs_a: per document, run a's (log-likelihood in nats, bytes).
    docs_b: the same documents, in the same order, for run b.
    resamples: bootstrap resamples.
    seed: the resampling seed (the same seed gives the same estimate).
    task: what is compared, for the estimate.

  Raises:
    ValueError: fewer than 2 documents, different documents (count or bytes), non-finite
      log-likelihoods, or fewer than 2 resamples.
  """
  a = np.asarray(docs_a, np.float64).reshape(-1, 2)
  b = np.asarray(docs_b, np.float64).reshape(-1, 2)
  name = f"{task} {BITS_PER_BYTE}".strip()
  if len(a) != len(b) or not np.array_equal(a[:, 1], b[:, 1]):
    raise ValueError(f"{name}: the runs' documents differ ({len(a)} and {len(b)} documents, "
                     f"or different byte counts)")
  if len(a) < 2 or resamples < 2 or np.sum(a[:, 1]) <= 0:
    raise ValueError(f"{name}: a bootstrap needs at least 2 documents with bytes and 2 "
                     f"resamples (got {len(a)} documents, {resamples} resamples)")
  if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
    raise ValueError(f"{name}: log-likelihoods must be finite")
  nats, lengths = a[:, 0] - b[:, 0], a[:, 1]  # per document, the nats b needs beyond a
  difference = float(nats.sum() / (math.log(2) * lengths.sum()))
  rng = np.random.default_rng(seed)
  chunk = max(1, _BOOTSTRAP_CHUNK // len(a))
  resampled = []
  for start in range(0, resamples, chunk):
    drawn = rng.integers(0, len(a), (min(chunk, resamples - start), len(a)))
    resampled.append(nats[drawn].sum(1) / (math.log(2) * lengths[drawn].sum(1)))
  values = np.concatenate(resampled)
  se = float(values.std(ddof=1))
  low, high = np.percentile(values, [50 - 50 * CONFIDENCE, 50 + 50 * CONFIDENCE])
  p = min(1.0, 2 * min(float(np.mean(values <= 0)), float(np.mean(values >= 0))))
  return Estimate(task, BITS_PER_BYTE, difference, se, float(low), float(high), p, len(a),
                  len(a), f"paired bootstrap over documents ({resamples} resamples)",
                  higher_is_better=False)


def compare_runs(results_a: Mapping[str, Any], results_b: Mapping[str, Any],
                 cluster_field: Optional[str] = None, resamples: int = 2000,
                 seed: int = 0) -> list[Estimate]:
  """Paired estimates (b − a) over the tasks both runs' samples hold, in run a's order.

  A multiple-choice task gives its margin (paired t, clustered by `cluster_field`) and its
  accuracy (McNemar); a loglikelihood_rolling task its bits per byte (paired bootstrap);
  other output types are skipped.

  Args:
    results_a: the first run's loaded lm-eval results (with `samples`).
    results_b: the second run's.
    cluster_field: the doc field clustering multiple-choice items (`choice_items`).
    resamples: bootstrap resamples for bits per byte.
    seed: the bootstrap seed.

  Raises:
    ValueError: a run without samples; for a task: different items in the two runs (counts,
      or a doc_id whose document differs), a missing output_type, or what the tests raise.
  """
  for results in (results_a, results_b):
    if not results.get("samples"):
      raise ValueError("the results hold no per-item samples (lm-eval's log_samples)")
  estimates = []
  for task in [t for t in results_a["samples"] if t in results_b["samples"]]:
    samples_a, samples_b = _samples(results_a, task), _samples(results_b, task)
    ids = paired_ids(samples_a, samples_b, task)
    changed = [i for i in ids
               if samples_a[i].get("doc_hash") != samples_b[i].get("doc_hash")]
    if changed:
      raise ValueError(f"{task}: {len(changed)} of {len(ids)} doc_ids hold different "
                       f"documents in the two runs (first: doc_id {changed[0]})")
    output_type = results_a.get("configs", {}).get(task, {}).get("output_type")
    if output_type is None:
      raise ValueError(f"{task}: the results' configs give no output_type")
    if output_type == MULTIPLE_CHOICE:
      items_a = choice_items(results_a, task, cluster_field)
      items_b = choice_items(results_b, task, cluster_field)
      estimates.append(paired_t([items_b[i].margin - items_a[i].margin for i in ids],
                                [items_a[i].cluster for i in ids], task=task, metric=MARGIN))
      estimates.append(mcnemar([items_a[i].correct for i in ids],
                               [items_b[i].correct for i in ids], task=task))
    elif output_type == ROLLING:
      docs_a, docs_b = rolling_documents(results_a, task), rolling_documents(results_b, task)
      estimates.append(paired_bootstrap_bits_per_byte(
          [docs_a[i] for i in ids], [docs_b[i] for i in ids], resamples, seed, task=task))
  return estimates


def verdict(estimate: Estimate) -> str:
  """"within noise" when the 95% CI contains 0, else "beyond noise (better|worse)" by the
  metric's direction.

  Args:
    estimate: a paired estimate.
  """
  if estimate.ci_low <= 0 <= estimate.ci_high:
    return "within noise"
  better = (estimate.difference > 0) == estimate.higher_is_better
  return f"beyond noise ({'better' if better else 'worse'})"


def format_p(p: float) -> str:
  """A p-value for a table: three decimals, or "< 0.001".

  Args:
    p: the p-value.
  """
  return "< 0.001" if p < 0.001 else f"{p:.3f}"
