"""The paper's experiment in miniature, on embedded defaults: what `make demo` runs.

Domain-adaptive continual pre-training (PAPER.md section 5) on a CPU, nothing downloaded:

1. **import** the bundled SmolLM2-135M-Instruct (GGUF) into a run directory (`base/`);
2. **fine-tune a synthesizer**: SmolLM2 learns the `<QUE> ... <ANS> ... </END>` format on the
   `demo_synthesizer_sft` task (`configs/synthesizer/smollm2_cpu.gin`; untuned, it yields no
   parsable pairs);
3. **synthesize** instruction-response pairs for the first documents of the demo domain's
   training split (CPython's documentation), multi-round, official post-processing;
4. **two continual pre-training runs** from `base/`, same token budget, seed and steps
   (`configs/pretrain/smollm2_demo_cpt.gin`), differing only in data: **Vanilla PT** on the
   raw texts of the synthesized documents, **Instruct PT** on their instruction-augmented
   texts mixed 1:1 with general instructions (the paper's domain recipe);
5. **evaluate** the starting model and both runs on the held-out demo tasks
   (`instruct_pt/evaluation/tasks/demo`, built from the held-out split only);
6. **report**: `report.md` with the side-by-side table and whether the difference is within
   noise, and `compare.png`, `loss.png`, `categories.png` (`instruct_pt.demo_report`).

`DemoSize` sets every stage's size: `FULL` (`make demo`) and `QUICK` (`--quick`, toy sizes,
every stage and artifact). The `*_run` functions build the typed configs that `run` hands to
`instruct_pt.commands` (the notebook calls them stage by stage). Re-running resumes: a
finished stage is skipped, an interrupted one continues from its checkpoint or shard.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import time
from typing import Any, Callable, Optional

import jax

from instruct_pt import commands, config, demo_report, run_dir
from instruct_pt.data import sources
from instruct_pt.data.registry import DataConfig

SYNTHESIZER_CONFIG = "configs/synthesizer/smollm2_cpu.gin"
SYNTHESIS_CONFIG = "configs/synthesis/smollm2_cpu.gin"
PRETRAIN_CONFIG = "configs/pretrain/smollm2_demo_cpt.gin"
EVAL_TASKS = ("demo",)
ARMS = ("vanilla", "instruct")
ARM_LABELS = {"vanilla": "Vanilla PT", "instruct": "Instruct PT"}


@dataclasses.dataclass(frozen=True)
class DemoSize:
  """How big each stage of the demo is.

  Attributes:
    name: "full" or "quick".
    synthesizer_steps: synthesizer fine-tuning steps.
    synthesizer_batch: its rows per step.
    synthesizer_seq_len: its tokens per row.
    documents: training-split documents synthesized (and the Vanilla PT corpus).
    documents_per_shard: synthesis documents per shard.
    new_tokens: tokens generated per synthesis prompt.
    pretrain_steps: steps of each continual pre-training run.
    pretrain_batch: their rows per step.
    pretrain_seq_len: their tokens per row.
    eval_limit: documents per evaluation task (None: all).
  """

  name: str
  synthesizer_steps: int
  synthesizer_batch: int
  synthesizer_seq_len: int
  documents: int
  documents_per_shard: int
  new_tokens: int
  pretrain_steps: int
  pretrain_batch: int
  pretrain_seq_len: int
  eval_limit: Optional[int]

  @property
  def pretrain_tokens(self) -> int:
    """Tokens each continual pre-training run reads (the equal budget)."""
    return self.pretrain_steps * self.pretrain_batch * self.pretrain_seq_len


FULL = DemoSize("full", synthesizer_steps=10, synthesizer_batch=2, synthesizer_seq_len=512,
                documents=24, documents_per_shard=8, new_tokens=64, pretrain_steps=14,
                pretrain_batch=4, pretrain_seq_len=256, eval_limit=None)
QUICK = DemoSize("quick", synthesizer_steps=2, synthesizer_batch=1, synthesizer_seq_len=256,
                 documents=4, documents_per_shard=4, new_tokens=16, pretrain_steps=2,
                 pretrain_batch=1, pretrain_seq_len=256, eval_limit=3)


@dataclasses.dataclass(frozen=True)
class DemoLayout:
  """Where each stage of a demo writes, under one run directory.

  Args:
    root: the demo's run directory.
  """

  root: run_dir.RunDir

  @classmethod
  def at(cls, path: str) -> "DemoLayout":
    return cls(run_dir.RunDir(path))

  base = property(lambda self: self.root.sub("base"), doc="The imported SmolLM2.")
  synthesizer = property(lambda self: self.root.sub("synthesizer"),
                         doc="The fine-tuned synthesizer.")
  synthesis = property(lambda self: self.root.sub("synthesis"), doc="The synthesized shards.")
  raw_corpus = property(lambda self: self.root.path / "raw_documents.jsonl",
                        doc="The synthesized documents' raw texts (Vanilla PT's data).")
  timings = property(lambda self: self.root.path / "timings.json",
                     doc="Seconds spent in each stage (summed over re-runs).")
  size = property(lambda self: self.root.path / "demo_size.json",
                  doc="The `DemoSize` the directory was started with.")
  compilation_cache = property(lambda self: self.root.path / "compilation_cache",
                               doc="JAX's persistent compilation cache, unless one is set.")

  def arm(self, name: str) -> run_dir.RunDir:
    """The run directory of continual pre-training arm `name` ("vanilla" or "instruct")."""
    if name not in ARMS:
      raise ValueError(f"unknown demo arm {name!r}; choose one of {ARMS}")
    return self.root.sub(f"{name}_pt")


def synthesizer_run(layout: DemoLayout, size: DemoSize) -> config.TrainRun:
  """Fine-tuning SmolLM2 into a synthesizer (loss on the pairs only).

  Args:
    layout: the demo's directories.
    size: the demo's size.
  """
  run = config.train_run(str(layout.synthesizer), [SYNTHESIZER_CONFIG])
  # A higher learning rate than the config's: ten steps teach the format on a CPU.
  return dataclasses.replace(
      run, model=dataclasses.replace(run.model, init_from=str(layout.base)),
      train=dataclasses.replace(run.train, num_steps=size.synthesizer_steps,
                                batch_size=size.synthesizer_batch,
                                seq_len=size.synthesizer_seq_len, log_every=1,
                                checkpoint_every=size.synthesizer_steps),
      optimizer=dataclasses.replace(run.optimizer, learning_rate=3e-4,
                                    warmup_steps=min(2, size.synthesizer_steps)))


def synthesis_run(layout: DemoLayout, size: DemoSize) -> config.SynthesizeRun:
  """Synthesis with the fine-tuned synthesizer over the training split's first documents.

  Args:
    layout: the demo's directories.
    size: the demo's size.
  """
  run = config.synthesize_run(str(layout.synthesis), [SYNTHESIS_CONFIG])
  return dataclasses.replace(run, synthesis=dataclasses.replace(
      run.synthesis, model=str(layout.synthesizer), max_documents=size.documents,
      documents_per_shard=size.documents_per_shard, max_new_tokens=size.new_tokens,
      post_processing="official"))


def synthesized_documents(layout: DemoLayout, size: DemoSize) -> list[dict[str, str]]:
  """The documents synthesis reads (`text`, `id`), in its order.

  Args:
    layout: the demo's directories.
    size: the demo's size.
  """
  spec = synthesis_run(layout, size).synthesis.source_spec()
  return [{"id": r["id"], "text": r["text"]}
          for r in itertools.islice(sources.iter_records(spec), size.documents)]


def write_raw_corpus(layout: DemoLayout, size: DemoSize) -> str:
  """Writes the synthesized documents' raw texts as JSONL (Vanilla PT's corpus); returns it.

  Args:
    layout: the demo's directories.
    size: the demo's size.
  """
  text = "".join(json.dumps(d, ensure_ascii=False) + "\n"
                 for d in synthesized_documents(layout, size))
  layout.root.create()
  partial = layout.raw_corpus.parent / (layout.raw_corpus.name + ".partial")
  partial.write_text(text)
  partial.rename(layout.raw_corpus)
  return str(layout.raw_corpus)


def pretrain_data(layout: DemoLayout, arm: str) -> DataConfig:
  """The data of one arm: raw texts (vanilla), or instruction-augmented texts mixed 1:1
  with general instructions (instruct, the paper's domain recipe).

  Args:
    layout: the demo's directories.
    arm: "vanilla" or "instruct".
  """
  layout.arm(arm)  # checks the name
  if arm == "vanilla":
    return DataConfig(mixture="demo_vanilla_pt", tasks={
        "demo_vanilla_pt": {"kind": "raw_lm", "pattern": str(layout.raw_corpus)}})
  return DataConfig(
      mixture="demo_instruct_pt_cpt",
      tasks={"demo_synthesized": {"kind": "instruct_augmented_lm",
                                  "pattern": layout.synthesis.shard_pattern()}},
      domain_recipes={"demo_instruct_pt_cpt": {"augmented_domain_task": "demo_synthesized",
                                               "instructions_task": "demo_instructions"}})


def pretrain_run(layout: DemoLayout, size: DemoSize, arm: str) -> config.TrainRun:
  """One continual pre-training arm from the imported SmolLM2 (both arms: same settings).

  Args:
    layout: the demo's directories.
    size: the demo's size.
    arm: "vanilla" or "instruct".
  """
  run = config.train_run(str(layout.arm(arm)), [PRETRAIN_CONFIG])
  return dataclasses.replace(
      run, model=dataclasses.replace(run.model, init_from=str(layout.base)),
      train=dataclasses.replace(run.train, num_steps=size.pretrain_steps,
                                batch_size=size.pretrain_batch, seq_len=size.pretrain_seq_len,
                                checkpoint_every=size.pretrain_steps),
      optimizer=dataclasses.replace(run.optimizer,
                                    warmup_steps=min(run.optimizer.warmup_steps,
                                                     size.pretrain_steps)),
      data=pretrain_data(layout, arm))


def evaluation_run(model: run_dir.RunDir, size: DemoSize) -> config.EvaluateRun:
  """The held-out demo tasks for one model.

  Args:
    model: a run directory.
    size: the demo's size.
  """
  return config.EvaluateRun(model=str(model), tasks=EVAL_TASKS, limit=size.eval_limit)


def evaluated_models(layout: DemoLayout) -> dict[str, run_dir.RunDir]:
  """The compared models by label, in the comparison's order (differences are to the
  first: Vanilla PT)."""
  return {ARM_LABELS["vanilla"]: layout.arm("vanilla"),
          ARM_LABELS["instruct"]: layout.arm("instruct"), "SmolLM2 (start)": layout.base}


def trained(run: config.TrainRun) -> bool:
  """Whether the training run reached its last step."""
  return (run_dir.RunDir(run.run_dir).checkpoints / str(run.train.num_steps)).is_dir()


def evaluated(run: config.EvaluateRun) -> bool:
  """Whether the evaluation's results are written."""
  return (run_dir.RunDir(run.model).eval_dir(run.results_name()) / "results.json").exists()


