"""`instruct-pt demo --quick`: every stage of the paper's experiment at toy size, its report,
its plots, and resuming by re-running."""

import json
import re

import pytest
from conftest import run_demo

from instruct_pt import demo

PLOTS = ("compare.png", "loss.png", "categories.png")


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
