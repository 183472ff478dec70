"""Reading a compiled program's optimised HLO text: loops, FLOPs and collectives per step.

XLA's own `cost_analysis()` counts the body of a `while` loop once. A compiled step has many
loops: the scanned layers, gradient accumulation, and on TPU the collective matmuls ("windowed
einsums", a loop of matmul pieces and collective permutes). This module weights every
computation by how often one run of the program executes it (`execution_counts`: a loop's
body times its trip count, nested loops multiplied), and from that counts

* `flops`: the multiply-adds of every `dot` and `convolution` (2 FLOPs each; a convolution's
  padded window positions are not counted), the work the program really does, remat
  included;
* the collectives (`instruct_pt.aot.collectives` reads them with these counts).

A loop whose trip count cannot be read (a data-dependent `while`, such as a decode loop's) is
counted once, so that program's figures are per iteration of it; `Module.unknown_loops`
names such loops.

The text format is XLA's: `%name = shape opcode(operands), attributes`, computations as
`%name (params) -> shape { ... }` blocks, `ENTRY` marking the program.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from typing import Optional

import numpy as np

DTYPE_BYTES = {"pred": 1, "s4": 1, "u4": 1, "s8": 1, "u8": 1, "f8e4m3fn": 1, "f8e5m2": 1,
               "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4, "u32": 4, "f32": 4,
               "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16}

_HEADER = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s*\(.*\)\s*->\s*.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*?)\s([a-z][\w\-]*)\((.*)$")
_ARRAY = re.compile(r"([a-z]\w*)\[([\d,]*)\]")
_CALLED = re.compile(r"\b(calls|body|condition|to_apply|true_computation|false_computation)"
                     r"=%?([\w.\-]+)")
_CALLED_LISTS = re.compile(r"\b(branch_computations|called_computations)=\{([^}]*)\}")
_TRIP_COUNT = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')
# Calls whose callee runs once per execution of the caller (a reduction's `to_apply` runs per
# element but holds neither matmuls nor collectives, so it is not followed).
_FOLLOWED = ("while", "call", "conditional", "fusion", "async-start", "custom-call")
# Instructions that pass their one operand's value on (for following a loop counter).
_PASS_THROUGH = ("copy", "copy-done", "copy-start", "bitcast", "convert", "reshape")


@dataclasses.dataclass
class Instruction:
  """One HLO instruction.

  Attributes:
    name: its name (without %).
    opcode: e.g. "dot", "while", "all-gather-start".
    arrays: `(dtype, dims)` of its result, one per element of a tuple result.
    operands: the operands' names.
    attributes: the text after the operand list.
    literal: the text inside the parentheses of a `constant` (its value).
  """

  name: str
  opcode: str
  arrays: list[tuple[str, tuple[int, ...]]]
  operands: list[str]
  attributes: str
  literal: str = ""

  @property
  def called(self) -> dict[str, list[str]]:
    """Computations it calls, by attribute (`body`, `condition`, `calls`, ...)."""
    found: dict[str, list[str]] = {}
    for kind, target in _CALLED.findall(self.attributes):
      found.setdefault(kind, []).append(target)
    for kind, targets in _CALLED_LISTS.findall(self.attributes):
      found.setdefault(kind, []).extend(t.strip().lstrip("%") for t in targets.split(",")
                                        if t.strip())
    return found

  def nbytes(self, index: Optional[int] = None) -> int:
    """Bytes of the result (of tuple element `index`, or all of them)."""
    arrays = self.arrays if index is None else self.arrays[index:index + 1]
    return sum(math.prod(dims) * DTYPE_BYTES.get(dtype, 0) for dtype, dims in arrays)


@dataclasses.dataclass
class Module:
  """A parsed HLO module.

  Attributes:
    computations: instructions of each computation, by name, in text order.
    entry: the ENTRY computation's name.
    roots: the ROOT instruction of each computation.
  """

  computations: dict[str, list[Instruction]]
  entry: str
  roots: dict[str, str]

  def instruction(self, computation: str, name: str) -> Optional[Instruction]:
    """The instruction `name` of `computation`, or None."""
    return self._by_name.get((computation, name))

  @functools.cached_property
  def _by_name(self) -> dict[tuple[str, str], Instruction]:
    return {(c, i.name): i for c, instructions in self.computations.items()
            for i in instructions}

  @property
  def unknown_loops(self) -> list[str]:
    """`while` instructions whose trip count could not be read (counted once)."""
    return [i.name for name, instructions in self.computations.items() for i in instructions
            if i.opcode == "while" and trip_count(self, i, name) is None]


def until_closing(text: str) -> tuple[str, str]:
  """`(inside, rest)` of text that follows an opening bracket: split at the bracket that
  closes it (`opcode(` -> operands and attributes; `replica_groups={` -> the groups)."""
  depth = 1
  for index, char in enumerate(text):
    if char in "([{":
      depth += 1
    elif char in ")]}":
      depth -= 1
      if depth == 0:
        return text[:index], text[index + 1:]
  return text, ""


def _operand_names(text: str) -> list[str]:
  """Names of the operands (`%a, %b` or, in newer text, `f32[2]{0} %a, ...`)."""
  names, depth, current = [], 0, ""
  for char in text + ",":
    if char in "([{":
      depth += 1
    elif char in ")]}":
      depth -= 1
    if char == "," and depth == 0:
      word = current.strip().split(" ")[-1] if current.strip() else ""
      if word:
        names.append(word.lstrip("%"))
      current = ""
    else:
      current += char
  return names


def parse(text: str) -> Module:
  """Parses `compiled.as_text()`.

  Args:
    text: optimised HLO text of one module.

  Raises:
    ValueError: the text has no ENTRY computation.
  """
  computations: dict[str, list[Instruction]] = {}
  roots: dict[str, str] = {}
  entry, current = None, None
  for line in text.splitlines():
    if current is None:
      header = _HEADER.match(line)
      if header:
        current = header.group(2)
        computations[current] = []
        entry = current if header.group(1) else entry
      continue
    if line.strip() == "}":
      current = None
      continue
    match = _INSTRUCTION.match(line)
    if match:
      operands, attributes = until_closing(match.group(5))
      opcode = match.group(4)
      instruction = Instruction(match.group(2), opcode,
                                [(d, tuple(int(x) for x in dims.split(",") if x))
                                 for d, dims in _ARRAY.findall(match.group(3))],
                                [] if opcode == "constant" else _operand_names(operands),
                                attributes, operands if opcode == "constant" else "")
      computations[current].append(instruction)
      if match.group(1):
        roots[current] = instruction.name
  if entry is None:
    raise ValueError("no ENTRY computation in the HLO text")
  return Module(computations, entry, roots)


def _constant(module: Module, computation: str, name: str) -> Optional[int]:
  """The value of an integer scalar `constant` instruction, or None."""
  instruction = _source(module, computation, name)
  if (instruction is None or instruction.opcode != "constant" or
      not instruction.literal.strip().lstrip("-").isdigit()):
    return None
  return int(instruction.literal)


def _source(module: Module, computation: str, name: str) -> Optional[Instruction]:
  """The instruction `name`, looking through copies, bitcasts and converts."""
  instruction = module.instruction(computation, name)
  while (instruction is not None and instruction.opcode in _PASS_THROUGH and
         len(instruction.operands) == 1):
    instruction = module.instruction(computation, instruction.operands[0])
  return instruction


def _tuple_index(instruction: Optional[Instruction]) -> Optional[int]:
  """The `index` of a `get-tuple-element`, or None."""
  if instruction is None or instruction.opcode != "get-tuple-element":
    return None
  found = re.search(r"index=(\d+)", instruction.attributes)
  return int(found.group(1)) if found else None


def trip_count(module: Module, loop: Instruction, computation: str) -> Optional[int]:
  """Iterations of a `while`, or None when they cannot be read (a data-dependent loop).

  XLA's `known_trip_count` when the text has it; otherwise the induction variable's: the
  condition's ROOT compares a tuple element with a constant (`LT`, `LE`, `NE`), the body's
  ROOT tuple adds a constant step to that element, and the loop's operand starts it at a
  constant (0 when it is not one). TPU programs need this: XLA's collective matmuls count
  in steps of 2.

  Args:
    module: the module.
    loop: a `while` instruction.
    computation: the computation that holds `loop`.
  """
  known = _TRIP_COUNT.search(loop.attributes)
  if known:
    return int(known.group(1))
  condition = loop.called.get("condition", [""])[0]
  body = loop.called.get("body", [""])[0]
  compare = module.instruction(condition, module.roots.get(condition, ""))
  if compare is None or compare.opcode != "compare" or len(compare.operands) != 2:
    return None
  direction = re.search(r"direction=(\w+)", compare.attributes)
  index = _tuple_index(_source(module, condition, compare.operands[0]))
  limit = _constant(module, condition, compare.operands[1])
  if index is None or limit is None or direction is None:
    return None
  update = module.instruction(body, module.roots.get(body, ""))
  if update is None or update.opcode != "tuple" or index >= len(update.operands):
    return None
  step_of = _source(module, body, update.operands[index])
  if step_of is None or step_of.opcode != "add":
    return None
  steps = [_constant(module, body, name) for name in step_of.operands]
  counters = [_tuple_index(_source(module, body, name)) for name in step_of.operands]
  if index not in counters or not any(steps):
    return None
  step = next(value for value in steps if value)
  start = 0
  initial = module.instruction(computation, loop.operands[0]) if loop.operands else None
  if initial is not None and initial.opcode == "tuple" and index < len(initial.operands):
    start = _constant(module, computation, initial.operands[index]) or 0
  end = limit + (1 if direction.group(1) == "LE" else 0)
  if direction.group(1) not in ("LT", "LE", "NE") or step <= 0:
    return None
  return max(0, -(-(end - start) // step))


def execution_counts(module: Module) -> dict[str, int]:
  """How many times one run of the program executes each computation reachable from ENTRY.

  Args:
    module: the module.
  """
  counts: dict[str, int] = {}
  order: list[str] = []
  seen: set[str] = set()

  def visit(name: str) -> None:  # depth-first, callees after callers in `order` (reversed)
    seen.add(name)
    for instruction in module.computations.get(name, []):
      if instruction.opcode in _FOLLOWED or instruction.opcode.endswith("-start"):
        for kind, targets in instruction.called.items():
          for target in targets:
            if kind != "to_apply" and target not in seen and target in module.computations:
              visit(target)
    order.append(name)

  visit(module.entry)
  counts[module.entry] = 1
  for name in reversed(order):
    for instruction in module.computations.get(name, []):
      if not (instruction.opcode in _FOLLOWED or instruction.opcode.endswith("-start")):
        continue
      repeat = counts.get(name, 0)
      for kind, targets in instruction.called.items():
        if kind == "to_apply" or (kind == "condition"):
          continue
        factor = (trip_count(module, instruction, name) or 1) if kind == "body" else 1
        for target in targets:
          counts[target] = counts.get(target, 0) + repeat * factor
  return counts


def _operand_dims(module: Module, computation: str, instruction: Instruction,
                  index: int) -> tuple[int, ...]:
  """Dims of operand `index` of `instruction` (looked up by name in its computation)."""
  operand = module.instruction(computation, instruction.operands[index])
  if operand is None or not operand.arrays:
    raise ValueError(f"operand {instruction.operands[index]} of {instruction.name} not found")
  return operand.arrays[0][1]


def _dims_attribute(attributes: str, name: str) -> tuple[int, ...]:
  found = re.search(name + r"=\{([\d,]*)\}", attributes)
  return tuple(int(d) for d in found.group(1).split(",") if d) if found else ()


def dot_flops(module: Module, computation: str, instruction: Instruction) -> float:
  """2 x (output elements) x (contracted size) of a `dot`."""
  lhs = _operand_dims(module, computation, instruction, 0)
  contracted = math.prod(lhs[d] for d in _dims_attribute(instruction.attributes,
                                                         "lhs_contracting_dims"))
  return 2.0 * math.prod(instruction.arrays[0][1]) * contracted


def _window_pairs(in_size: int, out_size: int, size: int, stride: int, pad_low: int,
                  lhs_dilation: int, rhs_dilation: int, reversal: bool) -> int:
  """(output position, window position) pairs of one spatial dimension that read the input
  (not its padding or the holes of a dilated input)."""
  del reversal  # a reversed window reads the same positions
  outputs = np.arange(out_size)[:, None]
  taps = np.arange(size)[None, :]
  position = outputs * stride + taps * rhs_dilation - pad_low
  valid = (position >= 0) & (position <= (in_size - 1) * lhs_dilation) & \
      (position % lhs_dilation == 0)
  return int(valid.sum())


def convolution_flops(module: Module, computation: str, instruction: Instruction) -> float:
  """2 x multiply-adds of a `convolution`, padding and dilation holes excluded.

  Each output element sums (input features per group) x (window taps that read the input);
  the taps factor over spatial dimensions.
  """
  labels = re.search(r"dim_labels=([\w]+)_([\w]+)->([\w]+)", instruction.attributes)
  if labels is None:
    raise ValueError(f"convolution {instruction.name} has no dim_labels")
  lhs_labels, rhs_labels, out_labels = labels.groups()
  lhs = _operand_dims(module, computation, instruction, 0)
  rhs = _operand_dims(module, computation, instruction, 1)
  out = instruction.arrays[0][1]
  spatial = sorted(c for c in out_labels if c.isdigit())
  window = {}
  found = re.search(r"window=\{([^}]*)\}", instruction.attributes)
  for part in (found.group(1).split() if found else []):
    key, _, value = part.partition("=")
    window[key] = value.split("x")
  pairs = 1
  for i, label in enumerate(spatial):
    def entry(key, default, i=i):
      return window[key][i] if key in window else default
    pad_low = int(entry("pad", "0_0").split("_")[0])
    pairs *= _window_pairs(lhs[lhs_labels.index(label)], out[out_labels.index(label)],
                           int(entry("size", rhs[rhs_labels.index(label)])),
                           int(entry("stride", 1)), pad_low, int(entry("lhs_dilate", 1)),
                           int(entry("rhs_dilate", 1)), entry("rhs_reversal", "0") == "1")
  outer = out[out_labels.index("b")] * out[out_labels.index("f")]
  return 2.0 * outer * rhs[rhs_labels.index("i")] * pairs


def flops(module: Module, counts: Optional[dict[str, int]] = None) -> float:
  """FLOPs of every `dot` and `convolution` per run of the program (per device).

  Args:
    module: the module.
    counts: `execution_counts(module)` (computed when not given).
  """
  counts = execution_counts(module) if counts is None else counts
  total = 0.0
  for name, repeat in counts.items():
    for instruction in module.computations.get(name, []):
      if instruction.opcode == "dot":
        total += repeat * dot_flops(module, name, instruction)
      elif instruction.opcode == "convolution":
        total += repeat * convolution_flops(module, name, instruction)
  return total
