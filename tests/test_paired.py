"""Known answers for the paired statistics (`instruct_pt.evaluation.paired`): the paired t
(ordinary and cluster-robust), McNemar's exact test, the paired bootstrap of bits per byte,
per-item extraction from lm-eval-shaped samples, and the noise verdicts."""

import math

import numpy as np
import pytest
from scipy import stats

from instruct_pt.evaluation import paired


# ---- The paired t.

def test_paired_t_without_clusters_is_scipys_paired_t():
  rng = np.random.default_rng(0)
  a = rng.normal(0.0, 1.0, 40)
  b = a + rng.normal(0.3, 0.5, 40)
  estimate = paired.paired_t(b - a, task="t", metric="margin")
  reference = stats.ttest_rel(b, a)
  interval = reference.confidence_interval(0.95)
  assert estimate.difference == pytest.approx(np.mean(b - a), rel=1e-12)
  assert estimate.difference / estimate.se == pytest.approx(reference.statistic, rel=1e-10)
  assert estimate.p == pytest.approx(reference.pvalue, rel=1e-8)
  assert (estimate.ci_low, estimate.ci_high) == pytest.approx(
      (interval.low, interval.high), rel=1e-10)
  assert (estimate.n_items, estimate.n_clusters, estimate.method) == (40, 40, "paired t")
  # Clusters that are all distinct are the same test.
  assert paired.paired_t(b - a, [f"c{i}" for i in range(40)]).p == pytest.approx(estimate.p)


def test_paired_t_with_clusters_by_hand():
  # d = 1, 2, 3, 6 in clusters a, a, b, b: mean 3; residuals -2, -1, 0, 3; cluster sums -3, 3.
  # SE² = G/(G-1) · Σ_g (sum_g)² / n² = 2/1 · 18 / 16 = 2.25, SE = 1.5; t = 2 with G-1 = 1 df
  # (a Cauchy): p = 1 - 2·atan(2)/π; the 97.5% quantile is tan(0.475π).
  estimate = paired.paired_t([1.0, 2.0, 3.0, 6.0], ["a", "a", "b", "b"])
  assert estimate.difference == 3.0
  assert estimate.se == pytest.approx(1.5, rel=1e-12)
  assert estimate.p == pytest.approx(1 - 2 * math.atan(2) / math.pi, rel=1e-9)
  half = 1.5 * math.tan(0.475 * math.pi)
  assert (estimate.ci_low, estimate.ci_high) == pytest.approx((3 - half, 3 + half), rel=1e-9)
  assert (estimate.n_items, estimate.n_clusters) == (4, 2)
  assert estimate.method.startswith("cluster-robust")


def test_equal_clusters_with_constant_differences_are_a_t_over_cluster_means():
  """m items per cluster, all differing by the cluster's c_g: the cluster sums are
  m·(c_g − c̄), so SE² = Σ(c_g − c̄)² / (G(G−1)): the one-sample t of the G cluster means."""
  means = np.array([0.4, -0.1, 0.9, 0.3, 0.2, 0.7])
  estimate = paired.paired_t(np.repeat(means, 5), np.repeat(np.arange(6), 5))
  reference = stats.ttest_1samp(means, 0.0)
  assert estimate.difference == pytest.approx(means.mean(), rel=1e-12)
  assert estimate.difference / estimate.se == pytest.approx(reference.statistic, rel=1e-10)
  assert estimate.p == pytest.approx(reference.pvalue, rel=1e-8)
  # Treating the 30 items as independent would claim far less noise.
  assert paired.paired_t(np.repeat(means, 5)).se < estimate.se / 2


def test_paired_t_degenerate_cases_give_numbers_not_nan():
  zero = paired.paired_t([0.0, 0.0, 0.0])
  assert (zero.difference, zero.se, zero.ci_low, zero.ci_high, zero.p) == (0, 0, 0, 0, 1.0)
  constant = paired.paired_t([0.5, 0.5, 0.5, 0.5], [1, 1, 2, 2])
  assert (constant.difference, constant.se, constant.p) == (0.5, 0.0, 0.0)
  assert constant.ci_low == constant.ci_high == 0.5
  with pytest.raises(ValueError, match=r"^demo_rc margin: a paired t needs at least 2 "
                     r"clusters, got 1 \(3 items\)$"):
    paired.paired_t([0.1, 0.2, 0.3], [7, 7, 7], task="demo_rc", metric="margin")
  with pytest.raises(ValueError, match="got 0"):
    paired.paired_t([])
  with pytest.raises(ValueError, match="finite"):
    paired.paired_t([0.1, math.nan])
  with pytest.raises(ValueError, match="3 clusters for 2 differences"):
    paired.paired_t([0.1, 0.2], [1, 2, 3])


