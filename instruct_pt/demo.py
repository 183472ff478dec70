"""The demo on embedded defaults: what `make demo` runs.

For now it trains the `tiny` preset on the embedded corpus (CPython's documentation) on the
CPU and reports the loss curve and where the outputs are; synthesis and evaluation join it as
those stages land. Re-running resumes (and, once finished, only reports).
"""

from __future__ import annotations

import json
import os

from instruct_pt import cli

DEMO_CONFIG = "configs/pretrain/tiny_cpu.gin"
DEMO_STEPS = 100


def run(run_dir: str) -> None:
  """Trains the demo model in `run_dir` and prints a short report.

  Args:
    run_dir: where the demo writes (re-running resumes).
  """
  train_dir = os.path.join(run_dir, "train")
  status = cli.main(["train", f"--gin_file={DEMO_CONFIG}",
                     f"--gin_param=train.num_steps={DEMO_STEPS}", f"--run_dir={train_dir}"])
  if status:
    raise SystemExit(status)
  with open(os.path.join(train_dir, "metrics.jsonl"), encoding="utf-8") as f:
    records = [json.loads(line) for line in f if line.strip()]
  train_losses = [(r["step"], r["loss"]) for r in records if "loss" in r]
  eval_losses = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
  print("\n== instruct_pt demo report ==")
  print(f"model: tiny preset, byte-level vocabulary, embedded corpus, {DEMO_STEPS} steps")
  print(f"train loss: step {train_losses[0][0]}: {train_losses[0][1]:.3f} -> "
        f"step {train_losses[-1][0]}: {train_losses[-1][1]:.3f}")
  if eval_losses:
    print(f"held-out loss at step {eval_losses[-1][0]}: {eval_losses[-1][1]:.3f}")
  throughput = [r for r in records if "tokens_per_second" in r]
  if throughput:
    last = throughput[-1]
    print(f"throughput: {last['tokens_per_second']:.0f} tokens/s, MFU {100 * last['mfu']:.1f}%")
  print(f"outputs: {os.path.abspath(train_dir)} (config.gin, metrics.jsonl, checkpoints/, "
        f"tensorboard/)")
