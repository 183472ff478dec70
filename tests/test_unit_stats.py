"""The statistics of `analysis.units` on hand-worked answers, without running a model (fast):
the streaming Welch statistics (Chan et al.'s merge), Welch's t, the top-p% selection, the
random control draw, the recorder's batching and padding (its device call replaced), the
localization, its per-layer summary and its files."""

import json
import math
import warnings

import jax
import matplotlib
import numpy as np
import pytest
from flax import linen as nn

from instruct_pt import parallel
from instruct_pt.analysis import units as analysis
from instruct_pt.model import units as units_lib
from instruct_pt.model.config import get_preset

TINY = get_preset("tiny")
NEEDS = "Welch's t-test needs at least 2 task and 2 control stimuli"


def _stats(*batches):
  """A WelchStats fed `batches` of `[n, 1, 1]` values given as lists."""
  stats = analysis.WelchStats()
  for batch in batches:
    stats.add(np.asarray(batch, np.float64).reshape(-1, 1, 1))
  return stats


def test_welch_stats_merge_batches_as_worked_by_hand():
  """[1, 3] then [5]: the first batch gives count 2, mean 2, m2 (1 + 1) = 2; the merge with
  [5] (mean 5, m2 0): delta 3, mean 2 + 3 * 1/3 = 3, m2 2 + 0 + 9 * (2 * 1 / 3) = 8, which is
  the two-pass (1 - 3)^2 + 0 + (5 - 3)^2 = 8; variance 8 / 2 = 4. Single-value batches
  (1, 3, 5 one by one) and an empty batch (ignored) give the same."""
  for stats in (_stats([1, 3], [5]), _stats([1], [3], [5]), _stats([], [1, 3], [], [5])):
    assert stats.count == 3
    np.testing.assert_array_equal(stats.mean, [[3.0]])
    np.testing.assert_array_equal(stats.m2, [[8.0]])
    np.testing.assert_array_equal(stats.variance(), [[4.0]])
  first = _stats([1, 3])
  assert first.count == 2 and first.mean[0, 0] == 2.0 and first.m2[0, 0] == 2.0
  empty = _stats([])
  assert empty.count == 0 and empty.mean is None and empty.m2 is None


def test_welch_stats_merge_three_batches_of_two_units():
  """Unit 0 takes 0, 2 | 4 | 6, 8, 10 (mean 5, squared deviations 25 + 9 + 1 + 1 + 9 + 25 =
  70, variance 14); unit 1 the same minus 5 (same spread, mean 0). Each merge: after [0, 2]
  and [4]: mean 2, m2 = 2 + 0 + 3^2 * 2/3 = 8; with [6, 8, 10] (mean 8, m2 8): delta 6,
  mean 2 + 6 * 3/6 = 5, m2 8 + 8 + 36 * 9/6 = 70."""
  values = np.asarray([0.0, 2.0, 4.0, 6.0, 8.0, 10.0])
  rows = np.stack([values, values - 5], axis=-1)[:, None, :]  # [6, 1, 2]
  stats = analysis.WelchStats()
  for a, b in ((0, 2), (2, 3), (3, 6)):
    stats.add(rows[a:b])
  assert stats.count == 6
  np.testing.assert_allclose(stats.mean, [[5.0, 0.0]], atol=1e-12)
  np.testing.assert_allclose(stats.m2, [[70.0, 70.0]], atol=1e-12)
  np.testing.assert_allclose(stats.variance(), [[14.0, 14.0]], atol=1e-12)


def test_welch_stats_accumulate_float32_batches_in_float64():
  """float32 activations are summed in float64: 1, 2, 4 have mean 7/3 and m2
  (16 + 1 + 25) / 9 = 14/3 to double precision (float32 arithmetic is off by ~1e-7)."""
  stats = analysis.WelchStats()
  stats.add(np.asarray([1, 2, 4], np.float32).reshape(3, 1, 1))
  assert stats.mean.dtype == np.float64
  assert stats.mean[0, 0] == pytest.approx(7 / 3, abs=1e-15)
  assert stats.m2[0, 0] == pytest.approx(14 / 3, abs=1e-14)


