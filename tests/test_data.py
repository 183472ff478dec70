"""Tests of the data pipeline: byte vocabulary, demo corpus, packing and step-indexed batches.

Expectations are derived independently: documents are reconstructed from the packed rows,
hand-written features are worked out on paper, and batch order is checked through
invariants (determinism, resumption, epoch coverage, host sharding).
"""

import io
import os
import sys

import numpy as np
import pytest

from instruct_pt.data import packing
from instruct_pt.data.feed import text_feed
from instruct_pt.data.packing import (FEATURES, StepIndexedBatches, pack_documents,
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
  assert packed["decoder_loss_weights"].dtype == np.int32
  for name in FEATURES[:1] + FEATURES[3:]:
    assert packed[name].dtype == np.int32, name


@pytest.mark.parametrize("seq_len", [1, 3, 7, 16])
def test_pack_documents_random(seq_len):
  """Random documents (lengths 0..40) satisfy the packing properties at several row lengths."""
  rng = np.random.default_rng(seq_len)
  docs = [rng.integers(3, 259, rng.integers(0, 41)).tolist() for _ in range(12)]
  _check_packing(docs, seq_len)


def test_pack_documents_accepts_a_generator_and_rejects_empty():
  """Documents may come from a generator; an empty corpus raises ValueError."""
  packed = pack_documents((d for d in [[3, 4], [5]]), 8, BOS, EOS)
  np.testing.assert_array_equal(packed["decoder_target_tokens"][0, :5], [3, 4, EOS, 5, EOS])
  with pytest.raises(ValueError):
    pack_documents([], 8, BOS, EOS)


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


def test_text_feed_packs_encoded_texts():
  """text_feed (single host) serves step-indexed batches of exactly the rows pack_documents
  makes from the byte-encoded texts, with BOS/EOS from the vocabulary."""
  vocab = ByteTokenizer()
  texts = ["héllo world", "", "<QUE> q <ANS> a </END>", "x" * 40]
  feed = text_feed(texts, vocab, seq_len=8, global_batch_size=2, seed=3)
  # Byte b has id b + 3 (after PAD=0, BOS=1, EOS=2).
  expected = pack_documents([[b + 3 for b in t.encode("utf-8")] for t in texts], 8, 1, 2)
  for name in FEATURES:
    np.testing.assert_array_equal(feed.rows[name], expected[name])
  assert (feed.process_index, feed.process_count, feed.global_batch_size) == (0, 1, 2)
  reference = StepIndexedBatches(expected, 2, seed=3)
  for step in range(5):
    np.testing.assert_array_equal(feed.batch(step)["decoder_input_tokens"],
                                  reference.batch(step)["decoder_input_tokens"])


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


# demo_corpus -------------------------------------------------------------------------------------

def test_demo_corpus_splits():
  """train and held_out are non-empty and disjoint, held_out is about 5% of the paragraphs
  (between 2% and 10%), repeated calls give the same lists, and paragraphs are stripped."""
  train, held_out = demo_corpus("train"), demo_corpus("held_out")
  assert train and held_out
  assert not set(train) & set(held_out)
  fraction = len(held_out) / (len(train) + len(held_out))
  assert 0.02 <= fraction <= 0.10, fraction
  assert demo_corpus("train") == train and demo_corpus("held_out") == held_out
  assert demo_corpus() == train
  assert all(p == p.strip() and p for p in train + held_out)


def test_demo_corpus_unknown_split():
  """An unknown split name raises ValueError naming it."""
  with pytest.raises(ValueError, match="validation"):
    demo_corpus("validation")


# ByteTokenizer --------------------------------------------------------------------------------

TEXTS = [
    "",
    "plain ascii text.",
    "accents: café, naïve, Ærøskøbing, über",
    "CJK: 漢字かなカナ한국어",
    "emoji: 🙂🚀👩‍👩‍👧 and flags 🇫🇷",
    "  leading, \t\ttabs,\nnew\n\nlines   and trailing   ",
    "<CON> context </CON> <QUE> question? <ANS> answer </END>",
    "\x00\x01\x02 control bytes",
]


@pytest.mark.parametrize("text", TEXTS, ids=["empty", "ascii", "accents", "cjk", "emoji",
                                             "whitespace", "template_tags", "control"])
def test_byte_vocabulary_round_trip(text):
  """encode/decode round-trips unicode, whitespace runs and the literal template tags; there
  is one id per UTF-8 byte, every id is in [3, vocab_size) (never PAD/BOS/EOS)."""
  vocab = ByteTokenizer()
  ids = vocab.encode(text)
  assert len(ids) == len(text.encode("utf-8"))
  assert all(3 <= i < vocab.vocab_size for i in ids)
  assert vocab.decode(ids) == text


def test_byte_vocabulary_specials():
  """PAD=0, BOS=1, EOS=2, 256 byte ids after them; decode skips PAD/BOS/EOS anywhere, and ids
  outside the vocabulary."""
  vocab = ByteTokenizer()
  assert (vocab.pad_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2)
  assert vocab.vocab_size == 256 + 3
  text = "<QUE> héllo 世界 </END>"
  ids = vocab.encode(text)
  noisy = [vocab.bos_id] + ids[:3] + [vocab.pad_id, vocab.eos_id] + ids[3:] + [vocab.eos_id,
                                                                                vocab.pad_id]
  assert vocab.decode(noisy) == text
  assert vocab.decode([0, 1, 2]) == ""
  # Ids past the vocabulary (a model's padded vocab has 512 rows) are skipped too.
  assert vocab.decode(ids[:2] + [vocab.vocab_size, 300, 511] + ids[2:]) == text
  # Every byte value maps to its own id.
  assert [vocab.encode(chr(b))[0] for b in range(128)] == list(range(3, 131))


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


def test_stderr_lines_dropped_at_the_file_descriptor(capfd):
  """What anything writes to descriptor 2 inside (C++ included, here `os.write`) is filtered:
  the matching lines go, the others come out after, in order; outside, nothing is filtered."""
  from instruct_pt.data import tf_runtime  # pylint: disable=import-outside-toplevel
  noise = b"I0000 00:00:1796648586.528276   21298 cudart_stub.cc:31] Could not find cuda\n"
  with tf_runtime.stderr_lines_dropped(tf_runtime.NOISE):
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                b"written to STDERR\n" + noise + b"a real error\n")
    os.write(2, b"another line\n")
  os.write(2, noise)
  assert capfd.readouterr().err == "a real error\nanother line\n" + noise.decode()


