"""`instruct-pt tokenizer`: its parser and handler (a SentencePiece model for from-scratch
pre-training)."""

from __future__ import annotations

import argparse

from instruct_pt.cli import common


def tokenizer_command(args: argparse.Namespace) -> int:
  """Trains a SentencePiece tokenizer on a corpus (for from-scratch pre-training).

  Args:
    args: the parsed flags of `instruct-pt tokenizer`.
  """
  from instruct_pt import commands  # pylint: disable=import-outside-toplevel
  trained, documents = commands.train_tokenizer(args.corpus, args.vocab_size, args.output_dir,
                                                args.text_field)
  print(f"tokenizer: trained a {trained.vocab_size}-piece SentencePiece model on "
        f"{documents} documents; wrote {args.output_dir}/tokenizer.model")
  return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # pylint: disable=protected-access
  """Adds `tokenizer`.

  Args:
    subparsers: the sub-parsers of `instruct-pt`, one per command.
  """
  tokenizer = common.add_command(
      subparsers, "tokenizer", "train a SentencePiece tokenizer",
      "Trains a SentencePiece tokenizer on a corpus and writes it to --output_dir, for "
      "from-scratch pre-training (model.tokenizer=OUTPUT_DIR).",
      "instruct-pt tokenizer --corpus=demo --vocab_size=2000 --output_dir=runs/tokenizer")
  tokenizer.add_argument("--corpus", required=True,
                         help='"demo", or a glob of .txt (blank-line separated) / .jsonl files')
  tokenizer.add_argument("--text_field", default="text", help="JSONL field with the text")
  tokenizer.add_argument("--vocab_size", type=int, required=True)
  tokenizer.add_argument("--output_dir", required=True)
  tokenizer.set_defaults(func=tokenizer_command)
