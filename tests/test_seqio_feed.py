"""The SeqIO feed: packed decoder features, packing efficiency, resume, hosts, training.

Expectations are derived independently: a packing worked out by hand, invariants checked
segment by segment against the examples that went in, batches compared across fresh
pipelines, and documents recovered from the packed rows.
"""

import math
import os

import numpy as np
import pytest

seqio = pytest.importorskip("seqio")
tf = pytest.importorskip("tensorflow")

# pylint: disable=wrong-import-position
from instruct_pt import parallel
from instruct_pt.data import tasks, tokenizer as tokenizer_lib
from instruct_pt.data.packing import FEATURES
from instruct_pt.data.seqio_feed import PackedLMFeatureConverter, SeqIOFeed
from instruct_pt.data.seqio_vocab import SeqIOVocabulary
from instruct_pt.model.config import get_preset
from instruct_pt.train import loop, optim

BYTES = SeqIOVocabulary(tokenizer_lib.ByteTokenizer())
BOS, EOS = 1, 2
ONE_HOST = seqio.ShardInfo(0, 1)


@pytest.fixture(scope="module", autouse=True)
def demo_tasks():
  """The demo tasks, registered once for the module."""
  tasks.register_demo_tasks(BYTES)


def _convert(examples, length, pack=True, pack_window=512):
  """Converted rows of hand-made (targets, loss_weights) examples."""
  ds = tf.data.Dataset.from_tensor_slices({
      "targets": tf.ragged.constant([t for t, _ in examples], tf.int32),
      "loss_weights": tf.ragged.constant([w for _, w in examples], tf.int32)})
  converter = PackedLMFeatureConverter(pack=pack, bos_id=BOS, pack_window=pack_window)
  rows = list(converter(ds, {"targets": length, "loss_weights": length}).as_numpy_iterator())
  return {name: np.stack([row[name] for row in rows]) for name in FEATURES}


EXAMPLES = [([5, 6, 7], [0, 1, 1]), ([8, 9], [1, 1]), ([10], [1]),
            ([11, 12, 13, 14], [0, 0, 1, 1])]


def test_converter_worked_example():
  """Best fit at length 4, worked out by hand: [5 6 7] opens row 0, [8 9] does not fit there
  and opens row 1, [10] goes to the fuller row 0, [11 12 13 14] fills row 2."""
  rows = _convert(EXAMPLES, 4)
  np.testing.assert_array_equal(rows["decoder_target_tokens"],
                                [[5, 6, 7, 10], [8, 9, 0, 0], [11, 12, 13, 14]])
  np.testing.assert_array_equal(rows["decoder_input_tokens"],
                                [[BOS, 5, 6, BOS], [BOS, 8, 0, 0], [BOS, 11, 12, 13]])
  np.testing.assert_array_equal(rows["decoder_loss_weights"],
                                [[0, 1, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1]])
  np.testing.assert_array_equal(rows["decoder_segment_ids"],
                                [[1, 1, 1, 2], [1, 1, 0, 0], [1, 1, 1, 1]])
  np.testing.assert_array_equal(rows["decoder_positions"],
                                [[0, 1, 2, 0], [0, 1, 0, 0], [0, 1, 2, 3]])
  for name in FEATURES:
    assert rows[name].dtype == np.int32, name
  # Windows of 2 examples are packed separately: [10] cannot join [5 6 7].
  assert _convert(EXAMPLES, 4, pack_window=2)["decoder_target_tokens"].shape == (4, 4)


def _segments(rows):
  """(inputs, targets, weights, positions) of every packed segment."""
  for r in range(len(rows["decoder_segment_ids"])):
    seg = rows["decoder_segment_ids"][r]
    for s in range(1, seg.max() + 1):
      idx = np.flatnonzero(seg == s)
      assert np.all(np.diff(idx) == 1), "segment is not contiguous"
      yield tuple(rows[name][r, idx].tolist() for name in (
          "decoder_input_tokens", "decoder_target_tokens", "decoder_loss_weights",
          "decoder_positions"))


