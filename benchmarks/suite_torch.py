"""The device suite's torch parts, each in a process that never imports jax.

  python benchmarks/suite_torch.py PART --out DIR [--smoke] [--budget SECONDS]

PART is one of:

* `synthesis_hf`: the synthesis part's prompts and model shape (Mistral-7B, random weights)
  through transformers' `generate`, greedy, sdpa attention, bfloat16 on CUDA (float32 on CPU),
  two ways: a dynamic KV cache (plain `generate`), and a static one, whose decode step
  transformers compiles itself on CUDA (`cache_implementation="static"` with a
  `CompileConfig(fullgraph=True)`: `torch.compile` in "reduce-overhead" mode, CUDA graphs;
  the prefill stays eager). On CPU the static cache runs uncompiled (transformers compiles
  only on accelerators; a smoke run checks the code path, not speed). Each row says which:
  `cache` ("static" / "dynamic") and `compiled`; with the env part's JSON, also its
  `roofline_fraction` (tokens/s over `roofline.generation_floor`'s, unpadded prompts). A
  sliding window no sequence reaches is dropped (it changes no output, and the static cache
  would otherwise be recompiled for its fill level).
* `eval_hf`: lm-eval's `hf` model on the eval part's requests and model shapes; without
  lm-eval (the GPU image has none) it notes so at once, before importing torch.

Why a separate process: device_suite.sh lets jax take 95% of the GPU's memory
(`XLA_PYTHON_CLIENT_MEM_FRACTION`) when jax starts on it, which would leave torch too little
for a 7B model. Our model shapes come from `suite_jax.py` run in a child process on CPU, so
the presets stay the one source of truth. Each JSON ends with `jax_imported` (false: the
check that nothing here pulled jax in). The Hugging Face hub is used offline.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

import roofline
from suite_common import (Part, Sizes, lm_eval_scorer, make_requests, read_part, score_row,
                          sizes_for, synthesis_prompts, timed, word_tokenizer_file)

HERE = os.path.dirname(os.path.abspath(__file__))
# torch and transformers are imported inside the parts, after this (and after eval_hf's check).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def model_shapes(specs: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
  """`suite_jax.model_shapes(specs)` (HF config and parameter counts of each preset), computed
  in a child process with jax on CPU, as this one must not import jax.

  Args:
    specs: (preset, ModelConfig overrides) pairs.
  """
  result = subprocess.run([sys.executable, os.path.join(HERE, "suite_jax.py"), json.dumps(specs)],
                          env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True,
                          text=True, timeout=300, check=False)
  if result.returncode != 0:
    raise RuntimeError(f"suite_jax.py failed (exit {result.returncode}): "
                       f"{result.stderr[-1000:]}")
  return json.loads(result.stdout.splitlines()[-1])


def transformers_model(hf_config: dict[str, Any]) -> tuple[Any, str]:
  """A random-weight transformers model of that shape (bfloat16 and sdpa on CUDA, float32 on
  CPU), built on its device; returns it and the device name.

  Args:
    hf_config: its `config.json` (`model_shapes`' `hf_config`).
  """
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  device = "cuda" if torch.cuda.is_available() else "cpu"
  dtype = torch.bfloat16 if device == "cuda" else torch.float32
  with tempfile.TemporaryDirectory() as directory:
    with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
      json.dump(dict(hf_config, torch_dtype=str(dtype).split(".")[-1]), f)
    config = transformers.AutoConfig.from_pretrained(directory)
  with torch.device(device):
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype,
                                                          attn_implementation="sdpa")
  return model.eval(), device


def _installed(package: str) -> Optional[str]:
  """The installed version of `package` (not imported), or None."""
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return None


def _describe_torch() -> dict[str, Any]:
  """`Part`'s platform fields: torch's device; "jax" is the version installed beside (so
  every part's JSON names it), not imported."""
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  cuda = torch.cuda.is_available()
  return {"jax": _installed("jax"), "torch": torch.__version__,
          "transformers": transformers.__version__, "backend": "cuda" if cuda else "cpu",
          "device": torch.cuda.get_device_name(0) if cuda else "cpu"}


# ------------------------------------------------------------------------------ synthesis_hf

def _floor(out_dir: str, shape: dict[str, Any], model, prompts: list[list[int]],
           new_tokens: int) -> Optional[dict[str, float]]:
  """`roofline.generation_floor` of these prompts at the env part's measured copy bandwidth
  and matmul rate, or None without them."""
  env = read_part(out_dir, "env") or {}
  if not env.get("copy_bandwidth") or not env.get("matmul_flops"):
    return None
  hf_config = shape["hf_config"]
  model_shape = roofline.ModelShape(
      layers=hf_config["num_hidden_layers"], heads=hf_config["num_attention_heads"],
      kv_heads=hf_config["num_key_value_heads"], head_dim=hf_config["head_dim"],
      matmul_params=shape["matmul_params"],
      weight_bytes=sum(p.numel() * p.element_size() for p in model.parameters()),
      kv_itemsize=model.dtype.itemsize)
  return roofline.generation_floor(model_shape, [len(p) for p in prompts], new_tokens,
                                   env["copy_bandwidth"], env["matmul_flops"])


def run_synthesis_hf(part: Part, sizes: Sizes, out_dir: str) -> None:
  """transformers' generate on the synthesis part's prompts and model shape: dynamic cache,
  then static cache (compiled on CUDA).

  Args:
    part: where the results go.
    sizes: the suite's sizes.
    out_dir: the suite's output directory (its env.json gives the roofline's ceilings).
  """
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  shape, = model_shapes([(sizes.synth_preset, sizes.synth_overrides)])
  hf_config = dict(shape["hf_config"])
  if (hf_config.get("sliding_window") or 0) >= sizes.prompt_lengths[1] + sizes.new_tokens:
    # A window no sequence reaches changes no output; without it the static cache has no
    # sliding layers, whose fill level the compiled step would otherwise be recompiled for.
    hf_config["sliding_window"] = None
  model, device = transformers_model(hf_config)
  prompts = synthesis_prompts(sizes, shape["hf_config"]["vocab_size"], sizes.synth_batch)
  width, batch = max(len(p) for p in prompts), len(prompts)
  ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts], device=device)
  mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
  floor = _floor(out_dir, shape, model, prompts, sizes.new_tokens)
  part.data.update({"model": sizes.synth_preset, "params": shape["params"],
                    "torch_dtype": str(model.dtype), "attention": "sdpa",
                    "sliding_window": hf_config.get("sliding_window"), "roofline": floor})
  compile_static = device == "cuda"  # transformers compiles generate's decode on accelerators

  def case_name(cache: str, compiled: bool) -> str:
    return f"transformers batch={batch} cache={cache}" + (" compiled" if compiled else "")

  def measure(variant: tuple[str, bool]) -> None:
    cache, compiled = variant
    options = {"input_ids": ids, "attention_mask": mask, "do_sample": False, "pad_token_id": 0}
    if cache == "static":
      # One cache length for every call below, so the compiled step is compiled once.
      options.update(cache_implementation="static", max_cache_len=width + sizes.new_tokens)
      if compiled:
        options["compile_config"] = transformers.CompileConfig(fullgraph=True,
                                                               mode="reduce-overhead")

    def run(tokens: int) -> float:
      start = time.perf_counter()
      with torch.no_grad():
        out = model.generate(**options, max_new_tokens=tokens, min_new_tokens=tokens)
      if device == "cuda":
        torch.cuda.synchronize()
      assert out.shape[1] == width + tokens
      return time.perf_counter() - start

    # Warm-up: kernels and allocator; compiled, also the decode step's compile (and its
    # recompiles) and CUDA graph recording, which take a few steps.
    warm_s = run(min(sizes.new_tokens, 16))
    if compiled and getattr(model, "_compiled_call", None) is None:
      raise RuntimeError("transformers' generate did not compile the decode step")
    first_s = run(1)
    total_s = run(sizes.new_tokens)
    decode_ms = 1e3 * (total_s - first_s) / (sizes.new_tokens - 1)
    row = {"case": case_name(cache, compiled), "system": "transformers", "batch": batch,
           "cache": cache, "compiled": compiled, "new_tokens": sizes.new_tokens,
           "tokens_per_s": batch * sizes.new_tokens / total_s, "seconds": total_s,
           "prefill_s": first_s, "decode_ms_per_step": decode_ms, "padded_width": width,
           "compile_and_warm_s": warm_s}
    if floor:
      row["roofline_fraction"] = row["tokens_per_s"] / floor["tokens_per_s"]
    part.add(row)
    print(f"  {row['tokens_per_s']:,.1f} tokens/s; prefill {first_s:.2f} s; decode "
          f"{decode_ms:.2f} ms/step (warm-up {warm_s:.0f} s)", flush=True)

  print(f"synthesis_hf: transformers {transformers.__version__}, {device}", flush=True)
  if not compile_static:
    part.note(f"static cache not compiled on {device} (transformers compiles generate's decode "
              "step only on accelerators)")
  part.each({case_name(*variant): variant for variant in (("dynamic", False),
                                                           ("static", compile_static))},
            30, measure)