# ---- McNemar.

def test_mcnemar_exact_p_by_hand():
  # 1 item only a gets right, 6 only b, 3 both, 2 neither: p = 2·P(X ≤ 1), X ~ Bin(7, 1/2),
  # = 2·(1 + 7)/128 = 0.125; the accuracy difference is (6 − 1)/12.
  a = [True] * 1 + [False] * 6 + [True] * 3 + [False] * 2
  b = [False] * 1 + [True] * 6 + [True] * 3 + [False] * 2
  estimate = paired.mcnemar(a, b, task="demo_rc")
  assert estimate.p == pytest.approx(0.125, rel=1e-12)
  assert estimate.difference == pytest.approx(5 / 12)
  assert estimate.method == "McNemar exact (1 vs 6 discordant)"
  assert estimate.se == pytest.approx(math.sqrt(7 - 25 / 12) / 12)
  # The CI is the Clopper-Pearson interval of 6/7 scaled by 7/12: it contains 0 as p > 0.05.
  interval = stats.binomtest(6, 7).proportion_ci(0.95, method="exact")
  assert (estimate.ci_low, estimate.ci_high) == pytest.approx(
      ((2 * interval.low - 1) * 7 / 12, (2 * interval.high - 1) * 7 / 12))
  assert estimate.ci_low < 0 < estimate.ci_high
  assert paired.verdict(estimate) == "within noise"
  # 0 vs 10 discordant: p = 2/1024, and the CI excludes 0.
  strong = paired.mcnemar([False] * 10, [True] * 10)
  assert strong.p == pytest.approx(2 / 1024) and strong.ci_low > 0
  assert paired.verdict(strong) == "beyond noise (better)"


def test_mcnemar_without_discordant_items_is_no_difference():
  estimate = paired.mcnemar([True, False, True], [True, False, True])
  assert (estimate.difference, estimate.se, estimate.ci_low, estimate.ci_high, estimate.p) == (
      0.0, 0.0, 0.0, 0.0, 1.0)
  with pytest.raises(ValueError, match="same items"):
    paired.mcnemar([True, False], [True])


# ---- The paired bootstrap of bits per byte.

def test_bootstrap_of_a_constant_shift_is_exact_with_a_zero_width_interval():
  """Run b loses k nats per byte of every document: its bits per byte are k/ln 2 higher in
  every resample."""
  rng = np.random.default_rng(1)
  lengths = rng.integers(50, 400, 30)
  docs_a = [(float(-1.3 * n + rng.normal(0, 20)), int(n)) for n in lengths]
  k = 0.05
  docs_b = [(ll - k * n, n) for ll, n in docs_a]
  estimate = paired.paired_bootstrap_bits_per_byte(docs_a, docs_b, resamples=500, seed=3,
                                                   task="demo_perplexity")
  assert estimate.difference == pytest.approx(k / math.log(2), rel=1e-12)
  assert estimate.ci_high - estimate.ci_low < 1e-12
  assert estimate.ci_low == pytest.approx(k / math.log(2), rel=1e-12)
  assert estimate.se < 1e-12 and estimate.p == 0.0
  assert not estimate.higher_is_better
  assert paired.verdict(estimate) == "beyond noise (worse)"
  # Each arm's own rate: -Σ ll / (ln 2 · Σ bytes).
  rate_a = -sum(ll for ll, _ in docs_a) / (math.log(2) * lengths.sum())
  rate_b = -sum(ll for ll, _ in docs_b) / (math.log(2) * lengths.sum())
  assert estimate.difference == pytest.approx(rate_b - rate_a, rel=1e-12)


def test_bootstrap_se_matches_the_delta_method_and_is_deterministic():
  """For many documents the bootstrap SE of a ratio of sums, Σy/Σx, approaches the delta
  method's sqrt(Σ (y_i − R·x_i)²) / Σx."""
  rng = np.random.default_rng(2)
  lengths = rng.integers(100, 1000, 2000).astype(float)
  ll_a = -1.2 * lengths + rng.normal(0, 30, 2000)
  ll_b = ll_a + rng.normal(0.02, 0.1, 2000) * lengths
  docs_a, docs_b = list(zip(ll_a, lengths)), list(zip(ll_b, lengths))
  estimate = paired.paired_bootstrap_bits_per_byte(docs_a, docs_b, resamples=2000, seed=0)
  y = (ll_a - ll_b) / math.log(2)
  ratio = y.sum() / lengths.sum()
  analytic = math.sqrt(np.sum((y - ratio * lengths) ** 2)) / lengths.sum()
  assert estimate.difference == pytest.approx(ratio, rel=1e-10)
  assert estimate.se == pytest.approx(analytic, rel=0.1)
  assert estimate.ci_low < estimate.difference < estimate.ci_high
  again = paired.paired_bootstrap_bits_per_byte(docs_a, docs_b, resamples=2000, seed=0)
  assert again == estimate
  assert paired.paired_bootstrap_bits_per_byte(docs_a, docs_b, resamples=2000,
                                               seed=1).se != estimate.se


