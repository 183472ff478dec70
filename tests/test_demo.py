"""`instruct-pt demo --quick`: every stage of the paper's experiment at toy size, its report,
its plots, resuming by re-running, and notebooks/quickstart.ipynb headless (nbclient).

One quick demo runs per session (the `quick_demo` fixture, a subprocess on one CPU device, as a
user runs it: the `instruct-pt` of a wheel built with `python -m build` and installed,
non-editable, into a fresh venv, from a directory outside the clone). The notebook runs in a copy of its first stages (model, synthesizer, documents,
synthesis), so its cells skip those and train, evaluate and report themselves, through the
same `demo` and `commands` functions. (One file, so a parallel run keeps them on one worker.)
"""

import dataclasses
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys

import pytest

from instruct_pt import demo, demo_comparison
from instruct_pt.data import demo_corpus, sources

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "notebooks", "quickstart.ipynb")
PLOTS = ("differences.png", "compare.png", "loss.png", "categories.png")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
  """`(instruct-pt, working directory)`: the console script of the project's wheel, built with
  `python -m build` from a copy of the sources and installed non-editable into a fresh venv
  (its dependencies are this venv's, on its path through a .pth file, which adds no editable
  install), and a directory outside the clone to run it from."""
  root = tmp_path_factory.mktemp("installed")
  sources = root / "sources"
  sources.mkdir()
  shutil.copy(os.path.join(REPO, "setup.py"), sources)
  for package in ("instruct_pt", "configs"):
    shutil.copytree(os.path.join(REPO, package), sources / package,
                    ignore=shutil.ignore_patterns("__pycache__"))
  subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o",
                  str(root / "dist"), str(sources)], check=True, capture_output=True)
  (wheel,) = (root / "dist").glob("instruct_pt-*.whl")
  venv = root / "venv"
  subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
  (site_packages,) = venv.glob("lib/python*/site-packages")
  (site_packages / "dependencies.pth").write_text(
      next(p for p in sys.path if p.endswith("site-packages")) + "\n")
  subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                  "install", "--quiet", "--no-deps", "--no-index", str(wheel)], check=True)
  outside = root / "elsewhere"
  outside.mkdir()
  return str(venv / "bin" / "instruct-pt"), outside


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory, installed):
  """`instruct-pt demo --quick` run once (a subprocess on one CPU device, as a user runs it):
  `(run directory, CompletedProcess)`. Tests may re-run stages there, not change results."""
  pytest.importorskip("lm_eval")
  pytest.importorskip("seqio")
  run_dir = tmp_path_factory.mktemp("quick_demo")
  result = run_demo(installed, run_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  return run_dir, result


def run_demo(installed, run_dir, quick=True):
  """Runs (or resumes) `instruct-pt demo [--quick] --run_dir=run_dir` in a subprocess.

  Args:
    installed: the `installed` fixture.
    run_dir: the demo's directory.
    quick: the quick demo (else the full one).
  """
  executable, cwd = installed
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PYTHONPATH")}
  return subprocess.run([executable, "demo", *(["--quick"] if quick else []),
                         f"--run_dir={run_dir}"], cwd=cwd, capture_output=True, text=True,
                        timeout=1200, check=False, env=env)


def test_the_wheel_holds_the_recipes_and_runs_from_outside_the_clone(installed):
  """The installed package is the wheel's (not the clone's), reports its version, and finds its
  shipped recipes by name from another directory."""
  executable, cwd = installed
  python = os.path.join(os.path.dirname(executable), "python")
  where = subprocess.run(
      [python, "-c", "import instruct_pt.recipes as c; print(c.__file__); print(c.CONFIG_ROOT);"
       "print(c.resolve_config_path('pretrain/instructlm_1_3b'))"],
      cwd=cwd, capture_output=True, text=True, check=True).stdout.split()
  venv = os.path.dirname(os.path.dirname(executable))
  assert all(path.startswith(venv) for path in where), where
  assert where[2].endswith(os.path.join("instruct_pt", "configs", "pretrain",
                                        "instructlm_1_3b.gin"))
  version = subprocess.run([executable, "--version"], cwd=cwd, capture_output=True, text=True,
                           check=True)
  assert version.stdout.strip() == f"instruct-pt {importlib.metadata.version('instruct_pt')}"


def _table(markdown: str) -> tuple[list[str], list[list[str]]]:
  lines = [line for line in markdown.splitlines() if line.startswith("|")]
  cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
  return cells[0], cells[2:]


def test_quick_demo_report_leads_with_the_declared_paired_comparison(quick_demo):
  """The report's first table is the primary measure, its controls and the A/A run, with the
  estimates `paired_estimates` gives on the runs' results files; the printed summary is it."""
  run_dir, result = quick_demo
  layout = demo.DemoLayout.at(str(run_dir))
  report = layout.root.report.read_text()
  result_section = report.split("## Result\n\n", 1)[1]
  header, rows = _table(result_section.split("\n\n", 1)[0])
  assert header[2] == "Instruct PT − Vanilla PT [95% CI]"
  assert header[4] == "A/A: Vanilla PT (data seed 1) − Vanilla PT [95% CI]"
  assert [row[0] for row in rows] == [name for name, _, _ in demo_comparison.MEASURES]
  name = demo.evaluation_run(layout.base, demo.QUICK).results_name()
  results = {arm: json.loads((layout.arm(arm).eval_dir(name) / "results.json").read_text())
             for arm in demo.ARMS}
  for column, (_, minuend, subtrahend) in zip((2, 4), demo.COMPARISONS):
    estimates = demo_comparison.paired_estimates(results[subtrahend], results[minuend])
    for row, estimate in zip(rows, estimates):
      assert row[column] == (f"{estimate.difference:+.3f} [{estimate.ci_low:+.3f}, "
                             f"{estimate.ci_high:+.3f}]")
  assert re.search(r"\*\*Primary measure, Instruct PT − Vanilla PT: [+-]\d\.\d{3} nats .* "
                   r"(within|beyond) noise", report)
  assert report.index("## Design") < report.index("## Result")
  assert "report: " + str(layout.root.report) in result.stdout
  assert (run_dir / "compare.md").read_text() in report


def test_quick_demo_ran_every_stage_with_real_numbers(quick_demo):
  run_dir, _ = quick_demo
  layout = demo.DemoLayout.at(str(run_dir))
  timings = json.loads(layout.timings.read_text())
  assert len(timings) == demo.STAGE_COUNT and all(s > 0 for s in timings.values()), timings
  report = layout.root.report.read_text()
  for stage, seconds in timings.items():
    assert f"| {stage} |" in report and f"| {seconds:.0f} |" in report
  for arm in demo.ARMS:
    records = [json.loads(line) for line in layout.arm(arm).metrics.read_text().splitlines()
               if "loss" in line]
    assert len(records) == demo.QUICK.pretrain_steps
    assert all(0 < r["loss"] < 20 and r["loss_tokens"] > 0 for r in records)
    loss_tokens = sum(r["loss_tokens"] for r in records)
    assert f"| {demo.ARMS[arm].label} | " in report and f" | {loss_tokens:,.0f} | " in report
  stats = json.loads(layout.synthesis.stats.read_text())
  assert stats["documents"] == demo.QUICK.synthesized and stats["post_processing"] == "official"
  assert demo.read_documents(layout) == demo_corpus.sample_documents(demo.QUICK.documents,
                                                              demo.QUICK.seed)
  # The arms read the same number of tokens; Vanilla PT and its A/A re-run differ only in the
  # data seed, Vanilla PT and Instruct PT only in data.
  vanilla, instruct, again = (
      [l for l in layout.arm(arm).config_gin.read_text().splitlines() if l.startswith("train.")]
      for arm in ("vanilla", "instruct", "vanilla_reseeded"))
  assert vanilla == instruct
  assert [l for l in vanilla if "seed" not in l] == [l for l in again if "seed" not in l]
  assert "train.seed = 0" in vanilla and "train.seed = 1" in again


def test_documents_are_sampled_round_robin_across_topics():
  """The first draws come from distinct topics (one each, in a seeded topic order); the draw
  is deterministic per seed and moves with it; too many documents is one clear error."""
  topics = {topic for topic, _ in sources.demo_topics("train")}
  drawn = demo_corpus.sample_documents(len(topics) + 5, seed=0)
  first = [d["id"].split("/")[0] for d in drawn[:len(topics)]]
  assert sorted(first) == sorted(topics)
  assert drawn == demo_corpus.sample_documents(len(topics) + 5, seed=0)
  assert drawn != demo_corpus.sample_documents(len(topics) + 5, seed=1)
  train = sources.demo_topics("train")
  assert all((d["id"].split("/")[0], d["text"]) in train for d in drawn)
  with pytest.raises(ValueError, match="cannot sample 100000 documents from the 1622"):
    demo_corpus.sample_documents(100_000, seed=0)


def _choice_samples(margins, paragraphs):
  """lm-eval-shaped samples of a 2-option task whose gold option (0) leads by `margins`."""
  return [{"doc_id": i, "doc_hash": str(i), "doc": {"paragraph": p}, "target": 0,
           "filtered_resps": [[str(-1.0), "False"], [str(-1.0 - m), "False"]], "acc": m > 0}
          for i, (m, p) in enumerate(zip(margins, paragraphs))]


def _results(open_margins, closed_margins, paragraphs, loglikelihoods):
  samples = {task: _choice_samples(m, paragraphs) for task, m in (
      (demo_comparison.OPEN_BOOK, open_margins), (demo_comparison.ONE_SHOT, open_margins),
      (demo_comparison.CLOSED_BOOK, closed_margins))}
  samples[demo_comparison.PERPLEXITY] = [{"doc_id": i, "doc_hash": str(i), "bits_per_byte": [ll, 100]}
                              for i, ll in enumerate(loglikelihoods)]
  return {"samples": samples}


def test_paired_estimates_by_hand():
  """Known answers: open-book margins +1 on every item, closed-book +0.25 on every item, so
  open − closed is +0.75 with zero spread (p = 0); per-item margins 0.5, 1.5 in two passages
  of two items give the clustered mean 1.0 and CR1 SE 0.5 (cluster sums ±1, G/(G−1) = 2,
  n = 4: sqrt(2 · 2) / 4); bits per byte: b needs ln 2 more nats per byte of 100-byte
  documents, exactly 1 bit per byte more."""
  paragraphs = [0, 0, 1, 1]
  a = _results([0.0] * 4, [0.0] * 4, paragraphs, [-50.0] * 4)
  b = _results([1.0] * 4, [0.25] * 4, paragraphs,
               [-50.0 - 100 * math.log(2)] * 4)
  open_book, _, closed, reading, bits = demo_comparison.paired_estimates(a, b, resamples=50)
  assert (open_book.difference, closed.difference, reading.difference) == (1.0, 0.25, 0.75)
  assert reading.se == 0 and reading.p == 0 and reading.n_clusters == 2
  assert bits.difference == pytest.approx(1.0) and bits.ci_low == pytest.approx(1.0)
  c = _results([0.5, 0.5, 1.5, 1.5], [0.0] * 4, paragraphs, [-50.0] * 4)
  spread = demo_comparison.paired_estimates(a, c, resamples=50)[0]
  assert spread.difference == 1.0 and spread.se == pytest.approx(0.5)
  assert spread.n_items == 4 and spread.n_clusters == 2


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


def test_rerunning_the_demo_skips_finished_stages(quick_demo, installed):
  run_dir, _ = quick_demo
  before = json.loads((run_dir / "timings.json").read_text())
  again = run_demo(installed, run_dir)
  assert again.returncode == 0, again.stderr[-3000:]
  assert again.stdout.count("done earlier") == demo.STAGE_COUNT, again.stdout
  assert json.loads((run_dir / "timings.json").read_text()) == before


def test_the_full_demo_refuses_a_quick_demos_directory(quick_demo, installed):
  run_dir, _ = quick_demo
  result = run_demo(installed, run_dir, quick=False)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == (
      f"instruct-pt demo: error: {run_dir} holds a quick demo; run the full one in another "
      f"--run_dir")


def test_notebook_trains_evaluates_and_reports_at_toy_size(quick_demo, tmp_path):
  """The notebook, run headless in a directory holding the quick demo's first stages (model,
  synthesizer, documents, synthesis): its cells skip those, and train the three arms, evaluate
  them and write the report themselves."""
  nbformat = pytest.importorskip("nbformat")
  nbclient = pytest.importorskip("nbclient")
  run_dir, _ = quick_demo
  notebook_dir = tmp_path / "notebook_run"
  notebook_dir.mkdir()
  for name in ("base", "synthesizer", "synthesis"):
    shutil.copytree(run_dir / name, notebook_dir / name)
  for name in ("documents.jsonl", "demo_size.json"):
    shutil.copy(run_dir / name, notebook_dir / name)
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device, as Colab
  env["INSTRUCT_PT_NOTEBOOK_RUN_DIR"] = str(notebook_dir)
  client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                   resources={"metadata": {"path": REPO}})
  client.execute(env=env)  # raises CellExecutionError naming the cell on any error
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
  assert printed.count("done earlier") == 4, printed
  layout = demo.DemoLayout.at(str(notebook_dir))
  timings = json.loads(layout.timings.read_text())
  assert sorted(timings) == sorted([f"continual pre-training: {label}"
                                    for label in demo.ARM_LABELS.values()] + ["evaluate"])
  name = demo.evaluation_run(layout.base, demo.QUICK).results_name()
  for arm in demo.ARMS:
    assert (layout.arm(arm).checkpoints / str(demo.QUICK.pretrain_steps)).is_dir()
    assert (layout.arm(arm).eval_dir(name) / "results.json").exists()
  images = [o for o in outputs if "image/png" in o.get("data", {})]
  assert len(images) == len(PLOTS)
  assert any("Instruct PT − Vanilla PT" in o.get("data", {}).get("text/markdown", "")
             for o in outputs)