# ----------------------------------------------------------------------------------- eval_hf

def run_eval_hf(part: Part, sizes: Sizes, out_dir: str) -> None:
  """Part 3, reference: lm-eval's hf model on the eval part's requests (main has checked that
  lm-eval is there).

  Args:
    part: where the results go.
    sizes: the suite's sizes.
    out_dir: the suite's output directory.
  """
  del out_dir
  try:
    from lm_eval.models.huggingface import HFLM  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    part.note(f"lm-eval's hf model is not importable here ({e}): comparison skipped")
    return

  def measure(shape: dict[str, Any]) -> None:
    model, device = transformers_model(shape["hf_config"])
    vocab_size = shape["hf_config"]["vocab_size"]
    with tempfile.TemporaryDirectory() as directory:
      tokenizer = transformers.PreTrainedTokenizerFast(
          tokenizer_file=word_tokenizer_file(vocab_size, directory),
          unk_token="w0", pad_token="w0", eos_token="w1")
    batch = 64 if device == "cuda" else 8
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch, device=device,
              max_length=sizes.eval_row_len)
    requests = make_requests(sizes, vocab_size)
    scores, seconds = timed(lm_eval_scorer(lm), requests)
    part.add(score_row(f"lm-eval hf {shape['preset']} batch={batch}", "hf", shape["preset"],
                       "lm_eval.models.huggingface.HFLM", requests, scores, seconds))

  shapes = model_shapes([(name, {}) for name in sizes.eval_models])
  part.each({f"lm-eval hf {shape['preset']}": shape for shape in shapes}, 10, measure)


