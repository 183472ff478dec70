"""The AdaptLLM domain tasks (the paper's biomedicine and finance tables, and law) as lm-eval
tasks that score as the official evaluation does (microsoft/LMOps `adaptllm/`).

Each task is a pre-templated test set of a Hugging Face dataset (`AdaptLLM/medicine-tasks`,
`AdaptLLM/finance-tasks`, `AdaptLLM/law-tasks`; one config per task, split `test`); its
few-shot examples are already inside `input`, so the tasks run zero-shot. Three kinds:

* **choice**: `input` then each of `options` (scored as `' ' + option`), `gold_index` the
  answer (a list of answers for UNFAIR_ToS). The official code picks the option with the
  lowest *mean* token loss, so each option's summed log-likelihood is divided by its number
  of continuation tokens: the dataset loader counts them with the model's tokenizer, split
  as lm-eval splits context and continuation (`continuation_tokens`).
* **choice_inputs** (CaseHOLD): one input per option (`input_options`), the same `output`
  after each (no space), scored the same way.
* **generate** (NER, ConvFinQA): greedy generation up to the first newline, at most 100
  tokens, scored against `label`. (The official batched generation stops once every row of
  a batch has a newline, so its NER predictions may run past the first line; here they stop
  at it.)

The tokenizer comes from the task metadata lm-eval hands the dataset loader: `tokenizer`,
else `pretrained` (with `gguf_file`) for lm-eval's `hf` model, both read by transformers;
else `run_dir`, any model source of ours (`instruct-pt evaluate` passes it). The data comes
from the hub, or with `adaptllm_dir` from `DIR/<config>/test.json` or `test.jsonl` (the
layout of a downloaded copy of the datasets; `instruct-pt evaluate --adaptllm_dir=DIR`).

`TASKS` is the one table; `python -m instruct_pt.evaluation.tasks` renders the YAML files in
`adaptllm/` from it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable, Optional, Sequence

from instruct_pt.evaluation import adaptllm_metrics as metrics
from instruct_pt.evaluation import tasks as tasks_lib

ADAPTLLM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "adaptllm")
MAX_NEW_TOKENS = 100  # the official generate_max_len


@dataclasses.dataclass(frozen=True)
class Metric:
  """A metric of the AdaptLLM tasks as lm-eval computes it.

  Attributes:
    name: lm-eval's metric name.
    aggregation: "mean" over per-document values, or the name of a corpus function here
      (its per-document items are tuples).
  """

  name: str
  aggregation: str = "mean"


ACC = Metric("acc")
# Single-label micro-F1 equals accuracy, so it is the mean of per-document hits (with stderr).
MICRO_F1 = Metric("micro_f1")
MACRO_F1 = Metric("macro_f1", "macro_f1_of")
WEIGHTED_F1 = Metric("weighted_f1", "weighted_f1_of")
HEADLINE_F1 = Metric("multi_class_weighted_f1", "headline_f1_of")
ENTITY_F1 = Metric("entity_level_f1")
CONVFINQA_EM = Metric("convfinqa_em")
MULTI_LABEL_ACC = Metric("multi_label_acc")


@dataclasses.dataclass(frozen=True)
class Task:
  """One AdaptLLM task.

  Attributes:
    config: the dataset config (the official task name).
    dataset: the Hugging Face dataset.
    kind: "choice", "choice_inputs" or "generate".
    metrics: its metrics, the one the paper averages first.
  """

  config: str
  dataset: str
  kind: str
  metrics: tuple[Metric, ...]

  @property
  def name(self) -> str:
    """The lm-eval task name."""
    return f"adaptllm_{self.config.lower()}"


MEDICINE, FINANCE, LAW = (f"AdaptLLM/{d}-tasks" for d in ("medicine", "finance", "law"))
TASKS = {task.name: task for task in (
    Task("PubMedQA", MEDICINE, "choice", (ACC,)),
    Task("ChemProt", MEDICINE, "choice", (MICRO_F1,)),
    Task("RCT", MEDICINE, "choice", (MICRO_F1,)),
    Task("MQP", MEDICINE, "choice", (ACC,)),
    Task("USMLE", MEDICINE, "choice", (ACC,)),
    Task("ConvFinQA", FINANCE, "generate", (CONVFINQA_EM,)),
    Task("Headline", FINANCE, "choice", (HEADLINE_F1,)),
    Task("FiQA_SA", FINANCE, "choice", (WEIGHTED_F1,)),
    Task("FPB", FINANCE, "choice", (WEIGHTED_F1,)),
    Task("NER", FINANCE, "generate", (ENTITY_F1,)),
    Task("SCOTUS", LAW, "choice", (MICRO_F1, MACRO_F1)),
    Task("CaseHOLD", LAW, "choice_inputs", (MICRO_F1, MACRO_F1)),
    Task("UNFAIR_ToS", LAW, "choice", (MULTI_LABEL_ACC,)),
)}


# ---- Corpus aggregations (lm-eval's `aggregation`, over per-document items).

def macro_f1_of(items: Sequence[tuple[Any, Any]]) -> float:
  """Macro-F1 of (gold, prediction) items."""
  return metrics.macro_f1([g for g, _ in items], [p for _, p in items])


def weighted_f1_of(items: Sequence[tuple[Any, Any]]) -> float:
  """Weighted F1 of (gold, prediction) items."""
  return metrics.weighted_f1([g for g, _ in items], [p for _, p in items])


def headline_f1_of(items: Sequence[tuple[int, Any, Any]]) -> float:
  """Headline's per-question weighted F1, averaged, of (class_id, gold, prediction) items."""
  return metrics.headline_f1(items)