def test_notebook_install_cell_names_the_variable_to_set(monkeypatch):
  """Where instruct_pt is not installed and INSTRUCT_PT_SOURCE is unset, the install cell
  stops with one line saying what to set (it clones nothing)."""
  nbformat = pytest.importorskip("nbformat")
  cell = nbformat.read(NOTEBOOK, as_version=4).cells[2]
  assert "INSTRUCT_PT_SOURCE = " in cell.source and "YOUR_ORG" not in cell.source
  monkeypatch.delenv("INSTRUCT_PT_SOURCE", raising=False)
  monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
  monkeypatch.setattr(subprocess, "check_call", lambda *a, **k: pytest.fail("ran " + str(a)))
  with pytest.raises(SystemExit, match=r"^Set INSTRUCT_PT_SOURCE in this cell to the "
                                       r"instruct_pt repository's git URL"):
    exec(cell.source, {})  # pylint: disable=exec-used


def test_a_directory_of_other_sizes_is_refused_before_any_work(tmp_path):
  """A directory started with other sizes (another version's fields) is one clear error;
  one whose file lacks a field added since, at its default, is the same demo."""
  (tmp_path / "demo_size.json").write_text(json.dumps({"name": "quick", "documents": 4}))
  with pytest.raises(ValueError, match="holds a quick demo of other sizes"):
    demo.run(str(tmp_path), quick=True)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["demo_size.json"]
  stored = dataclasses.asdict(demo.FULL)
  del stored["seed"]  # a field with a default, as an older file would lack it
  assert demo.DemoSize(**stored) == demo.FULL


def test_mixed_passes_by_hand():
  """Two augmented texts of 100 tokens and two instructions of 50, drawn 1:1 by example into
  300 tokens: 2/3 of them (200) are augmented text, one pass over its 200 tokens; 100 are
  instructions, one pass over their 100. Doubling the instructions' count halves their
  passes; an empty source reads nothing."""
  assert demo_comparison.mixed_passes(300, [100, 100], [50, 50]) == pytest.approx((1.0, 1.0))
  assert demo_comparison.mixed_passes(300, [100, 100], [50] * 4) == pytest.approx((1.0, 0.5))
  assert demo_comparison.mixed_passes(300, [], [50, 50]) == (0.0, pytest.approx(3.0))
