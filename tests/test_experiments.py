"""The experiment scripts under experiments/, in their quick modes (a tiny model, seconds of
compute): each runs end to end and its report shows exactly the figures of its results file."""

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
  """Whether the numbers of a row are `expected`, to the report's three decimals."""
  numbers = [float(x) for x in NUMBER.findall(shown)]
  return len(numbers) == len(expected) and all(
      abs(a - b) <= 5e-4 for a, b in zip(numbers, expected))


def test_promot_quick_report_shows_the_results_file(tmp_path):
  """`experiments/promot.py --quick` writes results.json, report.md and the PNG; every arm's
  row and every paired difference in the report equals the results file (to the report's
  three decimals), with the right within-noise flag."""
  result = subprocess.run([sys.executable, "experiments/promot.py", "--quick", "--out",
                           str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=900, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  results = json.loads((tmp_path / "results.json").read_text())
  report = (tmp_path / "report.md").read_text()
  assert (tmp_path / "promot.png").stat().st_size > 1000
  assert "Quick run" in report
  for arm in ("base", "standard_ft", "promot"):
    r = results["arms"][arm]
    expected = []
    for key in ("target_accuracy", "format_rate", "gold_logprob", "exact_match"):
      expected += [r[key], *r[f"{key}_ci"]]
    assert _same(_row(report, arm), expected + [r["docs_perplexity"]]), arm
  for name, entry in results["differences"].items():
    row = _row(report, name)
    assert _same(row, [entry["value"], *entry["ci"]]), name
    assert row.endswith(f"| {'yes' if entry['within_noise'] else 'no'} |"), name
  assert set(results["seconds"]) >= {"total", "train_standard_ft", "train_promot"}
