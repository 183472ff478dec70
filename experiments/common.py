"""What the experiment scripts share: the command line and the output directory.

Each script is `python experiments/NAME.py --out DIR [--quick] [--seed N]`: it replaces DIR,
runs its arms, and writes DIR/results.json, DIR/report.md and its PNGs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
from typing import Any, Callable, Optional, Sequence

import jax

from instruct_pt import hardware, parallel, run_dir
from instruct_pt.data import tokenizer as tokenizer_lib
from instruct_pt.model import store
from instruct_pt.model.config import get_preset


def run_experiment(argv: Optional[Sequence[str]], description: str, script: str,
                   sizes: tuple[Any, Any], run: Callable[[Any, run_dir.RunDir, int], dict],
                   write_report: Callable[[dict, run_dir.RunDir, str], None],
                   outputs: str, quick_help: str, seed_help: str, preview_lines: int = 12,
                   compilation_cache: bool = False) -> dict[str, Any]:
  """Parses the command line, runs the experiment into a fresh DIR and writes its files.

  Args:
    argv: command-line arguments (default: `sys.argv[1:]`).
    description: the script's one-line description (`--help`).
    script: the script's path from the repository root, for the report's command line.
    sizes: the `(full, quick)` sizes; `--quick` picks the second.
    run: `(size, out, seed) -> results` (JSON-serializable).
    write_report: `(results, out, command)`: writes report.md and the PNGs.
    outputs: what the script writes besides results.json and report.md, for the last line.
    quick_help: `--help` text of `--quick`.
    seed_help: `--help` text of `--seed`.
    preview_lines: lines of the report printed at the end.
    compilation_cache: use a persistent compilation cache under DIR (unless one is set), for
      experiments whose arms compile the same programs in separate runs.
  """
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument("--out", required=True, help="output directory (replaced)")
  parser.add_argument("--quick", action="store_true", help=quick_help)
  parser.add_argument("--seed", type=int, default=0, help=seed_help)
  args = parser.parse_args(argv)
  out = run_dir.RunDir(args.out)
  if out.path.exists():
    shutil.rmtree(out.path)
  out.create()
  with (hardware.compilation_cache(str(out.path / "compilation_cache")) if compilation_cache
        else contextlib.nullcontext()):
    results = run(sizes[1] if args.quick else sizes[0], out, args.seed)
  out.results.write_text(json.dumps(results, indent=1))
  command = f"python {script}" + (" --quick" if args.quick else "") + \
      (f" --seed {args.seed}" if args.seed else "") + " --out DIR"
  write_report(results, out, command)
  print("\n".join(out.report.read_text().splitlines()[:preview_lines]))
  print(f"wrote {out.results}, {out.report} and {outputs}")
  return results


def load_model(name: str, seed: int,
               mesh_config: parallel.MeshConfig = parallel.MeshConfig(shape=(1, 1, 1))
               ) -> tuple[run_dir.LoadedModel, Any, Any]:
  """`(model, mesh, rules)`: model `name` on the mesh of `mesh_config` (default: one device).

  Args:
    name: "tiny" (a random tiny model with the byte tokenizer, for quick runs) or any
      `run_dir.load` source.
    seed: initialisation seed of the tiny model.
    mesh_config: the mesh shape and rule table; a shape without -1 uses the first devices.
  """
  mesh = mesh_config.create(jax.devices(), allow_subset=-1 not in mesh_config.shape)
  rules = mesh_config.rules()
  if name == "tiny":
    config = get_preset("tiny")
    model = run_dir.LoadedModel(config, store.init_params(config, mesh, rules, seed),
                                tokenizer_lib.ByteTokenizer(), "tiny (random)")
  else:
    model = run_dir.load(name, mesh, rules, progress=False)
  return model, mesh, rules
