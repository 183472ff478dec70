"""The training loop: learning, accumulation, resume, non-finite losses, metrics (the
optimizer and its schedules: test_optim.py)."""

import dataclasses
import json
import os
import shutil

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec

from instruct_pt import commands, config, parallel, run_dir
from instruct_pt.data import feed, sources, tokenizer as tokenizer_lib
from instruct_pt.model.config import get_preset
from instruct_pt.model.transformer import Decoder
from instruct_pt.train import checkpoints, loop, metrics, optim
from instruct_pt.train import state as state_lib
from trees import assert_trees_equal  # pylint: disable=wrong-import-position

RULES = parallel.LOGICAL_AXIS_RULES
BYTES = tokenizer_lib.ByteTokenizer()


@pytest.fixture(scope="module")
def mesh():
  return parallel.create_mesh((1, -1, 1))


def _demo_feed(batch_size=8, seq_len=64, split="train"):
  return feed.text_feed(sources.demo_corpus(split), BYTES, seq_len, batch_size, seed=0)


def _train(mesh, run_dir, num_steps, batches=None, eval_feed=None, **overrides):
  settings = dict(num_steps=num_steps, batch_size=8, seq_len=64, log_every=5,
                  checkpoint_every=4, async_checkpointing=True)
  settings.update(overrides)
  config = loop.TrainConfig(**settings)
  optimizer = optim.OptimizerConfig(learning_rate=3e-3, warmup_steps=3, weight_decay=0.01)
  return loop.train(get_preset("tiny"), optimizer, config, mesh, RULES, str(run_dir),
                    train_batches=batches or _demo_feed().iterate, eval_batches=eval_feed,
                    show_progress=False)


def test_tiny_model_learns_the_embedded_corpus(mesh, tmp_path):
  """30 steps on the demo corpus: the loss falls clearly (from ~ln(512) towards byte entropy)."""
  result = _train(mesh, tmp_path, 30)
  losses = [result.losses[s] for s in range(1, 31)]
  assert losses[0] > 5.5, losses[0]  # near-uniform over 512 ids at init: ln 512 = 6.24
  assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 1.5, losses


def test_interrupted_run_resumes_with_identical_losses(mesh, tmp_path):
  """A run killed after a checkpoint and re-run gives the uninterrupted run's losses."""
  reference = _train(mesh, tmp_path / "reference", 12)

  class Killed(Exception):
    pass

  demo = _demo_feed()

  def dies_at_step_7(start_step):
    for step, batch in enumerate(demo.iterate(start_step), start_step):
      if step == 6:  # the batch of step 7: checkpoints 4 exists, step 5-6 were trained
        raise Killed()
      yield batch

  with pytest.raises(Killed):
    _train(mesh, tmp_path / "resumed", 12, batches=dies_at_step_7)
  assert sorted(os.listdir(tmp_path / "resumed" / "checkpoints")) == ["4"]
  resumed = _train(mesh, tmp_path / "resumed", 12)
  assert min(resumed.losses) == 5  # restarted after checkpoint 4
  for step in range(5, 13):
    np.testing.assert_allclose(resumed.losses[step], reference.losses[step], rtol=1e-6,
                               err_msg=f"step {step}")
  # metrics.jsonl reads as one run: the interrupted run's step-5 record was replaced.
  with open(tmp_path / "resumed" / "metrics.jsonl", encoding="utf-8") as f:
    steps = [json.loads(line)["step"] for line in f]
  assert steps == [5, 10, 12]


def test_checkpoint_restores_onto_a_different_mesh(mesh, tmp_path):
  """A checkpoint written on a (1, 8, 1) mesh restores onto (2, 2, 2) with equal values."""
  _train(mesh, tmp_path, 4)
  model = Decoder(get_preset("tiny"))
  tx, _ = optim.make_optimizer(optim.OptimizerConfig(), 4)
  saved, _ = jax.device_get(state_lib.create_train_state(model, tx, jax.random.key(0), mesh, RULES))
  other_mesh = parallel.create_mesh((2, 2, 2))
  abstract = state_lib.abstract_train_state(model, tx, other_mesh, RULES)
  saver = checkpoints.Checkpoints(run_dir.RunDir(tmp_path), keep=3)
  restored, _ = saver.restore_newest(abstract)
  reference, _ = saver.restore_newest(state_lib.abstract_train_state(model, tx, mesh, RULES))
  saver.close()
  assert int(restored.step) == 4
  query = restored.params["layers"]["attention"]["query"]["kernel"]
  assert query.sharding.mesh.shape == other_mesh.shape
  assert query.sharding.spec == PartitionSpec(None, "fsdp", "tensor", None)
  assert_trees_equal(restored, reference)
  # Training moved the parameters away from their initial values.
  assert not np.allclose(np.asarray(query), saved.params["layers"]["attention"]["query"]["kernel"])