class Stages:
  """Runs the stages that are not done yet, timing each into `timings.json`.

  `stages(name, done, work)` prints the stage's number and name, then calls `work()` unless
  `done()`; the seconds add up over re-runs (an interrupted stage counts both parts).

  Args:
    layout: the demo's directories.
    count: how many stages there are (for the progress lines).
  """

  def __init__(self, layout: DemoLayout, count: int):
    self.layout, self.count, self.number = layout, count, 0
    path = layout.timings
    self.timings: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}

  def __call__(self, name: str, done: Callable[[], bool], work: Callable[[], Any]) -> None:
    self.number += 1
    if done():
      print(f"[demo {self.number}/{self.count}] {name}: done earlier", flush=True)
      return
    print(f"[demo {self.number}/{self.count}] {name}", flush=True)
    start = time.perf_counter()
    work()
    self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
    self.layout.timings.write_text(json.dumps(self.timings, indent=2))


def run(run_dir_path: str, quick: bool = False, show_progress: bool = True) -> str:
  """Runs (or resumes) every stage of the demo and writes its report.

  Args:
    run_dir_path: where the demo writes.
    quick: toy sizes (`QUICK`) instead of `FULL`.
    show_progress: progress bars in the stages.

  Returns:
    The path of `report.md`.

  Raises:
    ValueError: the directory holds a demo of the other size.
  """
  size = QUICK if quick else FULL
  layout = DemoLayout.at(run_dir_path)
  layout.root.create()
  if layout.size.exists():
    started = json.loads(layout.size.read_text())["name"]
    if started != size.name:
      raise ValueError(f"{layout.root} holds a {started} demo; run the {size.name} one in "
                       f"another --run_dir")
  else:
    layout.size.write_text(json.dumps(dataclasses.asdict(size)))
  if not jax.config.jax_compilation_cache_dir:
    # Both arms and the three evaluations compile the same programs: compile each once.
    jax.config.update("jax_compilation_cache_dir", str(layout.compilation_cache))
  stage = Stages(layout, 7)
  stage("import SmolLM2-135M-Instruct", layout.base.has_model,
        lambda: commands.convert(config.ConvertRun(source="smollm2", run_dir=str(layout.base))))
  tuning = synthesizer_run(layout, size)
  stage("fine-tune the synthesizer", lambda: trained(tuning),
        lambda: commands.train(tuning, show_progress))
  synthesis = synthesis_run(layout, size)
  stage("synthesize", layout.synthesis.stats.exists,
        lambda: commands.synthesize(synthesis, show_progress))
  stage("write the raw corpus", layout.raw_corpus.exists,
        lambda: write_raw_corpus(layout, size))
  for arm in ARMS:
    training = pretrain_run(layout, size, arm)
    stage(f"continual pre-training: {ARM_LABELS[arm]}", functools.partial(trained, training),
          functools.partial(commands.train, training, show_progress))
  evaluations = [evaluation_run(model, size) for model in evaluated_models(layout).values()]
  stage("evaluate", lambda: all(map(evaluated, evaluations)),
        lambda: [commands.evaluate(e, show_progress) for e in evaluations if not evaluated(e)])
  report = write_report(layout, size, stage.timings)
  print(f"\n{report.summary}\nreport: {report.path}", flush=True)
  return report.path