def test_bootstrap_of_identical_runs_is_within_noise():
  docs = [(-100.0, 80), (-50.0, 30), (-300.0, 200)]
  estimate = paired.paired_bootstrap_bits_per_byte(docs, docs, resamples=100)
  assert (estimate.difference, estimate.ci_low, estimate.ci_high, estimate.p) == (0, 0, 0, 1)
  assert paired.verdict(estimate) == "within noise"
  with pytest.raises(ValueError, match="documents differ"):
    paired.paired_bootstrap_bits_per_byte(docs, [(-100.0, 81), *docs[1:]])
  with pytest.raises(ValueError, match="at least 2 documents"):
    paired.paired_bootstrap_bits_per_byte(docs[:1], docs[:1])


# ---- Extraction from lm-eval's samples.

def _choice_sample(doc_id, loglikelihoods, target, paragraph, acc=None):
  """A multiple-choice sample as lm-eval 0.4 logs it (results.json, filter "none")."""
  sample = {
      "doc_id": doc_id, "doc": {"question": f"q{doc_id}", "paragraph": paragraph},
      "target": target,
      "arguments": [[f"q{doc_id}", f" option {i}"] for i in range(len(loglikelihoods))],
      "resps": [[[ll, False]] for ll in loglikelihoods],
      "filtered_resps": [[ll, False] for ll in loglikelihoods],
      "filter": "none", "metrics": ["acc"], "doc_hash": f"hash{doc_id}",
  }
  if acc is not None:
    sample["acc"] = acc
  return sample


def _rolling_sample(doc_id, loglikelihood, length):
  return {"doc_id": doc_id, "doc": {"text": "x" * length}, "target": "x" * length,
          "filtered_resps": [loglikelihood], "filter": "none",
          "metrics": ["word_perplexity", "byte_perplexity", "bits_per_byte"],
          "doc_hash": f"text{doc_id}", "word_perplexity": [loglikelihood, 1],
          "byte_perplexity": [loglikelihood, length], "bits_per_byte": [loglikelihood, length]}


def _results(choice, rolling):
  return {"configs": {"demo_rc": {"output_type": "multiple_choice", "target_delimiter": " "},
                      "demo_perplexity": {"output_type": "loglikelihood_rolling"}},
          "samples": {"demo_rc": choice, "demo_perplexity": rolling}}


def test_margins_from_lm_eval_samples():
  results = _results([
      _choice_sample(0, [-3.0, -1.0, -2.5], 1, paragraph=7, acc=1.0),  # margin -1 - -2.5
      _choice_sample(1, [-1.0, -4.0, -0.5, -2.0], 0, paragraph=7, acc=0.0),  # -1 - -0.5
      _choice_sample(2, [-2.0, -2.0], 1, paragraph=9),  # a tie: argmax picks option 0
      # A string target: the option whose continuation is target_delimiter + target.
      _choice_sample(3, [-5.0, -1.0], "option 1", paragraph=9),
  ], [])
  items = paired.choice_items(results, "demo_rc", cluster_field="paragraph")
  assert [items[i].margin for i in range(4)] == [1.5, -0.5, 0.0, 4.0]
  assert [items[i].gold for i in range(4)] == [1, 0, 1, 1]
  assert [items[i].correct for i in range(4)] == [True, False, False, True]
  assert [items[i].cluster for i in range(4)] == [7, 7, 9, 9]
  assert items[1].loglikelihoods == (-1.0, -4.0, -0.5, -2.0)
  assert [item.cluster for item in paired.choice_items(results, "demo_rc").values()] == [
      0, 1, 2, 3]
  with pytest.raises(ValueError, match=r"^demo_rc doc_id 0: the doc has no field 'passage'"):
    paired.choice_items(results, "demo_rc", cluster_field="passage")
  results["samples"]["demo_rc"][0]["target"] = 3
  with pytest.raises(ValueError, match="doc_id 0: target 3 is not one of its 3 options"):
    paired.choice_items(results, "demo_rc")


