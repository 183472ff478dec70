"""Every recipe compiled for the TPU slice it names: the "Will it fit?" table of docs/recipes.md.

Each recipe in `configs/` names its slice and programs (`compile.topology`,
`compile.programs`); this compiles each with `instruct-pt compile`'s own code
(`commands.compile`) on this host, writes every report under `--out`, and prints the markdown
table (one row per program) with the date and the libtpu version. The 8B continual recipe is
also compiled for two slices joined over DCN, and its collectives that cross slices are listed.

    python benchmarks/recipe_slices.py --out runs/recipe_slices

Minutes per recipe on a 2-core host (three compiles each: the program and the cost model's two
loop-free builds).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from instruct_pt import commands, config
from instruct_pt.aot import report

# (what the recipe does, its gin files), in the order the paper's experiments use them.
RECIPES = (
    ("Synthesizer fine-tuning, Mistral-7B", ("configs/synthesizer/mistral_7b.gin",)),
    ("Synthesis, Mistral-7B synthesizer", ("configs/synthesis/instruction_synthesizer_7b.gin",)),
    ("From scratch, 500M", ("configs/pretrain/instructlm_500m.gin",)),
    ("From scratch, 1.3B", ("configs/pretrain/instructlm_1_3b.gin",)),
    ("Continual, Llama-3-8B (biomedicine, finance)", ("configs/continual/llama3_8b.gin",)),
    ("Evaluation, Llama-3-8B", ("configs/evaluation/llama3_8b.gin",)),
)
TWO_SLICES = ("Continual, Llama-3-8B", ("configs/continual/llama3_8b.gin",))


def _row(title: str, result, program: dict) -> str:
  memory, cost = program["memory"], program["cost_model"] or {}
  step = "-" if not cost.get("seconds") else f"{cost['seconds']:.3f} s"
  mfu = "-" if cost.get("mfu") is None else f"{100 * cost['mfu']:.1f}%"
  ratio = "-" if program["flops_ratio"] is None else f"{program['flops_ratio']:.2f}"
  return (f"| {title} | {result.tpu.label} | {program['program']}: {program['shape']} | "
          f"{','.join(str(s) for s in program['mesh'].values())} | "
          f"{memory['total'] / 2**30:.1f} / {memory['hbm'] / 2**30:.2f} | "
          f"{100 * memory['headroom']:.0f}% | {ratio} | {step} | {mfu} |")


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True, help="where each recipe's reports go")
  parser.add_argument("--only", default=None, help="compile only recipes whose title has this")
  args = parser.parse_args(argv)
  rows, fits = [], True
  versions = None
  for title, gin_files in RECIPES:
    if args.only and args.only not in title:
      continue
    name = os.path.splitext(gin_files[-1].replace("configs/", "").replace("/", "-"))[0]
    run = config.compile_run(os.path.join(args.out, name), gin_files)
    print(f"compiling {title} for {run.compile.topology} ...", file=sys.stderr, flush=True)
    result = commands.compile(run)
    fits &= result.fits
    versions = result.versions
    rows += [_row(title, result, p.report) for ps in result.programs.values() for p in ps]
  print(f"Compiled {versions['date']} with jax {versions['jax']} and libtpu "
        f"{versions['libtpu']} (`python benchmarks/recipe_slices.py`); memory and FLOPs are the "
        f"compiler's, step time and MFU its cost model's estimate.\n")
  print("| recipe | slice | program | mesh | GiB per chip (total / for programs) | headroom | "
        "HLO / model FLOPs | step (cost model) | MFU (cost model) |")
  print("|---|---|---|---|---|---|---|---|---|")
  print("\n".join(rows))
  if not args.only or args.only in TWO_SLICES[0]:
    run = config.compile_run(os.path.join(args.out, "continual-llama3_8b-2slices"),
                             TWO_SLICES[1])
    run = dataclasses.replace(run, compile=dataclasses.replace(run.compile, num_slices=2,
                                                               cost_model=False))
    result = commands.compile(run)
    [train] = result.programs["train"]
    print(f"\n{TWO_SLICES[0]} on {result.tpu.label}: mesh {train.report['mesh']}, "
          f"{train.report['memory']['total'] / 2**30:.1f} GiB per chip; collectives:")
    for row in train.report["collectives"]:
      print(f"- {row['kind']} over {'+'.join(row['axes'])}: x{row['count']}, "
            f"{row['bytes'] / 2**30:.2f} GiB per chip"
            f"{', across slices' if row['crosses_slices'] else ''}")
    with open(os.path.join(args.out, "two_slices.json"), "w", encoding="utf-8") as f:
      json.dump(report.report(result, "train"), f, indent=1)
  return 0 if fits else 1


if __name__ == "__main__":
  sys.exit(main())
