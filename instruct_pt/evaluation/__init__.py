"""Evaluation with lm-evaluation-harness (the `eval` extra: `pip install -e '.[eval]'`).

With lm-eval installed, importing this package registers the lm-eval model `instruct_pt`
(`lm_eval_model`), so `lm_eval.simple_evaluate(model="instruct_pt", model_args={"run_dir": RUN},
...)` works after it (and `instruct_pt_routed`, partitioned experts behind a router:
`routed`); `TASKS_DIR` holds the offline tasks (lm-eval's `include_path`). `python -m
instruct_pt.evaluation` is lm-eval's own CLI with the model registered; `instruct-pt
evaluate` (`runner.evaluate`) writes results into a run directory and `compare` sets runs
side by side. Without lm-eval the package still imports, so `scoring` (the packed scorer,
which needs only JAX) serves experiments and ahead-of-time compilation.
"""

import importlib.util

from instruct_pt.evaluation.tasks import TASKS_DIR

__all__ = ["TASKS_DIR"]

if importlib.util.find_spec("lm_eval") is not None:
  from instruct_pt.evaluation import lm_eval_model  # registers the model
  from instruct_pt.evaluation import routed  # registers the routed experts' model

  MODEL_NAME = lm_eval_model.MODEL_NAME
  ROUTED_MODEL_NAME = routed.MODEL_NAME
  __all__ += ["MODEL_NAME", "ROUTED_MODEL_NAME"]
