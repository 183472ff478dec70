"""Corpora as SeqIO data sources whose tf.data iterators can be checkpointed.

`seqio_source(spec)` reads a `sources.SourceSpec` through `sources.RecordReader` (one reader,
one set of formats and error messages for synthesis and training alike). A Python generator
(`tf.data.Dataset.from_generator`) cannot be checkpointed, so the records enter tf.data
differently: a counter dataset of block numbers is mapped through `tf.numpy_function` to
`BlockReader.block(number)`, which returns block `number` of `BLOCK_RECORDS` records, and the
blocks are unbatched. Everything downstream (tokenizing, shuffling, mixing, packing) is plain
tf.data, so `tf.train.Checkpoint(iterator=...)` saves the whole pipeline; what it cannot see,
the reader's place in the files, is saved next to it by `reader_states`: the read positions of
the blocks the pipeline may ask for next. Restoring both (`restore_reader_states`)
resumes the stream exactly, at the cost of one seek per source, whatever the step.

Readers made while building a dataset are collected by `capture_readers`, so a feed can save
the readers of exactly the pipeline it iterates.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import dataclasses
import functools
import itertools
import threading
from typing import Any, Iterator, Mapping, Optional, Union

import numpy as np

from instruct_pt.data import sources

# Records per call from tf.data into Python.
BLOCK_RECORDS = 64
# The largest block number a source dataset counts to (it ends when the records end).
_NO_END = 2**62

_capture: contextvars.ContextVar[Optional[list]] = contextvars.ContextVar(
    "instruct_pt_seqio_readers", default=None)


class BlockReader:
  """Serves a corpus to tf.data in numbered blocks, and saves / restores where it stands.

  Every pass over the corpus (SeqIO repeats the dataset) reads the same records, so block
  `n` starts at the same read position in every pass: the reader remembers the positions of
  the last `history` blocks it read, plus that of the next one, and that is its state. Blocks
  are asked for in order, a few at a time from tf.data's threads; a block asked for ahead of
  its turn is read (and the ones before it kept) until taken; asking for an earlier block
  (block 0 of the next pass, or the first block after a restore) seeks to its position.

  Args:
    spec: the corpus.
    shard_index: this host's index.
    shard_count: number of hosts.
    file_seed: file order seed (None: sorted).
    history: block positions remembered (more than tf.data reads ahead of the consumer).

  Attributes:
    records_read: records read from the corpus files by this reader (not counting re-reads
      of a block asked for again).
  """

  def __init__(self, spec: sources.SourceSpec, shard_index: int, shard_count: int,
               file_seed: Optional[int], history: int = 4096):
    self._make = functools.partial(sources.RecordReader, spec, shard_index, shard_count,
                                   file_seed=file_seed)
    self._pattern = spec.pattern
    self._history = history
    self._lock = threading.Lock()
    self._known: collections.OrderedDict[int, sources.ReadPosition] = collections.OrderedDict()
    self.records_read = 0
    self._seek_to(0, sources.ReadPosition())

  def _seek_to(self, number: int, position: sources.ReadPosition) -> None:
    self._reader = self._make(start=position)
    self._records = iter(self._reader)
    self._next: Optional[int] = number
    self._ahead: dict[int, list[dict]] = {}
    self._failure: Optional[tuple[int, Exception]] = None

  def block(self, number: int) -> list[dict]:
    """Records of block `number` (fewer than BLOCK_RECORDS at the end, none past it).

    A read error fails that block and every later one: tf.data may ask for blocks in
    parallel, and a later block asked for first must not leave the failing one looking empty
    (the end of the data)."""
    with self._lock:
      if number in self._ahead:
        return self._ahead.pop(number)
      if self._failure is not None and number >= self._failure[0]:
        raise self._failure[1]
      if self._next is None or number < self._next:
        position = self._known.get(number, sources.ReadPosition() if number == 0 else None)
        if position is None:
          raise RuntimeError(f"{self._pattern}: block {number} is outside the saved read "
                             f"positions; the data state does not belong to this pipeline")
        self._seek_to(number, position)
      while self._next <= number:
        self._known[self._next] = self._reader.position
        self._known.move_to_end(self._next)
        while len(self._known) > self._history:
          self._known.popitem(last=False)
        try:
          self._ahead[self._next] = list(itertools.islice(self._records, BLOCK_RECORDS))
        except Exception as error:  # every later block fails the same way (see `block`)
          self._failure = (self._next, error)
          raise
        self.records_read += len(self._ahead[self._next])
        self._next += 1
      return self._ahead.pop(number)

  def state(self) -> dict[str, Any]:
    """The read positions `restore` needs (JSON-serialisable)."""
    with self._lock:
      known = dict(self._known)
      if self._next is not None:
        known[self._next] = self._reader.position
      return {"positions": {str(number): dataclasses.asdict(position)
                            for number, position in sorted(known.items())}}

  def restore(self, state: Mapping[str, Any]) -> None:
    """Continues from `state` (saved by a reader of the same corpus and host): the first block
    asked for seeks to its saved position."""
    positions = sorted((int(number), sources.ReadPosition(**position))
                       for number, position in state["positions"].items())
    with self._lock:
      self._known = collections.OrderedDict(positions)
      self._next, self._ahead = None, {}

  def numpy_block(self, number, keys: tuple[str, ...]):
    """`block(number)` for `tf.numpy_function`: one UTF-8 array per key, padded to
    BLOCK_RECORDS, then the record count."""
    records = self.block(int(number))
    padding = [b""] * (BLOCK_RECORDS - len(records))
    columns = [np.asarray([r[key].encode("utf-8") for r in records] + padding, object)
               for key in keys]
    return (*columns, np.int64(len(records)))


def seqio_source(specs: Union[sources.SourceSpec, Mapping[str, sources.SourceSpec]]):
  """A `seqio.DataSource` whose examples are `RecordReader`'s records as `tf.string` features.

  `get_dataset(split, shuffle, seed, shard_info)` reads this host's share (`shard_info`), with
  `shuffle` in a file order shuffled by `seed` (0 when None), so it is deterministic, and its
  iterators can be checkpointed (see the module docstring). `list_shards` returns the files;
  arbitrary sharding is supported.

  Args:
    specs: one spec (the "train" split), or a spec per split name.

  Raises:
    ValueError: no split is given.
  """
  specs = {"train": specs} if isinstance(specs, sources.SourceSpec) else dict(specs)
  if not specs:
    raise ValueError("seqio_source needs at least one split")
  return _corpus_data_source_class()(specs)


@contextlib.contextmanager
def capture_readers() -> Iterator[list[BlockReader]]:
  """Collects, in creation order, the `BlockReader`s of the datasets built inside the block."""
  readers: list[BlockReader] = []
  token = _capture.set(readers)
  try:
    yield readers
  finally:
    _capture.reset(token)


def reader_states(readers: list[BlockReader]) -> list[dict[str, Any]]:
  """The states of `readers` (save them with the tf.data iterator's checkpoint)."""
  return [reader.state() for reader in readers]


def restore_reader_states(readers: list[BlockReader], states: list[Mapping[str, Any]]) -> None:
  """Restores `readers` (of a pipeline built the same way) from `reader_states`.

  Raises:
    ValueError: the pipeline has another number of sources than the saved one.
  """
  if len(readers) != len(states):
    raise ValueError(f"the saved data state has {len(states)} sources, the pipeline "
                     f"{len(readers)}: it was saved for another mixture")
  for reader, state in zip(readers, states):
    reader.restore(state)


@functools.lru_cache(maxsize=None)
def _corpus_data_source_class():
  """Defines the SeqIO data source class (SeqIO and TensorFlow are imported only here)."""
  from instruct_pt.data.tf_runtime import tf  # pylint: disable=import-outside-toplevel
  import seqio  # pylint: disable=import-outside-toplevel

  class CorpusDataSource(seqio.DataSource):
    """A SeqIO data source reading one `SourceSpec` per split through `RecordReader`."""

    def __init__(self, specs: dict[str, sources.SourceSpec]):
      super().__init__(splits=specs)
      self._specs = specs

    def __repr__(self):
      return f"CorpusDataSource({self._specs!r})"

    @property
    def supports_arbitrary_sharding(self) -> bool:
      return True

    def list_shards(self, split: str) -> list[str]:
      return sources.list_files(self._spec(split))

    def get_dataset(self, split: str = "train", shuffle: bool = True, seed=None,
                    shard_info=None, *, sequence_length=None, use_cached=False, num_epochs=1):
      del sequence_length, use_cached, num_epochs  # unused, as in every seqio.DataSource
      spec = self._spec(split)
      index, count = (shard_info.index, shard_info.num_shards) if shard_info else (0, 1)
      file_seed = (0 if seed is None else int(seed)) if shuffle else None
      sources.list_files(spec)  # fails now, naming the pattern, when nothing matches
      reader = BlockReader(spec, index, count, file_seed)
      captured = _capture.get()
      if captured is not None:
        captured.append(reader)
      keys = ("text", "id", *spec.extra_fields)

      def read(number):
        *columns, size = tf.numpy_function(
            functools.partial(reader.numpy_block, keys=keys),
            [number], [tf.string] * len(keys) + [tf.int64], stateful=False)
        return {key: tf.ensure_shape(column, [BLOCK_RECORDS])[:size]
                for key, column in zip(keys, columns)}

      blocks = tf.data.Dataset.range(_NO_END).map(read)
      blocks = blocks.take_while(lambda block: tf.size(block["text"]) > 0)
      return blocks.unbatch()

    def _spec(self, split: str) -> sources.SourceSpec:
      if split not in self._specs:
        raise ValueError(f"Unknown split {split!r}; this source has {sorted(self._specs)}")
      return self._specs[split]

  return CorpusDataSource