@dataclasses.dataclass(frozen=True)
class Report:
  """A written demo report.

  Attributes:
    path: `report.md`.
    summary: its result section (the side-by-side table and the verdicts).
    comparison: the side-by-side numbers (`instruct_pt.evaluation.compare.Comparison`).
  """

  path: str
  summary: str
  comparison: Any


def _losses(run: run_dir.RunDir) -> list[tuple[int, float]]:
  records = [json.loads(line) for line in run.metrics.read_text().splitlines() if line.strip()]
  return [(r["step"], r["loss"]) for r in records if "loss" in r]


def write_report(layout: DemoLayout, size: DemoSize, timings: dict[str, float]) -> Report:
  """Writes `report.md` and its plots (`compare.png`, `loss.png`, `categories.png`) from the
  finished stages' outputs.

  Args:
    layout: the demo's directories.
    size: the demo's size.
    timings: seconds per stage.
  """
  models = evaluated_models(layout)
  labels = list(models)
  comparison = commands.compare([str(m) for m in models.values()],
                                name=evaluation_run(layout.base, size).results_name(),
                                output_dir=str(layout.root), labels=labels)
  verdicts = demo_report.difference_verdicts(comparison.labels, comparison.rows,
                                             ARM_LABELS["vanilla"], ARM_LABELS["instruct"])
  curves = {ARM_LABELS[arm]: _losses(layout.arm(arm)) for arm in ARMS}
  demo_report.loss_chart(curves, str(layout.root.path / "loss.png"),
                         f"continual pre-training, {size.pretrain_tokens:,} tokens each")
  stats = json.loads(layout.synthesis.stats.read_text())
  demo_report.category_chart(stats.get("categories", {}), str(layout.root.path / "categories.png"),
                             "task categories of the synthesized pairs")
  records = [json.loads(line) for shard in layout.synthesis.shards()
             for line in shard.read_text().splitlines() if line.strip()]
  documents = {d["id"]: d["text"] for d in map(json.loads,
                                                layout.raw_corpus.read_text().splitlines())}
  summary = (comparison.table + "\nInstruct PT against Vanilla PT (differences to the first "
             "column):\n\n" + "\n".join(verdicts) + "\n")
  text = _REPORT.format(
      date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), machine=demo_report.machine(),
      size=size.name, total=sum(timings.values()), stages=_stages_table(layout, size, timings),
      summary=summary, final_losses=", ".join(
          f"{label} {points[-1][1]:.3f}" for label, points in curves.items() if points),
      synthesis=_synthesis_line(stats), samples=demo_report.sample_pairs(records, documents, 3))
  layout.root.report.write_text(text)
  return Report(str(layout.root.report), summary, comparison)


