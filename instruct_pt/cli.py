"""`instruct-pt <command> --gin_file=... --gin_param=... --run_dir=...`.

The CLI only parses: argv and gin become a frozen run config (`instruct_pt.config`), one
typed function of `instruct_pt.commands` runs it, and the CLI prints its one-line summary.
Errors a user can cause are printed as one line naming the value, file or line, with exit
status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib.metadata
import logging
import os
import sys
import textwrap
from typing import Optional, Sequence

_USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                FileExistsError, PermissionError)


def _add_gin_flags(parser: argparse.ArgumentParser, run_dir: bool = True) -> None:
  parser.add_argument("--gin_file", action="append", default=[],
                      help="gin file: a path, or a shipped recipe by name "
                           "(pretrain/instructlm_1_3b); repeatable")
  parser.add_argument("--gin_param", action="append", default=[],
                      help='gin binding, e.g. --gin_param="train.num_steps=100" (repeatable)')
  if run_dir:
    parser.add_argument("--run_dir", required=True,
                        help="run directory (local path or gs://); re-running resumes")


def train_command(args: argparse.Namespace) -> int:
  """Trains a model from gin configs; resumes from the run directory's latest checkpoint."""
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  result = commands.train(config.train_run(args.run_dir, args.gin_file, args.gin_param))
  print(f"train: {_stop_status(result)} at step {result.step}. Run directory: {args.run_dir} "
        f"(metrics.jsonl, config.gin, checkpoints/, tensorboard/)")
  return 130 if result.stop_signal == "SIGINT" else 0


def _stop_status(result) -> str:
  """How a training run ended: done, preempted or interrupted (Ctrl-C), the latter two with
  their checkpoint saved."""
  if not result.preempted:
    return "done"
  if result.stop_signal == "SIGINT":
    return "interrupted (re-run the command to resume), checkpoint saved"
  return "preempted, checkpoint saved"


def finetune_command(args: argparse.Namespace) -> int:
  """Fine-tunes a model in two stages; re-running resumes in whichever stage it stopped."""
  from instruct_pt import commands, config, run_dir  # pylint: disable=import-outside-toplevel
  result = commands.finetune(config.finetune_run(args.run_dir, args.gin_file, args.gin_param))
  status = _stop_status(result)
  out = run_dir.RunDir(args.run_dir)
  prompt = f"; the soft prompt: {out.prompt.name}" if out.prompt.exists() else ""
  print(f"finetune: {status} at stage {result.stage} step {result.step}. Run directory: "
        f"{args.run_dir} ({out.stage(1).path.name}/, {out.stage(2).path.name}/: checkpoints "
        f"and metrics; config.gin{prompt})")
  return 130 if result.stop_signal == "SIGINT" else 0


def _documented_attributes(cls: type) -> dict[str, str]:
  """The `Attributes:` entries of a class docstring, name -> one-line text."""
  entries: dict[str, str] = {}
  lines = (cls.__doc__ or "").split("Attributes:", 1)[-1].splitlines()
  for line in lines[1:]:
    text = line.strip()
    if not text:
      break
    name, _, rest = text.partition(": ")
    if line.startswith("    ") and not line.startswith("     ") and rest:
      entries[name] = rest
    elif entries:
      last = next(reversed(entries))
      entries[last] += " " + text
  return entries


def finetune_help() -> str:
  """The gin settings of `instruct-pt finetune`, each with its default and description."""
  from instruct_pt import config  # pylint: disable=import-outside-toplevel
  from instruct_pt.train.finetune import FinetuneConfig  # pylint: disable=import-outside-toplevel
  described = _documented_attributes(FinetuneConfig)
  parts = ["finetune.* settings (--gin_param='finetune.NAME=VALUE' or a gin file, e.g. "
           "configs/finetune/promot_tiny.gin):"]
  for field in dataclasses.fields(FinetuneConfig):
    parts.append(textwrap.fill(f"finetune.{field.name} = {field.default!r}: "
                               f"{described[field.name]}", 90, initial_indent="  ",
                               subsequent_indent="      "))
  parts.append("\nThe other gin names of a fine-tuning run:")
  for name, text in _documented_attributes(config.FinetuneRun).items():
    if name not in ("run_dir", "finetune"):
      parts.append(textwrap.fill(f"{config.GIN_NAMES[type(getattr(config.FinetuneRun, name))]}"
                                 f".*: {text}", 90, initial_indent="  ",
                                 subsequent_indent="      "))
  return "\n".join(parts)


