"""The functions the AdaptLLM task files name with lm-eval's `!function` tag (which imports
a module beside the YAML file): the dataset loader, each task's `process_results` and the
corpus aggregations, all from `instruct_pt.evaluation.tasks.adaptllm`."""

from instruct_pt.evaluation.tasks import adaptllm

load = adaptllm.load
macro_f1_of = adaptllm.macro_f1_of
weighted_f1_of = adaptllm.weighted_f1_of
headline_f1_of = adaptllm.headline_f1_of
for _task in adaptllm.TASKS.values():
  globals()[f"process_{_task.config.lower()}"] = adaptllm.results_function(_task.name)
