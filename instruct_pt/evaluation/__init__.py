"""Evaluation with lm-evaluation-harness (the `eval` extra: `pip install -e '.[eval]'`).

Importing this package registers the lm-eval model `instruct_pt` (`lm_eval_model`), so
`lm_eval.simple_evaluate(model="instruct_pt", model_args={"run_dir": RUN}, ...)` works after
it (and `instruct_pt_routed`, partitioned experts behind a router: `routed`); `TASKS_DIR` holds the offline tasks (lm-eval's `include_path`). `python -m
instruct_pt.evaluation` is lm-eval's own CLI with the model registered; `instruct-pt
evaluate` (`runner.evaluate`) writes results into a run directory and `compare` sets runs
side by side.
"""

from instruct_pt.evaluation import lm_eval_model  # registers the model
from instruct_pt.evaluation import routed  # registers the routed experts' model
from instruct_pt.evaluation.tasks import TASKS_DIR

MODEL_NAME = lm_eval_model.MODEL_NAME
ROUTED_MODEL_NAME = routed.MODEL_NAME

__all__ = ["MODEL_NAME", "ROUTED_MODEL_NAME", "TASKS_DIR"]
