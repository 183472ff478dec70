"""Packing tokenized documents into fixed-length rows, and step-indexed batches of them.

Pure numpy, so a machine without TensorFlow (a GPU box, Colab) can train. The features are
those of SeqIO's packed `DecoderFeatureConverter`, which the SeqIO feed produces too (all
int32):

  decoder_input_tokens   [rows, length]  BOS + document, shifted right inside each segment
  decoder_target_tokens  [rows, length]  document + EOS
  decoder_loss_weights   [rows, length]  1 on real target tokens, 0 on padding
  decoder_segment_ids    [rows, length]  1, 2, ... per document piece in the row; 0 = padding
  decoder_positions      [rows, length]  index of the token inside its piece

Two ways to fill rows:

* `pack_documents` lays raw documents end to end and cuts them into rows ("concatenate and
  split"), so rows are full except the last; a document cut by a row boundary continues in
  the next row as a new segment (with its real previous token as input).
* `pack_rows` keeps examples whole and places them by `best_fit_rows` (the SeqIO feed, whose
  examples carry loss masks that must not be cut apart from their context).

Attention never crosses segments either way.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator, Sequence

import numpy as np

FEATURES = ("decoder_input_tokens", "decoder_target_tokens", "decoder_loss_weights",
            "decoder_segment_ids", "decoder_positions")


def pack_documents(documents: Iterable[Sequence[int]], seq_len: int, bos_id: int,
                   eos_id: int) -> dict[str, np.ndarray]:
  """Packs tokenized documents into rows of `seq_len` tokens.

  Args:
    documents: token ids of each document (without BOS / EOS).
    seq_len: row length.
    bos_id: id fed as input before a document's first token.
    eos_id: id appended as the last target of each document.

  Returns:
    The five features above, each `[num_rows, seq_len]` int32.
  """
  inputs, targets = [], []
  for doc in documents:
    doc = list(doc)
    inputs.append(np.asarray([bos_id] + doc, np.int32))
    targets.append(np.asarray(doc + [eos_id], np.int32))
  if not targets:
    raise ValueError("pack_documents got no documents")
  lengths = np.asarray([len(t) for t in targets])
  flat_inputs = np.concatenate(inputs)
  flat_targets = np.concatenate(targets)
  total = len(flat_targets)
  num_rows = -(-total // seq_len)
  padded = num_rows * seq_len
  doc_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
  offset_in_doc = np.arange(total) - doc_start
  row_start = (np.arange(total) // seq_len) * seq_len
  # A piece starts at a document start or at a row start inside a document.
  piece_start = np.maximum(doc_start, row_start)
  positions = np.arange(total) - piece_start
  new_piece = (offset_in_doc == 0) | (np.arange(total) == row_start)
  piece_id = np.cumsum(new_piece)
  # Segment ids restart at 1 in every row.
  first_piece_of_row = piece_id[np.arange(num_rows) * seq_len]
  segments = piece_id - np.repeat(first_piece_of_row, seq_len)[:total] + 1

  def rows(values, fill, dtype):
    out = np.full(padded, fill, dtype)
    out[:total] = values
    return out.reshape(num_rows, seq_len)

  return {
      "decoder_input_tokens": rows(flat_inputs, 0, np.int32),
      "decoder_target_tokens": rows(flat_targets, 0, np.int32),
      "decoder_loss_weights": rows(np.ones(total), 0, np.int32),
      "decoder_segment_ids": rows(segments, 0, np.int32),
      "decoder_positions": rows(positions, 0, np.int32),
  }


def best_fit_rows(lengths: Sequence[int], length: int,
                  decreasing: bool = False) -> list[list[int]]:
  """Assigns examples to rows: each to the open row with least free space that holds it.

  The one bin-packer of the package: SeqIO packing uses it in arrival order (examples stream
  in), the generation engine's prefill planner on lengths sorted longest first (best-fit
  decreasing, which needs the fewest rows in practice).

  Args:
    lengths: example lengths, each at most `length`.
    length: row length.
    decreasing: place the examples longest first (ties in arrival order) instead of in
      arrival order.

  Returns:
    Example indices of each row, rows in creation order, examples in placement order.
  """
  order = range(len(lengths))
  if decreasing:
    order = sorted(order, key=lambda index: -lengths[index])
  free = np.empty(len(lengths), np.int64)
  rows: list[list[int]] = []
  for index in order:
    size = lengths[index]
    open_free = free[:len(rows)]
    fits = np.flatnonzero(open_free >= size)
    if fits.size:
      row = int(fits[np.argmin(open_free[fits])])
    else:
      row = len(rows)
      rows.append([])
      free[row] = length
    rows[row].append(index)
    free[row] -= size
  return rows


def pack_rows(inputs: np.ndarray, targets: np.ndarray, weights: np.ndarray,
              lengths: np.ndarray, length: int) -> tuple[np.ndarray, ...]:
  """Packs concatenated examples into `[rows, length]` arrays of the five FEATURES.

  Args:
    inputs: decoder inputs of all examples, concatenated.
    targets: their targets, concatenated.
    weights: their loss weights, concatenated.
    lengths: each example's length.
    length: row length.
  """
  starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
  rows = best_fit_rows(lengths, length)
  out = {name: np.zeros((len(rows), length), np.int32) for name in FEATURES}
  for row, members in enumerate(rows):
    offset = 0
    for segment, index in enumerate(members, 1):
      size = int(lengths[index])
      source = slice(starts[index], starts[index] + size)
      target = (row, slice(offset, offset + size))
      out["decoder_input_tokens"][target] = inputs[source]
      out["decoder_target_tokens"][target] = targets[source]
      out["decoder_loss_weights"][target] = weights[source]
      out["decoder_segment_ids"][target] = segment
      out["decoder_positions"][target] = np.arange(size)
      offset += size
  return tuple(out[name] for name in FEATURES)


def packing_efficiency(packed: dict[str, np.ndarray]) -> float:
  """Fraction of the packed slots that hold real tokens."""
  weights = packed["decoder_loss_weights"]
  return float(weights.sum() / weights.size)


@dataclasses.dataclass
class StepIndexedBatches:
  """Deterministic batches of packed rows: batch k is a pure function of (seed, k).

  Epoch e visits the rows in a permutation drawn from `seed` and e; the global batch at step
  k takes rows `[k * B, (k + 1) * B)` of the concatenated epochs, and host h of P keeps its
  contiguous `B / P` share. Resuming at step k therefore yields exactly the batches an
  uninterrupted run sees from step k on (Levanter's step-indexed data idea).

  Attributes:
    rows: packed features, `[num_rows, seq_len]` each.
    global_batch_size: B, rows per step over all hosts.
    seed: shuffling seed.
    process_index: this host's index h.
    process_count: number of hosts P.
  """

  rows: dict[str, np.ndarray]
  global_batch_size: int
  seed: int = 0
  process_index: int = 0
  process_count: int = 1

  def __post_init__(self):
    self.num_rows = len(next(iter(self.rows.values())))
    if self.global_batch_size % self.process_count:
      raise ValueError(f"global batch size {self.global_batch_size} is not divisible by "
                       f"{self.process_count} hosts")
    if self.num_rows < self.global_batch_size:
      raise ValueError(f"only {self.num_rows} packed rows, fewer than one batch of "
                       f"{self.global_batch_size}; use a smaller batch or a larger corpus")
    self._permutations: dict[int, np.ndarray] = {}

  def _permutation(self, epoch: int) -> np.ndarray:
    if epoch not in self._permutations:
      rng = np.random.default_rng([self.seed, epoch])
      self._permutations = {epoch: rng.permutation(self.num_rows)}
    return self._permutations[epoch]

  def packing_efficiency(self) -> float:
    """Fraction of the packed slots that hold real tokens."""
    return packing_efficiency(self.rows)

  def row_indices(self, step: int) -> np.ndarray:
    """Indices (into `rows`) of this host's rows at `step`."""
    local = self.global_batch_size // self.process_count
    first = step * self.global_batch_size + self.process_index * local
    flat = np.arange(first, first + local)
    epochs, offsets = np.divmod(flat, self.num_rows)
    return np.asarray([self._permutation(int(e))[o] for e, o in zip(epochs, offsets)])

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """This host's share of the global batch at `step`."""
    index = self.row_indices(step)
    return {name: values[index] for name, values in self.rows.items()}

  def iterate(self, start_step: int = 0, state=None) -> Iterator[dict[str, np.ndarray]]:
    """Batches from `start_step` on, forever (`state` is unused: batches are indexed)."""
    del state
    step = start_step
    while True:
      yield self.batch(step)
      step += 1