def test_welch_t_known_answers_and_nan_without_spread():
  """Task 1, 3, 5 (mean 3, variance 4, n 3), control 0, 2 (mean 1, variance 2, n 2):
  t = (3 - 1) / sqrt(4/3 + 2/2) = 2 sqrt(3/7) = 1.309307. Swapped: -t. Both conditions
  constant: no spread, NaN, even where the means differ (not inf); one constant condition
  keeps the other's spread: task 4, 4 against control 0, 2 gives 3 / sqrt(0 + 1) = 3. The
  divisions by 0 warn nothing."""
  t = analysis.welch_t(_stats([1, 3, 5]), _stats([0, 2]))
  assert t.shape == (1, 1) and t[0, 0] == pytest.approx(2 * math.sqrt(3 / 7), abs=1e-12)
  assert analysis.welch_t(_stats([0, 2]), _stats([1, 3, 5]))[0, 0] == pytest.approx(
      -2 * math.sqrt(3 / 7), abs=1e-12)
  with warnings.catch_warnings():  # x / 0 and 0 / 0 are expected: no RuntimeWarning
    warnings.simplefilter("error")
    assert np.isnan(analysis.welch_t(_stats([4, 4]), _stats([1, 1]))[0, 0])
    assert np.isnan(analysis.welch_t(_stats([4, 4]), _stats([4, 4]))[0, 0])
  assert analysis.welch_t(_stats([4, 4]), _stats([0, 2]))[0, 0] == pytest.approx(3.0)
  scipy_stats = pytest.importorskip("scipy.stats")
  assert t[0, 0] == pytest.approx(scipy_stats.ttest_ind([1, 3, 5], [0, 2],
                                                         equal_var=False).statistic)


def test_welch_t_needs_two_stimuli_in_each_condition():
  """Fewer than 2 values in either condition is refused, naming the condition and the count;
  exactly 2 in each is enough: task 0, 2 (mean 1, variance 2) against control 1, 5 (mean 3,
  variance 8) gives (1 - 3) / sqrt(2/2 + 8/2) = -2 / sqrt(5)."""
  with pytest.raises(ValueError, match=f"^1 task stimuli: {NEEDS}$"):
    analysis.welch_t(_stats([1]), _stats([0, 2]))
  with pytest.raises(ValueError, match=f"^1 control stimuli: {NEEDS}$"):
    analysis.welch_t(_stats([1, 3]), _stats([0]))
  with pytest.raises(ValueError, match=f"^0 task stimuli: {NEEDS}$"):
    analysis.welch_t(analysis.WelchStats(), analysis.WelchStats())
  assert analysis.welch_t(_stats([0, 2]), _stats([1, 5]))[0, 0] == pytest.approx(
      -2 / math.sqrt(5))


def test_top_units_count_order_ties_and_nan():
  """40 units: 10% is int(4.0) = 4, 11% int(4.4) = 4, 12.5% int(5.0) = 5; any share gives at
  least one unit. Highest t first; equal t in flat (layer-major) index order; NaN last."""
  t = np.zeros((4, 10))
  t[2, 3], t[0, 7], t[3, 0], t[1, 1] = 9.0, 8.0, -1.0, np.nan
  layers, indices = analysis.top_units(t, 10.0)
  assert list(zip(layers.tolist(), indices.tolist())) == [(2, 3), (0, 7), (0, 0), (0, 1)]
  assert len(analysis.top_units(t, 11.0)[0]) == 4 and len(analysis.top_units(t, 12.5)[0]) == 5
  assert len(analysis.top_units(t, 1e-9)[0]) == 1
  layers, indices = analysis.top_units(t, 100.0)
  order = list(zip(layers.tolist(), indices.tolist()))
  zeros = [(l, i) for l in range(4) for i in range(10) if t[l, i] == 0]
  assert order == [(2, 3), (0, 7), *zeros, (3, 0), (1, 1)]


def test_top_units_keeps_equal_t_in_index_order_on_many_units():
  """300 equal values (more than a non-stable sort keeps in place): the first 30 flat
  indices, in order; a larger t anywhere comes first."""
  t = np.ones((3, 100))
  layers, indices = analysis.top_units(t, 10.0)
  assert layers.tolist() == [0] * 30 and indices.tolist() == list(range(30))
  t[2, 50] = 2.0
  layers, indices = analysis.top_units(t, 1.0)
  assert layers.tolist() == [2, 0, 0] and indices.tolist() == [50, 0, 1]


