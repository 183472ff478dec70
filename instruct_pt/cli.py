"""`instruct-pt <command> --gin_file=... --gin_param=... --run_dir=...`.

One function per command. Each parses gin, builds plain config values and hands them to the
deep code. Errors a user can cause are printed as one line naming the value, file or line,
with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional, Sequence

_USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError)


def _add_gin_flags(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--gin_file", action="append", default=[],
                      help="gin config file (repeatable); paths relative to the repo work too")
  parser.add_argument("--gin_param", action="append", default=[],
                      help='gin binding, e.g. --gin_param="train.num_steps=100" (repeatable)')
  parser.add_argument("--run_dir", required=True,
                      help="run directory (local path or gs://); re-running resumes")


def train_command(args: argparse.Namespace) -> int:
  """Trains a model from gin configs; resumes from the run directory's latest checkpoint."""
  from instruct_pt import config, parallel  # pylint: disable=import-outside-toplevel
  from instruct_pt.data import feed, sources, vocab  # pylint: disable=import-outside-toplevel
  from instruct_pt.train import loop  # pylint: disable=import-outside-toplevel

  parallel.maybe_initialize_distributed()
  config.parse(args.gin_file, args.gin_param)
  model_cfg, train_cfg, optimizer_cfg, mesh_cfg = config.build_run_configs()
  mesh = parallel.create_mesh(mesh_cfg.shape)
  rules = mesh_cfg.rules()

  if train_cfg.mixture is not None:
    raise ValueError(f"train.mixture={train_cfg.mixture!r}: no SeqIO mixtures are registered "
                     f"yet; leave train.mixture unset to train on the embedded demo corpus")
  byte_vocab = vocab.ByteVocabulary()
  if model_cfg.vocab_size < byte_vocab.vocab_size:
    raise ValueError(f"model vocab_size={model_cfg.vocab_size} is smaller than the byte "
                     f"vocabulary's {byte_vocab.vocab_size} ids")
  train_feed = feed.text_feed(sources.demo_corpus("train"), byte_vocab, train_cfg.seq_len,
                              train_cfg.batch_size, train_cfg.seed)
  eval_feed = feed.text_feed(sources.demo_corpus("held_out"), byte_vocab, train_cfg.seq_len,
                             train_cfg.batch_size, train_cfg.seed)
  logging.info("demo corpus: %d packed rows, packing efficiency %.1f%%", train_feed.num_rows,
               100 * train_feed.packing_efficiency)

  config.write_run_config(args.run_dir, model_cfg)
  result = loop.train(model_cfg, optimizer_cfg, train_cfg, mesh, rules, args.run_dir,
                      train_batches=train_feed.iterate, eval_batches=eval_feed.iterate)
  status = "preempted, checkpoint saved" if result.preempted else "done"
  print(f"train: {status} at step {result.step}. Run directory: {args.run_dir} "
        f"(metrics.jsonl, config.gin, checkpoints/, tensorboard/)")
  return 0


def demo_command(args: argparse.Namespace) -> int:
  """Runs the end-to-end demo on embedded defaults and prints a report."""
  from instruct_pt import demo  # pylint: disable=import-outside-toplevel
  demo.run(args.run_dir)
  return 0


def build_parser() -> argparse.ArgumentParser:
  """The `instruct-pt` argument parser."""
  parser = argparse.ArgumentParser(prog="instruct-pt", description=__doc__.splitlines()[0])
  commands = parser.add_subparsers(dest="command", required=True)
  train = commands.add_parser("train", help="train or continue training a model")
  _add_gin_flags(train)
  train.set_defaults(func=train_command)
  demo = commands.add_parser("demo", help="the pipeline on embedded defaults")
  demo.add_argument("--run_dir", default="runs/demo", help="where the demo writes")
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


if __name__ == "__main__":
  sys.exit(main())
