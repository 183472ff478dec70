"""One part of the device suite per call; `benchmarks/device_suite.sh` runs them all.

  python benchmarks/device_suite.py PART --out DIR [--smoke] [--budget SECONDS]

PART is one of:

* `env`: jax / jaxlib version, backend, device kind and memory; the measured copy bandwidth
  (the decode roofline's denominator) and matmul rate of one device.
* `train` (part 1): the real train step (`instruct_pt.train.loop.make_train_step`) of
  `instructlm_1_3b` and `instructlm_500m` in bfloat16 at sequence 2048, per attention kernel
  (cuDNN flash vs XLA) and remat policy (none vs full), each at the largest batch whose
  compiled step fits the device memory (found from `memory_analysis` of cheap compiles):
  tokens/s and MFU (`instruct_pt.train.metrics`: data-sheet peak, the formula in docs/design.md).
* `synthesis` (part 2): our `Engine` on a Mistral-7B-shaped random bfloat16 model, prompts of
  1k-3.5k tokens, 400 new tokens, batch 32 with each decode layout (scanned / unrolled
  layers, `ModelConfig.decode_layers`) and the largest batch that fits with the faster one:
  tokens/s, prefill s, decode ms/step, the fraction of the decode roofline (weights + live KV
  cache read per step / measured copy bandwidth), and what the compiled decode loop copies
  per step (`hlo_copies.py`).
* `eval` (part 3): `suite_eval.py`.
* `summary`: reads every part's JSON and prints the table (also written to summary.md).

The torch parts (`synthesis_hf`, `eval_hf`: transformers' `generate`, lm-eval's `hf` model)
run in `suite_torch.py`, in processes without jax.

Each part writes `DIR/PART.json` after every measurement, so a part stopped at its time cap
keeps what it measured; `--budget` is the part's own deadline for starting a measurement.
`--smoke` runs the same code at toy sizes (CPU, seconds). Runs on one device.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import os
import platform
import sys
import time
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

import hlo_copies
import roofline
import suite_eval
from instruct_pt import parallel
from instruct_pt.model import store
from instruct_pt.model.config import get_preset
from instruct_pt.model.transformer import Decoder
from instruct_pt.model.generate import Engine, GenerationStats, SamplingConfig
from instruct_pt.train import loop, metrics, optim
from instruct_pt.train import state as state_lib
from suite_common import (TARGETS, Part, Sizes, is_out_of_memory, read_part, sizes_for,
                          synthesis_prompts)
from suite_jax import (RULES, describe_device, measure_ceilings, memory_limit, one_device_mesh,
                       program_bytes)


# ------------------------------------------------------------------------------------ env

def run_env(part: Part, sizes: Sizes, out_dir: str) -> None:
  """Versions, device, memory, and the two measured ceilings (copy bandwidth, matmul rate).

  Args:
    part: where the results go.
    sizes: the suite's sizes.
    out_dir: the suite's output directory.
  """
  del out_dir
  device = jax.devices()[0]
  versions = {}
  for name in ("jaxlib", "flax", "optax", "orbax-checkpoint", "torch", "transformers",
               "lm_eval"):
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  part.data.update({
      "python": platform.python_version(), "versions": versions,
      "num_devices": jax.device_count(), "memory_bytes": memory_limit(0) or None,
      **measure_ceilings(sizes.copy_elements, sizes.matmul_size),
      "peak_flops_datasheet": metrics.device_peak_flops(device)})
  print(f"jax {jax.__version__} ({jax.default_backend()}) on {jax.device_count()} x "
        f"{device.device_kind}; copy {part.data['copy_bandwidth'] / 1e9:,.0f} GB/s, "
        f"{part.data['matmul_dtype']} matmul {part.data['matmul_flops'] / 1e12:,.1f} TFLOP/s",
        flush=True)


# ---------------------------------------------------------------------------------- train

class _TrainBench:
  """One train-step configuration on one device: its state, batches, compiled steps.

  Args:
    preset: model preset.
    attention: `ModelConfig.attention_impl`.
    remat: `ModelConfig.remat_policy`.
    sizes: the suite's sizes (sequence length).
  """

  def __init__(self, preset: str, attention: str, remat: str, sizes: Sizes):
    dtype = "auto" if jax.default_backend() == "cpu" else "bfloat16"
    self.config = get_preset(preset, dtype=dtype, attention_impl=attention,
                             remat_policy=remat, max_seq_len=sizes.train_seq)
    self.seq_len = sizes.train_seq
    self.mesh = one_device_mesh()
    self.model = Decoder(self.config)
    self.tx, self.schedule = optim.make_optimizer(optim.OptimizerConfig(), 100)
    self.state, self.shardings = state_lib.create_train_state(
        self.model, self.tx, jax.random.key(0), self.mesh, RULES)
    self.batch_sharding = parallel.batch_sharding(self.mesh, RULES)
    self._compiled = {}

  def batch(self, rows: int) -> dict[str, jax.Array]:
    """Random tokens, all weighted."""
    tokens = np.random.default_rng(rows).integers(0, self.config.vocab_size,
                                                  (rows, self.seq_len + 1), np.int32)
    return jax.device_put({"decoder_input_tokens": tokens[:, :-1],
                           "decoder_target_tokens": tokens[:, 1:],
                           "decoder_loss_weights": np.ones((rows, self.seq_len), np.float32)},
                          self.batch_sharding)

  def compile(self, rows: int):
    """The compiled step for `rows` rows."""
    if rows not in self._compiled:
      config = loop.TrainConfig(num_steps=100, batch_size=rows, seq_len=self.seq_len)
      step = jax.jit(loop.make_train_step(self.model, self.tx, self.schedule, config),
                     in_shardings=(self.shardings, self.batch_sharding),
                     out_shardings=(self.shardings, None), donate_argnums=(0,))
      abstract = {name: jax.ShapeDtypeStruct((rows, self.seq_len), dtype,
                                             sharding=self.batch_sharding)
                  for name, dtype in (("decoder_input_tokens", jnp.int32),
                                      ("decoder_target_tokens", jnp.int32),
                                      ("decoder_loss_weights", jnp.float32))}
      with parallel.sharding_context(self.mesh, RULES):
        self._compiled[rows] = step.lower(self.state, abstract).compile()
    return self._compiled[rows]


def _train_case(part: Part, sizes: Sizes, preset: str, attention: str, remat: str, batch: int,
                limit: int) -> None:
  """Times one configuration's train step at its fixed batch (smaller if the compiled step
  does not fit `limit`, or runs out of memory).

  The row is written when the case starts and after its compile, so a case stopped at the
  part's cap still reports how far it got.
  """
  start = time.perf_counter()
  row = {"case": f"{preset} attention={attention} remat={remat}", "preset": preset,
         "attention": attention, "remat": remat, "seq_len": sizes.train_seq, "batch": batch,
         "limit_gib": limit / 2**30, "stage": "compiling"}
  part.add(row)
  bench = _TrainBench(preset, attention, remat, sizes)
  row["dtype"] = bench.config.compute_dtype
  step = bench.compile(batch)
  while program_bytes(step) > limit and batch > 1:  # too big: scale down
    batch = max(1, int(batch * limit / program_bytes(step)))
    step = bench.compile(batch)
  row.update(batch=batch, stage="first step", compile_s=time.perf_counter() - start,
             program_gib=program_bytes(step) / 2**30)
  part.save()
  while True:
    try:
      step, data = bench.compile(batch), bench.batch(batch)
      state, out = step(bench.state, data)  # the first run (allocation, autotuned kernels)
      jax.block_until_ready(out)
      timed = time.perf_counter()
      for _ in range(sizes.train_steps):
        state, out = step(state, data)
      jax.block_until_ready(out)
      seconds = (time.perf_counter() - timed) / sizes.train_steps
      break
    except Exception as e:  # pylint: disable=broad-except
      if not is_out_of_memory(e) or batch <= 1:
        raise
      part.note(f"{row['case']}: batch {batch} ran out of memory; retrying at "
                f"{batch * 3 // 4}")
      batch = batch * 3 // 4
      del bench
      gc.collect()
      bench = _TrainBench(preset, attention, remat, sizes)  # the failed step took the state
  tokens_per_s = batch * sizes.train_seq / seconds
  peak = metrics.device_peak_flops(bench.mesh.devices.flat[0])
  row.update({"stage": "done", "batch": batch, "step_ms": 1e3 * seconds,
              "tokens_per_s": tokens_per_s,
              "mfu": metrics.mfu(tokens_per_s, bench.config.flops_per_token(sizes.train_seq),
                                 1, peak),
              "peak_flops": peak, "program_gib": program_bytes(step) / 2**30,
              "case_s": time.perf_counter() - start, "loss": float(out["loss"])})
  part.save()
  print(f"  batch {batch}: {tokens_per_s:,.0f} tokens/s, MFU {100 * row['mfu']:.1f}% "
        f"(step {row['step_ms']:.0f} ms; compile {row['compile_s']:.0f} s)", flush=True)


def run_train(part: Part, sizes: Sizes, out_dir: str) -> None:
  """Part 1: each training case in priority order; a case starts only while the budget
  left covers what the previous case took (`sizes.train_case_seconds` before the first).

  Args:
    part: where the results go.
    sizes: the suite's sizes.
    out_dir: the suite's output directory.
  """
  del out_dir
  limit = int(0.95 * memory_limit(smoke_limit=48 * 2**20))
  needed = sizes.train_case_seconds
  for preset, attention, remat, batch in sizes.train_cases:
    name = f"{preset} attention={attention} remat={remat}"
    if part.remaining() < needed:
      part.note(f"{name}: not run (time cap: {part.remaining():.0f} s left, the last case took "
                f"{needed:.0f} s)")
      continue
    print(f"train: {name}", flush=True)
    start = time.perf_counter()
    try:
      _train_case(part, sizes, preset, attention, remat, batch, limit)
    except Exception as e:  # pylint: disable=broad-except
      part.error(name, e)
    needed = time.perf_counter() - start
    gc.collect()


# ------------------------------------------------------------------------------ synthesis

def _synthesis_config(sizes: Sizes):
  """The synthesis model: bfloat16 parameters and compute on accelerators; attention "auto"
  (cuDNN's flash kernel on GPU)."""
  gpu = jax.default_backend() == "gpu"
  return get_preset(sizes.synth_preset, param_dtype="bfloat16",
                    dtype="bfloat16" if gpu else "auto", **sizes.synth_overrides)


def _cache_len(sizes: Sizes) -> int:
  return -(-(sizes.prompt_lengths[1] + sizes.new_tokens) // 128) * 128


def _kv_bytes_per_token(config) -> int:
  """Cache bytes of one token (`roofline.ModelShape`, the one count of them)."""
  return roofline.ModelShape.from_config(
      config, 0, jnp.dtype(config.compute_dtype).itemsize).kv_bytes_per_token


def _ceilings(out_dir: str, sizes: Sizes) -> dict[str, float]:
  """The env part's measured copy bandwidth and matmul rate, measured here if it has none."""
  env = read_part(out_dir, "env") or {}
  if env.get("copy_bandwidth") and env.get("matmul_flops"):
    return {name: env[name] for name in ("copy_bandwidth", "matmul_flops", "matmul_dtype")}
  return measure_ceilings(sizes.copy_elements, sizes.matmul_size)


def _synthesis_case(part: Part, sizes: Sizes, config, params, prompts,
                    ceilings: dict[str, float]) -> dict:
  """Generates for `prompts` twice (warm-up + timed) with one engine.

  The row is written when the case starts and again after each stage (the decode program's
  compile and HLO census, the warm-up, the timed run), so a case stopped at the part's cap
  still reports what it reached.
  """
  batch = len(prompts)
  sampling = SamplingConfig(max_new_tokens=sizes.new_tokens)
  row = {"case": f"ours batch={batch}", "system": "ours", "batch": batch,
         "new_tokens": sizes.new_tokens, "stage": "compiling decode", **ceilings}
  part.add(row)
  print(f"synthesis: {row['case']}", flush=True)
  engine = Engine(config, params, one_device_mesh(), RULES, eos_ids=[config.vocab_size],
                  num_slots=batch, max_len=_cache_len(sizes), decode_chunk=sizes.new_tokens,
                  prefill_row_len=sizes.prefill_row_len,
                  max_prefill_tokens=sizes.max_prefill_tokens)
  start = time.perf_counter()
  decode_program = engine.decode_program(sampling)  # the program generate runs
  weight_shapes = [x.shape for x in jax.tree_util.tree_leaves(params["layers"])]
  block_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(params["layers"]))
  row.update(stage="warm-up", decode_compile_s=time.perf_counter() - start,
             decode_slice_copies=hlo_copies.slice_copies(decode_program.as_text(),
                                                         weight_shapes, engine.cache_shape),
             decode_program_gib=program_bytes(decode_program) / 2**30,
             block_weight_bytes=block_bytes,
             kv_cache_bytes=2 * config.num_layers * int(np.prod(engine.cache_shape)) *
             jnp.dtype(config.compute_dtype).itemsize)
  del decode_program
  part.save()
  engine.generate(prompts, sampling)  # compiles the prefill programs
  row.update(stage="timed run", compile_and_warm_s=time.perf_counter() - start)
  part.save()
  engine.stats = GenerationStats()
  outputs = engine.generate(prompts, sampling)
  stats = engine.stats
  assert all(len(o) == sizes.new_tokens for o in outputs), "an output stopped early"
  param_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(params))
  floor = roofline.generation_floor(
      roofline.ModelShape.from_config(config, param_bytes,
                                      jnp.dtype(config.compute_dtype).itemsize),
      [len(p) for p in prompts], sizes.new_tokens, ceilings["copy_bandwidth"],
      ceilings["matmul_flops"])
  decode_ms = 1e3 * (stats.seconds - stats.prefill_seconds) / (sizes.new_tokens - 1)
  row.update(stage="done", prompt_tokens=stats.prompt_tokens,
             tokens_per_s=stats.generated_tokens / stats.seconds, seconds=stats.seconds,
             prefill_s=stats.prefill_seconds, prefill_calls=stats.prefill_calls,
             decode_ms_per_step=decode_ms, param_bytes=param_bytes,
             roofline_fraction=1e3 * floor["decode_step_s"] / decode_ms,
             end_to_end_fraction=floor["total_s"] / stats.seconds, floor=floor,
             prefill_buckets=sorted(stats.compiled_prefill_lengths))
  part.save()
  copies = row["decode_slice_copies"]["per_step"]
  print(f"  {row['tokens_per_s']:,.1f} tokens/s; prefill {stats.prefill_seconds:.2f} s in "
        f"{stats.prefill_calls} calls; decode {decode_ms:.2f} ms/step = "
        f"{100 * row['roofline_fraction']:.0f}% of the {1e3 * floor['decode_step_s']:.2f} ms "
        f"floor; end to end {100 * row['end_to_end_fraction']:.0f}% of the roofline; copied "
        f"per step: {copies['weights'] / block_bytes:.2f}x the block weights, "
        f"{copies['cache'] / row['kv_cache_bytes']:.2f}x the KV cache (compile + warm-up "
        f"{row['compile_and_warm_s']:.0f} s)", flush=True)
  return row