class _FinetuneHelp(argparse.Action):
  """`--help` of `finetune`: the flags, then every gin setting (imported only when asked)."""

  def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
               help=None):  # pylint: disable=redefined-builtin
    super().__init__(option_strings, dest, default=default, nargs=0, help=help)

  def __call__(self, parser, namespace, values, option_string=None):
    parser.epilog = finetune_help()
    parser.print_help()
    parser.exit()


def data_command(args: argparse.Namespace) -> int:
  """`instruct-pt data inspect`: decoded examples, loss masks and token counts of a mixture."""
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  data = config.data_config(args.gin_file, args.gin_param)
  print(commands.inspect_data(data, args.mixture, args.tokenizer, args.seq_len,
                              args.num_examples))
  return 0


def _mesh_config(args: argparse.Namespace):
  """The MeshConfig of `--mesh=data,fsdp,tensor` and the mesh bindings of `--gin_param` (and
  `--gin_file`, where the command has it); without `--mesh`, the bindings' shape."""
  from instruct_pt import config  # pylint: disable=import-outside-toplevel
  bound = config.mesh_config(args.gin_param, getattr(args, "gin_file", ()))
  if args.mesh is None:
    return bound
  try:
    shape = tuple(int(size) for size in args.mesh.split(","))
  except ValueError:
    shape = ()
  if len(shape) != 3:
    raise ValueError(f"--mesh={args.mesh!r}: expected data,fsdp,tensor sizes, e.g. 1,-1,1")
  return dataclasses.replace(bound, shape=shape)


def convert_command(args: argparse.Namespace) -> int:
  """Imports a GGUF / Hugging Face checkpoint into a run directory, or exports a run to HF."""
  from instruct_pt import commands, config, run_dir  # pylint: disable=import-outside-toplevel
  given = {flag: getattr(args, flag) for flag in ("from_gguf", "from_hf", "from_run")
           if getattr(args, flag)}
  if len(given) != 1:
    raise ValueError("give exactly one of --from_gguf, --from_hf, --from_run")
  (flag, source), = given.items()
  expected = {"from_gguf": ("bundled", "gguf"), "from_hf": ("hf",), "from_run": ("run",)}[flag]
  kind = run_dir.source_kind(source)
  if kind not in expected:
    wanted = " or ".join(run_dir.SOURCE_KINDS[k] for k in expected)
    raise ValueError(f"--{flag}={source} is a {run_dir.SOURCE_KINDS[kind]}, not a {wanted}")
  if kind in ("bundled", "gguf"):  # before the run directory is created
    from instruct_pt.model import readers  # pylint: disable=import-outside-toplevel
    readers.resolve_gguf(source)
  run = config.ConvertRun(source=source, run_dir=args.run_dir, to_hf=args.to_hf,
                          param_dtype=args.param_dtype, dtype=args.dtype,
                          mesh=_mesh_config(args))
  model = commands.convert(run)
  if run.to_hf:
    print(f"convert: wrote a Hugging Face model directory to {run.to_hf}")
  else:
    out = run_dir.RunDir(run.run_dir)
    written = "the model config" + ("" if model.tokenizer is None else " and the tokenizer")
    print(f"convert: wrote {model.config.num_params() / 1e6:.1f}M parameters to {out.params}, "
          f"{written} to {out}")
  return 0


def synthesize_command(args: argparse.Namespace) -> int:
  """Converts a raw corpus into instruction-augmented shards (resumable)."""
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  stats = commands.synthesize(config.synthesize_run(args.run_dir, args.gin_file,
                                                    args.gin_param))
  print(f"synthesize: {stats['shards']} shards, {stats.get('documents', 0)} documents, "
        f"{stats.get('pairs', 0)} pairs ({stats['pairs_per_document']:.2f} per document), "
        f"{stats.get('malformed_pairs', 0)} malformed, {stats['tokens_per_second']:.0f} "
        f"generated tokens/s. Outputs and stats.json in {args.run_dir}")
  return 0


