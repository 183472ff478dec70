"""optim.py: the optimizer config's checks, learning-rate schedules, the weight-decay mask,
unit update masks and the AdamW chain (clipping, moments, decoupled decay, masking).

Every expected value is derived by hand from the formulas in the docstrings of optim.py and
optax (`linear_schedule`: I + t / T (E - I); `cosine_decay_schedule`:
I (alpha + (1 - alpha) (1 + cos(pi t / T)) / 2); Adam: mu = b1 mu + (1 - b1) g,
nu = b2 nu + (1 - b2) g^2, update = -lr (mu / (1 - b1^k)) / (sqrt(nu / (1 - b2^k)) + eps),
plus -lr wd p for decayed leaves), never by calling the code under test.
"""

import math
import re

import jax
import numpy as np
import optax
import pytest

from instruct_pt.model.config import get_preset
from instruct_pt.model.transformer import Decoder
from instruct_pt.train import optim


def test_schedule_warmup_then_cosine_to_final_ratio():
  """Linear warmup to the peak, cosine decay to final_lr_ratio x peak at num_steps."""
  config = optim.OptimizerConfig(learning_rate=1.0, warmup_steps=10, final_lr_ratio=0.1)
  schedule = optim.make_schedule(config, num_steps=110)
  assert float(schedule(0)) == 0.0
  np.testing.assert_allclose(schedule(5), 0.5, rtol=1e-6)
  np.testing.assert_allclose(schedule(10), 1.0, rtol=1e-6)
  np.testing.assert_allclose(schedule(60), 0.1 + 0.9 * 0.5, rtol=1e-5)  # half-way: cos = 0
  np.testing.assert_allclose(schedule(110), 0.1, rtol=1e-5)
  linear = optim.make_schedule(optim.OptimizerConfig(learning_rate=1.0, schedule="linear",
                                                     final_lr_ratio=0.0), num_steps=100)
  np.testing.assert_allclose(linear(25), 0.75, rtol=1e-6)


def test_cosine_and_linear_decay_differ_a_quarter_of_the_way():
  """Peak 2, warmup 10, decay over 110 - 10 = 100 steps to ratio 0.1. At step 35 (t = 25,
  t / T = 1/4) the cosine gives 2 (0.1 + 0.9 (1 + cos(pi / 4)) / 2) = 1.73640 and the linear
  decay 2 (1 - 0.9 / 4) = 1.55 (half-way the two agree, so a quarter tells them apart); past
  the end both stay at 0.1 x 2 = 0.2."""
  cosine = optim.make_schedule(
      optim.OptimizerConfig(learning_rate=2.0, warmup_steps=10, final_lr_ratio=0.1), 110)
  linear = optim.make_schedule(optim.OptimizerConfig(
      learning_rate=2.0, warmup_steps=10, schedule="linear", final_lr_ratio=0.1), 110)
  np.testing.assert_allclose(cosine(35), 2 * (0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2),
                             rtol=1e-6)
  np.testing.assert_allclose(linear(35), 1.55, rtol=1e-6)
  np.testing.assert_allclose(linear(3), 0.6, rtol=1e-6)  # warmup: 2 x 3 / 10
  for step in (110, 500):
    np.testing.assert_allclose(cosine(step), 0.2, rtol=1e-5)
    np.testing.assert_allclose(linear(step), 0.2, rtol=1e-5)


def test_decay_steps_overrides_the_run_length():
  """decay_steps=4 with a 100-step run: the linear decay from 2 to 0.5 x 2 = 1 ends at step 4,
  so step 2 is half-way (1.5) and step 50 already at 1; decaying over 100 steps instead would
  give 2 - 2 / 100 = 1.98 at step 2."""
  schedule = optim.make_schedule(optim.OptimizerConfig(
      learning_rate=2.0, schedule="linear", decay_steps=4, final_lr_ratio=0.5), num_steps=100)
  np.testing.assert_allclose([schedule(s) for s in (0, 2, 4, 50)], [2.0, 1.5, 1.0, 1.0],
                             rtol=1e-6)


def test_constant_schedule_holds_the_peak_after_warmup():
  """Peak 2, warmup 4, constant: 0, 1 (2 x 2 / 4), then 2 at steps 4 and 1000 whatever
  final_lr_ratio says."""
  schedule = optim.make_schedule(optim.OptimizerConfig(
      learning_rate=2.0, warmup_steps=4, schedule="constant", final_lr_ratio=0.1), 10)
  np.testing.assert_allclose([schedule(s) for s in (0, 2, 4, 1000)], [0.0, 1.0, 2.0, 2.0],
                             rtol=1e-6)