@pytest.mark.parametrize("percent", [0.0, -5.0, 100.5, 1000.0])
def test_top_units_refuses_percentages_outside_0_100(percent):
  """(0, 100] only: 100 itself is every unit (checked above)."""
  with pytest.raises(ValueError, match=rf"^top_percent={percent}: give a percentage in "
                     r"\(0, 100\]$"):
    analysis.top_units(np.zeros((2, 2)), percent)


def test_random_units_draws_count_outside_the_selection():
  """The draw is numpy's `default_rng(seed).choice(free units, count, replace=False)` over
  the flat indices of the unselected units; drawing all 36 free units of 40 gives exactly the
  complement (a draw with replacement would repeat some and miss others)."""
  chosen = np.zeros((4, 10), bool)
  chosen[1, 2:6] = True
  free = np.flatnonzero(~chosen.ravel())
  for seed in (42, 43):
    drawn = analysis.random_units((4, 10), 5, chosen, seed)
    expected = np.zeros(40, bool)
    expected[np.random.default_rng(seed).choice(free, 5, replace=False)] = True
    assert drawn.shape == (4, 10) and drawn.dtype == bool
    np.testing.assert_array_equal(drawn, expected.reshape(4, 10))
    assert drawn.sum() == 5 and not (drawn & chosen).any()
  assert not np.array_equal(analysis.random_units((4, 10), 5, chosen, 42),
                            analysis.random_units((4, 10), 5, chosen, 43))
  np.testing.assert_array_equal(analysis.random_units((4, 10), 36, chosen, 0), ~chosen)


class _Tokenizer:
  """Encodes a text as its characters' code points."""

  def encode(self, text):
    return [ord(c) for c in text]


def test_encode_stimuli_cuts_to_max_tokens_and_refuses_empty_ones():
  """"abcdef" cut to 3 tokens is a, b, c; "xy" stays whole; an empty text (the 2nd) is refused
  with its 1-based number and its first 40 characters."""
  assert analysis.encode_stimuli(_Tokenizer(), ["abcdef", "xy"], 3) == [[97, 98, 99],
                                                                       [120, 121]]
  with pytest.raises(ValueError, match=r"^stimulus 2 \(''\) has no tokens$"):
    analysis.encode_stimuli(_Tokenizer(), ["ok", "", "fine"], 3)
  long = "z" * 50
  with pytest.raises(ValueError, match=rf"^stimulus 1 \('{'z' * 40}'\) has no tokens$"):
    analysis.encode_stimuli(_Tokenizer(), [long], 0)


def test_recorder_checks_its_arguments_and_keeps_its_defaults():
  """Defaults: 12 tokens per row, 16 rows per call; an unknown kind or pooling, and a zero or
  negative max_tokens or batch_size, are refused."""
  recorder = analysis.Recorder(TINY, None, "mlp", "mean")
  assert (recorder.max_tokens, recorder.batch_size) == (12, 16)
  assert recorder.params is None and recorder.mesh is None and recorder.rules is None
  with pytest.raises(ValueError):
    analysis.Recorder(TINY, None, "attention", "last")
  with pytest.raises(ValueError, match=r"^pooling='first'; choose one of \('last', 'mean'\)$"):
    analysis.Recorder(TINY, None, "mlp", "first")
  for max_tokens, batch_size in ((0, 4), (4, 0), (-1, 4), (4, -2)):
    with pytest.raises(ValueError, match=rf"^max_tokens={max_tokens} and "
                       rf"batch_size={batch_size} must be positive$"):
      analysis.Recorder(TINY, None, "residual", "last", max_tokens, batch_size)
  assert analysis.Recorder(TINY, None, "residual", "last", 1, 1).batch_size == 1


def _fake_run(calls):
  """A stand-in for the recorder's compiled program: records its inputs (and the logical
  axis rules and mesh axes in force) and returns `[batch, 2, 3]` values 0, 1, 2, ... ."""

  def run(params, tokens, lengths):
    calls.append((params, tokens.copy(), lengths.copy(), nn.get_logical_axis_rules(),
                  jax.sharding.get_abstract_mesh().shape_tuple))
    return np.arange(tokens.shape[0] * 6, dtype=np.float32).reshape(-1, 2, 3)
  return run


