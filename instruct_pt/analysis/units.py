"""Task-relevant units: recording, streaming Welch statistics, selection, random controls.

The method of AlKhamissi et al. (arXiv 2411.02280, `BKHMSI/llm-localization`'s `localize.py`):

1. Run the model on task stimuli and on control stimuli, one stimulus per row, each cut to
   `max_tokens` tokens. Record every unit (`instruct_pt.model.units`: residual dimensions after
   each block, or SwiGLU hidden units) with the model's own code (`Decoder`'s sown
   `intermediates`), pooled per stimulus by its last token or by the mean over its tokens.
2. Per unit, Welch's t on the **absolute** pooled activations, task vs control
   (`scipy.stats.ttest_ind(|a|, |b|, equal_var=False)`), from streaming sums: a count, mean and
   sum of squared deviations per condition (Chan et al.'s merge), so memory does not grow
   with the number of stimuli.
3. The global top `top_percent`% units by t across all layers (`int(p / 100 * layers * width)`,
   at least one), highest t first. Large positive t: more active (in magnitude) on the task.

`random_units` draws the paper's control: as many units at random among the non-selected.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from instruct_pt import parallel
from instruct_pt.model import units as units_lib
from instruct_pt.model.config import ModelConfig
from instruct_pt.model.transformer import Decoder

POOLINGS = ("last", "mean")
# Welch's t needs a variance (ddof=1) in each condition.
MIN_STIMULI = 2
STATISTIC = ("Welch t (unequal variances) on |activation|, pooled per stimulus by {pooling} "
             "token, task vs control; global top-p% across layers")


def _recorded(intermediates: dict[str, Any], kind: str) -> jnp.ndarray:
  """`[layers, batch, length, width]` units of `kind` from `Decoder`'s sown intermediates."""
  layers = intermediates["layers"]
  return (layers["residual"] if kind == "residual" else layers["mlp"]["mlp"])[0]


def pooled_units(model: Decoder, params: Any, tokens: jnp.ndarray, lengths: jnp.ndarray,
                 kind: str, pooling: str) -> jnp.ndarray:
  """Float32 `[batch, layers, width]` units of each row, pooled over its first `lengths` tokens.

  Args:
    model: the decoder.
    params: its parameters.
    tokens: int `[batch, length]`, one stimulus per row, right-padded (the padding comes after
      every real token, so causal attention keeps it out of the real tokens' activations).
    lengths: int `[batch]` real tokens per row (at least 1).
    kind: "residual" or "mlp".
    pooling: "last" (the row's last real token) or "mean" (over its real tokens).
  """
  _, state = model.apply({"params": params}, tokens, mutable=["intermediates"])
  acts = _recorded(state["intermediates"], kind).astype(jnp.float32)  # [L, B, T, W]
  if pooling == "last":
    index = jnp.broadcast_to((lengths - 1)[None, :, None, None], acts.shape[:2] + (1,)
                             + acts.shape[3:])
    pooled = jnp.take_along_axis(acts, index, axis=2)[:, :, 0]
  else:
    mask = (jnp.arange(tokens.shape[1])[None, :] < lengths[:, None]).astype(jnp.float32)
    pooled = jnp.einsum("lbtw,bt->lbw", acts, mask) / lengths[None, :, None]
  return pooled.transpose(1, 0, 2)


@dataclasses.dataclass
class WelchStats:
  """Streaming count, mean and sum of squared deviations of each unit in one condition.

  Attributes:
    count: values added so far.
    mean: float64 `[layers, width]` running mean.
    m2: float64 `[layers, width]` running sum of squared deviations from the mean.
  """
  count: int = 0
  mean: Optional[np.ndarray] = None
  m2: Optional[np.ndarray] = None

  def add(self, values: np.ndarray) -> None:
    """Adds a batch `[n, layers, width]` (Chan et al.'s parallel merge)."""
    values = np.asarray(values, np.float64)
    n = len(values)
    if n == 0:
      return
    batch_mean = values.mean(axis=0)
    batch_m2 = ((values - batch_mean) ** 2).sum(axis=0)
    if self.count == 0:
      self.count, self.mean, self.m2 = n, batch_mean, batch_m2
      return
    total = self.count + n
    delta = batch_mean - self.mean
    self.mean = self.mean + delta * (n / total)
    self.m2 = self.m2 + batch_m2 + delta ** 2 * (self.count * n / total)
    self.count = total

  def variance(self) -> np.ndarray:
    """Unbiased (ddof=1) variance of each unit."""
    return self.m2 / (self.count - 1)