CORPUS_AGGREGATIONS = {"macro_f1_of": macro_f1_of, "weighted_f1_of": weighted_f1_of,
                       "headline_f1_of": headline_f1_of}


# ---- Per-document results (lm-eval's `process_results`).

def _choice_items(doc: dict, results: Sequence[tuple[float, bool]]) -> dict[str, Any]:
  """Every metric's item for a choice document, from its options' log-likelihoods."""
  pred = metrics.mean_token_choice([ll for ll, _ in results], doc["option_tokens"])
  gold = doc["gold_index"]
  single = gold if not isinstance(gold, list) else None
  hit = float(metrics.multi_label_hit(gold, pred))
  return {"acc": hit, "micro_f1": hit, "multi_label_acc": hit,
          "macro_f1": (single, pred), "weighted_f1": (single, pred),
          "multi_class_weighted_f1": (doc.get("class_id"), single, pred)}


def _generation_items(doc: dict, results: Sequence[str]) -> dict[str, Any]:
  """Every metric's item for a generation document."""
  label = doc["label"] if isinstance(doc["label"], str) else doc["label"][0]
  return {"entity_level_f1": metrics.ner_f1(label, results[0]),
          "convfinqa_em": float(metrics.convfinqa_match(label, results[0]))}


def results_function(task_name: str) -> Callable[[dict, Sequence], dict[str, Any]]:
  """The `process_results` of a task: its metrics' items of one document.

  Args:
    task_name: a `TASKS` name.
  """
  task = TASKS[task_name]
  items = _generation_items if task.kind == "generate" else _choice_items

  def process_results(doc: dict, results: Sequence) -> dict[str, Any]:
    every = items(doc, results)
    return {metric.name: every[metric.name] for metric in task.metrics}
  return process_results


# ---- The dataset loader (lm-eval's `custom_dataset`).

def continuation_tokens(encode: Callable[[str], list[int]], context: str,
                        continuation: str) -> int:
  """How many tokens lm-eval scores for `continuation` after `context`: trailing whitespace
  of the context moves to the continuation, and the continuation is the whole text's tokens
  after the context's.

  Args:
    encode: the tokenizer, text -> ids (special tokens or not: only differences count).
    context: the request's context.
    continuation: the request's continuation.
  """
  spaces = len(context) - len(context.rstrip())
  if spaces:
    context, continuation = context[:-spaces], context[-spaces:] + continuation
  return len(encode(context + continuation)) - len(encode(context))


@functools.lru_cache(maxsize=4)
def _encoder(tokenizer: Optional[str], pretrained: Optional[str], gguf_file: Optional[str],
             run_dir: Optional[str]) -> Callable[[str], list[int]]:
  if tokenizer or pretrained:
    import transformers  # pylint: disable=import-outside-toplevel
    kwargs = {"gguf_file": gguf_file} if gguf_file and not tokenizer else {}
    hf = transformers.AutoTokenizer.from_pretrained(tokenizer or pretrained, **kwargs)
    return lambda text: hf(text, add_special_tokens=False)["input_ids"]
  from instruct_pt import run_dir as run_dir_lib  # pylint: disable=import-outside-toplevel
  ours = run_dir_lib.load(run_dir, with_params=False).tokenizer
  if ours is None:
    raise ValueError(f"{run_dir}: no tokenizer (the AdaptLLM choice tasks count option tokens)")
  return ours.encode


def _rows(dataset: str, config: str, local_dir: Optional[str]):
  """The test split, from the hub or from `local_dir/<config>/test.json[l]`."""
  import datasets  # pylint: disable=import-outside-toplevel
  if not local_dir:
    return datasets.load_dataset(dataset, config, split="test")
  candidates = [os.path.join(local_dir, config, f"test.{ext}") for ext in ("jsonl", "json")]
  found = [path for path in candidates if os.path.isfile(path)]
  if not found:
    raise FileNotFoundError(f"adaptllm_dir={local_dir}: no {config}/test.jsonl or "
                            f"{config}/test.json (a copy of {dataset}, config {config})")
  return datasets.load_dataset("json", data_files={"test": found[0]}, split="test")