def test_recorder_pads_rows_to_fixed_shapes_and_keeps_real_rows():
  """max_tokens 3, batch_size 4: [5, 6, 7, 8] is cut to 5, 6, 7 (length 3), [9] padded with 0
  (length 1); the two unused rows are all 0 with length 1 (a valid last token). The returned
  units are the first 2 rows of the program's output."""
  calls = []
  recorder = analysis.Recorder(TINY, "params", "residual", "last", max_tokens=3, batch_size=4)
  recorder._run = _fake_run(calls)  # pylint: disable=protected-access
  pooled = recorder.pooled([[5, 6, 7, 8], (9,)])
  np.testing.assert_array_equal(pooled, np.arange(12).reshape(2, 2, 3))
  (params, tokens, lengths, rules, mesh), = calls
  assert params == "params"
  assert tokens.dtype == np.int32 and lengths.dtype == np.int32
  np.testing.assert_array_equal(tokens, [[5, 6, 7], [9, 0, 0], [0, 0, 0], [0, 0, 0]])
  np.testing.assert_array_equal(lengths, [3, 1, 1, 1])
  assert rules == () and mesh == ()


def test_recorder_runs_inside_the_meshs_sharding_context():
  """With a mesh, the program runs with the recorder's mesh and logical axis rules in
  force."""
  calls = []
  mesh = parallel.create_mesh((1, 1, 1), jax.devices()[:1])
  rules = parallel.LOGICAL_AXIS_RULES
  recorder = analysis.Recorder(TINY, None, "mlp", "last", 2, 2, mesh, rules)
  recorder._run = _fake_run(calls)  # pylint: disable=protected-access
  assert recorder.pooled([[1, 2]]).shape == (1, 2, 3)
  assert tuple(calls[0][3]) == tuple(rules)
  assert calls[0][4] == (("data", 1), ("fsdp", 1), ("tensor", 1))


def test_recorder_stats_batch_the_stimuli_and_take_absolute_values():
  """5 stimuli in batches of 2: calls on stimuli 0-1, 2-3, 4; stimulus i's units are
  (-1)^i (i + 1) everywhere, so the statistics are of |.| = 1, 2, 3, 4, 5: count 5, mean 3,
  m2 4 + 1 + 0 + 1 + 4 = 10 (signed values would have mean 3/5)."""
  recorder = analysis.Recorder(TINY, None, "residual", "last", max_tokens=4, batch_size=2)
  seen = []

  def pooled(stimuli):
    seen.append([s[0] for s in stimuli])
    return np.stack([np.full((2, 3), (-1.0) ** s[0] * (s[0] + 1)) for s in stimuli])
  recorder.pooled = pooled
  stats = recorder.stats([[i] for i in range(5)])
  assert seen == [[0, 1], [2, 3], [4]]
  assert stats.count == 5
  np.testing.assert_allclose(stats.mean, np.full((2, 3), 3.0), atol=1e-12)
  np.testing.assert_allclose(stats.m2, np.full((2, 3), 10.0), atol=1e-12)


class _Recorder:
  """Stands in for `Recorder`: each stimulus is its own `[layers, width]` units."""
  max_tokens = 7

  def __init__(self):
    self.calls = 0

  def stats(self, stimuli):
    self.calls += 1
    stats = analysis.WelchStats()
    stats.add(np.abs(np.asarray(stimuli, np.float64)))
    return stats


def _conditions():
  """Task units a - 2, a, a + 2 with a = [[3, 2], [5, 4]] (variance 4, n 3) and control 0, 2
  everywhere (mean 1, variance 2, n 2): t = (a - 1) / sqrt(4/3 + 1) = (a - 1) sqrt(3/7)."""
  a = np.asarray([[3.0, 2.0], [5.0, 4.0]])
  return [a - 2, a, a + 2], [np.zeros((2, 2)), np.full((2, 2), 2.0)]


