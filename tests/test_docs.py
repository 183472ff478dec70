"""The documentation: README.md stays short, the MkDocs site (mkdocs.yml, docs/) builds with
`--strict`, its generated reference pages hold what the code holds, and no link leaves the
repository.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import os
import pathlib
import re
import subprocess
import sys

import pytest

from instruct_pt import cli, config, run_dir

ROOT = pathlib.Path(__file__).resolve().parent.parent
README_MAX_LINES = 250
# A markdown inline link or image: `[text](target)` or `[text](target "title")`.
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# A link target with a scheme (`https:`, `mailto:`, `file:`) or a protocol-relative one.
EXTERNAL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|//)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
  """The site as `mkdocs build --strict` writes it (a warning fails the build)."""
  out = tmp_path_factory.mktemp("site")
  env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
  build = subprocess.run(
      [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
       "-d", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
      check=False)
  assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stdout}{build.stderr}"
  return out


def page_text(site_dir: pathlib.Path, page: str) -> str:
  """The text of a built page (tags dropped, entities decoded).

  Args:
    site_dir: the built site.
    page: the page's path under docs/ without `.md`, e.g. "reference/cli".
  """
  built = site_dir / page / "index.html"
  assert built.is_file(), f"{page}.md was not built"
  return html.unescape(re.sub(r"<[^>]+>", "", built.read_text(encoding="utf-8")))


def _sub_commands(parser: argparse.ArgumentParser,
                  words: tuple[str, ...] = ()) -> dict[tuple[str, ...], argparse.ArgumentParser]:
  """Every (sub-)command path of `parser` with its parser, read from the parser itself."""
  found = {}
  for action in parser._actions:  # pylint: disable=protected-access
    if isinstance(action, argparse._SubParsersAction):  # pylint: disable=protected-access
      for name, sub in action.choices.items():
        found[words + (name,)] = sub
        found.update(_sub_commands(sub, words + (name,)))
  return found


def test_cli_reference_names_every_command_and_option(site):
  """The generated CLI page has a section per command of the parser, with every option."""
  text = page_text(site, "reference/cli")
  commands = _sub_commands(cli.build_parser())
  assert {"train", "evaluate", "synthesize"} <= {words[0] for words in commands}
  for words, parser in commands.items():
    assert f"instruct-pt {' '.join(words)}" in text, f"no section for {' '.join(words)}"
    for action in parser._actions:  # pylint: disable=protected-access
      for option in action.option_strings:
        assert option in text, f"{option} of {' '.join(words)} is not on the CLI page"
  assert "finetune.prompt_length" in text  # finetune's --help lists its gin settings


def test_gin_reference_names_every_configurable_and_setting(site):
  """The generated gin page names every configurable dataclass and each of its settings."""
  text = page_text(site, "reference/gin")
  for cls, name in config.GIN_NAMES.items():
    assert cls.__name__ in text, f"{cls.__name__} is not on the gin page"
    for field in dataclasses.fields(cls):
      assert f"{name}.{field.name}" in text, f"{name}.{field.name} is not on the gin page"
  assert "pretrain/instructlm_1_3b" in text  # the shipped recipes, by name


def test_run_dir_reference_lists_the_layout(site):
  """The generated run-directory page lists every path of run_dir.py's docstring."""
  text = page_text(site, "reference/run_dir")
  layout = [line.split()[0] for line in run_dir.__doc__.splitlines()
            if re.match(r"^  \S", line)]
  assert "config.gin" in layout and "metrics.jsonl" in layout
  for path in layout:
    assert path in text, f"{path} is not on the run directory page"


def test_readme_is_short():
  lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
  assert len(lines) <= README_MAX_LINES, (
      f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move detail to docs/")


def _markdown_files() -> list[pathlib.Path]:
  return [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))


def _links(path: pathlib.Path) -> list[str]:
  """The inline link targets of a markdown file, outside fenced code blocks."""
  text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
  return LINK.findall(text)


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_link_leaves_the_repository(path):
  """Every link is a web address or relative and inside the repository (no file of this
  machine that a clone lacks); README's targets exist (the site's own links are checked by the
  strict build)."""
  for target in _links(path):
    if re.match(r"^https?://", target):
      continue
    assert not EXTERNAL.match(target), f"{target} in {path.name} points outside the repository"
    file_part = target.split("#", 1)[0]
    if not file_part:
      continue
    assert not file_part.startswith("/"), f"{target} in {path.name} is an absolute path"
    resolved = os.path.normpath(path.parent / file_part)
    assert resolved == str(ROOT) or resolved.startswith(str(ROOT) + os.sep), (
        f"{target} in {path.name} resolves outside the repository")
    if path.name == "README.md":
      assert os.path.exists(resolved), f"{target} in README.md does not exist"


OUTSIDE_NOTES = re.compile(r"\.\./shared|shared/(PAPER|ARCHITECTURE|STRATEGIES)\.md|"
                           r"\b(PAPER|ARCHITECTURE|STRATEGIES)\.md")


def test_no_file_refers_to_notes_outside_the_repository():
  """Code, configs and docs cite the design page (`docs/design.md`), never notes that live
  beside a checkout and are missing from every clone."""
  tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
  mentions = []
  for name in tracked:
    if name == "tests/test_docs.py" or not name.endswith(
        (".py", ".md", ".gin", ".yml", ".yaml", ".ipynb", ".sh", ".cfg", ".toml")):
      continue
    text = (ROOT / name).read_text(encoding="utf-8", errors="replace")
    mentions += [f"{name}: {m.group(0)}" for m in OUTSIDE_NOTES.finditer(text)]
  assert not mentions, mentions
