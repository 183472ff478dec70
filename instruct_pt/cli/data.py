"""`instruct-pt data` and its sub-command `inspect`: their parsers and the inspect handler."""

from __future__ import annotations

import argparse

from instruct_pt.cli import common


def data_command(args: argparse.Namespace) -> int:
  """`instruct-pt data inspect`: decoded examples, loss masks and token counts of a mixture.

  Args:
    args: the parsed flags of `instruct-pt data inspect`.
  """
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  data = config.data_config(args.gin_file, args.gin_param)
  print(commands.inspect_data(data, args.mixture, args.tokenizer, args.seq_len,
                              args.num_examples))
  return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # pylint: disable=protected-access
  """Adds `data` with its sub-command `inspect`.

  Args:
    subparsers: the sub-parsers of `instruct-pt`, one per command.
  """
  data = subparsers.add_parser("data", help="look at SeqIO tasks and mixtures")
  data_commands = data.add_subparsers(dest="data_command", required=True,
                                      parser_class=common.Parser)
  inspect = common.add_command(
      data_commands, "inspect", "decoded examples, loss masks, counts",
      "Shows a registered SeqIO task or mixture as training reads it: decoded examples with "
      "the tokens that carry no loss marked, and per-task counts (examples, tokens, the "
      "share with loss).", "instruct-pt data inspect --mixture=demo_instruct_pt "
      "--num_examples=2")
  inspect.add_argument("--mixture", required=True, help="a registered task or mixture")
  inspect.add_argument("--num_examples", type=int, default=3)
  inspect.add_argument("--seq_len", type=int, default=512, help="training sequence length")
  inspect.add_argument("--tokenizer", default="byte",
                       help='"byte", a tokenizer file/directory or a run\'s tokenizer/ dir')
  common.add_gin_flags(inspect, run_dir=False)
  inspect.set_defaults(func=data_command)
