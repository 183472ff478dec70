"""`python -m instruct_pt.evaluation ...`: lm-eval's own command line (every flag of
`lm-eval run`), with the `instruct_pt` model registered, e.g.

  python -m instruct_pt.evaluation --model instruct_pt --model_args run_dir=RUN \
      --tasks demo --include_path "$(python -c 'import instruct_pt.evaluation as e; print(e.TASKS_DIR)')"

(lm-eval 0.4 has no plugin hook for models, hence this entry point.)
"""

from lm_eval.__main__ import cli_evaluate

import instruct_pt.evaluation  # pylint: disable=unused-import  # registers the model

if __name__ == "__main__":
  cli_evaluate()
