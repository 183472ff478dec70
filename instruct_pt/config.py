"""Gin configuration: the few configurables the CLI calls, parsing, the operative config.

Run-level choices are gin bindings on these names (deep code receives plain dataclasses):

  model.preset / model.overrides   -> `ModelConfig` (instruct_pt.model.config)
  train.*                          -> `TrainConfig` (instruct_pt.train.loop)
  optimizer.*                      -> `OptimizerConfig` (instruct_pt.train.optim)
  mesh.shape / mesh.rule_overrides -> `MeshConfig` (instruct_pt.parallel)
  data.tasks / data.mixtures / data.*_recipes -> SeqIO registrations (`register_data`)
  synthesize.*                     -> `SynthesisConfig` (instruct_pt.synthesis.pipeline)

Gin files may `include` other files by a path relative to the repository root (e.g.
`include 'configs/models/tiny.gin'`), from any working directory.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional, Sequence

import gin
from etils import epath

from instruct_pt.model import checkpoints
from instruct_pt.model.config import ModelConfig, get_preset
from instruct_pt.parallel import MeshConfig
from instruct_pt.synthesis.pipeline import SynthesisConfig
from instruct_pt.train.loop import TrainConfig
from instruct_pt.train.optim import OptimizerConfig

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FILE_NAME = "config.gin"

train_config = gin.external_configurable(TrainConfig, "train")
optimizer_config = gin.external_configurable(OptimizerConfig, "optimizer")
mesh_config = gin.external_configurable(MeshConfig, "mesh")
synthesis_config = gin.external_configurable(SynthesisConfig, "synthesize")


@gin.configurable("model")
def model_config(preset: str = "tiny", overrides: Optional[dict[str, Any]] = None) -> ModelConfig:
  """The model: a named preset or a run directory's model, with optional field overrides.

  Args:
    preset: a name from `instruct_pt.model.config.preset_names()`, or a run directory (one
      with a model_config.json, e.g. from `instruct-pt convert`).
    overrides: ModelConfig fields to change, e.g. `{"dtype": "bfloat16"}`.
  """
  overrides = dict(overrides or {})
  if "/" in preset or os.path.isdir(preset):
    return checkpoints.read_model_config(preset, **overrides)
  return get_preset(preset, **overrides)


@gin.configurable("data")
def register_data(vocabulary, tasks: Optional[dict[str, dict[str, Any]]] = None,
                  mixtures: Optional[dict[str, dict[str, float]]] = None,
                  pretrain_recipes: Optional[dict[str, dict[str, Any]]] = None,
                  domain_recipes: Optional[dict[str, dict[str, Any]]] = None) -> list[str]:
  """Registers the demo tasks and mixtures, then the corpora and mixtures named in gin.

  Imports SeqIO / TensorFlow (the `data` extra). Example bindings::

    data.tasks = {
        'web': {'kind': 'raw_lm', 'layout': 'refinedweb', 'pattern': 'gs://b/rw/*.parquet'},
        'web_augmented': {'kind': 'instruct_augmented_lm', 'pattern': 'gs://b/aug/*.jsonl'},
    }
    data.mixtures = {'web_mix': {'web': 0.8, 'web_augmented': 0.2}}

  Args:
    vocabulary: a `seqio.Vocabulary` shared by every task.
    tasks: task name -> `kind` (a `tasks.KINDS` entry), optional `layout` (a
      `sources.CORPUS_LAYOUTS` name) and `SourceSpec` fields (`pattern` required).
    mixtures: mixture name -> {task name: rate}.
    pretrain_recipes: mixture name -> `tasks.register_pretrain_recipe` arguments.
    domain_recipes: mixture name -> `tasks.register_domain_recipe` arguments.

  Returns:
    Every registered task and mixture name.
  """
  from instruct_pt.data import sources  # pylint: disable=import-outside-toplevel
  from instruct_pt.data import tasks as tasks_lib  # pylint: disable=import-outside-toplevel
  names = tasks_lib.register_demo_tasks(vocabulary)
  for name, settings in (tasks or {}).items():
    settings = dict(settings)
    kind = settings.pop("kind", None)
    layout = settings.pop("layout", None)
    if kind is None or "pattern" not in settings:
      raise ValueError(f"data.tasks[{name!r}] needs 'kind' and 'pattern', got {sorted(settings)}")
    if kind in ("synthesizer_sft", "instructions"):
      settings.setdefault("text_field", sources.WHOLE_RECORD)
    pattern = settings.pop("pattern")
    spec = (sources.layout_spec(layout, pattern, **settings) if layout
            else sources.SourceSpec(pattern, **settings))
    tasks_lib.register_task(name, kind, sources.seqio_source(spec), vocabulary)
    names.append(name)
  for name, rates in (mixtures or {}).items():
    tasks_lib.register_mixture(name, rates)
    names.append(name)
  for name, arguments in (pretrain_recipes or {}).items():
    tasks_lib.register_pretrain_recipe(name, **arguments)
    names.append(name)
  for name, arguments in (domain_recipes or {}).items():
    tasks_lib.register_domain_recipe(name, **arguments)
    names.append(name)
  return names


def resolve_config_path(path: str) -> str:
  """Finds a gin file given as-is, relative to the working directory or to the repository.

  Args:
    path: the path the user gave.

  Raises:
    FileNotFoundError: naming the path and where it was looked for.
  """
  candidates = [path, os.path.join(REPO_ROOT, path)]
  for candidate in candidates:
    if os.path.isfile(candidate):
      return candidate
  raise FileNotFoundError(f"gin file {path!r} not found (looked in {os.getcwd()} and "
                          f"{REPO_ROOT})")


class _HideGinPathNotFound(logging.Filter):
  """gin logs an error (on the root logger) for every include it then finds on the search
  path; a file found nowhere still raises."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not (record.module == "resource_reader" and
                str(record.msg).startswith("Path not found"))


