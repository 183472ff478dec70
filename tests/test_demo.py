"""`instruct-pt demo --quick`: every stage of the paper's experiment at toy size, its report,
its plots, resuming by re-running, and notebooks/quickstart.ipynb headless (nbclient).

One quick demo runs per session (the `quick_demo` fixture, a subprocess on one CPU device, as a
user runs it). The notebook runs in its directory, so its stage cells find their work done and
skip it, as a re-run does; the work itself is what the fixture ran fresh, through the same
`demo` and `commands` functions. (One file, so a parallel run keeps them on one worker.)
"""

import json
import os
import re
import subprocess
import sys

import pytest

from instruct_pt import demo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "notebooks", "quickstart.ipynb")
PLOTS = ("compare.png", "loss.png", "categories.png")


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
  """`instruct-pt demo --quick` run once (a subprocess on one CPU device, as a user runs it):
  `(run directory, CompletedProcess)`. Tests may re-run stages there, not change results."""
  pytest.importorskip("lm_eval")
  pytest.importorskip("seqio")
  run_dir = tmp_path_factory.mktemp("quick_demo")
  result = run_demo(run_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  return run_dir, result


def run_demo(run_dir, quick=True):
  """Runs (or resumes) `instruct-pt demo [--quick] --run_dir=run_dir` in a subprocess."""
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  return subprocess.run([sys.executable, "-m", "instruct_pt.cli", "demo",
                         *(["--quick"] if quick else []), f"--run_dir={run_dir}"], cwd=REPO,
                        capture_output=True, text=True, timeout=1200, check=False, env=env)


def _table(markdown: str) -> tuple[list[str], list[list[str]]]:
  lines = [line for line in markdown.splitlines() if line.startswith("|")]
  cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
  return cells[0], cells[2:]


def test_quick_demo_report_holds_the_results_files_figures(quick_demo):
  run_dir, result = quick_demo
  report = (run_dir / "report.md").read_text()
  header, rows = _table((run_dir / "compare.md").read_text())
  labels = list(demo.evaluated_models(demo.DemoLayout.at(str(run_dir))))
  assert header[2:5] == labels
  name = demo.evaluation_run(demo.DemoLayout.at(str(run_dir)).base, demo.QUICK).results_name()
  layout = demo.DemoLayout.at(str(run_dir))
  results = [json.loads((model.eval_dir(name) / "results.json").read_text())["results"]
             for model in demo.evaluated_models(layout).values()]
  checked = set()
  for task, metric, *cells in rows:
    key = metric.split(" ")[0]
    for column, model_results in enumerate(results):
      value = model_results[task][f"{key},none"]
      assert cells[column].split(" ± ")[0] == f"{value:.4f}", (task, metric, column)
      stderr = model_results[task].get(f"{key}_stderr,none")
      if isinstance(stderr, float):
        assert cells[column].split(" ± ")[1] == f"{stderr:.4f}"
    assert cells[3] == f"{results[1][task][f'{key},none'] - results[0][task][f'{key},none']:+.4f}"
    checked.add((task, key))
  assert {("demo_cloze", "acc"), ("demo_cloze", "acc_norm"),
          ("demo_perplexity", "bits_per_byte")} <= checked
  # The report holds the same table, a verdict per metric, and the printed summary.
  assert (run_dir / "compare.md").read_text() in report
  assert len(re.findall(r"^- demo_cloze acc(_norm)?: Instruct PT − Vanilla PT = [+-]\d\.\d{4} ± "
                        r"\d\.\d{4} \(\|z\| = \d+\.\d\d\): \*\*(within|beyond) noise", report,
                        re.M)) == 2
  assert "report: " + str(run_dir / "report.md") in result.stdout


def test_quick_demo_ran_every_stage_with_real_numbers(quick_demo):
  run_dir, _ = quick_demo
  layout = demo.DemoLayout.at(str(run_dir))
  timings = json.loads(layout.timings.read_text())
  assert len(timings) == 7 and all(seconds > 0 for seconds in timings.values()), timings
  report = layout.root.report.read_text()
  for stage, seconds in timings.items():
    assert f"| {stage} |" in report and f"| {seconds:.0f} |" in report
  for arm in demo.ARMS:
    losses = [json.loads(line)["loss"] for line in layout.arm(arm).metrics.read_text().splitlines()
              if "loss" in line]
    assert len(losses) == demo.QUICK.pretrain_steps and all(0 < x < 20 for x in losses)
  stats = json.loads(layout.synthesis.stats.read_text())
  assert stats["documents"] == demo.QUICK.documents and stats["post_processing"] == "official"
  documents = [json.loads(line) for line in layout.raw_corpus.read_text().splitlines()]
  assert [d["text"] for d in documents] == [
      d["text"] for d in demo.synthesized_documents(layout, demo.QUICK)]
  # The two arms read the same number of tokens, from different data.
  vanilla, instruct = (layout.arm(arm).config_gin.read_text() for arm in demo.ARMS)
  assert "demo_vanilla_pt" in vanilla and "demo_instruct_pt_cpt" in instruct
  assert [l for l in vanilla.splitlines() if l.startswith("train.")] == [
      l for l in instruct.splitlines() if l.startswith("train.")]


def test_quick_demo_plots_are_real_pngs(quick_demo):
  image = pytest.importorskip("matplotlib.image")
  run_dir, _ = quick_demo
  for name in PLOTS:
    path = run_dir / name
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert path.stat().st_size > 5000, name
    pixels = image.imread(str(path))
    assert pixels.shape[0] >= 100 and pixels.shape[1] >= 300, name
    assert pixels.std() > 0.01, name  # not a blank canvas
    assert f"]({name})" in (run_dir / "report.md").read_text()


def test_rerunning_the_demo_skips_finished_stages(quick_demo):
  run_dir, _ = quick_demo
  before = json.loads((run_dir / "timings.json").read_text())
  again = run_demo(run_dir)
  assert again.returncode == 0, again.stderr[-3000:]
  assert again.stdout.count("done earlier") == 7, again.stdout
  assert json.loads((run_dir / "timings.json").read_text()) == before


def test_the_full_demo_refuses_a_quick_demos_directory(quick_demo):
  run_dir, _ = quick_demo
  result = run_demo(run_dir, quick=False)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == (
      f"instruct-pt demo: error: {run_dir} holds a quick demo; run the full one in another "
      f"--run_dir")


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
