"""Optax optimizers and learning-rate schedules."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import jax
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
  warmup = optax.linear_schedule(0.0, peak, max(config.warmup_steps, 1))
  after = max(decay_steps - config.warmup_steps, 1)
  if config.schedule == "cosine":
    decay = optax.cosine_decay_schedule(peak, after, alpha=config.final_lr_ratio)
  elif config.schedule == "linear":
    decay = optax.linear_schedule(peak, final, after)
  else:
    decay = optax.constant_schedule(peak)
  if config.warmup_steps == 0:
    return decay
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


def make_optimizer(config: OptimizerConfig,
                   num_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """AdamW chain: optional clipping, Adam moments, masked decoupled weight decay, schedule.

  Args:
    config: optimizer settings.
    num_steps: length of the run (for the schedule's default decay length).

  Returns:
    `(transformation, schedule)`.
  """
  schedule = make_schedule(config, num_steps)
  parts = []
  if config.clip_norm:
    parts.append(optax.clip_by_global_norm(config.clip_norm))
  parts.append(optax.adamw(schedule, b1=config.b1, b2=config.b2, eps=config.eps,
                           weight_decay=config.weight_decay, mask=weight_decay_mask))
  return optax.chain(*parts), schedule
