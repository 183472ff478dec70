"""The paper's benchmark suites (Cheng et al. 2024, section 6) as lm-eval
groups: `paper_general`, `paper_biomed`, `paper_finance`.

`PAPER_SUITES` is the one table: each paper task maps to an lm-eval task and the metric the
paper reports for it (acc_norm for multiple choice where lm-eval computes it, acc
otherwise), or is marked as needing the AdaptLLM task files. The group YAML files in
`paper/` are rendered from it (`python -m instruct_pt.evaluation.tasks`); a suite with no
lm-eval task at all (finance) has no YAML file, and asking for it names what it needs.

The domain tasks of the paper are the pre-templated test sets of the Hugging Face datasets
`AdaptLLM/medicine-tasks` and `AdaptLLM/finance-tasks` (see
https://github.com/microsoft/LMOps/issues/223); lm-eval ships none of them. PubMedQA and
USMLE run here as lm-eval's own `pubmedqa` and `medqa_4options` (MedQA, USMLE questions
with 4 options), whose prompts differ from AdaptLLM's, so their numbers are not the paper's.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

PAPER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paper")


@dataclasses.dataclass(frozen=True)
class PaperTask:
  """One benchmark of the paper.

  Attributes:
    paper_name: as the paper's tables name it.
    lm_eval_task: the lm-eval task that runs it, or None when it needs AdaptLLM's files.
    metric: the metric reported.
  """

  paper_name: str
  lm_eval_task: Optional[str]
  metric: str = "acc"


@dataclasses.dataclass(frozen=True)
class Suite:
  """A named group of the paper's benchmarks.

  Attributes:
    name: the group name (`--tasks=NAME`).
    tasks: its benchmarks.
    adaptllm_dataset: the Hugging Face dataset with the pre-templated domain tasks.
  """

  name: str
  tasks: tuple[PaperTask, ...]
  adaptllm_dataset: Optional[str] = None

  @property
  def lm_eval_tasks(self) -> list[str]:
    """The lm-eval task names it runs."""
    return [t.lm_eval_task for t in self.tasks if t.lm_eval_task]

  @property
  def needs_adaptllm(self) -> list[str]:
    """The paper tasks that need the AdaptLLM task files."""
    return [t.paper_name for t in self.tasks if not t.lm_eval_task]


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
        PaperTask("PubMedQA", "pubmedqa"),
        PaperTask("ChemProt", None),
        PaperTask("RCT", None),
        PaperTask("MQP", None),
        PaperTask("USMLE", "medqa_4options", "acc_norm"),
    ), adaptllm_dataset="AdaptLLM/medicine-tasks"),
    Suite("paper_finance", (
        PaperTask("ConvFinQA", None),
        PaperTask("Headline", None),
        PaperTask("FiQA SA", None),
        PaperTask("FPB", None),
        PaperTask("NER", None),
    ), adaptllm_dataset="AdaptLLM/finance-tasks"),
)}


def group_yaml(suite: Suite) -> str:
  """The lm-eval group file of `suite` (its lm-eval tasks, the paper's metric of each)."""
  lines = ["# Generated from instruct_pt/evaluation/tasks/suites.py; do not edit.",
           f"group: {suite.name}", "task:"]
  lines += [f"  - {name}" for name in suite.lm_eval_tasks]
  lines += ["metadata:", "  version: 1.0", "  paper_metrics:"]
  lines += [f"    {t.lm_eval_task}: {t.metric}" for t in suite.tasks if t.lm_eval_task]
  if suite.needs_adaptllm:
    lines.append(f"  needs_adaptllm: [{', '.join(suite.needs_adaptllm)}]  "
                 f"# {suite.adaptllm_dataset}")
  return "\n".join(lines) + "\n"


def write_groups(directory: Optional[str] = None) -> list[str]:
  """Writes the group file of every suite that has lm-eval tasks; returns their paths.

  Args:
    directory: where to write (default: the shipped `paper/`).
  """
  directory = directory or PAPER_DIR
  os.makedirs(directory, exist_ok=True)
  written = []
  for suite in PAPER_SUITES.values():
    if suite.lm_eval_tasks:
      path = os.path.join(directory, f"{suite.name}.yaml")
      with open(path, "w", encoding="utf-8") as f:
        f.write(group_yaml(suite))
      written.append(path)
  return written


def check_runnable(name: str) -> Optional[str]:
  """None when `name` is not a paper suite or it can run; a warning naming the paper tasks
  it skips when only some can.

  Args:
    name: a task or group name.

  Raises:
    ValueError: a suite none of whose tasks lm-eval has, naming what it needs.
  """
  suite = PAPER_SUITES.get(name)
  if suite is None or not suite.needs_adaptllm:
    return None
  missing = (f"{', '.join(suite.needs_adaptllm)} need the AdaptLLM task files (Hugging Face "
             f"dataset {suite.adaptllm_dataset}), which lm-eval does not ship (see README, "
             f"Evaluation)")
  if not suite.lm_eval_tasks:
    raise ValueError(f"--tasks={name}: {missing}")
  return f"{name} runs {', '.join(suite.lm_eval_tasks)}; {missing}"
