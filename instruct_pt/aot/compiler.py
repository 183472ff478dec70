"""Compile a recipe's programs for a TPU slice ahead of time, and read the compiler's figures.

`compile_program` compiles one `programs.Program` for its mesh and reports, per device:

* **memory** (`memory_analysis()`): arguments, outputs, aliased (donated) bytes, temporaries
  and code; their total against the HBM a program may use on the chip (`available_hbm`, the
  compiler's own figure), the headroom, and whether it fits with at least `min_headroom` to
  spare. A program the compiler itself rejects for memory ("Ran out of memory ... exceeds
  available HBM") is reported with the compiler's figures;
* **collectives** per run of the program (`collectives.census`): all-gathers, reduce-scatters,
  all-reduces, all-to-alls and collective permutes by the mesh axes they span, with counts,
  bytes and whether they cross slices;
* **FLOPs**: the program's own (`hlo.flops`, loops counted as often as they run) against the
  model's (`Program.model_flops`): the rematerialisation overhead;
* **the cost model's step time** and the MFU it implies. XLA's estimate (`cost_analysis()`'s
  `optimal_seconds`) counts a loop's body once, so it is read from loop-free builds of the
  same program: the layers unrolled (`ModelConfig.scan_layers=False`) and collective matmuls
  off (`COST_MODEL_OPTIONS`), with 1 and 2 layers, extrapolated linearly to the model's
  layers (every layer costs the same). An estimate of the compiler's, not a measurement.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import re
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from instruct_pt import hardware, parallel
from instruct_pt.aot import collectives, hlo, programs, slices
from instruct_pt.aot.programs import PROGRAMS, Program
from instruct_pt.evaluation.scoring import ScoringConfig
from instruct_pt.model.config import ModelConfig
from instruct_pt.synthesis.pipeline import SynthesisConfig
from instruct_pt.train.loop import TrainConfig
from instruct_pt.train.optim import OptimizerConfig

# Compiler options of the loop-free builds the cost model reads (libtpu flags): collective
# matmuls ("windowed einsums") otherwise become loops whose bodies it counts once, and sliced
# prefetches (`slice-start`) ops it cannot cost (it answers -1 for each of them).
COST_MODEL_OPTIONS = {"xla_tpu_enable_windowed_einsum_for_all_gather": "false",
                      "xla_tpu_enable_windowed_einsum_for_reduce_scatter": "false",
                      "xla_tpu_sliced_prefetch_max_slices": "0"}
COST_MODEL_LAYERS = (1, 2)
# The compiler's own out-of-memory report.
_OUT_OF_MEMORY = re.compile(r"Ran out of memory|RESOURCE_EXHAUSTED")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT])i?B?\b")
_SIZE_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclasses.dataclass(frozen=True)
class CompileConfig:
  """What `instruct-pt compile` compiles a recipe for (gin: `compile.*`; its flags win).

  Attributes:
    topology: the TPU slice the recipe is meant for: an accelerator type as gcloud takes it
      ("v5p-32", "v4-8", "v5litepod-16", "v6e-8") or a topology ("v5p:2x2x4").
    num_slices: slices of that type in the job (the mesh's `dcn_shape` spans them).
    programs: which commands' programs to compile (`programs.PROGRAMS`).
    min_headroom: the share of each chip's HBM that must stay free for a program to fit.
    cost_model: also compile the loop-free builds that XLA's cost model reads (step time,
      MFU); two more compiles per program.
  """

  topology: Optional[str] = None
  num_slices: int = 1
  programs: tuple[str, ...] = ("train",)
  min_headroom: float = 0.10
  cost_model: bool = True

  def __post_init__(self):
    unknown = [p for p in self.programs if p not in PROGRAMS]
    if unknown or not self.programs:
      raise ValueError(f"compile.programs={self.programs!r}: choose from {PROGRAMS}")
    if not 0 <= self.min_headroom < 1:
      raise ValueError(f"compile.min_headroom={self.min_headroom} must be in [0, 1)")
    if self.num_slices < 1:
      raise ValueError(f"compile.num_slices={self.num_slices} must be at least 1")


@dataclasses.dataclass
class CompiledProgram:
  """A compiled program and what the compiler says of it.

  Attributes:
    report: the figures (`compile_program` describes them); JSON-ready.
    executable: the compiled executable (None when the compiler rejected the program).
  """

  report: dict[str, Any]
  executable: Optional[Any] = None

  @property
  def fits(self) -> bool:
    """Whether it fits the chip's HBM with the required headroom."""
    return bool(self.report["memory"]["fits"])


def _sizes_in(message: str) -> list[float]:
  """Byte sizes written like "166.98G" in a compiler message, in order."""
  return [float(value) * _SIZE_UNITS[unit] for value, unit in _SIZE.findall(message)]


