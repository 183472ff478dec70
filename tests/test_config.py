"""Gin -> frozen run configs -> gin: what a run directory's config.gin holds rebuilds the run."""

import dataclasses
import logging

import pytest

from instruct_pt import config
from instruct_pt.data.registry import DataConfig
from instruct_pt.model.config import get_preset

TINY = "configs/pretrain/tiny_cpu.gin"


def test_train_run_from_gin_round_trips_through_to_gin(tmp_path):
  """Every field, defaults included, is rendered; parsing the text rebuilds an equal run."""
  run = config.train_run(str(tmp_path), [TINY], [
      "train.num_steps = 7", "mesh.rule_overrides = (('embed', None),)",
      "data.mixtures = {'mix': {'demo_raw': 1.0}}", "data.mixture = 'mix'",
      "model.overrides = {'dtype': 'float32', 'num_layers': 3}"])
  assert run.train.num_steps == 7 and run.data.mixture == "mix"
  assert run.model.resolve() == get_preset("tiny", dtype="float32", num_layers=3)
  text = config.to_gin(run)
  assert "train.num_steps = 7" in text and "train.seq_len = 128" in text
  assert "optimizer.eps = 1e-08" in text  # a default the user never wrote
  path = tmp_path / "config.gin"
  path.write_text(text)
  assert config.train_run(str(tmp_path), [str(path)]) == run


def test_synthesize_run_round_trips_and_renders_only_its_parts(tmp_path):
  run = config.synthesize_run(str(tmp_path), ["configs/synthesis/smollm2_cpu.gin"])
  assert run.mesh.shape == (1, 1, 1) and run.synthesis.num_rounds == 2
  text = config.to_gin(run)
  assert "synthesize.model = 'smollm2'" in text and "train." not in text
  (tmp_path / "config.gin").write_text(text)
  assert config.synthesize_run(str(tmp_path), [str(tmp_path / "config.gin")]) == run


def test_typed_runs_need_no_gin():
  """The demo and notebook build runs in Python; replace() keeps them frozen values."""
  run = config.TrainRun(run_dir="r", data=DataConfig(mixture="demo_raw"))
  longer = dataclasses.replace(run, train=dataclasses.replace(run.train, num_steps=5))
  assert longer.train.num_steps == 5 and run.train.num_steps == 100
  with pytest.raises(dataclasses.FrozenInstanceError):
    run.run_dir = "other"  # type: ignore[misc]


def test_convert_run_needs_exactly_one_destination():
  with pytest.raises(ValueError, match="exactly one destination"):
    config.ConvertRun(source="smollm2")
  with pytest.raises(ValueError, match="exactly one destination"):
    config.ConvertRun(source="smollm2", run_dir="a", to_hf="b")


def test_parse_leaves_no_logging_filter_behind():
  """Hiding gin's include-search messages is scoped to parsing (no import-time global)."""
  before = list(logging.getLogger().filters)
  config.parse([TINY])
  assert logging.getLogger().filters == before


def test_unknown_preset_names_the_known_ones():
  with pytest.raises(ValueError, match="Unknown model preset 'nope'; known presets: tiny"):
    config.ModelSpec(preset="nope").resolve()
