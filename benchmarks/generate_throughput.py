"""Generation throughput: our engine and `transformers` generate() side by side.

  python benchmarks/generate_throughput.py --model=smollm2 --batch=8 --new_tokens=32
  python benchmarks/generate_throughput.py --model=mistral_7b_random --batch=32 --new_tokens=128

Both generate exactly `--new_tokens` greedy tokens for the same `--batch` prompts (demo-corpus
paragraphs, 24 to 60 tokens) from the same weights: the bundled SmolLM2-135M GGUF, or a
random-weight model of a preset's shape (`<preset>_random`, e.g. Mistral-7B on a GPU). Each side
runs once untimed (compilation / warm-up) and then `--repeats` timed, for `--new_tokens` and
for 1 token (prefill and the first token): their difference is the decode time, printed per
step.

The floor is the roofline of the whole generation (`roofline.py`, the device suite's
formula): prefill at the measured matmul rate plus every decode step at the measured copy
bandwidth (all weights and the live KV cache read, attention FLOPs counted). The `matmuls`
line times the model's weight matmuls alone at this batch (one decode step's, in XLA): what
no engine built on XLA's dot can go below. The last line holds both tokens/s figures and
their ratio.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import roofline
from instruct_pt import parallel, run_dir
from instruct_pt.data import sources
from instruct_pt.model import hf, readers, store
from instruct_pt.model.config import get_preset
from instruct_pt.model.generate import Engine, SamplingConfig
from suite_jax import measure_ceilings, median_seconds


def load_model(name: str, mesh, rules):
  """(config, params on the mesh, tokenizer or None, HF directory + file for transformers)."""
  if name == "smollm2":
    model = run_dir.load("smollm2", mesh, rules, progress=False)
    return model.config, model.params, model.tokenizer, readers.resolve_gguf("smollm2")
  if not name.endswith("_random"):
    raise ValueError(f"--model={name!r}: use smollm2 or <preset>_random")
  config = get_preset(name[:-len("_random")], param_dtype="bfloat16")
  return config, store.init_params(config, mesh, rules), None, None


def make_prompts(tokenizer, batch: int, vocab_size: int) -> list[list[int]]:
  paragraphs = sources.demo_corpus()
  rng = np.random.default_rng(0)
  prompts = []
  for i in range(batch):
    length = int(rng.integers(24, 61))
    if tokenizer is None:
      prompts.append(rng.integers(3, vocab_size, length).tolist())
    else:
      prompts.append((tokenizer.encode(paragraphs[i]) * 8)[:length])
  return prompts


def _seconds(run, repeats: int) -> float:
  run()  # compilation / warm-up
  start = time.perf_counter()
  for _ in range(repeats):
    run()
  return (time.perf_counter() - start) / repeats


def time_ours(engine, prompts, new_tokens, repeats) -> tuple[float, float]:
  """Seconds to generate 1 and `new_tokens` tokens per prompt with our engine."""
  def run(tokens):
    outputs = engine.generate(prompts, SamplingConfig(max_new_tokens=tokens))
    assert all(len(o) == tokens for o in outputs), "an output stopped early"
  return (_seconds(lambda: run(1), repeats), _seconds(lambda: run(new_tokens), repeats))


def time_transformers(path, config, params, prompts, new_tokens,
                      repeats) -> tuple[float, float, float]:
  """Seconds to generate 1 and `new_tokens` tokens per prompt with transformers, and of its
  weight matmuls alone for one decode step (every `Linear`, the head included, at the
  batch's rows)."""
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  if path is not None:
    import os  # pylint: disable=import-outside-toplevel
    model = transformers.AutoModelForCausalLM.from_pretrained(
        os.path.dirname(path), gguf_file=os.path.basename(path))
  else:
    import tempfile  # pylint: disable=import-outside-toplevel
    directory = tempfile.mkdtemp()
    hf.save_hf_model(params, config, directory, dtype="bfloat16")
    model = transformers.AutoModelForCausalLM.from_pretrained(directory, dtype=torch.bfloat16)
  device = "cuda" if torch.cuda.is_available() else "cpu"
  model = model.to(device).eval()
  width = max(len(p) for p in prompts)
  ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts], device=device)
  mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)

  def run(tokens):
    with torch.no_grad():
      model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=tokens,
                     min_new_tokens=tokens, do_sample=False, pad_token_id=0)
    if device == "cuda":
      torch.cuda.synchronize()

  linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
  inputs = {width: torch.ones(len(prompts), width, dtype=model.dtype, device=device)
            for width in {m.in_features for m in linears}}

  def matmuls():
    with torch.no_grad():
      for module in linears:
        inputs[module.in_features] @ module.weight.T
    if device == "cuda":
      torch.cuda.synchronize()
  return (_seconds(lambda: run(1), repeats), _seconds(lambda: run(new_tokens), repeats),
          _seconds(matmuls, 5))


