"""The run directory: the one owner of its layout, and `load`, a model from any source.

Everything one run made lives in its directory (local or `gs://`), at these paths:

  config.gin                the run's settings as gin bindings (re-parsing them reproduces it)
  config.<n>.gin            the settings before the n-th resume that changed them
                            (`train --allow_changed_settings`)
  model_config.json         the resolved `ModelConfig`
  tokenizer/                the tokenizer (`instruct_pt.data.tokenizer.save_tokenizer`)
  params/                   imported parameters (Orbax, `instruct_pt.model.store`)
  checkpoints/<step>/       training checkpoints, one Orbax item per entry of CHECKPOINT_ITEMS
                            (data/process_<i>_of_<n>/: host i's data iterator state)
  metrics.jsonl             training metrics, one JSON line per logged step
  tensorboard/              the same as TensorBoard event files
  stage1/, stage2/          the stages of a two-stage fine-tuning run, each with its own
                            checkpoints/, metrics.jsonl and tensorboard/
  prompt.npy                a soft prompt (float32 [length, embed_dim]) trained by ProMoT
  shard-NNNNN.jsonl         synthesis output (with `.tfrecord` and `.done.json` siblings)
  stats.json                synthesis statistics
  eval/<name>/              evaluation results (lm-eval's `results.json`, a markdown table)
  compile/<command>-<slice>.json   what the TPU compiler says of a command's programs on a
                            slice (`instruct-pt compile`), with `<program>-<slice>.executable`
                            (a serialized compiled program) when asked for
  report.md                 a demo or experiment report, with its PNG plots
  results.json              an experiment's measured figures (the report's source)

Nothing else in the package joins these names. Local paths are made absolute here, once, so
a run directory means the same thing to Orbax (which needs absolute paths), to every command
and after a change of working directory. `resolve`, `make_directory` and `describe` (what a
directory holds, for errors) serve the package's other directories too (a partition's).

`load(source, mesh, rules)` reads a model from any source a command accepts: a run directory
(a training run's newest checkpoint, else imported `params/`, else a fine-tuning run's latest
stage's newest checkpoint), a Hugging Face directory, a GGUF file, or a bundled GGUF name;
`read_prompt(source, embed_dim)` a soft prompt from a run directory or a `.npy` file.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
from typing import Any, Optional, Union

import jax
import numpy as np
from etils import epath

from instruct_pt import parallel
from instruct_pt.data import tokenizer as tokenizer_lib
from instruct_pt.model import hf, readers, store
from instruct_pt.model.config import ModelConfig

PathLike = Union[str, os.PathLike]

# Orbax items of a training checkpoint: the parameters (readable on their own, as `params/`
# is), the rest of the train state, and (for feeds that keep one) each host's data iterator
# state. Training writes them; `load` reads `params` alone.
PARAMS_ITEM = "params"
TRAIN_STATE_ITEM = "train_state"
DATA_ITEM = "data"
CHECKPOINT_ITEMS = (PARAMS_ITEM, TRAIN_STATE_ITEM, DATA_ITEM)
# The stages of a two-stage fine-tuning run, in order (`RunDir.stage`).
STAGES = (1, 2)
# What an evaluation writes in its `eval/<name>/` directory: lm-eval's results.
EVAL_RESULTS_FILE = "results.json"


def host_data_state(process_index: int, process_count: int) -> str:
  """The name of one host's data state inside a checkpoint's DATA_ITEM directory."""
  return f"process_{process_index}_of_{process_count}"


def is_remote(path: PathLike) -> bool:
  """Whether `path` names object storage (`gs://...`) rather than a local file."""
  return "://" in str(path)


def resolve(path: PathLike) -> epath.Path:
  """`path` as a directory of the package: local paths made absolute, `gs://` ones kept.

  Args:
    path: local or `gs://`; it need not exist.
  """
  text = os.fspath(path)
  return epath.Path(text if is_remote(text) else os.path.abspath(text))


def make_directory(path: epath.Path, what: str) -> None:
  """Creates directory `path` and its parents, or says in one line why it cannot.

  Args:
    path: the directory (`resolve`d).
    what: how messages name it (e.g. "run directory").

  Raises:
    NotADirectoryError: the path, or a parent of it, is an existing file.
    PermissionError: the directory cannot be created or written; names it.
  """
  for parent in [path, *path.parents]:
    if parent.exists():
      if not parent.is_dir():
        raise NotADirectoryError(f"{what} {path}: {parent} is a file, not a directory")
      break
  try:
    path.mkdir(parents=True, exist_ok=True)
  except PermissionError as e:
    raise PermissionError(f"{what} {path} cannot be created ({e.strerror})") from e
  if not is_remote(path) and not os.access(path, os.W_OK):
    raise PermissionError(f"{what} {path} is not writable")


def describe(path: epath.Path) -> str:
  """What directory `path` holds, for error messages ("it is empty", "it holds a, b", ...).

  Args:
    path: the directory.
  """
  if not path.exists():
    return "it does not exist"
  if not path.is_dir():
    return "it is a file"
  names = sorted(p.name for p in path.iterdir())
  if any(name.startswith("shard-") for name in names):
    return "it is a synthesis run"
  if not names:
    return "it is empty"
  shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
  return f"it holds {shown}"


class RunDir:
  """The paths of one run directory.

  Args:
    path: the directory, local (made absolute) or `gs://`; it need not exist yet.
  """

  def __init__(self, path: PathLike):
    self.path = resolve(path)

  def __repr__(self) -> str:
    return f"RunDir({str(self.path)!r})"

  def __str__(self) -> str:
    return str(self.path)

  def __fspath__(self) -> str:
    return str(self.path)

  config_gin = property(lambda self: self.path / "config.gin",
                        doc="The run's settings as gin bindings.")

  def earlier_config(self, number: int) -> epath.Path:
    """The settings a resumed run had before its `number`-th change (`config.<number>.gin`)."""
    return self.path / f"config.{number}.gin"
  model_config = property(lambda self: self.path / "model_config.json",
                          doc="The resolved model config (JSON).")
  tokenizer = property(lambda self: self.path / "tokenizer", doc="The tokenizer's files.")
  params = property(lambda self: self.path / "params", doc="Imported parameters (Orbax).")
  checkpoints = property(lambda self: self.path / "checkpoints",
                         doc="Training checkpoints, one Orbax step directory each.")
  metrics = property(lambda self: self.path / "metrics.jsonl", doc="Training metrics (JSONL).")
  tensorboard = property(lambda self: self.path / "tensorboard", doc="TensorBoard event files.")
  stats = property(lambda self: self.path / "stats.json", doc="Synthesis statistics.")
  report = property(lambda self: self.path / "report.md", doc="A demo or experiment report.")
  results = property(lambda self: self.path / "results.json",
                     doc="An experiment's measured figures (JSON), which its report shows.")
  prompt = property(lambda self: self.path / "prompt.npy",
                    doc="A trained soft prompt (float32 [length, embed_dim], numpy format).")

  def stage(self, number: int) -> "RunDir":
    """Stage `number` (a STAGES entry) of a two-stage fine-tuning run: its own run directory
    for checkpoints, metrics and TensorBoard files."""
    if number not in STAGES:
      raise ValueError(f"stage {number}; a fine-tuning run has stages {STAGES}")
    return self.sub(f"stage{number}")

  def write_prompt(self, prompt: np.ndarray) -> None:
    """Writes `prompt.npy` (float32), whole or not at all (a temporary file renamed)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(prompt, np.float32))
    partial = self.path / "prompt.npy.partial"
    partial.write_bytes(buffer.getvalue())
    partial.rename(self.prompt)

  def checkpoint_step(self, step: int) -> epath.Path:
    """The directory of training checkpoint `step`."""
    return self.checkpoints / str(step)

  def checkpoint_item(self, step: int, item: str) -> epath.Path:
    """One Orbax item (a CHECKPOINT_ITEMS entry) of training checkpoint `step`."""
    return self.checkpoint_step(step) / item

  def data_state(self, step: int, process_index: int, process_count: int) -> epath.Path:
    """Where host `process_index` of `process_count` keeps its data state at `step`."""
    return self.checkpoint_item(step, DATA_ITEM) / host_data_state(process_index, process_count)

  def shard(self, index: int, suffix: str = ".jsonl") -> epath.Path:
    """Synthesis output shard `index` (suffix ".jsonl", ".tfrecord" or ".done.json")."""
    return self.path / f"shard-{index:05d}{suffix}"

  def shards(self, suffix: str = ".jsonl") -> list[epath.Path]:
    """The synthesis output shards with `suffix` that exist, in index order."""
    return sorted(self.path.glob(f"shard-*{suffix}"))

  def shard_pattern(self, suffix: str = ".jsonl") -> str:
    """A glob of every synthesis output shard with `suffix` (a corpus pattern for tasks)."""
    return str(self.path / f"shard-*{suffix}")

  def eval_dir(self, name: str) -> epath.Path:
    """Where an evaluation named `name` (e.g. its task list) writes its results."""
    return self.path / "eval" / name

  def eval_names(self) -> list[str]:
    """The names of the evaluations this run holds (its `eval/<name>/` directories)."""
    evals = self.path / "eval"
    return sorted(p.name for p in evals.iterdir() if p.is_dir()) if evals.is_dir() else []

  def compile_report(self, command: str, slice_label: str) -> epath.Path:
    """The compiler's report on `command`'s programs on a TPU slice (e.g. "v5p-32")."""
    return self.path / "compile" / f"{command}-{slice_label}.json"

  def compiled_executable(self, program: str, slice_label: str) -> epath.Path:
    """A serialized compiled program for a TPU slice (`jax.experimental.serialize_executable`
    output, pickled)."""
    return self.path / "compile" / f"{program}-{slice_label}.executable"

  def sub(self, name: str) -> "RunDir":
    """A run directory nested in this one (e.g. one stage of a multi-stage run)."""
    return RunDir(self.path / name)

  def create(self) -> "RunDir":
    """Creates the directory (and parents); returns self.

    Raises:
      NotADirectoryError: the path, or a parent of it, is an existing file.
      PermissionError: the directory cannot be created or written; names it.
    """
    make_directory(self.path, "run directory")
    return self

  def has_model(self) -> bool:
    """Whether the directory holds a model (a model config)."""
    return self.model_config.exists()

  def write_model_config(self, config: ModelConfig) -> None:
    """Writes `model_config.json`, with the compute dtype resolved for this backend."""
    self.model_config.write_text(config.replace(dtype=config.compute_dtype).to_json())

  def read_model_config(self, **overrides) -> ModelConfig:
    """The run's model config, with `overrides` (ModelConfig fields) applied.

    Raises:
      FileNotFoundError: the directory holds no model config (names what it holds instead).
      ValueError: the file is not a valid model config.
    """
    if not self.model_config.exists():
      raise FileNotFoundError(f"{self.path}: no {self.model_config.name}; expected a run "
                              f"directory with a model ({describe(self.path)})")
    try:
      config = ModelConfig.from_json(self.model_config.read_text())
    except (ValueError, TypeError) as e:
      raise ValueError(f"{self.model_config}: not a valid model config ({e})") from e
    return config.replace(**overrides) if overrides else config

  def write_tokenizer(self, tokenizer: tokenizer_lib.Tokenizer) -> None:
    """Writes the tokenizer's files into `tokenizer/`."""
    tokenizer_lib.save_tokenizer(tokenizer, self.tokenizer)

  def read_tokenizer(self) -> tokenizer_lib.Tokenizer:
    """The run's tokenizer.

    Raises:
      FileNotFoundError: the run has no `tokenizer/`.
    """
    if not self.tokenizer.exists():
      raise FileNotFoundError(f"{self.path}: no tokenizer/ ({describe(self.path)}); import the "
                              f"model with its tokenizer (`instruct-pt convert`)")
    return tokenizer_lib.load_tokenizer(self.tokenizer)


