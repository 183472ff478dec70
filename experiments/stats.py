"""The interval estimates of the experiment scripts (promot.py, units.py, partition.py).

All intervals are 95%: Wilson's for a share, the normal one (mean +- 1.96 standard errors) for
a mean, and percentile bootstrap intervals (2.5th and 97.5th percentiles of the resampled
statistic) for paired differences and for perplexities. A difference is *within noise* when
its interval holds 0.

The scripts import this module as `stats` (experiments/ is the script's directory, so it is on
`sys.path`, as for `common`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

Z = 1.96  # the standard normal's 97.5th percentile: two-sided 95%
RESAMPLES = 2000


def wilson(successes: float, n: int) -> list[float]:
  """95% Wilson score interval of a proportion, clipped to [0, 1]; [0, 1] when `n` is 0.

  Args:
    successes: items that count (may be a float sum of 0/1 values).
    n: items in all.
  """
  if n == 0:
    return [0.0, 1.0]
  p = successes / n
  centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
  half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
  return [max(0.0, centre - half), min(1.0, centre + half)]


def mean_interval(values: Sequence[float]) -> list[float]:
  """Mean +- 1.96 standard errors (sample standard deviation, ddof=1); with a single value,
  [-inf, inf] (one value says nothing about the spread).

  Args:
    values: the per-item values (at least one).
  """
  values = np.asarray(values, np.float64)
  half = Z * values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else math.inf
  return [float(values.mean() - half), float(values.mean() + half)]


def percentile_interval(values: Sequence[float]) -> list[float]:
  """The 2.5th and 97.5th percentiles of bootstrap `values` (numpy's linear interpolation).

  Args:
    values: the statistic of each resample.
  """
  return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


def paired_bootstrap(a: Sequence[float], b: Sequence[float], seed: int = 0,
                     resamples: int = RESAMPLES) -> list[float]:
  """95% bootstrap interval of mean(a - b) over paired items (items resampled with
  replacement, the pairs kept together).

  Args:
    a: one value per item.
    b: the other arm's value of the same items, in the same order.
    seed: the resampling seed.
    resamples: bootstrap resamples.
  """
  diff = np.subtract(a, b, dtype=np.float64)  # float32 losses are subtracted in float64
  picks = np.random.default_rng(seed).integers(0, len(diff), (resamples, len(diff)))
  return percentile_interval(diff[picks].mean(axis=1))


def noise_entry(value: float, interval: Sequence[float]) -> dict[str, Any]:
  """`{"value", "ci", "within_noise"}`: a difference, its interval, and whether that holds 0.

  Args:
    value: the difference.
    interval: `[low, high]`, its 95% interval.
  """
  return {"value": value, "ci": interval, "within_noise": interval[0] <= 0 <= interval[1]}


def paired_difference(a: Sequence[float], b: Sequence[float], seed: int = 0,
                      resamples: int = RESAMPLES) -> dict[str, Any]:
  """mean(a - b) over paired items with its 95% bootstrap interval (`paired_bootstrap`) and a
  within-noise flag (`noise_entry`).

  Args:
    a: one value per item.
    b: the other arm's value of the same items, in the same order.
    seed: the resampling seed.
    resamples: bootstrap resamples.
  """
  diff = np.subtract(a, b, dtype=np.float64)
  return noise_entry(float(diff.mean()), paired_bootstrap(a, b, seed, resamples))


def grouped_bootstrap(statistic: Callable[[np.ndarray], float], groups: np.ndarray, seed: int,
                      resamples: int = RESAMPLES) -> list[float]:
  """95% bootstrap interval of `statistic(picks)`, resampling items with replacement within
  each group (a stratified bootstrap: every resample keeps each group's size).

  Args:
    statistic: the statistic of the items at the indices `picks`.
    groups: one label per item.
    seed: the resampling seed.
    resamples: bootstrap resamples.
  """
  rng = np.random.default_rng(seed)
  members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
  return percentile_interval([
      statistic(np.concatenate([rng.choice(m, len(m)) for m in members]))
      for _ in range(resamples)])


def perplexity_interval(nll: np.ndarray, tokens: np.ndarray, groups: np.ndarray, seed: int,
                        resamples: int = RESAMPLES) -> list[float]:
  """95% bootstrap interval of exp(sum nll / sum tokens), resampling documents within each
  group (source).

  Args:
    nll: each document's summed negative log-likelihood (nats).
    tokens: each document's scored tokens.
    groups: each document's group.
    seed: the resampling seed.
    resamples: bootstrap resamples.
  """
  return grouped_bootstrap(lambda picks: math.exp(nll[picks].sum() / tokens[picks].sum()),
                           groups, seed, resamples)


def per_token_difference(a: np.ndarray, b: np.ndarray, tokens: np.ndarray, groups: np.ndarray,
                         seed: int, resamples: int = RESAMPLES) -> dict[str, Any]:
  """Mean per-token NLL of `a` minus `b` over the same documents, with a 95% paired
  bootstrap interval (documents resampled within each group) and whether it holds 0.

  Args:
    a: each document's summed NLL under one arm.
    b: the same documents' summed NLL under the other arm.
    tokens: each document's scored tokens.
    groups: each document's group.
    seed: the resampling seed.
    resamples: bootstrap resamples.
  """
  value = float((a.sum() - b.sum()) / tokens.sum())
  return noise_entry(value, grouped_bootstrap(
      lambda picks: (a[picks].sum() - b[picks].sum()) / tokens[picks].sum(), groups, seed,
      resamples))
