"""Tests of the data pipeline: the text feed, demo corpus, byte vocabulary, stderr filtering
and progress bars (packing and step-indexed batches are in test_packing.py).

Expectations are derived independently: the feed is compared with packing's own rows, corpus
splits and byte ids are checked against their documented properties.
"""

import io
import os
import sys

import numpy as np
import pytest

from instruct_pt.data.feed import text_feed
from instruct_pt.data.packing import FEATURES, StepIndexedBatches, pack_documents
from instruct_pt.data.sources import demo_corpus
from instruct_pt.data.tokenizer import ByteTokenizer


# text_feed ---------------------------------------------------------------------------------------

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


# Stderr filtering and progress bars --------------------------------------------------------------

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
