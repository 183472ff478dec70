"""The experiments' interval estimates (`experiments/stats.py`), on known answers: Wilson's
interval against its closed form and Newcombe's (1998) published values, the normal interval
worked by hand with z = 1.96, and bootstrap intervals on cases where every resample gives the
same statistic (so the interval is that value) or where the percentiles are forced."""

import math
import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)
# The fully qualified name, so that mutation testing finds its mutants.
from experiments import stats  # pylint: disable=wrong-import-position

Z = 1.96


def _wilson_closed_form(k, n):
  """The roots in pi of (p - pi)^2 = z^2 pi (1 - pi) / n, p = k / n (Wilson 1927; Newcombe
  1998, method 3): (2np + z^2 -+ z sqrt(z^2 + 4np(1 - p))) / (2(n + z^2))."""
  p = k / n
  centre, half = 2 * n * p + Z * Z, Z * math.sqrt(Z * Z + 4 * n * p * (1 - p))
  return [(centre - half) / (2 * (n + Z * Z)), (centre + half) / (2 * (n + Z * Z))]


def test_wilson_matches_newcombes_published_intervals_and_the_closed_form():
  """Newcombe (1998, Stat. Med. 17:857, Table II, method 3) lists the Wilson intervals
  81/263: 0.2553-0.3662, 15/148: 0.0624-0.1605, 0/20: 0-0.1611, 1/29: 0.0061-0.1718 (4
  decimals); 5/10 is symmetric about 1/2: centre (0.5 + 3.8416/20) / 1.38416 = 0.5, half-width
  1.96 sqrt(0.025 + 0.009604) / 1.38416 = 0.26341. Every case also equals the closed form."""
  published = {(81, 263): (0.2553, 0.3662), (15, 148): (0.0624, 0.1605),
               (0, 20): (0.0, 0.1611), (1, 29): (0.0061, 0.1718), (5, 10): (0.2366, 0.7634)}
  for (k, n), (low, high) in published.items():
    interval = stats.wilson(k, n)
    assert interval == pytest.approx([low, high], abs=5e-5), (k, n)
    assert interval == pytest.approx(_wilson_closed_form(k, n), abs=1e-12), (k, n)
  assert stats.wilson(5, 10) == pytest.approx([0.5 - 0.263410, 0.5 + 0.263410], abs=1e-6)
  for k, n in ((3, 7), (1, 1), (0, 1), (2, 3), (6.0, 9)):  # a float count: sum of 0/1 floats
    assert stats.wilson(k, n) == pytest.approx(_wilson_closed_form(k, n), abs=1e-12), (k, n)


def test_wilson_is_clipped_to_zero_one_and_no_items_give_zero_one():
  """At p = 0 the lower root is exactly 0 and at p = 1 the upper one is exactly 1, but the
  formula's rounding gives -2.8e-17 for 0/10 and 1 + 2.2e-16 for 5/5: the clip makes them 0
  and 1 exactly. 0 of 0 items says nothing: [0, 1]. 1/1 is an ordinary interval: the closed
  form's lower root is (2 + z^2 - z^2) / (2 (1 + z^2)) = 1 / 4.8416 = 0.206543."""
  assert stats.wilson(0, 10)[0] == 0.0
  assert stats.wilson(0, 10)[1] == pytest.approx(0.27754, abs=1e-5)
  assert stats.wilson(5, 5)[1] == 1.0
  assert stats.wilson(10, 10) == pytest.approx([0.72246, 1.0], abs=1e-5)
  assert stats.wilson(0, 0) == [0.0, 1.0]
  assert stats.wilson(1, 1) == pytest.approx([0.206543, 1.0], abs=1e-6)


def test_mean_interval_is_mean_plus_minus_1_96_standard_errors():
  """[1, 2, 3, 4, 5]: mean 3, sample variance (4 + 1 + 0 + 1 + 4) / 4 = 2.5, standard error
  sqrt(2.5 / 5) = sqrt(0.5), so 3 -+ 1.96 sqrt(0.5) = 3 -+ 1.385929. [0, 2]: mean 1, sample
  variance 2, standard error 1, so [-0.96, 2.96]. One value has no spread: [-inf, inf]."""
  assert stats.mean_interval([1, 2, 3, 4, 5]) == pytest.approx(
      [3 - 1.96 * math.sqrt(0.5), 3 + 1.96 * math.sqrt(0.5)], abs=1e-12)
  assert stats.mean_interval([0.0, 2.0]) == pytest.approx([-0.96, 2.96], abs=1e-12)
  assert stats.mean_interval([4.0, 4.0, 4.0]) == [4.0, 4.0]
  assert stats.mean_interval([7.5]) == [-math.inf, math.inf]