@pytest.mark.parametrize("pack", [True, False])
def test_converter_features_are_consistent(pack):
  """Random examples (token id 0 and zero weights included, which a packer counting non-zero
  entries would mangle): every segment is one whole example, its inputs are BOS + its
  targets shifted, its weights are the example's, its positions count from 0; padding has
  segment 0 and weight 0; every example appears exactly once."""
  rng = np.random.default_rng(0)
  examples = []
  for _ in range(60):
    size = int(rng.integers(1, 17))
    examples.append((rng.integers(0, 50, size).tolist(), rng.integers(0, 2, size).tolist()))
  rows = _convert(examples, 16, pack=pack)
  seen = []
  for inputs, targets, weights, positions in _segments(rows):
    assert inputs == [BOS] + targets[:-1]
    assert positions == list(range(len(targets)))
    seen.append((targets, weights))
  assert sorted(seen) == sorted(examples)
  padding = rows["decoder_segment_ids"] == 0
  assert np.all(rows["decoder_loss_weights"][padding] == 0)
  assert np.all(rows["decoder_positions"][padding] == 0)
  if pack:
    assert 1 - padding.mean() > 0.9, padding.mean()
  else:
    assert len(padding) == len(examples)  # one example per row


def test_packing_efficiency_on_demo_corpus():
  """The demo corpus packed at length 512 with the byte vocabulary fills >= 90% of the slots
  (measured on 20 batches of 8 rows)."""
  feed = SeqIOFeed("demo_raw", BYTES, 512, 8, shard_info=ONE_HOST)
  efficiency = feed.packing_efficiency(20)
  assert efficiency >= 0.90, f"packing efficiency {efficiency:.4f} < 0.90"
  assert feed.packing_efficiency(20) == efficiency  # cached
  assert feed.num_rows == 8


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def test_resume_by_step_is_exact_and_deterministic():
  """iterate(5) yields exactly iterate(0)'s batches 5, 6, 7; a second feed with the same seed
  gives the same batches; another seed gives others."""
  feed = SeqIOFeed("demo_instruct_pt", BYTES, 128, 4, seed=1, shard_info=ONE_HOST)
  full = _take(feed.iterate(), 8)
  resumed = _take(feed.iterate(5), 3)
  for step, batch in enumerate(resumed, 5):
    assert set(batch) == set(FEATURES)
    for name in FEATURES:
      np.testing.assert_array_equal(batch[name], full[step][name], err_msg=f"{step} {name}")
  again = next(SeqIOFeed("demo_instruct_pt", BYTES, 128, 4, seed=1,
                         shard_info=ONE_HOST).iterate())
  np.testing.assert_array_equal(again["decoder_target_tokens"], full[0]["decoder_target_tokens"])
  other = next(SeqIOFeed("demo_instruct_pt", BYTES, 128, 4, seed=2,
                         shard_info=ONE_HOST).iterate())
  assert not np.array_equal(other["decoder_target_tokens"], full[0]["decoder_target_tokens"])


def test_saved_state_resumes_exactly_without_replaying(tmp_path):
  """The state saved after batch k restores an iterator yielding exactly the batches an
  uninterrupted one yields from k on, through a mixture whose small tasks wrap around many
  times (their files are re-read in passes while tf.data reads ahead); saving again after a
  restore works; restoring re-reads nothing that came before."""
  feed = SeqIOFeed("demo_instruct_pt", BYTES, 128, 4, seed=1, shard_info=ONE_HOST)
  batches = feed.iterate()
  _take(batches, 40)
  batches.save_state(tmp_path / "at40")
  expected = _take(batches, 12)
  batches.save_state(tmp_path / "at52")
  expected_later = _take(batches, 3)

  restored = feed.iterate(40, state=tmp_path / "at40")
  _assert_batches_equal(_take(restored, 12), expected)
  # Restoring did not re-read what came before: the large corpus's reader (demo_raw) read
  # fewer records for these 12 batches than the uninterrupted one had for its 52.
  read = [reader.records_read for reader in restored.readers]
  before = [reader.records_read for reader in batches.readers]
  large = before.index(max(before))
  assert read[large] < before[large] / 2, (read, before)
  restored.save_state(tmp_path / "again52")
  _assert_batches_equal(_take(restored, 3), expected_later)
  _assert_batches_equal(_take(feed.iterate(52, state=tmp_path / "again52"), 3), expected_later)

  with pytest.raises(ValueError, match="no saved data state"):
    feed.iterate(40, state=tmp_path / "nowhere")


