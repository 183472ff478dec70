"""What the device suite's parts share: sizes (real and --smoke), the per-part JSON, helpers."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import time
from typing import Any, Callable, Optional

import jax
import numpy as np

from instruct_pt import parallel

RULES = parallel.LOGICAL_AXIS_RULES
TARGETS = {"mfu": 0.45, "vs_transformers": 3.0, "roofline": 0.60}  # issue #15


@dataclasses.dataclass(frozen=True)
class Sizes:
  """What each part measures: the real sizes on an accelerator, toy ones with --smoke."""
  train_cases: tuple[tuple[str, str, str], ...]  # (preset, attention, remat), in priority order
  train_seq: int
  train_max_batch: int
  train_steps: int
  train_case_seconds: float  # a case is started only with this much budget left
  synth_preset: str
  synth_overrides: dict
  prompt_lengths: tuple[int, int]
  new_tokens: int
  synth_batch: int
  synth_max_batch: int
  prefill_row_len: int
  eval_models: tuple[str, ...]
  eval_requests: int
  eval_row_len: int
  eval_rows: int
  copy_elements: int
  matmul_size: int


FULL = Sizes(
    # Estimated at about a minute each on an H200 (two quick probes, the autotuned compile,
    # six steps): the 150 s cap runs the first two or three; `--caps train=580` all of them.
    train_cases=(("instructlm_1_3b", "cudnn", "none"), ("instructlm_1_3b", "xla", "none"),
                 ("instructlm_1_3b", "cudnn", "full"), ("instructlm_500m", "cudnn", "none"),
                 ("instructlm_1_3b", "xla", "full"), ("instructlm_500m", "cudnn", "full")),
    train_seq=2048, train_max_batch=128, train_steps=5, train_case_seconds=45,
    synth_preset="mistral_7b", synth_overrides={}, prompt_lengths=(1000, 3500),
    new_tokens=400, synth_batch=32, synth_max_batch=256, prefill_row_len=4096,
    eval_models=("smollm2_135m", "instructlm_1_3b"), eval_requests=1000, eval_row_len=2048,
    eval_rows=16, copy_elements=2**30, matmul_size=8192)

# CPU: "dot_product" stands in for cuDNN (the same jax.nn.dot_product_attention call).
SMOKE = Sizes(
    train_cases=(("tiny", "dot_product", "full"),), train_seq=64, train_max_batch=4,
    train_steps=2, train_case_seconds=2,
    synth_preset="tiny", synth_overrides={"sliding_window": 48}, prompt_lengths=(20, 60),
    new_tokens=8, synth_batch=4, synth_max_batch=8, prefill_row_len=128,
    eval_models=("tiny",), eval_requests=24, eval_row_len=256, eval_rows=4,
    copy_elements=2**20, matmul_size=256)


def sizes_for(smoke: bool) -> Sizes:
  """SMOKE or FULL.

  Args:
    smoke: toy sizes.
  """
  return SMOKE if smoke else FULL


class Part:
  """The JSON of one part: rows of measurements, notes, errors; rewritten after each change.

  Args:
    name: the part.
    out_dir: where `name.json` goes.
    budget: seconds from now until the part stops starting measurements.
    smoke: toy sizes.
  """

  def __init__(self, name: str, out_dir: str, budget: float, smoke: bool):
    self.path = os.path.join(out_dir, f"{name}.json")
    self.deadline = time.monotonic() + budget
    self.start = time.monotonic()
    device = jax.devices()[0]
    self.data: dict[str, Any] = {
        "part": name, "smoke": smoke, "jax": jax.__version__, "backend": jax.default_backend(),
        "device": device.device_kind, "budget_s": budget, "finished": False, "rows": [],
        "notes": [], "errors": []}
    self.save()

  def remaining(self) -> float:
    """Seconds left before the part's deadline."""
    return self.deadline - time.monotonic()

  def add(self, row: dict[str, Any]) -> None:
    """Records one measurement.

    Args:
      row: its figures (JSON-serialisable).
    """
    self.data["rows"].append(row)
    self.save()

  def note(self, text: str) -> None:
    """Records (and prints) a remark, e.g. a case not run.

    Args:
      text: the remark.
    """
    print(f"  note: {text}", flush=True)
    self.data["notes"].append(text)
    self.save()

  def error(self, case: str, error: BaseException) -> None:
    """Records (and prints) a case that failed; the part goes on with the next.

    Args:
      case: which case.
      error: what it raised.
    """
    text = " ".join(f"{type(error).__name__}: {error}".split())[:400]
    print(f"  error in {case}: {text}", flush=True)
    self.data["errors"].append({"case": case, "error": text})
    self.save()

  def each(self, cases: dict[str, Any], seconds_needed: float,
           measure: Callable[[Any], None]) -> None:
    """Runs `measure(case)` for each case while the budget lasts; a case that fails is
    recorded and the next one runs.

    Args:
      cases: the cases' values by name, in priority order.
      seconds_needed: a case starts only with this much budget left (else a note says so).
      measure: measures one case and `add`s its row.
    """
    for name, case in cases.items():
      if self.remaining() < seconds_needed:
        self.note(f"{name}: not run (time cap)")
        continue
      print(f"{self.data['part']}: {name}", flush=True)
      try:
        measure(case)
      except Exception as e:  # pylint: disable=broad-except
        self.error(name, e)
      gc.collect()

  def save(self, finished: bool = False) -> None:
    """Rewrites the JSON (atomically).

    Args:
      finished: the part ran to its end.
    """
    self.data["finished"] = finished
    self.data["elapsed_s"] = round(time.monotonic() - self.start, 1)
    with open(self.path + ".tmp", "w", encoding="utf-8") as f:
      json.dump(self.data, f, indent=1)
    os.replace(self.path + ".tmp", self.path)


def read_part(out_dir: str, name: str) -> Optional[dict[str, Any]]:
  """A part's JSON, or None when it did not write one.

  Args:
    out_dir: the suite's output directory.
    name: the part.
  """
  path = os.path.join(out_dir, f"{name}.json")
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    return json.load(f)


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


def is_out_of_memory(error: BaseException) -> bool:
  """Whether `error` is XLA running out of device memory.

  Args:
    error: the exception.
  """
  text = str(error)
  return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


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


def transformers_model(config) -> tuple[Any, str]:
  """A random-weight transformers model of `config`'s shape (bfloat16 and sdpa on CUDA,
  float32 on CPU), built on its device; returns it and the device name.

  Args:
    config: our `ModelConfig`.
  """
  import tempfile  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  from instruct_pt.model import hf  # pylint: disable=import-outside-toplevel
  device = "cuda" if torch.cuda.is_available() else "cpu"
  dtype = torch.bfloat16 if device == "cuda" else torch.float32
  with tempfile.TemporaryDirectory() as directory:
    with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
      json.dump(hf.hf_config_from_model(config, torch_dtype=str(dtype).split(".")[-1]), f)
    hf_config = transformers.AutoConfig.from_pretrained(directory)
  with torch.device(device):
    model = transformers.AutoModelForCausalLM.from_config(hf_config, dtype=dtype,
                                                          attn_implementation="sdpa")
  return model.eval(), device
