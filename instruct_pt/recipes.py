"""The gin recipes and how gin files are found and parsed.

A gin file is found by its path, or relative to `CONFIG_ROOT` (`configs/pretrain/x.gin`), or
by its recipe name (`pretrain/instructlm_1_3b`, `recipe_names()`); gin files `include` others
by a path under `CONFIG_ROOT` (`include 'configs/models/tiny.gin'`), from any working
directory. In a clone, `CONFIG_ROOT` is the repository; an installed package holds the recipes
as `instruct_pt/configs/` (setup.py ships the top-level `configs/` there). `parse` reads files
and bindings into gin; `instruct_pt.config` turns what gin holds into typed run configs.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from typing import Iterator, Sequence

import gin
from gin import config as gin_config

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# The folder holding `configs/`: the package when installed from a wheel, else the clone.
CONFIG_ROOT = (_PACKAGE_DIR if os.path.isdir(os.path.join(_PACKAGE_DIR, "configs"))
               else os.path.dirname(_PACKAGE_DIR))



def recipe_names() -> list[str]:
  """The shipped gin recipes by name (`pretrain/instructlm_1_3b`)."""
  configs = os.path.join(CONFIG_ROOT, "configs")
  return sorted(os.path.relpath(os.path.join(root, name), configs)[:-len(".gin")]
                for root, _, files in os.walk(configs) for name in files
                if name.endswith(".gin"))


def resolve_config_path(path: str) -> str:
  """Finds a gin file: as given (or relative to the working directory), relative to
  `CONFIG_ROOT`, or by recipe name under `CONFIG_ROOT/configs` (with or without `.gin`).

  Args:
    path: the path or name the user gave.

  Raises:
    FileNotFoundError: naming the path, where it was looked for and the closest recipes.
    IsADirectoryError: the path is a directory.
  """
  configs = os.path.join(CONFIG_ROOT, "configs")
  named = path if path.endswith(".gin") else path + ".gin"
  for candidate in (path, os.path.join(CONFIG_ROOT, path), os.path.join(configs, named)):
    if os.path.isfile(candidate):
      return candidate
    if os.path.isdir(candidate):
      raise IsADirectoryError(f"gin file {path!r} is a directory; expected a .gin file")
  close = difflib.get_close_matches(path.removesuffix(".gin").removeprefix("configs/"),
                                    recipe_names(), n=3, cutoff=0.6)
  hint = f"; closest recipes: {', '.join(close)}" if close else ""
  raise FileNotFoundError(f"gin file {path!r} not found (looked in {os.getcwd()}, "
                          f"{CONFIG_ROOT} and {configs}){hint}")


@contextlib.contextmanager
def _gin_file_search() -> Iterator[None]:
  """While parsing: gin looks for files, includes too, under `CONFIG_ROOT` first, then as given
  (relative to the working directory), and only as files: its package-resource reader is left
  out (it takes a folder named `configs` on `sys.path` for a namespace package and fails there,
  and logs an error for every include it does not find before the search path does). Gin's
  search path and readers are restored after, so repeated parses add nothing."""
  # gin keeps both lists as module globals (gin-config 0.5); there is no public way to scope
  # them.
  # pylint: disable=protected-access
  search_path, file_readers = gin_config._LOCATION_PREFIXES, gin_config._FILE_READERS
  # pylint: enable=protected-access
  prefixes, readers = list(search_path), list(file_readers)
  search_path[:] = [CONFIG_ROOT, ""]
  file_readers[:] = [(read, exists) for read, exists in readers
                     if read.__module__ != "gin.resource_reader"]
  try:
    yield
  finally:
    search_path[:] = prefixes
    file_readers[:] = readers


def parse(gin_files: Sequence[str] = (), gin_params: Sequence[str] = ()) -> None:
  """Clears gin and parses the given files, then the bindings (which win).

  Args:
    gin_files: gin file paths.
    gin_params: bindings such as `"train.num_steps = 100"`.

  Raises:
    FileNotFoundError: a gin file (or an included one) does not exist.
    ValueError: a binding is malformed or names an unknown configurable / parameter; the
      message names the file or binding.
  """
  gin.clear_config()
  with _gin_file_search():
    for path in gin_files:
      resolved = resolve_config_path(path)
      try:
        gin.parse_config_file(resolved)
      except (ValueError, SyntaxError, IOError) as e:
        raise ValueError(f"in gin file {path}: {e}") from e
  for binding in gin_params:
    try:
      gin.parse_config(binding)
    except (ValueError, SyntaxError) as e:
      raise ValueError(f"in --gin_param={binding!r}: {e}") from e
