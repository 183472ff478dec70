"""Two-stage fine-tuning (`train.finetune`, `instruct-pt finetune`): what each ProMoT stage
may change, where broad_then_specialized's stage 2 starts, resuming in either stage, the
command line (help, bad input, the example config). Tiny model, byte tokenizer, CPU.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from instruct_pt import commands, config, parallel, run_dir
from instruct_pt.data import feed, sources
from instruct_pt.data import tokenizer as tokenizer_lib
from instruct_pt.model import store
from instruct_pt.model.config import get_preset
from instruct_pt.model.transformer import Decoder
from instruct_pt.train import finetune as finetune_lib
from instruct_pt.train import checkpoints, loop, optim
from instruct_pt.train import state as state_lib
from trees import assert_trees_equal, zip_leaves  # pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = parallel.LOGICAL_AXIS_RULES
TINY = get_preset("tiny")
BYTES = tokenizer_lib.ByteTokenizer()
TRAIN = loop.TrainConfig(batch_size=8, seq_len=32, log_every=2, checkpoint_every=2,
                         async_checkpointing=False)
OPTIMIZER = optim.OptimizerConfig(learning_rate=3e-3, weight_decay=0.01)


@pytest.fixture(scope="module")
def mesh():
  """One device: sharding is tested elsewhere, and 8 forced devices on 2 cores are slow."""
  return parallel.create_mesh((1, 1, 1), jax.devices()[:1])


def _feed(split):
  return feed.text_feed(sources.demo_corpus(split), BYTES, TRAIN.seq_len, TRAIN.batch_size)


# Stage 1 reads the demo corpus's training split ("broad"), stage 2 its held-out split.
FEEDS = {1: _feed("train"), 2: _feed("held_out")}


def _finetune(mesh, run, mode, **settings):
  settings = dict(dict(stage1_steps=4, stage2_steps=4, prompt_length=4), **settings)
  return finetune_lib.finetune(
      TINY, OPTIMIZER, TRAIN, finetune_lib.FinetuneConfig(mode=mode, **settings), mesh, RULES,
      str(run), train_batches=lambda stage: FEEDS[stage].iterate, show_progress=False)


def _checkpoint(run, stage, step, prompt=0, trainable="params"):
  """Stage `stage`'s newest checkpoint (asserted to be `step`), restored on one device."""
  model = Decoder(TINY)
  tx, _ = optim.make_optimizer(OPTIMIZER, 4)
  one = parallel.create_mesh((1, 1, 1), jax.devices()[:1])
  abstract = state_lib.abstract_train_state(model, tx, one, RULES,
                                            (prompt, TINY.embed_dim) if prompt else None,
                                            trainable)
  saver = checkpoints.Checkpoints(run_dir.RunDir(run).stage(stage), keep=5)
  try:
    assert saver.latest_step() == step
    state, _ = saver.restore_newest(abstract)
  finally:
    saver.close()
  return jax.device_get(state)


def _leaves(tree):
  return jax.tree_util.tree_leaves(jax.device_get(tree))


def test_promot_stage1_trains_only_the_prompt_and_stage2_only_the_model(mesh, tmp_path):
  """Stage 1 leaves every parameter bit-identical (and keeps optimizer moments for the prompt
  alone); the prompt it trains is saved as RUN/prompt.npy; stage 2 leaves that prompt
  bit-identical while the parameters move."""
  result = _finetune(mesh, tmp_path, "promot")
  assert (result.stage, result.step, result.preempted) == (2, 4, False)
  initial = store.init_params(TINY, mesh, RULES, TRAIN.seed)
  first = _checkpoint(tmp_path, 1, 4, prompt=4, trainable="prompt")
  assert_trees_equal(first.params, initial)
  # Adam's moments are the prompt's (and the step counts): none for any parameter.
  assert {leaf.shape for leaf in _leaves(first.opt_state)} == {(), (4, TINY.embed_dim)}
  start = finetune_lib.sample_prompt(initial, 4, 5000, TRAIN.seed)
  assert np.abs(np.asarray(first.prompt) - np.asarray(start)).max() > 1e-3  # it trained
  saved = run_dir.read_prompt(tmp_path, TINY.embed_dim)
  np.testing.assert_array_equal(saved, first.prompt)
  second = jax.device_get(result.state)
  np.testing.assert_array_equal(second.prompt, saved)
  moved = [np.abs(a - b).max() for _, a, b in zip_leaves(initial, second.params)]
  assert min(moved) > 0
  # Stage 2's checkpoint on disk holds the same prompt, and the run loads as its model.
  np.testing.assert_array_equal(_checkpoint(tmp_path, 2, 4, prompt=4).prompt, saved)
  loaded = run_dir.restore_params(run_dir.RunDir(tmp_path), TINY, mesh, RULES)
  assert_trees_equal(loaded, second.params)


