"""Offline lm-eval tasks shipped with the package (pass `TASKS_DIR` as lm-eval's include_path).

  demo/    `demo` = `demo_cloze` + `demo_perplexity`, generated from the embedded corpus's
           held-out split (`demo.py`)
  paper/   `paper_general`, `paper_biomed`: the paper's suites as groups of lm-eval tasks
           (`suites.py`)

`python -m instruct_pt.evaluation.tasks` regenerates the demo data and the suite files.
"""

import os

TASKS_DIR = os.path.dirname(os.path.abspath(__file__))
