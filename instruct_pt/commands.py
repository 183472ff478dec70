"""The commands, each a typed function of a frozen run config.

The CLI parses argv and gin into these configs and calls one function; the demo, the notebook
and the tests call the same functions with configs they build in Python. Every command
writes its run directory through `instruct_pt.run_dir` and re-running it resumes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Callable, Optional, Sequence

import jax
from etils import epath

from instruct_pt import config, parallel, run_dir, run_lock
from instruct_pt.analysis import contexts
from instruct_pt.data import feed, sources
from instruct_pt.data import tokenizer as tokenizer_lib
from instruct_pt.model import hf, readers, store
from instruct_pt.model.config import ModelConfig, get_preset, preset_names
from instruct_pt.train import finetune as finetune_lib
from instruct_pt.train import loop


def _mesh(mesh_config: parallel.MeshConfig, devices=None):
  """(mesh, rules) of a MeshConfig, over `devices` (default: all)."""
  return mesh_config.create(devices, allow_subset=devices is not None), mesh_config.rules()


@dataclasses.dataclass(frozen=True)
class StartingPoint:
  """Where a fresh training run starts.

  Attributes:
    config: the model config.
    tokenizer: the tokenizer.
    params: loads the starting parameters onto the mesh; None starts from random ones.
  """

  config: Any
  tokenizer: tokenizer_lib.Tokenizer
  params: Optional[Callable[[], Any]]


def model_config(spec: config.ModelSpec) -> ModelConfig:
  """The model config of `spec.preset` with `spec.overrides` (not of `spec.init_from`).

  Args:
    spec: the run's model settings; `preset` is a preset name or a model source whose config
      (only) is read.

  Raises:
    ValueError: an unknown preset or override.
  """
  overrides = dict(spec.overrides or {})
  if spec.preset in preset_names():
    return get_preset(spec.preset, **overrides)
  if "/" in spec.preset or os.path.exists(spec.preset):
    return run_dir.load(spec.preset, with_params=False, **overrides).config
  return get_preset(spec.preset, **overrides)  # raises, naming the known presets


def starting_point(spec: config.ModelSpec, mesh, rules) -> StartingPoint:
  """The model config, tokenizer and (lazily) parameters a run of `spec` starts from.

  Args:
    spec: the run's model settings.
    mesh: the device mesh the parameters go to.
    rules: logical axis rules.

  Raises:
    ValueError / FileNotFoundError: a missing or malformed source, or one without tokenizer.
  """
  if spec.init_from is None:
    return StartingPoint(model_config(spec), tokenizer_lib.load_tokenizer(spec.tokenizer),
                         None)
  overrides = dict(spec.overrides or {})
  source = run_dir.load(spec.init_from, with_params=False, **overrides)
  if source.tokenizer is None:
    raise ValueError(f"model.init_from={spec.init_from!r} has no tokenizer to train with")
  return StartingPoint(
      source.config, source.tokenizer,
      lambda: run_dir.load(spec.init_from, mesh, rules, **overrides).params)


# Settings a resume may change without --allow_changed_settings: training for longer.
RESUMABLE_CHANGES = ("train.num_steps", "finetune.stage2_steps")


def _bindings(gin_text: str) -> dict[str, str]:
  """`name = value` lines of a `config.gin` (as `config.to_gin` writes it), by name."""
  pairs = (line.split(" = ", 1) for line in gin_text.splitlines()
           if line and not line.startswith("#") and " = " in line)
  return {name: value for name, value in pairs}


def _resumed_settings(out: run_dir.RunDir, run: Any, checkpoints: Sequence[Any]) -> str:
  """The `config.gin` text of `run`, checked against the one of the checkpoints it resumes.

  A setting both files bind to different values, other than `RESUMABLE_CHANGES`, is refused
  unless `run.allow_changed_settings`; then the recorded file is kept as the next
  `config.<n>.gin` and the changes are logged. A fresh run (no checkpoint) is not checked.

  Args:
    out: the run directory.
    run: the run's settings (`config.TrainRun` or `config.FinetuneRun`).
    checkpoints: the run's checkpoint directories (a fine-tuning run's, one per stage).

  Raises:
    ValueError: changed settings without `allow_changed_settings`, naming each.
  """
  text = config.to_gin(run)
  if not out.config_gin.exists() or not any(map(store.checkpoint_steps, checkpoints)):
    return text
  recorded, now = _bindings(out.config_gin.read_text()), _bindings(text)
  changed = [f"{name} = {now[name]} (was {recorded[name]})" for name in now
             if name in recorded and now[name] != recorded[name]
             and name not in RESUMABLE_CHANGES]
  if changed:
    if not run.allow_changed_settings:
      raise ValueError(f"{out} was trained with other settings: {'; '.join(changed)}. Resume "
                       f"with its own (--gin_file={out.config_gin}), or pass "
                       f"--allow_changed_settings to go on with these (its config.gin is kept)")
    number = 1
    while out.earlier_config(number).exists():
      number += 1
    out.config_gin.rename(out.earlier_config(number))
    logging.warning("resuming %s with changed settings: %s (the earlier ones: %s)", out,
                    "; ".join(changed), out.earlier_config(number))
  return text


def train(run: config.TrainRun, show_progress: bool = True) -> loop.TrainResult:
  """Trains a model, or resumes training from the run directory's newest checkpoint.

  A fresh run starts from random parameters of `run.model`'s preset, or from the parameters,
  model config and tokenizer of `run.model.init_from` (continual pre-training, fine-tuning).

  Args:
    run: the run's settings.
    show_progress: show a progress bar.

  Returns:
    The loop's result (final step, losses of this invocation, whether it was preempted).
  """
  parallel.maybe_initialize_distributed()
  mesh, rules = _mesh(run.mesh)
  out = run_dir.RunDir(run.run_dir).create()
  with run_lock.writer_lock(out):
    settings = _resumed_settings(out, run, [out.checkpoints])
    start = starting_point(run.model, mesh, rules)
    model_config = start.config
    if model_config.vocab_size < start.tokenizer.vocab_size:
      raise ValueError(f"model vocab_size={model_config.vocab_size} is smaller than the "
                       f"tokenizer's {start.tokenizer.vocab_size} ids")
    train_feed, eval_feed = feed.make_feeds(contexts.with_partition_tasks(run.data),
                                            start.tokenizer, run.train.seq_len,
                                            run.train.batch_size, run.train.seed,
                                            with_eval=bool(run.train.eval_every))
    logging.info("training data %s: packing efficiency %.1f%%",
                 run.data.mixture or "demo corpus", 100 * train_feed.packing_efficiency())
    out.config_gin.write_text(settings)
    out.write_model_config(model_config)
    out.write_tokenizer(start.tokenizer)
    return loop.train(model_config, run.optimizer, run.train, mesh, rules, out,
                      train_batches=train_feed.iterate,
                      eval_batches=eval_feed.iterate if eval_feed else None,
                      init_params=start.params, show_progress=show_progress)


def finetune(run: config.FinetuneRun, show_progress: bool = True) -> finetune_lib.FinetuneResult:
  """Fine-tunes a model in two stages (`train.finetune`), or resumes where it stopped.

  The run directory gets the run's `config.gin`, `model_config.json` and `tokenizer/` (so it
  loads as the fine-tuned model: `run_dir.load` reads stage 2's newest checkpoint), each
  stage's checkpoints and metrics under `stage1/` and `stage2/`, and for ProMoT the trained
  soft prompt `prompt.npy`.

  Args:
    run: the run's settings.
    show_progress: show progress bars.

  Returns:
    The stage and step the run stopped at, and whether it was preempted.
  """
  parallel.maybe_initialize_distributed()
  mesh, rules = _mesh(run.mesh)
  out = run_dir.RunDir(run.run_dir).create()
  with run_lock.writer_lock(out):
    settings = _resumed_settings(out, run, [out.stage(n).checkpoints for n in run_dir.STAGES])
    start = starting_point(run.model, mesh, rules)
    if start.config.vocab_size < start.tokenizer.vocab_size:
      raise ValueError(f"model vocab_size={start.config.vocab_size} is smaller than the "
                       f"tokenizer's {start.tokenizer.vocab_size} ids")
    feeds = {}
    declared = contexts.with_partition_tasks(run.data)  # partition files read once
    for stage in run_dir.STAGES:  # both built first: a bad mixture fails before any training
      data = dataclasses.replace(declared, mixture=run.finetune.mixture(stage))
      feeds[stage] = feed.make_feeds(data, start.tokenizer, run.train.seq_len,
                                     run.train.batch_size, run.train.seed,
                                     with_eval=bool(run.train.eval_every))
      logging.info("stage %d data %s: packing efficiency %.1f%%", stage,
                   data.mixture or "demo corpus", 100 * feeds[stage][0].packing_efficiency())
    out.config_gin.write_text(settings)
    out.write_model_config(start.config)
    out.write_tokenizer(start.tokenizer)
    return finetune_lib.finetune(
        start.config, run.optimizer, run.train, run.finetune, mesh, rules, out,
        train_batches=lambda stage: feeds[stage][0].iterate,
        eval_batches=lambda stage: feeds[stage][1].iterate if feeds[stage][1] else None,
        init_params=start.params, show_progress=show_progress)


def analyze_units(run: config.AnalyzeUnitsRun) -> Any:
  """Localizes task-relevant units: Welch t of every unit, task vs control stimuli, and the
  global top `run.top_percent`% (`instruct_pt.analysis.units`).

  Writes `run.output_dir`/units.json (the selected units, highest t first, and how they were chosen),
  t_values.npy (`[layers, width]`) and units.png (per-layer counts and t).

  Args:
    run: the analysis' settings.

  Returns:
    The `analysis.units.Localization`.

  Raises:
    FileNotFoundError / ValueError: a missing model or stimuli file, too few stimuli, a bad
      kind, pooling or percentage.
  """
  from instruct_pt.analysis import stimuli as stimuli_lib  # pylint: disable=import-outside-toplevel
  from instruct_pt.analysis import units as analysis  # pylint: disable=import-outside-toplevel
  task = stimuli_lib.read(run.task_stimuli, run.text_field)
  control = stimuli_lib.read(run.control_stimuli, run.text_field)
  described = run_dir.load(run.model, with_params=False)
  if described.tokenizer is None:
    raise ValueError(f"--run_dir={run.model} has no tokenizer to encode the stimuli with")
  mesh, rules = _mesh(run.mesh)
  recorder_args = (run.kind, run.pooling, run.max_tokens, run.batch_size)
  task_ids = analysis.encode_stimuli(described.tokenizer, task, run.max_tokens)
  control_ids = analysis.encode_stimuli(described.tokenizer, control, run.max_tokens)
  for name, ids in (("task", task_ids), ("control", control_ids)):
    if len(ids) < analysis.MIN_STIMULI:
      raise ValueError(f"{len(ids)} {name} stimuli in {getattr(run, name + '_stimuli')}: "
                       f"Welch's t-test needs at least {analysis.MIN_STIMULI} task and "
                       f"{analysis.MIN_STIMULI} control stimuli")
  model = run_dir.load(run.model, mesh, rules)
  recorder = analysis.Recorder(model.config, model.params, *recorder_args, mesh, rules)
  found = analysis.localize(recorder, run.kind, task_ids, control_ids, run.top_percent, {
      "model": run.model, "statistic": analysis.STATISTIC.format(pooling=run.pooling),
      "pooling": run.pooling, "task_source": run.task_stimuli,
      "control_source": run.control_stimuli})
  analysis.write(found, run.output_dir)
  return found


def convert(run: config.ConvertRun) -> run_dir.LoadedModel:
  """Imports a model into a run directory, or exports one to a Hugging Face directory.

  Import (`run.run_dir`): `params/`, `model_config.json` and `tokenizer/`. Export
  (`run.to_hf`): `config.json`, safetensors weights, `generation_config.json` and the
  tokenizer, loadable by transformers, vLLM and lm-eval. Any source `run_dir.load` accepts
  works for both.

  Args:
    run: the conversion.

  Returns:
    The loaded model.

  Raises:
    ValueError: the source is not of `run.source_kinds` (before anything is written).
  """
  unknown = set(run.source_kinds) - set(run_dir.SOURCE_KINDS)
  if unknown:
    raise ValueError(f"source_kinds: {', '.join(sorted(unknown))} not among "
                     f"{', '.join(run_dir.SOURCE_KINDS)}")
  kind = run_dir.source_kind(run.source)
  if run.source_kinds and kind not in run.source_kinds:
    wanted = " or ".join(run_dir.SOURCE_KINDS[k] for k in run.source_kinds)
    raise ValueError(f"{run.source} is a {run_dir.SOURCE_KINDS[kind]}, not a {wanted}")
  if kind in ("bundled", "gguf"):
    readers.resolve_gguf(run.source)  # a missing file or package fails here
  parallel.maybe_initialize_distributed()
  mesh, rules = _mesh(run.mesh)
  out = run_dir.RunDir(run.to_hf or run.run_dir).create()  # fail before the slow part
  overrides = {"param_dtype": run.param_dtype} if run.param_dtype else {}
  model = run_dir.load(run.source, mesh, rules, **overrides)
  if run.to_hf:
    tokenizer = model.tokenizer
    special_ids = {} if tokenizer is None else {
        "bos": tokenizer.bos_id, "eos": tokenizer.eos_id, "pad": tokenizer.pad_id}
    hf.save_hf_model(model.params, model.config, run.to_hf, dtype=run.dtype,
                     special_ids=special_ids)
    if tokenizer is not None:
      tokenizer_lib.save_tokenizer(tokenizer, run.to_hf)
  else:
    store.save_params(out.params, model.params)
    out.write_model_config(model.config)
    if model.tokenizer is None:
      logging.warning("%s has no tokenizer: %s gets no tokenizer/", run.source, out)
    else:
      out.write_tokenizer(model.tokenizer)
  return model


def synthesize(run: config.SynthesizeRun, show_progress: bool = True) -> dict[str, Any]:
  """Converts a raw corpus into instruction-augmented shards (resumable).

  Synthesis is data-parallel over hosts: each host's mesh holds only its own devices.

  Args:
    run: the run's settings.
    show_progress: show a progress bar.

  Returns:
    The run's statistics (what `stats.json` holds).
  """
  from instruct_pt.model import generate  # pylint: disable=import-outside-toplevel
  from instruct_pt.synthesis import pipeline  # pylint: disable=import-outside-toplevel
  parallel.maybe_initialize_distributed()
  out = run_dir.RunDir(run.run_dir).create()
  with run_lock.writer_lock(out):
    sources.list_files(run.synthesis.source_spec())  # fail before the slow part
    mesh, rules = _mesh(run.mesh, jax.local_devices())
    model = run_dir.load(run.synthesis.model, mesh, rules)
    if model.tokenizer is None or model.tokenizer.eos_id is None:
      raise ValueError(f"synthesize.model={run.synthesis.model!r} has no tokenizer with an EOS "
                       f"id to stop generation on")
    engine = generate.Engine(model.config, model.params, mesh, rules,
                             eos_ids=[model.tokenizer.eos_id], num_slots=run.synthesis.num_slots,
                             max_len=run.synthesis.max_len,
                             max_prefill_tokens=run.synthesis.max_prefill_tokens)
    out.config_gin.write_text(config.to_gin(run))
    converter = pipeline.ShardConverter(engine, model.tokenizer, run.synthesis)
    return pipeline.run(run.synthesis, converter, out, show_progress=show_progress)


def compile(run: config.CompileRun, save: bool = False) -> Any:  # pylint: disable=redefined-builtin
  """Compiles a recipe's programs for a TPU slice ahead of time, on any host (`instruct_pt.aot`):
  memory per chip against HBM, collectives per step, FLOPs against the model's, and the cost
  model's step time and MFU. With a run directory, writes `compile/<command>-<slice>.json` per
  command (`run_dir.RunDir.compile_report`).

  Args:
    run: the recipe's settings and the slice.
    save: also serialize each compiled program (`RunDir.compiled_executable`), as MaxText's
      `compiled_trainstep_file`: a TPU VM with the same jax and libtpu could load it instead
      of compiling (not tried here: no TPU has run one).

  Returns:
    The `aot.compiler.SliceResult` (its `fits` says whether every program fits).

  Raises:
    ValueError: no or an unknown slice, libtpu missing or mismatched, a batch the mesh cannot
      split, `save` without a run directory; one line naming it.
  """
  import pickle  # pylint: disable=import-outside-toplevel
  from jax.experimental import serialize_executable  # pylint: disable=import-outside-toplevel
  from instruct_pt.aot import compiler, report  # pylint: disable=import-outside-toplevel
  if save and run.run_dir is None:
    raise ValueError("--save needs --run_dir to write the executables to")
  out = None if run.run_dir is None else run_dir.RunDir(run.run_dir).create()
  result = compiler.compile_for_slice(model_config(run.model), run.compile, run.mesh, run.train,
                                      run.optimizer, run.synthesis, run.scoring,
                                      progress=logging.info)
  if out is None:
    return result
  for command, programs in result.programs.items():
    path = out.compile_report(command, result.tpu.label)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.report(result, command), indent=1))
    for compiled in (p for p in programs if save and p.executable is not None):
      out.compiled_executable(compiled.report["program"], result.tpu.label).write_bytes(
          pickle.dumps(serialize_executable.serialize(compiled.executable)))
  return result


def results_dir(run: config.EvaluateRun) -> str:
  """Where an evaluation writes its results: `run.output_dir`, else the `eval/<name>/` of the
  run directory (or, routed, of the partition directory) named `run.results_name()`.

  Args:
    run: the evaluation.

  Raises:
    ValueError: no `output_dir` and the model is not a run directory.
  """
  if run.output_dir:
    return run.output_dir
  if run.experts:
    return str(contexts.PartitionDir(run.partition).eval_dir(run.results_name()))
  kind = run_dir.source_kind(run.model)
  if kind != "run":
    raise ValueError(f"--run_dir={run.model} is a {run_dir.SOURCE_KINDS[kind]}, not a run "
                     f"directory; give --output_dir for the results")
  return str(run_dir.RunDir(run.model).eval_dir(run.results_name()))


def evaluate(run: config.EvaluateRun, show_progress: bool = True) -> Optional[dict[str, Any]]:
  """Evaluates a model with lm-evaluation-harness; writes `results.json` (lm-eval's format)
  and `results.md` (its table) to `results_dir(run)`.

  Every host loads the model onto a mesh of its own devices and scores its share of each
  task's documents; process 0 gathers the metrics and writes the results.

  Args:
    run: the evaluation.
    show_progress: show progress bars.

  Returns:
    lm-eval's results dict on process 0 (None on the others).

  Raises:
    ValueError / FileNotFoundError: unknown tasks, malformed task files, a model source
      without parameters or tokenizer, an `adaptllm_dir` that is not a directory; one line
      naming it.
    FileExistsError: results are there already and `run.overwrite` is False.
  """
  if run.adaptllm_dir is not None and not os.path.isdir(run.adaptllm_dir):
    raise FileNotFoundError(f"--adaptllm_dir={run.adaptllm_dir} is not a directory")
  runner = _evaluation_module("runner")
  parallel.maybe_initialize_distributed()
  output_dir = results_dir(run)
  existing = epath.Path(output_dir) / "results.json"
  if not run.overwrite and existing.exists():
    raise FileExistsError(f"{existing} holds an earlier evaluation; pass --overwrite to replace "
                          f"it, or --name for results of their own")
  # The AdaptLLM tasks count option tokens with the model's tokenizer (an expert's, routed).
  metadata = {"run_dir": run.experts[0] if run.experts else run.model}
  if run.adaptllm_dir is not None:
    metadata["adaptllm_dir"] = os.path.abspath(run.adaptllm_dir)
  manager, tasks = runner.resolve_tasks(run.tasks, run.include_path, metadata)
  mesh, rules = _mesh(run.mesh, jax.local_devices())
  settings = {name: getattr(run, name)
              for name in ("max_length", "row_len", "batch_tokens", "soft_prompt", "unit_mask")
              if getattr(run, name) is not None}
  if run.experts:
    model = _evaluation_module("routed").RoutedLM(
        run.partition, run.experts, temperature=run.temperature, top_k=run.top_k or 0, mesh=mesh,
        rules=rules, progress=show_progress, **settings)
  else:
    model = runner.InstructPTLM(run.model, mesh=mesh, rules=rules, progress=show_progress,
                                **settings)
  return runner.evaluate(model, tasks, output_dir, run.num_fewshot, run.limit,
                         run.include_path, manager)


def partition(run: config.PartitionRun) -> dict[str, Any]:
  """Partitions a corpus by context without labels (c-BTM): writes the featurizer, centres,
  each document's cluster and each cluster's documents to `run.output_dir`
  (`analysis.contexts.PartitionDir`), whose clusters `data.partitions` registers as SeqIO tasks.

  Known labels (the demo corpus's pydoc topics, or `run.label_field`) only measure the
  partition: its purity, and the router accuracy on `run.held_out` documents.

  Args:
    run: the partition's settings.

  Returns:
    What `partition.json` holds (sizes, purity, router accuracy, ...).

  Raises:
    ValueError: too few documents for the clusters (saying how many are needed), a record
      without the label field, bad corpus input (naming the file and line).
  """
  from instruct_pt.analysis import contexts  # pylint: disable=import-outside-toplevel
  from instruct_pt.analysis import partition as partition_lib  # pylint: disable=import-outside-toplevel
  texts, ids, labels = _labelled_documents(run.corpus, run.text_field, run.label_field,
                                           run.max_documents)
  needed = max(run.clusters, 2)
  if len(texts) < needed:
    raise ValueError(f"--corpus={run.corpus} has {len(texts)} documents; --clusters="
                     f"{run.clusters} needs at least {needed}")
  held_out = run.held_out or ("demo_held_out" if run.corpus == "demo" else None)
  if run.features == "tfidf":
    featurizer = contexts.TfidfSvd.fit(texts, run.dims, run.max_terms, run.min_df, run.seed)
  else:
    mesh, rules = _mesh(parallel.MeshConfig(shape=(1, -1, 1)), jax.local_devices())
    model = run_dir.load(run.model, mesh, rules)
    if model.tokenizer is None:
      raise ValueError(f"--model={run.model} has no tokenizer to read the documents with")
    featurizer = contexts.ModelFeaturizer(run.model, model.config, model.params,
                                          model.tokenizer, mesh, rules, run.max_tokens)
  out = contexts.PartitionDir(run.output_dir).create()
  result = partition_lib.partition(
      texts, ids, out, featurizer, run.clusters, run.seed, labels,
      {name: getattr(run, name) for name in ("corpus", "text_field", "label_field",
                                              "held_out", "max_documents")})
  summary = out.read_settings()
  if held_out is not None and labels is not None:
    held_texts, _, held_labels = _labelled_documents(held_out, run.text_field,
                                                     run.label_field, None)
    summary.update(partition_lib.route_held_out(featurizer, result.centres, held_texts,
                                                held_labels, result.cluster_labels,
                                                run.prefix_chars), held_out=held_out)
    out.settings.write_text(json.dumps(summary, indent=1))
  return summary


def _labelled_documents(corpus: str, text_field: str, label_field: Optional[str],
                        limit: Optional[int]) -> tuple[list[str], list[str], Optional[list[str]]]:
  """Texts, ids and labels (None without) of a corpus; the demo corpus's labels are its
  pydoc topics."""
  if corpus in sources.DEMO_PATTERNS and label_field is None:
    pairs = sources.demo_topics(sources.DEMO_PATTERNS[corpus])[:limit]
    return ([text for _, text in pairs], [f"{corpus}:{i}" for i in range(len(pairs))],
            [topic for topic, _ in pairs])
  spec = sources.SourceSpec(corpus, text_field=text_field,
                            extra_fields=(label_field,) if label_field else ())
  texts, ids, labels = [], [], []
  for record in sources.iter_records(spec):
    if limit is not None and len(texts) >= limit:
      break
    if label_field and record.get(label_field) is None:
      raise ValueError(f"{record['id']}: no {label_field!r} field (--label_field)")
    texts.append(record["text"])
    ids.append(record["id"])
    labels.append(record.get(label_field))
  return texts, ids, labels if label_field else None


def compare(sources: Sequence[str], name: Optional[str] = None,
            output_dir: Optional[str] = None, labels: Optional[Sequence[str]] = None,
            cluster_field: Optional[str] = None) -> Any:
  """Sets several runs' evaluation results side by side: each metric per run with lm-eval's
  stderr, and each run's paired differences to the first (from the per-item samples);
  writes `compare.md` and `compare.png`.

  Args:
    sources: run directories (their `eval/<name>/results.json`) or results.json files.
    name: which evaluation of each run (default: its only one).
    output_dir: where the table and chart go (default: the first run's results directory).
    labels: the runs' names (default: their directories' names).
    cluster_field: the doc field that clusters multiple-choice items made from one source
      (e.g. "paragraph" for the demo's reading comprehension); None: items are independent.

  Returns:
    The `compare.Comparison`.
  """
  return _evaluation_module("compare").compare(sources, name, output_dir, labels,
                                               cluster_field)


def _evaluation_module(name: str) -> Any:
  """`instruct_pt.evaluation.<name>`; without the eval extra, a one-line error saying so."""
  import importlib  # pylint: disable=import-outside-toplevel
  try:
    return importlib.import_module(f"instruct_pt.evaluation.{name}")
  except ImportError as e:
    if e.name and e.name.split(".")[0] in ("lm_eval", "matplotlib"):
      raise ValueError(f"evaluation needs the eval extra ({e.name} is missing): "
                       f"pip install -e '.[eval]'") from e
    raise


def train_tokenizer(corpus: str, vocab_size: int, output_dir: str,
                    text_field: str = "text") -> tuple[tokenizer_lib.Tokenizer, int]:
  """Trains a SentencePiece tokenizer on a corpus (for from-scratch pre-training).

  Args:
    corpus: "demo", or a glob of .txt (blank-line separated) / .jsonl files.
    vocab_size: pieces in the vocabulary.
    output_dir: where `tokenizer.model` and its configs go.
    text_field: JSONL field with the text.

  Returns:
    The tokenizer and the number of documents it was trained on.
  """
  out = run_dir.RunDir(output_dir).create()
  documents = list(sources.read_documents(corpus, text_field))
  trained = tokenizer_lib.train_sentencepiece(documents, vocab_size, str(out.path / "spm"))
  tokenizer_lib.save_tokenizer(trained, out.path)
  return trained, len(documents)


def inspect_data(data: config.DataConfig, name: str, tokenizer: str, seq_len: int,
                 num_examples: int) -> str:
  """A report on a task or mixture: decoded examples with their loss masks, token counts.

  Args:
    data: gin-declared tasks and mixtures (the demo ones are always there).
    name: the task or mixture.
    tokenizer: "byte", a tokenizer file or directory, or a run's tokenizer/ directory.
    seq_len: the training sequence length.
    num_examples: examples to show.
  """
  from instruct_pt.data import inspect, registry, seqio_vocab  # pylint: disable=import-outside-toplevel
  vocabulary = seqio_vocab.SeqIOVocabulary(tokenizer_lib.load_tokenizer(tokenizer))
  registered = registry.register(contexts.with_partition_tasks(data), vocabulary)
  registry.check_registered(name, registered, "--mixture")
  return inspect.report(name, vocabulary, seq_len, num_examples)
