"""Which weight and KV-cache bytes a compiled decode loop copies, read off its optimised HLO.

A decode step should read every weight and the live KV cache once, in place. Two kinds of
copy add traffic the roofline does not count:

* a materialised slice (`dynamic-slice` or `slice`, alone or as the root of a fusion, instead
  of read in place inside its consumer): e.g. one layer's weights (or cache) sliced out of a
  stacked `[layers, ...]` array with the loop index;
* a layout change (`copy` or `transpose`, alone or as the root of a fusion) of a whole
  weight or cache buffer, e.g. a cache transposed for the attention dot.

Either reads and writes those bytes before the consumer reads them again.

`slice_copies(Engine.decode_program(...).as_text(), ...)` sums the bytes of such copies per
decode step (inside the decode `while` loop, found wherever it is nested in calls or
conditionals; loops inside it multiplied by their trip counts) and per call (outside it,
e.g. `split_layers` before the loop), split by source: block weights (an operand shaped like
a stacked weight or one layer's slice of it), KV cache (an operand shaped like a cache
buffer) and other. Bytes are those the copies write (a copy fused with a convert to the
compute dtype writes the converted size). Used by `benchmarks/device_suite.py` and
`tests/test_hlo_copies.py`; works on any backend's HLO text (parsed by `instruct_pt.aot.hlo`).

  python benchmarks/hlo_copies.py [--preset tiny] [--slots 4] [--max_len 256]

prints the census of the engine's decode program compiled for this host.
"""

from __future__ import annotations

import argparse
from typing import Iterator, Optional, Sequence

from instruct_pt.aot import hlo

_SLICE_PASS_THROUGH = ("bitcast", "copy", "convert", "reshape", "transpose")
_COPY_PASS_THROUGH = ("bitcast", "convert", "reshape")
_SLICES = ("slice", "dynamic-slice")
_LAYOUT_COPIES = ("copy", "transpose")
KINDS = ("weights", "cache", "other")


def _root_through(module: hlo.Module, computation: str, passing: Sequence[str],
                  wanted: Sequence[str]) -> Optional[tuple[hlo.Instruction, hlo.Instruction]]:
  """`(node, its operand)` when the computation's result is a `wanted` node passed through
  only `passing` ops; None otherwise."""
  node = module.instruction(computation, module.roots.get(computation, ""))
  while node is not None and node.opcode not in wanted and node.opcode in passing \
      and node.operands:
    node = module.instruction(computation, node.operands[0])
  if node is None or node.opcode not in wanted or not node.operands:
    return None
  source = module.instruction(computation, node.operands[0])
  return (node, source) if source is not None else None


def _copied(module: hlo.Module, computation: str, instruction: hlo.Instruction
            ) -> Optional[hlo.Instruction]:
  """The instruction whose value `instruction` copies (a slice or a layout change, alone or
  as a fusion's root), or None when it copies nothing."""
  if instruction.opcode in _SLICES + _LAYOUT_COPIES:
    return module.instruction(computation, instruction.operands[0])
  if instruction.opcode != "fusion" or "calls" not in instruction.called:
    return None
  fused = instruction.called["calls"][0]
  found = (_root_through(module, fused, _SLICE_PASS_THROUGH, _SLICES) or
           _root_through(module, fused, _COPY_PASS_THROUGH, _LAYOUT_COPIES))
  return found[1] if found is not None else None


def _source_kind(source: hlo.Instruction, weight_shapes: set[tuple[int, ...]],
                 cache_shape: tuple[int, ...]) -> str:
  dims = source.arrays[0][1] if len(source.arrays) == 1 else None
  if dims == cache_shape:
    return "cache"
  if dims in weight_shapes:
    return "weights"
  return "other"


def _loops(module: hlo.Module, computation: str) -> Iterator[hlo.Instruction]:
  """Every `while` run by `computation`: its own, those in the computations it calls or
  branches to, and those nested in the loops' bodies."""
  for instruction in module.computations.get(computation, []):
    if instruction.opcode == "while":
      yield instruction
      yield from _loops(module, instruction.called["body"][0])
    elif instruction.opcode in ("call", "conditional"):
      for targets in instruction.called.values():
        for target in targets:
          yield from _loops(module, target)


