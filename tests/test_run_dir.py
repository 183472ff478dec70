"""The run directory: its layout, model sources, and loading a model from any of them."""

import logging
import os

import jax
import numpy as np
import pytest

from instruct_pt import parallel, run_dir
from instruct_pt.data import tokenizer as tokenizer_lib
from instruct_pt.model import store
from instruct_pt.model.config import get_preset
from trees import assert_trees_equal  # pylint: disable=wrong-import-position

RULES = parallel.LOGICAL_AXIS_RULES


@pytest.fixture(scope="module")
def mesh():
  return parallel.create_mesh((1, -1, 1))


def _random_params(config, mesh, seed=0):
  import flax.linen as nn  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from instruct_pt.model.transformer import Decoder  # pylint: disable=import-outside-toplevel
  _, shardings = store.param_shardings(config, mesh, RULES)
  init = lambda key: nn.meta.unbox(  # pylint: disable=unnecessary-lambda-assignment
      Decoder(config).init(key, jnp.zeros((1, 8), jnp.int32))["params"])
  return jax.jit(init, out_shardings=shardings)(jax.random.key(seed))


def _imported_run(path, config, params):
  """A run directory as `instruct-pt convert` writes it."""
  run = run_dir.RunDir(path).create()
  store.save_params(run.params, params)
  run.write_model_config(config)
  run.write_tokenizer(tokenizer_lib.ByteTokenizer())
  return run


def test_paths_are_absolute_and_named_once(tmp_path, monkeypatch):
  """Relative paths become absolute once; every artifact has one named path."""
  monkeypatch.chdir(tmp_path)
  run = run_dir.RunDir("runs/a")
  assert str(run) == os.path.join(str(tmp_path), "runs", "a")
  assert run.checkpoint_item(20, run_dir.PARAMS_ITEM) == run.path / "checkpoints" / "20" / "params"
  assert run.shard(3, ".done.json").name == "shard-00003.done.json"
  assert run.sub("stage1").path == run.path / "stage1"
  assert run_dir.RunDir("gs://bucket/run").path.as_uri().startswith("gs://")
  assert os.fspath(run) == str(run.path)


def test_create_refuses_a_file_with_one_line(tmp_path):
  (tmp_path / "file").write_text("x")
  with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
    run_dir.RunDir(tmp_path / "file").create()
  with pytest.raises(NotADirectoryError, match=f"{tmp_path / 'file'} is a file"):
    run_dir.RunDir(tmp_path / "file" / "below").create()


def test_model_config_json_round_trip_saves_the_resolved_dtype(tmp_path):
  """The saved config is the resolved one: "auto" becomes this backend's dtype."""
  run = run_dir.RunDir(tmp_path).create()
  config = get_preset("llama3_8b", num_layers=2)
  assert config.dtype == "auto" and config.rope_scaling is None
  run.write_model_config(config)
  assert run.read_model_config() == config.replace(dtype=config.compute_dtype)
  assert run.read_model_config(num_layers=3).num_layers == 3
  run.model_config.write_text('{"vocab_size": 1, "bogus": 2}')
  with pytest.raises(ValueError, match="model_config.json: not a valid model config"):
    run.read_model_config()


def test_params_round_trip_through_the_run_directory(tmp_path, mesh):
  """An imported run loads back with every value, its config and tokenizer."""
  config = get_preset("tiny")
  params = _random_params(config, mesh)
  _imported_run(tmp_path / "run", config, params)
  loaded = run_dir.load(str(tmp_path / "run"), mesh, RULES)
  assert loaded.config == config.replace(dtype=config.compute_dtype)
  assert isinstance(loaded.tokenizer, tokenizer_lib.ByteTokenizer)
  assert_trees_equal(loaded.params, params)
  config_only = run_dir.load(str(tmp_path / "run"), with_params=False)
  assert config_only.params is None and config_only.config == loaded.config


def test_source_kinds_and_bad_sources(tmp_path):
  """Each kind is recognised; anything else is one line naming the path and what it holds."""
  assert run_dir.source_kind("smollm2") == "bundled"
  assert run_dir.source_kind(str(tmp_path / "model.gguf")) == "gguf"
  (tmp_path / "hf").mkdir()
  (tmp_path / "hf" / "config.json").write_text("{}")
  assert run_dir.source_kind(str(tmp_path / "hf")) == "hf"
  with pytest.raises(FileNotFoundError, match="does not exist"):
    run_dir.source_kind(str(tmp_path / "nowhere"))
  synthesis = run_dir.RunDir(tmp_path / "synthesis").create()
  synthesis.shard(0).write_text("{}\n")
  with pytest.raises(ValueError, match="it is a synthesis run; expected a run directory"):
    run_dir.source_kind(str(synthesis))
  (tmp_path / "file.txt").write_text("x")
  with pytest.raises(ValueError, match="it is a file"):
    run_dir.source_kind(str(tmp_path / "file.txt"))


def test_run_without_tokenizer_or_params_is_named(tmp_path, mesh):
  config = get_preset("tiny")
  run = run_dir.RunDir(tmp_path / "run").create()
  run.write_model_config(config)
  with pytest.raises(FileNotFoundError, match="no parameters"):
    run_dir.load(str(run), mesh, RULES)
  with pytest.raises(FileNotFoundError, match="no tokenizer/"):
    run.read_tokenizer()


