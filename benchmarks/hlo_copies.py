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
on any backend's HLO text.
"""

from __future__ import annotations

import math
import re
from typing import Optional, Sequence

_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2,
                "s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8}
_HEADER = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*?)\s([a-z][\w\-]*)\((.*)$")
_ARRAY = re.compile(r"^([a-z]\w*)\[([\d,]*)\]")
_OPERAND = re.compile(r"%?([\w.\-]+)")
_CALLED = re.compile(r"\b(calls|body|to_apply)=%?([\w.\-]+)")
_TRIP_COUNT = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')
_PASS_THROUGH = ("bitcast", "copy", "convert", "reshape", "transpose")


class _Instruction:
  """One HLO instruction: name, opcode, array shape (None for tuples), operands, attributes."""

  def __init__(self, name: str, shape: str, opcode: str, rest: str):
    self.name = name
    self.opcode = opcode
    array = _ARRAY.match(shape.strip())
    self.dtype = array.group(1) if array else None
    self.dims = (tuple(int(d) for d in array.group(2).split(",") if d) if array else None)
    self.operands = [m.group(1) for m in _OPERAND.finditer(rest.split(")")[0])]
    self.called = dict((kind, target) for kind, target in _CALLED.findall(rest))
    trip = _TRIP_COUNT.search(rest)
    self.trip_count = int(trip.group(1)) if trip else None

  @property
  def nbytes(self) -> int:
    if self.dims is None or self.dtype not in _DTYPE_BYTES:
      return 0
    return math.prod(self.dims) * _DTYPE_BYTES[self.dtype]


def _parse(hlo_text: str) -> tuple[dict[str, list[_Instruction]], Optional[str]]:
  """Computations by name (instructions in order, ROOT last-marked first) and ENTRY's name."""
  computations: dict[str, list[_Instruction]] = {}
  roots: dict[str, str] = {}
  entry, current = None, None
  for line in hlo_text.splitlines():
    if current is None:
      header = _HEADER.match(line)
      if header and "=" not in line.split("(")[0]:
        current = header.group(2)
        computations[current] = []
        if header.group(1):
          entry = current
      continue
    if line.strip() == "}":
      current = None
      continue
    match = _INSTRUCTION.match(line)
    if match:
      instruction = _Instruction(match.group(2), match.group(3), match.group(4), match.group(5))
      computations[current].append(instruction)
      if match.group(1):
        roots[current] = instruction.name
  for name, instructions in computations.items():  # the ROOT first, for _root_slice
    instructions.sort(key=lambda i, root=roots.get(name): i.name != root)
  return computations, entry


def _root_slice(instructions: list[_Instruction]) -> Optional[tuple[_Instruction,
                                                                    _Instruction]]:
  """`(slice, its operand)` when the computation's result is a slice passed through only
  layout-preserving ops; None otherwise."""
  by_name = {i.name: i for i in instructions}
  node = instructions[0] if instructions else None
  while node is not None and node.opcode in _PASS_THROUGH and node.operands:
    node = by_name.get(node.operands[0])
  if node is None or node.opcode not in ("slice", "dynamic-slice") or not node.operands:
    return None
  source = by_name.get(node.operands[0])
  return (node, source) if source is not None else None


def _source_kind(dims: Optional[Sequence[int]], weight_shapes: set[tuple[int, ...]],
                 cache_shape: tuple[int, ...]) -> str:
  if dims is not None and tuple(dims) == cache_shape:
    return "cache"
  if dims is not None and tuple(dims) in weight_shapes:
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
    counted trip-count times), once per call (outside it), and how many slice instructions
    of each kind the program has.
  """
  weights = {tuple(shape) for shape in weight_shapes}
  cache = tuple(cache_shape)
  computations, entry = _parse(hlo_text)
  if entry is None:
    raise ValueError("no ENTRY computation in the HLO text")
  per_step = {"weights": 0, "cache": 0, "other": 0}
  per_call = dict(per_step)
  count = dict(per_step)

  def add(instruction: _Instruction, computation: list[_Instruction], totals: dict[str, int],
          repeat: int) -> None:
    if instruction.opcode in ("slice", "dynamic-slice"):
      operand = next((i for i in computation if i.name == instruction.operands[0]), None)
      found = (instruction, operand) if operand is not None else None
    elif instruction.opcode == "fusion" and "calls" in instruction.called:
      found = _root_slice(computations.get(instruction.called["calls"], []))
    else:
      found = None
    if found is not None:
      kind = _source_kind(found[1].dims, weights, cache)
      totals[kind] += instruction.nbytes * repeat
      count[kind] += 1

  def walk(name: str, totals: dict[str, int], repeat: int, skip: Optional[str] = None) -> None:
    computation = computations.get(name, [])
    for instruction in computation:
      if instruction.opcode == "while" and instruction.name != skip:
        walk(instruction.called.get("body", ""), totals,
             repeat * (instruction.trip_count or 1))
      elif instruction.opcode in ("call", "conditional") and instruction.called:
        for target in instruction.called.values():
          walk(target, totals, repeat)
      else:
        add(instruction, computation, totals, repeat)

  loops = [i for i in computations[entry] if i.opcode == "while"]
  decode = max(loops, key=lambda i: len(computations.get(i.called.get("body", ""), [])),
               default=None)
  if decode is not None:
    walk(decode.called["body"], per_step, 1)
  walk(entry, per_call, 1, skip=decode.name if decode is not None else None)
  return {"per_step": per_step, "per_call": per_call, "count": count}