@dataclasses.dataclass(frozen=True)
class LoadedModel:
  """A model ready to run on a mesh.

  Attributes:
    config: the model config.
    params: the parameters, each leaf a `jax.Array` in its sharding (None when loaded
      without them).
    tokenizer: the tokenizer, or None when the source has none.
    source: where it came from (for messages).
  """

  config: ModelConfig
  params: Any
  tokenizer: Optional[tokenizer_lib.Tokenizer]
  source: str


# What `source_kind` can answer, and how messages name it.
SOURCE_KINDS = {"bundled": "bundled GGUF model", "gguf": "GGUF file",
                "hf": "Hugging Face directory", "run": "run directory"}


def source_kind(source: PathLike) -> str:
  """Which SOURCE_KINDS entry `source` is.

  Args:
    source: a bundled GGUF name (e.g. "smollm2"), a `.gguf` file, a Hugging Face directory
      (with config.json) or a run directory (with model_config.json).

  Raises:
    FileNotFoundError: `source` does not exist.
    ValueError: it exists but is none of these, naming what it holds.
  """
  text = os.fspath(source)
  if text in readers.BUNDLED_GGUF:
    return "bundled"
  if text.endswith(".gguf"):
    return "gguf"
  path = epath.Path(text)
  if not path.exists():
    raise FileNotFoundError(f"model source {text} does not exist (expected a run directory, a "
                            f"Hugging Face directory, a .gguf file or one of "
                            f"{', '.join(readers.BUNDLED_GGUF)})")
  if path.is_dir() and (path / "model_config.json").exists():
    return "run"
  if path.is_dir() and (path / "config.json").exists():
    return "hf"
  raise ValueError(f"model source {text}: {describe(path)}; expected a run directory "
                   f"(model_config.json), a Hugging Face directory (config.json) or a .gguf file")


