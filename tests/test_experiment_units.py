"""`experiments/units.py --quick` (E3 on a tiny random model): it runs end to end and its
report shows exactly the figures of its results file."""

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


def _same(shown: str, expected: list[float]) -> bool:
  """Whether the decimal numbers of a row are `expected`, to the report's three decimals."""
  numbers = [float(x) for x in NUMBER.findall(shown)]
  return len(numbers) == len(expected) and all(
      abs(a - b) <= 5e-4 for a, b in zip(numbers, expected))


def test_units_quick_report_shows_the_results_file(tmp_path):
  result = subprocess.run([sys.executable, "experiments/units.py", "--quick", "--out",
                           str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=900, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  results = json.loads((tmp_path / "results.json").read_text())
  report = (tmp_path / "report.md").read_text()
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
  assert set(results["seconds"]) >= {"total", "e3a", "e3b"}