def _assert_batches_equal(got, expected):
  assert len(got) == len(expected)
  for step, (a, b) in enumerate(zip(got, expected)):
    for name in FEATURES:
      np.testing.assert_array_equal(a[name], b[name], err_msg=f"batch {step} {name}")


def _documents_in(batch):
  """Document numbers of the segments of a batch of the numbered-documents task."""
  numbers = []
  for _, targets, _, _ in _segments(batch):
    assert targets[-1] == EOS
    numbers.append(int(BYTES.tokenizer.decode(targets[:-1])[3:6]))
  return numbers


def test_two_hosts_read_disjoint_shards():
  """Hosts 0 and 1 of 2 each get half the global batch; over 20 steps they see disjoint sets
  of documents whose union is the whole corpus."""
  texts = [f"doc{i:03d} " + "x" * (i % 9) for i in range(40)]

  def dataset_fn(split, shuffle_files, seed=None):
    del split, shuffle_files, seed
    return tf.data.Dataset.from_tensor_slices({"text": texts})

  source = seqio.FunctionDataSource(dataset_fn, splits=["train"])
  tasks.register_task("test_numbered_docs", "raw_lm", source, BYTES)
  try:
    seen = []
    for host in range(2):
      feed = SeqIOFeed("test_numbered_docs", BYTES, 64, 4, shard_info=seqio.ShardInfo(host, 2))
      assert feed.num_rows == 2
      batches = _take(feed.iterate(), 20)
      assert batches[0]["decoder_target_tokens"].shape == (2, 64)
      seen.append({n for batch in batches for n in _documents_in(batch)})
  finally:
    seqio.TaskRegistry.remove("test_numbered_docs")
  assert seen[0] and seen[1]
  assert not seen[0] & seen[1]
  assert seen[0] | seen[1] == set(range(40))


def test_feed_errors():
  """An unregistered name and a batch that does not divide over the hosts raise ValueError
  naming them."""
  with pytest.raises(ValueError, match="no_such_mixture"):
    SeqIOFeed("no_such_mixture", BYTES, 64, 4)
  with pytest.raises(ValueError, match="5"):
    SeqIOFeed("demo_raw", BYTES, 64, 5, shard_info=seqio.ShardInfo(0, 2))


def test_train_tiny_on_the_demo_mixture_and_resume_from_the_data_state(tmp_path, caplog):
  """6 steps of the tiny model on demo_instruct_pt through the SeqIO feed: finite losses. A
  run killed after its step-3 checkpoint resumes from the data state saved with it (nothing
  replayed) and ends with the uninterrupted run's losses."""
  feed = SeqIOFeed("demo_instruct_pt", BYTES, 128, 8)
  config = loop.TrainConfig(num_steps=6, batch_size=8, seq_len=128, log_every=3,
                            checkpoint_every=3)
  optimizer = optim.OptimizerConfig(learning_rate=3e-3, warmup_steps=2)
  mesh = parallel.create_mesh((1, -1, 1))

  def train(run, batches):
    return loop.train(get_preset("tiny"), optimizer, config, mesh, parallel.LOGICAL_AXIS_RULES,
                      str(run), train_batches=batches, show_progress=False)

  reference = train(tmp_path / "reference", feed.iterate)
  assert sorted(reference.losses) == list(range(1, 7))
  assert all(math.isfinite(loss) for loss in reference.losses.values()), reference.losses

  class Killed(Exception):
    pass

  class DiesAtStep4:
    """The feed's batches, failing when step 4 asks for its batch (state saving kept)."""

    def __init__(self, start_step, state=None):
      self.batches, self.step = feed.iterate(start_step, state), start_step

    def __iter__(self):
      return self

    def __next__(self):
      self.step += 1
      if self.step == 4:
        raise Killed()
      return next(self.batches)

    def save_state(self, directory):
      self.batches.save_state(directory)

  with pytest.raises(Killed):
    train(tmp_path / "run", DiesAtStep4)
  assert os.path.isdir(tmp_path / "run" / "checkpoints" / "3" / "data" / "process_0_of_1")
  with caplog.at_level("WARNING"):
    resumed = train(tmp_path / "run", feed.iterate)
  assert "replaying" not in caplog.text
  assert sorted(resumed.losses) == [4, 5, 6]
  np.testing.assert_allclose([resumed.losses[s] for s in (4, 5, 6)],
                             [reference.losses[s] for s in (4, 5, 6)], rtol=1e-6)
