"""Task-relevant units (`analysis.units`, `model.units`, `instruct-pt analyze-units`): recording
with the model's own code, streaming Welch t, top-p% selection, ablation masks in the scanned
layers, targeted tuning masks in the optimizer, and the one-line errors. Tiny model, CPU.
"""

import dataclasses
import functools
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from instruct_pt import cli, parallel, run_dir
from instruct_pt.analysis import units as analysis
from instruct_pt.data import sources
from instruct_pt.data import feed
from instruct_pt.data import tokenizer as tokenizer_lib
from instruct_pt.model import store
from instruct_pt.model import units as units_lib
from instruct_pt.model.config import get_preset
from instruct_pt.model.transformer import Attention, Decoder
from instruct_pt.train import loop, optim
from trees import zip_leaves  # pylint: disable=wrong-import-position

RULES = parallel.LOGICAL_AXIS_RULES
TINY = get_preset("tiny")
L, D, M = TINY.num_layers, TINY.embed_dim, TINY.mlp_dim


@pytest.fixture(scope="module")
def mesh():
  return parallel.create_mesh((1, 1, 1), jax.devices()[:1])


@pytest.fixture(scope="module")
def params(mesh):
  return jax.device_get(store.init_params(TINY, mesh, RULES, seed=3))


def _tokens(seed=0, shape=(3, 10)):
  return jnp.asarray(np.random.default_rng(seed).integers(1, TINY.vocab_size, shape), jnp.int32)


def _rms(x, scale):
  x = x.astype(jnp.float32)
  return x * jax.lax.rsqrt(jnp.mean(x * x, -1, keepdims=True) + TINY.norm_eps) * scale


@jax.jit
def _manual_forward(params, tokens):
  """Residual and MLP units of every layer, one unscanned layer at a time; the MLP by hand."""
  x = params["embedder"]["embedding"][tokens]
  positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
  residual, hidden = [], []
  for i in range(L):
    p = jax.tree_util.tree_map(lambda a, i=i: a[i], params["layers"])
    attn, _ = Attention(TINY).apply({"params": p["attention"]},
                                    _rms(x, p["attention_norm"]["scale"]), positions, None, None,
                                    None)
    x = x + attn
    n = _rms(x, p["mlp_norm"]["scale"])
    h = jax.nn.silu(n @ p["mlp"]["gate"]["kernel"]) * (n @ p["mlp"]["up"]["kernel"])
    x = x + h @ p["mlp"]["down"]["kernel"]
    residual.append(x)
    hidden.append(h)
  return jnp.stack(residual), jnp.stack(hidden)


def _apply(params, tokens, unit_keep=None, record=False):
  """`Decoder(TINY).apply`, jitted: `(logits, intermediates or None)`."""
  return _jitted_apply(params, tokens, unit_keep, record)


@functools.partial(jax.jit, static_argnums=3)
def _jitted_apply(params, tokens, unit_keep, record):
  if not record:
    return Decoder(TINY).apply({"params": params}, tokens, unit_keep=unit_keep)[0], None
  (logits, _), state = Decoder(TINY).apply({"params": params}, tokens, unit_keep=unit_keep,
                                           mutable=["intermediates"])
  return logits, state["intermediates"]["layers"]


