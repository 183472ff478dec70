"""The paper's experiment in miniature, on embedded defaults: what `make demo` runs.

Domain-adaptive continual pre-training (the paper's section 5) on a CPU, nothing downloaded:

1. **import** the bundled SmolLM2-135M-Instruct (GGUF) into a run directory (`base/`);
2. **fine-tune a synthesizer**: SmolLM2 learns the `<QUE> ... <ANS> ... </END>` format on the
   `demo_synthesizer_sft` task (`configs/synthesizer/smollm2_cpu.gin`; untuned, it yields no
   parsable pairs);
3. **sample the documents**: `DemoSize.documents` paragraphs of the corpus snapshot's training
   split, drawn (seeded) round-robin across its 79 pydoc topics (`documents.jsonl`);
4. **synthesize** instruction-response pairs for the first `DemoSize.synthesized` of them,
   multi-round, official post-processing;
5. **three continual pre-training runs** from `base/`, same settings and token budget
   (`configs/pretrain/smollm2_demo_cpt.gin`), differing only in data (`ARMS`): **Vanilla PT**
   on the raw documents; **Instruct PT** on the instruction-augmented texts mixed 1:1 with
   general instructions (the paper's domain recipe); and **Vanilla PT again with data seed 1**,
   the A/A run that sizes training noise. The sizes let each arm read its texts about once;
   the report gives each arm's passes and loss-bearing tokens;
6. **evaluate** the three runs and the starting model on the held-out demo tasks
   (`instruct_pt/evaluation/tasks/demo`): reading comprehension open-book (zero- and one-shot)
   and closed-book, and perplexity;
7. **report**: `report.md`, whose first table is the declared primary comparison (the paired
   gold-option margin on open-book reading comprehension, Instruct PT minus Vanilla PT) with
   its controls (closed-book, open minus closed, the A/A run), paired tests from lm-eval's
   per-item samples (`instruct_pt.evaluation.paired`), and its plots (`Report.charts`).

`DemoSize` sets every stage's size: `FULL` (`make demo`) and `QUICK` (`--quick`, toy sizes,
every stage and artifact). The `*_run` functions build the typed configs that `run` hands to
`instruct_pt.commands` (the notebook calls them stage by stage). Re-running resumes: a
finished stage is skipped, an interrupted one continues from its checkpoint or shard.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from typing import Any, Optional, Sequence

from etils import epath

from instruct_pt import (commands, config, demo_comparison, demo_report, hardware, progress,
                         run_dir, run_lock)
from instruct_pt.data import demo_corpus
from instruct_pt.data import tokenizer as tokenizer_lib
from instruct_pt.data.registry import DataConfig
from instruct_pt.evaluation import paired
from instruct_pt.evaluation.tasks import demo as demo_tasks

SYNTHESIZER_CONFIG = "configs/synthesizer/smollm2_cpu.gin"
SYNTHESIS_CONFIG = "configs/synthesis/smollm2_cpu.gin"
PRETRAIN_CONFIG = "configs/pretrain/smollm2_demo_cpt.gin"
# The held-out tasks: reading comprehension (open-book zero- and one-shot, closed-book) and
# perplexity (`demo_comparison` names each task the report reads).
EVAL_TASKS = ("demo_reading", "demo_perplexity")
START_LABEL = "SmolLM2 (start)"


@dataclasses.dataclass(frozen=True)
class Arm:
  """One continual pre-training run of the comparison.

  Attributes:
    label: its name in the report.
    data: "raw" (the sampled documents) or "instruct" (their instruction-augmented texts
      mixed 1:1 with general instructions).
    seed: the data-order seed (the parameters all start from the imported model).
  """

  label: str
  data: str
  seed: int


ARMS = {
    "vanilla": Arm("Vanilla PT", "raw", 0),
    "instruct": Arm("Instruct PT", "instruct", 0),
    "vanilla_reseeded": Arm("Vanilla PT (data seed 1)", "raw", 1),
}
ARM_LABELS = {name: arm.label for name, arm in ARMS.items()}
# The paired comparisons of the report: (label, minuend arm, subtrahend arm).
COMPARISONS = (("Instruct PT − Vanilla PT", "instruct", "vanilla"),
               ("A/A: Vanilla PT (data seed 1) − Vanilla PT", "vanilla_reseeded", "vanilla"))


@dataclasses.dataclass(frozen=True)
class DemoSize:
  """How big each stage of the demo is.

  Attributes:
    name: "full" or "quick".
    synthesizer_steps: synthesizer fine-tuning steps.
    synthesizer_batch: its rows per step.
    synthesizer_seq_len: its tokens per row.
    documents: training-split documents sampled (Vanilla PT's corpus).
    synthesized: the first this many of them are synthesized (Instruct PT's corpus); fewer
      than `documents`, since an augmented text is longer than its raw text and half of
      Instruct PT's examples are general instructions.
    documents_per_shard: synthesis documents per shard.
    new_tokens: tokens generated per synthesis prompt.
    pretrain_steps: steps of each continual pre-training run.
    pretrain_batch: their rows per step.
    pretrain_seq_len: their tokens per row.
    eval_limit: documents per evaluation task (None: all).
    evaluate_start: whether the starting model is evaluated too (a reference level, not a
      comparison the verdict uses).
    seed: the seed of the document sample.
  """

  name: str
  synthesizer_steps: int
  synthesizer_batch: int
  synthesizer_seq_len: int
  documents: int
  synthesized: int
  documents_per_shard: int
  new_tokens: int
  pretrain_steps: int
  pretrain_batch: int
  pretrain_seq_len: int
  eval_limit: Optional[int]
  evaluate_start: bool = True
  seed: int = 0

  @property
  def pretrain_tokens(self) -> int:
    """Tokens each continual pre-training run reads (the equal budget)."""
    return self.pretrain_steps * self.pretrain_batch * self.pretrain_seq_len


FULL = DemoSize("full", synthesizer_steps=10, synthesizer_batch=2, synthesizer_seq_len=512,
                documents=90, synthesized=32, documents_per_shard=8, new_tokens=64,
                pretrain_steps=6, pretrain_batch=4, pretrain_seq_len=256, eval_limit=None)
QUICK = DemoSize("quick", synthesizer_steps=2, synthesizer_batch=1, synthesizer_seq_len=256,
                 documents=6, synthesized=4, documents_per_shard=4, new_tokens=16,
                 pretrain_steps=2, pretrain_batch=1, pretrain_seq_len=128, eval_limit=4,
                 evaluate_start=False)


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
  documents = property(lambda self: self.root.path / "documents.jsonl",
                       doc="The sampled documents' raw texts (Vanilla PT's data).")
  timings = property(lambda self: self.root.path / "timings.json",
                     doc="Seconds spent in each stage (summed over re-runs).")
  size = property(lambda self: self.root.path / "demo_size.json",
                  doc="The `DemoSize` the directory was started with.")
  compilation_cache = property(lambda self: self.root.path / "compilation_cache",
                               doc="JAX's persistent compilation cache, unless one is set.")
  charts = property(lambda self: {name: self.root.path / f"{name}.png" for name in (
      "differences", "loss", "categories")}, doc="The report's own plots (`compare.png` aside).")

  def arm(self, name: str) -> run_dir.RunDir:
    """The run directory of continual pre-training arm `name` (a key of `ARMS`)."""
    if name not in ARMS:
      raise ValueError(f"unknown demo arm {name!r}; choose one of {tuple(ARMS)}")
    return self.root.sub(f"{name}_pt")


def write_documents(layout: DemoLayout, size: DemoSize) -> str:
  """Writes the sampled documents as JSONL (atomically); returns the file.

  Args:
    layout: the demo's directories.
    size: the demo's size.
  """
  text = "".join(json.dumps(d, ensure_ascii=False) + "\n"
                 for d in demo_corpus.sample_documents(size.documents, size.seed))
  layout.root.create()
  partial = layout.documents.parent / (layout.documents.name + ".partial")
  partial.write_text(text)
  partial.rename(layout.documents)
  return str(layout.documents)


def read_documents(layout: DemoLayout) -> list[dict[str, str]]:
  """The sampled documents (`write_documents`), in order.

  Args:
    layout: the demo's directories.
  """
  return [json.loads(line) for line in layout.documents.read_text().splitlines()]


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
  """Synthesis with the fine-tuned synthesizer over the first `size.synthesized` sampled
  documents.

  Args:
    layout: the demo's directories.
    size: the demo's size.
  """
  run = config.synthesize_run(str(layout.synthesis), [SYNTHESIS_CONFIG])
  return dataclasses.replace(run, synthesis=dataclasses.replace(
      run.synthesis, model=str(layout.synthesizer), input_pattern=str(layout.documents),
      input_format="jsonl", max_documents=size.synthesized,
      documents_per_shard=size.documents_per_shard, max_new_tokens=size.new_tokens,
      post_processing="official"))


def pretrain_data(layout: DemoLayout, arm: str) -> DataConfig:
  """The data of one arm: the raw documents, or their instruction-augmented texts mixed 1:1
  with general instructions (the paper's domain recipe).

  Args:
    layout: the demo's directories.
    arm: a key of `ARMS`.
  """
  layout.arm(arm)  # checks the name
  if ARMS[arm].data == "raw":
    return DataConfig(mixture="demo_vanilla_pt", tasks={
        "demo_vanilla_pt": {"kind": "raw_lm", "pattern": str(layout.documents)}})
  return DataConfig(
      mixture="demo_instruct_pt_cpt",
      tasks={"demo_synthesized": {"kind": "instruct_augmented_lm",
                                  "pattern": layout.synthesis.shard_pattern()}},
      domain_recipes={"demo_instruct_pt_cpt": {"augmented_domain_task": "demo_synthesized",
                                               "instructions_task": "demo_instructions"}})


def pretrain_run(layout: DemoLayout, size: DemoSize, arm: str) -> config.TrainRun:
  """One continual pre-training arm from the imported SmolLM2 (every arm: the same settings
  but its data and data-order seed).

  Args:
    layout: the demo's directories.
    size: the demo's size.
    arm: a key of `ARMS`.
  """
  run = config.train_run(str(layout.arm(arm)), [PRETRAIN_CONFIG])
  return dataclasses.replace(
      run, model=dataclasses.replace(run.model, init_from=str(layout.base)),
      train=dataclasses.replace(run.train, num_steps=size.pretrain_steps,
                                batch_size=size.pretrain_batch, seq_len=size.pretrain_seq_len,
                                checkpoint_every=size.pretrain_steps, seed=ARMS[arm].seed),
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


def evaluated_models(layout: DemoLayout, size: DemoSize) -> dict[str, run_dir.RunDir]:
  """The evaluated models by label, in the comparison's order (differences are to the
  first: Vanilla PT): the arms, then the starting model if `size.evaluate_start`.

  Args:
    layout: the demo's directories.
    size: the demo's size.
  """
  models = {arm.label: layout.arm(name) for name, arm in ARMS.items()}
  if size.evaluate_start:
    models[START_LABEL] = layout.base
  return models


def trained(run: config.TrainRun) -> bool:
  """Whether the training run reached its last step."""
  return run_dir.RunDir(run.run_dir).checkpoint_step(run.train.num_steps).is_dir()


def evaluated(run: config.EvaluateRun) -> bool:
  """Whether the evaluation's results are written."""
  return (epath.Path(commands.results_dir(run)) / run_dir.EVAL_RESULTS_FILE).exists()


STAGE_COUNT = 5 + len(ARMS)


def run(run_dir_path: str, quick: bool = False, show_progress: bool = True) -> str:
  """Runs (or resumes) every stage of the demo and writes its report.

  Args:
    run_dir_path: where the demo writes.
    quick: toy sizes (`QUICK`) instead of `FULL`.
    show_progress: progress bars in the stages.

  Returns:
    The path of `report.md`.

  Raises:
    ValueError: the directory holds a demo of another size, or the evaluation files were
      built from another corpus snapshot than training reads.
  """
  size = QUICK if quick else FULL
  demo_tasks.check_snapshot()
  layout = DemoLayout.at(run_dir_path)
  layout.root.create()
  # The arms and evaluations compile the same programs: the demo's cache compiles each once.
  with (run_lock.writer_lock(layout.root),
        hardware.compilation_cache(str(layout.compilation_cache))):
    if layout.size.exists():
      started = json.loads(layout.size.read_text())
      if started.get("name") != size.name:
        raise ValueError(f"{layout.root} holds a {started.get('name')} demo; run the "
                         f"{size.name} one in another --run_dir")
      try:
        same = DemoSize(**started) == size  # fields added since take their defaults
      except TypeError:  # a field this version no longer has, or lacks one it needs
        same = False
      if not same:
        raise ValueError(f"{layout.root} holds a {size.name} demo of other sizes (an earlier "
                         f"version's); run this one in another --run_dir")
    else:
      layout.size.write_text(json.dumps(dataclasses.asdict(size)))
    stage = progress.Stages(layout.timings, STAGE_COUNT, "demo")
    stage("import SmolLM2-135M-Instruct", layout.base.has_model,
          lambda: commands.convert(config.ConvertRun(source="smollm2", run_dir=str(layout.base))))
    tuning = synthesizer_run(layout, size)
    stage("fine-tune the synthesizer", lambda: trained(tuning),
          lambda: commands.train(tuning, show_progress))
    stage("sample the documents", layout.documents.exists,
          lambda: write_documents(layout, size))
    synthesis = synthesis_run(layout, size)
    stage("synthesize", layout.synthesis.stats.exists,
          lambda: commands.synthesize(synthesis, show_progress))
    for arm in ARMS:
      training = pretrain_run(layout, size, arm)
      stage(f"continual pre-training: {ARM_LABELS[arm]}", functools.partial(trained, training),
            functools.partial(commands.train, training, show_progress))
    evaluations = [evaluation_run(model, size)
                   for model in evaluated_models(layout, size).values()]
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
    summary: its result section (the declared primary comparison, its controls, the verdict).
    estimates: comparison label -> the paired estimates of `demo_comparison.MEASURES`.
    comparison: every metric of every model (`instruct_pt.evaluation.compare.Comparison`).
    charts: the plots' paths, in the report's order.
  """

  path: str
  summary: str
  estimates: dict[str, list[paired.Estimate]]
  comparison: Any
  charts: list[str]


def arm_tokens(layout: DemoLayout, size: DemoSize, augmented_texts: Sequence[str]) -> str:
  """Markdown: per arm, its corpus (texts, tokens), the tokens it read (rows x length), the
  loss-bearing ones among them (from its metrics), and the passes over its corpus.

  Passes: Vanilla PT's are its loss-bearing tokens over its corpus tokens (every token of a
  raw text bears loss). Instruct PT draws augmented texts and general instructions 1:1 by
  example, so each source gets about the share of the row tokens that its mean example
  length has of the two means together; its passes are estimates (≈).

  Args:
    layout: the demo's directories.
    size: the demo's size.
    augmented_texts: the synthesis shards' texts (Instruct PT's augmented corpus).
  """
  from instruct_pt.data.tasks import INSTRUCTION_SEPARATOR  # pylint: disable=import-outside-toplevel
  tokenizer = tokenizer_lib.load_tokenizer(layout.base.tokenizer)

  def tokens(texts: Sequence[str]) -> list[int]:
    return [len(ids) + 1 for ids in tokenizer.encode_batch(list(texts))]  # + EOS

  raw = tokens([d["text"] for d in read_documents(layout)])
  augmented = tokens(augmented_texts)
  instructions = tokens([r["prompt"] + INSTRUCTION_SEPARATOR + r["response"]
                         for r in _general_instructions()])
  rows = size.pretrain_tokens
  lines = ["| arm | data | texts | corpus tokens | tokens read (rows) | loss-bearing tokens read "
           "| passes over its corpus |", "|---|---|---|---|---|---|---|"]
  for name, arm in ARMS.items():
    loss_tokens = sum(r.get("loss_tokens", 0) for r in _metrics(layout.arm(name)))
    if arm.data == "raw":
      data, texts, corpus = "raw documents", f"{len(raw)}", f"{sum(raw):,}"
      passes = f"{loss_tokens / max(sum(raw), 1):.2f}"
    else:
      data = "augmented texts + general instructions (1:1 by example)"
      texts = f"{len(augmented)} + {len(instructions)}"
      corpus = f"{sum(augmented):,} + {sum(instructions):,}"
      over_augmented, over_instructions = demo_comparison.mixed_passes(rows, augmented, instructions)
      passes = f"≈ {over_augmented:.2f} + ≈ {over_instructions:.1f}"
    lines.append(f"| {arm.label} | {data}, data seed {arm.seed} | {texts} | {corpus} | "
                 f"{rows:,} | {loss_tokens:,.0f} | {passes} |")
  return "\n".join(lines)


def _general_instructions() -> list[dict[str, str]]:
  """The general instructions Instruct PT mixes in (SeqIO's task module, imported here only)."""
  from instruct_pt.data.tasks import (  # pylint: disable=import-outside-toplevel
      DEMO_DATA_DIR, DEMO_STAND_IN_FILES)
  path = os.path.join(DEMO_DATA_DIR, DEMO_STAND_IN_FILES["demo_instructions"])
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def _metrics(run: run_dir.RunDir) -> list[dict[str, Any]]:
  return [json.loads(line) for line in run.metrics.read_text().splitlines() if line.strip()]


def write_report(layout: DemoLayout, size: DemoSize, timings: dict[str, float]) -> Report:
  """Writes `report.md`, its plots (`DemoLayout.charts`) and `commands.compare`'s table and
  chart from the finished stages' outputs.

  Args:
    layout: the demo's directories.
    size: the demo's size.
    timings: seconds per stage.
  """
  models = evaluated_models(layout, size)
  name = evaluation_run(layout.base, size).results_name()
  comparison = commands.compare([str(m) for m in models.values()], name=name,
                                output_dir=str(layout.root), labels=list(models),
                                cluster_field=demo_comparison.CLUSTER_FIELD)
  results = dict(zip(ARMS, comparison.results))  # the arms lead `models`
  estimates = {label: demo_comparison.paired_estimates(results[subtrahend], results[minuend])
               for label, minuend, subtrahend in COMPARISONS}
  charts = {name: str(path) for name, path in layout.charts.items()}
  charts["compare"] = comparison.chart_path
  demo_report.difference_chart(estimates, charts["differences"],
                               "paired differences to Vanilla PT, 95% intervals")
  curves = {arm.label: [(r["step"], r["loss"]) for r in _metrics(layout.arm(key))
                        if "loss" in r] for key, arm in ARMS.items()}
  demo_report.loss_chart(curves, charts["loss"],
                         f"continual pre-training, {size.pretrain_tokens:,} tokens each")
  stats = json.loads(layout.synthesis.stats.read_text())
  demo_report.category_chart(stats.get("categories", {}), charts["categories"],
                             "task categories of the synthesized pairs")
  records = [json.loads(line) for shard in layout.synthesis.shards()
             for line in shard.read_text().splitlines() if line.strip()]
  tokens = arm_tokens(layout, size, [record["text"] for record in records])
  documents = {d["id"]: d["text"] for d in read_documents(layout)}
  summary = (demo_comparison.primary_table(estimates) + "\n\n"
             + demo_comparison.verdict_lines(estimates) + "\n")
  text = _REPORT.format(
      date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), machine=demo_report.machine(),
      size=size.name, total=sum(timings.values()), stages=_stages_table(layout, size, timings),
      design=demo_comparison.design(size.name), summary=summary, tokens=tokens,
      levels=comparison.table, final_losses=", ".join(
          f"{label} {points[-1][1]:.3f}" for label, points in curves.items() if points),
      synthesis=demo_report.synthesis_line(stats),
      samples=demo_report.sample_pairs(records, documents, 3),
      **{f"{name}_chart": os.path.basename(path) for name, path in charts.items()})
  layout.root.report.write_text(text)
  return Report(str(layout.root.report), summary, estimates, comparison, [
      charts[name] for name in ("differences", "compare", "loss", "categories")])


