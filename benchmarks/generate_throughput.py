"""Generation throughput: our engine and `transformers` generate() side by side.

  python benchmarks/generate_throughput.py --model=smollm2 --batch=8 --new_tokens=32
  python benchmarks/generate_throughput.py --model=mistral_7b_random --batch=32 --new_tokens=128

Both generate exactly `--new_tokens` greedy tokens for the same `--batch` prompts (demo-corpus
paragraphs, 24 to 60 tokens) from the same weights: the bundled SmolLM2-135M GGUF, or a
random-weight model of a preset's shape (`<preset>_random`, e.g. Mistral-7B on a GPU). Each side
runs once untimed (compilation / warm-up) and then `--repeats` timed. The decode roofline is
the memory-bandwidth bound: every decode step reads all parameters and the live KV cache, so
tokens/s <= batch * bandwidth / bytes per step. The last line holds both tokens/s figures and
their ratio.
"""

from __future__ import annotations

import argparse
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from instruct_pt import parallel
from instruct_pt.data import sources, vocab
from instruct_pt.model import checkpoints
from instruct_pt.model.config import get_preset
from instruct_pt.model.transformer import Decoder
from instruct_pt.synthesis.generate import Engine, SamplingConfig

# Peak memory bandwidth per device (bytes/s), from vendor data sheets.
_BANDWIDTH = (("H200", 4.8e12), ("H100 PCIe", 2.0e12), ("H100", 3.35e12), ("A100", 2.0e12),
              ("TPU v6", 1.64e12), ("TPU v5 lite", 8.19e11), ("TPU v5e", 8.19e11),
              ("TPU v5", 2.76e12), ("TPU v4", 1.2e12))


def device_bandwidth(device) -> tuple[float, str]:
  """Peak bytes/s of `device`: data sheet, or a measured large copy on unknown kinds (CPU)."""
  for name, value in _BANDWIDTH:
    if name.lower() in device.device_kind.lower():
      return value, "data sheet"
  source = np.ones(2**26, np.float32)  # 256 MiB
  target = np.empty_like(source)
  np.copyto(target, source)
  start = time.perf_counter()
  for _ in range(5):
    np.copyto(target, source)
  return 2 * source.nbytes * 5 / (time.perf_counter() - start), "measured copy"


def load_model(name: str, mesh, rules):
  """(config, params on the mesh, tokenizer or None, HF directory + file for transformers)."""
  if name == "smollm2":
    path = checkpoints.resolve_gguf("smollm2")
    config, params = checkpoints.import_checkpoint(checkpoints.GGUFSource(path), path, mesh,
                                                   rules, progress=False)
    return config, params, vocab.gguf_vocabulary(path), path
  if not name.endswith("_random"):
    raise ValueError(f"--model={name!r}: use smollm2 or <preset>_random")
  config = get_preset(name[:-len("_random")], param_dtype="bfloat16")
  _, shardings = checkpoints.param_shardings(config, mesh, rules)
  init = lambda key: nn.meta.unbox(  # pylint: disable=unnecessary-lambda-assignment
      Decoder(config).init(key, jnp.zeros((1, 8), jnp.int32))["params"])
  return config, jax.jit(init, out_shardings=shardings)(jax.random.key(0)), None, None


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


def time_ours(engine, prompts, new_tokens, repeats) -> float:
  sampling = SamplingConfig(max_new_tokens=new_tokens)
  engine.generate(prompts, sampling)
  start = time.perf_counter()
  for _ in range(repeats):
    outputs = engine.generate(prompts, sampling)
  elapsed = (time.perf_counter() - start) / repeats
  assert all(len(o) == new_tokens for o in outputs), "an output stopped early"
  return len(prompts) * new_tokens / elapsed


def time_transformers(path, config, params, prompts, new_tokens, repeats) -> float:
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  if path is not None:
    import os  # pylint: disable=import-outside-toplevel
    model = transformers.AutoModelForCausalLM.from_pretrained(
        os.path.dirname(path), gguf_file=os.path.basename(path))
  else:
    import tempfile  # pylint: disable=import-outside-toplevel
    directory = tempfile.mkdtemp()
    checkpoints.save_hf_model(params, config, directory, dtype="bfloat16")
    model = transformers.AutoModelForCausalLM.from_pretrained(directory, dtype=torch.bfloat16)
  device = "cuda" if torch.cuda.is_available() else "cpu"
  model = model.to(device).eval()
  width = max(len(p) for p in prompts)
  ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts], device=device)
  mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)

  def run():
    with torch.no_grad():
      return model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens,
                            min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
  run()
  start = time.perf_counter()
  for _ in range(repeats):
    run()
  if device == "cuda":
    torch.cuda.synchronize()
  return len(prompts) * new_tokens / ((time.perf_counter() - start) / repeats)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="smollm2")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--new_tokens", type=int, default=32)
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--mesh", default="1,-1,1",
                      help="data,fsdp,tensor; without -1 only the first devices are used")
  parser.add_argument("--skip_transformers", action="store_true")
  args = parser.parse_args()

  mesh = parallel.create_mesh(tuple(int(n) for n in args.mesh.split(",")), allow_subset=True)
  rules = parallel.LOGICAL_AXIS_RULES
  config, params, tokenizer, path = load_model(args.model, mesh, rules)
  prompts = make_prompts(tokenizer, args.batch, config.vocab_size)
  max_len = max(len(p) for p in prompts) + args.new_tokens
  engine = Engine(config, params, mesh, rules, eos_ids=[config.vocab_size], num_slots=args.batch,
                  max_len=max_len + 16, decode_chunk=args.new_tokens)
  ours = time_ours(engine, prompts, args.new_tokens, args.repeats)

  device = mesh.devices.flat[0]
  bandwidth, how = device_bandwidth(device)
  param_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(params))
  mean_len = np.mean([len(p) for p in prompts]) + args.new_tokens / 2
  cache_bytes = (2 * config.num_layers * config.num_kv_heads * config.head_dim * mean_len *
                 args.batch * jnp.dtype(config.compute_dtype).itemsize)
  roofline = args.batch * bandwidth * mesh.size / (param_bytes + cache_bytes)
  print(f"model={args.model} ({config.num_params() / 1e6:.0f}M params) batch={args.batch} "
        f"new_tokens={args.new_tokens} devices={mesh.size} x {device.device_kind}")
  print(f"decode roofline: {roofline:,.0f} tokens/s ({bandwidth / 1e9:.0f} GB/s {how}, "
        f"{(param_bytes + cache_bytes) / 2**20:.0f} MiB read per step); ours at "
        f"{100 * ours / roofline:.0f}% of it (prefill included)")
  if args.skip_transformers:
    print(f"ours: {ours:,.1f} tokens/s")
    return
  theirs = time_transformers(path, config, params, prompts, args.new_tokens, args.repeats)
  print(f"ours: {ours:,.1f} tokens/s  transformers: {theirs:,.1f} tokens/s  "
        f"ratio: {ours / theirs:.2f}x")


if __name__ == "__main__":
  main()