def test_mutual_information_options_are_dropped():
  sample = _choice_sample(0, [-1.0, -2.0, -0.2, -0.1], 1, paragraph=1)
  sample["metrics"] = ["acc", "acc_mutual_info"]  # the last two are unconditional
  [item] = paired.choice_items(_results([sample], []), "demo_rc").values()
  assert item.loglikelihoods == (-1.0, -2.0) and item.margin == -1.0


def test_rolling_documents_from_lm_eval_samples():
  results = _results([], [_rolling_sample(0, -70.0, 40), _rolling_sample(1, -20.0, 12)])
  assert paired.rolling_documents(results, "demo_perplexity") == {0: (-70.0, 40),
                                                                    1: (-20.0, 12)}
  del results["samples"]["demo_perplexity"][1]["bits_per_byte"]  # byte_perplexity serves
  assert paired.rolling_documents(results, "demo_perplexity")[1] == (-20.0, 12)
  del results["samples"]["demo_perplexity"][1]["byte_perplexity"]
  with pytest.raises(ValueError, match="doc_id 1: no per-document bits_per_byte"):
    paired.rolling_documents(results, "demo_perplexity")


def test_missing_task_and_different_items_are_one_line_errors():
  results = _results([_choice_sample(i, [-1.0, -2.0], 0, paragraph=i) for i in range(4)],
                     [_rolling_sample(i, -10.0, 8) for i in range(3)])
  with pytest.raises(ValueError, match=r"^demo_rc_closed: not in the results' samples \(they "
                     r"hold 2 tasks: demo_rc, demo_perplexity\)$"):
    paired.choice_items(results, "demo_rc_closed")
  fewer = _results(results["samples"]["demo_rc"][:3], results["samples"]["demo_perplexity"])
  with pytest.raises(ValueError, match=r"^demo_rc: the runs scored different items \(4 and 3, "
                     r"3 in common\); evaluate both on the same documents \(same --limit\)$"):
    paired.compare_runs(results, fewer)
  with pytest.raises(ValueError, match="no per-item samples"):
    paired.compare_runs(results, {"results": {}})


def test_malformed_samples_are_one_line_errors():
  twice = _results([_choice_sample(0, [-1.0, -2.0], 0, 1), _choice_sample(0, [-1.0, -2.0], 0, 1)],
                   [])
  with pytest.raises(ValueError, match=r"^demo_rc: doc_id 0 appears twice in the samples"):
    paired.choice_items(twice, "demo_rc")
  alone = _results([_choice_sample(0, [-1.0], 0, 1)], [])
  with pytest.raises(ValueError, match=r"^demo_rc doc_id 0: 1 option\(s\); a margin needs at "
                     r"least 2$"):
    paired.choice_items(alone, "demo_rc")
  untyped = _results([_choice_sample(i, [-1.0, -2.0], 0, i) for i in range(2)], [])
  del untyped["configs"]["demo_rc"]["output_type"]
  with pytest.raises(ValueError, match=r"^demo_rc: the results' configs give no output_type$"):
    paired.compare_runs(untyped, untyped)


def test_compare_runs_gives_margin_accuracy_and_bits_per_byte():
  """Run b raises every gold option's log-likelihood by 1 nat (so every margin by 1, turning
  items 1 and 5 right) and loses 0.1 nats per byte of every document."""
  margins_a = [([-1.0, -2.0, -3.0], 0), ([-2.5, -2.0, -4.0], 0), ([-1.0, -0.2, -3.0], 2),
               ([-0.5, -1.5, -0.9], 0), ([-2.0, -1.0, -1.2], 1), ([-3.0, -2.0, -2.2], 2)]
  def run(boost, loss):
    choice = []
    for doc_id, (lls, gold) in enumerate(margins_a):
      lls = [ll + boost * (i == gold) for i, ll in enumerate(lls)]
      choice.append(_choice_sample(doc_id, lls, gold, paragraph=doc_id // 2,
                                   acc=float(np.argmax(lls) == gold)))
    rolling = [_rolling_sample(i, -1.5 * n - loss * n, n) for i, n in enumerate((40, 90, 25))]
    return _results(choice, rolling)
  margin, acc, bpb = paired.compare_runs(run(0.0, 0.0), run(1.0, 0.1),
                                         cluster_field="paragraph", resamples=200)
  assert (margin.task, margin.metric, margin.n_items, margin.n_clusters) == (
      "demo_rc", "margin", 6, 3)
  # Run a's margins are 1, -0.5, -2.8, 0.4, 0.2, -0.2; b's are each 1 higher.
  assert margin.difference == pytest.approx(1.0) and margin.se == pytest.approx(0.0, abs=1e-12)
  assert paired.verdict(margin) == "beyond noise (better)"
  assert (acc.metric, acc.difference, acc.method) == (
      "acc", pytest.approx(2 / 6), "McNemar exact (0 vs 2 discordant)")
  assert acc.p == pytest.approx(0.5)  # 2 · (1/2)²
  assert paired.verdict(acc) == "within noise"
  assert (bpb.task, bpb.metric) == ("demo_perplexity", "bits_per_byte")
  assert bpb.difference == pytest.approx(0.1 / math.log(2))
  assert paired.verdict(bpb) == "beyond noise (worse)"
  # The same documents under other doc_hashes are not the same items.
  other = run(1.0, 0.1)
  other["samples"]["demo_rc"][4]["doc_hash"] = "changed"
  with pytest.raises(ValueError, match=r"^demo_rc: 1 of 6 doc_ids hold different documents"):
    paired.compare_runs(run(0.0, 0.0), other)


