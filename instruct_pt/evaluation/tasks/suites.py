"""The paper's benchmark suites (Cheng et al. 2024, section 6) as lm-eval groups:
`paper_general`, `paper_biomed`, `paper_finance`, and `adaptllm_law` (AdaptLLM's law tasks,
not in the Instruct PT paper, from the same evaluation code).

`PAPER_SUITES` is the one table: each paper task maps to an lm-eval task and the metric the
paper reports for it. General tasks are lm-eval's own (the paper: acc_norm for multiple
choice; lm-eval computes it for ARC, PIQA, OBQA and HellaSwag, only acc for the others). The
domain tasks are the AdaptLLM tasks (`adaptllm.py`), scored as the official code scores them.
The group files in `paper/` are rendered from it (`python -m instruct_pt.evaluation.tasks`).

`suite_table` writes a suite's results as the paper's tables show them: each task's metric
times 100 with its standard error, and the suite's average, the unweighted mean over its
tasks (its standard error sqrt(sum of squared task errors) / tasks, the tasks being
independent samples).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Optional

from instruct_pt.evaluation import tasks as tasks_lib
from instruct_pt.evaluation.tasks import adaptllm

PAPER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paper")
NOT_STATED = "not stated by the paper; lm-eval's default, 0"


@dataclasses.dataclass(frozen=True)
class PaperTask:
  """One benchmark of the paper.

  Attributes:
    paper_name: as the paper's tables name it.
    lm_eval_task: the lm-eval task (or group) that runs it.
    metric: the metric the paper reports (lm-eval's name).
    shots: the few-shot setting, as the paper or the task states it.
  """

  paper_name: str
  lm_eval_task: str
  metric: str = "acc"
  shots: str = NOT_STATED


def _adaptllm(paper_name: str, config: str) -> PaperTask:
  task = adaptllm.TASKS[f"adaptllm_{config.lower()}"]
  return PaperTask(paper_name, task.name, task.metrics[0].name,
                   "0: the few-shot examples are inside each pre-templated input")


@dataclasses.dataclass(frozen=True)
class Suite:
  """A named group of the paper's benchmarks.

  Attributes:
    name: the group name (`--tasks=NAME`).
    tasks: its benchmarks.
  """

  name: str
  tasks: tuple[PaperTask, ...]

  @property
  def lm_eval_tasks(self) -> list[str]:
    """The lm-eval task names it runs."""
    return [t.lm_eval_task for t in self.tasks]


PAPER_SUITES = {suite.name: suite for suite in (
    Suite("paper_general", (
        PaperTask("ARC-e", "arc_easy", "acc_norm"),
        PaperTask("ARC-c", "arc_challenge", "acc_norm"),
        PaperTask("BoolQ", "boolq"),
        PaperTask("SIQA", "social_iqa"),
        PaperTask("WinoGrande", "winogrande"),
        PaperTask("PIQA", "piqa", "acc_norm"),
        PaperTask("OBQA", "openbookqa", "acc_norm"),
        PaperTask("HellaSwag", "hellaswag", "acc_norm"),
        PaperTask("MMLU", "mmlu"),
    )),
    Suite("paper_biomed", (
        _adaptllm("PubMedQA", "PubMedQA"),
        _adaptllm("ChemProt", "ChemProt"),
        _adaptllm("RCT", "RCT"),
        _adaptllm("MQP", "MQP"),
        _adaptllm("USMLE", "USMLE"),
    )),
    Suite("paper_finance", (
        _adaptllm("ConvFinQA", "ConvFinQA"),
        _adaptllm("Headline", "Headline"),
        _adaptllm("FiQA SA", "FiQA_SA"),
        _adaptllm("FPB", "FPB"),
        _adaptllm("NER", "NER"),
    )),
    Suite("adaptllm_law", (
        _adaptllm("SCOTUS", "SCOTUS"),
        _adaptllm("CaseHOLD", "CaseHOLD"),
        _adaptllm("UNFAIR-ToS", "UNFAIR_ToS"),
    )),
)}


def group_yaml(suite: Suite) -> str:
  """The lm-eval group file of `suite` (its tasks, the paper's metric and shots of each)."""
  lines = ["# Generated from instruct_pt/evaluation/tasks/suites.py; do not edit.",
           f"group: {suite.name}", "task:"]
  lines += [f"  - {name}" for name in suite.lm_eval_tasks]
  lines += ["metadata:", "  version: 1.0", "  paper_metrics:"]
  lines += [f"    {t.lm_eval_task}: {t.metric}  # shots: {t.shots}" for t in suite.tasks]
  return "\n".join(lines) + "\n"


def write_groups(directory: Optional[str] = None) -> list[str]:
  """Writes the group file of every suite; returns their paths.

  Args:
    directory: where to write (default: the shipped `paper/`).
  """
  return tasks_lib.write_texts(directory or PAPER_DIR, {
      f"{suite.name}.yaml": group_yaml(suite) for suite in PAPER_SUITES.values()})


@dataclasses.dataclass(frozen=True)
class SuiteRow:
  """One line of a suite's table: a score times 100 and its standard error (None: none)."""

  name: str
  metric: str
  score: float
  stderr: Optional[float]


def suite_rows(suite: Suite, results: dict[str, Any]) -> Optional[list[SuiteRow]]:
  """The suite's tasks' paper metrics (times 100) and, last, their unweighted mean.

  Args:
    suite: the suite.
    results: lm-eval's results dict (its "results" section is read).

  Returns:
    None when any of the suite's tasks is missing from `results`.
  """
  scores = results.get("results", {})
  rows = []
  for task in suite.tasks:
    entry = scores.get(task.lm_eval_task, {})
    value = entry.get(f"{task.metric},none")
    if not isinstance(value, (int, float)):
      return None
    stderr = entry.get(f"{task.metric}_stderr,none")
    rows.append(SuiteRow(task.paper_name, task.metric, 100 * value,
                         100 * stderr if isinstance(stderr, (int, float)) else None))
  errors = [row.stderr for row in rows]
  mean_stderr = (None if None in errors else
                 math.sqrt(sum(e * e for e in errors)) / len(errors))
  rows.append(SuiteRow("average", f"mean of {len(rows)}",
                       sum(row.score for row in rows) / len(rows), mean_stderr))
  return rows


def suite_table(suite: Suite, results: dict[str, Any]) -> Optional[str]:
  """`suite_rows` as a markdown table, or None when a task is missing.

  Args:
    suite: the suite.
    results: lm-eval's results dict.
  """
  rows = suite_rows(suite, results)
  if rows is None:
    return None
  lines = [f"{suite.name} (x100)", "", "| task | metric | score | stderr |", "|---|---|---|---|"]
  lines += [f"| {row.name} | {row.metric} | {row.score:.1f} | "
            f"{'N/A' if row.stderr is None else f'{row.stderr:.1f}'} |" for row in rows]
  return "\n".join(lines) + "\n"
