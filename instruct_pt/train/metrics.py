"""Training metrics: JSONL and TensorBoard writers, device peak FLOPs and MFU.

MFU (model FLOPs utilisation) = achieved model FLOPs / peak FLOPs of the devices, with
model FLOPs per token from `ModelConfig.flops_per_token`:

    6 * N_matmul + 12 * layers * heads * head_dim * seq_len

(forward + backward of every weight matmul, plus the attention score/value products; PaLM,
appendix B). Rematerialisation is not counted, so MFU measures useful work. Peaks are the
dense bfloat16 figures of the vendor data sheets (`instruct_pt.hardware.CHIPS`); on a device
kind not in the table (e.g. CPUs) the peak is measured once with a large float32 matmul, so
CPU MFU is relative to what XLA reaches on this machine.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
from etils import epath

from instruct_pt import hardware

_measured_peak: dict[str, float] = {}


def device_peak_flops(device: Optional[jax.Device] = None) -> float:
  """Peak FLOP/s of one device: the data-sheet bfloat16 figure, or measured when unknown.

  Args:
    device: the device; defaults to `jax.devices()[0]`.
  """
  device = device or jax.devices()[0]
  kind = device.device_kind
  chip = hardware.chip_of(kind)
  if chip is not None:
    return chip.peak_flops
  if kind not in _measured_peak:
    _measured_peak[kind] = _measure_matmul_flops(device)
  return _measured_peak[kind]


def _measure_matmul_flops(device: jax.Device, size: int = 1024, repeats: int = 5) -> float:
  x = jax.device_put(jnp.ones((size, size), jnp.float32), device)
  matmul = jax.jit(lambda a: a @ a)
  matmul(x).block_until_ready()
  start = time.perf_counter()
  for _ in range(repeats):
    y = matmul(x)
  y.block_until_ready()
  return 2 * size ** 3 * repeats / (time.perf_counter() - start)


def mfu(tokens_per_second: float, flops_per_token: float, num_devices: int,
        peak_flops_per_device: float) -> float:
  """Model FLOPs utilisation as a fraction (0..1).

  Args:
    tokens_per_second: training throughput over all devices.
    flops_per_token: from `ModelConfig.flops_per_token`.
    num_devices: devices the step runs on.
    peak_flops_per_device: from `device_peak_flops`.
  """
  return tokens_per_second * flops_per_token / (num_devices * peak_flops_per_device)


class MetricsWriter:
  """Appends metrics to a JSONL file and TensorBoard event files.

  Only process 0 writes. When a run resumes at step k, lines logged after k by the interrupted
  run are dropped first, so the file reads as one uninterrupted run. Paths may be `gs://`.

  Args:
    path: the JSONL file (a run's `run_dir.RunDir.metrics`).
    tensorboard_dir: the TensorBoard log directory (a run's `RunDir.tensorboard`).
    start_step: the step training resumes from (0 for a fresh run).
  """

  def __init__(self, path: epath.PathLike, tensorboard_dir: epath.PathLike,
               start_step: int = 0):
    self._enabled = jax.process_index() == 0
    self._path = epath.Path(path)
    self._tensorboard = None
    if not self._enabled:
      return
    self._path.parent.mkdir(parents=True, exist_ok=True)
    self._drop_lines_after(start_step)
    try:
      from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
      self._tensorboard = SummaryWriter(str(tensorboard_dir),
                                        purge_step=start_step + 1 if start_step else None)
    except ImportError:
      logging.warning("tensorboardX is not installed: metrics go to metrics.jsonl only")

  def _drop_lines_after(self, step: int) -> None:
    if not self._path.exists():
      return
    lines = self._path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
      self._path.write_text("".join(kept))

  def write(self, step: int, metrics: dict[str, Any]) -> None:
    """Writes one record `{"step": step, **metrics}`.

    Args:
      step: the training step the metrics belong to.
      metrics: scalar values.
    """
    if not self._enabled:
      return
    record = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
    with self._path.open("a") as f:
      f.write(json.dumps(record) + "\n")
    if self._tensorboard is not None:
      for name, value in metrics.items():
        self._tensorboard.add_scalar(name, float(value), step)
      self._tensorboard.flush()

  def close(self) -> None:
    """Flushes and closes the TensorBoard writer."""
    if self._tensorboard is not None:
      self._tensorboard.close()