# ---- Verdicts.

def _estimate(difference, low, high, higher_is_better=True, se=0.01):
  return paired.Estimate("task", "margin", difference, se, low, high, 0.5, 10, 10, "test",
                         higher_is_better)


def test_verdicts_follow_the_interval_and_the_direction():
  assert paired.verdict(_estimate(0.02, -0.01, 0.05)) == "within noise"
  assert paired.verdict(_estimate(0.02, 0.01, 0.03)) == "beyond noise (better)"
  assert paired.verdict(_estimate(-0.02, -0.03, -0.01)) == "beyond noise (worse)"
  # Lower is better (bits per byte): a drop is an improvement.
  assert paired.verdict(_estimate(-0.02, -0.03, -0.01, False)) == "beyond noise (better)"
  assert paired.verdict(_estimate(0.02, 0.01, 0.03, False)) == "beyond noise (worse)"
  # An interval that ends at 0 contains it.
  assert paired.verdict(_estimate(0.02, 0.0, 0.04)) == "within noise"


def test_zero_difference_with_zero_noise_is_within_noise():
  assert paired.verdict(_estimate(0.0, 0.0, 0.0, se=0.0)) == "within noise"
  identical = paired.paired_t([0.0] * 5)
  assert paired.verdict(identical) == "within noise"
  assert not any(math.isnan(v) for v in (identical.difference, identical.se, identical.p,
                                          identical.ci_low, identical.ci_high))


def test_format_p():
  assert [paired.format_p(p) for p in (0.0, 0.0009999, 0.001, 0.0342, 1.0)] == [
      "< 0.001", "< 0.001", "0.001", "0.034", "1.000"]


# ---- Further known answers: defaults, input types, edge counts and one-line errors.

def test_paired_t_defaults_and_direction_are_kept():
  """Without task or metric the estimate says "" and "difference"; the direction given is
  kept (bits-per-byte-like quantities are lower-is-better)."""
  estimate = paired.paired_t([1.0, 2.0, 3.0, 6.0])
  assert (estimate.task, estimate.metric, estimate.higher_is_better) == ("", "difference", True)
  assert not paired.paired_t([1.0, 2.0], higher_is_better=False).higher_is_better


def test_paired_t_computes_float32_differences_in_float64():
  """Differences handed over as float32 (e.g. from a JAX array) are averaged in float64: the
  mean of these five float32 values is their float64 mean to 1e-12, where a float32 mean is
  off by ~1e-8 relative."""
  d = np.array([0.1, 0.2, 0.3, 0.7, 1.1], np.float32)
  exact = d.astype(np.float64)
  estimate = paired.paired_t(d)
  assert estimate.difference == pytest.approx(exact.mean(), rel=1e-12)
  assert estimate.se == pytest.approx(exact.std(ddof=1) / math.sqrt(5), rel=1e-10)


def test_mcnemar_counts_accuracy_given_as_numbers():
  """lm-eval records `acc` as 1.0 / 0.0 (and 0/1 ints are common): they count as right and
  wrong. a = 1, 1, 0, 0, 1; b = 0, 1, 1, 1, 1: 1 item only a gets right, 2 only b, so the
  difference is (2 − 1)/5 and p = min(1, 2·P(X ≤ 1)), X ~ Bin(3, 1/2), = min(1, 2·4/8) = 1."""
  for kind in (int, float):
    estimate = paired.mcnemar([kind(x) for x in (1, 1, 0, 0, 1)],
                              [kind(x) for x in (0, 1, 1, 1, 1)], task="demo_rc")
    assert estimate.difference == pytest.approx(0.2)
    assert estimate.method == "McNemar exact (1 vs 2 discordant)"
    assert (estimate.task, estimate.metric, estimate.n_items, estimate.n_clusters) == (
        "demo_rc", "acc", 5, 5)
    assert estimate.p == 1.0
  assert paired.mcnemar([True], [False]).task == ""