def welch_t(task: WelchStats, control: WelchStats) -> np.ndarray:
  """Welch's t of each unit, task vs control; NaN where both variances are 0.

  Args:
    task: statistics of the task condition.
    control: statistics of the control condition.

  Raises:
    ValueError: a condition with fewer than `MIN_STIMULI` values, saying how many are needed.
  """
  for name, stats in (("task", task), ("control", control)):
    if stats.count < MIN_STIMULI:
      raise ValueError(f"{stats.count} {name} stimuli: Welch's t-test needs at least "
                       f"{MIN_STIMULI} task and {MIN_STIMULI} control stimuli")
  scale = np.sqrt(task.variance() / task.count + control.variance() / control.count)
  with np.errstate(divide="ignore", invalid="ignore"):
    t = (task.mean - control.mean) / scale
  return np.where(scale > 0, t, np.nan)


def top_units(t: np.ndarray, top_percent: float) -> tuple[np.ndarray, np.ndarray]:
  """`(layers, indices)` of the global top `top_percent`% units by t, highest first.

  Args:
    t: `[layers, width]` statistics (NaN ranks last).
    top_percent: share of all units, in percent (0, 100].

  Raises:
    ValueError: a percentage outside (0, 100].
  """
  if not 0 < top_percent <= 100:
    raise ValueError(f"top_percent={top_percent}: give a percentage in (0, 100]")
  count = max(1, int(top_percent / 100 * t.size))
  order = np.argsort(-np.nan_to_num(t.ravel(), nan=-np.inf), kind="stable")[:count]
  return np.unravel_index(order, t.shape)


def random_units(shape: tuple[int, int], count: int, exclude: np.ndarray,
                 seed: int) -> np.ndarray:
  """Bool `[layers, width]` table of `count` units drawn at random outside `exclude`.

  Args:
    shape: `(layers, width)`.
    count: units to draw.
    exclude: bool `[layers, width]`, units not to draw (the selected ones).
    seed: the draw's seed (the paper uses 42, 43, 44).
  """
  candidates = np.flatnonzero(~exclude.ravel())
  table = np.zeros(int(np.prod(shape)), bool)
  table[np.random.default_rng(seed).choice(candidates, count, replace=False)] = True
  return table.reshape(shape)