def test_damaged_newest_checkpoint_resumes_from_the_newest_readable(mesh, tmp_path, caplog):
  """The issue's reproduction: train to step 12 (checkpoints every 4, keep 2), cut the newest
  checkpoint's files short, re-run: a warning names step 12, and the run resumes from step 8
  exactly (its losses equal those of a copy whose step 12 was deleted by hand); step 12 is
  kept, moved aside. With every checkpoint damaged, one error names the directory."""
  _train(mesh, tmp_path / "reference", 12, keep_checkpoints=2)
  shutil.rmtree(tmp_path / "reference" / "checkpoints" / "12")
  reference = _train(mesh, tmp_path / "reference", 16, keep_checkpoints=2)
  _train(mesh, tmp_path / "run", 12, keep_checkpoints=2)
  run = run_dir.RunDir(tmp_path / "run")
  _truncate_large_files(run.checkpoints / "12")
  with caplog.at_level("WARNING"):
    resumed = _train(mesh, tmp_path / "run", 16, keep_checkpoints=2)
  assert "checkpoint step 12" in caplog.text and "unreadable" in caplog.text
  assert sorted(resumed.losses) == list(range(9, 17))
  np.testing.assert_allclose([resumed.losses[s] for s in range(9, 17)],
                             [reference.losses[s] for s in range(9, 17)], rtol=1e-5)
  assert (run.checkpoints / "12.unreadable").exists()

  for step in (12, 16):
    _truncate_large_files(run.checkpoints / str(step))
  with pytest.raises(ValueError, match=f"{run.checkpoints}: no readable checkpoint"):
    _train(mesh, tmp_path / "run", 20, keep_checkpoints=2)


def _truncate_large_files(directory):
  """Cuts every data file under `directory` short, as a half-copied bucket leaves them."""
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      if os.path.getsize(path) > 1000:
        os.truncate(path, 10)


def test_finished_run_is_not_trained_again(mesh, tmp_path):
  """Re-running a finished run resumes at its last step and does nothing more."""
  _train(mesh, tmp_path, 4)
  again = _train(mesh, tmp_path, 4)
  assert again.step == 4 and again.losses == {}


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(mesh, tmp_path):
  """A NaN at step 7 raises naming step 7; no checkpoint of the bad state is written."""
  demo = _demo_feed()

  def nan_at_step_7(start_step):
    for step, batch in enumerate(demo.iterate(start_step), start_step + 1):
      if step == 7:
        batch = dict(batch, decoder_loss_weights=np.full(
            batch["decoder_loss_weights"].shape, np.nan, np.float32))
      yield batch

  with pytest.raises(loop.NonFiniteLossError, match=r"loss is nan at step 7.*step 4"):
    _train(mesh, tmp_path, 12, batches=nan_at_step_7, checkpoint_every=4, log_every=100)
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["4"]


def test_gradient_accumulation_matches_one_large_batch(mesh):
  """grad_accum_steps=4 gives the same loss and gradient norm as one step on the batch."""
  model = Decoder(get_preset("tiny"))
  tx, schedule = optim.make_optimizer(optim.OptimizerConfig(), 10)
  state, shardings = state_lib.create_train_state(model, tx, jax.random.key(0), mesh, RULES)
  batch_sharding = parallel.batch_sharding(mesh, RULES)
  batch = parallel.host_local_to_global(_demo_feed(batch_size=32).batch(0), batch_sharding, 32)
  outputs = {}
  for accum in (1, 4):
    config = loop.TrainConfig(batch_size=32, seq_len=64, grad_accum_steps=accum)
    with parallel.sharding_context(mesh, RULES):
      step = jax.jit(loop.make_train_step(model, tx, schedule, config),
                     in_shardings=(shardings, batch_sharding), out_shardings=(shardings, None))
      _, outputs[accum] = step(state, batch)
  for name in ("loss", "grad_norm", "loss_tokens"):
    np.testing.assert_allclose(outputs[4][name], outputs[1][name], rtol=1e-5)


def test_loss_weights_mask_tokens():
  """Tokens with weight 0 do not count; z-loss adds coef * log(Z)^2 per weighted token."""
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 5, 7)).astype(np.float32)
  targets = rng.integers(0, 7, (2, 5))
  weights = np.array([[1, 1, 0, 0, 1], [0, 1, 1, 1, 0]], np.float32)
  log_z = np.log(np.exp(logits).sum(-1))
  token_loss = log_z - np.take_along_axis(logits, targets[..., None], -1)[..., 0]
  total, weight = loop.weighted_cross_entropy(logits, targets, weights)
  np.testing.assert_allclose(total, (token_loss * weights).sum(), rtol=1e-5)
  assert float(weight) == 6.0
  total_z, _ = loop.weighted_cross_entropy(logits, targets, weights, z_loss=1e-2)
  np.testing.assert_allclose(total_z - total, 1e-2 * (log_z ** 2 * weights).sum(), rtol=1e-4)


def test_flops_per_token_formula():
  """6 x matmul parameters + 12 x layers x heads x head_dim x seq_len, computed by hand."""
  cfg = get_preset("tiny")
  d, layers, hd = cfg.embed_dim, cfg.num_layers, cfg.head_dim
  attn = d * hd * (2 * cfg.num_heads + 2 * cfg.num_kv_heads)
  mlp = 3 * d * cfg.mlp_dim
  norms = 2 * d * layers + d
  matmul_params = layers * (attn + mlp) + norms + cfg.vocab_size * d
  expected = 6 * matmul_params + 12 * layers * cfg.num_heads * hd * 128
  assert cfg.flops_per_token(128) == expected
  assert metrics.mfu(1000.0, 1e9, 2, 1e12) == pytest.approx(0.5)


