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


def synthesize_help() -> str:
  """Every gin setting of `instruct-pt synthesize`, with defaults."""
  from instruct_pt import config  # pylint: disable=import-outside-toplevel
  return common.run_settings_help(config.SynthesizeRun)


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # pylint: disable=protected-access
  """Adds `synthesize`.

  Args:
    subparsers: the sub-parsers of `instruct-pt`, one per command.
  """
  synthesize = common.add_command(
      subparsers, "synthesize", "instruction-augment a corpus with a synthesizer model",
      "Synthesizes instruction-response pairs for a raw corpus with a synthesizer model "
      "(multi-round, batched on the mesh) and writes pre-training texts as shards, "
      "shard-NNNNN.jsonl with stats.json. Re-running resumes: finished shards are skipped.",
      "instruct-pt synthesize --gin_file=synthesis/smollm2_cpu "
      "--gin_param=synthesize.max_documents=8 --run_dir=runs/synthesis",
      settings=synthesize_help,
      settings_flag_help="show this help, with every gin setting of synthesis, and exit")
  common.add_gin_flags(synthesize)
  synthesize.set_defaults(func=synthesize_command)
