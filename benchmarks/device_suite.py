"""One part of the device suite per call; `benchmarks/device_suite.sh` runs them all.

  python benchmarks/device_suite.py PART --out DIR [--smoke] [--budget SECONDS]

PART is one of:

* `env`: jax / jaxlib version, backend, device kind and memory; the measured copy bandwidth
  (the decode roofline's denominator) and matmul rate of one device.
* `train` (part 1): the real train step (`instruct_pt.train.loop.make_train_step`) of
  `instructlm_1_3b` and `instructlm_500m` in bfloat16 at sequence 2048, per attention kernel
  (cuDNN flash vs XLA) and remat policy (none vs full), each at the largest batch whose
  compiled step fits the device memory (found from `memory_analysis` of cheap compiles):
  tokens/s and MFU (`instruct_pt.train.metrics`: data-sheet peak, README formula).
* `synthesis` (part 2): our `Engine` on a Mistral-7B-shaped random bfloat16 model, prompts of
  1k-3.5k tokens, 400 new tokens, batch 32 with each decode layout (scanned / unrolled
  layers, `ModelConfig.decode_layers`) and the largest batch that fits with the faster one:
  tokens/s, prefill s, decode ms/step, the fraction of the decode roofline (weights + live KV
  cache read per step / measured copy bandwidth), and what the compiled decode loop copies
  per step (`hlo_copies.py`).
* `synthesis_hf`: the same prompts through transformers' `generate` (bfloat16, sdpa).
* `eval` / `eval_hf` (part 3): `suite_eval.py`.
* `summary`: reads every part's JSON and prints the table (also written to summary.md).

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
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

import hlo_copies
import suite_eval
from instruct_pt import parallel
from instruct_pt.model import store
from instruct_pt.model.config import get_preset
from instruct_pt.model.transformer import Decoder
from instruct_pt.synthesis.generate import Engine, GenerationStats, SamplingConfig
from instruct_pt.train import loop, metrics, optim
from instruct_pt.train import state as state_lib
from suite_common import (RULES, TARGETS, Part, Sizes, is_out_of_memory, median_seconds,
                          memory_limit, one_device_mesh, program_bytes, read_part, sizes_for,
                          transformers_model)


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
  key = jax.random.key(0)
  dtype = jnp.bfloat16 if jax.default_backend() != "cpu" else jnp.float32
  a = jax.random.normal(key, (sizes.matmul_size,) * 2, dtype)
  b = jax.random.normal(jax.random.key(1), (sizes.matmul_size,) * 2, dtype)
  matmul = jax.jit(lambda x, y: x @ y)
  matmul_s = median_seconds(lambda: matmul(a, b), 10)
  part.data.update({
      "python": platform.python_version(), "versions": versions,
      "num_devices": jax.device_count(), "memory_bytes": memory_limit(0) or None,
      "copy_bandwidth": _measure_copy_bandwidth(sizes.copy_elements),
      "matmul_flops": 2 * sizes.matmul_size ** 3 / matmul_s,
      "matmul_dtype": jnp.dtype(dtype).name,
      "peak_flops_datasheet": metrics.device_peak_flops(device)})
  print(f"jax {jax.__version__} ({jax.default_backend()}) on {jax.device_count()} x "
        f"{device.device_kind}; copy {part.data['copy_bandwidth'] / 1e9:,.0f} GB/s, "
        f"{part.data['matmul_dtype']} matmul {part.data['matmul_flops'] / 1e12:,.1f} TFLOP/s",
        flush=True)


def _measure_copy_bandwidth(elements: int) -> float:
  """Bytes read + written per second by an elementwise pass over a random bfloat16 array.

  Args:
    elements: array size (large enough to dwarf the caches).
  """
  source = jax.random.normal(jax.random.key(2), (elements,), jnp.bfloat16)
  copy = jax.jit(lambda x: x + jnp.asarray(1, x.dtype))
  return 2 * source.nbytes / median_seconds(lambda: copy(source), 10)


def _copy_bandwidth(out_dir: str, sizes: Sizes) -> float:
  """The env part's measured copy bandwidth (bytes/s), measured here if it has none.

  Args:
    out_dir: the suite's output directory.
    sizes: the suite's sizes.
  """
  env = read_part(out_dir, "env")
  if env and env.get("copy_bandwidth"):
    return float(env["copy_bandwidth"])
  return _measure_copy_bandwidth(sizes.copy_elements)


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

  def compile(self, rows: int, probe: bool = False):
    """The compiled step for `rows` rows. A probe only needs the memory figure, so on GPU it
    skips GEMM autotuning (most of a compile); elsewhere it is the real program."""
    quick = probe and jax.default_backend() == "gpu"
    if (rows, quick) not in self._compiled:
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
        lowered = step.lower(self.state, abstract)
      try:
        self._compiled[rows, quick] = lowered.compile(
            compiler_options={"xla_gpu_autotune_level": 0} if quick else None)
      except Exception as e:  # pylint: disable=broad-except  # an XLA without that option
        if not quick or is_out_of_memory(e):
          raise
        self._compiled[rows, quick] = lowered.compile()
    return self._compiled[rows, quick]


def _largest_batch(need: Callable[[int], int], limit: int, cap: int) -> tuple[int, dict]:
  """The largest batch predicted to fit in `limit` bytes (0 if one row does not fit).

  Memory grows linearly with the batch: a line through the needs of batches 1 and 2 gives
  the prediction (rounded down to a multiple of 8, or 2 for small batches), which the caller
  checks on the real program. Returns the batch and the probes' needs.
  """
  probes = {1: need(1)}
  if probes[1] > limit:
    return 0, probes
  if cap == 1:
    return 1, probes
  probes[2] = need(2)
  if probes[2] > limit:
    return 1, probes
  batch = min(cap, (limit - probes[1]) // max(probes[2] - probes[1], 1) + 1)
  multiple = 8 if batch >= 32 else (2 if batch >= 4 else 1)
  return max(2, batch // multiple * multiple), probes


def _train_case(part: Part, sizes: Sizes, preset: str, attention: str, remat: str,
                limit: int) -> None:
  """Finds the largest batch of one configuration, then times its train step there."""
  case = f"{preset} attention={attention} remat={remat}"
  start = time.perf_counter()
  bench = _TrainBench(preset, attention, remat, sizes)
  limit = int(0.95 * limit)
  batch, probes = _largest_batch(lambda rows: program_bytes(bench.compile(rows, probe=True)),
                                 limit, sizes.train_max_batch)
  search_s = time.perf_counter() - start
  row = {"case": case, "preset": preset, "attention": attention, "remat": remat,
         "dtype": bench.config.compute_dtype, "seq_len": sizes.train_seq, "batch": batch,
         "limit_gib": limit / 2**30, "search_s": search_s,
         "probes_gib": {rows: n / 2**30 for rows, n in probes.items()}}
  if batch == 0:
    part.add(dict(row, note="one row does not fit"))
    return
  step = bench.compile(batch)
  while program_bytes(step) > limit and batch > 2:  # the prediction was short: scale down
    batch = max(2, int(batch * limit / program_bytes(step)) // 2 * 2)
    step = bench.compile(batch)
  while True:
    try:
      step, data = bench.compile(batch), bench.batch(batch)
      state, out = step(bench.state, data)  # the first run (allocation, autotuned kernels)
      jax.block_until_ready(out)
      compile_s = time.perf_counter() - start - search_s
      timed = time.perf_counter()
      for _ in range(sizes.train_steps):
        state, out = step(state, data)
      jax.block_until_ready(out)
      seconds = (time.perf_counter() - timed) / sizes.train_steps
      break
    except Exception as e:  # pylint: disable=broad-except
      if not is_out_of_memory(e) or batch <= 1:
        raise
      part.note(f"{case}: batch {batch} ran out of memory; retrying at {batch * 3 // 4}")
      batch = batch * 3 // 4
      del bench
      gc.collect()
      bench = _TrainBench(preset, attention, remat, sizes)  # the failed step took the state
  tokens_per_s = batch * sizes.train_seq / seconds
  peak = metrics.device_peak_flops(bench.mesh.devices.flat[0])
  row.update({"batch": batch, "step_ms": 1e3 * seconds, "tokens_per_s": tokens_per_s,
              "mfu": metrics.mfu(tokens_per_s, bench.config.flops_per_token(sizes.train_seq),
                                 1, peak),
              "peak_flops": peak, "program_gib": program_bytes(step) / 2**30,
              "compile_s": compile_s, "loss": float(out["loss"])})
  part.add(row)
  print(f"  batch {batch}: {tokens_per_s:,.0f} tokens/s, MFU {100 * row['mfu']:.1f}% "
        f"(step {row['step_ms']:.0f} ms; search {search_s:.0f} s, compile {compile_s:.0f} s)",
        flush=True)


def run_train(part: Part, sizes: Sizes, out_dir: str) -> None:
  """Part 1: each training case in priority order while the budget lasts.

  Args:
    part: where the results go.
    sizes: the suite's sizes.
    out_dir: the suite's output directory.
  """
  del out_dir
  limit = memory_limit(smoke_limit=48 * 2**20)
  part.each({f"{preset} attention={attention} remat={remat}": (preset, attention, remat)
             for preset, attention, remat in sizes.train_cases}, sizes.train_case_seconds,
            lambda case: _train_case(part, sizes, *case, limit))


# ------------------------------------------------------------------------------ synthesis

def _synthesis_config(sizes: Sizes):
  """The synthesis model: bfloat16 parameters and compute, cuDNN attention on GPU."""
  gpu = jax.default_backend() == "gpu"
  return get_preset(sizes.synth_preset, param_dtype="bfloat16",
                    dtype="bfloat16" if gpu else "auto",
                    attention_impl="cudnn" if gpu else "xla", **sizes.synth_overrides)


def _synthesis_prompts(sizes: Sizes, vocab_size: int, count: int) -> list[list[int]]:
  """`count` random prompts with lengths uniform in `sizes.prompt_lengths`; prompt i is the
  same in every run and for every count."""
  prompts = []
  for i in range(count):
    rng = np.random.default_rng([0, i])
    length = rng.integers(sizes.prompt_lengths[0], sizes.prompt_lengths[1] + 1)
    prompts.append(rng.integers(3, vocab_size, int(length)).tolist())
  return prompts


def _cache_len(sizes: Sizes) -> int:
  return -(-(sizes.prompt_lengths[1] + sizes.new_tokens) // 128) * 128


def _kv_bytes_per_token(config) -> int:
  return 2 * config.num_layers * config.num_kv_heads * config.head_dim * jnp.dtype(
      config.compute_dtype).itemsize


def _decode_roofline(config, params, prompts, new_tokens: int, bandwidth: float) -> dict:
  """Bytes a decode step must read (all weights + the live KV cache) and their time."""
  param_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(params))
  live = sum(len(p) for p in prompts) + len(prompts) * new_tokens / 2
  kv_bytes = live * _kv_bytes_per_token(config)
  return {"param_bytes": param_bytes, "kv_live_bytes": kv_bytes,
          "roofline_ms": 1e3 * (param_bytes + kv_bytes) / bandwidth}


def _synthesis_case(part: Part, sizes: Sizes, config, params, prompts, layers: str,
                    bandwidth: float) -> dict:
  """Generates for `prompts` twice (compile + timed) with decode layout `layers`."""
  batch = len(prompts)
  case = f"ours batch={batch} decode={layers}"
  print(f"synthesis: {case}", flush=True)
  sampling = SamplingConfig(max_new_tokens=sizes.new_tokens)
  engine = Engine(config.replace(decode_layers=layers), params, one_device_mesh(), RULES,
                  eos_ids=[config.vocab_size], num_slots=batch, max_len=_cache_len(sizes),
                  decode_chunk=sizes.new_tokens, prefill_row_len=sizes.prefill_row_len)
  start = time.perf_counter()
  decode_program = engine.lower_decode(sampling).compile()
  weight_shapes = [x.shape for x in jax.tree_util.tree_leaves(params["layers"])]
  copies = hlo_copies.slice_copies(decode_program.as_text(), weight_shapes, engine.cache_shape)
  decode_bytes = program_bytes(decode_program)
  del decode_program
  engine.generate(prompts, sampling)  # compiles prefill and decode
  warm_s = time.perf_counter() - start
  engine.stats = GenerationStats()
  outputs = engine.generate(prompts, sampling)
  stats = engine.stats
  assert all(len(o) == sizes.new_tokens for o in outputs), "an output stopped early"
  decode_ms = 1e3 * (stats.seconds - stats.prefill_seconds) / (sizes.new_tokens - 1)
  roofline = _decode_roofline(config, params, prompts, sizes.new_tokens, bandwidth)
  block_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(params["layers"]))
  row = {"case": case, "system": "ours", "batch": batch, "decode_layers": layers,
         "new_tokens": sizes.new_tokens, "prompt_tokens": stats.prompt_tokens,
         "tokens_per_s": stats.generated_tokens / stats.seconds, "seconds": stats.seconds,
         "prefill_s": stats.prefill_seconds, "decode_ms_per_step": decode_ms,
         "roofline_fraction": roofline["roofline_ms"] / decode_ms, **roofline,
         "kv_read_bytes": batch * engine.max_len * _kv_bytes_per_token(config),
         "copy_bandwidth": bandwidth, "block_weight_bytes": block_bytes,
         "decode_slice_copies": copies, "decode_program_gib": decode_bytes / 2**30,
         "compile_and_warm_s": warm_s, "prefill_buckets": sorted(stats.compiled_prefill_lengths)}
  part.add(row)
  print(f"  {row['tokens_per_s']:,.1f} tokens/s; prefill {stats.prefill_seconds:.2f} s; decode "
        f"{decode_ms:.2f} ms/step = {100 * row['roofline_fraction']:.0f}% of the "
        f"{roofline['roofline_ms']:.2f} ms roofline; copied per step: "
        f"{copies['per_step']['weights'] / block_bytes:.2f}x the block weights, "
        f"{copies['per_step']['cache'] / row['kv_read_bytes']:.2f}x the KV cache "
        f"(compile + warm-up {warm_s:.0f} s)", flush=True)
  return row


def _largest_synthesis_batch(config, params, sizes: Sizes, unrolled: bool, limit: int) -> int:
  """Slots that fit next to the weights, in decode (the KV cache; with unrolled layers, the
  per-layer weight copies too) and in prefill (the cache, plus per prompt token its keys and
  values of every layer, emitted before the cache write, and its activations)."""
  param_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(params))
  block_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(params["layers"]))
  cache_per_slot = _cache_len(sizes) * _kv_bytes_per_token(config)
  mean_prompt = sum(sizes.prompt_lengths) / 2
  activations = 2 * (8 * config.embed_dim + 3 * config.mlp_dim)  # bfloat16, per token
  prefill_per_slot = mean_prompt * (_kv_bytes_per_token(config) + activations)
  usable = 0.95 * limit - param_bytes
  slots = int(min((usable - (block_bytes if unrolled else 0)) / cache_per_slot,
                  usable / (cache_per_slot + prefill_per_slot)))
  return min(sizes.synth_max_batch, slots // 16 * 16 if slots >= 32 else slots)


def run_synthesis(part: Part, sizes: Sizes, out_dir: str) -> None:
  """Part 2: both decode layouts at the base batch, then the largest batch with the faster.

  Args:
    part: where the results go.
    sizes: the suite's sizes.
    out_dir: the suite's output directory.
  """
  config = _synthesis_config(sizes)
  params = store.init_params(config, one_device_mesh(), RULES)
  bandwidth = _copy_bandwidth(out_dir, sizes)
  prompts = _synthesis_prompts(sizes, config.vocab_size, sizes.synth_max_batch)
  part.data.update({"model": sizes.synth_preset, "params": config.num_params(),
                    "attention_impl": config.attention_impl, "dtype": config.compute_dtype,
                    "auto_decode_layers": "unrolled" if config.decode_unrolled else "scan"})
  layouts = ("unrolled", "scan") if config.decode_unrolled else ("scan", "unrolled")

  def measure(batch: int, layers: str) -> dict:
    nonlocal config
    try:
      return _synthesis_case(part, sizes, config, params, prompts[:batch], layers, bandwidth)
    except Exception as e:  # pylint: disable=broad-except
      if config.attention_impl != "cudnn" or is_out_of_memory(e):
        raise
      # Prefill is the only user of the attention kernel: go on without cuDNN.
      part.error(f"batch={batch} decode={layers} attention=cudnn", e)
      part.note("prefill attention falls back to xla for the remaining cases")
      config = config.replace(attention_impl="xla")
      part.data["attention_impl"] = "xla"
      return _synthesis_case(part, sizes, config, params, prompts[:batch], layers, bandwidth)

  rows = {}
  for layers in layouts:
    # The second layout costs at most what the first did (its prefill program is cached).
    if rows and part.remaining() < sum(rows[layouts[0]][k] for k in ("compile_and_warm_s",
                                                                     "seconds")):
      part.note(f"decode={layers} at batch {sizes.synth_batch}: not run (time cap)")
      continue
    try:
      rows[layers] = measure(sizes.synth_batch, layers)
    except Exception as e:  # pylint: disable=broad-except
      part.error(f"batch={sizes.synth_batch} decode={layers}", e)
    gc.collect()
  if not rows:
    return
  best = min(rows.values(), key=lambda r: r["decode_ms_per_step"])
  fits = _largest_synthesis_batch(config, params, sizes, best["decode_layers"] == "unrolled",
                                  memory_limit(smoke_limit=64 * 2**20))
  # Two runs (compile + timed) must end inside the budget: time grows at most with the batch.
  per_slot_s = best["seconds"] / best["batch"]
  affordable = int((part.remaining() - best["compile_and_warm_s"]) / (2 * per_slot_s))
  batch = min(fits, affordable // 16 * 16 if affordable >= 32 else affordable)
  part.data["largest_batch_fits"] = fits
  if batch <= best["batch"]:
    part.note(f"largest batch: {fits} slots fit; {batch} fit the time left; not run")
    return
  if batch < fits:
    part.note(f"largest batch: {fits} slots fit, {batch} measured (time cap)")
  while batch > best["batch"]:
    try:
      measure(batch, best["decode_layers"])
      return
    except Exception as e:  # pylint: disable=broad-except
      part.error(f"batch={batch}", e)
      if not is_out_of_memory(e):
        return
      batch = batch * 3 // 4 // 8 * 8


def run_synthesis_hf(part: Part, sizes: Sizes, out_dir: str) -> None:
  """transformers' generate on the synthesis part's prompts and model shape.

  Args:
    part: where the results go.
    sizes: the suite's sizes.
    out_dir: the suite's output directory.
  """
  del out_dir
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  config = _synthesis_config(sizes)
  model, device = transformers_model(config)
  part.data.update({"torch": torch.__version__, "transformers": transformers.__version__,
                    "torch_dtype": str(model.dtype), "attention": "sdpa", "cache": "dynamic",
                    "model": sizes.synth_preset})
  part.note("dynamic KV cache: a static cache pays off only with torch.compile, whose compile "
            "time does not fit this part's cap")
  prompts = _synthesis_prompts(sizes, config.vocab_size, sizes.synth_batch)
  width = max(len(p) for p in prompts)
  ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts], device=device)
  mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)

  def run(tokens: int) -> float:
    start = time.perf_counter()
    with torch.no_grad():
      out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=tokens,
                           min_new_tokens=tokens, do_sample=False, pad_token_id=0)
    if device == "cuda":
      torch.cuda.synchronize()
    assert out.shape[1] == width + tokens
    return time.perf_counter() - start

  print(f"synthesis_hf: transformers {transformers.__version__} batch={len(prompts)}",
        flush=True)
  run(2)  # warm-up: kernels, allocator
  first_s = run(1)
  total_s = run(sizes.new_tokens)
  decode_ms = 1e3 * (total_s - first_s) / (sizes.new_tokens - 1)
  row = {"case": f"transformers batch={len(prompts)}", "system": "transformers",
         "batch": len(prompts), "new_tokens": sizes.new_tokens,
         "tokens_per_s": len(prompts) * sizes.new_tokens / total_s, "seconds": total_s,
         "prefill_s": first_s, "decode_ms_per_step": decode_ms, "padded_width": width}
  part.add(row)
  print(f"  {row['tokens_per_s']:,.1f} tokens/s; prefill {first_s:.2f} s; decode "
        f"{decode_ms:.2f} ms/step", flush=True)


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
    copies = row["decode_slice_copies"]["per_step"]
    return (row["case"],
            f"{row['tokens_per_s']:,.0f} tokens/s; prefill {row['prefill_s']:.2f} s; decode "
            f"{row['decode_ms_per_step']:.2f} ms/step = {100 * row['roofline_fraction']:.0f}% "
            f"of roofline; copied per step: {copies['weights'] / row['block_weight_bytes']:.2f}x"
            f" block weights, {copies['cache'] / row['kv_read_bytes']:.2f}x KV cache",
            f"≥ {100 * TARGETS['roofline']:.0f}% of roofline")
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


PARTS = {"env": run_env, "train": run_train, "synthesis": run_synthesis,
         "synthesis_hf": run_synthesis_hf, "eval": suite_eval.run_eval,
         "eval_hf": suite_eval.run_eval_hf, "summary": None}


def main(argv: Optional[list[str]] = None) -> None:
  """Runs one part (see the module docstring).

  Args:
    argv: command-line arguments (default: sys.argv).
  """
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("part", choices=list(PARTS))
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
  part = Part(args.part, args.out, args.budget, args.smoke)
  try:
    PARTS[args.part](part, sizes_for(args.smoke), args.out)
  except Exception as e:  # pylint: disable=broad-except
    part.error(args.part, e)
    part.save()
    sys.exit(1)
  part.save(finished=True)


if __name__ == "__main__":
  main()