def test_prompt_step_computes_no_weight_gradients(mesh):
  """The prompt step's program differentiates only the prompt: it has fewer matrix products
  than the parameter step by the weight gradients' (one per projection and layer, and the
  tied embedding's), and returns no gradient for any parameter."""
  model = Decoder(TINY)
  tx, schedule = optim.make_optimizer(OPTIMIZER, 4)
  prompt = np.zeros((4, TINY.embed_dim), np.float32)
  batch = FEEDS[1].batch(0)

  def dots(trainable):
    state, _ = state_lib.create_train_state(model, tx, jax.random.key(0), mesh, RULES,
                                            prompt=prompt, trainable=trainable)
    step = loop.make_train_step(model, tx, schedule, TRAIN, trainable)
    text = str(jax.make_jaxpr(step)(state, batch))
    return text.count("dot_general")

  projections = 7  # query, key, value, out, gate, up, down (scanned: counted once)
  assert dots("params") - dots("prompt") == projections + 1


def test_stage2_of_broad_then_specialized_starts_from_stage1(mesh, tmp_path):
  """Stage 2's first loss is the loss of stage 1's final parameters on stage 2's first batch,
  not the starting parameters' loss."""
  result = _finetune(mesh, tmp_path, "broad_then_specialized")
  first = _checkpoint(tmp_path, 1, 4)
  assert not os.path.exists(tmp_path / "prompt.npy")
  batch = FEEDS[2].batch(0)
  model = Decoder(TINY)

  def loss(params):
    total, weight = jax.jit(lambda p: loop.batch_loss(model, p, batch))(params)
    return float(total / weight)

  assert result.losses[2][1] == pytest.approx(loss(first.params), rel=1e-5)
  initial = store.init_params(TINY, mesh, RULES, TRAIN.seed)
  assert abs(loss(initial) - result.losses[2][1]) > 0.1
  # Each stage kept its own metrics.
  for stage in (1, 2):
    with open(tmp_path / f"stage{stage}" / "metrics.jsonl", encoding="utf-8") as f:
      assert [json.loads(line)["step"] for line in f] == [2, 4]


class _PreemptAt:
  """Stands in for SIGTERM: `reached` says yes at the given (stage, step) pairs, counting the
  calls of each run of the loop (one per step)."""

  def __init__(self, stops, stage1_steps):
    self.stops, self.stage1_steps, self.calls = set(stops), stage1_steps, 0

  def __call__(self, step):
    self.calls += 1
    stage = 1 if self.calls <= self.stage1_steps else 2
    return (stage, step) in self.stops


def test_resuming_mid_stage1_and_mid_stage2_gives_the_uninterrupted_run(mesh, tmp_path,
                                                                       monkeypatch):
  """ProMoT preempted at stage 1 step 1 and, on the re-run, at stage 2 step 2 (stage 1
  done, stage 2 partial), then run to the end: the same final parameters and prompt, bit
  for bit, as a run that was never interrupted; the re-runs skip what is done."""
  reference = _finetune(mesh, tmp_path / "reference", "promot")
  run = tmp_path / "run"
  preemption = loop._Preemption  # pylint: disable=protected-access
  monkeypatch.setattr(preemption, "reached", _PreemptAt({(1, 1)}, 4))
  stopped = _finetune(mesh, run, "promot")
  assert (stopped.stage, stopped.step, stopped.preempted) == (1, 1, True)
  assert not os.path.exists(run / "prompt.npy")
  # The re-run resumes stage 1 at step 1, so stage 2 starts after 3 more stage-1 steps.
  monkeypatch.setattr(preemption, "reached", _PreemptAt({(2, 2)}, 3))
  stopped = _finetune(mesh, run, "promot")
  assert (stopped.stage, stopped.step, stopped.preempted) == (2, 2, True)
  assert sorted(stopped.losses[1]) == [2, 3, 4]
  monkeypatch.undo()
  finished = _finetune(mesh, run, "promot")
  assert (finished.stage, finished.step, finished.preempted) == (2, 4, False)
  assert sorted(finished.losses) == [2] and sorted(finished.losses[2]) == [3, 4]
  assert_trees_equal(finished.state.params, reference.state.params)
  np.testing.assert_array_equal(jax.device_get(finished.state.prompt),
                                jax.device_get(reference.state.prompt))
  np.testing.assert_array_equal(run_dir.read_prompt(run, TINY.embed_dim),
                                run_dir.read_prompt(tmp_path / "reference", TINY.embed_dim))


def test_a_prompt_for_another_model_is_refused_with_both_sizes(tmp_path):
  """A prompt whose width is not the model's is refused in one line naming both; so is a
  run without a prompt."""
  run = run_dir.RunDir(tmp_path).create()
  run.write_prompt(np.zeros((5, 576), np.float32))
  with pytest.raises(ValueError) as error:
    run_dir.read_prompt(tmp_path, 64)
  assert "embed_dim 576" in str(error.value) and "embed_dim is 64" in str(error.value)
  assert "\n" not in str(error.value)
  with pytest.raises(FileNotFoundError, match="nothing_here: no prompt.npy"):
    run_dir.read_prompt(tmp_path / "nothing_here", 64)
  with pytest.raises(FileNotFoundError, match="other.npy does not exist"):
    run_dir.read_prompt(tmp_path / "other.npy", 64)


