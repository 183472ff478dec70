"""`instruct-pt evaluate`: lm-eval's `simple_evaluate` with our model, results written to disk.

`evaluate` checks what a user can get wrong before any model loads (task files that do not
parse, unknown task names), then runs lm-eval and writes lm-eval's own `results.json` and its
markdown table (`results.md`), followed by each paper suite it ran as the paper's tables show
it (`suites.suite_table`). Corpus metrics lm-eval gives no standard error (the AdaptLLM
tasks' macro and weighted F1) get a bootstrap one over their documents. Task names are looked up
in the shipped tasks and `include_path` first; lm-eval's own tasks are indexed (several
seconds) only when a name is not found there.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from typing import Any, Optional, Sequence

import yaml
from lm_eval import simple_evaluate
from lm_eval import utils as lm_eval_utils
from lm_eval.tasks import TaskManager
from lm_eval.tasks._yaml_loader import load_yaml  # lm-eval's own loader (includes, !function)

from instruct_pt import run_dir
from instruct_pt.evaluation.lm_eval_model import InstructPTLM
from instruct_pt.evaluation import adaptllm_metrics
from instruct_pt.evaluation.tasks import TASKS_DIR, adaptllm, suites

RESULTS_FILE = run_dir.EVAL_RESULTS_FILE
TABLE_FILE = "results.md"


def check_task_files(directories: Sequence[str]) -> None:
  """Parses every task file (`*.yaml`) under `directories` as lm-eval would.

  lm-eval's index skips a file it cannot parse without a word, so a typo there would surface
  only as an unknown task; this names the file and line instead.

  Args:
    directories: task directories (the shipped one and `include_path`).

  Raises:
    ValueError: a file that does not parse (naming file and line) or is not a mapping.
    FileNotFoundError: a directory that does not exist.
  """
  for directory in directories:
    if not os.path.isdir(directory):
      raise FileNotFoundError(f"task directory {directory} does not exist")
    for root, dirs, files in os.walk(directory):
      dirs[:] = sorted(d for d in dirs if d != "__pycache__")
      for name in sorted(f for f in files if f.endswith(".yaml")):
        path = os.path.join(root, name)
        try:
          load_yaml(path, resolve_func=False)
        except yaml.MarkedYAMLError as e:
          mark = e.problem_mark or e.context_mark
          raise ValueError(f"{mark.name}:{mark.line + 1}: malformed task file "
                           f"({e.problem or e.context})") from e
        except (yaml.YAMLError, ValueError, OSError) as e:
          raise ValueError(f"{path}: malformed task file ({e})") from e


def resolve_tasks(names: Sequence[str], include_path: Sequence[str] = (),
                  metadata: Optional[dict[str, Any]] = None) -> tuple[TaskManager, list[str]]:
  """lm-eval's task manager and the task names (globs expanded) to run.

  Args:
    names: task, group or tag names, or globs.
    include_path: task directories besides the shipped ones.
    metadata: what every task's metadata gets (the AdaptLLM tasks read `run_dir`, the
      model whose tokenizer counts option tokens, and `adaptllm_dir`, a local copy of
      their data).

  Raises:
    ValueError: a name no task matches (naming it and the closest known names).
  """
  paths = [TASKS_DIR, *include_path]
  check_task_files(paths)
  manager = TaskManager(include_path=paths, include_defaults=False, metadata=metadata)
  if any(not manager.match_tasks([name]) for name in names):
    logging.info("indexing lm-eval's own tasks")
    manager = TaskManager(include_path=paths, metadata=metadata)
  resolved = []
  for name in names:
    matched = manager.match_tasks([name])
    if not matched:
      close = difflib.get_close_matches(name, manager.all_tasks, n=5, cutoff=0.6)
      hint = (f"closest known: {', '.join(close)}" if close else
              "no known name is close (`lm-eval ls tasks` lists them)")
      raise ValueError(f"unknown task {name!r}; {hint}")
    resolved += [m for m in matched if m not in resolved]
  return manager, resolved


def evaluate(model: InstructPTLM, tasks: Sequence[str], output_dir: Optional[str],
             num_fewshot: Optional[int] = None, limit: Optional[int] = None,
             include_path: Sequence[str] = (), task_manager: Optional[TaskManager] = None,
             ) -> Optional[dict[str, Any]]:
  """Runs lm-eval on `model` and writes `results.json` and `results.md` to `output_dir`.

  Args:
    model: the model.
    tasks: resolved task names (`resolve_tasks`).
    output_dir: where results go (None: not written); created if needed.
    num_fewshot: few-shot examples per task (None: each task's default).
    limit: documents per task (None: all).
    include_path: task directories besides the shipped ones.
    task_manager: the manager `resolve_tasks` built (default: a new one).

  Returns:
    lm-eval's results dict on process 0, None on the other processes.
  """
  results = simple_evaluate(
      model=model, tasks=list(tasks), num_fewshot=num_fewshot, limit=limit,
      task_manager=task_manager or TaskManager(include_path=[TASKS_DIR, *include_path]))
  if results is None:
    return results
  fill_corpus_stderrs(results)
  if output_dir is None:
    return results
  os.makedirs(output_dir, exist_ok=True)
  with open(os.path.join(output_dir, RESULTS_FILE), "w", encoding="utf-8") as f:
    json.dump(results, f, indent=2, default=lm_eval_utils.handle_non_serializable,
              ensure_ascii=False)
  with open(os.path.join(output_dir, TABLE_FILE), "w", encoding="utf-8") as f:
    f.write(results_table(results))
  return results


def fill_corpus_stderrs(results: dict[str, Any], resamples: int = 1000) -> None:
  """Puts a bootstrap standard error (over the logged documents) in place of lm-eval's
  "N/A" for the AdaptLLM tasks' corpus metrics.

  Args:
    results: lm-eval's results dict, with its logged samples; changed in place.
    resamples: bootstrap resamples.
  """
  for name, scores in results.get("results", {}).items():
    task = adaptllm.TASKS.get(name)
    samples = results.get("samples", {}).get(name)
    if task is None or not samples:
      continue
    for metric in task.metrics:
      key = f"{metric.name}_stderr,none"
      if metric.aggregation != "mean" and scores.get(key) in (None, "N/A"):
        aggregate = adaptllm.CORPUS_AGGREGATIONS[metric.aggregation]
        stderr = adaptllm_metrics.bootstrap_stderr(
            aggregate, [tuple(s[metric.name]) for s in samples], resamples)
        scores[key] = "N/A" if stderr is None else stderr


def results_table(results: dict[str, Any]) -> str:
  """lm-eval's markdown tables of `results` (tasks, then groups when there are any), each
  paper suite it holds as the paper shows it, and the requests truncated to fit the model."""
  table = lm_eval_utils.make_table(results)
  if results.get("groups"):
    table += "\n" + lm_eval_utils.make_table(results, "groups")
  for suite in suites.PAPER_SUITES.values():
    suite_table = suites.suite_table(suite, results)
    if suite_table:
      table += "\n" + suite_table
  truncated = results.get("config", {}).get("truncated_requests")
  if truncated is not None:
    table += (f"\n{truncated} requests longer than max_length="
              f"{results['config'].get('max_length')} were truncated from the left.\n")
  return table
