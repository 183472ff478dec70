"""The accelerator suite (benchmarks/device_suite.sh) run at toy sizes on CPU, so it cannot rot
between lent machines, and the setup.py range that lets the accelerator image's jax in.

No speed is asserted: the suite's figures are only meaningful on the accelerator.
"""

import ast
import json
import math
import os
import subprocess
import sys

import jax
import pytest
from packaging.requirements import Requirement

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARTS = ("env", "train", "synthesis", "synthesis_hf", "eval", "eval_hf")


def _positive(value) -> bool:
  return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  """`bash benchmarks/device_suite.sh --smoke --out DIR` on one CPU device: (stdout, DIR)."""
  out = tmp_path_factory.mktemp("suite")
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one device, not 8
  env.update(PYTHON=sys.executable, JAX_PLATFORMS="cpu")
  result = subprocess.run(["bash", "benchmarks/device_suite.sh", "--smoke", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
                          check=False)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  return result.stdout, out


def _part(out, name):
  with open(out / f"{name}.json", encoding="utf-8") as f:
    return json.load(f)


def test_device_suite_smoke_writes_every_part_and_the_table(smoke_run):
  """Every part finishes without errors and writes its JSON with real numbers; the stdout ends
  with the summary table, which names each part; at most 8 files (what a device call brings
  back)."""
  stdout, out = smoke_run
  assert f"jax {jax.__version__} (cpu)" in stdout
  table = stdout[stdout.index("| part | case | result | target |"):]
  for name in PARTS:
    data = _part(out, name)
    assert data["finished"] and not data["errors"], (name, data["errors"])
    assert data["jax"] == jax.__version__ and data["device"]
    assert name == "env" or f"| {name} |" in table  # env heads the table
  assert f"device: cpu x 1, jax {jax.__version__} (cpu)" in stdout
  env = _part(out, "env")
  assert _positive(env["copy_bandwidth"]) and _positive(env["matmul_flops"])
  train = _part(out, "train")["rows"]
  assert train and all(_positive(r["tokens_per_s"]) and _positive(r["mfu"]) and
                       r["batch"] >= 1 and math.isfinite(r["loss"]) for r in train)
  hf_rows = _part(out, "synthesis_hf")["rows"]
  assert hf_rows and _positive(hf_rows[0]["tokens_per_s"]) and "ours/transformers" in table
  evaluation = _part(out, "eval")["rows"]
  assert evaluation and all(_positive(r["requests_per_s"]) and r["all_finite"]
                            for r in evaluation)
  eval_hf = _part(out, "eval_hf")
  assert eval_hf["rows"] or any("not importable" in n for n in eval_hf["notes"])
  with open(out / "summary.md", encoding="utf-8") as f:
    assert "| part | case | result | target |" in f.read()
  assert len(os.listdir(out)) <= 8


def test_device_suite_reports_synthesis_against_its_floor_and_the_decode_copies(smoke_run):
  """The synthesis part times our engine against the roofline floor (`roofline.py`: decode
  per step and end to end) and reads its compiled decode loop: no weights and no KV cache
  copied per step, the block weights sliced once per call, before the loop."""
  rows = _part(smoke_run[1], "synthesis")["rows"]
  assert rows
  for row in rows:
    assert row["stage"] == "done"
    assert _positive(row["tokens_per_s"]) and _positive(row["decode_ms_per_step"])
    assert _positive(row["prefill_s"]) and row["prefill_calls"] >= 1
    assert 0 < row["roofline_fraction"] < 1.5 and 0 < row["end_to_end_fraction"] < 1.5
    assert _positive(row["floor"]["total_s"]) and _positive(row["matmul_flops"])
    copies = row["decode_slice_copies"]
    assert copies["per_step"]["weights"] == 0 and copies["per_step"]["cache"] == 0
    assert copies["per_call"]["weights"] >= 0.9 * row["block_weight_bytes"]


def test_setup_accepts_the_accelerator_images_jax():
  """setup.py lets jax 0.11 in (the GPU image has 0.11.2) and keeps the tested 0.10.2."""
  with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as f:
    tree = ast.parse(f.read())
  jax_range = next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                   and node.targets[0].id == "JAX")
  specifier = Requirement("jax" + jax_range).specifier
  assert "0.11.2" in specifier and "0.10.2" in specifier and "0.12.0" not in specifier
