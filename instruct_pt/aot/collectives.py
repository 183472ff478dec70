"""The collectives of a compiled program: kinds, bytes, device groups, and the mesh axes and
slices those groups span.

`collectives(module)` lists every all-gather, all-reduce, reduce-scatter, all-to-all and
collective-permute of a parsed program (`hlo.parse`), weighted by how often one run executes
it (`hlo.execution_counts`), with its device groups read from any of XLA's formats
(`device_groups`). `census` sums them by kind and by the mesh axes their groups span, and says
which cross TPU slices.

A job of several slices compiles to one program per slice: its collectives stay inside the
slice (their device numbers count that slice's chips), and what crosses the data-center network
is a host transfer to the Megascale runtime (`send` with `_xla_megascale_transfer_type`, e.g.
ALL_REDUCE), which reduces the same chip of every slice: it spans the mesh axes that span the
slices.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Optional, Sequence

import numpy as np

from instruct_pt.aot.hlo import Module, execution_counts, until_closing

COLLECTIVES = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")
_MEGASCALE = re.compile(r'_xla_megascale_transfer_type="(\w+)"')


@dataclasses.dataclass
class Collective:
  """One collective instruction of the program.

  Attributes:
    kind: a `COLLECTIVES` entry (the async `-start` form counts as its kind).
    count: executions per run of the program.
    nbytes: bytes of its result per device (the gathered array of an all-gather, the
      scattered piece of a reduce-scatter), per execution.
    groups: the device groups that communicate, as indices into the program's devices;
      for a collective-permute, each source-target pair.
    across_slices: a transfer over the data-center network (Megascale), between the same
      chip of every slice (`groups` is empty).
  """

  kind: str
  count: int
  nbytes: int
  groups: list[list[int]]
  across_slices: bool = False


def collectives(module: Module, num_devices: int,
                counts: Optional[dict[str, int]] = None) -> list[Collective]:
  """Every collective of the program, weighted by executions.

  Args:
    module: the module.
    num_devices: devices the program runs on (an empty replica group list means all).
    counts: `execution_counts(module)` (computed when not given).
  """
  counts = execution_counts(module) if counts is None else counts
  found = []
  for name, repeat in counts.items():
    for instruction in module.computations.get(name, []):
      network = _MEGASCALE.search(instruction.attributes)
      if instruction.opcode == "send" and network:
        found.append(Collective(network.group(1).lower().replace("_", "-"), repeat,
                                instruction.nbytes(0), [], across_slices=True))
        continue
      kind = instruction.opcode.removesuffix("-start")
      if kind not in COLLECTIVES or instruction.opcode.endswith("-done"):
        continue
      is_async_tuple = instruction.opcode.endswith("-start") and len(instruction.arrays) > 1
      nbytes = instruction.nbytes(1) if is_async_tuple else instruction.nbytes()
      found.append(Collective(kind, repeat, nbytes, device_groups(instruction.attributes,
                                                                  num_devices)))
  return found


def device_groups(attributes: str, num_devices: int) -> list[list[int]]:
  """The device groups of a collective's `replica_groups` (explicit lists, the iota form
  `[G,S]<=[dims]T(perm)`, or the mesh form `mesh['a'=2,...](ids) {'a',...}`) or, for a
  collective-permute, its `source_target_pairs`.

  Args:
    attributes: the instruction's attribute text.
    num_devices: devices of the program (for `{}`, every device in one group).
  """
  start = attributes.find("source_target_pairs={")
  if start >= 0:
    pairs = until_closing(attributes[start + len("source_target_pairs={"):])[0]
    return [[int(x) for x in pair.split(",")] for pair in re.findall(r"\{([\d,]+)\}", pairs)]
  iota = re.search(r"replica_groups=\[(\d+),(\d+)\]<=\[([\d,]+)\](?:T\(([\d,]+)\))?",
                   attributes)
  if iota:
    groups, size = int(iota.group(1)), int(iota.group(2))
    ids = np.arange(math.prod(int(d) for d in iota.group(3).split(","))).reshape(
        [int(d) for d in iota.group(3).split(",")])
    if iota.group(4):
      ids = ids.transpose([int(p) for p in iota.group(4).split(",")])
    return ids.reshape(groups, size).tolist()
  mesh = re.search(r"replica_groups=@?mesh[\[<]([^\]>]*)[\]>](\([^)]*\))?\s*\{([^}]*)\}",
                   attributes)
  if mesh:
    return _mesh_groups(mesh.group(1), mesh.group(2), mesh.group(3))
  start = attributes.find("replica_groups={")
  explicit = "" if start < 0 else until_closing(attributes[start + len("replica_groups={"):])[0]
  if not explicit.strip():
    return [list(range(num_devices))]
  return [[int(x) for x in group.split(",") if x]
          for group in re.findall(r"\{([\d,]*)\}", explicit)]


def _mesh_groups(axes_text: str, ids_text: Optional[str], grouped_text: str
                 ) -> list[list[int]]:
  """Groups of the mesh form: devices varying along the grouped axes (sub-axes
  `'a':(pre)size` split an axis as `[pre, size, rest]`), the rest fixed."""
  names, sizes = [], []
  for item in axes_text.split(","):
    name, _, size = item.partition("=")
    names.append(name.strip().strip("'\""))
    sizes.append(int(size))
  ids = np.arange(math.prod(sizes))
  if ids_text:
    ids = np.asarray([int(x) for x in re.findall(r"\d+", ids_text)])
  dims: list[int] = []
  grouped: list[int] = []
  refs = [r.strip().strip("'\"") for r in grouped_text.split(",") if r.strip()]
  for name, size in zip(names, sizes):
    subs = [r for r in refs if r.split(":")[0].strip("'\"") == name]
    if not subs:
      dims.append(size)
      continue
    if len(subs) == 1 and ":" not in subs[0]:
      grouped.append(len(dims))
      dims.append(size)
      continue
    done = 1
    for sub in sorted(subs, key=lambda r: int(re.search(r"\((\d+)\)", r).group(1))):
      pre, part = (int(x) for x in re.search(r"\((\d+)\)(\d+)", sub).groups())
      if pre != done:
        dims.append(pre // done)
        done = pre
      grouped.append(len(dims))
      dims.append(part)
      done *= part
    if done != size:
      dims.append(size // done)
  order = [d for d in range(len(dims)) if d not in grouped] + grouped
  size = math.prod(dims[d] for d in grouped)
  return ids.reshape(dims).transpose(order).reshape(-1, size).tolist()


def device_axes(mesh_shape: dict[str, int]) -> np.ndarray:
  """Each device's coordinates on the mesh, `[devices, axes]`, devices in the order of
  `mesh.devices.flat` (the program's device order).

  Args:
    mesh_shape: axis name -> size, in mesh order.
  """
  return np.stack(np.unravel_index(np.arange(math.prod(mesh_shape.values())),
                                   tuple(mesh_shape.values())), axis=1)


def census(found: Sequence[Collective], mesh_shape: dict[str, int],
           slice_of_device: Sequence[int]) -> list[dict[str, Any]]:
  """Collectives summed by kind and by the mesh axes their groups span.

  Args:
    found: `collectives(...)` of the program of one slice (of the only one, on one slice).
    mesh_shape: the mesh's axis sizes, in order (devices numbered as `mesh.devices.flat`).
    slice_of_device: the slice of each device of the mesh, in that order.

  Returns:
    Rows `{"kind", "axes", "crosses_slices", "count", "bytes"}`, `axes` the mesh axes whose
    coordinate varies inside a group (e.g. ["fsdp"]), `bytes` per device over all
    executions; sorted by bytes, largest first.
  """
  names = list(mesh_shape)
  slices = np.asarray(slice_of_device)
  # The program's device p is the p-th device of the first slice, in mesh order.
  coordinates = device_axes(mesh_shape)[slices == slices.min()]
  layout = slices.reshape(tuple(mesh_shape.values()))
  network_axes = [name for axis, name in enumerate(names)
                  if np.any(np.diff(layout, axis=axis) != 0)]
  rows: dict[tuple, dict[str, Any]] = {}
  for collective in found:
    varying = set(network_axes) if collective.across_slices else set()
    for group in collective.groups:
      members = coordinates[np.asarray(group)]
      spread = members.max(axis=0) != members.min(axis=0)
      varying.update(name for name, moves in zip(names, spread) if moves)
    key = (collective.kind, tuple(n for n in names if n in varying), collective.across_slices)
    row = rows.setdefault(key, {"kind": key[0], "axes": list(key[1]),
                                "crosses_slices": key[2], "count": 0, "bytes": 0})
    row["count"] += collective.count
    row["bytes"] += collective.count * collective.nbytes
  return sorted(rows.values(), key=lambda r: (-r["bytes"], r["kind"]))
