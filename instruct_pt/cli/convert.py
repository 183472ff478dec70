"""`instruct-pt convert`: its parser and handler; the source flag given names the kind of
source that `commands.convert` checks before anything is written."""

from __future__ import annotations

import argparse

from instruct_pt.cli import common

# Each source flag and the kinds of source (`run_dir.SOURCE_KINDS`) it takes.
SOURCE_FLAGS = {"from_gguf": ("bundled", "gguf"), "from_hf": ("hf",), "from_run": ("run",)}


def convert_command(args: argparse.Namespace) -> int:
  """Imports a GGUF / Hugging Face checkpoint into a run directory, or exports a run to HF.

  Args:
    args: the parsed flags of `instruct-pt convert`.

  Raises:
    ValueError: not exactly one source flag is given, or its source is of another kind.
  """
  from instruct_pt import commands, config, run_dir  # pylint: disable=import-outside-toplevel
  given = {flag: getattr(args, flag) for flag in SOURCE_FLAGS if getattr(args, flag)}
  if len(given) != 1:
    raise ValueError("give exactly one of --from_gguf, --from_hf, --from_run")
  (flag, source), = given.items()
  run = config.ConvertRun(source=source, run_dir=args.run_dir, to_hf=args.to_hf,
                          param_dtype=args.param_dtype, dtype=args.dtype,
                          mesh=common.mesh_config(args), source_kinds=SOURCE_FLAGS[flag])
  model = commands.convert(run)
  if run.to_hf:
    print(f"convert: wrote a Hugging Face model directory to {run.to_hf}")
  else:
    out = run_dir.RunDir(run.run_dir)
    written = "the model config" + ("" if model.tokenizer is None else " and the tokenizer")
    print(f"convert: wrote {model.config.num_params() / 1e6:.1f}M parameters to {out.params}, "
          f"{written} to {out}")
  return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # pylint: disable=protected-access
  """Adds `convert`.

  Args:
    subparsers: the sub-parsers of `instruct-pt`, one per command.
  """
  convert = common.add_command(
      subparsers, "convert", "import GGUF / Hugging Face checkpoints, export runs to Hugging "
      "Face", "Imports a model (--from_gguf, --from_hf) into a run directory (params/, "
      "model_config.json, tokenizer/), or exports a run (--from_run) to a Hugging Face "
      "directory (--to_hf) that transformers, vLLM and lm-eval load. The source is checked "
      "before anything is written.",
      "instruct-pt convert --from_gguf=smollm2 --run_dir=runs/smollm2")
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
