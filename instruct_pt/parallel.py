"""Device mesh, logical axis rules, shardings and multi-host set-up.

The mesh has three axes:

* `data`: pure data parallelism (parameters replicated);
* `fsdp`: data parallelism with parameters and optimizer state sharded (ZeRO-3 style);
* `tensor`: Megatron-style tensor parallelism over heads, MLP width and vocabulary.

Model code names every dimension logically ("embed", "heads", "activation_batch", ...);
`LOGICAL_AXIS_RULES` maps those names onto mesh axes. The same table shards training,
generation and evaluation. A rule's mesh axes are dropped for one array when they do not divide
that array's dimension (e.g. 3 KV heads on a tensor axis of 2), so every preset runs on every
mesh; the dimension is then replicated over those axes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
from typing import Any, Iterator, Optional, Sequence, Union

import flax.linen as nn
import jax
import numpy as np
from jax.experimental import mesh_utils, multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")

MeshAxes = Union[None, str, Sequence[str]]
Rules = Sequence[tuple[str, MeshAxes]]

LOGICAL_AXIS_RULES: Rules = (
    # Parameters.
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),
    ("mlp", "tensor"),
    ("head_dim", None),
    ("norm", None),
    ("layers", None),
    # Activations.
    ("activation_batch", ("data", "fsdp")),
    ("activation_length", None),
    ("activation_embed", None),
    ("activation_heads", "tensor"),
    ("activation_kv_heads", "tensor"),
    ("activation_mlp", "tensor"),
    ("activation_vocab", "tensor"),
    # KV cache (generation).
    ("cache_batch", ("data", "fsdp")),
    ("cache_length", None),
    ("cache_kv_heads", "tensor"),
)

BATCH_AXES = ("activation_batch", "activation_length")


@dataclasses.dataclass(frozen=True)
class MeshConfig:
  """How to lay the devices out and shard the model.

  Attributes:
    shape: sizes of the (data, fsdp, tensor) axes within one slice (all the devices, unless
      a multi-slice TPU job spans several); one entry may be -1 to take all devices not used
      by the others.
    rule_overrides: (logical name, mesh axes) pairs replacing entries of `LOGICAL_AXIS_RULES`,
      e.g. `(("embed", None),)` to stop sharding parameters over fsdp.
    dcn_shape: how the axes extend across the slices of a multi-slice TPU job, which talk over
      the data-center network (DCN), not the chips' interconnect: each axis of the mesh is
      `shape` times `dcn_shape` long. The default, `(-1, 1, 1)`, puts the slices on the data
      axis, so only the data-parallel gradient reduction crosses slices. Unused on one slice.
  """

  shape: tuple[int, int, int] = (1, -1, 1)
  rule_overrides: tuple[tuple[str, MeshAxes], ...] = ()
  dcn_shape: tuple[int, int, int] = (-1, 1, 1)

  def rules(self) -> tuple[tuple[str, MeshAxes], ...]:
    """The rule table with `rule_overrides` applied."""
    return merge_rules(LOGICAL_AXIS_RULES, self.rule_overrides)

  def create(self, devices: Optional[Sequence[Any]] = None, allow_subset: bool = False) -> Mesh:
    """The mesh over `devices` (`create_mesh`).

    Args:
      devices: the devices (default: every process's), e.g. `jax.local_devices()` or a TPU
        topology's (`instruct_pt.aot`).
      allow_subset: a shape without -1 may use only the first of them (one host's mesh).
    """
    return create_mesh(self.shape, devices, allow_subset, self.dcn_shape)


def parse_mesh_shape(value: Union[str, Sequence[int]], flag: str = "--mesh"
                     ) -> tuple[int, int, int]:
  """A (data, fsdp, tensor) shape from "1,-1,1" (or "1:-1:1", for lm-eval's `--model_args`,
  which splits on commas) or a sequence of three ints: the one mesh syntax of the CLI, lm-eval
  and the Python APIs.

  Args:
    value: the sizes as written.
    flag: how the value was given, for the error.

  Raises:
    ValueError: not three integers, naming the value.
  """
  parts = value.replace(":", ",").split(",") if isinstance(value, str) else list(value)
  try:
    shape = tuple(int(part) for part in parts)
  except (TypeError, ValueError):
    shape = ()
  if len(shape) != 3:
    raise ValueError(f"{flag}={value!r}: expected data,fsdp,tensor sizes, e.g. 1,-1,1 "
                     f"(1:-1:1 in lm-eval's --model_args)")
  return shape


def parse_rule_overrides(value: Union[str, Rules], flag: str = "rule_overrides") -> Rules:
  """Rule overrides from "embed=None;heads=fsdp+tensor" (the syntax of lm-eval's
  `--model_args`, which splits on commas) or a table of (logical name, mesh axes) pairs, as
  `MeshConfig.rule_overrides` holds it. "None" shards over no axis; "+" joins several axes.

  Args:
    value: the overrides as written; "" for none.
    flag: how the value was given, for the error.

  Raises:
    ValueError: an entry that is not name=axes, or a mesh axis that does not exist, naming it.
  """
  if not isinstance(value, str):
    overrides = tuple((name, axes) for name, axes in value)
  else:
    overrides = []
    for entry in filter(None, (part.strip() for part in value.split(";"))):
      name, sep, axes = (part.strip() for part in entry.partition("="))
      if not (sep and name and axes):
        raise ValueError(f"{flag}={value!r}: {entry!r} is not name=axes, e.g. "
                         f"embed=None;heads=fsdp+tensor")
      parts = tuple(axes.split("+"))
      overrides.append((name, None if axes == "None" else parts[0] if len(parts) == 1 else parts))
    overrides = tuple(overrides)
  try:
    merge_rules((), overrides)
  except ValueError as e:
    raise ValueError(f"{flag}={value!r}: {e}") from None
  return overrides


def merge_rules(rules: Rules, overrides: Rules) -> tuple[tuple[str, MeshAxes], ...]:
  """Replaces the entries of `rules` named in `overrides` (new names are appended).

  Args:
    rules: base table of (logical name, mesh axes).
    overrides: entries that win over `rules`.

  Raises:
    ValueError: if an override names a mesh axis that does not exist.
  """
  for name, axes in overrides:
    for axis in _as_tuple(axes):
      if axis not in MESH_AXES:
        raise ValueError(f"Rule override ({name!r}, {axes!r}) names mesh axis {axis!r}; "
                         f"mesh axes are {MESH_AXES}")
  replaced = dict(overrides)
  merged = [(name, replaced.pop(name, axes)) for name, axes in rules]
  return tuple(merged) + tuple(replaced.items())


def _as_tuple(axes: MeshAxes) -> tuple[str, ...]:
  if axes is None:
    return ()
  if isinstance(axes, str):
    return (axes,)
  return tuple(axes)


def maybe_initialize_distributed() -> None:
  """Starts `jax.distributed` when this process is one of several (TPU pod, GPU cluster).

  Must run before anything touches the devices. Detects Cloud TPU multi-worker slices
  (`TPU_WORKER_HOSTNAMES` with several hosts), an explicit coordinator
  (`JAX_COORDINATOR_ADDRESS`; with `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID` on any machines,
  CPU-only ones included, otherwise the count and index come from JAX's cluster detection,
  as on TPU VMs), SLURM and Open MPI launches (JAX's own detection). Single-host runs do
  nothing.
  """
  if jax.distributed.is_initialized():
    return
  multi_tpu_host = "," in os.environ.get("TPU_WORKER_HOSTNAMES", "")
  coordinator = os.environ.get("JAX_COORDINATOR_ADDRESS")
  cluster = coordinator or any(v in os.environ for v in ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE"))
  if not (multi_tpu_host or cluster):
    return
  if coordinator and "JAX_NUM_PROCESSES" in os.environ and "JAX_PROCESS_ID" in os.environ:
    jax.distributed.initialize(coordinator, int(os.environ["JAX_NUM_PROCESSES"]),
                               int(os.environ["JAX_PROCESS_ID"]))
  else:
    jax.distributed.initialize()
  logging.info("jax.distributed initialized: process %d of %d", jax.process_index(),
               jax.process_count())


def resolve_mesh_shape(shape: Sequence[int], num_devices: int) -> tuple[int, int, int]:
  """Fills a -1 entry and checks that the mesh uses exactly `num_devices` devices.

  Args:
    shape: (data, fsdp, tensor) sizes, at most one of them -1.
    num_devices: devices available.

  Raises:
    ValueError: wrong length, several -1, non-positive sizes, or a product that does not
      match the device count.
  """
  shape = tuple(int(s) for s in shape)
  if len(shape) != len(MESH_AXES):
    raise ValueError(f"mesh shape {shape} must have {len(MESH_AXES)} entries {MESH_AXES}")
  if shape.count(-1) > 1:
    raise ValueError(f"mesh shape {shape} may contain at most one -1")
  if any(s == 0 or s < -1 for s in shape):
    raise ValueError(f"mesh shape {shape} has a size that is not positive (or -1)")
  known = math.prod(s for s in shape if s != -1)
  if -1 in shape:
    if num_devices % known:
      raise ValueError(f"mesh shape {shape}: the fixed axes use {known} devices, which does not "
                       f"divide the {num_devices} devices available")
    shape = tuple(num_devices // known if s == -1 else s for s in shape)
  if math.prod(shape) != num_devices:
    raise ValueError(f"mesh shape {dict(zip(MESH_AXES, shape))} needs {math.prod(shape)} "
                     f"devices, but {num_devices} are available")
  return shape


def slice_of(device: Any) -> int:
  """The TPU slice a device belongs to (0 on one slice and off TPUs)."""
  return getattr(device, "slice_index", None) or 0


def create_mesh(shape: Sequence[int] = (1, -1, 1),
                devices: Optional[Sequence[Any]] = None, allow_subset: bool = False,
                dcn_shape: Sequence[int] = (-1, 1, 1)) -> Mesh:
  """Builds the (data, fsdp, tensor) mesh over all (or the given) devices.

  Uses `mesh_utils.create_device_mesh` so that on TPU the tensor axis follows the fastest
  interconnect links. Devices of several TPU slices get a hybrid mesh
  (`mesh_utils.create_hybrid_device_mesh`): `shape` within each slice, `dcn_shape` across
  them.

  Args:
    shape: (data, fsdp, tensor) sizes (within one slice); one may be -1.
    devices: devices to use; defaults to `jax.devices()` (all hosts).
    allow_subset: when `shape` has no -1, use only the first `prod(shape)` devices instead
      of requiring it to use them all (e.g. one-device generation on a multi-device host).
    dcn_shape: (data, fsdp, tensor) sizes across slices; one may be -1 (`MeshConfig`).

  Raises:
    ValueError: a shape that does not use the devices (naming both), or slices of unequal
      sizes.
  """
  devices = list(devices if devices is not None else jax.devices())
  slices = sorted({slice_of(d) for d in devices})
  if len(slices) > 1:
    per_slice = len(devices) // len(slices)
    if any(sum(slice_of(d) == s for d in devices) != per_slice for s in slices):
      raise ValueError(f"the devices span {len(slices)} slices of unequal sizes")
    try:
      ici = resolve_mesh_shape(shape, per_slice)
    except ValueError as e:
      raise ValueError(f"{e} (in each of {len(slices)} slices)") from e
    dcn = resolve_mesh_shape(dcn_shape, len(slices))
    device_array = mesh_utils.create_hybrid_device_mesh(ici, dcn, devices)
    return Mesh(device_array, MESH_AXES)
  if allow_subset and -1 not in shape:
    devices = devices[:math.prod(shape)]
  resolved = resolve_mesh_shape(shape, len(devices))
  try:
    device_array = mesh_utils.create_device_mesh(resolved, devices)
  except (ValueError, NotImplementedError, AssertionError):
    device_array = np.asarray(devices).reshape(resolved)
  return Mesh(device_array, MESH_AXES)


def logical_to_spec(logical_axes: Sequence[Optional[str]], rules: Rules,
                    mesh: Optional[Mesh] = None,
                    shape: Optional[Sequence[int]] = None) -> PartitionSpec:
  """Maps logical dimension names to a `PartitionSpec`.

  Each logical name takes its rule's mesh axes, minus axes already used by an earlier
  dimension and, when `mesh` and `shape` are given, minus the trailing axes whose sizes do not
  divide that dimension.

  Args:
    logical_axes: one name (or None) per dimension.
    rules: the rule table.
    mesh: the mesh, for divisibility checks.
    shape: the array's shape, for divisibility checks.
  """
  table = {}
  for name, axes in rules:
    table.setdefault(name, _as_tuple(axes))
  used: set[str] = set()
  spec = []
  for dim, name in enumerate(logical_axes):
    axes = [a for a in table.get(name, ()) if a not in used] if name else []
    if mesh is not None and shape is not None:
      while axes and shape[dim] % math.prod(mesh.shape[a] for a in axes):
        axes.pop()
    used.update(axes)
    spec.append(None if not axes else axes[0] if len(axes) == 1 else tuple(axes))
  return PartitionSpec(*spec)


def logical_sharding(mesh: Mesh, logical_axes: Sequence[Optional[str]], rules: Rules,
                     shape: Optional[Sequence[int]] = None) -> NamedSharding:
  """`NamedSharding` for an array whose dimensions have the given logical names.

  Args:
    mesh: the device mesh.
    logical_axes: one name per dimension.
    rules: the rule table.
    shape: the array's shape (enables the divisibility fallback).
  """
  return NamedSharding(mesh, logical_to_spec(logical_axes, rules, mesh, shape))


def tree_shardings(abstract_tree: Any, mesh: Mesh, rules: Rules) -> Any:
  """Shardings for a tree of (possibly `nn.LogicallyPartitioned`) arrays or shape structs.

  Leaves without logical names are replicated.

  Args:
    abstract_tree: e.g. `jax.eval_shape(model.init, ...)` output; boxed leaves carry names.
    mesh: the device mesh.
    rules: the rule table.

  Returns:
    A tree of `NamedSharding` with the boxes removed (same structure as the unboxed tree).
  """
  def sharding_of(leaf):
    if isinstance(leaf, nn.LogicallyPartitioned):
      return logical_sharding(mesh, leaf.names, rules, leaf.value.shape)
    return NamedSharding(mesh, PartitionSpec())
  return jax.tree_util.tree_map(sharding_of, abstract_tree,
                                is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))


def batch_sharding(mesh: Mesh, rules: Rules) -> NamedSharding:
  """Sharding of `[batch, length]` input arrays."""
  return NamedSharding(mesh, logical_to_spec(BATCH_AXES, rules))


def data_parallel_size(mesh: Mesh, rules: Rules) -> int:
  """Number of shards the batch dimension is split into."""
  spec = logical_to_spec(BATCH_AXES, rules)[0]
  return math.prod(mesh.shape[a] for a in _as_tuple(spec))


def check_batch_size(global_batch_size: int, mesh: Mesh, rules: Rules,
                     name: str = "batch_size") -> None:
  """Raises a clear error when the global batch cannot be split over the mesh and hosts.

  Args:
    global_batch_size: rows per step over all hosts.
    mesh: the device mesh.
    rules: the rule table.
    name: what to call the value in the message (e.g. the gin parameter).
  """
  shards = data_parallel_size(mesh, rules)
  if global_batch_size % shards:
    raise ValueError(f"{name}={global_batch_size} is not divisible by the {shards} batch "
                     f"shards of mesh {dict(mesh.shape)}")
  if global_batch_size % jax.process_count():
    raise ValueError(f"{name}={global_batch_size} is not divisible by the "
                     f"{jax.process_count()} hosts")


def all_processes_agree(ok: bool) -> bool:
  """True when `ok` holds on every process (e.g. a restore that must succeed everywhere).

  Args:
    ok: this process's answer; every process must call this together.
  """
  if jax.process_count() == 1:
    return ok
  return bool(np.all(multihost_utils.process_allgather(np.asarray(ok))))


def host_local_to_global(local_batch: dict[str, np.ndarray], sharding: NamedSharding,
                         global_batch_size: int) -> dict[str, jax.Array]:
  """Assembles each host's slice of the batch into global arrays on the mesh.

  Host i must hold rows `[i * B / P, (i + 1) * B / P)` of the global batch of B rows
  (P = process count), which is what the project's data feeds produce.

  Args:
    local_batch: this host's rows, `[B / P, ...]` per feature.
    sharding: the batch sharding (`batch_sharding`).
    global_batch_size: B.
  """
  def to_global(x):
    global_shape = (global_batch_size,) + x.shape[1:]
    return jax.make_array_from_process_local_data(sharding, x, global_shape)
  return {k: to_global(np.asarray(v)) for k, v in local_batch.items()}


@contextlib.contextmanager
def sharding_context(mesh: Mesh, rules: Rules) -> Iterator[None]:
  """Makes `mesh` and `rules` visible to `nn.with_logical_constraint` inside the model.

  Trace (jit) the model's functions inside this context.

  Args:
    mesh: the device mesh.
    rules: logical axis rules.
  """
  set_mesh = getattr(jax, "set_mesh", None) or jax.sharding.use_mesh  # jax < 0.7: use_mesh
  with set_mesh(mesh), nn.logical_axis_rules(rules):
    yield
