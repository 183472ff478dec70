"""benchmarks/suite_torch.py at toy sizes on CPU: each torch part writes its rows (or, without
lm-eval, its note at once) and its process never imports jax, which on a GPU would take most of
the device's memory before torch runs (device_suite.sh sets XLA_PYTHON_CLIENT_MEM_FRACTION).

Each part runs under a wrapper that reports, after the part's `main` returned or exited, which
of jax, jaxlib and torch its process imported: that fails if anything pulls jax in, whatever
the part's own `jax_imported` field says.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRAPPER = """
import json, runpy, sys
sys.path.insert(0, "benchmarks")
for name in {hidden!r}:
  sys.modules[name] = None  # find_spec and import then see no such module
sys.argv = ["benchmarks/suite_torch.py"] + {args!r}
try:
  runpy.run_path("benchmarks/suite_torch.py", run_name="__main__")
finally:
  print("IMPORTED " + json.dumps([m for m in ("jax", "jaxlib", "torch") if m in sys.modules]))
"""


def _run_part(part, out, hidden=()):
  """Runs `suite_torch.py PART --smoke --out OUT`; returns (its JSON, modules it imported)."""
  code = WRAPPER.format(hidden=list(hidden), args=[part, "--smoke", "--out", str(out)])
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  imported = json.loads(result.stdout.split("IMPORTED ")[-1])
  with open(out / f"{part}.json", encoding="utf-8") as f:
    return json.load(f), imported


def _finished_without_jax(data, imported):
  assert data["finished"] and not data["errors"], data["errors"]
  assert data["jax_imported"] is False
  assert "jax" not in imported and "jaxlib" not in imported


def test_synthesis_hf_times_dynamic_and_static_caches_without_jax(tmp_path):
  """Two rows, plain generate (dynamic cache) and the static cache (not compiled on CPU), with
  the fields the summary reads; the part's process imported torch but not jax."""
  data, imported = _run_part("synthesis_hf", tmp_path)
  _finished_without_jax(data, imported)
  assert "torch" in imported and data["backend"] == "cpu" and data["jax"]
  rows = data["rows"]
  assert [(r["cache"], r["compiled"]) for r in rows] == [("dynamic", False), ("static", False)]
  for row in rows:
    assert row["tokens_per_s"] > 0 and row["prefill_s"] > 0 and row["decode_ms_per_step"] > 0
    assert row["batch"] == 4 and row["case"].startswith("transformers batch=4 cache=")
  assert any("not compiled" in note for note in data["notes"])


@pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None, reason="needs lm-eval")
def test_eval_hf_scores_with_lm_eval_without_jax(tmp_path):
  """With lm-eval: one row of finite log-likelihoods per eval model, and no jax."""
  data, imported = _run_part("eval_hf", tmp_path)
  _finished_without_jax(data, imported)
  assert [r["model"] for r in data["rows"]] == ["tiny"]
  assert data["rows"][0]["requests_per_s"] > 0 and data["rows"][0]["all_finite"]


def test_eval_hf_without_lm_eval_notes_it_before_importing_torch(tmp_path):
  """Without lm-eval (as on the GPU image): a note, no rows, done before torch is imported."""
  data, imported = _run_part("eval_hf", tmp_path, hidden=["lm_eval"])
  _finished_without_jax(data, imported)
  assert "torch" not in imported
  assert not data["rows"] and any("not importable" in note for note in data["notes"])
  assert data["elapsed_s"] < 5