def test_recorded_units_equal_a_manual_forward_and_pool_by_the_mask(params):
  tokens = _tokens()
  _, recorded = _apply(params, tokens, record=True)
  residual, hidden = _manual_forward(params, tokens)
  np.testing.assert_allclose(recorded["residual"][0], residual, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(recorded["mlp"]["mlp"][0], hidden, rtol=1e-5, atol=1e-5)
  lengths = jnp.asarray([10, 4, 1], jnp.int32)
  pool = jax.jit(lambda p, t, n: {(kind, pooling): analysis.pooled_units(
      Decoder(TINY), p, t, n, kind, pooling) for kind in ("residual", "mlp")
                                   for pooling in ("last", "mean")})
  pooled = pool(params, tokens, lengths)
  for kind, manual in (("residual", residual), ("mlp", hidden)):
    last, mean = pooled[kind, "last"], pooled[kind, "mean"]
    for row, n in enumerate([10, 4, 1]):
      np.testing.assert_allclose(last[row], manual[:, row, n - 1], rtol=1e-5, atol=1e-5)
      np.testing.assert_allclose(mean[row], manual[:, row, :n].mean(axis=1), rtol=1e-5,
                                 atol=1e-5)
  # A Recorder of residual units pooled by the last token, on the rows' real tokens only (its
  # zero padding comes after them, so causal attention keeps the prefixes' activations).
  recorder = analysis.Recorder(TINY, params, "residual", "last", max_tokens=10, batch_size=4)
  recorded = recorder.pooled([list(tokens[row, :n]) for row, n in enumerate([10, 4, 1])])
  assert recorded.shape == (3, L, D) and recorded.dtype == np.float32
  for row, n in enumerate([10, 4, 1]):
    np.testing.assert_allclose(recorded[row], residual[:, row, n - 1], rtol=1e-5, atol=1e-5)


def test_pooled_units_are_float32_for_a_bfloat16_model(params):
  """A bfloat16 model records bfloat16 units; pooling returns them as float32 (the statistics
  are accumulated in float64 from there)."""
  model = Decoder(dataclasses.replace(TINY, dtype="bfloat16"))
  tokens, lengths = _tokens(4, (2, 6)), jnp.asarray([6, 3], jnp.int32)
  _, state = jax.jit(lambda p, t: model.apply({"params": p}, t, mutable=["intermediates"]))(
      params, tokens)
  assert state["intermediates"]["layers"]["residual"][0].dtype == jnp.bfloat16
  pooled = jax.jit(lambda p, t, n: analysis.pooled_units(model, p, t, n, "residual", "last"))(
      params, tokens, lengths)
  assert pooled.dtype == jnp.float32 and pooled.shape == (2, L, D)


def test_streaming_welch_t_equals_a_two_pass_computation():
  rng = np.random.default_rng(0)
  task = np.abs(rng.normal(1.0, 2.0, (37, 3, 5)))
  control = np.abs(rng.normal(0.5, 1.0, (23, 3, 5)))
  stats = [analysis.WelchStats(), analysis.WelchStats()]
  for values, acc, cuts in ((task, stats[0], (0, 1, 9, 20, 37)), (control, stats[1], (0, 23))):
    for a, b in zip(cuts, cuts[1:]):
      acc.add(values[a:b])
  t = analysis.welch_t(*stats)
  expected = (task.mean(0) - control.mean(0)) / np.sqrt(
      task.var(0, ddof=1) / len(task) + control.var(0, ddof=1) / len(control))
  np.testing.assert_allclose(t, expected, rtol=1e-10)
  scipy_stats = pytest.importorskip("scipy.stats")
  np.testing.assert_allclose(t, scipy_stats.ttest_ind(task, control, equal_var=False).statistic,
                             rtol=1e-10)


def test_the_recorded_statistic_is_on_absolute_activations():
  """Welch t on |pooled units|, as the source computes it (`ttest_ind(abs(a), abs(b),
  equal_var=False)`): task units of large magnitude and either sign against small control
  ones give a large t, where signed values (means near 0) would give about none."""
  scipy_stats = pytest.importorskip("scipy.stats")
  rng = np.random.default_rng(1)
  signs = rng.choice([-1.0, 1.0], (40, L, D))
  task = signs * rng.uniform(4.0, 6.0, (40, L, D))
  control = rng.normal(0.0, 1.0, (30, L, D))
  recorder = analysis.Recorder(TINY, None, "residual", "last", max_tokens=4, batch_size=8)
  # Stimulus [c, i] stands for row i of the task (c = 1) or control (c = 2) activations.
  recorder.pooled = lambda stimuli: (task if stimuli[0][0] == 1 else control)[
      [index for _, index in stimuli]]
  t = analysis.welch_t(recorder.stats([[1, i] for i in range(40)]),
                       recorder.stats([[2, i] for i in range(30)]))
  expected = scipy_stats.ttest_ind(np.abs(task), np.abs(control), equal_var=False).statistic
  np.testing.assert_allclose(t, expected, rtol=1e-9)
  signed = scipy_stats.ttest_ind(task, control, equal_var=False).statistic
  assert t.min() > 10 and np.abs(signed).mean() < 3


def test_top_percent_selects_the_count_in_descending_order_nan_last():
  t = np.arange(40, dtype=np.float64).reshape(4, 10)[::-1].copy()
  t[3, 9] = np.nan
  layers, indices = analysis.top_units(t, 10.0)  # int(0.1 * 40) = 4 units
  assert list(zip(layers, indices)) == [(0, 9), (0, 8), (0, 7), (0, 6)]
  layers, indices = analysis.top_units(t, 100.0)
  assert len(layers) == 40 and (layers[-1], indices[-1]) == (3, 9)
  assert len(analysis.top_units(t, 0.001)[0]) == 1  # at least one unit
  chosen = np.zeros((4, 10), bool)
  chosen[0, :4] = True
  drawn = analysis.random_units((4, 10), 4, chosen, seed=42)
  assert drawn.sum() == 4 and not (drawn & chosen).any()


def test_all_ones_mask_is_the_plain_model_bit_for_bit_and_none_the_same_program(params):
  model, tokens = Decoder(TINY), _tokens(1)
  plain, _ = _apply(params, tokens)
  ones = {"residual": jnp.ones((L, D)), "mlp": jnp.ones((L, M))}
  masked, _ = _apply(params, tokens, ones)
  assert np.array_equal(plain, masked)
  program = lambda **kw: str(jax.make_jaxpr(  # pylint: disable=unnecessary-lambda-assignment
      lambda p, t: model.apply({"params": p}, t, **kw))(params, tokens))
  assert program() == program(unit_keep=None)
  assert "mul" in program(unit_keep=ones) and program() != program(unit_keep=ones)


def test_zeroing_units_changes_exactly_what_it_should(params):
  tokens = _tokens(2)
  _, plain = _apply(params, tokens, record=True)
  # An MLP unit (layer 1, unit 5): its hidden value is 0, the layer's others are unchanged,
  # and the model equals the plain one with that unit's down row zeroed.
  keep = np.ones((L, M), np.float32)
  keep[1, 5] = 0
  logits, state = _apply(params, tokens, {"mlp": keep}, record=True)
  hidden = state["mlp"]["mlp"][0]
  assert np.all(hidden[1, ..., 5] == 0)
  others = np.delete(np.arange(M), 5)
  assert np.array_equal(hidden[1][..., others], plain["mlp"]["mlp"][0][1][..., others])
  assert np.array_equal(hidden[0], plain["mlp"]["mlp"][0][0])
  zeroed = jax.tree_util.tree_map(np.array, params)
  zeroed["layers"]["mlp"]["down"]["kernel"][1, 5, :] = 0
  np.testing.assert_allclose(logits, _apply(zeroed, tokens)[0], atol=1e-5)
  # A residual unit (layer 0, dim 7): 0 in layer 0's output only there; layer 1 reads it as 0.
  keep = np.ones((L, D), np.float32)
  keep[0, 7] = 0
  _, state = _apply(params, tokens, {"residual": keep}, record=True)
  residual = state["residual"][0]
  assert np.all(residual[0, ..., 7] == 0)
  assert np.array_equal(np.delete(residual[0], 7, -1), np.delete(plain["residual"][0][0], 7, -1))
  assert not np.allclose(residual[1], plain["residual"][0][1])


def _units_file(path, kind, cells, shape=None):
  table = np.zeros(shape or units_lib.unit_shape(TINY, kind), bool)
  for layer, index in cells:
    table[layer, index] = True
  units_lib.from_table(kind, table).write(str(path))
  return str(path)


def _check_moves(before, after, masks):
  """Every entry outside `masks` is bit-identical; every leaf with trained entries moved."""
  moved = 0
  pairs = zip_leaves(before, after)
  assert [mask.shape for mask in jax.tree_util.tree_leaves(masks)] == [
      old.shape for _, old, _ in pairs]
  for (path, old, new), mask in zip(pairs, jax.tree_util.tree_leaves(masks)):
    assert np.array_equal(old[~mask], new[~mask]), path
    if mask.any():
      assert not np.array_equal(old[mask], new[mask]), path
      moved += 1
  assert moved


def _table(kind, cells):
  table = np.zeros(units_lib.unit_shape(TINY, kind), bool)
  table[tuple(zip(*cells))] = True
  return table


def test_targeted_training_through_the_loop_moves_only_the_units_slices(mesh, params, tmp_path):
  """`train.trainable_units`, weight decay on: after `loop.train`, every frozen entry
  (embeddings and norms included) is bit-identical and the units' slices moved."""
  cells = [(0, 3), (1, 10)]
  path = _units_file(tmp_path / "units.json", "mlp", cells)
  config = loop.TrainConfig(num_steps=2, batch_size=4, seq_len=32, log_every=2,
                            checkpoint_every=2, async_checkpointing=False,
                            trainable_units=path)
  batches = feed.text_feed(sources.demo_corpus("train"), tokenizer_lib.ByteTokenizer(), 32, 4)
  result = loop.train(TINY, optim.OptimizerConfig(learning_rate=1e-2, weight_decay=0.1), config,
                      mesh, RULES, tmp_path / "run", batches.iterate,
                      init_params=lambda: params, show_progress=False)
  masks = jax.device_get(optim.unit_update_mask("mlp", _table("mlp", cells))(params))
  _check_moves(params, jax.device_get(result.state.params), masks)
  mlp = masks["layers"]["mlp"]
  assert mlp["gate"]["kernel"][0, :, 3].all() and mlp["up"]["kernel"][1, :, 10].all()
  assert mlp["down"]["kernel"][1, 10].all() and mlp["down"]["kernel"].sum() == 2 * D
  assert mlp["gate"]["kernel"].sum() == 2 * D and not masks["embedder"]["embedding"].any()


@pytest.mark.parametrize("kind,freeze", [("mlp", True), ("residual", False)])
def test_unit_masks_keep_frozen_entries_bit_identical_under_weight_decay(params, kind, freeze):
  """The optimizer alone, on random gradients: the mask is its last transform, so AdamW's
  decoupled weight decay moves no frozen entry; the reverse mode trains everything else."""
  table = _table(kind, [(0, 3), (1, 10)])
  update_mask = optim.unit_update_mask(kind, table, freeze)
  tx, _ = optim.make_optimizer(optim.OptimizerConfig(learning_rate=1e-2, weight_decay=0.5), 3,
                               update_mask)

  @jax.jit
  def two_steps(current, all_grads):
    state = tx.init(current)
    for grads in all_grads:
      updates, state = tx.update(grads, state, current)
      current = optax.apply_updates(current, updates)
    return current
  rng = np.random.default_rng(0)
  current = two_steps(params, [jax.tree_util.tree_map(
      lambda p: rng.normal(size=p.shape).astype(p.dtype), params) for _ in range(2)])
  masks = jax.device_get(update_mask(params))
  _check_moves(params, jax.device_get(current), masks)
  out = masks["layers"]["attention"]["out"]["kernel"]
  if kind == "residual":
    assert out[0, ..., 3].all() != freeze and out[1, ..., 10].all() != freeze
    assert masks["layers"]["mlp"]["down"]["kernel"][0, :, 3].all() != freeze
    assert masks["layers"]["mlp"]["gate"]["kernel"].all() == freeze
  assert masks["embedder"]["embedding"].all() == freeze


def test_bad_units_files_and_too_few_stimuli_give_one_line(tmp_path, capsys, mesh, params):
  wrong = _units_file(tmp_path / "wrong.json", "mlp", [(0, 1)], shape=(30, 1536))
  with pytest.raises(ValueError, match=r"mlp units of shape \[30, 1536\], but the model's "
                     r"layers/mlp units have shape \[2, 192\]"):
    units_lib.read(wrong, TINY)
  config = loop.TrainConfig(num_steps=1, batch_size=4, seq_len=32, trainable_units=wrong)
  with pytest.raises(ValueError, match=r"\[30, 1536\].*\[2, 192\]"):
    loop.units_update_mask(config, TINY)
  with pytest.raises(ValueError, match="at most one"):
    loop.TrainConfig(trainable_units=wrong, freeze_units=wrong)
  run = _tiny_run(tmp_path / "model", mesh, params)
  few = tmp_path / "few.txt"
  few.write_text("only one stimulus\n")
  for extra, message in (
      ([f"--task_stimuli={few}", "--control_stimuli=builtin:pseudowords:8"],
       "1 task stimuli in " + str(few) + ": Welch's t-test needs at least 2 task and 2 control "
       "stimuli"),
      (["--task_stimuli=builtin:sentences:8", "--control_stimuli=builtin:nonsense"],
       "unknown builtin 'nonsense'"),
      (["--task_stimuli=builtin:sentences:8", "--control_stimuli=builtin:pseudowords:8",
        "--top_percent=0"], "--top_percent=0.0: give a percentage in (0, 100]")):
    assert cli.main(["analyze-units", f"--run_dir={run}", f"--output_dir={tmp_path / 'out'}",
                     *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
  ablated = Decoder(TINY)
  with pytest.raises(ValueError, match=r"unit_keep\['mlp'\] has shape \(30, 1536\); the "
                     r"model's mlp units are \(2, 192\)"):
    ablated.apply({"params": params}, _tokens(), unit_keep={"mlp": jnp.ones((30, 1536))})


def _tiny_run(path, mesh, params):
  out = run_dir.RunDir(str(path)).create()
  out.write_model_config(TINY)
  out.write_tokenizer(tokenizer_lib.ByteTokenizer())
  store.save_params(out.params.resolve(), jax.device_put(params))
  return str(path)


def test_analyze_units_writes_units_t_values_and_png(tmp_path, capsys, mesh, params):
  run = _tiny_run(tmp_path / "model", mesh, params)
  out = tmp_path / "units"
  assert cli.main(["analyze-units", f"--run_dir={run}", "--task_stimuli=builtin:sentences:20",
                   "--control_stimuli=builtin:pseudowords:20", "--kind=mlp", "--pooling=mean",
                   "--top_percent=5", "--batch_size=8", f"--output_dir={out}"]) == 0
  assert "analyze-units: wrote" in capsys.readouterr().out
  data = json.loads((out / "units.json").read_text())
  t = np.load(out / "t_values.npy")
  assert data["kind"] == "mlp" and data["shape"] == [L, M] and t.shape == (L, M)
  assert data["count"] == int(0.05 * L * M) == len(data["units"])
  values = [u["t"] for u in data["units"]]
  assert values == sorted(values, reverse=True)
  assert values[-1] >= np.nanpercentile(t, 94)
  assert all(t[u["layer"], u["index"]] == u["t"] for u in data["units"])
  assert "Welch t" in data["info"]["statistic"] and data["info"]["task_stimuli"] == 20
  assert (out / "units.png").stat().st_size > 1000
  chosen = units_lib.read(str(out), TINY)
  assert chosen.keep_factors()["mlp"].sum() == L * M - data["count"]

  # The evaluation harness ablates them: lm-eval's `unit_mask=` scores as the ablated forward.
  pytest.importorskip("lm_eval")
  # pylint: disable-next=import-outside-toplevel
  from instruct_pt.evaluation.lm_eval_model import InstructPTLM
  requests = [(None, [5, 9, 33, 70], [71, 72]), (None, [100, 101], [102])]
  logits = np.asarray(_apply(params, jnp.asarray([[5, 9, 33, 70, 71]]),
                             {"mlp": jnp.asarray(chosen.keep_factors()["mlp"])})[0])[0]
  logprobs = logits - jax.scipy.special.logsumexp(logits, axis=-1, keepdims=True)
  expected = logprobs[3, 71] + logprobs[4, 72]
  model = InstructPTLM(run, mesh=mesh, unit_mask=str(out / "units.json"), row_len=16,
                       progress=False)
  ablated = [v for v, _ in model._loglikelihood_tokens(requests)]  # pylint: disable=protected-access
  np.testing.assert_allclose(ablated[0], expected, rtol=1e-5)
  assert model.get_model_info()["unit_mask"] == str(out / "units.json")
  model.scorer.unit_keep = None
  plain = [v for v, _ in model._loglikelihood_tokens(requests)]  # pylint: disable=protected-access
  assert abs(plain[0] - ablated[0]) > 1e-4


def test_analyze_units_help_lists_every_option(capsys):
  with pytest.raises(SystemExit):
    cli.main(["analyze-units", "--help"])
  text = capsys.readouterr().out
  for flag in ("--run_dir", "--task_stimuli", "--control_stimuli", "--top_percent",
               "--pooling", "--kind", "--output_dir", "--max_tokens", "--batch_size",
               "--text_field", "--mesh", "--gin_param", "builtin:NAME", "unit_mask",
               "trainable_units"):
    assert flag in text, flag
  from instruct_pt import config  # pylint: disable=import-outside-toplevel
  for field in config.AnalyzeUnitsRun.__dataclass_fields__:  # the model source is --run_dir
    assert f"--{'run_dir' if field == 'model' else field}" in text, field
  assert not re.search(r"--(model|out)\b(?!_)", text)  # one name per concept
