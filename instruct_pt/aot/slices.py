"""TPU slices by the names gcloud takes, and their devices on any host, through libtpu.

`parse_slice("v5p-32")` maps an accelerator type (`gcloud compute tpus tpu-vm create
--accelerator-type`) to its topology: the generation, the chips, their arrangement
("v5p:2x2x4") and the chips per host. The number in a v4 or v5p name counts TensorCores (two per
chip, run as one megacore device); in a v5litepod (v5e) or v6e name it counts chips. A
topology may also be given as it is (`v5p:2x2x4`).

`topology_devices(slice)` returns the slice's devices from libtpu's topology description
(`jax.experimental.topologies`): devices a program can be compiled for, on a CPU host too,
though nothing can run on them. libtpu probes cloud metadata when it starts, and holds a lock
file so that one process at a time owns the TPU; on a host without a TPU both are switched off
first (`TPU_SKIP_MDS_QUERY` and friends, `ALLOW_MULTIPLE_LIBTPU_LOAD`).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import math
import os
import re
from typing import Any, Optional

from instruct_pt import hardware


@dataclasses.dataclass(frozen=True)
class Generation:
  """One TPU generation.

  Attributes:
    names: the prefixes of its accelerator types (the first is the canonical one).
    topology: its prefix in topology names ("v5p" in "v5p:2x2x4").
    cores_per_chip: TensorCores per chip; the number in its accelerator types counts
      TensorCores when this is 2.
    dims: dimensions of its chip arrangement (3 for the 3D tori of v4 / v5p).
    chips: the chip counts its slices come in.
    chip_config: libtpu's chip configuration ("megacore": one device per chip).
  """

  names: tuple[str, ...]
  topology: str
  cores_per_chip: int
  dims: int
  chips: tuple[int, ...]
  chip_config: Optional[str] = None


GENERATIONS = (
    Generation(("v4",), "v4", 2, 3, tuple(2**i for i in range(2, 12)), "megacore"),
    Generation(("v5p",), "v5p", 2, 3, tuple(2**i for i in range(2, 13)), "megacore"),
    Generation(("v5litepod", "v5e"), "v5e", 1, 2, (1, 4, 8, 16, 32, 64, 128, 256)),
    Generation(("v6e",), "v6e", 1, 2, (1, 4, 8, 16, 32, 64, 128, 256)),
)
# Chips per host: 4, except the single-host slices of 1 and 8 chips (v5e, v6e).
_HOST_CHIPS = {1: (1, 1, 1), 8: (2, 4, 1)}


@dataclasses.dataclass(frozen=True)
class Slice:
  """A TPU slice (or several of the same type, joined over the data-center network).

  Attributes:
    name: its accelerator type, e.g. "v5p-32".
    generation: the TPU generation.
    shape: the chip arrangement, e.g. (2, 2, 4).
    num_slices: slices of this type in the job.
  """

  name: str
  generation: Generation
  shape: tuple[int, ...]
  num_slices: int = 1

  @property
  def chips(self) -> int:
    """Chips of one slice."""
    return math.prod(self.shape)

  @property
  def topology(self) -> str:
    """libtpu's name of the arrangement, e.g. "v5p:2x2x4"."""
    return f"{self.generation.topology}:{'x'.join(map(str, self.shape))}"

  @property
  def chips_per_host(self) -> tuple[int, int, int]:
    """The chips of one host, as an arrangement."""
    if self.generation.dims == 2 and self.chips in _HOST_CHIPS:
      return _HOST_CHIPS[self.chips]
    return (2, 2, 1) if self.chips >= 4 else (1, 1, 1)

  @property
  def hosts(self) -> int:
    """Hosts (TPU VM workers) of one slice."""
    return self.chips // math.prod(self.chips_per_host)

  @property
  def label(self) -> str:
    """The name, with the slice count when there are several ("2xv5p-32")."""
    return self.name if self.num_slices == 1 else f"{self.num_slices}x{self.name}"


def known_slices() -> list[str]:
  """Every accelerator type `parse_slice` takes, canonical names only."""
  return [f"{g.names[0]}-{chips * g.cores_per_chip}" for g in GENERATIONS for chips in g.chips]


def _arrangement(chips: int, dims: int) -> tuple[int, ...]:
  """Chips as gcloud arranges them: doubling the last of the smallest dimensions from
  2x2(x1) (v4-8: 2x2x1, v4-16: 2x2x2, v4-32: 2x2x4, v4-64: 2x4x4, ...)."""
  if chips == 1:
    return (1,) * dims
  shape = [2, 2] + [1] * (dims - 2)
  while math.prod(shape) < chips:
    smallest = min(shape)
    last = max(i for i, size in enumerate(shape) if size == smallest)
    shape[last] *= 2
  return tuple(shape)