def matmul_seconds(params, batch: int, matmul_params: int) -> float:
  """Seconds of the model's weight matmuls alone for one decode step at `batch` rows: every
  block's projections (the attention's kernels flattened to [in, out], each layer's its own
  array, as the engine's `split_layers` makes them) and the output projection, in one jitted
  program over the real parameters.

  Args:
    params: the model's parameters (stacked `layers`).
    batch: rows multiplied.
    matmul_params: the model's matmul parameters (`roofline.ModelShape`): the kernels
      multiplied must hold exactly these.
  """
  attention, mlp = params["layers"]["attention"], params["layers"]["mlp"]
  embed = mlp["gate"]["kernel"].shape[1]
  stacked = [attention[name]["kernel"].reshape(-1, embed, np.prod(
      attention[name]["kernel"].shape[2:])) for name in ("query", "key", "value")]
  stacked.append(attention["out"]["kernel"].reshape(-1, np.prod(
      attention["out"]["kernel"].shape[1:3]), embed))
  stacked += [mlp[name]["kernel"] for name in ("gate", "up", "down")]
  layers = [[kernel[i] for kernel in stacked] for i in range(stacked[0].shape[0])]
  tied = "lm_head" not in params  # the embedding table is the head, as [vocab, embed]
  head = params["embedder"]["embedding"] if tied else params["lm_head"]["kernel"]
  counted = sum(kernel.size for kernels in layers for kernel in kernels) + head.size
  if counted != matmul_params:
    raise ValueError(f"the matmuls hold {counted:,} parameters; the model has "
                     f"{matmul_params:,}")
  inputs = {width: jnp.ones((batch, width), head.dtype)
            for width in {kernel.shape[0] for kernel in layers[0]}}

  def step(layers, head, inputs):
    # Each product's first element feeds the next one's input, so they run one after the
    # other, as in the model (XLA would otherwise run independent products concurrently).
    previous = jnp.zeros((), head.dtype)
    for kernels in layers:
      for kernel in kernels:
        previous = (inputs[kernel.shape[0]] + 1e-30 * previous) @ kernel
        previous = previous[0, 0]
    x = inputs[embed] + 1e-30 * previous
    return jnp.einsum("md,vd->mv", x, head) if tied else x @ head

  run = jax.jit(step)
  return median_seconds(lambda: run(layers, head, inputs), 5)