def slice_copies(hlo_text: str, weight_shapes: Sequence[Sequence[int]],
                 cache_shape: Sequence[int]) -> dict[str, dict[str, int]]:
  """Bytes of materialised slices and layout copies of weights and cache in a decode program.

  Args:
    hlo_text: optimised HLO (`compiled.as_text()`) of a program with one decode `while` loop
      (the loop with the largest body, wherever it is nested).
    weight_shapes: shapes of the stacked block weights (`[layers, ...]`): a copy of an
      operand of one of these shapes, or of one layer's slice of it, counts as weights.
    cache_shape: the shape of one KV cache buffer (`Engine.cache_shape`).

  Returns:
    `{"per_step": {"weights", "cache", "other": bytes}, "per_call": {...}, "count": {...}}`:
    bytes copied per decode step (nested loops counted trip-count times, `hlo.trip_count`),
    once per call (outside the decode loop), and how many copying instructions of each kind
    the program has.
  """
  weights = {tuple(shape) for shape in weight_shapes}
  weights |= {shape[1:] for shape in weights}
  cache = tuple(cache_shape)
  module = hlo.parse(hlo_text)
  per_step = dict.fromkeys(KINDS, 0)
  per_call = dict(per_step)
  count = dict(per_step)

  def walk(name: str, totals: dict[str, int], repeat: int, skip: Optional[str] = None) -> None:
    for instruction in module.computations.get(name, []):
      if instruction.opcode == "while":
        if instruction.name != skip:
          walk(instruction.called["body"][0], totals,
               repeat * (hlo.trip_count(module, instruction, name) or 1), skip)
      elif instruction.opcode in ("call", "conditional") and instruction.called:
        for targets in instruction.called.values():
          for target in targets:
            walk(target, totals, repeat, skip)
      else:
        source = _copied(module, name, instruction)
        if source is not None:
          kind = _source_kind(source, weights, cache)
          totals[kind] += instruction.nbytes() * repeat
          count[kind] += 1

  decode = max(_loops(module, module.entry),
               key=lambda i: len(module.computations.get(i.called["body"][0], [])), default=None)
  if decode is not None:
    walk(decode.called["body"][0], per_step, 1)
  walk(module.entry, per_call, 1, skip=decode.name if decode is not None else None)
  return {"per_step": per_step, "per_call": per_call, "count": count}


def engine_census(preset: str, slots: int, max_len: int) -> dict[str, dict[str, int]]:
  """The census of the generation engine's decode program for `preset` (random weights'
  shapes only), compiled for this host's default backend.

  Args:
    preset: a `get_preset` name.
    slots: the engine's `num_slots`.
    max_len: its cache length per slot.
  """
  import jax  # pylint: disable=import-outside-toplevel
  from instruct_pt import parallel  # pylint: disable=import-outside-toplevel
  from instruct_pt.model import store  # pylint: disable=import-outside-toplevel
  from instruct_pt.model.config import get_preset  # pylint: disable=import-outside-toplevel
  from instruct_pt.model.generate import Engine  # pylint: disable=import-outside-toplevel
  mesh_config = parallel.MeshConfig(shape=(1, 1, 1))
  mesh, rules = mesh_config.create(allow_subset=True), mesh_config.rules()
  config = get_preset(preset)
  params = store.abstract_params(config, mesh, rules)
  engine = Engine(config, params, mesh, rules, eos_ids=[0], num_slots=slots, max_len=max_len)
  weight_shapes = [x.shape for x in jax.tree_util.tree_leaves(params["layers"])]
  return slice_copies(engine.decode_program().as_text(), weight_shapes, engine.cache_shape)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--preset", default="tiny")
  parser.add_argument("--slots", type=int, default=4)
  parser.add_argument("--max_len", type=int, default=256)
  args = parser.parse_args()
  census = engine_census(args.preset, args.slots, args.max_len)
  for where in ("per_step", "per_call"):
    print(f"{where}: " + ", ".join(f"{kind} {census[where][kind]:,} bytes" for kind in KINDS))
  print("copying instructions: " + ", ".join(f"{kind} {census['count'][kind]}"
                                             for kind in KINDS))


if __name__ == "__main__":
  main()
