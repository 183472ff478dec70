"""Units of the decoder, and the one file format that names a set of them.

A *unit* is one dimension of an activation the decoder exposes per layer:

* `residual`: dimension j of layer l's output (the residual stream after block l), as
  AlKhamissi et al. (arXiv 2411.02280) localize; `num_layers x embed_dim` units;
* `mlp`: hidden unit n of layer l's SwiGLU MLP, `silu(gate) * up`; `num_layers x mlp_dim`.

A units file (`units.json`, written by `instruct-pt analyze-units`) holds one kind, the model's
unit shape `[layers, width]`, and the selected units as `{"layer", "index", "t"}` records.
`read` checks it against a model config; `keep_factors` turns it into the `unit_keep` input of
`Decoder` (ablation) and `selected` into the boolean `[layers, width]` table that
`instruct_pt.train.optim.unit_update_mask` expands to parameter slices (targeted tuning).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Optional

import numpy as np

from instruct_pt.model.config import ModelConfig

KINDS = ("residual", "mlp")


def unit_shape(config: ModelConfig, kind: str) -> tuple[int, int]:
  """`(layers, width)` of the model's units of `kind`.

  Args:
    config: the model config.
    kind: "residual" or "mlp".

  Raises:
    ValueError: an unknown kind.
  """
  if kind not in KINDS:
    raise ValueError(f"unit kind {kind!r}; choose one of {KINDS}")
  return (config.num_layers, config.embed_dim if kind == "residual" else config.mlp_dim)


@dataclasses.dataclass(frozen=True)
class UnitSet:
  """A set of units of one kind.

  Attributes:
    kind: "residual" or "mlp".
    shape: `(layers, width)` of the model the units belong to.
    layers: int `[n]` layer of each unit.
    indices: int `[n]` index of each unit inside its layer.
    t: float `[n]` each unit's statistic (e.g. Welch t), or None.
    info: anything else the file records (how the units were chosen).
  """
  kind: str
  shape: tuple[int, int]
  layers: np.ndarray
  indices: np.ndarray
  t: Optional[np.ndarray] = None
  info: Optional[dict[str, Any]] = None

  def __len__(self) -> int:
    return len(self.layers)

  def selected(self) -> np.ndarray:
    """Bool `[layers, width]`: True at the set's units."""
    table = np.zeros(self.shape, bool)
    table[self.layers, self.indices] = True
    return table

  def keep_factors(self) -> dict[str, np.ndarray]:
    """The `Decoder(unit_keep=...)` input that zeroes the set's units (ablation)."""
    return {self.kind: (~self.selected()).astype(np.float32)}

  def write(self, path: str) -> None:
    """Writes the set as JSON (units in their stored order)."""
    t = [None] * len(self) if self.t is None else [float(v) for v in self.t]
    units = [{"layer": int(layer), "index": int(index), "t": value}
             for layer, index, value in zip(self.layers, self.indices, t)]
    with open(path, "w", encoding="utf-8") as f:
      json.dump({"kind": self.kind, "shape": list(self.shape), "count": len(self),
                 "info": self.info or {}, "units": units}, f, indent=1)


def from_table(kind: str, table: np.ndarray, info: Optional[dict[str, Any]] = None) -> UnitSet:
  """The units where a bool `[layers, width]` table is True, in layer-then-index order.

  Args:
    kind: "residual" or "mlp".
    table: bool `[layers, width]`.
    info: what the file should record about the set.
  """
  layers, indices = np.nonzero(table)
  return UnitSet(kind, tuple(table.shape), layers, indices, None, info)


def read(path: str, config: Optional[ModelConfig] = None) -> UnitSet:
  """Reads a units file, checked against `config` when given.

  Args:
    path: a `units.json`, or a directory holding one (an `analyze-units` output).
    config: the model the units will be used with.

  Raises:
    FileNotFoundError: no such file.
    ValueError: a malformed file, or units of another shape than the model's, naming the
      file, the kind and both shapes.
  """
  if os.path.isdir(path):
    path = os.path.join(path, "units.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"units file {path} not found")
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
    kind, shape = data["kind"], tuple(int(n) for n in data["shape"])
    layers = np.asarray([u["layer"] for u in data["units"]], np.int64)
    indices = np.asarray([u["index"] for u in data["units"]], np.int64)
    t = [u.get("t") for u in data["units"]]
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(f"units file {path} is malformed ({type(e).__name__}: {e}); expected "
                     f'{{"kind", "shape", "units": [{{"layer", "index"}}, ...]}}') from e
  if kind not in KINDS or len(shape) != 2:
    raise ValueError(f"units file {path}: kind {kind!r} and shape {list(shape)}; expected a "
                     f"kind of {KINDS} and a shape [layers, width]")
  if config is not None and shape != unit_shape(config, kind):
    raise ValueError(f"units file {path}: {kind} units of shape {list(shape)}, but the model's "
                     f"layers/{kind} units have shape {list(unit_shape(config, kind))}")
  outside = (layers < 0) | (layers >= shape[0]) | (indices < 0) | (indices >= shape[1])
  if outside.any():
    first = int(np.argmax(outside))
    raise ValueError(f"units file {path}: unit {first} (layer {layers[first]}, index "
                     f"{indices[first]}) is outside the shape {list(shape)}")
  values = None if any(v is None for v in t) else np.asarray(t, np.float64)
  return UnitSet(kind, shape, layers, indices, values, data.get("info") or {})
