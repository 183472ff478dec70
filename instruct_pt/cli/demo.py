"""`instruct-pt demo`: its parser and handler (`instruct_pt.demo` runs it)."""

from __future__ import annotations

import argparse

from instruct_pt.cli import common


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
  demo = common.add_command(
      subparsers, "demo", "Vanilla PT vs Instruct PT on embedded defaults: synthesizer "
      "fine-tuning, synthesis, two continual pre-training runs, evaluation, report.md",
      "The paper's experiment in miniature, offline: fine-tunes a synthesizer from the bundled "
      "SmolLM2-135M-Instruct, synthesizes pairs for CPython documentation passages, continues "
      "SmolLM2 as Vanilla PT, Instruct PT and a second-seed Vanilla PT at equal tokens, "
      "evaluates them on held-out passages and writes RUN/report.md with its plots. "
      "Re-running resumes after the last finished stage.",
      "instruct-pt demo --quick --run_dir=runs/demo_quick")
  demo.add_argument("--run_dir", default="runs/demo",
                    help="where the demo writes (re-running resumes)")
  demo.add_argument("--quick", action="store_true",
                    help="toy sizes: every stage and artifact in a few minutes")
  demo.set_defaults(func=demo_command)