def test_localize_selects_the_top_units_by_welch_t():
  """t = [[2, 1], [4, 3]] sqrt(3/7); 50% of 4 units is 2: (1, 0) then (1, 1), with t
  4 sqrt(3/7) and 3 sqrt(3/7). The info records the percentage, the stimulus counts and
  max_tokens, with the caller's extra facts. Every unit at 100%; a share below 1% still
  selects the top unit (int(0.005 * 4) = 0, at least 1)."""
  task, control = _conditions()
  found = analysis.localize(_Recorder(), "mlp", task, control, 50.0, {"model": "tiny"})
  scale = math.sqrt(3 / 7)
  np.testing.assert_allclose(found.t, np.asarray([[2.0, 1.0], [4.0, 3.0]]) * scale, atol=1e-12)
  u = found.units
  assert isinstance(u, units_lib.UnitSet) and u.kind == "mlp" and u.shape == (2, 2)
  assert u.layers.tolist() == [1, 1] and u.indices.tolist() == [0, 1]
  np.testing.assert_allclose(u.t, [4 * scale, 3 * scale], atol=1e-12)
  assert u.info == {"top_percent": 50.0, "task_stimuli": 3, "control_stimuli": 2,
                    "max_tokens": 7, "model": "tiny"}
  found = analysis.localize(_Recorder(), "residual", task, control, 100.0)
  assert found.units.info == {"top_percent": 100.0, "task_stimuli": 3, "control_stimuli": 2,
                              "max_tokens": 7}
  assert found.units.kind == "residual" and found.units.indices.tolist() == [0, 1, 0, 1]
  tiny_share = analysis.localize(_Recorder(), "mlp", task, control, 0.5).units
  assert (tiny_share.layers.tolist(), tiny_share.indices.tolist()) == ([1], [0])


def test_localize_refuses_before_recording():
  """Too few stimuli in a condition, or a bad percentage, is refused before any recording
  (the recorder is never called); 2 stimuli per condition are enough."""
  task, control = _conditions()
  recorder = _Recorder()
  with pytest.raises(ValueError, match=f"^1 task stimuli: {NEEDS}$"):
    analysis.localize(recorder, "mlp", task[:1], control, 50.0)
  with pytest.raises(ValueError, match=f"^1 control stimuli: {NEEDS}$"):
    analysis.localize(recorder, "mlp", task, control[:1], 50.0)
  for percent in (0.0, 101.0):
    with pytest.raises(ValueError, match=rf"^top_percent={percent}: give a percentage in "
                       r"\(0, 100\]$"):
      analysis.localize(recorder, "mlp", task, control, percent)
  assert recorder.calls == 0
  assert len(analysis.localize(recorder, "mlp", task[:2], control, 100.0).units) == 4
  assert recorder.calls == 2


def _localization():
  """t of 3 layers x 2 units with a NaN; the top 2 units (1, 0) t 4 and (0, 0) t 1; layer 2
  has none."""
  t = np.asarray([[1.0, np.nan], [4.0, -2.0], [0.5, 0.25]])
  units = units_lib.UnitSet("residual", (3, 2), np.asarray([1, 0]), np.asarray([0, 0]),
                            np.asarray([4.0, 1.0]), {"top_percent": 40.0})
  return analysis.Localization(t, units)


def test_per_layer_counts_and_t_with_nan_as_zero():
  """Selected per layer [1, 1, 0] (layer 2 counted though empty); NaN taken as 0: means
  (1 + 0)/2 = 0.5, (4 - 2)/2 = 1, (0.5 + 0.25)/2 = 0.375; maxima 1, 4, 0.5."""
  assert analysis.per_layer(_localization()) == {
      "selected": [1, 1, 0], "mean_t": [0.5, 1.0, 0.375], "max_t": [1.0, 4.0, 0.5]}


def test_summary_is_one_json_line_of_the_selection():
  """Kind, 2 selected of 3 x 2 = 6, the selection's t from 1 to 4, per layer [1, 1, 0]; an
  empty selection has no t range."""
  line = analysis.summary(_localization())
  assert "\n" not in line
  assert json.loads(line) == {"kind": "residual", "selected": 2, "of": 6,
                              "t_min_selected": 1.0, "t_max": 4.0, "per_layer": [1, 1, 0]}
  empty = analysis.Localization(np.zeros((2, 5)), units_lib.UnitSet(
      "mlp", (2, 5), np.zeros(0, int), np.zeros(0, int), np.zeros(0), {}))
  assert json.loads(analysis.summary(empty)) == {
      "kind": "mlp", "selected": 0, "of": 10, "t_min_selected": None, "t_max": None,
      "per_layer": [0, 0]}