def compile_command(args: argparse.Namespace) -> int:
  """Compiles a recipe's programs for a TPU slice; exit status 1 when one does not fit."""
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  from instruct_pt.aot import programs, report  # pylint: disable=import-outside-toplevel
  run = config.compile_run(args.run_dir, args.gin_file, args.gin_param)
  chosen = {"topology": args.topology, "num_slices": args.num_slices,
            "min_headroom": args.min_headroom,
            "programs": None if args.program is None else (
                programs.PROGRAMS if args.program == "all" else (args.program,)),
            "cost_model": False if args.no_cost_model else None}
  run = dataclasses.replace(run, compile=dataclasses.replace(
      run.compile, **{k: v for k, v in chosen.items() if v is not None}))
  result = commands.compile(run, save=args.save)
  print(report.table(result))
  if args.run_dir:
    print(f"compile: wrote {args.run_dir}/compile/<command>-{result.tpu.label}.json"
          + (" and the serialized executables" if args.save else ""))
  for line in report.does_not_fit(result):
    print(f"instruct-pt compile: {line}", file=sys.stderr)
  return 0 if result.fits else 1


def tokenizer_command(args: argparse.Namespace) -> int:
  """Trains a SentencePiece tokenizer on a corpus (for from-scratch pre-training)."""
  from instruct_pt import commands  # pylint: disable=import-outside-toplevel
  trained, documents = commands.train_tokenizer(args.corpus, args.vocab_size, args.output_dir,
                                                args.text_field)
  print(f"tokenizer: trained a {trained.vocab_size}-piece SentencePiece model on "
        f"{documents} documents; wrote {args.output_dir}/tokenizer.model")
  return 0


def evaluate_command(args: argparse.Namespace) -> int:
  """Evaluates a run with lm-evaluation-harness, or sets several runs' results side by side."""
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  if (args.experts is None) != (args.partition is None):
    raise ValueError("routed experts need both --experts and --partition")
  if args.experts is not None:
    if args.run_dir is not None:
      raise ValueError("give --run_dir (one model) or --experts with --partition, not both")
    args.run_dir = args.partition
  if (args.run_dir is None) == (args.compare is None):
    raise ValueError("give either --run_dir (evaluate a model) or --compare RUN_A RUN_B ...")
  if args.cluster_field is not None and args.compare is None:
    raise ValueError("--cluster_field applies to --compare only")
  if args.compare is not None:
    comparison = commands.compare(args.compare, args.name, args.output_dir,
                                  cluster_field=args.cluster_field)
    print(comparison.table)
    print(f"evaluate --compare: wrote {comparison.table_path} and {comparison.chart_path}")
    return 0
  if not args.tasks:
    raise ValueError("--tasks is required with --run_dir (e.g. --tasks=demo)")
  scoring = config.scoring_config(args.gin_file, args.gin_param)  # flags win over evaluate.*
  run = config.EvaluateRun(
      model=args.run_dir, tasks=tuple(t.strip() for t in args.tasks.split(",")),
      num_fewshot=args.num_fewshot, limit=args.limit, include_path=tuple(args.include_path),
      output_dir=args.output_dir, name=args.name,
      max_length=scoring.max_length if args.max_length is None else args.max_length,
      row_len=args.row_len or scoring.row_len,
      batch_tokens=args.batch_tokens or scoring.batch_tokens, soft_prompt=args.soft_prompt,
      unit_mask=args.unit_mask, mesh=_mesh_config(args), temperature=args.temperature,
      top_k=args.top_k or None, overwrite=args.overwrite, adaptllm_dir=args.adaptllm_dir,
      experts=tuple(e.strip() for e in (args.experts or "").split(",") if e.strip()))
  results = commands.evaluate(run)
  if results is not None:
    from instruct_pt.evaluation import runner  # pylint: disable=import-outside-toplevel
    print(runner.results_table(results))
    print(f"evaluate: wrote {run.results_dir()}/{runner.RESULTS_FILE} and {runner.TABLE_FILE}")
  return 0