def encode_stimuli(tokenizer, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
  """Each text's first `max_tokens` tokens (the paper's truncation), empty ones refused.

  Raises:
    ValueError: a text with no tokens, naming it.
  """
  encoded = []
  for number, text in enumerate(texts, 1):
    ids = tokenizer.encode(text)[:max_tokens]
    if not ids:
      raise ValueError(f"stimulus {number} ({text[:40]!r}) has no tokens")
    encoded.append(ids)
  return encoded


class Recorder:
  """Pools a model's units over stimuli in fixed-shape batches (one program per model).

  Args:
    config: the model config.
    params: its parameters (on `mesh`).
    kind: "residual" or "mlp".
    pooling: "last" or "mean".
    max_tokens: tokens per row (stimuli are cut to this).
    batch_size: rows per device call.
    mesh: the device mesh, or None for the default device.
    rules: logical axis rules (with `mesh`).
  """

  def __init__(self, config: ModelConfig, params: Any, kind: str, pooling: str,
               max_tokens: int = 12, batch_size: int = 16,
               mesh: Optional[jax.sharding.Mesh] = None, rules: Optional[parallel.Rules] = None):
    units_lib.unit_shape(config, kind)  # checks the kind
    if pooling not in POOLINGS:
      raise ValueError(f"pooling={pooling!r}; choose one of {POOLINGS}")
    if max_tokens <= 0 or batch_size <= 0:
      raise ValueError(f"max_tokens={max_tokens} and batch_size={batch_size} must be positive")
    self.params, self.mesh, self.rules = params, mesh, rules
    self.max_tokens, self.batch_size = max_tokens, batch_size
    self._run = jax.jit(functools.partial(pooled_units, Decoder(config), kind=kind,
                                          pooling=pooling))

  def stats(self, stimuli: Sequence[Sequence[int]]) -> WelchStats:
    """The streaming statistics of the absolute values of the stimuli's pooled units (token
    id lists): the statistic is Welch's t on |activation| (`STATISTIC`)."""
    stats = WelchStats()
    for start in range(0, len(stimuli), self.batch_size):
      stats.add(np.abs(self.pooled(stimuli[start:start + self.batch_size])))
    return stats

  def pooled(self, stimuli: Sequence[Sequence[int]]) -> np.ndarray:
    """Float32 `[n, layers, width]` pooled units of up to `batch_size` stimuli."""
    tokens = np.zeros((self.batch_size, self.max_tokens), np.int32)
    lengths = np.ones(self.batch_size, np.int32)
    for row, ids in enumerate(stimuli):
      ids = list(ids)[:self.max_tokens]
      tokens[row, :len(ids)], lengths[row] = ids, len(ids)
    if self.mesh is None:
      pooled = self._run(self.params, tokens, lengths)
    else:
      with parallel.sharding_context(self.mesh, self.rules):
        pooled = self._run(self.params, tokens, lengths)
    return np.asarray(pooled)[:len(stimuli)]


@dataclasses.dataclass
class Localization:
  """What `localize` found.

  Attributes:
    t: float64 `[layers, width]` Welch t of every unit.
    units: the selected units, highest t first.
  """
  t: np.ndarray
  units: units_lib.UnitSet


def localize(recorder: Recorder, kind: str, task: Sequence[Sequence[int]],
             control: Sequence[Sequence[int]], top_percent: float,
             info: Optional[dict[str, Any]] = None) -> Localization:
  """Welch t of every unit, task vs control stimuli, and the global top `top_percent`%.

  Args:
    recorder: pools the model's units (its kind and pooling are the analysis').
    kind: the recorder's unit kind.
    task: token ids of the task stimuli.
    control: token ids of the control stimuli.
    top_percent: share of units to select, in percent.
    info: extra facts recorded in the units file.

  Raises:
    ValueError: too few stimuli in a condition (saying how many are needed), a bad percentage.
  """
  for name, stimuli in (("task", task), ("control", control)):
    if len(stimuli) < MIN_STIMULI:
      raise ValueError(f"{len(stimuli)} {name} stimuli: Welch's t-test needs at least "
                       f"{MIN_STIMULI} task and {MIN_STIMULI} control stimuli")
  if not 0 < top_percent <= 100:
    raise ValueError(f"top_percent={top_percent}: give a percentage in (0, 100]")
  task_stats, control_stats = recorder.stats(task), recorder.stats(control)
  t = welch_t(task_stats, control_stats)
  layers, indices = top_units(t, top_percent)
  info = {"top_percent": top_percent, "task_stimuli": len(task),
          "control_stimuli": len(control), "max_tokens": recorder.max_tokens, **(info or {})}
  return Localization(t, units_lib.UnitSet(kind, t.shape, layers, indices, t[layers, indices],
                                           info))


def write(localization: Localization, out: str, title: str = "") -> dict[str, str]:
  """Writes `units.json`, `t_values.npy` (every unit's t) and `units.png` into `out`.

  Args:
    localization: what `localize` returned.
    out: the output directory (created).
    title: the figure's title.

  Returns:
    The paths written, by name.
  """
  os.makedirs(out, exist_ok=True)
  paths = {name: os.path.join(out, name) for name in ("units.json", "t_values.npy",
                                                      "units.png")}
  localization.units.write(paths["units.json"])
  np.save(paths["t_values.npy"], localization.t)
  plot_layers(localization, paths["units.png"], title)
  return paths


def per_layer(localization: Localization) -> dict[str, list[float]]:
  """Per layer: selected units and the mean and max t (what `units.png` shows)."""
  t = np.nan_to_num(localization.t, nan=0.0)
  counts = np.bincount(localization.units.layers, minlength=t.shape[0])
  return {"selected": [int(c) for c in counts], "mean_t": [float(v) for v in t.mean(axis=1)],
          "max_t": [float(v) for v in t.max(axis=1)]}


def plot_layers(localization: Localization, path: str, title: str = "") -> None:
  """Selected units per layer (bars) and each layer's mean and max t (lines) as a PNG."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  layers = per_layer(localization)
  x = np.arange(len(layers["selected"]))
  figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
  top.bar(x, layers["selected"], color="#1f77b4")
  top.set_ylabel("selected units")
  bottom.plot(x, layers["mean_t"], label="mean t", color="#555")
  bottom.plot(x, layers["max_t"], label="max t", color="#d62728")
  bottom.axhline(0, color="#999", linewidth=0.5)
  bottom.set_xlabel("layer")
  bottom.set_ylabel("Welch t")
  bottom.legend(fontsize=8)
  u = localization.units
  figure.suptitle(title or f"top {u.info.get('top_percent')}% {u.kind} units: {len(u)} of "
                  f"{u.shape[0] * u.shape[1]}")
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)


def summary(localization: Localization) -> str:
  """A JSON line: kind, count, t range of the selection, per-layer counts."""
  u = localization.units
  return json.dumps({"kind": u.kind, "selected": len(u), "of": u.shape[0] * u.shape[1],
                     "t_min_selected": float(np.min(u.t)) if len(u) else None,
                     "t_max": float(np.max(u.t)) if len(u) else None,
                     "per_layer": per_layer(localization)["selected"]})
