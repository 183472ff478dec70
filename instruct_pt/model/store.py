"""The Orbax store of model parameters: save, restore onto any mesh, list checkpoint steps.

Also random initialisation in the same shardings (`init_params`), for benchmarks and tests.

Parameters are saved as one Orbax PyTree checkpoint (a directory) and restored directly into
the shardings the rule table gives them on the target mesh, which may differ from the mesh
that saved them. Which directory holds which parameters is the run directory's business
(`instruct_pt.run_dir`); this module takes paths.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Callable, Iterator, Optional, Sequence, TypeVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from etils import epath

from instruct_pt import parallel
from instruct_pt.model.config import ModelConfig
from instruct_pt.model.transformer import Decoder


def param_shardings(config: ModelConfig, mesh: jax.sharding.Mesh,
                    rules: parallel.Rules) -> tuple[Any, Any]:
  """Abstract parameters (shape / dtype) and their shardings for a model of `config`.

  Args:
    config: the model.
    mesh: the device mesh.
    rules: logical axis rules.
  """
  boxed = jax.eval_shape(_boxed_params(config), jax.random.key(0))
  return nn.meta.unbox(boxed), parallel.tree_shardings(boxed, mesh, rules)


def _boxed_params(config: ModelConfig):
  """`key -> parameters` with their logical-axis boxes."""
  return lambda key: Decoder(config).init(key, jnp.zeros((1, 8), jnp.int32))["params"]


def init_params(config: ModelConfig, mesh: jax.sharding.Mesh, rules: parallel.Rules,
                seed: int = 0) -> Any:
  """Randomly initialised parameters, created directly in their shardings on `mesh`.

  Args:
    config: the model.
    mesh: the device mesh.
    rules: logical axis rules.
    seed: initialisation seed.
  """
  _, shardings = param_shardings(config, mesh, rules)
  boxed = _boxed_params(config)
  return jax.jit(lambda key: nn.meta.unbox(boxed(key)),
                 out_shardings=shardings)(jax.random.key(seed))


def abstract_params(config: ModelConfig, mesh: jax.sharding.Mesh,
                    rules: parallel.Rules) -> Any:
  """`jax.ShapeDtypeStruct`s (with shardings) of the parameters, the target of a restore."""
  abstract, shardings = param_shardings(config, mesh, rules)
  return jax.tree_util.tree_map(
      lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
      abstract, shardings)


def save_params(path: epath.PathLike, params: Any) -> None:
  """Writes `params` as an Orbax checkpoint at `path` (an absolute or `gs://` directory).

  Args:
    path: the checkpoint directory; replaced if it exists.
    params: the parameter tree (on any mesh).
  """
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(epath.Path(path), params, force=True)


def restore_params(path: epath.PathLike, config: ModelConfig, mesh: jax.sharding.Mesh,
                   rules: parallel.Rules) -> Any:
  """Restores the parameters saved at `path` onto `mesh`.

  Args:
    path: a directory written by `save_params` (or a training checkpoint's params item).
    config: the model config (its shapes must match what was saved).
    mesh: the device mesh.
    rules: logical axis rules.
  """
  with ocp.StandardCheckpointer() as checkpointer:
    return checkpointer.restore(epath.Path(path), abstract_params(config, mesh, rules))


def checkpoint_steps(directory: epath.PathLike) -> list[int]:
  """The finished checkpoint steps under `directory` (an Orbax CheckpointManager's), ascending.

  Args:
    directory: the checkpoint manager's directory; missing means no steps.
  """
  directory = epath.Path(directory)
  if not directory.exists():
    return []
  # A listing, not a read-only CheckpointManager (which warns about each option it resets).
  return sorted(ocp.utils.checkpoint_steps(directory))


T = TypeVar("T")
_ORBAX_DIR = os.path.dirname(os.path.dirname(ocp.__file__))


class _OrbaxErrorRecords(logging.Filter):
  """Drops the errors and tracebacks Orbax logs (through absl) while it fails to read a step:
  `restore_newest` reports that failure itself, in one warning line."""

  def filter(self, record: logging.LogRecord) -> bool:
    from_orbax = record.pathname.startswith(_ORBAX_DIR + os.sep)
    return not (from_orbax and (record.levelno >= logging.ERROR or record.exc_info))


@contextlib.contextmanager
def _orbax_errors_dropped() -> Iterator[None]:
  quiet = _OrbaxErrorRecords()
  # The handlers every propagated record reaches (a logger's own filters see only its own).
  handlers = logging.getLogger().handlers + logging.getLogger("absl").handlers
  for handler in handlers:
    handler.addFilter(quiet)
  try:
    yield
  finally:
    for handler in handlers:
      handler.removeFilter(quiet)


def restore_newest(steps: Sequence[int], restore: Callable[[int], T], where: str,
                   on_unreadable: Optional[Callable[[int], None]] = None) -> tuple[int, T]:
  """Restores the newest of `steps` that can be read, warning about each one that cannot.

  Args:
    steps: checkpoint steps, ascending.
    restore: reads one step (raises on a damaged checkpoint).
    where: the checkpoint directory, for messages.
    on_unreadable: called with each unreadable step (e.g. to move it aside).

  Returns:
    `(step, restored value)`.

  Raises:
    ValueError: no step is readable; names `where` and each step's error.
  """
  errors = []
  for step in reversed(steps):
    value, error = None, "unreadable on another host"
    try:
      with _orbax_errors_dropped():
        value = restore(step)
    except Exception as e:  # pylint: disable=broad-except  # Orbax raises many kinds
      error = " ".join(f"{type(e).__name__}: {e}".split())[:300]
    if parallel.all_processes_agree(value is not None):
      return step, value
    logging.warning("checkpoint step %d in %s is unreadable, trying the one before: %s",
                    step, where, error)
    errors.append(f"step {step}: {error}")
    if on_unreadable is not None:
      on_unreadable(step)
  raise ValueError(f"{where}: no readable checkpoint ({'; '.join(errors)})")