def test_one_warmup_step_and_a_one_step_decay():
  """warmup_steps=1: step 0 has learning rate 0 and step 1 the peak. Without warmup, a
  one-step run decays linearly from 1 to ratio 0 within that one step (step 1 gives 0, not
  the 0.5 of a two-step decay)."""
  warm = optim.make_schedule(optim.OptimizerConfig(learning_rate=1.0, warmup_steps=1), 5)
  assert float(warm(0)) == 0.0
  np.testing.assert_allclose(warm(1), 1.0, rtol=1e-6)
  short = optim.make_schedule(optim.OptimizerConfig(
      learning_rate=1.0, schedule="linear", final_lr_ratio=0.0), num_steps=1)
  np.testing.assert_allclose([short(0), short(1)], [1.0, 0.0], atol=1e-7)
  same_end = optim.make_schedule(optim.OptimizerConfig(
      learning_rate=1.0, warmup_steps=3, schedule="linear", final_lr_ratio=0.0), num_steps=3)
  np.testing.assert_allclose([same_end(3), same_end(4)], [1.0, 0.0], atol=1e-7)


@pytest.mark.parametrize("settings, message", [
    (dict(schedule="step"), "OptimizerConfig.schedule='step'; choose one of "
                            "('cosine', 'linear', 'constant')"),
    (dict(learning_rate=0.0), "OptimizerConfig.learning_rate must be positive, got 0.0"),
    (dict(learning_rate=-1e-3), "OptimizerConfig.learning_rate must be positive, got -0.001"),
    (dict(warmup_steps=-1), "OptimizerConfig.warmup_steps must be >= 0, got -1"),
])
def test_bad_settings_are_refused_with_their_value(settings, message):
  """Each invalid setting raises ValueError naming the field and the value given."""
  with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
    optim.OptimizerConfig(**settings)


def test_boundary_settings_are_accepted():
  """The edges of the valid ranges: any positive learning rate (0.5, below 1 too), zero
  warmup, and every named schedule."""
  for schedule in optim.SCHEDULES:
    config = optim.OptimizerConfig(learning_rate=0.5, warmup_steps=0, schedule=schedule)
    assert config.schedule == schedule


def test_weight_decay_skips_norm_scales():
  """Weight decay applies to kernels and embeddings, not to RMSNorm scales."""
  params = jax.eval_shape(Decoder(get_preset("tiny")).init, jax.random.key(0),
                          np.zeros((1, 4), np.int32))["params"]
  mask = optim.weight_decay_mask(params)
  assert mask["layers"]["attention"]["query"]["kernel"].value is True
  assert mask["embedder"]["embedding"].value is True
  assert mask["layers"]["mlp_norm"]["scale"].value is False
  assert mask["final_norm"]["scale"].value is False


def test_weight_decay_mask_reads_the_last_dict_key():
  """The leaf's own (last) dict key decides: "scale" and "bias" do not decay wherever they
  sit, a "scale" higher up does not stop a kernel below it, list positions are not names, and
  a bare array (no key at all) decays."""
  x = np.zeros(2)
  params = {"norm": {"scale": x}, "dense": {"bias": x, "kernel": x},
            "scale": {"kernel": x}, "heads": [{"bias": x}, x]}
  assert optim.weight_decay_mask(params) == {
      "norm": {"scale": False}, "dense": {"bias": False, "kernel": True},
      "scale": {"kernel": True}, "heads": [{"bias": False}, True]}
  assert optim.weight_decay_mask(x) is True


def _mlp_params(layers=2, embed=2, width=3):
  return {"layers": {"mlp": {"gate": {"kernel": np.ones((layers, embed, width))},
                             "up": {"kernel": np.ones((layers, embed, width))},
                             "down": {"kernel": np.ones((layers, width, embed))}},
                     "attention": {"out": {"kernel": np.ones((layers, 2, 2, embed))}}},
          "embedder": {"embedding": np.ones((5, embed))}}


def test_mlp_unit_mask_marks_the_units_rows_and_columns():
  """MLP units (0, 0) and (1, 2) of a 2-layer, width-3 MLP: gate/up kernel[l, :, n] and
  down kernel[l, n, :] are True there and nowhere else; every other leaf is frozen (False).
  With freeze=True the same masks are negated; the default is freeze=False."""
  selected = np.array([[True, False, False], [False, False, True]])
  up = np.zeros((2, 2, 3), bool)
  up[0, :, 0] = up[1, :, 2] = True
  down = np.zeros((2, 3, 2), bool)
  down[0, 0, :] = down[1, 2, :] = True
  for freeze in (False, True):
    masks = jax.device_get(optim.unit_update_mask("mlp", selected, freeze)(_mlp_params()))
    mlp = masks["layers"]["mlp"]
    for name, expected in (("gate", up), ("up", up), ("down", down)):
      np.testing.assert_array_equal(mlp[name]["kernel"], expected != freeze, err_msg=name)
    np.testing.assert_array_equal(masks["layers"]["attention"]["out"]["kernel"],
                                  np.full((2, 2, 2, 2), freeze))
    np.testing.assert_array_equal(masks["embedder"]["embedding"], np.full((5, 2), freeze))
    assert all(m.dtype == bool for m in jax.tree_util.tree_leaves(masks))
  default = jax.device_get(optim.unit_update_mask("mlp", selected)(_mlp_params()))
  np.testing.assert_array_equal(default["layers"]["mlp"]["up"]["kernel"], up)  # freeze=False