def test_mcnemar_p_is_capped_at_one_and_bad_shapes_are_errors():
  """1 vs 1 discordant: 2·P(X ≤ 1) for X ~ Bin(2, 1/2) is 2·3/4 = 1.5, reported as 1. No
  items, or items given as a table rather than one per item, are one-line errors."""
  estimate = paired.mcnemar([True, False, True], [False, True, True])
  assert estimate.p == 1.0 and estimate.difference == 0.0
  with pytest.raises(ValueError, match=r"^demo_rc acc: McNemar needs the same items from both "
                     r"runs \(got 0 and 0\)$"):
    paired.mcnemar([], [], task="demo_rc")
  with pytest.raises(ValueError, match=r"got 2 and 2"):
    paired.mcnemar([[True, False]], [[False, True]])


def _bootstrap_reference(docs_a, docs_b, resamples, seed):
  """The documented bootstrap, written out with numpy: `default_rng(seed)` draws, row by row,
  `resamples` sets of n document indices with replacement (the same for both arms); each
  resample's difference is Σ (ll_a − ll_b) / (ln 2 · Σ bytes) over the drawn documents; the
  SE is their standard deviation (ddof 1), the CI their 2.5th and 97.5th percentiles, and
  p = min(1, 2 · min(share ≤ 0, share ≥ 0))."""
  a, b = np.asarray(docs_a, np.float64), np.asarray(docs_b, np.float64)
  n = len(a)
  drawn = np.random.default_rng(seed).integers(0, n, (resamples, n))
  nats = a[:, 0] - b[:, 0]
  values = nats[drawn].sum(1) / (math.log(2) * a[drawn, 1].sum(1))
  p = min(1.0, 2 * min(np.mean(values <= 0), np.mean(values >= 0)))
  return values.std(ddof=1), np.percentile(values, 2.5), np.percentile(values, 97.5), p


def _noisy_documents(count, seed):
  """Documents where run b is better on some and worse on others (a p well inside (0, 1))."""
  rng = np.random.default_rng(seed)
  lengths = rng.integers(20, 200, count)
  ll_a = -1.3 * lengths + rng.normal(0, 5, count)
  ll_b = ll_a + rng.normal(0.002, 0.05, count) * lengths
  return ([(float(l), int(n)) for l, n in zip(ll_a, lengths)],
          [(float(l), int(n)) for l, n in zip(ll_b, lengths)])


def test_bootstrap_follows_the_documented_resampling():
  """SE, CI and p equal the written-out bootstrap (`_bootstrap_reference`) for a given seed,
  for the default seed (0) and for more documents than one chunk of resamples holds (4096
  documents: the resamples are drawn in pieces of 2^21 / 4096 = 512)."""
  docs_a, docs_b = _noisy_documents(12, seed=4)
  for seed, estimate in ((7, paired.paired_bootstrap_bits_per_byte(docs_a, docs_b, 300, seed=7)),
                         (0, paired.paired_bootstrap_bits_per_byte(docs_a, docs_b, 300))):
    se, low, high, p = _bootstrap_reference(docs_a, docs_b, 300, seed)
    assert 0.05 < p < 0.95  # the test can see a wrong factor in p
    assert (estimate.se, estimate.ci_low, estimate.ci_high, estimate.p) == pytest.approx(
        (se, low, high, p), rel=1e-12)
  big_a, big_b = _noisy_documents(4096, seed=5)
  estimate = paired.paired_bootstrap_bits_per_byte(big_a, big_b, 600, seed=2)
  assert (estimate.se, estimate.ci_low, estimate.ci_high, estimate.p) == pytest.approx(
      _bootstrap_reference(big_a, big_b, 600, 2), rel=1e-12)
  assert (estimate.n_items, estimate.n_clusters) == (4096, 4096)
  assert estimate.method == "paired bootstrap over documents (600 resamples)"


def test_bootstrap_defaults_and_float32_inputs():
  """The default is 2000 resamples and no task name; float32 log-likelihoods are differenced
  and summed in float64 (a float32 sum is off by ~1e-8 relative)."""
  docs = [(-100.0, 80), (-50.0, 30)]
  estimate = paired.paired_bootstrap_bits_per_byte(docs, docs)
  assert estimate.method == "paired bootstrap over documents (2000 resamples)"
  assert (estimate.task, estimate.metric) == ("", "bits_per_byte")
  assert estimate.higher_is_better is False
  docs_a, docs_b = _noisy_documents(5, seed=6)
  a32, b32 = np.asarray(docs_a, np.float32), np.asarray(docs_b, np.float32)
  a64, b64 = a32.astype(np.float64), b32.astype(np.float64)
  exact = (a64[:, 0] - b64[:, 0]).sum() / (math.log(2) * a64[:, 1].sum())
  estimate = paired.paired_bootstrap_bits_per_byte(a32, b32, 10)
  assert estimate.difference == pytest.approx(exact, rel=1e-12)