def load(source: PathLike, mesh: Optional[jax.sharding.Mesh] = None,
         rules: Optional[parallel.Rules] = None, with_params: bool = True,
         progress: bool = True, **overrides) -> LoadedModel:
  """The model config, parameters (on `mesh`) and tokenizer of `source`.

  A run directory gives its newest training checkpoint's parameters, else its imported
  `params/`; Hugging Face and GGUF sources are streamed onto the mesh one tensor at a time.

  Args:
    source: see `source_kind`.
    mesh: the device mesh (needed with `with_params`).
    rules: logical axis rules (`MeshConfig.rules()`; needed with `with_params`).
    with_params: read the parameters; False gives the config and tokenizer only
      (`params` None), without touching the tensors.
    progress: show a progress bar while importing.
    **overrides: ModelConfig fields to change (e.g. `dtype`, `param_dtype`).

  Raises:
    FileNotFoundError / ValueError: a missing or malformed source, naming it.
  """
  kind = source_kind(source)
  text = os.fspath(source)
  if kind == "run":
    run = RunDir(text)
    config = run.read_model_config(**overrides)
    params = restore_params(run, config, mesh, rules) if with_params else None
    tokenizer = run.read_tokenizer() if run.tokenizer.exists() else None
    if tokenizer is None:
      logging.warning("%s has no tokenizer/", text)
    return LoadedModel(config, params, tokenizer, text)
  if kind == "hf":
    tensors = readers.SafetensorsSource(text)
    where = os.path.join(text, "config.json")
    has_tokenizer = any(os.path.isfile(os.path.join(text, name))
                        for name in ("tokenizer.json", "tokenizer.model"))
    tokenizer = tokenizer_lib.load_tokenizer(text) if has_tokenizer else None
  else:
    where = readers.resolve_gguf(text)
    tensors = readers.GGUFSource(where)
    has_tokenizer = tensors.metadata("tokenizer.ggml.model") is not None
    tokenizer = tokenizer_lib.gguf_tokenizer(where) if has_tokenizer else None
  if tokenizer is None:
    logging.warning("%s has no tokenizer", text)
  config = hf.model_config_from_hf(tensors.hf_config, where, **overrides)
  params = hf.load_params(tensors, config, mesh, rules, progress) if with_params else None
  return LoadedModel(config, params, tokenizer, text)