def available_hbm(device: Any) -> int:
  """The HBM a program may use on `device`, in bytes, as the compiler counts it (less than the
  data sheet's: v4 30.75 of 32 GiB): it refuses a program of 8 TiB and says what it has.

  Args:
    device: a device (of a TPU topology).

  Raises:
    ValueError: the compiler did not refuse, or said it differently.
  """
  sharding = jax.sharding.SingleDeviceSharding(device)
  huge = jax.jit(lambda x: jnp.broadcast_to(x, (2**20, 2**20)).cumsum(0)[-1],
                 in_shardings=sharding, out_shardings=sharding)
  try:
    huge.lower(jax.ShapeDtypeStruct((2**20,), jnp.float32, sharding=sharding)).compile()
  except jax.errors.JaxRuntimeError as e:
    found = re.search(r"available HBM \(([^)]+)\)", str(e))
    if found and _sizes_in(found.group(1)):
      return int(_sizes_in(found.group(1))[0])
    raise ValueError(f"{device.device_kind}: the compiler's out-of-memory message changed: "
                     f"{str(e)[:200]}") from e
  raise ValueError(f"{device.device_kind}: the compiler accepted an 8 TiB program")


def _memory(stats: Any, hbm: int, min_headroom: float) -> dict[str, Any]:
  """Per-device memory of `memory_analysis()` against the HBM a program may use."""
  figures = {"arguments": stats.argument_size_in_bytes, "outputs": stats.output_size_in_bytes,
             "aliased": stats.alias_size_in_bytes, "temporaries": stats.temp_size_in_bytes,
             "code": stats.generated_code_size_in_bytes}
  total = (figures["arguments"] + figures["outputs"] - figures["aliased"] +
           figures["temporaries"] + figures["code"])
  headroom = 1.0 - total / hbm
  return dict(figures, total=total, hbm=hbm, headroom=headroom,
              min_headroom=min_headroom, fits=headroom >= min_headroom, compiler_error=None)


def _rejected(message: str, hbm: int, min_headroom: float) -> dict[str, Any]:
  """Memory figures of a program the compiler refused for memory: what it needed and had."""
  sizes = _sizes_in(message)
  needed = sizes[0] if sizes else None
  return {"arguments": None, "outputs": None, "aliased": None, "temporaries": needed,
          "code": None, "total": needed, "hbm": hbm,
          "headroom": None if needed is None else 1.0 - needed / hbm,
          "min_headroom": min_headroom, "fits": False,
          "compiler_error": message.strip().splitlines()[0][:500]}