def parse_slice(name: str, num_slices: int = 1) -> Slice:
  """The slice of an accelerator type ("v4-8", "v5litepod-16", "v5p-64", "v6e-8", ...) or of
  a topology ("v5p:2x2x4").

  Args:
    name: the accelerator type or topology.
    num_slices: slices of this type in the job (multi-slice over DCN).

  Raises:
    ValueError: an unknown name, listing the known ones.
  """
  if num_slices < 1:
    raise ValueError(f"--num_slices={num_slices} must be at least 1")
  text = name.strip().lower()
  topology = re.fullmatch(r"(\w+):(\d+(?:x\d+)*)", text)
  typed = re.fullmatch(r"([a-z0-9]+)-(\d+)", text)
  for generation in GENERATIONS:
    if topology and topology.group(1) in generation.names + (generation.topology,):
      shape = tuple(int(d) for d in topology.group(2).split("x"))
      if len(shape) == generation.dims and math.prod(shape) in generation.chips:
        label = f"{generation.names[0]}-{math.prod(shape) * generation.cores_per_chip}"
        return Slice(label, generation, shape, num_slices)
    if typed and typed.group(1) in generation.names:
      cores = int(typed.group(2))
      chips = cores // generation.cores_per_chip
      if cores % generation.cores_per_chip == 0 and chips in generation.chips:
        canonical = f"{generation.names[0]}-{cores}"
        return Slice(canonical, generation, _arrangement(chips, generation.dims), num_slices)
  examples = ", ".join(n for n in known_slices() if int(n.split("-")[1]) <= 64)
  raise ValueError(f"unknown TPU slice {name!r}; give an accelerator type ({examples}, ... "
                   f"up to v4-4096, v5p-8192, v5litepod-256, v6e-256) or a topology such "
                   f"as v5p:2x2x4")


def libtpu_version() -> str:
  """The installed libtpu's version, checked against the one this jax was built with.

  Raises:
    ValueError: libtpu is missing or does not match jax, with the command that installs the
      right one.
  """
  jax_version = importlib.metadata.version("jax")
  install = f"pip install 'jax[tpu]=={jax_version}' (or pip install -e '.[tpu]')"
  try:
    installed = importlib.metadata.version("libtpu")
  except importlib.metadata.PackageNotFoundError:
    raise ValueError(f"compiling for a TPU needs libtpu, which is not installed: {install}") \
        from None
  wanted = [re.search(r"libtpu\s*==\s*([\w.*]+)", r) for r in
            importlib.metadata.requires("jax") or [] if r.startswith("libtpu")]
  pins = [w.group(1) for w in wanted if w]
  if pins and not any(installed == pin or (pin.endswith(".*") and
                                           installed.startswith(pin[:-1])) for pin in pins):
    raise ValueError(f"libtpu {installed} does not match jax {jax_version}, which needs libtpu "
                     f"{pins[0]}: {install}")
  return installed


def topology_devices(tpu: Slice) -> list[Any]:
  """The devices of `tpu` (all its slices), in libtpu's order, for compiling only.

  Args:
    tpu: the slice.

  Raises:
    ValueError: libtpu missing or mismatched (`libtpu_version`).
  """
  libtpu_version()
  if not hardware.has_tpu():
    # No metadata server to ask: say what it would have said. No TPU to guard: let several
    # processes load libtpu at once (it otherwise holds /tmp/libtpu_lockfile).
    os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
    os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
    os.environ.setdefault("TPU_ACCELERATOR_TYPE", tpu.name)
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  from jax.experimental import topologies  # pylint: disable=import-outside-toplevel
  options = {"chips_per_host_bounds": tpu.chips_per_host, "num_slices": tpu.num_slices}
  if tpu.generation.chip_config:
    options["chip_config_name"] = tpu.generation.chip_config
  return list(topologies.get_topology_desc(topology_name=tpu.topology, platform="tpu",
                                           **options).devices)


def chip(tpu: Slice, devices: list[Any]) -> hardware.Chip:
  """The `hardware.Chip` of the slice's devices.

  Raises:
    ValueError: a device kind missing from `hardware.CHIPS`.
  """
  found = hardware.chip_of(devices[0].device_kind)
  if found is None:
    raise ValueError(f"{tpu.name}: device kind {devices[0].device_kind!r} is not in "
                     f"instruct_pt.hardware.CHIPS")
  return found
