"""The device suite's jax helpers (the jax parts: `device_suite.py`, `suite_eval.py`).

Run as a script, it prints what the torch parts need of our models without importing jax
themselves: for each (preset, overrides) in a JSON list, the Hugging Face `config.json` of that
shape and its parameter counts, as one JSON line.

  JAX_PLATFORMS=cpu python benchmarks/suite_jax.py '[["mistral_7b", {}]]'
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

import roofline
from instruct_pt import parallel
from instruct_pt.model import hf
from instruct_pt.model.config import get_preset

RULES = parallel.LOGICAL_AXIS_RULES


def describe_device() -> dict[str, Any]:
  """jax's version, backend and first device kind: a jax part's `Part(platform=...)`."""
  return {"jax": jax.__version__, "backend": jax.default_backend(),
          "device": jax.devices()[0].device_kind}


def one_device_mesh():
  """A (1, 1, 1) mesh of the first device: the suite measures one chip."""
  return parallel.create_mesh((1, 1, 1), allow_subset=True)


def memory_limit(smoke_limit: int) -> int:
  """Bytes a program may use on the device.

  Args:
    smoke_limit: what to answer where the device reports no limit (CPU).
  """
  stats = jax.devices()[0].memory_stats() or {}
  return int(stats.get("bytes_limit", smoke_limit))


def measure_ceilings(copy_elements: int, matmul_size: int,
                     dtype: Optional[str] = None) -> dict[str, Any]:
  """The two measured ceilings of the first device: `copy_bandwidth`, bytes read + written per
  second by an elementwise pass over a random array of `copy_elements` (large enough to dwarf
  the caches), and `matmul_flops` of a square `matmul_size` matmul; `matmul_dtype` names the
  dtype of both.

  Args:
    copy_elements: elements of the copied array.
    matmul_size: rows (= columns) of the matmul's operands.
    dtype: the dtype; None is bfloat16 on accelerators and float32 on CPU (the compute dtype
      of "auto" models).
  """
  dtype = jnp.dtype(dtype or ("float32" if jax.default_backend() == "cpu" else "bfloat16"))
  # Donated, so each pass writes into the buffer it read (a fresh output buffer per call
  # would time the first touch of its pages on CPU, not the copy).
  copy = jax.jit(lambda x: x + jnp.asarray(1, x.dtype), donate_argnums=0)
  buffers = [jax.random.normal(jax.random.key(2), (copy_elements,), dtype)]

  def one_pass():
    buffers[0] = copy(buffers[0])
    return buffers[0]
  copy_s = median_seconds(one_pass, 10)
  nbytes = buffers[0].nbytes
  a = jax.random.normal(jax.random.key(0), (matmul_size,) * 2, dtype)
  b = jax.random.normal(jax.random.key(1), (matmul_size,) * 2, dtype)
  matmul = jax.jit(lambda x, y: x @ y)
  matmul_s = median_seconds(lambda: matmul(a, b), 10)
  return {"copy_bandwidth": 2 * nbytes / copy_s,
          "matmul_flops": 2 * matmul_size ** 3 / matmul_s, "matmul_dtype": dtype.name}


def median_seconds(run: Callable[[], Any], repeats: int) -> float:
  """Median wall time of `run()` (waited for), after one untimed call.

  Args:
    run: the work; returns arrays to wait for.
    repeats: timed calls.
  """
  jax.block_until_ready(run())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(run())
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def program_bytes(compiled) -> int:
  """Device bytes a compiled program needs: arguments + outputs (less donated) + temps.

  Args:
    compiled: a `jax.stages.Compiled`.
  """
  m = compiled.memory_analysis()
  return (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes +
          m.temp_size_in_bytes)


def model_shapes(specs: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
  """For each model: `hf_config` (its Hugging Face `config.json`, float32), `params` and
  `matmul_params` (all parameters; those multiplied per token, as `roofline.ModelShape`
  counts them: the blocks' and the output projection's).

  Args:
    specs: (preset, ModelConfig overrides) pairs.
  """
  shapes = []
  for preset, overrides in specs:
    config = get_preset(preset, **overrides)
    shapes.append({"preset": preset, "hf_config": hf.hf_config_from_model(config),
                   "params": config.num_params(),
                   "matmul_params": roofline.ModelShape.from_config(config, 0).matmul_params})
  return shapes


if __name__ == "__main__":
  print(json.dumps(model_shapes(json.loads(sys.argv[1]))), flush=True)
