"""`instruct-pt <command> --gin_file=... --gin_param=... --run_dir=...`.

The CLI only parses: argv and gin become a frozen run config (`instruct_pt.config`), one
typed function of `instruct_pt.commands` runs it, and the CLI prints its one-line summary.
Errors a user can cause are printed as one line naming the value, file or line, with exit
status 2.

Each command's parser sits beside its handler, in one module per command (or pair); each
module's `add_parser` adds its commands to `instruct-pt`:

  training.py    train, finetune
  convert.py     convert
  synthesize.py  synthesize
  aot.py         compile
  tokenizer.py   tokenizer
  data.py        data inspect
  evaluate.py    evaluate
  analysis.py    partition, analyze-units
  demo.py        demo
  common.py      the parser class (whole flags, hints for unknown ones), the shared flags,
                 the --help that appends a command's settings, and running a handler (a
                 user's error as one line, exit status 2)
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
from typing import Optional, Sequence

from instruct_pt.cli import (aot, analysis, common, convert, data, demo, evaluate, synthesize,
                             tokenizer, training)

# The command modules, in the order `instruct-pt --help` lists their commands.
_COMMAND_MODULES = (training, convert, synthesize, aot, tokenizer, data, evaluate, analysis,
                    demo)


def build_parser() -> argparse.ArgumentParser:
  """The `instruct-pt` argument parser."""
  parser = common.Parser(prog="instruct-pt", description=__doc__.splitlines()[0])
  parser.add_argument("--version", action="version",
                      version=f"instruct-pt {importlib.metadata.version('instruct_pt')}")
  subparsers = parser.add_subparsers(dest="command", required=True, parser_class=common.Parser)
  for module in _COMMAND_MODULES:
    module.add_parser(subparsers)
  return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point of the `instruct-pt` console script.

  Args:
    argv: the arguments after the program name (default: `sys.argv[1:]`).
  """
  level = os.environ.get("INSTRUCT_PT_LOG_LEVEL", "INFO")
  logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
  if level != "DEBUG":  # Orbax logs every save step at INFO through absl.
    logging.getLogger("absl").setLevel(logging.WARNING)
  return common.run(build_parser().parse_args(argv))