def partition_command(args: argparse.Namespace) -> int:
  """Partitions a corpus by context (c-BTM) and writes the partition directory."""
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  summary = commands.partition(config.PartitionRun(
      **{name: value for name, value in vars(args).items() if name in _PARTITION_FLAGS}))
  purity = "" if summary.get("purity") is None else (
      f"; purity {summary['purity']:.3f} (chance {summary['chance_purity']:.3f})")
  routed = "" if "router_accuracy" not in summary else (
      f"; router accuracy {summary['router_accuracy']:.3f} on {summary['held_out_documents']} "
      f"held-out documents")
  print(f"partition: {summary['documents']} documents into {summary['clusters']} clusters of "
        f"{summary['sizes']}{purity}{routed}. Wrote {args.output_dir} (partition.json, "
        f"featurizer, centres.npy, assignments.jsonl, clusters/); train expert j on "
        f"--gin_param=\"data.partitions={{'part': '{args.output_dir}'}}\" "
        f"--gin_param=\"data.mixture='part_j'\"")
  return 0


# The flags of `instruct-pt partition`, one per `config.PartitionRun` field (parsed here;
# described and defaulted by PartitionRun, read only when --help asks).
_PARTITION_FLAGS = {"output_dir": str, "corpus": str, "text_field": str, "label_field": str,
                    "held_out": str, "max_documents": int, "clusters": int, "features": str,
                    "model": str, "dims": int, "max_terms": int, "min_df": int,
                    "max_tokens": int, "prefix_chars": int, "seed": int}


def partition_help() -> str:
  """Every option of `instruct-pt partition`, with its default and description."""
  from instruct_pt import config  # pylint: disable=import-outside-toplevel
  described = _documented_attributes(config.PartitionRun)
  parts = ["options (each a PartitionRun field):"]
  for field in dataclasses.fields(config.PartitionRun):
    default = " (required)" if field.name == "output_dir" else f" (default: {field.default!r})"
    parts.append(textwrap.fill(f"--{field.name}{default}: {described[field.name]}", 90,
                               initial_indent="  ", subsequent_indent="      "))
  return "\n".join(parts)


class _PartitionHelp(_FinetuneHelp):
  """`--help` of `partition`: the usage, then every option described (imported when asked)."""

  def __call__(self, parser, namespace, values, option_string=None):
    parser.epilog = partition_help()
    parser.print_help()
    parser.exit()


def analyze_units_command(args: argparse.Namespace) -> int:
  """Localizes task-relevant units and writes units.json, t_values.npy and units.png."""
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  run = config.AnalyzeUnitsRun(
      model=args.model, task_stimuli=args.task_stimuli, control_stimuli=args.control_stimuli,
      out=args.out, kind=args.kind, pooling=args.pooling, top_percent=args.top_percent,
      max_tokens=args.max_tokens, batch_size=args.batch_size, text_field=args.text_field,
      mesh=_mesh_config(args))
  found = commands.analyze_units(run)
  from instruct_pt.analysis import units  # pylint: disable=import-outside-toplevel
  print(units.summary(found))
  print(f"analyze-units: wrote {args.out}/units.json, t_values.npy and units.png")
  return 0


def demo_command(args: argparse.Namespace) -> int:
  """Runs the paper's experiment in miniature on embedded defaults; writes its report."""
  from instruct_pt import demo  # pylint: disable=import-outside-toplevel
  demo.run(args.run_dir, quick=args.quick)
  return 0


class _Parser(argparse.ArgumentParser):
  """Every parser and sub-parser of the CLI: flags match whole (an abbreviation, `--task` for
  `--tasks`, would run a command the user did not type), and an unknown flag's error says
  what was probably meant: a flag spelt with dashes or a typo (`--gin-file`: did you mean
  `--gin_file`?), or a setting given as a flag (`--num_steps=5`: use
  `--gin_param=train.num_steps=5`)."""

  def __init__(self, *args, **kwargs):
    kwargs.setdefault("allow_abbrev", False)
    super().__init__(*args, **kwargs)
    self._words: list[str] = []

  def parse_known_args(self, args=None, namespace=None):
    self._words = list(sys.argv[1:] if args is None else args)
    return super().parse_known_args(args, namespace)

  def error(self, message):
    if message.startswith("unrecognized arguments:"):
      # The top parser reports its sub-command's leftovers: hint from that command's flags.
      command = _command_parser(self, self._words)
      hints = [_flag_hint(command, word) for word in message.split(":", 1)[1].split()]
      message += "".join(f"; {hint}" for hint in hints if hint)
    super().error(message)


