"""The demo on embedded defaults: what `make demo` runs.

Instruction Pre-Training end to end on a CPU, with nothing downloaded:

1. **fine-tune a synthesizer**: the bundled SmolLM2-135M-Instruct (GGUF) is imported and
   fine-tuned for a few steps on the `demo_synthesizer_sft` task
   (`configs/synthesizer/smollm2_cpu.gin`): 20 stand-in examples that teach it the
   `<QUE> ... <ANS> ... </END>` format (untuned, SmolLM2 yields no parsable pairs);
2. **synthesize**: the tuned model converts demo-corpus paragraphs (CPython's documentation)
   with the multi-round pipeline (`configs/synthesis/smollm2_cpu.gin`);
3. **train**: the `tiny` model pre-trains on a SeqIO mixture of the raw corpus and the
   instruction-augmented shards just written, at the paper's 4:1 raw:augmented text ratio;
4. **report**: synthesis statistics, an augmented text, and the loss curve.

Re-running resumes each stage (and, once finished, only reports).
"""

from __future__ import annotations

import json
import os

from instruct_pt import cli

SYNTHESIZER_CONFIG = "configs/synthesizer/smollm2_cpu.gin"
SYNTHESIZER_STEPS = 12
SYNTHESIS_CONFIG = "configs/synthesis/smollm2_cpu.gin"
TRAIN_CONFIG = "configs/pretrain/tiny_cpu.gin"
DEMO_DOCUMENTS = 16
DEMO_NEW_TOKENS = 64
DEMO_STEPS = 100


def run(run_dir: str) -> None:
  """Runs the demo stages in `run_dir` and prints a short report.

  Args:
    run_dir: where the demo writes (re-running resumes).
  """
  base_dir = os.path.join(run_dir, "smollm2")
  synthesizer_dir = os.path.join(run_dir, "synthesizer")
  synthesis_dir = os.path.join(run_dir, "synthesis")
  train_dir = os.path.join(run_dir, "train")
  if not os.path.exists(os.path.join(base_dir, "model_config.json")):
    _check(cli.main(["convert", "--from_gguf=smollm2", f"--run_dir={base_dir}"]))
  # Batch 2 x 512 tokens at a higher learning rate than the config's: 12 steps suffice to
  # teach the format on a CPU (the 40-step config memorises the examples).
  _check(cli.main(["train", f"--gin_file={SYNTHESIZER_CONFIG}",
                   f"--gin_param=train.init_from={base_dir!r}",
                   f"--gin_param=train.num_steps={SYNTHESIZER_STEPS}",
                   "--gin_param=train.batch_size=2", "--gin_param=optimizer.learning_rate=3e-4",
                   "--gin_param=optimizer.warmup_steps=2", "--gin_param=train.log_every=1",
                   f"--gin_param=train.checkpoint_every={SYNTHESIZER_STEPS}",
                   f"--run_dir={synthesizer_dir}"]))
  _check(cli.main(["synthesize", f"--gin_file={SYNTHESIS_CONFIG}",
                   f"--gin_param=synthesize.model={synthesizer_dir!r}",
                   f"--gin_param=synthesize.max_documents={DEMO_DOCUMENTS}",
                   f"--gin_param=synthesize.max_new_tokens={DEMO_NEW_TOKENS}",
                   f"--run_dir={synthesis_dir}"]))
  shards = os.path.join(os.path.abspath(synthesis_dir), "shard-*.jsonl")
  tasks = {"demo_synthesized": {"kind": "instruct_augmented_lm", "pattern": shards}}
  mixture = {"demo_synthesized_pt": {"demo_raw": 0.8, "demo_synthesized": 0.2}}
  _check(cli.main(["train", f"--gin_file={TRAIN_CONFIG}",
                   f"--gin_param=train.num_steps={DEMO_STEPS}",
                   "--gin_param=train.mixture='demo_synthesized_pt'",
                   f"--gin_param=data.tasks={tasks!r}", f"--gin_param=data.mixtures={mixture!r}",
                   f"--run_dir={train_dir}"]))
  _report(synthesizer_dir, synthesis_dir, train_dir)


def _check(status: int) -> None:
  if status:
    raise SystemExit(status)


def _metrics(run_dir: str) -> list[dict]:
  with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def _losses(records: list[dict]) -> list[tuple[int, float]]:
  return [(r["step"], r["loss"]) for r in records if "loss" in r]


def _report(synthesizer_dir: str, synthesis_dir: str, train_dir: str) -> None:
  with open(os.path.join(synthesis_dir, "stats.json"), encoding="utf-8") as f:
    stats = json.load(f)
  with open(os.path.join(synthesis_dir, "shard-00000.jsonl"), encoding="utf-8") as f:
    example = json.loads(f.readline())
  records = _metrics(train_dir)
  losses = _losses(records)
  tuning = _losses(_metrics(synthesizer_dir))
  print("\n== instruct_pt demo report ==")
  print(f"synthesizer fine-tuning loss (pairs only): step {tuning[0][0]}: {tuning[0][1]:.3f} -> "
        f"step {tuning[-1][0]}: {tuning[-1][1]:.3f}")
  print(f"synthesis: {stats['documents']} documents in {stats['shards']} shards, "
        f"{stats.get('pairs', 0)} pairs kept, {stats.get('malformed_pairs', 0)} malformed, "
        f"{stats.get('documents_without_pairs', 0)} documents without pairs, "
        f"{stats['tokens_per_second']:.0f} generated tokens/s (SmolLM2 tuned for "
        f"{SYNTHESIZER_STEPS} steps, on CPU)")
  if stats.get("categories"):
    print("task categories: " + ", ".join(f"{name} {count}"
                                          for name, count in stats["categories"].items()))
  print(f"an instruction-augmented text ({len(example['source_ids'])} source documents):\n  "
        + example["text"][:300].replace("\n", "\n  ") + ("..." if len(example["text"]) > 300
                                                          else ""))
  print(f"train loss: step {losses[0][0]}: {losses[0][1]:.3f} -> "
        f"step {losses[-1][0]}: {losses[-1][1]:.3f} (tiny model, mixture 4:1 raw:augmented)")
  throughput = [r for r in records if "tokens_per_second" in r]
  if throughput:
    print(f"throughput: {throughput[-1]['tokens_per_second']:.0f} tokens/s, "
          f"MFU {100 * throughput[-1]['mfu']:.1f}%")
  print(f"outputs: {os.path.abspath(synthesis_dir)} (shards, stats.json), "
        f"{os.path.abspath(train_dir)} (config.gin, metrics.jsonl, checkpoints/, tensorboard/)")
