"""Which stacked buffers a compiled decode loop copies, read off its optimised HLO.

A decode step that runs the layers as a scan slices each layer's weights (and its KV cache
rows) out of the stacked `[layers, ...]` arrays with a dynamic index. When XLA materialises
such a slice (a `dynamic-slice` or `slice`, alone or as the root of a fusion, instead of
reading it in place inside its consumer), every step moves those bytes twice more than the
roofline counts: the copy reads and writes them before the matmul reads them again.

`slice_copies(Engine.lower_decode(...).compile().as_text(), ...)` sums the bytes of such
materialised slices per decode step (inside the decode `while` loop, nested loops multiplied
by their trip counts) and per call (outside it, e.g. `split_layers` before the loop), split
by source: block weights (an operand shaped like a stacked weight), KV cache (an operand of
the cache's shape) and other. Bytes are those the copies write (a copy fused with a convert
to the compute dtype writes the converted size). Used by `benchmarks/device_suite.py`; works
on any backend's HLO text (parsed by `instruct_pt.aot.hlo`).
"""

from __future__ import annotations

from typing import Optional, Sequence

from instruct_pt.aot import hlo

_PASS_THROUGH = ("bitcast", "copy", "convert", "reshape", "transpose")


def _root_slice(module: hlo.Module, computation: str
                ) -> Optional[tuple[hlo.Instruction, hlo.Instruction]]:
  """`(slice, its operand)` when the computation's result is a slice passed through only
  layout-preserving ops; None otherwise."""
  node = module.instruction(computation, module.roots.get(computation, ""))
  while node is not None and node.opcode in _PASS_THROUGH and node.operands:
    node = module.instruction(computation, node.operands[0])
  if node is None or node.opcode not in ("slice", "dynamic-slice") or not node.operands:
    return None
  source = module.instruction(computation, node.operands[0])
  return (node, source) if source is not None else None


def _source_kind(source: hlo.Instruction, weight_shapes: set[tuple[int, ...]],
                 cache_shape: tuple[int, ...]) -> str:
  dims = source.arrays[0][1] if len(source.arrays) == 1 else None
  if dims == cache_shape:
    return "cache"
  if dims in weight_shapes:
    return "weights"
  return "other"


def slice_copies(hlo_text: str, weight_shapes: Sequence[Sequence[int]],
                 cache_shape: Sequence[int]) -> dict[str, dict[str, int]]:
  """Bytes of materialised slices in a compiled decode program.

  Args:
    hlo_text: optimised HLO (`compiled.as_text()`) of a program with one decode `while` loop.
    weight_shapes: shapes of the stacked block weights (`[layers, ...]`): a slice of an
      operand of one of these shapes counts as weights.
    cache_shape: the KV cache's shape `[layers, batch, kv_heads, length, head_dim]`.

  Returns:
    `{"per_step": {"weights", "cache", "other": bytes}, "per_call": {...}, "count": {...}}`:
    bytes copied per decode step (inside the loop with the largest body; nested loops
    counted trip-count times, `hlo.trip_count`), once per call (outside it), and how many
    slice instructions of each kind the program has.
  """
  weights = {tuple(shape) for shape in weight_shapes}
  cache = tuple(cache_shape)
  module = hlo.parse(hlo_text)
  per_step = {"weights": 0, "cache": 0, "other": 0}
  per_call = dict(per_step)
  count = dict(per_step)

  def add(instruction: hlo.Instruction, computation: str, totals: dict[str, int],
          repeat: int) -> None:
    if instruction.opcode in ("slice", "dynamic-slice"):
      operand = module.instruction(computation, instruction.operands[0])
      found = (instruction, operand) if operand is not None else None
    elif instruction.opcode == "fusion" and "calls" in instruction.called:
      found = _root_slice(module, instruction.called["calls"][0])
    else:
      found = None
    if found is not None:
      kind = _source_kind(found[1], weights, cache)
      totals[kind] += instruction.nbytes() * repeat
      count[kind] += 1

  def walk(name: str, totals: dict[str, int], repeat: int, skip: Optional[str] = None) -> None:
    for instruction in module.computations.get(name, []):
      if instruction.opcode == "while" and instruction.name != skip:
        walk(instruction.called["body"][0], totals,
             repeat * (hlo.trip_count(module, instruction, name) or 1))
      elif instruction.opcode in ("call", "conditional") and instruction.called:
        for targets in instruction.called.values():
          for target in targets:
            walk(target, totals, repeat)
      else:
        add(instruction, name, totals, repeat)

  loops = [i for i in module.computations[module.entry] if i.opcode == "while"]
  decode = max(loops, key=lambda i: len(module.computations.get(i.called["body"][0], [])),
               default=None)
  if decode is not None:
    walk(decode.called["body"][0], per_step, 1)
  walk(module.entry, per_call, 1, skip=decode.name if decode is not None else None)
  return {"per_step": per_step, "per_call": per_call, "count": count}