def _largest_synthesis_batch(config, params, sizes: Sizes, limit: int) -> int:
  """Slots that fit next to the weights, in decode (the KV cache and the per-layer weight
  slices `split_layers` makes for the decode loop) and in prefill (the cache, plus per prompt
  token of one prefill call its keys and values of every layer, emitted before the cache
  write, and its activations)."""
  param_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(params))
  block_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(params["layers"]))
  cache_per_slot = _cache_len(sizes) * _kv_bytes_per_token(config)
  activations = 2 * (8 * config.embed_dim + 3 * config.mlp_dim)  # bfloat16, per token
  prefill_call = sizes.max_prefill_tokens * (_kv_bytes_per_token(config) + activations)
  usable = 0.95 * limit - param_bytes
  slots = int(min(usable - block_bytes, usable - prefill_call) / cache_per_slot)
  return min(sizes.synth_max_batch, slots // 16 * 16 if slots >= 32 else slots)


def run_synthesis(part: Part, sizes: Sizes, out_dir: str) -> None:
  """Part 2: the base batch, then the largest batch that fits (and the time left).

  Args:
    part: where the results go.
    sizes: the suite's sizes.
    out_dir: the suite's output directory.
  """
  config = _synthesis_config(sizes)
  params = store.init_params(config, one_device_mesh(), RULES)
  ceilings = _ceilings(out_dir, sizes)
  prompts = synthesis_prompts(sizes, config.vocab_size, sizes.synth_max_batch)
  part.data.update({"model": sizes.synth_preset, "params": config.num_params(),
                    "attention_impl": config.attention_kernel, "dtype": config.compute_dtype})

  def measure(batch: int) -> dict:
    nonlocal config
    try:
      return _synthesis_case(part, sizes, config, params, prompts[:batch], ceilings)
    except Exception as e:  # pylint: disable=broad-except
      if config.attention_kernel != "cudnn" or is_out_of_memory(e):
        raise
      # Prefill is the only user of the attention kernel: go on without cuDNN.
      part.error(f"batch={batch} attention=cudnn", e)
      part.note("prefill attention falls back to xla for the remaining cases")
      config = config.replace(attention_impl="xla")
      part.data["attention_impl"] = "xla"
      return _synthesis_case(part, sizes, config, params, prompts[:batch], ceilings)

  try:
    base = measure(sizes.synth_batch)
  except Exception as e:  # pylint: disable=broad-except
    part.error(f"batch={sizes.synth_batch}", e)
    return
  gc.collect()
  fits = _largest_synthesis_batch(config, params, sizes, memory_limit(smoke_limit=64 * 2**20))
  # Two runs (compile + timed) must end inside the budget: time grows at most with the batch.
  per_slot_s = base["seconds"] / base["batch"]
  affordable = int((part.remaining() - base["compile_and_warm_s"]) / (2 * per_slot_s))
  batch = min(fits, affordable // 16 * 16 if affordable >= 32 else affordable)
  part.data["largest_batch_fits"] = fits
  if batch <= base["batch"]:
    part.note(f"largest batch: {fits} slots fit; {batch} fit the time left; not run")
    return
  if batch < fits:
    part.note(f"largest batch: {fits} slots fit, {batch} measured (time cap)")
  while batch > base["batch"]:
    try:
      measure(batch)
      return
    except Exception as e:  # pylint: disable=broad-except
      part.error(f"batch={batch}", e)
      if not is_out_of_memory(e):
        return
      batch = batch * 3 // 4 // 8 * 8


# -------------------------------------------------------------------------------- summary

def _summary_lines(out_dir: str, status: dict[str, str]) -> list[str]:
  """The table of every part's results (markdown), with the targets next to them."""
  parts = {name: read_part(out_dir, name) for name in PARTS if name != "summary"}
  env = parts.get("env") or {}
  lines = [f"device: {env.get('device', '?')} x {env.get('num_devices', '?')}, jax "
           f"{env.get('jax', '?')} ({env.get('backend', '?')}), copy "
           f"{(env.get('copy_bandwidth') or 0) / 1e9:,.4g} GB/s, matmul "
           f"{(env.get('matmul_flops') or 0) / 1e12:,.4g} TFLOP/s "
           f"({env.get('matmul_dtype', '?')})", "",
           "| part | case | result | target |", "|---|---|---|---|"]
  ours_by_batch = {}
  for row in (parts.get("synthesis") or {}).get("rows", []):
    if "tokens_per_s" not in row:  # a case stopped before its timed run
      continue
    best = ours_by_batch.get(row["batch"])
    if best is None or row["tokens_per_s"] > best["tokens_per_s"]:
      ours_by_batch[row["batch"]] = row
  for name, data in parts.items():
    if data is None:
      lines.append(f"| {name} | — | no result ({status.get(name, 'not run')}) | |")
      continue
    for row in data["rows"]:
      lines.append("| " + " | ".join((name,) + _describe(name, row, ours_by_batch, parts))
                   + " |")
    for note in data["notes"]:
      lines.append(f"| {name} | note | {note} | |")
    for error in data["errors"]:
      lines.append(f"| {name} | {error['case']} | ERROR {error['error'][:160]} | |")
    if not data["finished"]:
      lines.append(f"| {name} | — | incomplete ({status.get(name, 'stopped')}, "
                   f"{data['elapsed_s']} s) | |")
  return lines


def _describe(name: str, row: dict, ours_by_batch: dict, parts: dict) -> tuple[str, str, str]:
  """(case, result, target) cells of one row."""
  if name == "train":
    if not row["batch"]:
      return row["case"], row["note"], ""
    return (f"{row['case']} batch={row['batch']} seq={row['seq_len']}",
            f"{row['tokens_per_s']:,.0f} tokens/s, MFU {100 * row['mfu']:.1f}%",
            f"MFU ≥ {100 * TARGETS['mfu']:.0f}% (1.3B)")
  if name == "synthesis":
    copies = row.get("decode_slice_copies", {}).get("per_step")
    copied = (f"copied per step: {copies['weights'] / row['block_weight_bytes']:.2f}x block "
              f"weights, {copies['cache'] / row['kv_cache_bytes']:.2f}x KV cache"
              if copies else "")
    if row.get("stage") != "done":
      return (row["case"], f"stopped at the {row.get('stage')} stage; {copied}".rstrip("; "),
              "")
    return (row["case"],
            f"{row['tokens_per_s']:,.0f} tokens/s; prefill {row['prefill_s']:.2f} s; decode "
            f"{row['decode_ms_per_step']:.2f} ms/step = {100 * row['roofline_fraction']:.0f}% "
            f"of its floor; end to end {100 * row['end_to_end_fraction']:.0f}% of the "
            f"roofline; {copied}",
            f"decode ≥ {100 * TARGETS['roofline']:.0f}%, end to end ≥ "
            f"{100 * TARGETS['end_to_end']:.0f}%")
  if name == "synthesis_hf":
    ours = ours_by_batch.get(row["batch"])
    ratio = f"; ours/transformers {ours['tokens_per_s'] / row['tokens_per_s']:.2f}x" if ours else ""
    return (row["case"], f"{row['tokens_per_s']:,.0f} tokens/s; prefill {row['prefill_s']:.2f} "
            f"s; decode {row['decode_ms_per_step']:.2f} ms/step{ratio}",
            f"ours ≥ {TARGETS['vs_transformers']:.0f}x")
  return suite_eval.describe(name, row, parts)


def run_summary(out_dir: str, status: dict[str, str]) -> None:
  """Prints the summary table and writes it to summary.md.

  Args:
    out_dir: the suite's output directory.
    status: how each part's process ended (from device_suite.sh), for parts without results.
  """
  lines = _summary_lines(out_dir, status)
  with open(os.path.join(out_dir, "summary.md"), "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines), flush=True)


# Every part, in the summary's order; None: not run by `PARTS[name](...)` (the torch parts run
# in suite_torch.py; summary in main).
PARTS = {"env": run_env, "train": run_train, "synthesis": run_synthesis, "synthesis_hf": None,
         "eval": suite_eval.run_eval, "eval_hf": None, "summary": None}


def main(argv: Optional[list[str]] = None) -> None:
  """Runs one part (see the module docstring).

  Args:
    argv: command-line arguments (default: sys.argv).
  """
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("part", choices=[name for name, run in PARTS.items() if run] + ["summary"])
  parser.add_argument("--out", required=True, help="directory for PART.json")
  parser.add_argument("--smoke", action="store_true", help="toy sizes (CPU, seconds)")
  parser.add_argument("--budget", type=float, default=600.0,
                      help="seconds until the part stops starting measurements")
  parser.add_argument("--status", default="",
                      help="summary only: PART=exit-status pairs, comma-separated")
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  if args.part == "summary":
    run_summary(args.out, dict(item.split("=", 1) for item in args.status.split(",") if item))
    return
  jax.config.update("jax_compilation_cache_dir", "/tmp/instruct_pt_jax_cache")
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  part = Part(args.part, args.out, args.budget, args.smoke, describe_device())
  try:
    PARTS[args.part](part, sizes_for(args.smoke), args.out)
  except Exception as e:  # pylint: disable=broad-except
    part.error(args.part, e)
    part.save()
    sys.exit(1)
  part.save(finished=True)


if __name__ == "__main__":
  main()