def restore_params(run: RunDir, config: ModelConfig, mesh: jax.sharding.Mesh,
                   rules: parallel.Rules) -> Any:
  """A run's parameters: its newest readable training checkpoint's, else its `params/`.

  An unreadable checkpoint is skipped with a warning naming its step (the run directory is
  not changed: training moves unreadable steps aside when it resumes).

  Args:
    run: the run directory.
    config: the model config the parameters were saved with.
    mesh: the device mesh to restore onto.
    rules: logical axis rules.

  Raises:
    FileNotFoundError: the run holds neither.
    ValueError: it has checkpoints, but none is readable.
  """
  steps = store.checkpoint_steps(run.checkpoints)
  if steps:
    return store.restore_newest(
        steps, lambda step: store.restore_params(run.checkpoint_item(step, PARAMS_ITEM),
                                                 config, mesh, rules),
        str(run.checkpoints))[1]
  if run.params.exists():
    return store.restore_params(run.params, config, mesh, rules)
  for number in reversed(STAGES):  # a fine-tuning run: its latest stage's parameters
    stage = run.stage(number)
    if store.checkpoint_steps(stage.checkpoints):
      return restore_params(stage, config, mesh, rules)
  raise FileNotFoundError(f"{run.path}: no parameters (neither params/ nor a checkpoint under "
                          f"checkpoints/ or a fine-tuning stage's)")


def read_prompt(source: PathLike, embed_dim: int) -> np.ndarray:
  """A soft prompt for a model of width `embed_dim`, float32 `[length, embed_dim]`.

  Args:
    source: a run directory (its `prompt.npy`, e.g. a ProMoT fine-tuning run) or a `.npy`
      file.
    embed_dim: the width of the model that will read it.

  Raises:
    FileNotFoundError: no prompt there.
    ValueError: not a `[length, width]` array, or one of another width than `embed_dim` (a
      prompt saved for another model); names both sizes.
  """
  text = os.fspath(source)
  path = epath.Path(text) if text.endswith(".npy") else RunDir(text).prompt
  if not path.exists():
    where = f"{text} does not exist" if path.name != "prompt.npy" else f"{text}: no prompt.npy"
    raise FileNotFoundError(f"soft prompt {where} (a ProMoT fine-tuning run writes "
                            f"RUN/prompt.npy when its stage 1 ends)")
  try:
    prompt = np.load(io.BytesIO(path.read_bytes()), allow_pickle=False)
  except ValueError as e:
    raise ValueError(f"soft prompt {path}: not a numpy array file ({e})") from e
  if prompt.ndim != 2:
    raise ValueError(f"soft prompt {path}: shape {prompt.shape}; expected [length, embed_dim]")
  if prompt.shape[1] != embed_dim:
    raise ValueError(f"soft prompt {path} was saved for a model with embed_dim "
                     f"{prompt.shape[1]}; this model's embed_dim is {embed_dim}")
  return prompt.astype(np.float32)