def _stages_table(layout: DemoLayout, size: DemoSize, timings: dict[str, float]) -> str:
  """Markdown: each stage, its settings (read from the typed configs it ran) and seconds."""
  tuning, synthesis = synthesizer_run(layout, size), synthesis_run(layout, size).synthesis
  limit = "all items" if size.eval_limit is None else f"limit {size.eval_limit}"
  rows = [
      ("import SmolLM2-135M-Instruct", "the bundled GGUF (Q4_1), dequantized to float32"),
      ("fine-tune the synthesizer",
       f"{demo_report.train_settings(tuning)}; task {tuning.data.mixture} (loss on the pairs only)"),
      ("sample the documents",
       f"{size.documents} training-split paragraphs, round-robin across pydoc topics, "
       f"seed {size.seed}"),
      ("synthesize",
       f"the first {size.synthesized} documents, {synthesis.num_rounds} rounds, "
       f"{synthesis.max_new_tokens} new tokens per prompt, temperature "
       f"{synthesis.temperature}, {synthesis.post_processing} post-processing"),
  ]
  for key, arm in ARMS.items():
    data = ("the raw documents" if arm.data == "raw" else
            "instruction-augmented texts + general instructions, 1:1")
    rows.append((f"continual pre-training: {arm.label}",
                 f"{demo_report.train_settings(pretrain_run(layout, size, key))}; {data}"))
  rows.append(("evaluate", f"tasks {', '.join(EVAL_TASKS)} (held-out passages), {limit}, "
                           f"{', '.join(evaluated_models(layout, size))}"))
  lines = ["| stage | settings | seconds |", "|---|---|---|"]
  lines += [f"| {name} | {settings} | {timings.get(name, 0.0):.0f} |" for name, settings in rows]
  return "\n".join(lines)


_REPORT = """\
# Instruction Pre-Training demo: Vanilla PT vs Instruct PT

Domain-adaptive continual pre-training of SmolLM2-135M-Instruct on CPython's documentation
(the paper's section 5 in miniature), run {date} on {machine}; size `{size}`, {total:.0f} s in
all. The arms start from the same model with the same settings and token budget and differ
only in data (and, for the A/A run, data order). Evaluation uses held-out passages only
(`instruct_pt/evaluation/tasks/demo`).

## Design

{design}

## Result

{summary}
![paired differences]({differences_chart})

## What each arm read

{tokens}

## What ran

{stages}

## Every metric of every model

lm-eval's aggregates (± its standard error), then every paired difference to Vanilla PT
(margins clustered by passage, accuracy by McNemar's exact test, bits per byte by a paired
bootstrap):

{levels}

![every metric]({compare_chart})

## Training loss

Final losses: {final_losses}. The arms read different text (the instruct run's includes the
pairs and instructions), so their losses are not comparable with each other; the curves show
that each trained.

![loss]({loss_chart})

## Synthesis

{synthesis}

![categories]({categories_chart})

Synthesized pairs with their source text:

{samples}"""
