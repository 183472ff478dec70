"""Offline lm-eval tasks shipped with the package (pass `TASKS_DIR` as lm-eval's include_path).

  demo/    `demo_reading` = `demo_rc` + `demo_rc_one_shot` + `demo_rc_closed` (reading
           comprehension, open- and closed-book) and `demo` = `demo_cloze` +
           `demo_perplexity`, generated from the held-out split of the demo corpus
           snapshot (`demo.py`)
  paper/   `paper_general`, `paper_biomed`: the paper's suites as groups of lm-eval tasks
           (`suites.py`)

`python -m instruct_pt.evaluation.tasks` regenerates the demo data and the suite files
(`--corpus_from_running_python` first rebuilds the corpus snapshot from this Python).
"""

import os

TASKS_DIR = os.path.dirname(os.path.abspath(__file__))