def _check_fields(rows, task: Task, where: str) -> None:
  needed = {"choice": ("input", "options", "gold_index"),
            "choice_inputs": ("input_options", "output", "gold_index"),
            "generate": ("input", "label")}[task.kind]
  if task.config == "Headline":
    needed += ("class_id",)
  missing = [name for name in needed if name not in rows.column_names]
  if missing:
    raise ValueError(f"{where}: {task.config} rows lack {', '.join(missing)} (they have "
                     f"{', '.join(rows.column_names)})")


def load(adaptllm_task: str, adaptllm_dir: Optional[str] = None, tokenizer: Optional[str] = None,
         pretrained: Optional[str] = None, gguf_file: Optional[str] = None,
         run_dir: Optional[str] = None, **unused: Any):
  """The test split of an AdaptLLM task, each choice row with its options' token counts
  (`option_tokens`); lm-eval calls it with the task's metadata.

  Args:
    adaptllm_task: a `TASKS` name.
    adaptllm_dir: a local copy of the datasets (None: the Hugging Face hub).
    tokenizer: a transformers tokenizer name or directory.
    pretrained: lm-eval's `hf` model argument (used when `tokenizer` is not given).
    gguf_file: lm-eval's `hf` model argument, with `pretrained`.
    run_dir: a model source of ours (used when neither is given).
    **unused: the rest of the metadata.

  Raises:
    ValueError: a choice task with no tokenizer named, or rows without the task's fields.
    FileNotFoundError: `adaptllm_dir` without the task's file.
  """
  del unused
  import datasets  # pylint: disable=import-outside-toplevel
  task = TASKS[adaptllm_task]
  rows = _rows(task.dataset, task.config, adaptllm_dir)
  _check_fields(rows, task, adaptllm_dir or task.dataset)
  if task.kind != "generate":
    if not (tokenizer or pretrained or run_dir):
      raise ValueError(f"{task.name} scores each option by its mean token log-likelihood and "
                       f"needs the model's tokenizer: pass --metadata='{{\"tokenizer\": NAME}}' "
                       f"(instruct-pt evaluate passes its model)")
    encode = _encoder(tokenizer, pretrained, gguf_file, run_dir)
    if task.kind == "choice":
      counts = [[continuation_tokens(encode, row["input"], " " + option)
                 for option in row["options"]] for row in rows]
    else:
      counts = [[continuation_tokens(encode, option, row["output"])
                 for option in row["input_options"]] for row in rows]
    rows = rows.add_column("option_tokens", counts)
  return datasets.DatasetDict({"test": rows})


# ---- The YAML files.

def task_yaml(task: Task) -> str:
  """The lm-eval task file of `task`."""
  lines = ["# Generated from instruct_pt/evaluation/tasks/adaptllm.py; do not edit.",
           f"task: {task.name}",
           "custom_dataset: !function functions.load",
           "dataset_kwargs:", f"  adaptllm_task: {task.name}",
           "test_split: test", "num_fewshot: 0"]
  if task.kind == "generate":
    lines += ["output_type: generate_until", "doc_to_text: input",
              "doc_to_target: label", "generation_kwargs:", "  until: [\"\\n\"]",
              "  do_sample: false", f"  max_gen_toks: {MAX_NEW_TOKENS}"]
  elif task.kind == "choice":
    lines += ["output_type: multiple_choice", "doc_to_text: input",
              "doc_to_choice: options", "doc_to_target: gold_index", "target_delimiter: \" \""]
  else:
    lines += ["output_type: multiple_choice", "doc_to_text: gold_index",
              "doc_to_choice: input_options", "doc_to_target: output", "target_delimiter: \"\""]
  lines += [f"process_results: !function functions.process_{task.config.lower()}",
            "metric_list:"]
  for metric in task.metrics:
    aggregation = (metric.aggregation if metric.aggregation == "mean"
                   else f"!function functions.{metric.aggregation}")
    lines += [f"  - metric: {metric.name}", f"    aggregation: {aggregation}",
              "    higher_is_better: true"]
  lines += ["metadata:", "  version: 1.0", f"  dataset: {task.dataset}",
            f"  config: {task.config}"]
  return "\n".join(lines) + "\n"


def write_tasks(directory: Optional[str] = None) -> list[str]:
  """Writes every task's YAML file; returns their paths.

  Args:
    directory: where to write (default: the shipped `adaptllm/`).
  """
  return tasks_lib.write_texts(directory or ADAPTLLM_DIR,
                              {f"{task.name}.yaml": task_yaml(task) for task in TASKS.values()})