def test_metrics_file_has_the_documented_fields(mesh, tmp_path):
  """metrics.jsonl lines carry step, loss, tokens_per_second and mfu; TensorBoard files exist."""
  _train(mesh, tmp_path, 10)
  with open(tmp_path / "metrics.jsonl", encoding="utf-8") as f:
    records = [json.loads(line) for line in f]
  assert [r["step"] for r in records] == [5, 10]
  for record in records:
    assert {"step", "loss", "tokens_per_second", "mfu", "grad_norm",
            "learning_rate"} <= set(record)
    assert record["tokens_per_second"] > 0 and 0 < record["mfu"] < 1
  assert any(name.startswith("events.out.tfevents")
             for name in os.listdir(tmp_path / "tensorboard"))


def test_eval_loss_is_the_weighted_mean_over_held_out_batches(mesh, tmp_path):
  """eval_loss at an eval step equals the token-weighted loss of the step's parameters on the
  first eval_batches held-out batches."""
  held_out = _demo_feed(split="held_out")
  _train(mesh, tmp_path, 8, eval_feed=held_out.iterate, eval_every=8, eval_batches=2,
         checkpoint_every=8)
  with open(tmp_path / "metrics.jsonl", encoding="utf-8") as f:
    eval_losses = [json.loads(line)["eval_loss"] for line in f if "eval_loss" in line]
  config = get_preset("tiny")
  params = run_dir.restore_params(run_dir.RunDir(tmp_path), config, mesh, RULES)
  sums = [loop.batch_loss(Decoder(config), params, held_out.batch(i)) for i in range(2)]
  expected = sum(float(t) for t, _ in sums) / sum(float(w) for _, w in sums)
  assert len(eval_losses) == 1
  np.testing.assert_allclose(eval_losses[0], expected, rtol=1e-5)


def test_batch_not_dividing_the_mesh_is_refused(mesh, tmp_path):
  """train.batch_size must split over the batch shards: clear error naming it."""
  with pytest.raises(ValueError, match=r"train.batch_size=12 is not divisible by the 8"):
    _train(mesh, tmp_path, 2, batch_size=12)


def test_ctrl_c_asks_for_a_checkpoint_and_a_second_one_aborts():
  """The loop's signal handler: a first SIGINT (or a SIGTERM) asks the loop to save and stop
  at the next step, naming the signal; a second SIGINT raises KeyboardInterrupt at once. The
  previous handlers come back on exit."""
  import signal  # pylint: disable=import-outside-toplevel
  before = signal.getsignal(signal.SIGINT)
  with loop._Preemption() as preemption:  # pylint: disable=protected-access
    assert not preemption.reached(1)
    signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
    assert preemption.reached(2) and preemption.cause == "SIGINT"
    with pytest.raises(KeyboardInterrupt):
      signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
  assert signal.getsignal(signal.SIGINT) is before
  with loop._Preemption() as preemption:  # pylint: disable=protected-access
    signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
    assert preemption.reached(1) and preemption.cause == "SIGTERM"


def test_resuming_with_other_settings_is_refused_or_recorded(tmp_path):
  """Training longer resumes; a resume with another batch size or learning rate is refused,
  naming both settings and their values, and leaves config.gin as it was; allowed, it keeps the
  earlier settings as config.1.gin (then config.2.gin) and goes on."""
  run = str(tmp_path / "run")
  gin = ["configs/pretrain/tiny_cpu.gin"]
  base = ["train.num_steps = 4", "train.checkpoint_every = 2", "train.log_every = 2"]
  commands.train(config.train_run(run, gin, base), show_progress=False)
  first = (tmp_path / "run" / "config.gin").read_text()
  longer = commands.train(config.train_run(run, gin, base + ["train.num_steps = 6"]),
                          show_progress=False)
  assert longer.step == 6
  changed = base + ["train.num_steps = 8", "train.batch_size = 16",
                    "optimizer.learning_rate = 0.001"]
  with pytest.raises(ValueError) as refused:
    commands.train(config.train_run(run, gin, changed), show_progress=False)
  message = str(refused.value)
  assert "train.batch_size = 16 (was 8)" in message
  assert "optimizer.learning_rate = 0.001 (was 0.003)" in message
  assert "train.num_steps" not in message and "--allow_changed_settings" in message
  assert (tmp_path / "run" / "config.gin").read_text() == first.replace(
      "train.num_steps = 4", "train.num_steps = 6")
  allowed = dataclasses.replace(config.train_run(run, gin, changed), allow_changed_settings=True)
  assert commands.train(allowed, show_progress=False).step == 8
  assert "train.batch_size = 8" in (tmp_path / "run" / "config.1.gin").read_text()
  assert "train.batch_size = 16" in (tmp_path / "run" / "config.gin").read_text()
