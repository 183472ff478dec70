"""Peak host memory of streaming a Hugging Face checkpoint onto the mesh.

  python benchmarks/import_memory.py --preset instructlm_1_3b --dir /tmp/hf_1b

Writes a random bfloat16 checkpoint of the preset's shape as sharded safetensors (once; reused
when `--dir` already holds it), then imports it with `hf.load_params` in a fresh
subprocess and reads that process's peak resident memory (VmHWM). On a CPU backend the
imported float32 parameters themselves live in host memory, so the figure that matters is the
transient overhead: peak - (RSS before the import + bytes of the imported parameters), shown
next to the largest single tensor and the whole checkpoint. Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import ml_dtypes
import numpy as np

from instruct_pt.model import hf, readers
from instruct_pt.model.config import get_preset, preset_names

GIB = 2**30


def _status_bytes(key: str) -> int:
  with open("/proc/self/status", encoding="utf-8") as f:
    for line in f:
      if line.startswith(key + ":"):
        return int(line.split()[1]) * 1024
  raise KeyError(key)


def write_checkpoint(preset: str, out_dir: str, shard_bytes: int = GIB) -> None:
  """Writes a random bfloat16 HF checkpoint of `preset`'s shape (skipped if present)."""
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel
  config = get_preset(preset)
  if os.path.exists(os.path.join(out_dir, "model.safetensors.index.json")):
    return
  os.makedirs(out_dir, exist_ok=True)
  rng = np.random.default_rng(0)
  shapes = {name: hf.hf_tensor_shape(path, config)
            for name, (path, _) in hf.expected_hf_tensors(config).items()}
  shard, size, weight_map, index = {}, 0, {}, 1
  names = list(shapes)
  for i, name in enumerate(names):
    shard[name] = (rng.standard_normal(shapes[name], np.float32) * 0.02).astype(
        ml_dtypes.bfloat16)
    size += shard[name].nbytes
    if size >= shard_bytes or i == len(names) - 1:
      filename = f"model-{index:05d}.safetensors"
      save_file(shard, os.path.join(out_dir, filename), metadata={"format": "pt"})
      weight_map.update({n: filename for n in shard})
      shard, size, index = {}, 0, index + 1
  with open(os.path.join(out_dir, "model.safetensors.index.json"), "w", encoding="utf-8") as f:
    json.dump({"weight_map": weight_map}, f)
  with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
    json.dump(hf.hf_config_from_model(config, torch_dtype="bfloat16"), f)


def measure_import(model_dir: str) -> dict[str, float]:
  """Imports `model_dir` onto all local devices; returns memory figures in bytes."""
  import jax  # pylint: disable=import-outside-toplevel
  from instruct_pt import parallel  # pylint: disable=import-outside-toplevel
  jax.devices()  # initialise the backend before the baseline
  source = readers.SafetensorsSource(model_dir)
  config = hf.model_config_from_hf(source.hf_config, model_dir)
  baseline = _status_bytes("VmRSS")
  params = hf.load_params(source, config, parallel.create_mesh((1, -1, 1)),
                                   parallel.LOGICAL_AXIS_RULES, progress=False)
  jax.block_until_ready(params)
  param_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(params))
  largest = max(np.prod(s) for s in (hf.hf_tensor_shape(p, config)
                                     for p, _ in hf.expected_hf_tensors(config).values()))
  return {"peak": _status_bytes("VmHWM"), "baseline": baseline, "params": param_bytes,
          "largest_tensor_f32": 4 * float(largest),
          "checkpoint": sum(os.path.getsize(os.path.join(model_dir, f))
                            for f in os.listdir(model_dir) if f.endswith(".safetensors"))}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--preset", default="instructlm_1_3b", choices=preset_names())
  parser.add_argument("--dir", default="/tmp/instruct_pt_import_memory")
  parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  model_dir = os.path.join(args.dir, args.preset)
  if args.measure:
    print(json.dumps(measure_import(model_dir)))
    return
  write_checkpoint(args.preset, model_dir)
  result = subprocess.run([sys.executable, __file__, "--preset", args.preset, "--dir",
                           args.dir, "--measure"], capture_output=True, text=True, check=True)
  m = json.loads(result.stdout.strip().splitlines()[-1])
  transient = m["peak"] - m["baseline"] - m["params"]
  print(f"checkpoint {m['checkpoint'] / GIB:.2f} GiB (bfloat16), imported params "
        f"{m['params'] / GIB:.2f} GiB (float32), largest tensor {m['largest_tensor_f32'] / GIB:.3f}"
        f" GiB (float32)")
  print(f"peak RSS {m['peak'] / GIB:.2f} GiB = baseline {m['baseline'] / GIB:.2f} + params "
        f"{m['params'] / GIB:.2f} + transient {transient / GIB:.3f} GiB")
  print(f"{args.preset}: import transient host memory {transient / GIB:.3f} GiB = "
        f"{transient / m['largest_tensor_f32']:.2f}x the largest tensor, "
        f"{transient / m['params']:.3f}x the model")


if __name__ == "__main__":
  main()