def test_unknown_mode_names_the_valid_ones():
  with pytest.raises(ValueError, match="choose one of broad_then_specialized, promot"):
    finetune_lib.FinetuneConfig(mode="promt")


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(REPO, "configs", "finetune"))))
def test_example_configs_parse(name, tmp_path):
  """Every shipped fine-tuning config builds a run (bindings, modes and values valid)."""
  run = config.finetune_run(str(tmp_path), [f"configs/finetune/{name}"])
  assert run.finetune.mode in finetune_lib.MODES
  (tmp_path / "config.gin").write_text(config.to_gin(run))
  assert config.finetune_run(str(tmp_path), [str(tmp_path / "config.gin")]) == run


def test_soft_prompt_evaluations_are_named_apart():
  """Results with a soft prompt go to their own directory, not over the plain ones."""
  plain = config.EvaluateRun(model="m", tasks=("demo",))
  prompted = config.EvaluateRun(model="m", tasks=("demo",), soft_prompt="m")
  assert (plain.results_name(), prompted.results_name()) == ("demo", "demo-soft_prompt")


def instruct_pt(*args, timeout=600):
  return subprocess.run([sys.executable, "-m", "instruct_pt.cli", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout, check=False)


def test_help_describes_every_option():
  result = instruct_pt("finetune", "--help")
  assert result.returncode == 0, result.stderr
  for field in finetune_lib.FinetuneConfig.__dataclass_fields__:
    assert f"finetune.{field} = " in result.stdout, field
  for flag in ("--gin_file", "--gin_param", "--run_dir", "--allow_changed_settings"):
    assert flag in result.stdout
  for setting in ("model.init_from = None", "train.batch_size = ", "optimizer.learning_rate = ",
                  "mesh.shape = ", "data.partitions = "):
    assert setting in result.stdout, setting


def test_bad_finetune_settings_give_one_line(tmp_path):
  """An unknown mode names the valid ones; data.mixture (a train setting) is refused."""
  for param, message in (("finetune.mode='promt'",
                          "finetune.mode='promt' is not a mode; choose one of "
                          "broad_then_specialized, promot"),
                         ("data.mixture='demo_raw'", "data.mixture='demo_raw' is not used by "
                          "finetune")):
    result = instruct_pt("finetune", f"--gin_param={param}", f"--run_dir={tmp_path}")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_example_config_runs_and_resumes(tmp_path):
  """configs/finetune/promot_tiny.gin through `instruct-pt finetune`: both stages' metrics and
  checkpoints apart, the prompt, config.gin; the same command again is a no-op resume."""
  args = ("finetune", "--gin_file=configs/finetune/promot_tiny.gin",
          "--gin_param=finetune.stage1_steps=2", "--gin_param=finetune.stage2_steps=2",
          f"--run_dir={tmp_path}")
  result = instruct_pt(*args)
  assert result.returncode == 0, result.stderr
  assert "finetune: done at stage 2 step 2" in result.stdout
  assert "prompt.npy" in result.stdout
  for stage in ("stage1", "stage2"):
    assert os.listdir(tmp_path / stage / "checkpoints") == ["2"]
    assert os.path.exists(tmp_path / stage / "metrics.jsonl")
  assert "finetune.mode = 'promot'" in (tmp_path / "config.gin").read_text()
  assert np.load(tmp_path / "prompt.npy").shape == (4, TINY.embed_dim)
  again = instruct_pt(*args)
  assert again.returncode == 0, again.stderr
  assert "stage 2 has begun" in again.stderr and "at step 2" in again.stderr
  run = config.finetune_run(str(tmp_path), [str(tmp_path / "config.gin")])
  assert run.finetune.mode == "promot" and commands.run_dir.RunDir(run.run_dir).has_model()
  recorded = (tmp_path / "config.gin").read_text()
  changed = instruct_pt(*args, "--gin_param=optimizer.learning_rate=0.5")
  assert changed.returncode == 2 and "optimizer.learning_rate = 0.5 (was " in changed.stderr
  assert "--allow_changed_settings" in changed.stderr and "Traceback" not in changed.stderr
  assert (tmp_path / "config.gin").read_text() == recorded
  allowed = instruct_pt(*args, "--gin_param=optimizer.learning_rate=0.5",
                        "--allow_changed_settings")
  assert allowed.returncode == 0, allowed.stderr
  assert (tmp_path / "config.1.gin").read_text() == recorded
  assert "optimizer.learning_rate = 0.5" in (tmp_path / "config.gin").read_text()
