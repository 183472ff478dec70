"""Gin -> frozen run configs -> gin: what a run directory's config.gin holds rebuilds the run."""

import dataclasses
import logging
import os
import re

import pytest

from instruct_pt import commands, config, recipes
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
  assert commands.model_config(run.model) == get_preset("tiny", dtype="float32",
                                                       num_layers=3)
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


def test_parse_leaves_gin_search_state_and_logging_as_they_were(caplog):
  """Parsing scopes gin's file search (its search path does not grow with each parse, its
  readers come back) and logs nothing about includes it found."""
  from gin import config as gin_config  # pylint: disable=import-outside-toplevel
  before = (list(logging.getLogger().filters), list(gin_config._LOCATION_PREFIXES),  # pylint: disable=protected-access
            list(gin_config._FILE_READERS))  # pylint: disable=protected-access
  with caplog.at_level(logging.INFO):
    recipes.parse(["pretrain/instructlm_1_3b"])
    recipes.parse([TINY])
  assert (logging.getLogger().filters, gin_config._LOCATION_PREFIXES,  # pylint: disable=protected-access
          gin_config._FILE_READERS) == before  # pylint: disable=protected-access
  assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records


def test_unknown_preset_names_the_known_ones():
  with pytest.raises(ValueError, match="Unknown model preset 'nope'; known presets: tiny"):
    commands.model_config(config.ModelSpec(preset="nope"))


def test_recipes_resolve_by_name_and_path_from_any_directory(tmp_path, monkeypatch):
  """`pretrain/instructlm_1_3b` (with or without `.gin`), `configs/pretrain/...gin` and an
  absolute path name one file; from another working directory, the recipe's own `include` of
  `configs/models/...` is found too."""
  monkeypatch.chdir(tmp_path)
  path = os.path.join(recipes.CONFIG_ROOT, "configs", "pretrain", "instructlm_1_3b.gin")
  for name in ("pretrain/instructlm_1_3b", "pretrain/instructlm_1_3b.gin",
               "configs/pretrain/instructlm_1_3b.gin", path):
    assert os.path.samefile(recipes.resolve_config_path(name), path), name
  assert "pretrain/instructlm_1_3b" in recipes.recipe_names()
  run = config.train_run(str(tmp_path / "run"), ["pretrain/instructlm_1_3b"])
  assert run.model.preset == "instructlm_1_3b"


@pytest.mark.parametrize("name, hint", [
    ("pretrain/instructlm_1_3", "closest recipes: pretrain/instructlm_1_3b"),
    ("configs/pretrain/tiny_cpu_typo.gin", "closest recipes: pretrain/tiny_cpu"),
    ("nothing/like/it", None),
])
def test_a_mistyped_recipe_names_the_closest_ones(name, hint):
  with pytest.raises(FileNotFoundError) as error:
    recipes.resolve_config_path(name)
  message = str(error.value)
  assert message.startswith(f"gin file {name!r} not found")
  assert (hint in message) if hint else "closest" not in message


@pytest.mark.parametrize("fields, message", [
    ({"model": None, "experts": ("a", "b")}, "routed experts need both --experts and --partition"),
    ({"model": None, "partition": "p"}, "routed experts need both --experts and --partition"),
    ({"model": "m", "experts": ("a",), "partition": "p"}, "not both"),
    ({"model": None}, "give --run_dir (the model to evaluate)"),
])
def test_an_evaluation_names_one_model_or_routed_experts(fields, message):
  """The checks of `instruct-pt evaluate`'s modes live in the run config, so the demo, the
  notebook and Python callers get them too; nothing is looked at on disk."""
  with pytest.raises(ValueError, match=re.escape(message)):
    config.EvaluateRun(tasks=("demo",), **fields)
  routed = config.EvaluateRun(model=None, tasks=("demo",), experts=("a", "b"), partition="p")
  assert routed.results_name() == "demo-top1"


def test_convert_checks_the_declared_source_kind_before_writing(tmp_path):
  """commands.convert (what the CLI, the notebook and the demo call) refuses a source of
  another kind than declared, and an unknown kind name, before creating the destination."""
  out = tmp_path / "run"
  with pytest.raises(ValueError, match="^smollm2 is a bundled GGUF model, not a Hugging Face "
                     "directory or run directory$"):
    commands.convert(config.ConvertRun(source="smollm2", run_dir=str(out),
                                       source_kinds=("hf", "run")))
  with pytest.raises(ValueError, match="source_kinds: safetensors not among"):
    commands.convert(config.ConvertRun(source="smollm2", run_dir=str(out),
                                       source_kinds=("safetensors",)))
  assert not out.exists()
