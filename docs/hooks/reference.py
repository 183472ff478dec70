"""MkDocs hook: the reference pages, generated from the code on every build.

`reference/cli.md`, `reference/gin.md` and `reference/run_dir.md` are never written by hand
(nor stored under docs/): `on_files` adds them as generated files, so they cannot drift from

* the `instruct-pt` argument parser (`instruct_pt.cli.build_parser`): every command's `--help`
  as argparse prints it, found through argparse's public behaviour only (the usage line names
  a command's sub-commands, `--help` prints each), so it keeps working however the parsers
  are built;
* the gin configurables (`instruct_pt.config.GIN_NAMES`: each gin name's frozen dataclass)
  with each field's type, default and the text of the class docstring's `Attributes:`, and
  the run configs that bind them;
* the module docstring of `instruct_pt.run_dir` (the run directory's layout).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import io
import os
import re
import sys
import typing
from typing import Any, Callable, Iterator, Optional

from mkdocs.structure.files import File, Files

# Width of the rendered `--help` text (argparse reads COLUMNS).
HELP_COLUMNS = 96


def _import(config: Any, module: str) -> Any:
  """Imports `module`, from the repository beside mkdocs.yml when it is not installed."""
  root = os.path.dirname(os.path.abspath(config.config_file_path))
  if root not in sys.path:
    sys.path.append(root)
  return importlib.import_module(module)


# ---- CLI --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _columns(width: int) -> Iterator[None]:
  """Sets COLUMNS (argparse's help width) for the duration."""
  before = os.environ.get("COLUMNS")
  os.environ["COLUMNS"] = str(width)
  try:
    yield
  finally:
    if before is None:
      del os.environ["COLUMNS"]
    else:
      os.environ["COLUMNS"] = before


def command_help(parser: argparse.ArgumentParser, words: list[str]) -> str:
  """What `instruct-pt WORDS --help` prints.

  Args:
    parser: the top-level parser.
    words: the (sub-)command words, e.g. `["data", "inspect"]`; empty for the program.
  """
  out = io.StringIO()
  with _columns(HELP_COLUMNS), contextlib.redirect_stdout(out):
    try:
      parser.parse_args(words + ["--help"])
    except SystemExit:
      pass
  return out.getvalue()


def sub_commands(help_text: str) -> list[str]:
  """The sub-commands a parser's help names in its usage (`{train,finetune,...} ...`).

  Args:
    help_text: the parser's `--help` output.
  """
  usage = help_text.split("\n\n", 1)[0]
  match = re.search(r"\{([\w,-]+)\}\s+\.\.\.", usage)
  return match.group(1).split(",") if match else []


def commands(parser: argparse.ArgumentParser,
             words: Optional[list[str]] = None) -> list[tuple[list[str], str]]:
  """Every command path below `words` with its help, depth first, in the parser's order.

  Args:
    parser: the top-level parser.
    words: the command path to start from; None for the program itself.
  """
  words = words or []
  text = command_help(parser, words)
  found = [(words, text)]
  for name in sub_commands(text):
    found += commands(parser, words + [name])
  return found


def cli_page(build_parser: Callable[[], argparse.ArgumentParser]) -> str:
  """The markdown of `reference/cli.md`.

  Args:
    build_parser: the function that builds the `instruct-pt` parser.
  """
  parser = build_parser()
  found = commands(parser)
  leaves = [words for words, text in found if words and not sub_commands(text)]
  lines = [
      "# Command line", "",
      "Generated from the argument parser (`instruct_pt/cli/`) on every build of this site: "
      "what `instruct-pt COMMAND --help` prints. Settings that are gin bindings "
      "(`--gin_param=train.num_steps=100`) are in the [gin reference](gin.md).", "",
      "One name per concept in every command: `--run_dir` is a run directory, or the model "
      "source a command reads (run directory, Hugging Face directory, GGUF file or bundled "
      "name); `--output_dir` is a plain output directory (not a run); `--mesh` is the "
      "data,fsdp,tensor shape.", "",
      "Commands: " + ", ".join(f"[`{' '.join(w)}`](#{'-'.join(['instruct-pt'] + w)})"
                               for w in leaves) + ".", ""]
  for words, text in found:
    title = " ".join(["instruct-pt"] + words)
    lines += [f"## {title}", "", "```text", text.rstrip("\n"), "```", ""]
  return "\n".join(lines)


# ---- gin --------------------------------------------------------------------------------------


def documented_attributes(cls: type) -> dict[str, str]:
  """The entries of the `Attributes:` section of a class docstring, name -> text (continuation
  lines joined).

  Args:
    cls: the class.
  """
  doc = cls.__doc__ or ""
  if "Attributes:" not in doc:
    return {}
  entries: dict[str, str] = {}
  indent = None
  for line in doc.split("Attributes:", 1)[1].splitlines()[1:]:
    if not line.strip():
      if entries:
        break
      continue
    depth = len(line) - len(line.lstrip())
    indent = depth if indent is None else indent
    if depth < indent:
      break
    name, colon, rest = line.strip().partition(":")
    if depth == indent and colon and re.fullmatch(r"\w+", name):
      entries[name] = rest.strip()
    elif entries:
      last = next(reversed(entries))
      entries[last] = f"{entries[last]} {line.strip()}".strip()
  return entries


def type_name(hint: Any) -> str:
  """A type annotation as code: `Optional[int]`, `tuple[str, ...]`, `dict[str, Any]`.

  Args:
    hint: the annotation.
  """
  if isinstance(hint, type) and not typing.get_args(hint):
    return "None" if hint is type(None) else hint.__name__
  text = repr(hint).replace("typing.", "")
  return re.sub(r"\b[\w.]+\.(\w+)", r"\1", text)


def _default(field: dataclasses.Field) -> str:
  if field.default is not dataclasses.MISSING:
    return repr(field.default)
  if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
    return repr(field.default_factory())  # type: ignore[misc]
  return "(required)"


def _cell(text: str) -> str:
  """Text for one markdown table cell."""
  return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
  """Text as a code span (backticks inside it get a longer fence)."""
  fence = "``" if "`" in text else "`"
  pad = " " if "`" in text else ""
  return f"{fence}{pad}{text}{pad}{fence}"


def run_configs(config: Any) -> dict[type, list[tuple[str, type]]]:
  """The run dataclasses of `instruct_pt.config` that take gin settings: each with its fields
  whose defaults are gin configurables (field name, configurable class).

  Args:
    config: the `instruct_pt.config` module.
  """
  runs = {}
  for name in dir(config):
    cls = getattr(config, name)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)
            and cls.__module__ == config.__name__ and cls not in config.GIN_NAMES):
      continue
    bound = [(f.name, type(f.default)) for f in dataclasses.fields(cls)
             if type(f.default) in config.GIN_NAMES]
    if bound:
      runs[cls] = bound
  return dict(sorted(runs.items(), key=lambda item: item[0].__name__))