def test_mean_interval_computes_float32_values_in_float64():
  """The scripts pass float32 losses. [1, 2, 4]: mean 7/3, sample variance
  (16/9 + 1/9 + 25/9) / 2 = 7/3, standard error sqrt(7/9) = sqrt(7)/3, so
  7/3 -+ 1.96 sqrt(7)/3, to double precision (float32 arithmetic is off by ~1e-7)."""
  expected = [7 / 3 - 1.96 * math.sqrt(7) / 3, 7 / 3 + 1.96 * math.sqrt(7) / 3]
  assert stats.mean_interval(np.asarray([1, 2, 4], np.float32)) == pytest.approx(expected,
                                                                                 abs=1e-14)


def test_percentile_interval_takes_the_2_5th_and_97_5th_percentiles():
  """Of 0, 1, ..., 100 (numpy's linear interpolation, position q/100 * 100 = q): 2.5 and
  97.5; of 0, 10, ..., 100: positions 0.25 and 9.75, so 2.5 and 97.5 again (scaled by 10)."""
  assert stats.percentile_interval(list(range(101))) == [2.5, 97.5]
  assert stats.percentile_interval(np.arange(0, 101, 10)) == [2.5, 97.5]
  assert stats.percentile_interval([0.0, 0.0, 0.0, 1.0] * 5) == [0.0, 1.0]


def _reference_paired(a, b, seed, resamples):
  """The documented paired bootstrap written out with numpy: `resamples` rows of item indices
  from `default_rng(seed).integers`, each row's mean difference, the 2.5th and 97.5th
  percentiles (the scripts' published intervals depend on exactly this draw)."""
  diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
  picks = np.random.default_rng(seed).integers(0, len(diff), (resamples, len(diff)))
  means = diff[picks].mean(axis=1)
  return [np.percentile(means, 2.5), np.percentile(means, 97.5)]


def test_paired_bootstrap_of_equal_differences_has_zero_width():
  """a - b = 2 on every item: every resample's mean is 2, so the interval is [2, 2]; one item
  (a - b = -0.5) gives [-0.5, -0.5] whatever the seed."""
  assert stats.paired_bootstrap([3, 4, 5], [1, 2, 3]) == [2.0, 2.0]
  assert stats.paired_bootstrap([1.0], [1.5], seed=7, resamples=50) == [-0.5, -0.5]


def test_paired_statistics_subtract_float32_values_in_float64():
  """The scripts pass float32 losses. float32(1/3) is 11184811 / 2^25 (0.33333334...); in
  float64 every partial sum k x (k <= 7) of it is exact (27 bits), so the mean of 7 copies
  minus 0 is x itself: the interval [x, x] and the value x. float32 arithmetic gives
  0.33333331 instead."""
  x = 11184811 / 2**25
  third, zeros = np.full(7, 1 / 3, np.float32), np.zeros(7, np.float32)
  assert float(third[0]) == x
  assert stats.paired_bootstrap(third, zeros) == [x, x]
  assert stats.paired_difference(third, zeros)["value"] == x
  assert stats.paired_difference(zeros, third)["ci"] == [-x, -x]


def test_paired_bootstrap_of_two_items_spans_both_and_follows_its_seed():
  """Differences 0 and 1: a resample's mean is 0, 1/2 or 1 with chances 1/4, 1/2, 1/4, so of
  2000 resamples about 500 are 0 and 500 are 1 (fewer than 51 of either has probability below
  1e-150): the 2.5th percentile is 0 and the 97.5th is 1. With items resampled from index 0
  on (a draw that skipped the first item would give [1, 1]). On 12 varied items, the interval
  is the documented numpy draw (seed, 2000 resamples by default) and another seed differs."""
  assert stats.paired_bootstrap([5.0, 6.0], [5.0, 5.0]) == [0.0, 1.0]
  assert stats.paired_bootstrap([5.0, 6.0], [5.0, 5.0], seed=3) == [0.0, 1.0]
  rng = np.random.default_rng(11)
  a, b = rng.normal(size=12), rng.normal(size=12)
  assert stats.paired_bootstrap(a, b) == pytest.approx(_reference_paired(a, b, 0, 2000),
                                                       abs=1e-15)
  assert stats.paired_bootstrap(list(a), list(b), seed=5, resamples=300) == pytest.approx(
      _reference_paired(a, b, 5, 300), abs=1e-15)
  assert stats.paired_bootstrap(a, b, seed=5) != stats.paired_bootstrap(a, b, seed=6)


