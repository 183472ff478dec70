"""Gin -> frozen run configs, and back to gin.

Every gin name is a frozen dataclass; the deep code receives them as plain values:

  model.*       `ModelSpec`        preset / overrides / tokenizer / init_from
  train.*       `TrainConfig`      (instruct_pt.train.loop)
  optimizer.*   `OptimizerConfig`  (instruct_pt.train.optim)
  mesh.*        `MeshConfig`       (instruct_pt.parallel)
  data.*        `DataConfig`       (instruct_pt.data.registry)
  synthesize.*  `SynthesisConfig`  (instruct_pt.synthesis.pipeline)
  finetune.*    `FinetuneConfig`   (instruct_pt.train.finetune)
  evaluate.*    `ScoringConfig`    (instruct_pt.evaluation.scoring)
  compile.*     `CompileConfig`    (instruct_pt.aot.compiler)

`EvaluateRun` and `AnalyzeUnitsRun` take no gin: their commands build them from flags.

`train_run` / `finetune_run` / `synthesize_run` / `compile_run` build a command's run config
from gin files and bindings (`recipes.parse` reads them); `to_gin` renders any run config back
into bindings (every field, defaults included), which is what a run directory's `config.gin`
holds: parsing it rebuilds the run. The run configs are plain values: what they name (models,
directories) is looked at by `commands`, not here.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Optional, Sequence, Union

import gin

from instruct_pt import recipes
from instruct_pt.analysis import units as analysis_units
from instruct_pt.aot.compiler import CompileConfig
from instruct_pt.data.registry import DataConfig
from instruct_pt.evaluation.scoring import ScoringConfig
from instruct_pt.model import units as units_lib
from instruct_pt.parallel import MeshConfig
from instruct_pt.synthesis.pipeline import SynthesisConfig
from instruct_pt.train.finetune import FinetuneConfig
from instruct_pt.train.loop import TrainConfig
from instruct_pt.train.optim import OptimizerConfig


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """Which model a run trains (gin: `model.*`).

  Attributes:
    preset: a name from `instruct_pt.model.config.preset_names()`, or a model source
      (`run_dir.load`: run directory, Hugging Face directory, GGUF) whose *config* is used
      with fresh random parameters.
    overrides: ModelConfig fields to change, e.g. `{"dtype": "bfloat16"}`.
    tokenizer: the tokenizer of a run from random parameters: "byte", or a tokenizer file /
      directory (e.g. from `instruct-pt tokenizer`).
    init_from: a model source whose parameters, model config and tokenizer a fresh run
      starts from (continual pre-training, fine-tuning); `overrides` apply on top. Ignored
      once the run has its own checkpoint.
  """

  preset: str = "tiny"
  overrides: Optional[dict[str, Any]] = None
  tokenizer: str = "byte"
  init_from: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class TrainRun:
  """Everything `commands.train` needs.

  Attributes:
    run_dir: the run directory (local or gs://).
    model: the model and where it starts from.
    train: loop settings.
    optimizer: the optimizer.
    mesh: the device mesh and sharding rules.
    data: what to train on.
    allow_changed_settings: resume a run whose `config.gin` holds other settings than these
      (besides `train.num_steps`, which may always grow); without it such a resume is
      refused, naming each setting.
  """

  run_dir: str
  model: ModelSpec = ModelSpec()
  train: TrainConfig = TrainConfig()
  optimizer: OptimizerConfig = OptimizerConfig()
  mesh: MeshConfig = MeshConfig()
  data: DataConfig = DataConfig()
  allow_changed_settings: bool = False


@dataclasses.dataclass(frozen=True)
class FinetuneRun:
  """Everything `commands.finetune` needs.

  Attributes:
    run_dir: the run directory (local or gs://).
    model: the model and where stage 1 starts from (`model.init_from`).
    finetune: the mode, the stages' steps and mixtures, the soft prompt.
    train: loop settings of both stages (`train.num_steps` is not used).
    optimizer: the optimizer of the model.
    mesh: the device mesh and sharding rules.
    data: the tasks and mixtures the stages may name (`data.mixture` must stay unset).
    allow_changed_settings: resume a run whose `config.gin` holds other settings than these
      (besides `finetune.stage2_steps`, which may always grow); without it such a resume is
      refused, naming each setting.
  """

  run_dir: str
  model: ModelSpec = ModelSpec()
  finetune: FinetuneConfig = FinetuneConfig()
  train: TrainConfig = TrainConfig()
  optimizer: OptimizerConfig = OptimizerConfig()
  mesh: MeshConfig = MeshConfig()
  data: DataConfig = DataConfig()
  allow_changed_settings: bool = False

  def __post_init__(self):
    if self.data.mixture is not None:
      raise ValueError(f"data.mixture={self.data.mixture!r} is not used by finetune; name each "
                       f"stage's data with finetune.stage1_mixture / finetune.stage2_mixture")


@dataclasses.dataclass(frozen=True)
class SynthesizeRun:
  """Everything `commands.synthesize` needs.

  Attributes:
    run_dir: the output directory.
    synthesis: synthesis settings (synthesizer, corpus, rounds, sampling).
    mesh: each host's mesh (over its own devices) and sharding rules.
  """

  run_dir: str
  synthesis: SynthesisConfig = SynthesisConfig()
  mesh: MeshConfig = MeshConfig(shape=(1, -1, 1))


@dataclasses.dataclass(frozen=True)
class ConvertRun:
  """Everything `commands.convert` needs.

  Attributes:
    source: a model source (`run_dir.load`): run directory, Hugging Face directory, GGUF file
      or bundled GGUF name.
    run_dir: import: the run directory to write (params/, model_config.json, tokenizer/).
    to_hf: export: the Hugging Face directory to write.
    param_dtype: dtype of the loaded parameters (None keeps the source's).
    dtype: dtype of exported tensors.
    mesh: the mesh to load onto.
    source_kinds: what the source must be (keys of `run_dir.SOURCE_KINDS`: "bundled",
      "gguf", "hf", "run"), checked before anything is written; empty accepts any source.
  """

  source: str
  run_dir: Optional[str] = None
  to_hf: Optional[str] = None
  param_dtype: Optional[str] = None
  dtype: str = "float32"
  mesh: MeshConfig = MeshConfig()
  source_kinds: tuple[str, ...] = ()

  def __post_init__(self):
    if (self.run_dir is None) == (self.to_hf is None):
      raise ValueError("convert needs exactly one destination: --run_dir (import) or "
                       "--to_hf (export)")


@dataclasses.dataclass(frozen=True)
class EvaluateRun:
  """Everything `commands.evaluate` needs.

  Attributes:
    model: a model source (`run_dir.load`): run directory (imported, trained or
      fine-tuned), Hugging Face directory, GGUF file or bundled GGUF name; None with
      `experts`.
    tasks: lm-eval task, group or tag names (globs allowed): the shipped ones (`demo`,
      `demo_cloze`, `demo_perplexity`, `paper_general`, `paper_biomed`, `paper_finance`,
      `adaptllm_law`, `adaptllm_*`), those under `include_path`, and lm-eval's own.
    num_fewshot: few-shot examples per task; None keeps each task's default.
    limit: documents per task; None runs them all.
    include_path: task directories besides the shipped ones.
    output_dir: where results go; None means `<model>/eval/<name>` (a run directory).
    name: the results' name; None derives it from the tasks, few-shot count and limit.
    max_length: tokens the model reads per request; None is the model's max_seq_len.
    row_len: tokens per packed row when scoring; None is the scorer's default.
    batch_tokens: tokens per scoring call; None is the scorer's default.
    soft_prompt: a run directory with a trained soft prompt (`prompt.npy`, ProMoT) or a
      `.npy` file, read ahead of every request; None for none. Its results are named apart.
    unit_mask: a units file (`instruct-pt analyze-units`'s `units.json` or its directory)
      whose units are ablated in log-likelihood tasks; None for none. Named apart too.
    mesh: the mesh of each host's devices (hosts score their shares of the documents).
    experts: routed experts instead of `model`: model sources, one per cluster of
      `partition`, in cluster order.
    partition: with `experts`, the partition directory they were trained on (`instruct-pt
      partition`); results go to `<partition>/eval/<name>`.
    temperature: the routing softmax temperature of `experts`.
    top_k: experts mixed per request (None: all of them).
    overwrite: replace the results of an earlier evaluation in the output directory; without
      it an existing `results.json` stops the command before anything runs.
    adaptllm_dir: a local copy of the AdaptLLM task datasets (`<config>/test.json[l]` per
      task); None reads them from the Hugging Face hub.
  """

  model: Optional[str]
  tasks: tuple[str, ...]
  num_fewshot: Optional[int] = None
  limit: Optional[int] = None
  include_path: tuple[str, ...] = ()
  output_dir: Optional[str] = None
  name: Optional[str] = None
  max_length: Optional[int] = None
  row_len: Optional[int] = None
  batch_tokens: Optional[int] = None
  soft_prompt: Optional[str] = None
  unit_mask: Optional[str] = None
  mesh: MeshConfig = MeshConfig()
  experts: tuple[str, ...] = ()
  partition: Optional[str] = None
  temperature: float = 0.1
  top_k: Optional[int] = 1
  overwrite: bool = False
  adaptllm_dir: Optional[str] = None

  def __post_init__(self):
    if bool(self.experts) != (self.partition is not None):
      raise ValueError("routed experts need both --experts and --partition")
    if self.experts and self.model is not None:
      raise ValueError("give --run_dir (one model) or --experts with --partition, not both")
    if not self.experts and self.model is None:
      raise ValueError("give --run_dir (the model to evaluate), or --experts with --partition")
    for flag in ("soft_prompt", "unit_mask"):
      if self.experts and getattr(self, flag) is not None:
        raise ValueError(f"--{flag} is for one model, not routed --experts")
    if not self.tasks or not all(self.tasks):
      raise ValueError(f"--tasks={','.join(self.tasks)!r}: name at least one task")
    for flag, value, least in (("num_fewshot", self.num_fewshot, 0), ("limit", self.limit, 1)):
      if value is not None and value < least:
        raise ValueError(f"--{flag}={value} must be at least {least}")

  def results_name(self) -> str:
    """`name`, or e.g. "demo", "arc_easy+boolq-5shot", "demo-limit10", "demo-soft_prompt"."""
    if self.name:
      return self.name
    shots = "" if self.num_fewshot is None else f"-{self.num_fewshot}shot"
    limit = "" if self.limit is None else f"-limit{self.limit}"
    prompt = "" if self.soft_prompt is None else "-soft_prompt"
    ablated = "" if self.unit_mask is None else "-unit_mask"
    routed = "" if not self.experts else f"-top{self.top_k or len(self.experts)}"
    return "+".join(self.tasks) + shots + limit + prompt + ablated + routed


@dataclasses.dataclass(frozen=True)
class PartitionRun:
  """Everything `commands.partition` needs (`instruct-pt partition` builds it from flags).

  Attributes:
    output_dir: the partition directory to write (`analysis.contexts.PartitionDir`).
    corpus: a corpus `sources.SourceSpec.pattern`: a glob of text / JSONL / Parquet /
      TFRecord files, or "demo" (the embedded demo corpus's training split).
    text_field: the field holding the text (JSONL, Parquet, TFRecord).
    label_field: a field holding a known source label, for purity and router accuracy only
      (never for clustering); the demo corpus's labels are its pydoc topics.
    held_out: a corpus of held-out documents for router accuracy ("demo_held_out" by default
      for the demo corpus; None for none).
    max_documents: cluster at most this many documents (the first ones); None for all.
    clusters: k, the number of clusters (one expert each).
    features: "tfidf" (TF-IDF -> truncated SVD, as c-BTM) or "model" (the frozen model's
      mean-pooled last hidden state).
    model: the model of `features="model"` (any `run_dir.load` source).
    dims: SVD dimensions of the TF-IDF features (c-BTM: 100).
    max_terms: TF-IDF vocabulary size (the terms in most documents).
    min_df: documents a TF-IDF term must occur in.
    max_tokens: tokens of each document the model reads (`features="model"`).
    prefix_chars: characters of a held-out document its route is computed from.
    seed: seed of the SVD and the k-means++ initialisation.
  """

  output_dir: str
  corpus: str = "demo"
  text_field: str = "text"
  label_field: Optional[str] = None
  held_out: Optional[str] = None
  max_documents: Optional[int] = None
  clusters: int = 4
  features: str = "tfidf"
  model: str = "smollm2"
  dims: int = 100
  max_terms: int = 20000
  min_df: int = 2
  max_tokens: int = 128
  prefix_chars: int = 256
  seed: int = 0

  def __post_init__(self):
    if self.features not in ("tfidf", "model"):
      raise ValueError(f"--features={self.features!r}: choose tfidf or model")
    for flag in ("clusters", "dims", "max_terms", "min_df", "max_tokens", "prefix_chars"):
      if getattr(self, flag) < 1:
        raise ValueError(f"--{flag}={getattr(self, flag)} must be at least 1")
    if self.max_documents is not None and self.max_documents < 1:
      raise ValueError(f"--max_documents={self.max_documents} must be at least 1")


@dataclasses.dataclass(frozen=True)
class AnalyzeUnitsRun:
  """Everything `commands.analyze_units` needs (`instruct-pt analyze-units`'s flags).

  Attributes:
    model: a model source (`run_dir.load`): run directory, Hugging Face directory, GGUF file
      or bundled GGUF name.
    task_stimuli: task stimuli: a text file (one per line), a JSONL file (`text_field`), or
      `builtin:NAME[:COUNT]` (`instruct_pt.analysis.stimuli`).
    control_stimuli: control stimuli, the same forms.
    output_dir: the output directory (units.json, t_values.npy, units.png).
    kind: "residual" (each dimension after each block) or "mlp" (SwiGLU hidden units).
    pooling: "last" (the stimulus' last token) or "mean" (over its tokens).
    top_percent: share of all units to select, in percent.
    max_tokens: each stimulus is cut to its first this many tokens.
    batch_size: stimuli per forward pass.
    text_field: the JSONL field holding each stimulus.
    mesh: the mesh to load the model onto.
  """

  model: str
  task_stimuli: str
  control_stimuli: str
  output_dir: str
  kind: str = "residual"
  pooling: str = "last"
  top_percent: float = 1.0
  max_tokens: int = 12
  batch_size: int = 16
  text_field: str = "text"
  mesh: MeshConfig = MeshConfig()

  def __post_init__(self):
    if self.kind not in units_lib.KINDS:
      raise ValueError(f"--kind={self.kind!r}; choose one of {units_lib.KINDS}")
    if self.pooling not in analysis_units.POOLINGS:
      raise ValueError(f"--pooling={self.pooling!r}; choose one of {analysis_units.POOLINGS}")
    if not 0 < self.top_percent <= 100:
      raise ValueError(f"--top_percent={self.top_percent}: give a percentage in (0, 100]")
    for flag in ("max_tokens", "batch_size"):
      if getattr(self, flag) <= 0:
        raise ValueError(f"--{flag}={getattr(self, flag)} must be positive")


@dataclasses.dataclass(frozen=True)
class CompileRun:
  """Everything `commands.compile` needs: a recipe's settings, read from the same gin files
  the recipe's own command reads, and where to compile it for.

  Attributes:
    run_dir: where the reports go (`RUN/compile/`); None prints them only.
    model: the model (its preset, or a source whose config is read; `init_from` is not read:
      no weights are needed).
    train: the training step's settings (the train program).
    optimizer: the optimizer (its state is part of the train step's memory).
    mesh: the mesh and sharding rules (over the slice for training, over one host's chips
      for synthesis and evaluation, as those commands build it).
    synthesis: the synthesis engine's settings (the synthesize programs).
    scoring: evaluation's scoring settings (the evaluate program).
    compile: the slice and the programs.
  """

  run_dir: Optional[str] = None
  model: ModelSpec = ModelSpec()
  train: TrainConfig = TrainConfig()
  optimizer: OptimizerConfig = OptimizerConfig()
  mesh: MeshConfig = MeshConfig()
  synthesis: SynthesisConfig = SynthesisConfig()
  scoring: ScoringConfig = ScoringConfig()
  compile: CompileConfig = CompileConfig()


# Gin name of each configurable dataclass; `to_gin` renders run configs with these names.
GIN_NAMES = {ModelSpec: "model", TrainConfig: "train", OptimizerConfig: "optimizer",
             MeshConfig: "mesh", DataConfig: "data", SynthesisConfig: "synthesize",
             FinetuneConfig: "finetune", ScoringConfig: "evaluate", CompileConfig: "compile"}
_CONFIGURABLES = {cls: gin.external_configurable(cls, name) for cls, name in GIN_NAMES.items()}


def gin_configured(cls: type) -> Any:
  """An instance of a `GIN_NAMES` dataclass with the parsed gin bindings applied.

  Raises:
    ValueError: a bound value of another type than its field's, in one line
      (`train.num_steps='ten': expected an int`), before the class checks its values.
  """
  _check_bound_types(cls)
  return _CONFIGURABLES[cls]()


def _check_bound_types(cls: type) -> None:
  """Raises a ValueError naming the first gin binding of `cls` whose value does not fit its
  field's annotation (ints, numbers, strings, booleans, None, tuples and dicts are checked;
  gin references and other annotations are not)."""
  hints = typing.get_type_hints(cls)
  for field in dataclasses.fields(cls):
    setting = f"{GIN_NAMES[cls]}.{field.name}"
    try:
      value = gin.query_parameter(setting)
    except ValueError:  # not bound
      continue
    if not _fits(value, hints[field.name]):
      raise ValueError(f"{setting}={value!r}: expected {_describe_type(hints[field.name])}")


def _fits(value: Any, hint: Any) -> bool:
  """Whether `value` fits the annotation `hint` (unchecked kinds fit)."""
  if isinstance(value, gin.config.ConfigurableReference) or hint is Any:
    return True
  origin, args = typing.get_origin(hint), typing.get_args(hint)
  if origin is Union:
    return any(_fits(value, arg) for arg in args)
  if hint is type(None):
    return value is None
  if hint in (int, float, bool):
    allowed = {int: (int,), float: (int, float), bool: (bool,)}[hint]
    return isinstance(value, allowed) and (hint is bool or not isinstance(value, bool))
  if hint is str:
    return isinstance(value, str)
  if origin is tuple:
    if not isinstance(value, (tuple, list)):
      return False
    if len(args) == 2 and args[1] is Ellipsis:
      return all(_fits(item, args[0]) for item in value)
    return len(value) == len(args) and all(map(_fits, value, args))
  if dict in (hint, origin):
    return isinstance(value, dict)
  return True


def _describe_type(hint: Any) -> str:
  """`hint` in words: "an int", "a number or None", "a tuple of strings"."""
  origin, args = typing.get_origin(hint), typing.get_args(hint)
  if origin is Union:
    return " or ".join(_describe_type(arg) for arg in args)
  if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
    return f"a tuple of {_describe_type(args[0])}s".replace("a tuple of an ", "a tuple of ")
  names = {int: "an int", float: "a number", bool: "True or False", str: "a string",
           type(None): "None", dict: "a dict"}
  return names.get(hint, names.get(origin, str(hint)))


def train_run(run_dir_path: str, gin_files: Sequence[str] = (),
              gin_params: Sequence[str] = ()) -> TrainRun:
  """A `TrainRun` from gin files and bindings (see `parse`).

  Args:
    run_dir_path: the run directory.
    gin_files: gin file paths.
    gin_params: bindings, applied after the files.
  """
  return _run_from_gin(TrainRun, run_dir_path, gin_files, gin_params)


def finetune_run(run_dir_path: str, gin_files: Sequence[str] = (),
                 gin_params: Sequence[str] = ()) -> FinetuneRun:
  """A `FinetuneRun` from gin files and bindings (see `parse`).

  Args:
    run_dir_path: the run directory.
    gin_files: gin file paths.
    gin_params: bindings, applied after the files.
  """
  return _run_from_gin(FinetuneRun, run_dir_path, gin_files, gin_params)


def synthesize_run(run_dir_path: str, gin_files: Sequence[str] = (),
                   gin_params: Sequence[str] = ()) -> SynthesizeRun:
  """A `SynthesizeRun` from gin files and bindings (see `parse`).

  Args:
    run_dir_path: the output directory.
    gin_files: gin file paths.
    gin_params: bindings, applied after the files.
  """
  return _run_from_gin(SynthesizeRun, run_dir_path, gin_files, gin_params)


def _run_from_gin(run_class: type, run_dir_path: str, gin_files: Sequence[str],
                  gin_params: Sequence[str]) -> Any:
  """`run_class` with each configurable field (its default's type) taken from gin."""
  recipes.parse(gin_files, gin_params)
  return run_class(run_dir=run_dir_path, **{
      field.name: gin_configured(type(field.default)) for field in dataclasses.fields(run_class)
      if type(field.default) in GIN_NAMES})


def compile_run(run_dir_path: Optional[str], gin_files: Sequence[str] = (),
                gin_params: Sequence[str] = ()) -> CompileRun:
  """A `CompileRun` from gin files and bindings (see `parse`).

  Args:
    run_dir_path: where the reports go, or None.
    gin_files: gin file paths (a recipe's).
    gin_params: bindings, applied after the files.
  """
  return _run_from_gin(CompileRun, run_dir_path, gin_files, gin_params)


def scoring_config(gin_files: Sequence[str] = (),
                   gin_params: Sequence[str] = ()) -> ScoringConfig:
  """The `evaluate.*` settings of gin files and bindings (see `parse`)."""
  recipes.parse(gin_files, gin_params)
  return gin_configured(ScoringConfig)


def data_config(gin_files: Sequence[str] = (), gin_params: Sequence[str] = ()) -> DataConfig:
  """The `data.*` declarations of gin files and bindings (see `parse`)."""
  recipes.parse(gin_files, gin_params)
  return gin_configured(DataConfig)


def mesh_config(gin_params: Sequence[str] = (), gin_files: Sequence[str] = ()) -> MeshConfig:
  """The `mesh.*` settings of gin files and bindings (see `parse`)."""
  recipes.parse(gin_files, gin_params)
  return gin_configured(MeshConfig)


Run = Union[TrainRun, FinetuneRun, SynthesizeRun]


def to_gin(run: Run) -> str:
  """Gin bindings of every configurable field of `run`, defaults included.

  Parsing the text (with `train_run` / `finetune_run` / `synthesize_run`) rebuilds an equal
  run config.

  Args:
    run: a run config.
  """
  lines = []
  for field in dataclasses.fields(run):
    value = getattr(run, field.name)
    name = GIN_NAMES.get(type(value))
    if name is None:
      continue
    lines.append(f"# {type(value).__name__}")
    for part in dataclasses.fields(value):
      lines.append(f"{name}.{part.name} = {_gin_literal(getattr(value, part.name))}")
    lines.append("")
  return "\n".join(lines)


def _gin_literal(value: Any) -> str:
  """A Python literal gin parses back to `value` (tuples, dicts, strings, numbers, None)."""
  if isinstance(value, (list, tuple)):
    items = ", ".join(_gin_literal(v) for v in value)
    if isinstance(value, list):
      return f"[{items}]"
    return f"({items}{',' if len(value) == 1 else ''})"
  if isinstance(value, dict):
    return "{" + ", ".join(f"{_gin_literal(k)}: {_gin_literal(v)}"
                           for k, v in value.items()) + "}"
  return repr(value)