def _synthesis_line(stats: dict[str, Any]) -> str:
  return (f"{stats['documents']} documents in {stats['shards']} shards "
          f"({stats['post_processing']} post-processing): {stats.get('pairs', 0)} pairs kept, "
          f"{stats.get('malformed_pairs', 0)} malformed, "
          f"{stats.get('documents_without_pairs', 0)} documents without pairs, "
          f"{stats.get('texts', 0)} instruction-augmented texts, "
          f"{stats['tokens_per_second']:.0f} generated tokens/s.")


def _stages_table(layout: DemoLayout, size: DemoSize, timings: dict[str, float]) -> str:
  """Markdown: each stage, its settings (read from the typed configs it ran) and seconds."""
  tuning, synthesis = synthesizer_run(layout, size), synthesis_run(layout, size).synthesis
  arm = pretrain_run(layout, size, "vanilla")
  rows = [
      ("import SmolLM2-135M-Instruct", "the bundled GGUF (Q4_1), dequantized to float32"),
      ("fine-tune the synthesizer",
       f"{_train_settings(tuning)}; task {tuning.data.mixture} (loss on the pairs only)"),
      ("synthesize",
       f"{size.documents} training-split documents, {synthesis.num_rounds} rounds, "
       f"{synthesis.max_new_tokens} new tokens per prompt, temperature "
       f"{synthesis.temperature}, {synthesis.post_processing} post-processing"),
      ("write the raw corpus", "the synthesized documents' raw texts (Vanilla PT's data)"),
      (f"continual pre-training: {ARM_LABELS['vanilla']}",
       f"{_train_settings(arm)}; the raw texts"),
      (f"continual pre-training: {ARM_LABELS['instruct']}",
       f"{_train_settings(arm)}; instruction-augmented texts + general instructions, 1:1"),
      ("evaluate", f"tasks {', '.join(EVAL_TASKS)} (held-out split), "
                   f"{'all documents' if size.eval_limit is None else f'limit {size.eval_limit}'}"
                   f", 3 models"),
  ]
  lines = ["| stage | settings | seconds |", "|---|---|---|"]
  lines += [f"| {name} | {settings} | {timings.get(name, 0.0):.0f} |" for name, settings in rows]
  return "\n".join(lines)


def _train_settings(run: config.TrainRun) -> str:
  t, o = run.train, run.optimizer
  return (f"{t.num_steps} steps x {t.batch_size} rows x {t.seq_len} tokens = "
          f"{t.num_steps * t.batch_size * t.seq_len:,} tokens, AdamW lr {o.learning_rate:g} "
          f"({o.schedule}, {o.warmup_steps} warm-up steps), seed {t.seed}")


_REPORT = """\
# Instruction Pre-Training demo: Vanilla PT vs Instruct PT

Domain-adaptive continual pre-training of SmolLM2-135M-Instruct on CPython's documentation
(the paper's section 5 in miniature), run {date} on {machine}; size `{size}`, {total:.0f} s in
all. Both runs start from the same model with the same seed, steps and token budget and differ
only in data. Evaluation uses held-out paragraphs only (`instruct_pt/evaluation/tasks/demo`).

## What ran

{stages}

## Result

{summary}
![evaluation](compare.png)

## Training loss

Final losses: {final_losses}. The two runs read different text (the instruct run's includes
the pairs and instructions), so their losses are not comparable with each other; the curves
show that both trained.

![loss](loss.png)

## Synthesis

{synthesis}

![categories](categories.png)

Synthesized pairs with their source text:

{samples}"""
