"""Comparing two parameter (or state) trees in tests: structure first, then every leaf.

Zipping two trees' leaves stops at the shorter one, so an empty or partial restore would pass
such a loop; these helpers compare the tree structure and each leaf's shape before values.
"""

from typing import Any, Callable

import jax
import numpy as np


def zip_leaves(first: Any, second: Any) -> list[tuple[str, np.ndarray, np.ndarray]]:
  """`(path, leaf of first, leaf of second)` for every leaf, on the host.

  Raises:
    AssertionError: the trees differ in structure (keys, nesting, leaf count) or a leaf in
      shape.
  """
  first, second = jax.device_get(first), jax.device_get(second)
  structure = jax.tree_util.tree_structure(first)
  assert structure == jax.tree_util.tree_structure(second), (
      f"tree structures differ:\n{structure}\n{jax.tree_util.tree_structure(second)}")
  pairs = []
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(first),
                          jax.tree_util.tree_leaves(second)):
    name = jax.tree_util.keystr(path)
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{name}: shapes {a.shape} and {b.shape}"
    pairs.append((name, a, b))
  return pairs


def assert_trees_equal(first: Any, second: Any,
                       compare: Callable[..., None] = np.testing.assert_array_equal) -> None:
  """Same structure, same shapes, and `compare(a, b, err_msg=path)` passes for every leaf
  (bit-equal by default)."""
  for name, a, b in zip_leaves(first, second):
    compare(a, b, err_msg=name)