PARTS = {"synthesis_hf": run_synthesis_hf, "eval_hf": run_eval_hf}


def _end(part: Part, finished: bool) -> None:
  """Records whether jax got imported (it must not be) and saves the JSON."""
  part.data["jax_imported"] = "jax" in sys.modules
  part.save(finished=finished)


def main(argv: Optional[list[str]] = None) -> None:
  """Runs one torch part (see the module docstring).

  Args:
    argv: command-line arguments (default: sys.argv).
  """
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("part", choices=list(PARTS))
  parser.add_argument("--out", required=True, help="directory for PART.json")
  parser.add_argument("--smoke", action="store_true", help="toy sizes (CPU, seconds)")
  parser.add_argument("--budget", type=float, default=600.0,
                      help="seconds until the part stops starting measurements")
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  if args.part == "eval_hf" and importlib.util.find_spec("lm_eval") is None:
    part = Part(args.part, args.out, args.budget, args.smoke,
                {"jax": _installed("jax"), "backend": None, "device": "not probed (skipped)"})
    part.note("lm-eval is not importable here (no lm_eval module): comparison skipped")
    _end(part, finished=True)
    return
  part = Part(args.part, args.out, args.budget, args.smoke, _describe_torch())
  try:
    PARTS[args.part](part, sizes_for(args.smoke), args.out)
  except Exception as e:  # pylint: disable=broad-except
    part.error(args.part, e)
    _end(part, finished=False)
    sys.exit(1)
  _end(part, finished=True)


if __name__ == "__main__":
  main()