logging.getLogger().addFilter(_HideGinPathNotFound())


def parse(gin_files: Sequence[str] = (), gin_params: Sequence[str] = ()) -> None:
  """Clears gin and parses the given files, then the bindings (which win).

  Args:
    gin_files: gin file paths.
    gin_params: bindings such as `"train.num_steps = 100"`.

  Raises:
    FileNotFoundError: a gin file (or an included one) does not exist.
    ValueError: a binding is malformed or names an unknown configurable / parameter; the
      message names the file or binding.
  """
  gin.clear_config()
  gin.add_config_file_search_path(REPO_ROOT)
  for path in gin_files:
    resolved = resolve_config_path(path)
    try:
      gin.parse_config_file(resolved)
    except (ValueError, SyntaxError, IOError) as e:
      raise ValueError(f"in gin file {path}: {e}") from e
  for binding in gin_params:
    try:
      gin.parse_config(binding)
    except (ValueError, SyntaxError) as e:
      raise ValueError(f"in --gin_param={binding!r}: {e}") from e


def write_operative_config(run_dir: str) -> None:
  """Writes the operative gin config (every parameter used so far) into `run_dir`."""
  run_path = epath.Path(run_dir)
  run_path.mkdir(parents=True, exist_ok=True)
  (run_path / CONFIG_FILE_NAME).write_text(gin.operative_config_str())


def build_run_configs() -> tuple[ModelConfig, TrainConfig, OptimizerConfig, MeshConfig]:
  """Calls the configurables under the current gin bindings."""
  return model_config(), train_config(), optimizer_config(), mesh_config()


def write_run_config(run_dir: str, model: ModelConfig) -> None:
  """Writes the operative gin config and the resolved model config into the run directory.

  `config.gin` holds every parameter the run used (defaults included), so it reproduces the
  run; `model_config.json` lets later stages (synthesis, evaluation) rebuild the model.

  Args:
    run_dir: the run directory (created if missing; local or gs://).
    model: the resolved model config.
  """
  write_operative_config(run_dir)
  checkpoints.write_model_config(run_dir, model)