def gin_page(config: Any) -> str:
  """The markdown of `reference/gin.md`.

  Args:
    config: the `instruct_pt.config` module.
  """
  runs = run_configs(config)
  lines = [
      "# Gin settings", "",
      "Generated from the code on every build of this site. Every gin name is a frozen "
      "dataclass (`instruct_pt.config.GIN_NAMES`); a command reads the names its run config "
      "holds, each bound in a gin file (`--gin_file`) or on the command line "
      "(`--gin_param=\"train.num_steps=100\"`), which wins. A run directory's `config.gin` "
      "holds every field of its run, defaults included. A value of the wrong type is refused "
      "in one line before anything runs.", "",
      "| gin name | dataclass | read by |", "|---|---|---|"]
  for cls, name in config.GIN_NAMES.items():
    readers = [f"`{run.__name__}.{field}`" for run, fields in runs.items()
               for field, bound in fields if bound is cls]
    lines.append(f"| [`{name}.*`](#{name}) | `{cls.__module__}.{cls.__name__}` | "
                 f"{', '.join(readers) or '—'} |")
  lines += ["", "## Run configs", "",
            "The commands' run configs (`instruct_pt.config`) and the gin names each binds; "
            "`instruct_pt.commands` takes them as typed values, so the same runs can be built "
            "in Python without gin.", "", "| run config | gin names (field) |", "|---|---|"]
  for run, fields in runs.items():
    names = ", ".join(f"`{config.GIN_NAMES[cls]}.*` ({field})" for field, cls in fields)
    lines.append(f"| `{run.__name__}` | {names} |")
  for cls, name in config.GIN_NAMES.items():
    described = documented_attributes(cls)
    hints = typing.get_type_hints(cls)
    summary = re.sub(r"\s+", " ", (cls.__doc__ or "").strip().split("\n\n", 1)[0])
    lines += ["", f"## {name}", "", f"`{name}.*`: `{cls.__module__}.{cls.__name__}`. "
              f"{summary}", "", "| setting | type | default | what |", "|---|---|---|---|"]
    for field in dataclasses.fields(cls):
      lines.append(f"| `{name}.{field.name}` | {_cell(_code(type_name(hints[field.name])))} | "
                   f"{_cell(_code(_default(field)))} | "
                   f"{_cell(described.get(field.name, ''))} |")
  # Imported with `config` (the repository is on the path by then).
  shipped = importlib.import_module("instruct_pt.recipes").recipe_names()
  lines += ["", "## Shipped recipes", "",
            "Gin files shipped with the package (`configs/` in a clone, `instruct_pt/configs/` "
            "when installed). `--gin_file` takes a recipe by name "
            "(`--gin_file=pretrain/instructlm_1_3b`) or by path.", ""]
  lines += [f"* `{recipe}`" for recipe in shipped]
  return "\n".join(lines) + "\n"