def _command_parser(parser: argparse.ArgumentParser,
                    words: Sequence[str]) -> argparse.ArgumentParser:
  """The (sub-)parser that `words` select: `data inspect ...` -> the inspect parser."""
  for action in parser._actions:  # pylint: disable=protected-access
    if isinstance(action, argparse._SubParsersAction):  # pylint: disable=protected-access
      for index, word in enumerate(words):
        if word in action.choices:
          return _command_parser(action.choices[word], words[index + 1:])
  return parser


def _flag_hint(parser: argparse.ArgumentParser, word: str) -> Optional[str]:
  """What an unknown `--flag[=value]` probably meant, or None."""
  if not word.startswith("--"):
    return None
  name, _, value = word[2:].partition("=")
  actions = parser._actions  # pylint: disable=protected-access
  flags = [option for action in actions for option in action.option_strings
           if option.startswith("--")]
  close = difflib.get_close_matches("--" + name.replace("-", "_"), flags, n=1, cutoff=0.75)
  if close:
    return f"did you mean {close[0]}?"
  if "--gin_param" in flags:
    from instruct_pt import config  # pylint: disable=import-outside-toplevel
    for cls, gin_name in config.GIN_NAMES.items():
      if name.replace("-", "_") in {field.name for field in dataclasses.fields(cls)}:
        setting = f"{gin_name}.{name.replace('-', '_')}"
        return f"{setting} is a setting: use --gin_param={setting}={value or 'VALUE'}"
  return None