def test_residual_unit_mask_marks_the_written_dimension():
  """Residual unit (1, 0) of a 2-layer, 2-dim stream: attention out kernel[1, :, :, 0] and
  down kernel[1, :, 0] are trained; the gate and up kernels and the embedding are not.
  Nonzero entries of a non-bool table count as chosen (2 is chosen, so with freeze=True
  it is frozen: the table is read as bool, not compared as the number 2 with True = 1)."""
  selected = np.array([[0, 0], [2, 0]])
  out = np.zeros((2, 2, 2, 2), bool)
  out[1, :, :, 0] = True
  down = np.zeros((2, 3, 2), bool)
  down[1, :, 0] = True
  for freeze in (False, True):
    masks = jax.device_get(optim.unit_update_mask("residual", selected, freeze)(_mlp_params()))
    np.testing.assert_array_equal(masks["layers"]["attention"]["out"]["kernel"], out != freeze)
    np.testing.assert_array_equal(masks["layers"]["mlp"]["down"]["kernel"], down != freeze)
    np.testing.assert_array_equal(masks["layers"]["mlp"]["gate"]["kernel"],
                                  np.full((2, 2, 3), freeze))


@pytest.mark.parametrize("selected_shape", [(3, 3), (2, 4)])
def test_unit_table_of_the_wrong_shape_is_refused(selected_shape):
  """A table whose layer count (3 for 2 layers) or width (4 for 3) does not match the leaf
  raises, naming the leaf, its shape, the kind and the table's shape (the first leaf in key
  order is the down kernel [layers 2, width 3, embed 2])."""
  message = ("layers/mlp/down/kernel has shape (2, 3, 2); "
             f"mlp units of shape {selected_shape} do not fit it")
  with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
    optim.unit_update_mask("mlp", np.zeros(selected_shape, bool))(_mlp_params())


def test_gradient_clipping_bounds_the_update_norm():
  """With clip_norm, the first Adam update is computed from clipped gradients: after one step
  the first moment is (1 - b1) x the clipped gradient, so its norm is (1 - b1) x clip_norm
  (0.1 x 1.0), where the unclipped gradient (norm 200) would give 20."""
  config = optim.OptimizerConfig(clip_norm=1.0, weight_decay=0.0)
  tx, _ = optim.make_optimizer(config, 10)
  params = {"w": np.ones(4, np.float32)}
  state = tx.init(params)
  grads = {"w": np.full(4, 100.0, np.float32)}
  updates, state = tx.update(grads, state, params)
  first_moment = optax.tree_utils.tree_get(state, "mu")
  assert math.isclose(float(optax.tree.norm(first_moment)), (1 - config.b1) * config.clip_norm,
                      rel_tol=1e-5)
  assert np.all(np.isfinite(updates["w"]))


@pytest.mark.parametrize("clip_norm", [None, 0.0])
def test_clip_norm_none_or_zero_disables_clipping(clip_norm):
  """Without clipping the first moment after one step is (1 - b1) g = 0.1 x [100, 100]."""
  tx, _ = optim.make_optimizer(optim.OptimizerConfig(clip_norm=clip_norm), 10)
  params = {"w": np.ones(2, np.float32)}
  _, state = tx.update({"w": np.full(2, 100.0, np.float32)}, tx.init(params), params)
  np.testing.assert_allclose(optax.tree_utils.tree_get(state, "mu")["w"], [10.0, 10.0],
                             rtol=1e-6)


