"""`instruct-pt synthesize`: its parser, handler and summary."""

from __future__ import annotations

import argparse

from instruct_pt.cli import common


def synthesize_command(args: argparse.Namespace) -> int:
  """Converts a raw corpus into instruction-augmented shards (resumable).

  Args:
    args: the parsed flags of `instruct-pt synthesize`.
  """
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  stats = commands.synthesize(config.synthesize_run(args.run_dir, args.gin_file,
                                                    args.gin_param))
  print(f"synthesize: {stats['shards']} shards, {stats.get('documents', 0)} documents, "
        f"{stats.get('pairs', 0)} pairs ({stats['pairs_per_document']:.2f} per document), "
        f"{stats.get('malformed_pairs', 0)} malformed, {stats['tokens_per_second']:.0f} "
        f"generated tokens/s. Outputs and stats.json in {args.run_dir}")
  return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # pylint: disable=protected-access
  """Adds `synthesize`.

  Args:
    subparsers: the sub-parsers of `instruct-pt`, one per command.
  """
  synthesize = subparsers.add_parser(
      "synthesize", help="instruction-augment a corpus with a synthesizer model")
  common.add_gin_flags(synthesize)
  synthesize.set_defaults(func=synthesize_command)
