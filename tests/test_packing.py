"""Tests of packing: `pack_documents` (concatenate and split), `best_fit_rows` and `pack_rows`
(whole examples, best fit), packing efficiency and step-indexed batches.

Expectations are derived independently: documents are reconstructed from the packed rows,
hand-written features are worked out on paper, and batch order is checked through
invariants (determinism, resumption, epoch coverage, host sharding).
"""

import numpy as np
import pytest

from instruct_pt.data import packing
from instruct_pt.data.packing import (FEATURES, StepIndexedBatches, pack_documents, pack_rows,
                                      packing_efficiency)
from instruct_pt.data.sources import demo_corpus
from instruct_pt.data.tokenizer import ByteTokenizer

BOS, EOS = 1, 2


# pack_documents ----------------------------------------------------------------------------------

def _pieces(packed):
  """Yields (row, slice) of every segment, in row order then segment order."""
  seg = packed["decoder_segment_ids"]
  for r in range(seg.shape[0]):
    for s in range(1, seg[r].max() + 1):
      idx = np.flatnonzero(seg[r] == s)
      yield r, idx


def _check_packing(docs, seq_len):
  """Checks every documented property of pack_documents(docs, seq_len)."""
  packed = pack_documents(docs, seq_len, BOS, EOS)
  assert set(packed) == set(FEATURES)
  total = sum(len(d) + 1 for d in docs)  # each document plus its EOS
  num_rows = -(-total // seq_len)
  for name, values in packed.items():
    assert values.shape == (num_rows, seq_len), name
  inputs, targets = packed["decoder_input_tokens"], packed["decoder_target_tokens"]
  seg, pos = packed["decoder_segment_ids"], packed["decoder_positions"]
  weights = packed["decoder_loss_weights"]

  # Real tokens fill the first `total` slots (row-major); the rest is padding.
  real = np.arange(num_rows * seq_len).reshape(num_rows, seq_len) < total
  np.testing.assert_array_equal(weights, real.astype(np.float32))
  np.testing.assert_array_equal(seg == 0, ~real)
  np.testing.assert_array_equal(pos[~real], 0)
  np.testing.assert_array_equal(targets[~real], 0)

  # Segment ids restart at 1 in each row, are contiguous and non-decreasing, and each segment
  # occupies a contiguous span.
  for r in range(num_rows):
    ids = seg[r][real[r]]
    assert ids[0] == 1
    assert set(np.diff(ids)) <= {0, 1}

  # Reconstruct the documents from the targets, segment by segment, splitting at EOS; check
  # inputs (shifted targets; BOS at a document start, the real previous token at a row-boundary
  # continuation) and positions (0.. inside each piece).
  stream, prev_piece_targets = [], None
  for r, idx in _pieces(packed):
    assert np.all(np.diff(idx) == 1), "segment is not contiguous"
    t, x = targets[r, idx], inputs[r, idx]
    np.testing.assert_array_equal(pos[r, idx], np.arange(len(idx)))
    starts_document = prev_piece_targets is None or prev_piece_targets[-1] == EOS
    if starts_document:
      assert x[0] == BOS
    else:
      assert idx[0] == 0, "a continuation must start a row"
      assert x[0] == prev_piece_targets[-1]
    np.testing.assert_array_equal(x[1:], t[:-1])
    # A piece never holds the end of one document and the start of another.
    assert EOS not in t[:-1]
    stream.extend(t.tolist())
    prev_piece_targets = t
  assert stream and stream[-1] == EOS
  rebuilt, current = [], []
  for token in stream:
    if token == EOS:
      rebuilt.append(current)
      current = []
    else:
      current.append(token)
  assert rebuilt == [list(d) for d in docs]
  return packed


def test_pack_documents_hand_made():
  """Hand-made documents (one spanning three rows, one empty, one ending exactly at a row end)
  are recovered from the packed rows; inputs, segment ids, positions and loss weights follow
  the documented layout."""
  docs = [[10, 11, 12], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32], [40], [],
          [50, 51, 52, 53, 54]]
  _check_packing(docs, seq_len=6)
  _check_packing(docs, seq_len=4)
  _check_packing(docs, seq_len=64)  # everything in one row