def test_noise_entry_holds_zero_inclusively():
  """Within noise when low <= 0 <= high, the bounds included: [-1, 1], [0, 1] and [-1, 0]
  hold 0; [0.1, 1] and [-1, -0.1] do not."""
  for interval, within in (([-1.0, 1.0], True), ([0.0, 1.0], True), ([-1.0, 0.0], True),
                           ([0.0, 0.0], True), ([0.1, 1.0], False), ([-1.0, -0.1], False)):
    assert stats.noise_entry(0.25, interval) == {"value": 0.25, "ci": interval,
                                                 "within_noise": within}, interval


def test_paired_difference_is_the_mean_difference_with_its_bootstrap():
  """a - b = (2, 2, 2): value 2, interval [2, 2], not within noise. a - b = (1, -1, 3, 1):
  value 4 / 4 = 1. Equal arms: 0, [0, 0], within noise. Its interval is the paired bootstrap
  with the same seed and resamples (the documented numpy draw)."""
  assert stats.paired_difference([3, 4, 5], [1, 2, 3]) == {"value": 2.0, "ci": [2.0, 2.0],
                                                           "within_noise": False}
  assert stats.paired_difference([1, 0, 4, 2], [0, 1, 1, 1])["value"] == 1.0
  assert stats.paired_difference([0.5, 1.5], [0.5, 1.5]) == {"value": 0.0, "ci": [0.0, 0.0],
                                                             "within_noise": True}
  rng = np.random.default_rng(12)
  a, b = rng.normal(size=9), rng.normal(size=9)
  for kwargs, (seed, resamples) in (({}, (0, 2000)), ({"seed": 4, "resamples": 100}, (4, 100))):
    entry = stats.paired_difference(a, b, **kwargs)
    assert entry["ci"] == pytest.approx(_reference_paired(a, b, seed, resamples), abs=1e-15)
    assert entry["value"] == pytest.approx(np.mean(a) - np.mean(b), abs=1e-12)


def _reference_grouped(statistic, groups, seed, resamples):
  """The documented stratified bootstrap written out: one `default_rng(seed)`; per resample,
  each group's member indices (groups in sorted order) drawn with `choice(members, size)`."""
  rng = np.random.default_rng(seed)
  members = [np.flatnonzero(groups == g) for g in sorted(set(groups))]
  values = [statistic(np.concatenate([rng.choice(m, len(m)) for m in members]))
            for _ in range(resamples)]
  return [np.percentile(values, 2.5), np.percentile(values, 97.5)]


def test_grouped_bootstrap_keeps_each_groups_size():
  """Groups a, a, b: every resample draws 2 indices from {0, 1} and 1 from {2}, so it has 3
  picks and exactly one of them is item 2 (a statistic counting item 2 is always 1; an
  unstratified draw would give 0 to 3). One item per group: every resample is the items
  themselves, so a statistic of the picks is constant."""
  groups = np.asarray(["a", "a", "b"])
  assert stats.grouped_bootstrap(lambda picks: float(len(picks)), groups, 0) == [3.0, 3.0]
  assert stats.grouped_bootstrap(lambda picks: float(np.sum(picks == 2)), groups, 1) == [1.0,
                                                                                          1.0]
  values = np.asarray([10.0, 20.0, 40.0])
  assert stats.grouped_bootstrap(lambda picks: values[picks].sum(), np.asarray([0, 1, 2]),
                                 3, 20) == [70.0, 70.0]


def test_grouped_bootstrap_follows_the_documented_draw():
  """Two groups of 6 and 5 varied values, the mean of the picks: the documented draw (seed,
  2000 resamples by default), and another seed differs."""
  groups = np.asarray([1, 0] * 5 + [1])
  values = np.random.default_rng(14).normal(size=11)

  def mean(picks):
    return values[picks].mean()
  assert stats.grouped_bootstrap(mean, groups, 2) == pytest.approx(
      _reference_grouped(mean, groups, 2, 2000), abs=1e-15)
  assert stats.grouped_bootstrap(mean, groups, 2, 50) == pytest.approx(
      _reference_grouped(mean, groups, 2, 50), abs=1e-15)
  assert stats.grouped_bootstrap(mean, groups, 2) != stats.grouped_bootstrap(mean, groups, 3)