def test_bootstrap_input_limits():
  """2 documents and 2 resamples are enough; 1 resample, documents with no bytes, or a
  non-finite log-likelihood in either run are one-line errors naming the task."""
  docs_a, docs_b = [(-10.0, 8), (-20.0, 12)], [(-11.0, 8), (-19.0, 12)]
  two = paired.paired_bootstrap_bits_per_byte(docs_a, docs_b, 2)
  # Σ (ll_a − ll_b) = 1 − 1 = 0 nats over 20 bytes.
  assert two.difference == 0.0 and two.n_items == 2
  # One byte in all is enough (a resample of only the empty document has no rate: nan, which
  # this check does not read).
  with np.errstate(invalid="ignore"):
    one_byte = paired.paired_bootstrap_bits_per_byte([(-1.0, 1), (-2.0, 0)],
                                                     [(-2.0, 1), (-2.0, 0)], 5)
  assert one_byte.difference == pytest.approx(1 / math.log(2))  # 1 nat over 1 byte
  with pytest.raises(ValueError, match=r"^demo_perplexity bits_per_byte: a bootstrap needs at "
                     r"least 2 documents with bytes and 2 resamples \(got 2 documents, 1 "
                     r"resamples\)$"):
    paired.paired_bootstrap_bits_per_byte(docs_a, docs_b, 1, task="demo_perplexity")
  with pytest.raises(ValueError, match="at least 2 documents with bytes"):
    paired.paired_bootstrap_bits_per_byte([(0.0, 0), (0.0, 0)], [(0.0, 0), (0.0, 0)], 5)
  for bad in (math.nan, math.inf):
    with pytest.raises(ValueError, match=r"^demo_perplexity bits_per_byte: log-likelihoods "
                       r"must be finite$"):
      paired.paired_bootstrap_bits_per_byte(docs_a, [(bad, 8), (-19.0, 12)], 5,
                                            task="demo_perplexity")
  with pytest.raises(ValueError, match=r"^demo_perplexity bits_per_byte: the runs' documents "
                     r"differ \(2 and 1 documents, or different byte counts\)$"):
    paired.paired_bootstrap_bits_per_byte(docs_a, docs_a[:1], 5, task="demo_perplexity")


def test_choice_items_read_the_target_delimiter_and_work_without_configs():
  """A string target is found as target_delimiter + target among the continuations: with
  delimiter ":" the target "B" is option 1 (":B"); results without configs (or without the
  task's) use lm-eval's default delimiter " ". Samples without `metrics` keep every option."""
  sample = _choice_sample(0, [-2.0, -0.5, -1.0], "B", paragraph=1)
  sample["arguments"] = [["q", ":A"], ["q", ":B"], ["q", ":C"]]
  del sample["metrics"]
  results = {"configs": {"demo_rc": {"target_delimiter": ":"}},
             "samples": {"demo_rc": [sample]}}
  [item] = paired.choice_items(results, "demo_rc").values()
  assert (item.gold, item.margin, item.correct) == (1, 0.5, True)
  plain = _choice_sample(0, [-2.0, -0.5], "option 0", paragraph=1)
  for config in ({}, {"configs": {}}, {"configs": {"demo_rc": {}}}):
    [item] = paired.choice_items({**config, "samples": {"demo_rc": [plain]}}, "demo_rc").values()
    assert (item.gold, item.margin) == (0, -1.5)
  with pytest.raises(ValueError, match=r"^demo_rc doc_id 0: target 'B' is not one of its 3 "
                     r"options"):
    paired.choice_items({"samples": {"demo_rc": [sample]}}, "demo_rc")


def test_choice_items_take_lm_evals_acc_as_recorded():
  """`correct` is lm-eval's `acc` when the sample has it (even where the log-likelihoods
  tie), and the argmax otherwise."""
  recorded = _choice_sample(0, [-2.0, -2.0], 1, paragraph=1, acc=1.0)
  [item] = paired.choice_items(_results([recorded], []), "demo_rc").values()
  assert item.correct is True
  del recorded["acc"]
  [item] = paired.choice_items(_results([recorded], []), "demo_rc").values()
  assert item.correct is False  # argmax picks option 0