def _row(name, first_token_s, total_s, batch, new_tokens):
  step_ms = 1e3 * (total_s - first_token_s) / max(new_tokens - 1, 1)
  print(f"{name:>14} {first_token_s:12.3f} {step_ms:15.1f} {batch * new_tokens / total_s:10,.1f}")
  return step_ms


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="smollm2")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--new_tokens", type=int, default=32)
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--mesh", default="1,-1,1",
                      help="data,fsdp,tensor; without -1 only the first devices are used")
  parser.add_argument("--rule_overrides", default="",
                      help='changes to the rule table, e.g. "embed=None;heads=fsdp+tensor"')
  parser.add_argument("--skip_transformers", action="store_true")
  args = parser.parse_args()

  mesh_config = parallel.MeshConfig(
      shape=parallel.parse_mesh_shape(args.mesh),
      rule_overrides=parallel.parse_rule_overrides(args.rule_overrides, "--rule_overrides"))
  mesh, rules = mesh_config.create(allow_subset=True), mesh_config.rules()
  config, params, tokenizer, path = load_model(args.model, mesh, rules)
  prompts = make_prompts(tokenizer, args.batch, config.vocab_size)
  max_len = max(len(p) for p in prompts) + args.new_tokens
  engine = Engine(config, params, mesh, rules, eos_ids=[config.vocab_size], num_slots=args.batch,
                  max_len=max_len + 16, decode_chunk=args.new_tokens)
  ours = time_ours(engine, prompts, args.new_tokens, args.repeats)

  device = mesh.devices.flat[0]
  ceilings = measure_ceilings(2**26, 2048 if jax.default_backend() == "cpu" else 8192,
                              config.compute_dtype)
  param_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(params))
  shape = roofline.ModelShape.from_config(config, param_bytes,
                                          jnp.dtype(config.compute_dtype).itemsize)
  floor = roofline.generation_floor(
      shape,
      [len(p) for p in prompts], args.new_tokens, ceilings["copy_bandwidth"] * mesh.size,
      ceilings["matmul_flops"] * mesh.size)
  print(f"model={args.model} ({config.num_params() / 1e6:.0f}M params) batch={args.batch} "
        f"new_tokens={args.new_tokens} devices={mesh.size} x {device.device_kind}")
  print(f"{'':>14} {'1st token s':>12} {'decode ms/step':>15} {'tokens/s':>10}")
  our_step = _row("ours", *ours, args.batch, args.new_tokens)
  theirs = None
  if not args.skip_transformers:
    theirs = time_transformers(path, config, params, prompts, args.new_tokens, args.repeats)
    _row("transformers", *theirs[:2], args.batch, args.new_tokens)
  print(f"{'floor':>14} {floor['prefill_s']:12.3f} {1e3 * floor['decode_step_s']:15.1f} "
        f"{floor['tokens_per_s']:10,.1f}   (roofline.py: prefill at "
        f"{ceilings['matmul_flops'] / 1e9:,.0f} GFLOP/s, decode steps at "
        f"{ceilings['copy_bandwidth'] / 1e9:,.0f} GB/s, both measured, {ceilings['matmul_dtype']})")
  matmuls_ms = 1e3 * matmul_seconds(params, args.batch, shape.matmul_params)
  print(f"{'matmuls':>14} {'':12} {matmuls_ms:15.1f} {'':10}   (the weight matmuls of one "
        f"decode step alone, XLA)")
  if theirs is not None:
    print(f"{'their matmuls':>14} {'':12} {1e3 * theirs[2]:15.1f} {'':10}   (the same in "
          f"torch, every Linear: their decode step's share "
          f"{100 * theirs[2] / ((theirs[1] - theirs[0]) / max(args.new_tokens - 1, 1)):.0f}%)")
  print(f"our decode step at {100 * floor['decode_step_s'] * 1e3 / our_step:.0f}% of its floor; "
        f"{100 * matmuls_ms / our_step:.0f}% of it is the weight matmuls")
  ours_tps = args.batch * args.new_tokens / ours[1]
  if theirs is None:
    print(f"ours: {ours_tps:,.2f} tokens/s")
    return
  theirs_tps = args.batch * args.new_tokens / theirs[1]
  print(f"ours: {ours_tps:,.2f} tokens/s  transformers: {theirs_tps:,.2f} tokens/s  "
        f"ratio: {ours_tps / theirs_tps:.2f}x  (floor/transformers: "
        f"{floor['tokens_per_s'] / theirs_tps:.2f}x)")


if __name__ == "__main__":
  main()
