"""The experiment scripts under experiments/, in their quick modes (a tiny model, seconds of
compute): each runs end to end and its report shows exactly the figures of its results file."""

import importlib.util
import json
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUMBER = re.compile(r"[-+]?\d+\.\d+")


def _row(report: str, first_cell: str) -> str:
  """The report's table row that starts with `first_cell`, without that cell."""
  rows = [line for line in report.splitlines() if line.startswith(f"| {first_cell} |")]
  assert len(rows) == 1, (first_cell, rows)
  return rows[0][len(first_cell) + 4:]


def _same(shown: str, expected: list[float], decimals: int = 3) -> bool:
  """Whether the numbers of a row are `expected`, to the report's `decimals`."""
  numbers = [float(x) for x in NUMBER.findall(shown)]
  return len(numbers) == len(expected) and all(
      abs(a - b) <= 0.51 * 10**-decimals for a, b in zip(numbers, expected))


def _script(name: str, monkeypatch):
  """`experiments/<name>.py` as a module (under another name: the scripts are not a package),
  with experiments/ on the path for its `import common`, as when it runs as a script."""
  monkeypatch.syspath_prepend(os.path.join(REPO, "experiments"))
  spec = importlib.util.spec_from_file_location(f"experiment_{name}",
                                                os.path.join(REPO, "experiments", f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look themselves up
  spec.loader.exec_module(module)
  return module


def test_true_false_hits_known_answers(monkeypatch):
  """The True/False rate counts a generation whose first line's first word is True or False
  (a trailing "." or "," dropped, case as written): 4 of these 9 hand-made generations."""
  promot = _script("promot", monkeypatch)
  generations = [" True", "False.", " true", "Lima", "", "\n\nTrue, because", "Truely",
                 " False False\nTrue", "A: True"]
  assert promot.true_false_hits(generations) == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0]
  assert promot.answer_line(" False False\nTrue") == "False False"


def _run_quick(script: str, out) -> tuple[dict, str]:
  """Runs `experiments/<script>.py --quick --out OUT`; returns its results.json and report.md."""
  result = subprocess.run([sys.executable, f"experiments/{script}.py", "--quick", "--out",
                           str(out)], cwd=REPO, capture_output=True, text=True, timeout=900,
                          check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads((out / "results.json").read_text()), (out / "report.md").read_text()


def test_promot_quick_report_shows_the_results_file(tmp_path):
  """`experiments/promot.py --quick` writes results.json, report.md and the PNG; every arm's
  row, the target-task rows (ProMoT's stage 1 included) and every paired difference in the
  report equal the results file (to the report's three decimals), with the right
  within-noise flag."""
  results, report = _run_quick("promot", tmp_path)
  assert (tmp_path / "promot.png").stat().st_size > 1000
  assert "Quick run" in report
  split = report.index("| arm | target accuracy [95% CI] | True/False rate, target items")
  arms_table, target_table = report[:split], report[split:]
  for arm in ("base", "standard_ft", "promot"):
    r = results["arms"][arm]
    expected = []
    for key in ("target_accuracy", "format_rate", "gold_logprob", "exact_match"):
      expected += [r[key], *r[f"{key}_ci"]]
    assert _same(_row(arms_table, arm), expected + [r["docs_perplexity"]]), arm
  target_rows = {arm: results["arms"][arm] for arm in ("base", "standard_ft", "promot")}
  target_rows["promot_stage1"] = results["promot_stage1"]
  for arm, r in target_rows.items():
    assert _same(_row(target_table, arm), [
        r["target_accuracy"], *r["target_accuracy_ci"], r["target_format_rate"],
        *r["target_format_rate_ci"], r["target_true_share"]]), arm
  assert "target_format_rate: promot_stage1 - base" in results["differences"]
  for name, entry in results["differences"].items():
    row = _row(report, name)
    assert _same(row, [entry["value"], *entry["ci"]]), name
    assert row.endswith(f"| {'yes' if entry['within_noise'] else 'no'} |"), name
  assert set(results["seconds"]) >= {"total", "train_standard_ft", "train_promot",
                                     "evaluate_promot_stage1"}


def test_partition_quick_report_shows_the_results_file(tmp_path):
  """Every arm's perplexity row, every paired difference (with its within-noise flag), the
  partition's composition, its purity / true-centroid purity / router accuracy and the
  featurizer comparison equal results.json."""
  results, report = _run_quick("partition", tmp_path)
  assert (tmp_path / "partition.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert (tmp_path / "partition.png").stat().st_size > 1000
  assert "Quick run" in report
  groups = ("prose", "code", "instructions", "overall")
  for arm in ("dense", "cbtm_top1", "cbtm_top2", "random_top1"):
    r = results["arms"][arm]
    expected = [value for g in groups for value in (r[g], *r[f"{g}_ci"])]
    assert _same(_row(report, arm), expected, 3), arm
  for name, entry in results["differences"].items():
    row = _row(report, name)
    assert _same(row, [entry["value"], *entry["ci"]], 4), name
    assert row.endswith(f"| {'yes' if entry['within_noise'] else 'no'} |"), name
  p = results["partition"]
  assert sum(p["sizes"]) == 3 * results["settings"]["train_per_source"]
  for j, size in enumerate(p["sizes"]):
    counts = [int(x) for x in _row(report, str(j)).split("|")[:4]]
    assert counts == [size, *p["composition"][str(j)].values()]
  assert f"Purity {p['purity']:.3f} (chance {p['chance_purity']:.3f}, true-centroid " \
         f"{p['true_centroid_purity']:.3f}); router accuracy {p['router_accuracy']:.3f}" in report
  assert set(p["featurizers"]) == {"tfidf_corpus", "tfidf_pool", "model"}
  assert p["featurizers"]["tfidf_corpus"]["purity"] == p["purity"]
  assert p["featurizers"]["tfidf_corpus"]["true_centroid_purity"] == p["true_centroid_purity"]
  for name, check in p["featurizers"].items():
    assert _same(_row(report, name), [check["purity"], check["true_centroid_purity"],
                                      check["objective_found"], check["objective_sources"]]), name
  assert (tmp_path / "partition" / "centres.npy").exists()
  assert set(results["seconds"]) >= {"total", "train_dense", "train_cbtm", "train_random"}


def test_units_quick_report_shows_the_results_file(tmp_path):
  results, report = _run_quick("units", tmp_path)
  assert "Quick run" in report
  for name in ("e3a.png", "e3b.png", "units/language/units.png", "units/code/units.png"):
    assert (tmp_path / name).stat().st_size > 1000, name
  for name in ("language", "code"):
    assert json.loads((tmp_path / "units" / name / "units.json").read_text())["units"]
  conditions = results["e3a"]["conditions"]
  assert len(conditions) == 1 + 2 * 4  # none; per percent: language + 3 random seeds
  for name, r in conditions.items():
    assert _same(_row(report, name), [r["docs_perplexity"], r["agreement"], *r["agreement_ci"],
                                      r["addition_logprob"], *r["addition_logprob_ci"]]), name
  for name, entry in results["e3a"]["differences"].items():
    row = _row(report, name)
    assert _same(row, [entry["value"], *entry["ci"]]), name
    assert row.endswith(f"| {'yes' if entry['within_noise'] else 'no'} |"), name
  for arm, r in results["e3b"]["finals"].items():
    g, f = r["target_gain"], r["forgetting"]
    row = _row(report, arm)
    assert _same(row, [r["lr"], g["value"], *g["ci"], f["value"], *f["ci"]]), arm
    assert f"| {r['trained_entries']} |" in row
    assert f"| {'yes' if g['within_noise'] else 'no'} |" in row
  assert set(results["e3b"]["between_arms"]) == {
      "units - full", "random_units - full", "freeze_general - full", "units - random_units"}
  for name, r in results["e3b"]["between_arms"].items():
    g, f = r["target_gain"], r["forgetting"]
    row = _row(report, name)
    assert _same(row, [g["value"], *g["ci"], f["value"], *f["ci"]]), name
    assert row == (f" {g['value']:.3f} [{g['ci'][0]:.3f}, {g['ci'][1]:.3f}] | "
                   f"{'yes' if g['within_noise'] else 'no'} | {f['value']:.3f} [{f['ci'][0]:.3f}, "
                   f"{f['ci'][1]:.3f}] | {'yes' if f['within_noise'] else 'no'} |"), name
  assert set(results["seconds"]) >= {"total", "e3a", "e3b"}
