"""notebooks/quickstart.ipynb runs headless (nbclient), every cell without error.

It runs in the directory of the session's `instruct-pt demo --quick` run (the `quick_demo`
fixture), so its stage cells find their work done and skip it, as a re-run does; the work
itself is what that fixture ran fresh, through the same `demo` and `commands` functions.
"""

import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "notebooks", "quickstart.ipynb")


def test_notebook_runs_every_cell_and_shows_the_plots(quick_demo):
  nbformat = pytest.importorskip("nbformat")
  nbclient = pytest.importorskip("nbclient")
  run_dir, _ = quick_demo
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device, as Colab
  env["INSTRUCT_PT_NOTEBOOK_RUN_DIR"] = str(run_dir)
  client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": REPO}})
  client.execute(env=env)  # raises CellExecutionError naming the cell on any error
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
  assert printed.count("done earlier") == 7, printed
  images = [o for o in outputs if "image/png" in o.get("data", {})]
  assert len(images) == 3
  assert any("Instruct PT − Vanilla PT" in o.get("data", {}).get("text/markdown", "")
             for o in outputs)
