"""`instruct-pt demo`: its parser and handler (`instruct_pt.demo` runs it)."""

from __future__ import annotations

import argparse


def demo_command(args: argparse.Namespace) -> int:
  """Runs the paper's experiment in miniature on embedded defaults; writes its report.

  Args:
    args: the parsed flags of `instruct-pt demo`.
  """
  from instruct_pt import demo  # pylint: disable=import-outside-toplevel
  demo.run(args.run_dir, quick=args.quick)
  return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # pylint: disable=protected-access
  """Adds `demo`.

  Args:
    subparsers: the sub-parsers of `instruct-pt`, one per command.
  """
  demo = subparsers.add_parser(
      "demo", help="Vanilla PT vs Instruct PT on embedded defaults: synthesizer fine-tuning, "
                   "synthesis, two continual pre-training runs, evaluation, report.md")
  demo.add_argument("--run_dir", default="runs/demo",
                    help="where the demo writes (re-running resumes)")
  demo.add_argument("--quick", action="store_true",
                    help="toy sizes: every stage and artifact in a few minutes")
  demo.set_defaults(func=demo_command)
