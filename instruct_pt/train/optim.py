"""Optax optimizers, learning-rate schedules, and parameter masks (frozen / trainable slices).

Targeted tuning trains only the parameter slices of chosen units (`unit_update_mask`), or
everything but them. Which slices belong to a unit (scanned leaves have a leading layer axis):

* an MLP unit (l, n): the weights that make it and the one that reads it,
  `layers/mlp/{gate,up}/kernel[l, :, n]` and `layers/mlp/down/kernel[l, n, :]`;
* a residual unit (l, j): the weights through which block l writes dimension j of the
  residual stream, `layers/attention/out/kernel[l, :, :, j]` and `layers/mlp/down/kernel[l, :, j]`
  (the stream's value there is also the sum of earlier layers' writes, which stay frozen).

The mask is applied to the gradients first (so clipping and Adam's moments see only trained
entries) and to the updates last, after the decoupled weight decay, so no frozen entry moves.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

SCHEDULES = ("cosine", "linear", "constant")
_NO_DECAY_LEAVES = ("scale", "bias")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
  """AdamW with linear warmup, a decay schedule and global-norm clipping.

  Attributes:
    learning_rate: peak learning rate, reached after `warmup_steps`.
    warmup_steps: linear warmup from 0.
    schedule: "cosine", "linear" (decay to `final_lr_ratio`) or "constant" after warmup.
    decay_steps: step at which the decay ends; None means the run's `num_steps`.
    final_lr_ratio: learning rate at `decay_steps`, as a fraction of the peak.
    weight_decay: decoupled weight decay (not applied to norm scales and biases).
    b1: Adam beta1.
    b2: Adam beta2.
    eps: Adam epsilon.
    clip_norm: clip gradients to this global norm; None or 0 disables clipping.
  """

  learning_rate: float = 3e-4
  warmup_steps: int = 0
  schedule: str = "cosine"
  decay_steps: Optional[int] = None
  final_lr_ratio: float = 0.1
  weight_decay: float = 0.1
  b1: float = 0.9
  b2: float = 0.95
  eps: float = 1e-8
  clip_norm: Optional[float] = 1.0

  def __post_init__(self):
    if self.schedule not in SCHEDULES:
      raise ValueError(f"OptimizerConfig.schedule={self.schedule!r}; choose one of {SCHEDULES}")
    if self.learning_rate <= 0:
      raise ValueError(f"OptimizerConfig.learning_rate must be positive, "
                       f"got {self.learning_rate}")
    if self.warmup_steps < 0:
      raise ValueError(f"OptimizerConfig.warmup_steps must be >= 0, got {self.warmup_steps}")


def make_schedule(config: OptimizerConfig, num_steps: int) -> optax.Schedule:
  """Learning rate as a function of the step.

  Args:
    config: optimizer settings.
    num_steps: length of the run, used when `config.decay_steps` is None.
  """
  decay_steps = config.decay_steps or num_steps
  peak = config.learning_rate
  final = peak * config.final_lr_ratio
  after = max(decay_steps - config.warmup_steps, 1)
  if config.schedule == "cosine":
    decay = optax.cosine_decay_schedule(peak, after, alpha=config.final_lr_ratio)
  elif config.schedule == "linear":
    decay = optax.linear_schedule(peak, final, after)
  else:
    decay = optax.constant_schedule(peak)
  if config.warmup_steps == 0:
    return decay
  warmup = optax.linear_schedule(0.0, peak, config.warmup_steps)
  return optax.join_schedules([warmup, decay], [config.warmup_steps])


def weight_decay_mask(params: Any) -> Any:
  """True for leaves that get weight decay: everything but norm scales and biases (a bare
  array, e.g. a soft prompt, decays)."""
  def decays(path, _):
    # The last dict key names the leaf; boxed (logically partitioned) params add an attribute
    # key after it.
    names = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
    return not names or names[-1] not in _NO_DECAY_LEAVES
  return jax.tree_util.tree_map_with_path(decays, params)


# The parameter slices of a unit: (leaf path, axis of the leaf that indexes the unit's width).
UNIT_SLICES = {
    "mlp": ((("layers", "mlp", "gate", "kernel"), -1), (("layers", "mlp", "up", "kernel"), -1),
            (("layers", "mlp", "down", "kernel"), 1)),
    "residual": ((("layers", "attention", "out", "kernel"), -1),
                 (("layers", "mlp", "down", "kernel"), -1)),
}


def _leaf_names(path) -> tuple[str, ...]:
  return tuple(k.key for k in path if isinstance(k, jax.tree_util.DictKey))


def unit_update_mask(kind: str, selected: np.ndarray, freeze: bool = False) -> Callable:
  """`params -> tree of bool masks`: True where an entry may change (see the module doc).

  Args:
    kind: "residual" or "mlp".
    selected: bool `[layers, width]`, True at the chosen units (a numpy array, or a jax array,
      traced too: a jitted step taking it as an argument serves every selection of a shape).
    freeze: False trains the chosen units' slices alone (everything else, embeddings and norms
      included, frozen); True freezes those slices and trains everything else. A traced bool
      works too.

  The masks are broadcast inside the step from the small `selected` table, so no
  parameter-sized constant is stored.
  """
  slices = dict(UNIT_SLICES[kind])
  table = jnp.asarray(selected, bool)

  def masks(params):
    def mask(path, leaf):
      axis = slices.get(_leaf_names(path))
      if axis is None:
        return jnp.full(leaf.shape, freeze)
      if leaf.shape[0] != table.shape[0] or leaf.shape[axis] != table.shape[1]:
        raise ValueError(f"{'/'.join(_leaf_names(path))} has shape {tuple(leaf.shape)}; "
                         f"{kind} units of shape {tuple(table.shape)} do not fit it")
      shape = [1] * leaf.ndim
      shape[0], shape[axis] = table.shape
      chosen = jnp.broadcast_to(table.reshape(shape), leaf.shape)
      return chosen != freeze
    return jax.tree_util.tree_map_with_path(mask, params)
  return masks


def masked(update_mask: Callable) -> optax.GradientTransformation:
  """Zeroes the updates wherever `update_mask(updates)` is False (stateless)."""
  def update(updates, state, params=None):
    del params
    updates = jax.tree_util.tree_map(lambda u, keep: jnp.where(keep, u, jnp.zeros_like(u)),
                                     updates, update_mask(updates))
    return updates, state
  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(config: OptimizerConfig, num_steps: int,
                   update_mask: Optional[Callable] = None
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """AdamW chain: optional clipping, Adam moments, masked decoupled weight decay, schedule.

  Args:
    config: optimizer settings.
    num_steps: length of the run (for the schedule's default decay length).
    update_mask: `params -> tree of bool` (e.g. `unit_update_mask`): only True entries are
      trained. Applied to the gradients first and, as the last transform, to the updates, so
      weight decay cannot move a frozen entry. None trains everything.

  Returns:
    `(transformation, schedule)`.
  """
  schedule = make_schedule(config, num_steps)
  parts = [] if update_mask is None else [masked(update_mask)]
  if config.clip_norm:
    parts.append(optax.clip_by_global_norm(config.clip_norm))
  parts.append(optax.adamw(schedule, b1=config.b1, b2=config.b2, eps=config.eps,
                           weight_decay=config.weight_decay, mask=weight_decay_mask))
  if update_mask is not None:
    parts.append(masked(update_mask))
  return optax.chain(*parts), schedule
