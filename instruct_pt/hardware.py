"""What each accelerator chip offers, and keeping an installed libtpu quiet on hosts without TPUs.

`CHIPS` is the one table of per-device peak FLOP/s (dense bfloat16, vendor data sheets);
`chip_of(device_kind)` looks a JAX device kind up in it. A JAX device is one chip on every TPU
generation listed (v4 and v5p run their two TensorCores as one megacore device) and one GPU.
The HBM a program may use is the compiler's figure (`instruct_pt.aot.compiler.available_hbm`),
not a data sheet's.

`prefer_cpu_without_tpu()` stops JAX from starting libtpu on a machine that has libtpu
installed (the `tpu` extra, which also compiles for TPU slices on any host) but no TPU: JAX
would otherwise print libtpu's start-up errors and spend seconds before falling back to the CPU.

`compilation_cache(directory)` scopes JAX's persistent compilation cache (a process-wide
setting) to a job that compiles the same programs in several runs, and puts it back after.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import importlib.util
import os
import sys
from typing import Iterator, Optional

@dataclasses.dataclass(frozen=True)
class Chip:
  """One accelerator device.

  Attributes:
    kind: a substring of the JAX `device_kind` that names it (the first match wins).
    peak_flops: dense bfloat16 FLOP/s.
  """

  kind: str
  peak_flops: float


# Longer names first where one contains another ("TPU v5 lite" before "TPU v5").
CHIPS = (
    Chip("TPU v6 lite", 918e12),   # v6e (Trillium)
    Chip("TPU v5 lite", 197e12),   # v5e
    Chip("TPU v5e", 197e12),
    Chip("TPU v5", 459e12),        # v5p
    Chip("TPU v4", 275e12),
    Chip("TPU v3", 123e12),
    Chip("H200", 989e12),
    Chip("H100 PCIe", 756e12),
    Chip("H100", 989e12),          # SXM
    Chip("A100", 312e12),
    Chip("L4", 121e12),
    Chip("A10G", 70e12),
)


def chip_of(device_kind: str) -> Optional[Chip]:
  """The `CHIPS` entry of a JAX device kind (e.g. "TPU v5 lite"), or None for an unknown one.

  Args:
    device_kind: `jax.Device.device_kind`.
  """
  for chip in CHIPS:
    if chip.kind.lower() in device_kind.lower():
      return chip
  return None


def has_tpu() -> bool:
  """Whether this machine has TPU chips (Cloud TPU VMs expose them as /dev/accel* or, from
  v5e on, as VFIO devices)."""
  return bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))


def prefer_cpu_without_tpu() -> bool:
  """Keeps JAX off libtpu when libtpu is installed but the machine has no TPU.

  Sets JAX's platforms to "cpu" unless the user chose them (`JAX_PLATFORMS`), a TPU is
  present, or a CUDA plugin is installed (a GPU machine keeps JAX's own choice). Call it
  before JAX starts a backend; JAX need not be imported yet.

  Returns:
    True when it chose the CPU.
  """
  if os.environ.get("JAX_PLATFORMS") or importlib.util.find_spec("libtpu") is None:
    return False
  if has_tpu() or any(importlib.util.find_spec(f"jax_cuda{v}_plugin") for v in (12, 13)):
    return False
  os.environ["JAX_PLATFORMS"] = "cpu"
  if "jax" in sys.modules:  # imported already: its config read the variable at import
    sys.modules["jax"].config.update("jax_platforms", "cpu")
  return True


@contextlib.contextmanager
def compilation_cache(directory: str) -> Iterator[None]:
  """JAX's persistent compilation cache in `directory` while the block runs.

  A cache the user set (`JAX_COMPILATION_CACHE_DIR`, `jax.config`) is kept as it is. Otherwise
  the setting is put back after the block and the cache reset, so later compilations in the
  process neither read nor write `directory`.

  Args:
    directory: where the cache lives (created by JAX on first use).
  """
  import jax  # pylint: disable=import-outside-toplevel
  from jax.experimental.compilation_cache import compilation_cache as cache  # pylint: disable=import-outside-toplevel
  if jax.config.jax_compilation_cache_dir:
    yield
    return
  jax.config.update("jax_compilation_cache_dir", directory)
  try:
    yield
  finally:
    jax.config.update("jax_compilation_cache_dir", None)
    cache.reset_cache()