def test_pack_documents_worked_example():
  """A small case worked out by hand, including a row-boundary continuation."""
  packed = pack_documents([[5, 6, 7, 8, 9], [4]], seq_len=4, bos_id=BOS, eos_id=EOS)
  # targets 5 6 7 8 | 9 EOS 4 EOS;  inputs BOS 5 6 7 | 8 9 BOS 4
  np.testing.assert_array_equal(packed["decoder_target_tokens"], [[5, 6, 7, 8], [9, EOS, 4, EOS]])
  np.testing.assert_array_equal(packed["decoder_input_tokens"], [[BOS, 5, 6, 7], [8, 9, BOS, 4]])
  np.testing.assert_array_equal(packed["decoder_segment_ids"], [[1, 1, 1, 1], [1, 1, 2, 2]])
  np.testing.assert_array_equal(packed["decoder_positions"], [[0, 1, 2, 3], [0, 1, 0, 1]])
  np.testing.assert_array_equal(packed["decoder_loss_weights"], np.ones((2, 4)))
  packed = pack_documents([[5, 6, 7], [8, 9]], seq_len=4, bos_id=BOS, eos_id=EOS)
  # targets 5 6 7 EOS | 8 9 EOS pad;  inputs BOS 5 6 7 | BOS 8 9 pad
  np.testing.assert_array_equal(packed["decoder_target_tokens"], [[5, 6, 7, EOS], [8, 9, EOS, 0]])
  np.testing.assert_array_equal(packed["decoder_input_tokens"], [[BOS, 5, 6, 7], [BOS, 8, 9, 0]])
  np.testing.assert_array_equal(packed["decoder_segment_ids"], [[1, 1, 1, 1], [1, 1, 1, 0]])
  np.testing.assert_array_equal(packed["decoder_positions"], [[0, 1, 2, 3], [0, 1, 2, 0]])
  np.testing.assert_array_equal(packed["decoder_loss_weights"], [[1, 1, 1, 1], [1, 1, 1, 0]])
  # Every feature is int32, as SeqIO's feature converter (and the SeqIO feed) gives them.
  for name in FEATURES:
    assert packed[name].dtype == np.int32, name


@pytest.mark.parametrize("seq_len", [1, 3, 7, 16])
def test_pack_documents_random(seq_len):
  """Random documents (lengths 0..40) satisfy the packing properties at several row lengths."""
  rng = np.random.default_rng(seq_len)
  docs = [rng.integers(3, 259, rng.integers(0, 41)).tolist() for _ in range(12)]
  _check_packing(docs, seq_len)


def test_pack_documents_accepts_a_generator_and_rejects_empty():
  """Documents may come from a generator; an empty corpus raises ValueError with the
  module's message."""
  packed = pack_documents((d for d in [[3, 4], [5]]), 8, BOS, EOS)
  np.testing.assert_array_equal(packed["decoder_target_tokens"][0, :5], [3, 4, EOS, 5, EOS])
  with pytest.raises(ValueError, match="^pack_documents got no documents$"):
    pack_documents([], 8, BOS, EOS)


@pytest.mark.parametrize("bos_id, eos_id", [(2**31, EOS), (BOS, 2**31)])
def test_pack_documents_rejects_ids_past_int32(bos_id, eos_id):
  """A BOS or EOS id that int32 cannot hold (2**31 = int32 max + 1) raises OverflowError
  instead of wrapping silently to a negative id in the int32 features."""
  with pytest.raises(OverflowError):
    pack_documents([[3, 4]], 4, bos_id, eos_id)


# best_fit_rows -----------------------------------------------------------------------------------

def test_best_fit_rows_in_arrival_and_decreasing_order():
  """Each example goes to the open row with the least room that holds it (worked by hand):
  arrival order [3, 2, 1, 4, 2] in rows of 4 -> [3+1], [2+2], [4]; decreasing order places
  4, 3, 2, 2, 1 -> [4], [3+1], [2+2]."""
  lengths = [3, 2, 1, 4, 2]
  assert packing.best_fit_rows(lengths, 4) == [[0, 2], [1, 4], [3]]
  assert packing.best_fit_rows(lengths, 4, decreasing=True) == [[3], [0, 2], [1, 4]]
  # Where best fit and first fit differ: [2, 3, 1] in rows of 4. The 1 fits both open rows
  # (2 and 1 free); best fit takes the tighter, the 3's row (first fit would give [[0, 2], [1]]).
  assert packing.best_fit_rows([2, 3, 1], 4) == [[0], [1, 2]]
  # Free room is counted exactly in integers: rows of 2**60 (past float64's 2**53 exact
  # integers) take 2**60 - 1 then 1, which fill one row exactly. In float64, 2**60 - 1 rounds
  # to 2**60 and would leave no room for the 1.
  assert packing.best_fit_rows([2**60 - 1, 1], 2**60) == [[0, 1]]