def test_perplexity_interval_of_a_constant_rate_is_that_perplexity():
  """Documents with NLL 2, 4, 6 nats over 1, 2, 3 tokens all have 2 nats per token, so every
  resample's perplexity is e^2. Documents in their own groups (NLL 1 and 3 over 1 token each)
  are always both drawn: exp(4 / 2) = e^2 again; with NLL 1 and 5 over 2 and 1 tokens,
  exp(6 / 3) = e^2 (a ratio of sums, not a mean of ratios: that would be exp(2.75))."""
  e2 = math.exp(2.0)
  assert stats.perplexity_interval(np.asarray([2.0, 4.0, 6.0]), np.asarray([1, 2, 3]),
                                   np.asarray(["x", "x", "y"]), 0) == pytest.approx([e2, e2])
  assert stats.perplexity_interval(np.asarray([1.0, 3.0]), np.asarray([1, 1]),
                                   np.asarray([0, 1]), 5, 10) == pytest.approx([e2, e2])
  assert stats.perplexity_interval(np.asarray([1.0, 5.0]), np.asarray([2, 1]),
                                   np.asarray([0, 1]), 5, 10) == pytest.approx([e2, e2])


def test_perplexity_interval_follows_the_documented_draw():
  """Twelve documents of varied rates in two groups: the documented draw of
  exp(sum nll / sum tokens) (seed, 2000 resamples by default); another seed differs."""
  rng = np.random.default_rng(13)
  tokens = rng.integers(1, 20, 12)
  nll, groups = tokens * rng.uniform(1.0, 4.0, 12), np.asarray(["p", "c"] * 6)

  def rate(picks):
    return math.exp(nll[picks].sum() / tokens[picks].sum())
  assert stats.perplexity_interval(nll, tokens, groups, 1) == pytest.approx(
      _reference_grouped(rate, groups, 1, 2000), abs=1e-12)
  assert stats.perplexity_interval(nll, tokens, groups, 1, 30) == pytest.approx(
      _reference_grouped(rate, groups, 1, 30), abs=1e-12)
  assert stats.perplexity_interval(nll, tokens, groups, 1) != stats.perplexity_interval(
      nll, tokens, groups, 2)


def test_per_token_difference_is_a_ratio_of_sums_with_its_bootstrap():
  """a = (3, 5), b = (1, 1) nats over 2 and 2 tokens: (8 - 2) / 4 = 1.5 nats per token; each
  document in its own group, every resample is both: interval [1.5, 1.5], outside noise.
  Equal arms: 0, [0, 0], within noise. Varied documents in two groups: the documented draw of
  (sum a - sum b) / sum tokens (seed, 2000 resamples by default); another seed differs."""
  entry = stats.per_token_difference(np.asarray([3.0, 5.0]), np.asarray([1.0, 1.0]),
                                     np.asarray([2, 2]), np.asarray([0, 1]), 0)
  assert entry == {"value": 1.5, "ci": [1.5, 1.5], "within_noise": False}
  same = np.asarray([2.0, 7.0, 1.0])
  assert stats.per_token_difference(same, same, np.asarray([1, 3, 2]), np.asarray([0, 0, 1]),
                                    0) == {"value": 0.0, "ci": [0.0, 0.0], "within_noise": True}
  a, b = np.asarray([3.0, 9.0, 2.0, 12.0, 5.0]), np.asarray([2.5, 9.5, 1.0, 10.0, 5.5])
  tokens, groups = np.asarray([2, 3, 2, 4, 1]), np.asarray(["p", "c", "p", "c", "c"])
  rng = np.random.default_rng(15)
  many = rng.uniform(0, 9, (2, 12))

  def diff(picks):
    return (a[picks].sum() - b[picks].sum()) / tokens[picks].sum()
  entry = stats.per_token_difference(a, b, tokens, groups, 3)
  assert entry["value"] == pytest.approx((31.0 - 28.5) / 12, abs=1e-12)
  assert entry["ci"] == pytest.approx(_reference_grouped(diff, groups, 3, 2000), abs=1e-12)
  assert stats.per_token_difference(a, b, tokens, groups, 3, 40)["ci"] == pytest.approx(
      _reference_grouped(diff, groups, 3, 40), abs=1e-12)
  many_tokens, many_groups = np.arange(1, 13), np.asarray([0, 1] * 6)
  assert stats.per_token_difference(*many, many_tokens, many_groups, 3)["ci"] != (
      stats.per_token_difference(*many, many_tokens, many_groups, 4)["ci"])
