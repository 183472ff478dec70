"""SeqIO tasks and mixtures -> packed host batches for the training loop.

`PackedLMFeatureConverter` turns the tasks' `targets` / `loss_weights` (see
`instruct_pt.data.tasks`) into the five decoder features the trainer reads (those of
`instruct_pt.data.packing`), all int32 `[rows, seq_len]`:

  decoder_input_tokens   BOS + targets shifted right, inside each example
  decoder_target_tokens  targets
  decoder_loss_weights   the task's loss weights; 0 on padding
  decoder_segment_ids    1, 2, ... per example in the row; 0 = padding
  decoder_positions      index of the token inside its example

Unlike `packing.pack_documents` (which cuts documents at row boundaries), examples are never
split here: each packed segment is one whole example and starts with BOS. The tasks already
cut long documents into chunks of at most the sequence length.

`SeqIOFeed` serves one host's share of every step's global batch, forever, deterministically
from a seed. Its iterators save their state (`SeqIOBatches.save_state`: the tf.data iterator
checkpoint and the corpus readers' positions, `instruct_pt.data.seqio_source`), so a resumed
run continues with exactly the batches an uninterrupted one would see, at a cost that does
not grow with the step.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
from typing import Mapping, Optional

import jax
import numpy as np
# First: TensorFlow imported quietly, before SeqIO imports it.
from instruct_pt.data.tf_runtime import tf
import seqio  # pylint: disable=wrong-import-order
from etils import epath

from instruct_pt.data import seqio_source
from instruct_pt.data.packing import FEATURES, pack_rows
from instruct_pt.data.tasks import special_id

_TASK_FEATURES = ("targets", "loss_weights")


class PackedLMFeatureConverter(seqio.FeatureConverter):
  """Decoder-only LM features, with per-token loss weights and optional packing.

  Inputs are shifted before packing, so every packed segment starts with BOS and its
  positions restart at 0. Packing is best fit over windows of `pack_window` examples: each
  example goes to the open row with the least free space that still holds it, else to a new
  row; the window's rows are emitted when the window is done. SeqIO's `trim_and_pack_dataset`
  is not used: it fills each row in arrival order only (on the demo corpus at length 512,
  76% full with the byte vocabulary and 89% with SmolLM2's, against 97% and 99% here), and it
  finds each example's length by counting its non-zero entries, so it drops loss weights of 0
  (and tokens with id 0) from the packed rows.

  Args:
    pack: pack several examples per row; False pads each example to its own row.
    bos_id: the first decoder input of each example.
    pack_window: examples considered together when packing.
  """

  TASK_FEATURES = {name: seqio.FeatureConverter.FeatureSpec(dtype=tf.int32)
                   for name in _TASK_FEATURES}
  MODEL_FEATURES = {name: seqio.FeatureConverter.FeatureSpec(dtype=tf.int32)
                    for name in FEATURES}
  PACKING_FEATURE_DTYPES = {}  # segment ids and positions are model features in both modes

  def __init__(self, pack: bool = True, bos_id: int = 0, pack_window: int = 512):
    super().__init__(pack=pack, bos_id=bos_id)
    self._pack_window = pack_window

  def _convert_features(self, ds: tf.data.Dataset,
                        task_feature_lengths: Mapping[str, int]) -> tf.data.Dataset:
    length = _sequence_length(task_feature_lengths)
    ds = ds.filter(lambda example: tf.size(example["targets"]) > 0)
    ds = ds.map(functools.partial(_shift, bos_id=self.bos_id, length=length),
                num_parallel_calls=tf.data.AUTOTUNE)
    if self.pack:
      return _best_fit_pack(ds, length, self._pack_window)
    return ds.map(functools.partial(_pad, length=length), num_parallel_calls=tf.data.AUTOTUNE)

  def get_model_feature_lengths(self, task_feature_lengths: Mapping[str, int]
                                ) -> Mapping[str, int]:
    """Every model feature has the task's sequence length."""
    return {name: _sequence_length(task_feature_lengths) for name in FEATURES}


def _sequence_length(task_feature_lengths: Mapping[str, int]) -> int:
  lengths = {task_feature_lengths[name] for name in _TASK_FEATURES}
  if len(lengths) != 1:
    raise ValueError(f"targets and loss_weights need one length, got {task_feature_lengths}")
  return lengths.pop()


def _shift(example, bos_id: int, length: int):
  """Trimmed targets, weights, and inputs = BOS + targets[:-1]."""
  targets = example["targets"][:length]
  inputs = tf.concat([tf.constant([bos_id], tf.int32), targets[:-1]], 0)
  return {"inputs": inputs, "targets": targets, "weights": example["loss_weights"][:length]}


def _pad(example, length: int):
  """One example in its own row of `length` (segment 1, positions 0..n-1, then padding)."""
  size = tf.size(example["targets"])
  real = tf.ones([size], tf.int32)
  features = {"decoder_input_tokens": example["inputs"],
              "decoder_target_tokens": example["targets"],
              "decoder_loss_weights": example["weights"], "decoder_segment_ids": real,
              "decoder_positions": tf.range(size, dtype=tf.int32)}
  return {name: tf.ensure_shape(tf.pad(value, [[0, length - size]]), [length])
          for name, value in features.items()}


def _best_fit_pack(ds: tf.data.Dataset, length: int, window: int) -> tf.data.Dataset:
  """Rows of best-fit packed examples (see PackedLMFeatureConverter)."""
  def pack(batch):
    arrays = [batch[name].flat_values for name in ("inputs", "targets", "weights")]
    rows = tf.numpy_function(functools.partial(pack_rows, length=length),
                             arrays + [batch["targets"].row_lengths()],
                             [tf.int32] * len(FEATURES), stateful=False)
    return {name: tf.ensure_shape(row, [None, length]) for name, row in zip(FEATURES, rows)}

  return ds.ragged_batch(window).map(pack, num_parallel_calls=tf.data.AUTOTUNE).unbatch()


def decoder_bos_id(vocabulary: seqio.Vocabulary) -> int:
  """The vocabulary's BOS id, else 0 (SeqIO's convention).

  Args:
    vocabulary: a SeqIO vocabulary.
  """
  bos = special_id(vocabulary, "bos_id")
  return 0 if bos is None else bos


class SeqIOFeed:
  """This host's rows of each step's global batch, from a SeqIO task or mixture.

  The data are repeated forever (SeqIO repeats each task), shuffled (SeqIO's per-task shuffle
  buffer) and mixed deterministically from `seed`, then packed and batched. Host `i` of `P`
  reads shard `i` of every task (SeqIO shards the examples, or the files of a sharded source)
  and packs its own rows, so hosts never share an example.

  Resume: `iterate(k, state)` restores an iterator saved at step k (`SeqIOBatches.save_state`)
  in constant time; without a saved state, `iterate(k)` skips k batches inside tf.data (exact
  too, at a cost that grows with k: the skipped batches are read, tokenized and packed).

  Args:
    name: a registered SeqIO task or mixture (e.g. of `tasks.register_demo_tasks`).
    vocabulary: its tokenizer (gives the decoder's BOS input).
    seq_len: tokens per row.
    global_batch_size: rows per step over all hosts.
    seed: shuffling and mixing seed.
    shard_info: this host's shard; defaults to `ShardInfo(process_index, process_count)`.
    split: dataset split.
    pack: pack several examples per row.

  Attributes:
    num_rows: rows of each batch this host yields (`global_batch_size / num_shards`).
  """

  def __init__(self, name: str, vocabulary: seqio.Vocabulary, seq_len: int,
               global_batch_size: int, seed: int = 0,
               shard_info: seqio.ShardInfo | None = None, split: str = "train",
               pack: bool = True):
    self.name = name
    self.seq_len = seq_len
    self.seed = seed
    self.split = split
    self.shard_info = shard_info or seqio.ShardInfo(jax.process_index(), jax.process_count())
    if global_batch_size % self.shard_info.num_shards:
      raise ValueError(f"global batch size {global_batch_size} is not divisible by "
                       f"{self.shard_info.num_shards} hosts")
    self.num_rows = global_batch_size // self.shard_info.num_shards
    self._converter = PackedLMFeatureConverter(pack=pack, bos_id=decoder_bos_id(vocabulary))
    self._efficiency: dict[int, float] = {}
    provider = seqio.get_mixture_or_task(name)  # fails now, naming it, when not registered
    for task in seqio.get_subtasks(provider):
      if split not in task.splits:
        raise ValueError(f"task {task.name} (of {name}) has no split {split!r}; it has "
                         f"{list(task.splits)}")

  def dataset(self) -> tf.data.Dataset:
    """A fresh tf.data pipeline of this host's batches, from step 0."""
    return seqio.get_dataset(
        self.name, {name: self.seq_len for name in _TASK_FEATURES}, self._converter,
        dataset_split=self.split, shuffle=True, num_epochs=None, shard_info=self.shard_info,
        verbose=False, seed=self.seed, batch_size=self.num_rows)

  def iterate(self, start_step: int = 0,
              state: Optional[epath.PathLike] = None) -> "SeqIOBatches":
    """This host's batches from step `start_step` on, forever.

    Args:
      start_step: the first step to yield.
      state: a directory `SeqIOBatches.save_state` wrote at `start_step` (by this host of the
        same number of hosts); None replays the first `start_step` batches instead.

    Raises:
      ValueError: `state` does not belong to this feed's pipeline.
    """
    with seqio_source.capture_readers() as readers:
      dataset = self.dataset()
    if state is None:
      if start_step:
        logging.warning("no saved data state: replaying %d batches of %s to resume (the cost "
                        "grows with the step)", start_step, self.name)
      return SeqIOBatches(iter(dataset.skip(start_step)), readers)
    batches = SeqIOBatches(iter(dataset), readers)
    batches.restore_state(epath.Path(state))
    return batches

  def packing_efficiency(self, num_batches: int = 4) -> float:
    """Fraction of slots holding real tokens over the first `num_batches` batches (cached).

    Args:
      num_batches: batches to measure.
    """
    if num_batches not in self._efficiency:
      real = slots = 0
      for batch in itertools.islice(self.iterate(), num_batches):
        segments = batch["decoder_segment_ids"]
        real, slots = real + int((segments > 0).sum()), slots + segments.size
      self._efficiency[num_batches] = real / slots
    return self._efficiency[num_batches]


class SeqIOBatches:
  """An iterator of numpy batches over a SeqIO pipeline, whose state can be saved.

  Args:
    iterator: the tf.data iterator (`iter(dataset)`).
    readers: the corpus readers feeding it (`seqio_source.capture_readers`).

  Attributes:
    readers: those readers, in the order the pipeline built them.
  """

  _ITERATOR = "iterator"
  _READERS = "readers.json"

  def __init__(self, iterator, readers: list[seqio_source.BlockReader]):
    self._iterator = iterator
    self.readers = readers

  def __iter__(self) -> "SeqIOBatches":
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    return {name: value.numpy() for name, value in next(self._iterator).items()}

  def save_state(self, directory: epath.PathLike) -> None:
    """Writes the state after the last batch taken into `directory` (created if needed).

    The readers' positions are taken after the tf.data checkpoint, so they cover every block
    the pipeline's read-ahead asked for while it was written.
    """
    directory = epath.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tf.train.Checkpoint(iterator=self._iterator).write(str(directory / self._ITERATOR))
    (directory / self._READERS).write_text(json.dumps(seqio_source.reader_states(self.readers)))

  def restore_state(self, directory: epath.Path) -> None:
    """Continues from the state `save_state` wrote into `directory`.

    Raises:
      ValueError: the directory holds no state, or one of another pipeline.
    """
    readers = directory / self._READERS
    if not readers.exists():
      raise ValueError(f"{directory}: no saved data state ({self._READERS} is missing)")
    seqio_source.restore_reader_states(self.readers, json.loads(readers.read_text()))
    try:
      tf.train.Checkpoint(iterator=self._iterator).read(
          str(directory / self._ITERATOR)).assert_consumed()
    except (tf.errors.OpError, AssertionError, ValueError) as e:
      raise ValueError(f"{directory}: the data state does not match this pipeline "
                       f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