# pack_rows ---------------------------------------------------------------------------------------

def test_pack_rows_worked_example():
  """Four examples of lengths 3, 2, 4, 1 in rows of 6, worked by hand. Best fit in arrival
  order: 3 -> row 0 (3 free), 2 -> row 0 (1 free), 4 -> new row 1 (2 free), 1 fits both rows
  and takes the tighter row 0. So row 0 = examples 0, 1, 3 at columns 0-2, 3-4, 5 (segments
  1, 2, 3), row 1 = example 2 at columns 0-3 then 2 padding slots (all features 0). Each
  example's slice of the concatenated inputs / targets / weights is copied unchanged;
  positions count 0.. inside each example."""
  # Example k's targets are 10 * (k + 1) + j; inputs are BOS then the targets shifted right;
  # weights are uneven so that a misplaced slice shows.
  inputs = np.asarray([BOS, 10, 11, BOS, 20, BOS, 30, 31, 32, BOS], np.int32)
  targets = np.asarray([10, 11, 12, 20, 21, 30, 31, 32, 33, 40], np.int32)
  weights = np.asarray([0, 1, 1, 1, 1, 0, 0, 1, 1, 1], np.int32)
  lengths = np.asarray([3, 2, 4, 1], np.int64)  # as tf.RaggedTensor.row_lengths gives them
  packed = pack_rows(inputs, targets, weights, lengths, 6)
  assert len(packed) == len(FEATURES)
  expected = {
      "decoder_input_tokens": [[BOS, 10, 11, BOS, 20, BOS], [BOS, 30, 31, 32, 0, 0]],
      "decoder_target_tokens": [[10, 11, 12, 20, 21, 40], [30, 31, 32, 33, 0, 0]],
      "decoder_loss_weights": [[0, 1, 1, 1, 1, 1], [0, 0, 1, 1, 0, 0]],
      "decoder_segment_ids": [[1, 1, 1, 2, 2, 3], [1, 1, 1, 1, 0, 0]],
      "decoder_positions": [[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 0, 0]],
  }
  for name, values in zip(FEATURES, packed):
    np.testing.assert_array_equal(values, expected[name], err_msg=name)
    # The SeqIO feed declares every output int32 to tf.numpy_function.
    assert values.dtype == np.int32, name