def test_clustering_errors_name_the_docs_fields():
  """Clustering by a field the doc lacks names the fields the doc has, or "none"."""
  results = _results([_choice_sample(0, [-1.0, -2.0], 0, paragraph=1)], [])
  with pytest.raises(ValueError, match=r"^demo_rc doc_id 0: the doc has no field 'passage' to "
                     r"cluster by \(it has: question, paragraph\)$"):
    paired.choice_items(results, "demo_rc", cluster_field="passage")
  del results["samples"]["demo_rc"][0]["doc"]
  with pytest.raises(ValueError, match=r"^demo_rc doc_id 0: the doc has no field 'passage' to "
                     r"cluster by \(it has: none\)$"):
    paired.choice_items(results, "demo_rc", cluster_field="passage")


def test_rolling_documents_read_bits_per_byte_alone():
  """A task that lists only bits_per_byte (no byte_perplexity) is read from it."""
  sample = _rolling_sample(0, -70.0, 40)
  del sample["byte_perplexity"]
  assert paired.rolling_documents(_results([], [sample]), "demo_perplexity") == {
      0: (-70.0, 40)}


def test_results_without_samples_are_one_line_errors():
  with pytest.raises(ValueError, match=r"^demo_rc: the results hold no per-item samples "
                     r"\(lm-eval's log_samples\)$"):
    paired.choice_items({"samples": {}}, "demo_rc")
  with pytest.raises(ValueError, match=r"^the results hold no per-item samples "
                     r"\(lm-eval's log_samples\)$"):
    paired.compare_runs({"samples": {"t": []}}, {})


def test_compare_runs_needs_an_output_type_from_the_configs():
  """Without configs, or without the task's, the output type is unknown: one error."""
  base = _results([_choice_sample(i, [-1.0, -2.0], 0, i) for i in range(2)], [])
  for configs in ({}, {"configs": {}}):
    results = {**configs, "samples": base["samples"]}
    with pytest.raises(ValueError, match=r"^demo_rc: the results' configs give no "
                       r"output_type$"):
      paired.compare_runs(results, results)


def _compare_pair():
  """Two runs: 4 multiple-choice items (b better on two, worse on one) and 12 documents."""
  margins = [([-1.0, -2.0], [-1.0, -1.5]), ([-2.0, -1.0], [-0.5, -1.0]),
             ([-1.0, -3.0], [-2.0, -1.0]), ([-1.0, -2.0], [-0.8, -2.0])]
  docs_a, docs_b = _noisy_documents(12, seed=4)
  runs = []
  for arm, docs in ((0, docs_a), (1, docs_b)):
    choice = [_choice_sample(i, lls[arm], 0, paragraph=i // 2, acc=float(lls[arm][0] > lls[arm][1]))
              for i, lls in enumerate(margins)]
    runs.append(_results(choice, [_rolling_sample(i, ll, n) for i, (ll, n) in enumerate(docs)]))
  return runs, docs_a, docs_b


def test_compare_runs_passes_task_seed_and_resamples_on():
  """compare_runs' accuracy estimate names the task; its bootstrap uses the given seed and
  resamples (default: seed 0, 2000 resamples), as the written-out bootstrap shows."""
  (a, b), docs_a, docs_b = _compare_pair()
  margin, acc, bits = paired.compare_runs(a, b, seed=7, resamples=300)
  # Margins a: 1, -1, 2, 1; b: 0.5, 0.5, -1, 1.2; differences -0.5, 1.5, -3, 0.2.
  assert margin.difference == pytest.approx((-0.5 + 1.5 - 3 + 0.2) / 4)
  # Right a: 1, 0, 1, 1; b: 1, 1, 0, 1: 1 vs 1 discordant.
  assert (acc.task, acc.method) == ("demo_rc", "McNemar exact (1 vs 1 discordant)")
  se, low, high, p = _bootstrap_reference(docs_a, docs_b, 300, 7)
  assert (bits.se, bits.ci_low, bits.ci_high, bits.p) == pytest.approx((se, low, high, p),
                                                                        rel=1e-12)
  default = paired.compare_runs(a, b)[2]
  assert default.method == "paired bootstrap over documents (2000 resamples)"
  assert default.se == pytest.approx(_bootstrap_reference(docs_a, docs_b, 2000, 0)[0], rel=1e-12)


def test_compare_runs_clusters_both_runs_items():
  """Both runs' items are read with the cluster field: a second run whose docs lack it is
  an error, not a silent pairing."""
  (a, b), _, _ = _compare_pair()
  for sample in b["samples"]["demo_rc"]:
    del sample["doc"]["paragraph"]
  paired.compare_runs(a, b)  # without clustering, nothing is missing
  with pytest.raises(ValueError, match=r"^demo_rc doc_id 0: the doc has no field 'paragraph'"):
    paired.compare_runs(a, b, cluster_field="paragraph")