def _png_size(path):
  """(width, height) from a PNG's IHDR chunk."""
  data = path.read_bytes()
  assert data[:8] == b"\x89PNG\r\n\x1a\n"
  return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _figures(monkeypatch):
  """Keeps the figures that `plot_layers` closes, to read them."""
  plt = pytest.importorskip("matplotlib.pyplot")
  kept = []
  monkeypatch.setattr(plt, "close", kept.append)
  return kept


def test_write_creates_the_directory_and_its_three_files(tmp_path, monkeypatch):
  """units.json (the UnitSet), t_values.npy (every t, NaN kept) and units.png (8 x 5 inches at
  100 dpi: 800 x 500 pixels) in a directory it creates; the paths come back by name; the
  caller's title heads the figure, else the default one; writing again into the same
  directory replaces them."""
  figures = _figures(monkeypatch)
  out = tmp_path / "a" / "b"
  paths = analysis.write(_localization(), str(out), "my title")
  assert paths == {name: str(out / name) for name in ("units.json", "t_values.npy",
                                                      "units.png")}
  np.testing.assert_array_equal(np.load(out / "t_values.npy"), _localization().t)
  data = json.loads((out / "units.json").read_text())
  assert data["kind"] == "residual" and data["count"] == 2 and data["shape"] == [3, 2]
  assert [(u["layer"], u["index"], u["t"]) for u in data["units"]] == [(1, 0, 4.0), (0, 0, 1.0)]
  assert _png_size(out / "units.png") == (800, 500)
  assert len(figures) == 1 and figures[0].get_suptitle() == "my title"
  # Again into the same directory (a re-run), without a title: the default one.
  assert analysis.write(_localization(), str(out)) == paths
  assert figures[1].get_suptitle() == "top 40.0% residual units: 2 of 6"


def test_plot_layers_draws_counts_and_t_per_layer(tmp_path, monkeypatch):
  """Top: one bar per layer, the selected counts [1, 1, 0]; bottom, sharing the layer axis:
  the mean t [0.5, 1, 0.375] and max t [1, 4, 0.5] lines with a legend and a line at 0. The
  default title names the percentage, the kind and the count of all units. Size (800 x 500
  pixels) and colours hold under another style's dpi and colour cycle."""
  figures = _figures(monkeypatch)
  path = tmp_path / "units.png"
  # Its size and colours are its own, whatever the style: another dpi and colour cycle here.
  cycler = pytest.importorskip("cycler")
  with matplotlib.rc_context({"figure.dpi": 50, "savefig.dpi": 50,
                              "axes.prop_cycle": cycler.cycler(color=["#000000"])}):
    analysis.plot_layers(_localization(), str(path))
  assert _png_size(path) == (800, 500)
  figure, = figures
  assert figure.get_suptitle() == "top 40.0% residual units: 2 of 6"
  top, bottom = figure.axes
  assert [bar.get_height() for bar in top.patches] == [1, 1, 0]
  assert [bar.get_x() + bar.get_width() / 2 for bar in top.patches] == [0, 1, 2]
  assert matplotlib.colors.to_hex(top.patches[0].get_facecolor()) == "#1f77b4"
  assert top.get_ylabel() == "selected units"
  assert top.get_shared_x_axes().joined(top, bottom)
  mean, high, zero = bottom.get_lines()
  assert mean.get_label() == "mean t" and list(mean.get_ydata()) == [0.5, 1.0, 0.375]
  assert high.get_label() == "max t" and list(high.get_ydata()) == [1.0, 4.0, 0.5]
  assert list(mean.get_xdata()) == [0, 1, 2] and list(high.get_xdata()) == [0, 1, 2]
  assert matplotlib.colors.to_hex(mean.get_color()) == "#555555"
  assert matplotlib.colors.to_hex(high.get_color()) == "#d62728"
  assert list(zero.get_ydata()) == [0, 0] and zero.get_linewidth() == 0.5
  assert matplotlib.colors.to_hex(zero.get_color()) == "#999999"
  assert (bottom.get_xlabel(), bottom.get_ylabel()) == ("layer", "Welch t")
  legend = bottom.get_legend()
  assert [text.get_text() for text in legend.get_texts()] == ["mean t", "max t"]
  assert legend.get_texts()[0].get_fontsize() == 8
  assert figure.get_figwidth() == 8 and figure.get_figheight() == 5