def test_first_adamw_step_by_hand():
  """lr 0.5 (constant), b1 0.5, b2 0.75, eps 1, weight decay 0.25, no clipping.
  g = kernel [1, 3], scale [3]; p = kernel [2, -4], scale [2].
  Moments: mu = (1 - b1) g = kernel [0.5, 1.5], scale [1.5]; nu = (1 - b2) g^2 = kernel
  [0.25, 2.25], scale [2.25]. Bias-corrected they are g and g^2, so Adam gives g / (|g| + 1) =
  [0.5, 0.75], [0.75]; decay adds 0.25 p to the kernel only: [1.0, -0.25]; times -lr:
  kernel [-0.5, 0.125], scale [-0.375]."""
  config = optim.OptimizerConfig(learning_rate=0.5, schedule="constant", b1=0.5, b2=0.75,
                                 eps=1.0, weight_decay=0.25, clip_norm=None)
  tx, schedule = optim.make_optimizer(config, 10)
  assert float(schedule(7)) == 0.5
  params = {"kernel": np.array([2.0, -4.0], np.float32), "scale": np.array([2.0], np.float32)}
  grads = {"kernel": np.array([1.0, 3.0], np.float32), "scale": np.array([3.0], np.float32)}
  updates, state = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(updates["kernel"], [-0.5, 0.125], rtol=1e-6)
  np.testing.assert_allclose(updates["scale"], [-0.375], rtol=1e-6)
  mu = optax.tree_utils.tree_get(state, "mu")
  nu = optax.tree_utils.tree_get(state, "nu")
  np.testing.assert_allclose(mu["kernel"], [0.5, 1.5], rtol=1e-6)
  np.testing.assert_allclose(nu["kernel"], [0.25, 2.25], rtol=1e-6)
  np.testing.assert_allclose(mu["scale"], [1.5], rtol=1e-6)
  np.testing.assert_allclose(nu["scale"], [2.25], rtol=1e-6)


def test_second_adamw_step_follows_the_schedule():
  """Cosine decay over the run's 2 steps (ratio 0.1, peak 1), b1 0.5, b2 0.75, no decay,
  g1 = 1, g2 = 3. Step 1: lr(0) = 1 and the update is -g / |g| = -1 (eps 1e-8 negligible).
  Step 2: mu = 0.5 x 0.5 + 0.5 x 3 = 1.75, nu = 0.75 x 0.25 + 0.25 x 9 = 2.4375; corrected
  1.75 / (1 - 0.25) and 2.4375 / (1 - 0.5625); lr(1) = 0.1 + 0.9 (1 + cos(pi / 2)) / 2 = 0.55."""
  config = optim.OptimizerConfig(learning_rate=1.0, b1=0.5, b2=0.75, weight_decay=0.0,
                                 clip_norm=None)
  tx, schedule = optim.make_optimizer(config, 2)
  np.testing.assert_allclose([schedule(1), schedule(2)], [0.55, 0.1], rtol=1e-6)
  params = {"w": np.array([0.0], np.float32)}
  state = tx.init(params)
  first, state = tx.update({"w": np.array([1.0], np.float32)}, state, params)
  second, _ = tx.update({"w": np.array([3.0], np.float32)}, state, params)
  np.testing.assert_allclose(first["w"], [-1.0], rtol=1e-6)
  expected = -0.55 * (1.75 / 0.75) / math.sqrt(2.4375 / 0.4375)
  np.testing.assert_allclose(second["w"], [expected], rtol=1e-5)


def test_update_mask_applies_to_gradients_and_to_the_final_updates():
  """Only w[0] trains (mask [True, False]). g = [3, 4]: masked first, its norm is 3, so
  clipping to 1 gives [1, 0] and mu = (1 - b1) [1, 0] = [0.1, 0] (clipping the unmasked
  norm 5 would give mu[0] = 0.06). Weight decay 0.5 on p = [2, 2] would move w[1] by
  -lr x 0.5 x 2 = -0.01; the final mask keeps it at exactly 0. w[0]: -lr (1 + 0.5 x 2) = -0.02.
  The masking transform is stateless (optax.EmptyState)."""
  config = optim.OptimizerConfig(learning_rate=0.01, schedule="constant", weight_decay=0.5,
                                 clip_norm=1.0)
  def first_entry_only(tree):  # reads the tree it is given: True at index 0 of each leaf
    return jax.tree.map(lambda leaf: np.arange(leaf.shape[0]) == 0, tree)
  tx, _ = optim.make_optimizer(config, 10, update_mask=first_entry_only)
  params = {"w": np.array([2.0, 2.0], np.float32)}
  state = tx.init(params)
  assert isinstance(state[0], optax.EmptyState) and isinstance(state[-1], optax.EmptyState)
  updates, state = tx.update({"w": np.array([3.0, 4.0], np.float32)}, state, params)
  np.testing.assert_allclose(optax.tree_utils.tree_get(state, "mu")["w"], [0.1, 0.0],
                             rtol=1e-6)
  assert float(updates["w"][1]) == 0.0
  np.testing.assert_allclose(updates["w"][0], -0.02, rtol=1e-6)