def test_pack_rows_one_example_per_row():
  """Examples that cannot share a row (lengths 3 and 2 in rows of 4: 3 + 2 > 4) each start a
  row of their own at column 0, segment 1, the rest of the row padding; an example as long as
  the row fills it exactly."""
  inputs = np.asarray([BOS, 5, 6, BOS, 7, BOS, 8, 9, 4], np.int32)
  targets = np.asarray([5, 6, EOS, 7, EOS, 8, 9, 4, EOS], np.int32)
  weights = np.ones(9, np.int32)
  packed = dict(zip(FEATURES, pack_rows(inputs, targets, weights, np.asarray([3, 2, 4]), 4)))
  np.testing.assert_array_equal(packed["decoder_input_tokens"],
                                [[BOS, 5, 6, 0], [BOS, 7, 0, 0], [BOS, 8, 9, 4]])
  np.testing.assert_array_equal(packed["decoder_target_tokens"],
                                [[5, 6, EOS, 0], [7, EOS, 0, 0], [8, 9, 4, EOS]])
  np.testing.assert_array_equal(packed["decoder_loss_weights"],
                                [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
  np.testing.assert_array_equal(packed["decoder_segment_ids"],
                                [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
  np.testing.assert_array_equal(packed["decoder_positions"],
                                [[0, 1, 2, 0], [0, 1, 0, 0], [0, 1, 2, 3]])


# packing_efficiency ------------------------------------------------------------------------------

def test_packing_efficiency_counts_loss_weighted_slots():
  """Loss weights [[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]]: 5 of the 12 slots are real, so
  both the function and StepIndexedBatches.packing_efficiency give 5 / 12."""
  rows = {name: np.zeros((3, 4), np.int32) for name in FEATURES}
  rows["decoder_loss_weights"] = np.asarray([[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]],
                                            np.int32)
  assert packing_efficiency(rows) == pytest.approx(5 / 12)
  assert StepIndexedBatches(rows, 3).packing_efficiency() == pytest.approx(5 / 12)


def test_packing_efficiency_on_demo_corpus():
  """The demo corpus (train split) packed at seq_len 512 with ByteTokenizer fills >= 90% of
  the slots; packing_efficiency equals the independently counted real-token fraction."""
  vocab = ByteTokenizer()
  texts = demo_corpus("train")
  packed = pack_documents((vocab.encode(t) for t in texts), 512, vocab.bos_id, vocab.eos_id)
  real_tokens = sum(len(t.encode("utf-8")) + 1 for t in texts)
  efficiency = packing_efficiency(packed)
  assert efficiency == pytest.approx(real_tokens / packed["decoder_target_tokens"].size)
  assert efficiency >= 0.90, f"packing efficiency {efficiency:.4f} < 0.90"


# StepIndexedBatches ------------------------------------------------------------------------------

def _rows(num_rows, seq_len=3):
  """Rows whose every feature encodes the row index (row r holds 100 * r + column)."""
  values = np.arange(num_rows)[:, None] * 100 + np.arange(seq_len)
  return {name: values.astype(np.int32) for name in FEATURES}


def _row_ids(batch):
  return (batch["decoder_target_tokens"][:, 0] // 100).tolist()


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def test_step_indexed_batches_deterministic():
  """Two instances with the same seed give identical batches; another seed gives another
  order; a batch holds whole rows (all features of the same rows)."""
  a = StepIndexedBatches(_rows(24), 4, seed=3)
  b = StepIndexedBatches(_rows(24), 4, seed=3)
  c = StepIndexedBatches(_rows(24), 4, seed=4)
  for step in range(15):
    batch = a.batch(step)
    assert set(batch) == set(FEATURES)
    for name in FEATURES:
      np.testing.assert_array_equal(batch[name], b.batch(step)[name])
      ids = np.asarray(_row_ids(batch))[:, None] * 100 + np.arange(3)
      np.testing.assert_array_equal(batch[name], ids)
  assert [_row_ids(a.batch(s)) for s in range(6)] != [_row_ids(c.batch(s)) for s in range(6)]
  # Calling out of order (permutation cache evicted and rebuilt) changes nothing.
  assert _row_ids(a.batch(0)) == _row_ids(b.batch(0))


@pytest.mark.parametrize("start", [1, 5, 6, 13])
def test_step_indexed_batches_resume(start):
  """iterate(k) on a fresh instance yields exactly the batches that iterating from 0 yields
  from step k on (also across epoch boundaries: 22 rows, batches of 4)."""
  full = _take(StepIndexedBatches(_rows(22), 4, seed=7).iterate(), start + 12)
  resumed = _take(StepIndexedBatches(_rows(22), 4, seed=7).iterate(start), 12)
  for x, y in zip(full[start:], resumed):
    for name in FEATURES:
      np.testing.assert_array_equal(x[name], y[name])


@pytest.mark.parametrize("num_rows", [24, 22])
def test_step_indexed_batches_epoch_coverage(num_rows):
  """Over each epoch every row is seen exactly once (the step stream is a concatenation of
  permutations of all rows), and successive epochs use different orders."""
  data = StepIndexedBatches(_rows(num_rows), 4, seed=1)
  stream = [r for step in range(3 * num_rows // 4 + 1) for r in _row_ids(data.batch(step))]
  epochs = [stream[e * num_rows:(e + 1) * num_rows] for e in range(3)]
  for epoch in epochs:
    assert sorted(epoch) == list(range(num_rows))
  assert epochs[0] != epochs[1] and epochs[1] != epochs[2]
  assert epochs[0] != list(range(num_rows))  # shuffled


def test_step_indexed_batches_two_hosts():
  """Hosts 0 and 1 of 2 get disjoint halves of each global batch, host 0 then host 1 forming
  exactly the batch of a single-host instance."""
  single = StepIndexedBatches(_rows(22), 8, seed=5)
  hosts = [StepIndexedBatches(_rows(22), 8, seed=5, process_index=h, process_count=2)
           for h in range(2)]
  for step in range(8):
    parts = [_row_ids(h.batch(step)) for h in hosts]
    assert len(parts[0]) == len(parts[1]) == 4
    assert not set(parts[0]) & set(parts[1])
    assert parts[0] + parts[1] == _row_ids(single.batch(step))


def test_step_indexed_batches_bad_inputs():
  """A global batch not divisible by the host count, or fewer rows than one global batch,
  raises ValueError naming the numbers."""
  with pytest.raises(ValueError, match="7"):
    StepIndexedBatches(_rows(20), 7, process_index=0, process_count=2)
  with pytest.raises(ValueError, match="5"):
    StepIndexedBatches(_rows(5), 8)
  assert StepIndexedBatches(_rows(8), 8).batch(0)["decoder_positions"].shape == (8, 3)
