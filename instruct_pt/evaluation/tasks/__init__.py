"""Offline lm-eval tasks shipped with the package (pass `TASKS_DIR` as lm-eval's include_path).

  demo/    `demo_reading` = `demo_rc` + `demo_rc_one_shot` + `demo_rc_closed` (reading
           comprehension, open- and closed-book) and `demo` = `demo_cloze` +
           `demo_perplexity`, generated from the held-out split of the demo corpus
           snapshot (`demo.py`)
  adaptllm/ `adaptllm_*`: AdaptLLM's domain tasks (biomedicine, finance, law), scored as
           the official code scores them (`adaptllm.py`; data from the hub or a local copy)
  paper/   `paper_general`, `paper_biomed`, `paper_finance`, `adaptllm_law`: the paper's
           suites as groups of lm-eval tasks (`suites.py`)

`python -m instruct_pt.evaluation.tasks` regenerates the demo data, the AdaptLLM task files and
the suite files (`--corpus_from_running_python` first rebuilds the corpus snapshot from this
Python).
"""

import os

TASKS_DIR = os.path.dirname(os.path.abspath(__file__))


def write_texts(directory: str, texts: dict[str, str]) -> list[str]:
  """Writes each file name's text under `directory` (created if needed); returns the paths.

  Args:
    directory: where to write.
    texts: file name -> its text.
  """
  os.makedirs(directory, exist_ok=True)
  paths = []
  for name, text in texts.items():
    paths.append(os.path.join(directory, name))
    with open(paths[-1], "w", encoding="utf-8") as f:
      f.write(text)
  return paths