def build_parser() -> argparse.ArgumentParser:
  """The `instruct-pt` argument parser."""
  parser = _Parser(prog="instruct-pt", description=__doc__.splitlines()[0])
  parser.add_argument("--version", action="version",
                      version=f"instruct-pt {importlib.metadata.version('instruct_pt')}")
  commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
  train = commands.add_parser("train", help="train or continue training a model")
  _add_gin_flags(train)
  train.set_defaults(func=train_command)
  finetune = commands.add_parser(
      "finetune", add_help=False, formatter_class=argparse.RawDescriptionHelpFormatter,
      help="two-stage fine-tuning: broad then specialized, or ProMoT (soft prompt, then model)",
      description=textwrap.fill(
          "Fine-tunes a model in two stages, each with its own checkpoints and metrics "
      "(RUN/stage1/, RUN/stage2/). Modes: broad_then_specialized (stage 1 on a broad mixture, "
      "stage 2 from its final weights on a specialized one) and promot (stage 1 trains a soft "
      "prompt with the model frozen, stage 2 the model with the prompt frozen; the prompt is "
      "saved as RUN/prompt.npy and used at inference for the fine-tuned task only: evaluate "
      "--soft_prompt=RUN). Re-running the same command resumes in whichever stage it "
          "stopped.", 90))
  finetune.add_argument("-h", "--help", action=_FinetuneHelp,
                        help="show this help, with every finetune.* gin setting, and exit")
  _add_gin_flags(finetune)
  finetune.set_defaults(func=finetune_command)
  convert = commands.add_parser(
      "convert", help="import GGUF / Hugging Face checkpoints, export runs to Hugging Face")
  convert.add_argument("--from_gguf", help="a GGUF file, or a bundled model name (smollm2)")
  convert.add_argument("--from_hf", help="a local Hugging Face model directory")
  convert.add_argument("--from_run", help="a run directory to export")
  convert.add_argument("--run_dir", help="where an import writes params/, the model config "
                       "and tokenizer/")
  convert.add_argument("--to_hf", help="where an export writes the Hugging Face directory")
  convert.add_argument("--param_dtype", default=None, choices=("float32", "bfloat16"),
                       help="dtype of the loaded parameters (default: float32 for imports, "
                       "the run's own for exports)")
  convert.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                       help="dtype of exported tensors")
  convert.add_argument("--mesh", default="1,-1,1", help="data,fsdp,tensor mesh to load onto")
  convert.add_argument("--gin_param", action="append", default=[],
                       help='mesh settings, e.g. --gin_param="mesh.rule_overrides=(...)"')
  convert.set_defaults(func=convert_command)
  synthesize = commands.add_parser(
      "synthesize", help="instruction-augment a corpus with a synthesizer model")
  _add_gin_flags(synthesize)
  synthesize.set_defaults(func=synthesize_command)
  compile_parser = commands.add_parser(
      "compile", help="compile a recipe's programs for a TPU slice, on any host: memory per "
      "chip, collectives, FLOPs, the cost model's step time and MFU",
      description=textwrap.fill(
          "Compiles the programs a recipe runs (train: the train step; synthesize: prefill "
          "and a decode step; evaluate: the largest scoring call) for a TPU slice from shapes "
          "alone, with libtpu's compiler (the tpu extra), on any host. Prints per program the "
          "memory per chip against HBM and whether it fits, the collectives per run by mesh "
          "axis, the program's FLOPs against the model's, and XLA's cost-model step time and "
          "MFU (an estimate, not a measurement). Exits with status 1 when a program does not "
          "fit.", 90))
  _add_gin_flags(compile_parser, run_dir=False)
  compile_parser.add_argument("--run_dir", default=None,
                              help="write RUN/compile/<command>-<slice>.json here")
  compile_parser.add_argument("--topology", default=None,
                              help="the TPU slice as gcloud names it (v4-8, v5p-32, "
                              "v5litepod-16, v6e-8, ...) or a topology (v5p:2x2x4); default: "
                              "the recipe's compile.topology")
  compile_parser.add_argument("--num_slices", type=int, default=None,
                              help="slices of that type joined over DCN (default 1)")
  compile_parser.add_argument("--program", default=None,
                              choices=("train", "synthesize", "evaluate", "all"),
                              help="which command's programs (default: the recipe's "
                              "compile.programs, else train)")
  compile_parser.add_argument("--min_headroom", type=float, default=None,
                              help="share of HBM that must stay free (default 0.10)")
  compile_parser.add_argument("--no_cost_model", action="store_true",
                              help="skip the cost model's two extra compiles per program")
  compile_parser.add_argument("--save", action="store_true",
                              help="also serialize each compiled program into RUN/compile/")
  compile_parser.set_defaults(func=compile_command)
  tokenizer = commands.add_parser("tokenizer", help="train a SentencePiece tokenizer")
  tokenizer.add_argument("--corpus", required=True,
                         help='"demo", or a glob of .txt (blank-line separated) / .jsonl files')
  tokenizer.add_argument("--text_field", default="text", help="JSONL field with the text")
  tokenizer.add_argument("--vocab_size", type=int, required=True)
  tokenizer.add_argument("--output_dir", required=True)
  tokenizer.set_defaults(func=tokenizer_command)
  data = commands.add_parser("data", help="look at SeqIO tasks and mixtures")
  data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
  inspect = data_commands.add_parser("inspect", help="decoded examples, loss masks, counts")
  inspect.add_argument("--mixture", required=True, help="a registered task or mixture")
  inspect.add_argument("--num_examples", type=int, default=3)
  inspect.add_argument("--seq_len", type=int, default=512, help="training sequence length")
  inspect.add_argument("--tokenizer", default="byte",
                       help='"byte", a tokenizer file/directory or a run\'s tokenizer/ dir')
  _add_gin_flags(inspect, run_dir=False)
  inspect.set_defaults(func=data_command)
  evaluate = commands.add_parser(
      "evaluate", help="evaluate a run with lm-evaluation-harness; compare runs' results")
  evaluate.add_argument("--run_dir", help="the model: a run directory (results go to "
                        "RUN/eval/<name>/), Hugging Face directory, GGUF or bundled name")
  evaluate.add_argument("--tasks", help="comma-separated lm-eval tasks or groups: demo, "
                        "paper_general, paper_biomed, paper_finance, adaptllm_law, arc_easy, ... (globs "
                        "allowed)")
  evaluate.add_argument("--num_fewshot", type=int, default=None,
                        help="few-shot examples (default: each task's own)")
  evaluate.add_argument("--limit", type=int, default=None, help="documents per task")
  evaluate.add_argument("--overwrite", action="store_true",
                        help="replace an earlier evaluation's results of the same name")
  evaluate.add_argument("--adaptllm_dir", default=None,
                        help="a local copy of the AdaptLLM task data (DIR/<config>/test.json "
                        "or .jsonl; default: the Hugging Face hub), for paper_biomed, "
                        "paper_finance, adaptllm_law")
  evaluate.add_argument("--include_path", action="append", default=[],
                        help="another directory of lm-eval task YAML files (repeatable)")
  evaluate.add_argument("--name", default=None, help="the results' name under RUN/eval/ "
                        "(default: tasks, few-shot and limit); with --compare: which one")
  evaluate.add_argument("--output_dir", default=None,
                        help="where results (or the comparison) go instead")
  evaluate.add_argument("--compare", nargs="+", metavar="RUN",
                        help="set these runs' (or results.json files') results side by side")
  evaluate.add_argument("--cluster_field", default=None,
                        help="with --compare: the doc field clustering multiple-choice items "
                        "made from one source in the paired tests (e.g. paragraph for the "
                        "demo's reading comprehension)")
  evaluate.add_argument("--max_length", type=int, default=None,
                        help="tokens read per request (default: the model's max_seq_len)")
  evaluate.add_argument("--row_len", type=int, default=None,
                        help="tokens per packed row (default: evaluate.row_len, 256)")
  evaluate.add_argument("--batch_tokens", type=int, default=None,
                        help="tokens per scoring call (default: evaluate.batch_tokens, 4096)")
  evaluate.add_argument("--soft_prompt", default=None,
                        help="read this soft prompt ahead of every request: a ProMoT "
                        "fine-tuning run (its prompt.npy) or a .npy file; for the fine-tuned "
                        "task only (results go to RUN/eval/<name>-soft_prompt/)")
  evaluate.add_argument("--experts", default=None,
                        help="routed experts: comma-separated model sources, one per cluster "
                        "of --partition, in cluster order (c-BTM ensemble)")
  evaluate.add_argument("--partition", default=None,
                        help="with --experts: the partition directory (instruct-pt "
                        "partition); results go to PARTITION/eval/<name>/")
  evaluate.add_argument("--temperature", type=float, default=0.1,
                        help="with --experts: routing softmax temperature (default 0.1)")
  evaluate.add_argument("--top_k", type=int, default=1,
                        help="with --experts: experts mixed per request; 1 runs one forward "
                        "pass, 0 mixes all (default 1)")
  evaluate.add_argument("--unit_mask", default=None,
                        help="ablate these units (zero them in every forward pass): a units "
                        "file of analyze-units (units.json or its directory); log-likelihood "
                        "tasks only (results go to RUN/eval/<name>-unit_mask/)")
  evaluate.add_argument("--mesh", default=None,
                        help="data,fsdp,tensor mesh of each host's devices (default: the gin "
                        "files' mesh.shape, else 1,-1,1)")
  evaluate.add_argument("--gin_file", action="append", default=[],
                        help="an evaluation recipe (repeatable): evaluate.* scoring settings "
                        "and mesh.*, e.g. configs/evaluation/llama3_8b.gin")
  evaluate.add_argument("--gin_param", action="append", default=[],
                        help='evaluate.* and mesh settings, e.g. '
                        '--gin_param="evaluate.batch_tokens=65536"')
  evaluate.set_defaults(func=evaluate_command)
  partition = commands.add_parser(
      "partition", add_help=False, formatter_class=argparse.RawDescriptionHelpFormatter,
      help="partition a corpus by context without labels (c-BTM): clusters, "
      "centres, one SeqIO task per cluster", description=textwrap.fill(
          "Embeds a corpus (TF-IDF -> truncated SVD, or a frozen model's mean-pooled hidden "
          "states), clusters it with balanced k-means and writes OUTPUT_DIR: partition.json, "
          "featurizer.json/.npz, centres.npy, assignments.jsonl and clusters/cluster-NNN.jsonl. "
          "Register the clusters as SeqIO tasks with data.partitions={'NAME': OUTPUT_DIR} "
          "(tasks NAME_0, NAME_1, ...), train one expert per cluster with instruct-pt train, "
          "and evaluate them routed with instruct-pt evaluate --partition=OUTPUT_DIR "
          "--experts=RUN_0,RUN_1,...", 90))
  partition.add_argument("-h", "--help", action=_PartitionHelp,
                         help="show this help, with every option described, and exit")
  for name, kind in _PARTITION_FLAGS.items():
    partition.add_argument(f"--{name}", type=kind, required=name == "output_dir",
                           default=argparse.SUPPRESS, help=argparse.SUPPRESS)
  partition.set_defaults(func=partition_command)
  units = commands.add_parser(
      "analyze-units", formatter_class=argparse.RawDescriptionHelpFormatter,
      help="localize task-relevant units (Welch t, task vs control stimuli) for ablation and "
           "targeted tuning",
      description=textwrap.fill(
          "Records every unit of the model (residual: each dimension after each block; mlp: "
          "SwiGLU hidden units) on task and control stimuli, pooled per stimulus, computes "
          "Welch's t on |activation| per unit from streaming statistics, and selects the "
          "global top --top_percent% (AlKhamissi et al., arXiv 2411.02280). Writes "
          "OUT/units.json, OUT/t_values.npy and OUT/units.png. Use the units file to ablate "
          "(lm-eval --model_args unit_mask=OUT/units.json) or for targeted tuning "
          "(--gin_param=\"train.trainable_units='OUT/units.json'\" or train.freeze_units).",
          90))
  units.add_argument("--model", "--run_dir", dest="model", required=True,
                     help="the model: a run directory, Hugging Face directory, GGUF file or "
                     "bundled name (smollm2)")
  units.add_argument("--task_stimuli", required=True,
                     help="task stimuli: a text file (one per line), a .jsonl file, or "
                     "builtin:NAME[:COUNT] with NAME one of sentences, pseudowords, code, prose")
  units.add_argument("--control_stimuli", required=True,
                     help="control stimuli, in the same forms (e.g. builtin:pseudowords)")
  units.add_argument("--out", required=True, help="output directory")
  units.add_argument("--kind", default="residual", choices=("residual", "mlp"),
                     help="units: residual (each dimension after each block, the paper's) or "
                     "mlp (SwiGLU hidden units) (default: residual)")
  units.add_argument("--pooling", default="last", choices=("last", "mean"),
                     help="pool each stimulus by its last token or the mean over its tokens "
                     "(default: last)")
  units.add_argument("--top_percent", type=float, default=1.0,
                     help="share of all units to select, in percent (default: 1.0)")
  units.add_argument("--max_tokens", type=int, default=12,
                     help="each stimulus is cut to this many tokens (default: 12)")
  units.add_argument("--batch_size", type=int, default=16,
                     help="stimuli per forward pass (default: 16)")
  units.add_argument("--text_field", default="text",
                     help="the JSONL field holding each stimulus (default: text)")
  units.add_argument("--mesh", default="1,-1,1", help="data,fsdp,tensor mesh to load onto")
  units.add_argument("--gin_param", action="append", default=[],
                     help='mesh settings, e.g. --gin_param="mesh.rule_overrides=(...)"')
  units.set_defaults(func=analyze_units_command)
  demo = commands.add_parser(
      "demo", help="Vanilla PT vs Instruct PT on embedded defaults: synthesizer fine-tuning, "
                   "synthesis, two continual pre-training runs, evaluation, report.md")
  demo.add_argument("--run_dir", default="runs/demo",
                    help="where the demo writes (re-running resumes)")
  demo.add_argument("--quick", action="store_true",
                    help="toy sizes: every stage and artifact in a few minutes")
  demo.set_defaults(func=demo_command)
  return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point of the `instruct-pt` console script."""
  level = os.environ.get("INSTRUCT_PT_LOG_LEVEL", "INFO")
  logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
  if level != "DEBUG":  # Orbax logs every save step at INFO through absl.
    logging.getLogger("absl").setLevel(logging.WARNING)
  args = build_parser().parse_args(argv)
  try:
    return args.func(args)
  except _USER_ERRORS as e:
    logging.debug("traceback of the error below", exc_info=True)
    print(f"instruct-pt {args.command}: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:  # Ctrl-C outside a training loop, or a second one inside
    logging.debug("traceback of the interrupt", exc_info=True)
    print(f"\ninstruct-pt {args.command}: interrupted", file=sys.stderr)
    return 130


if __name__ == "__main__":
  sys.exit(main())
