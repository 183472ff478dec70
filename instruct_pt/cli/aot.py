"""`instruct-pt compile` (ahead-of-time compilation, `instruct_pt.aot`): its parser, and the
handler that lays the flags over the recipe's compile.* settings and prints the report."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from instruct_pt.cli import common


def compile_command(args: argparse.Namespace) -> int:
  """Compiles a recipe's programs for a TPU slice; exit status 1 when one does not fit.

  Args:
    args: the parsed flags of `instruct-pt compile`.
  """
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


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # pylint: disable=protected-access
  """Adds `compile`.

  Args:
    subparsers: the sub-parsers of `instruct-pt`, one per command.
  """
  compile_parser = common.add_command(
      subparsers, "compile", "compile a recipe's programs for a TPU slice, on any host: "
      "memory per chip, collectives, FLOPs, the cost model's step time and MFU",
      "Compiles the programs a recipe runs (train: the train step; synthesize: prefill "
      "and a decode step; evaluate: the largest scoring call) for a TPU slice from shapes "
      "alone, with libtpu's compiler (the tpu extra), on any host. Prints per program the "
      "memory per chip against HBM and whether it fits, the collectives per run by mesh "
      "axis, the program's FLOPs against the model's, and XLA's cost-model step time and "
      "MFU (an estimate, not a measurement). Exits with status 1 when a program does not "
      "fit.", "instruct-pt compile --gin_file=pretrain/instructlm_1_3b --topology=v5p-64")
  common.add_gin_flags(compile_parser, run_dir=False)
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