def _cost(compiled: Any) -> dict[str, float]:
  """`cost_analysis()` as one dict (older jax returns a list of one)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  return dict(analysis or {})


def cost_model(program: Program) -> dict[str, Any]:
  """XLA's cost-model step time (and FLOPs) of the whole program, from loop-free builds with
  `COST_MODEL_LAYERS` layers extrapolated to the model's.

  Args:
    program: the program.

  Returns:
    `{"seconds", "flops_per_device", "layers_built", "loops_left"}`; `loops_left` counts
    loops of several known iterations the builds still had (their bodies are counted once,
    so a non-zero count makes the estimate low). A data-dependent loop (the decode loop)
    stays: its figures are per iteration.
  """
  samples, loops_left = [], 0
  for layers in COST_MODEL_LAYERS:
    variant = program.config.replace(num_layers=layers, scan_layers=False)
    compiled = program.lower(variant).compile(compiler_options=COST_MODEL_OPTIONS)
    module = hlo.parse(compiled.as_text())
    loops_left = max(loops_left, sum(
        1 for name, instructions in module.computations.items() for i in instructions
        if i.opcode == "while" and (hlo.trip_count(module, i, name) or 1) > 1))
    cost = _cost(compiled)
    samples.append((cost.get("optimal_seconds", -1.0), cost.get("flops", 0.0)))
  (seconds_1, flops_1), (seconds_2, flops_2) = samples
  extra = program.config.num_layers - COST_MODEL_LAYERS[0]
  valid = min(seconds_1, seconds_2) > 0  # the model answers -1 for what it cannot cost
  return {"seconds": seconds_1 + extra * (seconds_2 - seconds_1) if valid else None,
          "flops_per_device": flops_1 + extra * (flops_2 - flops_1),
          "layers_built": list(COST_MODEL_LAYERS), "loops_left": loops_left}


def compile_program(program: Program, chip: hardware.Chip, hbm: int, min_headroom: float,
                    slice_of_device: list[int], with_cost_model: bool = True) -> CompiledProgram:
  """Compiles `program` for its mesh and reads memory, collectives, FLOPs and cost model.

  Args:
    program: the program (its mesh's devices may be a TPU topology's).
    chip: the devices' chip (peak FLOP/s).
    hbm: the HBM a program may use per device (`available_hbm`).
    min_headroom: the share of HBM that must stay free for the program to fit.
    slice_of_device: the slice of each device of the mesh, in `mesh.devices.flat` order.
    with_cost_model: also build the cost model's loop-free variants (two more compiles).

  Returns:
    The report and the executable.
  """
  mesh = program.mesh
  report: dict[str, Any] = {
      "command": program.command, "program": program.name, "shape": program.shape,
      "mesh": dict(mesh.shape), "devices": mesh.size, "device_kind": chip.kind,
      "tokens": program.tokens, "model_flops": program.model_flops}
  start = time.perf_counter()
  try:
    compiled = program.lower(program.config).compile()
  except jax.errors.JaxRuntimeError as e:
    if not _OUT_OF_MEMORY.search(str(e)):
      raise
    report.update(memory=_rejected(str(e), hbm, min_headroom), collectives=None,
                  hlo_flops=None, flops_ratio=None, cost_model=None, unknown_loops=None,
                  compile_seconds=time.perf_counter() - start)
    return CompiledProgram(report)
  report["compile_seconds"] = time.perf_counter() - start
  report["memory"] = _memory(compiled.memory_analysis(), hbm, min_headroom)
  module = hlo.parse(compiled.as_text())
  counts = hlo.execution_counts(module)
  per_slice = mesh.size // len(set(slice_of_device))  # one program per slice
  report["collectives"] = collectives.census(collectives.collectives(module, per_slice, counts),
                                             dict(mesh.shape), slice_of_device)
  report["hlo_flops"] = hlo.flops(module, counts) * mesh.size
  report["flops_ratio"] = report["hlo_flops"] / program.model_flops
  report["unknown_loops"] = module.unknown_loops
  report["cost_model"] = None
  if with_cost_model:
    estimate = cost_model(program)
    seconds = estimate["seconds"]
    estimate.update(
        tokens_per_second=program.tokens / seconds if seconds else None,
        mfu=program.model_flops / (seconds * mesh.size * chip.peak_flops) if seconds else None)
    report["cost_model"] = estimate
  return CompiledProgram(report, compiled)


def versions() -> dict[str, str]:
  """The versions the figures come from, and the date."""
  found = {"date": datetime.date.today().isoformat()}
  for package in ("jax", "jaxlib", "libtpu"):
    try:
      found[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      found[package] = None
  return found


@dataclasses.dataclass
class SliceResult:
  """Every program of a recipe compiled for one slice.

  Attributes:
    tpu: the slice.
    chip: its chip.
    hbm: the HBM a program may use per chip (`available_hbm`).
    programs: each command's compiled programs, in `PROGRAMS` order.
    versions: jax, jaxlib and libtpu versions and the date (`versions`).
  """

  tpu: slices.Slice
  chip: hardware.Chip
  hbm: int
  programs: dict[str, list[CompiledProgram]]
  versions: dict[str, Optional[str]]

  @property
  def fits(self) -> bool:
    """Whether every program fits."""
    return all(p.fits for compiled in self.programs.values() for p in compiled)


def compile_for_slice(config: ModelConfig, settings: CompileConfig, mesh: parallel.MeshConfig,
                      train: TrainConfig, optimizer: OptimizerConfig,
                      synthesis: SynthesisConfig, scoring: ScoringConfig,
                      progress: Optional[Callable[[str], None]] = None) -> SliceResult:
  """Compiles the programs of `settings.programs` for `settings.topology`.

  Training gets the mesh over every chip of the job (`mesh.create`, several slices joined by
  `mesh.dcn_shape`); synthesis and evaluation the mesh over the first host's chips, as their
  commands build it from `jax.local_devices()`.

  Args:
    config: the model (its "auto" settings are resolved for TPU here).
    settings: the slice, programs and headroom.
    mesh: the mesh settings.
    train: the train step's settings.
    optimizer: the optimizer.
    synthesis: the synthesis engine's settings.
    scoring: the scoring settings.
    progress: called with a line before each compile.

  Raises:
    ValueError: no slice given, an unknown one, libtpu missing or mismatched, or a batch
      the mesh cannot split.
  """
  if not settings.topology:
    raise ValueError("no TPU slice to compile for: give --topology (e.g. v5p-32) or set "
                     "compile.topology in the recipe")
  tpu = slices.parse_slice(settings.topology, settings.num_slices)
  devices = slices.topology_devices(tpu)
  chip = slices.chip(tpu, devices)
  hbm = available_hbm(devices[0])
  config = config.for_backend("tpu")
  rules = mesh.rules()
  first_host = [d for d in devices if d.process_index == devices[0].process_index]
  results: dict[str, list[CompiledProgram]] = {}
  for command in (c for c in PROGRAMS if c in settings.programs):
    if command == "train":
      built = [programs.train_step(config, train, optimizer, mesh.create(devices), rules)]
    elif command == "synthesize":
      built = programs.synthesis(config, synthesis, mesh.create(first_host, True), rules)
    else:
      built = [programs.scoring(config, scoring, mesh.create(first_host, True), rules)]
    results[command] = []
    for program in built:
      if progress is not None:
        progress(f"compiling {program.name} for {tpu.label} ({program.shape})")
      slice_of_device = [parallel.slice_of(d) for d in program.mesh.devices.flat]
      results[command].append(compile_program(program, chip, hbm, settings.min_headroom,
                                              slice_of_device, settings.cost_model))
  return SliceResult(tpu, chip, hbm, results, versions())
