"""What every command of the CLI shares: the parser class (whole flags, a hint for an unknown
one), the flags several commands take (`--gin_file`/`--gin_param`/`--run_dir`, `--mesh`), the
`--help` that appends a command's gin settings or options, and running a handler, a user's
error becoming one line with exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import logging
import sys
import textwrap
from typing import Callable, Optional, Sequence

_USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                FileExistsError, PermissionError)


class Parser(argparse.ArgumentParser):
  """Every parser and sub-parser of the CLI: flags match whole (an abbreviation, `--task` for
  `--tasks`, would run a command the user did not type), and an unknown flag's error says
  what was probably meant: a flag spelt with dashes or a typo (`--gin-file`: did you mean
  `--gin_file`?), or a setting given as a flag (`--num_steps=5`: use
  `--gin_param=train.num_steps=5`)."""

  def __init__(self, *args, **kwargs):
    kwargs.setdefault("allow_abbrev", False)
    super().__init__(*args, **kwargs)
    self._words: list[str] = []

  def parse_known_args(self, args=None, namespace=None):
    self._words = list(sys.argv[1:] if args is None else args)
    return super().parse_known_args(args, namespace)

  def error(self, message):
    if message.startswith("unrecognized arguments:"):
      # The top parser reports its sub-command's leftovers: hint from that command's flags.
      command = _command_parser(self, self._words)
      hints = [_flag_hint(command, word) for word in message.split(":", 1)[1].split()]
      message += "".join(f"; {hint}" for hint in hints if hint)
    super().error(message)


def _command_parser(parser: argparse.ArgumentParser,
                    words: Sequence[str]) -> argparse.ArgumentParser:
  """The (sub-)parser that `words` select: `data inspect ...` -> the inspect parser."""
  for action in parser._actions:  # pylint: disable=protected-access
    if isinstance(action, argparse._SubParsersAction):  # pylint: disable=protected-access
      for index, word in enumerate(words):
        if word in action.choices:
          return _command_parser(action.choices[word], words[index + 1:])
  return parser


# Every command names the model source --run_dir and a plain output directory --output_dir;
# the names other tools use for them.
_CONCEPT_FLAGS = {"--model": "--run_dir", "--model_dir": "--run_dir", "--out": "--output_dir",
                  "--output": "--output_dir", "--out_dir": "--output_dir"}


def _flag_hint(parser: argparse.ArgumentParser, word: str) -> Optional[str]:
  """What an unknown `--flag[=value]` probably meant, or None."""
  if not word.startswith("--"):
    return None
  name, _, value = word[2:].partition("=")
  actions = parser._actions  # pylint: disable=protected-access
  flags = [option for action in actions for option in action.option_strings
           if option.startswith("--")]
  concept = _CONCEPT_FLAGS.get("--" + name.replace("-", "_"))
  if concept in flags:
    return f"did you mean {concept}? (one name across commands)"
  close = difflib.get_close_matches("--" + name.replace("-", "_"), flags, n=1, cutoff=0.75)
  if close:
    return f"did you mean {close[0]}?"
  if "--gin_param" in flags:
    from instruct_pt import config  # pylint: disable=import-outside-toplevel
    for cls, gin_name in config.GIN_NAMES.items():
      if name.replace("-", "_") in {field.name for field in dataclasses.fields(cls)}:
        setting = f"{gin_name}.{name.replace('-', '_')}"
        return f"{setting} is a setting: use --gin_param={setting}={value or 'VALUE'}"
  return None


def add_gin_flags(parser: argparse.ArgumentParser, run_dir: bool = True) -> None:
  """Adds `--gin_file` and `--gin_param` (both repeatable), and a required `--run_dir`.

  Args:
    parser: the command's parser.
    run_dir: also add the required `--run_dir`.
  """
  parser.add_argument("--gin_file", action="append", default=[],
                      help="gin file: a path, or a shipped recipe by name "
                           "(pretrain/instructlm_1_3b); repeatable")
  parser.add_argument("--gin_param", action="append", default=[],
                      help='gin binding, e.g. --gin_param="train.num_steps=100" (repeatable)')
  if run_dir:
    parser.add_argument("--run_dir", required=True,
                        help="run directory (local path or gs://); re-running resumes")


def mesh_config(args: argparse.Namespace):
  """The MeshConfig of `--mesh=data,fsdp,tensor` and the mesh bindings of `--gin_param` (and
  `--gin_file`, where the command has it); without `--mesh`, the bindings' shape.

  Args:
    args: the parsed flags of a command with `--mesh` and `--gin_param`.

  Raises:
    ValueError: `--mesh` is not three comma-separated integers.
  """
  from instruct_pt import config, parallel  # pylint: disable=import-outside-toplevel
  bound = config.mesh_config(args.gin_param, getattr(args, "gin_file", ()))
  if args.mesh is None:
    return bound
  return dataclasses.replace(bound, shape=parallel.parse_mesh_shape(args.mesh))


def documented_attributes(cls: type) -> dict[str, str]:
  """The `Attributes:` entries of a class docstring, name -> one-line text.

  Args:
    cls: a class whose docstring has an `Attributes:` section.
  """
  entries: dict[str, str] = {}
  lines = (cls.__doc__ or "").split("Attributes:", 1)[-1].splitlines()
  for line in lines[1:]:
    text = line.strip()
    if not text:
      break
    name, _, rest = text.partition(": ")
    if line.startswith("    ") and not line.startswith("     ") and rest:
      entries[name] = rest
    elif entries:
      last = next(reversed(entries))
      entries[last] += " " + text
  return entries


def run_settings_help(run_class: type) -> str:
  """Every gin setting a command's run config reads, by gin name: `name.field = default:`
  and the field's description, generated from the configs (so help and docs agree).

  Args:
    run_class: the command's run config (`config.TrainRun`, `config.SynthesizeRun`, ...).
  """
  from instruct_pt import config  # pylint: disable=import-outside-toplevel
  parts = ["gin settings (--gin_param='NAME=VALUE', repeatable, or a gin file; defaults shown):"]
  for holder in dataclasses.fields(run_class):
    cls = type(holder.default)
    if cls not in config.GIN_NAMES:
      continue
    described = documented_attributes(cls)
    for field in dataclasses.fields(cls):
      default = (field.default if field.default is not dataclasses.MISSING
                 else field.default_factory())  # type: ignore[misc]
      parts.append(textwrap.fill(
          f"{config.GIN_NAMES[cls]}.{field.name} = {default!r}: "
          f"{described.get(field.name, '')}".rstrip(": "), 96, initial_indent="  ",
          subsequent_indent="      "))
  return "\n".join(parts)


def add_command(subparsers: "argparse._SubParsersAction", name: str, summary: str,
                description: str, example: str,
                settings: Optional[Callable[[], str]] = None,
                settings_flag_help: str = "show this help, with every setting, and exit"
                ) -> argparse.ArgumentParser:
  """A command's parser: `summary` in `instruct-pt --help`; in its own help, `description`
  first and an example command after the options, then, when given, `settings()` (imported
  only when help is asked for).

  Args:
    subparsers: the sub-parsers of `instruct-pt` (or of a command with sub-commands).
    name: the command.
    summary: one line for the list of commands.
    description: what the command does and writes.
    example: a command line that runs it.
    settings: the text listing the command's settings.
    settings_flag_help: the `--help` flag's own line when `settings` is given.
  """
  epilog = f"example:\n  {example}"
  parser = subparsers.add_parser(name, help=summary, description=textwrap.fill(description, 90),
                                 epilog=epilog, add_help=settings is None,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
  if settings is not None:
    parser.add_argument("-h", "--help", action=HelpWithEpilog, help=settings_flag_help,
                        epilog=lambda: f"{epilog}\n\n{settings()}")
  return parser


class HelpWithEpilog(argparse.Action):
  """A `-h/--help` that prints the command's help followed by `epilog()`, a text that imports
  what it describes (so the import happens only when help is asked for)."""

  def __init__(self, option_strings, epilog: Callable[[], str], dest=argparse.SUPPRESS,
               default=argparse.SUPPRESS, help=None):  # pylint: disable=redefined-builtin
    super().__init__(option_strings, dest, default=default, nargs=0, help=help)
    self.epilog = epilog

  def __call__(self, parser, namespace, values, option_string=None):
    parser.epilog = self.epilog()
    parser.print_help()
    parser.exit()


def run(args: argparse.Namespace) -> int:
  """Runs the parsed command's handler (`args.func`) and returns the exit status: the
  handler's own, 2 after an error the user can cause (printed as one line), 130 after Ctrl-C.

  Args:
    args: the parsed flags, with `command` and `func` set by the command's parser.
  """
  try:
    return args.func(args)
  except _USER_ERRORS as e:
    logging.debug("traceback of the error below", exc_info=True)
    print(f"instruct-pt {args.command}: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:  # Ctrl-C outside a training loop, or a second one inside
    logging.debug("traceback of the interrupt", exc_info=True)
    print(f"\ninstruct-pt {args.command}: interrupted", file=sys.stderr)
    return 130