def test_load_skips_an_unreadable_newest_checkpoint(tmp_path, mesh, caplog):
  """A damaged newest training checkpoint is skipped with a warning naming its step; the run
  directory is left as it is."""
  from instruct_pt.train import checkpoints, state  # pylint: disable=import-outside-toplevel
  config = get_preset("tiny")
  run = _imported_run(tmp_path / "run", config, _random_params(config, mesh, seed=0))
  saver = checkpoints.Checkpoints(run, keep=3, async_save=False)
  older, newer = _random_params(config, mesh, seed=1), _random_params(config, mesh, seed=2)
  for step, params in ((10, older), (20, newer)):
    saver.save(state.TrainState(step=np.int32(step), params=params, opt_state={}))
  saver.close()
  assert_trees_equal(run_dir.load(str(run), mesh, RULES).params, newer)

  _truncate_files(run.checkpoint_item(20, run_dir.PARAMS_ITEM))
  with caplog.at_level(logging.WARNING):
    loaded = run_dir.load(str(run), mesh, RULES)
  assert_trees_equal(loaded.params, older)
  assert "checkpoint step 20" in caplog.text and "unreadable" in caplog.text
  assert (run.checkpoints / "20").exists()
  # that warning alone: no Orbax option notices, no traceback
  assert [os.path.basename(r.pathname) for r in caplog.records] == ["store.py"], caplog.text
  assert not any(r.exc_info for r in caplog.records)

  _truncate_files(run.checkpoint_item(10, run_dir.PARAMS_ITEM))
  with pytest.raises(ValueError, match=f"{run.checkpoints}: no readable checkpoint"):
    run_dir.load(str(run), mesh, RULES)


def test_orbax_tracebacks_of_an_unreadable_step_are_left_out(caplog):
  """What Orbax logs (through absl) while failing to read a step, an error with its traceback,
  is dropped: the one warning line of `restore_newest` reports it. Orbax's records outside a
  restore, and other libraries' errors during one, still show."""
  absl = logging.getLogger("absl")

  def orbax_record(message):
    try:
      raise OSError("short read")
    except OSError:
      import sys  # pylint: disable=import-outside-toplevel
      return logging.makeLogRecord({
          "name": "absl", "levelno": logging.ERROR, "levelname": "ERROR", "msg": message,
          "pathname": os.path.join(store._ORBAX_DIR, "checkpoint", "_src", "reader.py"),  # pylint: disable=protected-access
          "exc_info": sys.exc_info()})

  def restore(step):
    absl.handle(orbax_record(f"failed reading step {step}"))
    logging.getLogger("other_library").error("an unrelated error")
    if step == 2:
      raise OSError("short read")
    return "restored"

  with caplog.at_level(logging.INFO):
    assert store.restore_newest([1, 2], restore, "/ckpt") == (1, "restored")
    absl.handle(orbax_record("outside a restore"))
  messages = [r.getMessage() for r in caplog.records]
  assert messages == [
      "an unrelated error",
      "checkpoint step 2 in /ckpt is unreadable, trying the one before: OSError: short read",
      "an unrelated error", "outside a restore"], messages
  assert all(not f.__class__.__name__.startswith("_Orbax") for f in caplog.handler.filters)


def _truncate_files(directory, size=10):
  """Cuts every data file under `directory` short, as a half-copied bucket leaves them."""
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      if os.path.getsize(path) > 1000:
        os.truncate(path, size)


def test_writer_lock_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path, caplog):
  """A lock of a live process of this host is refused with one line naming it; one of a dead
  process (or another host's) is taken over with a warning; the holder's exit removes it,
  and a lock it does not hold (taken over since) is left alone."""
  import json  # pylint: disable=import-outside-toplevel
  import socket  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from instruct_pt import run_lock  # pylint: disable=import-outside-toplevel
  out = run_dir.RunDir(tmp_path / "run").create()
  lock = out.path / run_lock.LOCK_FILE
  host = socket.gethostname()
  with run_lock.writer_lock(out):
    assert json.loads(lock.read_text())["pid"] == os.getpid()
  assert not lock.exists()
  lock.write_text(json.dumps({"pid": os.getppid(), "host": host, "since": "then"}))
  with pytest.raises(ValueError, match=f"is in use by pid {os.getppid()} on host {host} since "
                                       "then"):
    with run_lock.writer_lock(out):
      pass
  assert json.loads(lock.read_text())["pid"] == os.getppid()  # not touched
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True)
  for holder in ({"pid": int(dead.stdout), "host": host, "since": "then"},
                 {"pid": os.getppid(), "host": "another-host", "since": "then"}):
    lock.write_text(json.dumps(holder))
    with caplog.at_level("WARNING"):
      with run_lock.writer_lock(out):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        lock.write_text(json.dumps(dict(holder, since="later")))  # someone took it over
    assert "taking over the writer lock" in caplog.text
    assert json.loads(lock.read_text())["since"] == "later"  # theirs: left alone
