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

import dataclasses
import json

from instruct_pt import commands, config, run_dir
from instruct_pt.data.registry import DataConfig

SYNTHESIZER_CONFIG = "configs/synthesizer/smollm2_cpu.gin"
SYNTHESIZER_STEPS = 12
SYNTHESIS_CONFIG = "configs/synthesis/smollm2_cpu.gin"
TRAIN_CONFIG = "configs/pretrain/tiny_cpu.gin"
DEMO_DOCUMENTS = 16
DEMO_NEW_TOKENS = 64
DEMO_STEPS = 100


def run(run_dir_path: str) -> None:
  """Runs the demo stages in `run_dir_path` and prints a short report.

  Args:
    run_dir_path: where the demo writes (re-running resumes).
  """
  out = run_dir.RunDir(run_dir_path)
  base, synthesizer = out.sub("smollm2"), out.sub("synthesizer")
  synthesis, pretrain = out.sub("synthesis"), out.sub("train")
  if not base.has_model():
    commands.convert(config.ConvertRun(source="smollm2", run_dir=str(base)))
  # Batch 2 x 512 tokens at a higher learning rate than the config's: 12 steps suffice to
  # teach the format on a CPU (the 40-step config memorises the examples).
  tuning = config.train_run(str(synthesizer), [SYNTHESIZER_CONFIG])
  commands.train(dataclasses.replace(
      tuning, model=dataclasses.replace(tuning.model, init_from=str(base)),
      train=dataclasses.replace(tuning.train, num_steps=SYNTHESIZER_STEPS, batch_size=2,
                                log_every=1, checkpoint_every=SYNTHESIZER_STEPS),
      optimizer=dataclasses.replace(tuning.optimizer, learning_rate=3e-4, warmup_steps=2)))
  conversion = config.synthesize_run(str(synthesis), [SYNTHESIS_CONFIG])
  commands.synthesize(dataclasses.replace(conversion, synthesis=dataclasses.replace(
      conversion.synthesis, model=str(synthesizer), max_documents=DEMO_DOCUMENTS,
      max_new_tokens=DEMO_NEW_TOKENS)))
  training = config.train_run(str(pretrain), [TRAIN_CONFIG])
  commands.train(dataclasses.replace(
      training, train=dataclasses.replace(training.train, num_steps=DEMO_STEPS),
      data=DataConfig(
          mixture="demo_synthesized_pt",
          tasks={"demo_synthesized": {"kind": "instruct_augmented_lm",
                                      "pattern": synthesis.shard_pattern()}},
          mixtures={"demo_synthesized_pt": {"demo_raw": 0.8, "demo_synthesized": 0.2}})))
  _report(synthesizer, synthesis, pretrain)


def _metrics(run: run_dir.RunDir) -> list[dict]:
  return [json.loads(line) for line in run.metrics.read_text().splitlines() if line.strip()]


def _losses(records: list[dict]) -> list[tuple[int, float]]:
  return [(r["step"], r["loss"]) for r in records if "loss" in r]


def _report(synthesizer: run_dir.RunDir, synthesis: run_dir.RunDir,
            pretrain: run_dir.RunDir) -> None:
  stats = json.loads(synthesis.stats.read_text())
  example = json.loads(synthesis.shard(0).read_text().splitlines()[0])
  records = _metrics(pretrain)
  losses = _losses(records)
  tuning = _losses(_metrics(synthesizer))
  print("\n== instruct_pt demo report ==")
  print(f"synthesizer fine-tuning loss (pairs only): step {tuning[0][0]}: {tuning[0][1]:.3f} -> "
        f"step {tuning[-1][0]}: {tuning[-1][1]:.3f}")
  print(f"synthesis ({stats['post_processing']} post-processing): {stats['documents']} "
        f"documents in {stats['shards']} shards, "
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
  print(f"outputs: {synthesis} (shards, stats.json), "
        f"{pretrain} (config.gin, metrics.jsonl, checkpoints/, tensorboard/)")
