"""Log-likelihood throughput on the demo task: our `instruct_pt` lm-eval model vs lm-eval's `hf`.

  python benchmarks/eval_throughput.py --model=smollm2

Both answer exactly the same requests, the `loglikelihood` requests lm-eval builds for the
`demo_cloze` task (every choice of every item, or of the first `--limit` items; zero-shot, or
with `--num_fewshot` examples ahead of each context), through the
same lm-eval API (`LM.loglikelihood`), from the same float32 weights: `--model` (a run
directory, Hugging Face directory, GGUF or bundled name) for ours, its Hugging Face export for
`hf` (`--hf_dir`, or exported to a temporary directory first), `hf` at each of
`--hf_batch_sizes`. Each runs once untimed (our compilation; `hf` warm-up), then `--repeats`
rounds of one timed pass each, interleaved so that load from other processes on a shared
machine hits every side alike; a side's rate is its best pass. The last line holds our rate,
`hf`'s at its best batch size (requests/s) and their ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import jax


def demo_requests(limit, num_fewshot=0):
  """lm-eval's loglikelihood Instances of `demo_cloze` (the first `limit` items), with
  `num_fewshot` examples ahead of each context."""
  from lm_eval.tasks import TaskManager  # pylint: disable=import-outside-toplevel
  from instruct_pt.evaluation import TASKS_DIR  # pylint: disable=import-outside-toplevel
  task = TaskManager(include_path=TASKS_DIR, include_defaults=False).load_task_or_group(
      ["demo_cloze"])["demo_cloze"]
  if num_fewshot:
    task.set_config(key="num_fewshot", value=num_fewshot)
  task.build_all_requests(limit=limit)
  return list(task.instances)


def timed_pass(lm, requests) -> float:
  """Seconds one `loglikelihood` pass over `requests` takes."""
  start = time.perf_counter()
  lm.loglikelihood(requests, disable_tqdm=True)
  return time.perf_counter() - start


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="smollm2", help="our model source")
  parser.add_argument("--hf_dir", default=None,
                      help="its Hugging Face export (default: exported to a temp directory)")
  parser.add_argument("--limit", type=int, default=None, help="cloze items (default: all)")
  parser.add_argument("--num_fewshot", type=int, default=0,
                      help="examples ahead of each context (lm-eval's num_fewshot)")
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--hf_batch_sizes", default="8,16,32,64",
                      help="comma-separated batch sizes to try for hf")
  parser.add_argument("--hf_device", default="cpu", help="torch device of the hf model")
  parser.add_argument("--row_len", type=int, default=None, help="our packed row length")
  parser.add_argument("--batch_tokens", type=int, default=None, help="our tokens per call")
  args = parser.parse_args()
  os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
  os.environ.setdefault("HF_HUB_OFFLINE", "1")

  from lm_eval.models.huggingface import HFLM  # pylint: disable=import-outside-toplevel
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  from instruct_pt.evaluation.lm_eval_model import InstructPTLM  # pylint: disable=import-outside-toplevel

  requests = demo_requests(args.limit, args.num_fewshot)
  settings = {k: v for k, v in (("row_len", args.row_len), ("batch_tokens", args.batch_tokens))
              if v is not None}
  ours = InstructPTLM(args.model, mesh="1:-1:1", progress=False, **settings)
  with tempfile.TemporaryDirectory() as scratch:
    hf_dir = args.hf_dir
    if hf_dir is None:
      hf_dir = os.path.join(scratch, "hf")
      commands.convert(config.ConvertRun(source=args.model, to_hf=hf_dir))
    batch_sizes = [int(b) for b in args.hf_batch_sizes.split(",")]
    references = {b: HFLM(pretrained=hf_dir, dtype="float32", device=args.hf_device,
                          batch_size=b) for b in batch_sizes}
    # Untimed first passes: our compilation, hf's warm-up.
    compile_s = timed_pass(ours, requests)
    for reference in references.values():
      timed_pass(reference, requests)
    # Timed passes, interleaved so that load from other processes hits both sides alike.
    seconds = {"ours": [], **{b: [] for b in batch_sizes}}
    for _ in range(args.repeats):
      seconds["ours"].append(timed_pass(ours, requests))
      for b, reference in references.items():
        seconds[b].append(timed_pass(reference, requests))
  rates = {key: len(requests) / min(values) for key, values in seconds.items()}
  stats = ours.scorer.stats
  print(f"instruct_pt: {len(requests)} requests, {rates['ours']:.4f} req/s (first pass with "
        f"compilation {compile_s:.1f} s, {len(stats.compiled_shapes)} shapes "
        f"{sorted(stats.compiled_shapes)}, {100 * stats.tokens / stats.slots:.0f}% of packed "
        f"slots real tokens) on {jax.device_count()} {jax.devices()[0].device_kind} device(s)")
  for b in batch_sizes:
    print(f"hf batch {b}: {rates[b]:.4f} req/s")
  best_batch = max(batch_sizes, key=rates.get)
  print(f"eval_throughput: instruct_pt {rates['ours']:.4f} req/s, hf {rates[best_batch]:.4f} "
        f"req/s (batch {best_batch}), ratio {rates['ours'] / rates[best_batch]:.4f}")


if __name__ == "__main__":
  main()