# ---- run directory ----------------------------------------------------------------------------


def layout_rows(block: list[str]) -> list[tuple[str, str]]:
  """The (path, what) rows of a docstring's layout block: a line at the block's indentation
  starts a row (the path, two or more spaces, its text); deeper lines continue the text.

  Args:
    block: the block's lines.
  """
  indent = min(len(line) - len(line.lstrip()) for line in block if line.strip())
  rows: list[tuple[str, str]] = []
  for line in block:
    depth = len(line) - len(line.lstrip())
    if depth == indent:
      parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
      rows.append((parts[0], parts[1] if len(parts) > 1 else ""))
    elif rows:
      path, text = rows[-1]
      rows[-1] = (path, f"{text} {line.strip()}".strip())
  return rows


def run_dir_page(module: Any) -> str:
  """The markdown of `reference/run_dir.md`.

  Args:
    module: the `instruct_pt.run_dir` module.
  """
  doc = (module.__doc__ or "").strip("\n")
  paragraphs = re.split(r"\n\s*\n", doc)
  lines = ["# Run directory", "",
           "Generated on every build of this site from the docstring of "
           "`instruct_pt/run_dir.py`, the one owner of the layout. How each command fills a "
           "run directory: [training](../guides/train.md#training), "
           "[synthesis](../guides/synthesize.md), [evaluation](../guides/evaluate.md).", ""]
  for number, paragraph in enumerate(paragraphs):
    block = paragraph.splitlines()
    if number == 0:
      lines += [paragraph.replace("\n", " "), ""]
    elif all(line.startswith("  ") for line in block if line.strip()):
      lines += ["| path | what |", "|---|---|"]
      lines += [f"| `{path}` | {_cell(text)} |" for path, text in layout_rows(block)]
      lines.append("")
    else:
      lines += [paragraph, ""]
  return "\n".join(lines)


# ---- the hook ---------------------------------------------------------------------------------


def pages(config: Any) -> dict[str, str]:
  """The generated pages, path under docs/ -> markdown.

  Args:
    config: the MkDocs config (to find the repository).
  """
  cli = _import(config, "instruct_pt.cli")
  gin_config = _import(config, "instruct_pt.config")
  run_dir = _import(config, "instruct_pt.run_dir")
  return {"reference/cli.md": cli_page(cli.build_parser),
          "reference/gin.md": gin_page(gin_config),
          "reference/run_dir.md": run_dir_page(run_dir)}


def on_files(files: Files, config: Any) -> Files:
  """MkDocs event: adds the generated reference pages to the site's files.

  Args:
    files: the files MkDocs found under docs/.
    config: the MkDocs config.
  """
  for path, content in pages(config).items():
    existing = files.get_file_from_path(path)
    if existing is not None:
      files.remove(existing)
    files.append(File.generated(config, path, content=content))
  return files
