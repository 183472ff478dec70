"""`instruct-pt compile`'s outputs: the JSON report of a command's programs, the printed
table, and the "does not fit" lines.

Every figure comes from the TPU compiler (`compiler.compile_program`): memory from its memory
analysis, collectives and FLOPs from the compiled HLO, step time and MFU from its cost model,
an estimate and labelled so.
"""

from __future__ import annotations

from typing import Any, Optional

from instruct_pt.aot.compiler import SliceResult

GIB = 2**30


def report(result: SliceResult, command: str) -> dict[str, Any]:
  """The JSON report of one command's programs on the slice.

  Args:
    result: the compiled slice.
    command: a key of `result.programs`.
  """
  tpu = result.tpu
  return {"slice": tpu.label, "accelerator_type": tpu.name, "topology": tpu.topology,
          "num_slices": tpu.num_slices, "chips": tpu.chips * tpu.num_slices,
          "hosts": tpu.hosts * tpu.num_slices,
          "chip": {"kind": result.chip.kind, "hbm_bytes": result.hbm,
                   "peak_flops": result.chip.peak_flops},
          "versions": result.versions, "fits": all(p.fits for p in result.programs[command]),
          "programs": [p.report for p in result.programs[command]]}


def _gib(value: Optional[float]) -> str:
  return "-" if value is None else f"{value / GIB:.1f}"


def _percent(value: Optional[float]) -> str:
  return "-" if value is None else f"{100 * value:.0f}%"


def table(result: SliceResult) -> str:
  """The programs side by side (memory per chip, FLOPs, cost model), then each program's
  collectives."""
  tpu, chip = result.tpu, result.chip
  lines = [f"{tpu.label}: {tpu.topology}, {tpu.chips * tpu.num_slices} chips ({chip.kind}, "
           f"{result.hbm / GIB:.2f} GiB of HBM for programs) on {tpu.hosts * tpu.num_slices} "
           f"host(s); libtpu {result.versions.get('libtpu')}. Memory, collectives and FLOPs "
           f"are the compiler's; step time and MFU are its cost model's estimate, not a "
           f"measurement.",
           "| program | mesh (data,fsdp,tensor) | arguments | temporaries | outputs - aliased | "
           "total / HBM GiB per chip | headroom | fits | HLO / model FLOPs | step (cost model)"
           " | MFU (cost model) |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
  for compiled in (p for programs in result.programs.values() for p in programs):
    row = compiled.report
    memory, cost = row["memory"], row["cost_model"] or {}
    outputs = (None if memory["outputs"] is None else memory["outputs"] - memory["aliased"])
    ratio = "-" if row["flops_ratio"] is None else f"{row['flops_ratio']:.2f}"
    seconds = cost.get("seconds")
    step = "-" if seconds is None else (f"{seconds:.3f} s" if seconds >= 0.01
                                        else f"{seconds * 1e3:.2f} ms")
    lines.append(
        f"| {row['program']} | {','.join(str(s) for s in row['mesh'].values())} | "
        f"{_gib(memory['arguments'])} | {_gib(memory['temporaries'])} | {_gib(outputs)} | "
        f"{_gib(memory['total'])} / {_gib(memory['hbm'])} | {_percent(memory['headroom'])} | "
        f"{'yes' if memory['fits'] else 'NO'} | {ratio} | {step} | "
        f"{_percent(cost.get('mfu'))} |")
  for compiled in (p for programs in result.programs.values() for p in programs):
    row = compiled.report
    if not row["collectives"]:
      continue
    parts = [f"{c['kind']} over {'+'.join(c['axes']) or 'no axis'}"
             f"{' ACROSS SLICES' if c['crosses_slices'] else ''} x{c['count']} "
             f"({_gib(c['bytes'])} GiB)" for c in row["collectives"]]
    lines.append(f"{row['program']} collectives per run, per chip: " + "; ".join(parts))
  return "\n".join(lines)


def does_not_fit(result: SliceResult) -> list[str]:
  """One line per program that does not fit, with its per-chip figures."""
  lines = []
  for compiled in (p for programs in result.programs.values() for p in programs):
    row, memory = compiled.report, compiled.report["memory"]
    if memory["fits"]:
      continue
    needed = f"needs {_gib(memory['total'])} GiB per chip"
    if memory["compiler_error"]:
      needed += f" (the compiler: {memory['compiler_error']})"
    lines.append(f"{row['program']} does not fit {result.tpu.label}: {needed}; a chip has "
                 f"{memory['hbm'] / GIB:.2f} GiB of HBM for programs and "
                 f"{_percent(memory['min_headroom'])} must stay free")
  return lines