def test_progress_is_lines_when_stderr_is_not_a_terminal(monkeypatch):
  """Into a file or pipe, each drawn frame is a line of its own (no carriage returns), the
  last one at close; the interval between lines is a setting (0 here, 30 s by default)."""
  from instruct_pt import progress  # pylint: disable=import-outside-toplevel
  captured = io.StringIO()
  monkeypatch.setattr(sys, "stderr", captured)
  bar = progress.bar(total=4, desc="work", unit="step", mininterval=0, miniters=1)
  for _ in range(4):
    bar.update(1)
  bar.close()
  lines = captured.getvalue().splitlines()
  assert "\r" not in captured.getvalue()
  assert lines[0].startswith("work:   0%|") and lines[-1].startswith("work: 100%|"), lines
  assert [line.split("|")[0] for line in lines[1:5]] == [
      "work:  25%", "work:  50%", "work:  75%", "work: 100%"]
  assert progress.LOG_INTERVAL_S == 30.0


def test_restarted_clock_leaves_the_first_step_out_of_rate_and_eta():
  """A first step of 100 s (compilation) then steps of 1 s: after `restart_clock` the bar's
  rate is 1 step/s and its ETA (total - n) s, not what the 100 s would make them."""
  from instruct_pt import progress  # pylint: disable=import-outside-toplevel
  now = [0.0]
  bar = progress.bar(total=50, file=io.StringIO(), mininterval=0, miniters=1)
  bar._time = lambda: now[0]  # pylint: disable=protected-access
  bar.start_t = bar.last_print_t = 0.0
  now[0] = 100.0
  bar.update(1)
  progress.restart_clock(bar)
  for _ in range(4):
    now[0] += 1.0
    bar.update(1)
  stats = bar.format_dict
  assert stats["n"] == 5 and stats["elapsed"] == 4.0
  assert abs(stats["rate"] - 1.0) < 1e-9
  assert (stats["total"] - stats["n"]) / stats["rate"] == 45.0
