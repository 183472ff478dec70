"""Raw corpus readers.

* `demo_corpus`: the embedded demo corpus, the paragraphs of CPython's own documentation
  (`pydoc_data.topics`) in one shipped snapshot (`instruct_pt.data.demo_corpus`), so the demo
  and the tests need no download and read the same text on every Python.
* `SourceSpec` says where a corpus is and how to read it; `iter_records` streams its documents
  as `{"text", "id", **extra_fields}` dicts, sharded over hosts, with bad input raised as one
  clear error naming the file and line (or row), or skipped and counted in a `SourceStats`.
* `seqio_source` wraps the same reading as a SeqIO data source; `read_documents` yields just the
  texts. `CORPUS_LAYOUTS` / `layout_spec` name the layouts of the corpora the paper uses.

Formats ("auto" picks by file name: `.jsonl`, `.parquet`, `*.tfrecord*`, anything else text):

* text: UTF-8, documents separated by blank lines; the id's number is the document's first line.
* jsonl: one JSON object per line; the id's number is the line (from 1).
* parquet: one document per row, read a batch of rows at a time (pyarrow); ids count rows from 0.
* tfrecord: `tf.train.Example` records; ids count records from 0.
* tfds: `pattern` is a prepared TFDS dataset (`name` or `name:version`) in `tfds_data_dir`;
  nothing is downloaded. Ids are `name/split:row`.

`pattern` "demo" / "demo_held_out" reads the demo corpus's train / held-out split. Paths with a
scheme (`gs://...`) are globbed and opened with `tf.io.gfile`; local paths use plain Python, so
text, JSONL and Parquet files need no TensorFlow. Compressed files (`.gz`, `.zst`) are not
decompressed: unpack them first.

Corpus layouts (`CORPUS_LAYOUTS`), with where their field names come from (HF is
https://huggingface.co/datasets/):

* `refinedweb`: rows of `content` (the text), `url`, `timestamp`, `dump`, `segment`,
  `image_urls`, stored as Parquet; the preset carries `url`. Source: the `dataset_info.features`
  of the card, HF tiiuae/falcon-refinedweb/blob/main/README.md
* `pubmed_abstracts`: The Pile's JSONL rows, `{"text": ..., "meta": {"pile_set_name": "PubMed
  Abstracts"}}` (the Pile ships `.jsonl.zst`: decompress first). Source: the features of a Pile
  subset, HF timaeus/pile-pubmed_central/blob/main/README.md
* `financial_news`: UNVERIFIED. The finance corpus of AdaptLLM / Instruction Pre-Training
  (financial news collected with the FinGPT code) was never released ("no finance data to avoid
  ethical issues", https://github.com/microsoft/LMOps/blob/main/instruction_pretrain/README.md),
  and I found no schema for it; the preset assumes a `text` field.
* `instruction_augmented`: the released instruction-augmented corpora. Shards are
  `part-N/shard/NNNNN.txt` (general) or `.jsonl` (medicine), listed by `json/{train,valid}.json`
  manifests of `{"source", "source_lang", "weight"}`: the manifest format of Microsoft's LM data
  loader, which reads each shard line as JSON and takes its `text`. So the preset is JSONL
  whatever the suffix, with `text`. UNVERIFIED: the field name is inferred from that loader, not
  read from a shard. Sources: the file trees and manifests of
  HF instruction-pretrain/general-instruction-augmented-corpora (tree at d1aa0b4,
  json/valid.json at 3dae1b2) and HF instruction-pretrain/medicine-instruction-augmented-corpora
  (commit 6530eb0).
* `synthesizer_collection`: the synthesizer's fine-tuning collection, `<dataset>/shard/*.jsonl`
  per config (the card's `configs`, HF instruction-pretrain/ft-instruction-synthesizer-collection
  README.md at 934d651). Rows hold the raw text in `context` and its tasks in `QA_list` (also
  `QA_type`, `rc_name`); the preset reads `context` and carries `QA_list` (as a JSON string when
  it is not a string). UNVERIFIED on the card: the names come from third-party loading scripts
  and match the official code's entries `{"context": ..., "QA_list": [{"Q": ..., "A": ...}]}`
  (https://github.com/microsoft/LMOps/blob/main/instruction_pretrain/utils/read_compre.py).
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import io
import json
import logging
import os
import random
from typing import Any, Iterator, Mapping, Optional, Union

from instruct_pt.data import demo_corpus as demo_corpus_snapshot

# Parquet rows converted to Python at a time.
_PARQUET_BATCH_ROWS = 1024

# `SourceSpec.pattern` values that read the demo corpus, and the split each reads.
DEMO_PATTERNS = {"demo": "train", "demo_held_out": "held_out"}
FORMATS = ("auto", "text", "jsonl", "parquet", "tfrecord", "tfds")
ON_ERROR = ("raise", "skip")
# Keys every record has; extra fields may not reuse them.
_RECORD_KEYS = ("text", "id")
# `SourceSpec.text_field` value meaning "the whole record, as JSON".
WHOLE_RECORD = "*"

CORPUS_LAYOUTS: dict[str, dict[str, Any]] = {
    "refinedweb": {"text_field": "content", "extra_fields": ("url",)},
    "pubmed_abstracts": {"text_field": "text"},
    "financial_news": {"text_field": "text"},
    "instruction_augmented": {"format": "jsonl", "text_field": "text"},
    "synthesizer_collection": {"format": "jsonl", "text_field": "context",
                               "extra_fields": ("QA_list",)},
}


def demo_corpus(split: str = "train") -> list[str]:
  """Paragraphs of one split of the demo corpus, the shipped snapshot of CPython's
  documentation topics (`instruct_pt.data.demo_corpus`): the same text on every Python.

  Args:
    split: "train" (about 95%) or "held_out" (about 5%).

  Raises:
    ValueError: for an unknown split.
  """
  return [paragraph for _, paragraph in demo_topics(split)]


def demo_topics(split: str = "train") -> list[tuple[str, str]]:
  """`(topic, paragraph)` of `demo_corpus(split)`, in the same order: the pydoc topic (e.g.
  "assert", "typesmapping") each paragraph comes from, a known source label.

  Args:
    split: "train" or "held_out".

  Raises:
    ValueError: for an unknown split.
  """
  return demo_corpus_snapshot.topics(split)


@dataclasses.dataclass(frozen=True)
class SourceSpec:
  """Where a raw corpus is and how to read it.

  Attributes:
    pattern: a glob or file, local or remote (`gs://...`); "demo" / "demo_held_out" for the demo
      corpus; the TFDS name (`name` or `name:version`) when `format` is "tfds".
    format: "auto" (by file name), "text", "jsonl", "parquet", "tfrecord" or "tfds".
    text_field: the field, column or feature holding the text (unused by "text" files), or
      `WHOLE_RECORD` ("*"): the text is then the whole record as a JSON object, for
      structured data such as synthesizer fine-tuning or instruction records.
    extra_fields: fields carried into each record as strings (values that are not strings are
      written as JSON).
    on_error: "raise" stops at the first bad input; "skip" skips it and counts it.
    max_chars: a longer document is bad input; None for no limit.
    tfds_split: the TFDS split to read, e.g. "train" or "train[:10%]".
    tfds_data_dir: where TFDS datasets are prepared; None for TFDS's default.
  """

  pattern: str
  format: str = "auto"
  text_field: str = "text"
  extra_fields: tuple[str, ...] = ()
  on_error: str = "raise"
  max_chars: Optional[int] = None
  tfds_split: str = "train"
  tfds_data_dir: Optional[str] = None

  def __post_init__(self):
    object.__setattr__(self, "extra_fields", tuple(self.extra_fields))
    if not self.pattern:
      raise ValueError("SourceSpec.pattern is empty")
    if self.format not in FORMATS:
      raise ValueError(f"SourceSpec.format {self.format!r} is not one of {FORMATS}")
    if self.on_error not in ON_ERROR:
      raise ValueError(f"SourceSpec.on_error {self.on_error!r} is not one of {ON_ERROR}")
    if self.max_chars is not None and self.max_chars < 1:
      raise ValueError(f"SourceSpec.max_chars must be positive or None, not {self.max_chars}")
    clashes = [name for name in self.extra_fields if name in _RECORD_KEYS]
    if clashes:
      raise ValueError(f"SourceSpec.extra_fields may not contain {clashes[0]!r}: every record "
                       f"already has {_RECORD_KEYS}")


@dataclasses.dataclass
class SourceStats:
  """Counters of one reading of a corpus, filled in by `iter_records`.

  Attributes:
    documents: documents yielded.
    files: files opened (a TFDS dataset or the demo corpus counts as one).
    skipped: bad inputs skipped, by reason (e.g. "not_json", "too_long", "empty_file").
  """

  documents: int = 0
  files: int = 0
  skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)

  def report(self) -> str:
    """One line: documents, files and skips by reason."""
    line = f"{self.documents} documents from {self.files} files"
    if not self.skipped:
      return line + ", nothing skipped"
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.skipped.items()))
    return line + f", skipped {sum(self.skipped.values())} ({reasons})"


@dataclasses.dataclass(frozen=True)
class _Problem:
  """Bad input found by a reader: `reason` is the stats key, `message` names file and line."""

  reason: str
  message: str


def layout_spec(name: str, pattern: str, **overrides) -> SourceSpec:
  """A `SourceSpec` for `pattern` with the field defaults of a named corpus layout.

  Args:
    name: a key of `CORPUS_LAYOUTS`.
    pattern: the corpus files (see `SourceSpec.pattern`).
    **overrides: `SourceSpec` fields that replace the layout's.

  Raises:
    ValueError: an unknown layout, or an invalid field value.
    TypeError: an override that is not a `SourceSpec` field.
  """
  if name not in CORPUS_LAYOUTS:
    raise ValueError(f"Unknown corpus layout {name!r}; choose one of {sorted(CORPUS_LAYOUTS)}")
  return SourceSpec(pattern=pattern, **{**CORPUS_LAYOUTS[name], **overrides})


def list_files(spec: SourceSpec) -> list[str]:
  """The files `spec` reads, sorted; the TFDS name or demo pattern itself for those sources.

  Args:
    spec: the source.

  Raises:
    FileNotFoundError: no file matches `spec.pattern`.
    IsADirectoryError: `spec.pattern` is a directory (a glob of its files is expected).
  """
  if spec.pattern in DEMO_PATTERNS or spec.format == "tfds":
    return [spec.pattern]
  if not _is_remote(spec.pattern) and os.path.isdir(spec.pattern):
    raise IsADirectoryError(f"{spec.pattern} is a directory; give a file or a glob of files, "
                            f"e.g. {os.path.join(spec.pattern, '*.jsonl')}")
  if _is_remote(spec.pattern):
    from instruct_pt.data.tf_runtime import tf  # pylint: disable=import-outside-toplevel
    paths = tf.io.gfile.glob(spec.pattern)
  else:
    paths = [p for p in glob.glob(spec.pattern, recursive=True) if os.path.isfile(p)]
  if not paths:
    raise FileNotFoundError(f"no file matches {spec.pattern!r}")
  return sorted(paths)


@dataclasses.dataclass(frozen=True)
class ReadPosition:
  """Where one host's reading of a corpus stands (JSON-serialisable with `dataclasses.asdict`).

  Attributes:
    file: index of the current file in this host's file order.
    offset: where the next item of that file starts: a byte offset (text, JSONL) or a record
      or row number (Parquet, TFRecord, TFDS, the demo corpus); `FILE_DONE` once it is read.
    line: the line number at `offset` (text, JSONL), for ids.
    item: items (documents and bad inputs) of the whole ordered stream passed so far (the
      count behind per-item host sharding).
  """

  file: int = 0
  offset: int = 0
  line: int = 1
  item: int = 0


FILE_DONE = -1


class RecordReader:
  """Streams the documents of a corpus as `{"text", "id", **extra_fields}` dicts, from any
  `ReadPosition`, and knows the position of the next one.

  Host `shard_index` of `shard_count` takes files shard_index, shard_index + shard_count, ...
  when there are at least `shard_count` files, and otherwise every `shard_count`-th item of the
  whole ordered stream (bad inputs included, so each is raised or counted by one host only).
  The order is deterministic: sorted files, or shuffled by `file_seed`. Starting at a saved
  `position` costs one seek (Parquet: one row group read; TFRecord and TFDS: skipping records
  inside TensorFlow), not a re-read of what came before.

  Args:
    spec: the source.
    shard_index: this host's index.
    shard_count: number of hosts.
    stats: counters to update (documents, files, skips by reason); None for none.
    file_seed: when set, shuffle the file order with this seed (the same on every host).
    start: where to start (the `position` an earlier reader had).

  Raises:
    FileNotFoundError: no file matches `spec.pattern`.
    ValueError: bad shard arguments or start position; while iterating (with
      `on_error="raise"`) bad input: a line that is not UTF-8 or not a JSON object, a missing
      or non-string field, a missing column or feature, a document over `max_chars`, or a
      file with no documents. The message names the file and line or row; the records yielded
      before it stay valid.

  Attributes:
    position: where the next item starts (after the record just yielded).
  """

  def __init__(self, spec: SourceSpec, shard_index: int = 0, shard_count: int = 1,
               stats: Optional[SourceStats] = None, *, file_seed: Optional[int] = None,
               start: ReadPosition = ReadPosition()):
    if not 0 <= shard_index < shard_count:
      raise ValueError(f"shard_index {shard_index} is not in [0, shard_count={shard_count})")
    self.spec = spec
    self.stats = SourceStats() if stats is None else stats
    self._index, self._count = shard_index, shard_count
    paths = list_files(spec)
    if file_seed is not None:
      random.Random(file_seed).shuffle(paths)
    self._by_files = len(paths) >= shard_count
    self._files = paths[shard_index::shard_count] if self._by_files else paths
    if not 0 <= start.file <= len(self._files):
      raise ValueError(f"read position {start} is past this host's {len(self._files)} files "
                       f"of {spec.pattern!r}")
    self.position = start

  def __iter__(self) -> Iterator[dict[str, str]]:
    while self.position.file < len(self._files):
      start = self.position
      if start.offset != FILE_DONE:
        path = self._files[start.file]
        self.stats.files += 1
        for item, offset, line in _file_items(path, self.spec, start.offset, start.line):
          mine = self._by_files or self.position.item % self._count == self._index
          self.position = ReadPosition(start.file, offset, line, self.position.item + 1)
          if not mine:
            continue
          if isinstance(item, _Problem):
            _handle(item, self.spec, self.stats)
          else:
            self.stats.documents += 1
            yield item
      self.position = ReadPosition(start.file + 1, 0, 1, self.position.item)


def iter_records(spec: SourceSpec, shard_index: int = 0, shard_count: int = 1,
                 stats: Optional[SourceStats] = None, *,
                 file_seed: Optional[int] = None) -> Iterator[dict[str, str]]:
  """Streams the documents of `spec` from its start (see `RecordReader`).

  Args:
    spec: the source.
    shard_index: this host's index.
    shard_count: number of hosts.
    stats: counters to update (documents, files, skips by reason); None for none.
    file_seed: when set, shuffle the file order with this seed (the same on every host).
  """
  return iter(RecordReader(spec, shard_index, shard_count, stats, file_seed=file_seed))


def read_documents(pattern: str, text_field: str = "text") -> Iterator[str]:
  """Texts of the documents of `pattern`, in sorted file order (see `iter_records`).

  Args:
    pattern: a glob, a file path, or "demo" / "demo_held_out".
    text_field: the field holding the text in JSONL, Parquet or TFRecord files.

  Raises:
    FileNotFoundError: nothing matches `pattern`.
    ValueError: bad input, naming the file and line or row.
  """
  for record in iter_records(SourceSpec(pattern, text_field=text_field)):
    yield record["text"]


# Reading files ------------------------------------------------------------------------------------

def _handle(problem: _Problem, spec: SourceSpec, stats: SourceStats) -> None:
  """Raises `problem`, or counts it (logging the first of each reason) when skipping."""
  if spec.on_error == "raise":
    raise ValueError(problem.message)
  stats.skipped[problem.reason] += 1
  if stats.skipped[problem.reason] == 1:
    logging.warning("skipping bad input (later %s are only counted): %s", problem.reason,
                    problem.message)


def _file_items(path: str, spec: SourceSpec, offset: int, line: int
                ) -> Iterator[tuple[Union[dict, _Problem], int, int]]:
  """(item, next offset, next line) of one file from `offset`, in order; read from its
  start, a file with no items gives an `empty_file` problem."""
  empty = True
  for item, next_offset, next_line in _reader(path, spec)(path, spec, offset, line):
    empty = False
    yield _check_length(item, spec), next_offset, next_line
  if empty and offset == 0:
    yield _Problem("empty_file", f"{path}: no documents (empty shard)"), FILE_DONE, line


def _reader(path: str, spec: SourceSpec):
  if spec.pattern in DEMO_PATTERNS:
    return _read_demo
  if spec.format != "auto":
    return _READERS[spec.format]
  name = path.rsplit("/", 1)[-1]
  if name.endswith(".jsonl"):
    return _read_jsonl
  if name.endswith(".parquet"):
    return _read_parquet
  if ".tfrecord" in name:
    return _read_tfrecord
  return _read_text


def _check_length(item: Union[dict, _Problem], spec: SourceSpec) -> Union[dict, _Problem]:
  if isinstance(item, dict) and spec.max_chars and len(item["text"]) > spec.max_chars:
    return _Problem("too_long", f"{item['id']}: document of {len(item['text'])} characters, "
                    f"more than max_chars={spec.max_chars}")
  return item


def _record(values: Mapping[str, Any], spec: SourceSpec, where: str) -> Union[dict, _Problem]:
  """The record of one document from its fields, or the problem with them."""
  record = {"text": "", "id": where}
  fields = [(n, n) for n in spec.extra_fields]
  if spec.text_field == WHOLE_RECORD:
    record["text"] = json.dumps(dict(values), ensure_ascii=False, default=str)
  else:
    fields.insert(0, ("text", spec.text_field))
  for key, name in fields:
    if name not in values:
      return _Problem("missing_field", f"{where}: no string field {name!r} (it is missing)")
    value = values[name]
    if isinstance(value, bytes):
      value, problem = _decode(value, f"{where}: field {name!r}")
      if problem:
        return problem
    if not isinstance(value, str):
      if key == "text":
        return _Problem("not_string",
                        f"{where}: no string field {name!r} (it is {type(value).__name__})")
      value = json.dumps(value, ensure_ascii=False, default=str)
    record[key] = value
  return record


def _decode(raw: bytes, where: str) -> tuple[str, Optional[_Problem]]:
  """`raw` as text without its line ending, or a `not_utf8` problem."""
  try:
    return raw.decode("utf-8").rstrip("\r\n"), None
  except UnicodeDecodeError as e:
    return "", _Problem("not_utf8", f"{where}: not UTF-8 ({e.reason} at byte {e.start})")


def _read_demo(pattern: str, spec: SourceSpec, offset: int, line: int):
  paragraphs = demo_corpus(DEMO_PATTERNS[pattern])
  for number in range(offset, len(paragraphs)):
    yield _record({spec.text_field: paragraphs[number]}, spec, f"{pattern}:{number}"), \
        number + 1, line


def _read_text(path: str, spec: SourceSpec, offset: int, line: int):
  """Documents separated by blank lines; a non-UTF-8 line makes its whole document bad."""
  block, start, problem = [], 0, None
  with _open(path) as f:
    f.seek(offset)
    number = line - 1
    while True:
      raw = f.readline()  # b"" at the end, which ends the last document like a blank line
      number += 1
      text, bad = _decode(raw, f"{path}:{number}")
      if bad is None and not text.strip():
        if block:
          item = problem or _record({spec.text_field: "\n".join(block)}, spec, f"{path}:{start}")
          yield item, f.tell(), number + 1
        block, problem = [], None
        if not raw:
          return
        continue
      if not block:
        start = number
      problem = problem or bad
      block.append(text)


def _read_jsonl(path: str, spec: SourceSpec, offset: int, line: int):
  with _open(path) as f:
    f.seek(offset)
    for number, raw in enumerate(iter(f.readline, b""), line):
      if raw.strip():
        yield _json_record(raw, spec, f"{path}:{number}"), f.tell(), number + 1


def _json_record(raw: bytes, spec: SourceSpec, where: str) -> Union[dict, _Problem]:
  line, problem = _decode(raw, where)
  if problem:
    return problem
  try:
    value = json.loads(line)
  except json.JSONDecodeError as e:
    return _Problem("not_json", f"{where}: not a JSON line ({e.msg})")
  if not isinstance(value, dict):
    return _Problem("not_object", f"{where}: not a JSON object (it is {type(value).__name__})")
  return _record(value, spec, where)


def _read_parquet(path: str, spec: SourceSpec, offset: int, line: int):
  """Rows of a Parquet file from row `offset`, a batch at a time (one row group read to seek)."""
  import pyarrow as pa  # pylint: disable=import-outside-toplevel
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  columns = _named_fields(spec)
  with _open(path) as f:
    try:
      table = pq.ParquetFile(f)
    except pa.ArrowException as e:
      yield _Problem("corrupt", f"{path}: not a readable Parquet file ({e})"), FILE_DONE, line
      return
    names = table.schema_arrow.names
    missing = [name for name in columns or () if name not in names]
    if missing:
      yield (_Problem("missing_field", f"{path}: no column {missing[0]!r} (columns: {names})"),
             FILE_DONE, line)
      return
    first = 0  # the first row of the current row group
    for group in range(table.num_row_groups):
      size = table.metadata.row_group(group).num_rows
      if first + size > offset:
        rows = table.read_row_group(group, columns=columns)
        for batch in rows.to_batches(max_chunksize=_PARQUET_BATCH_ROWS):
          for row, values in enumerate(batch.to_pylist(), first):
            if row >= offset:
              yield _record(values, spec, f"{path}:{row}"), row + 1, line
          first += batch.num_rows
      else:
        first += size


def _read_tfrecord(path: str, spec: SourceSpec, offset: int, line: int):
  """`tf.train.Example` records from record `offset`; a corrupt record ends the file."""
  from instruct_pt.data.tf_runtime import tf  # pylint: disable=import-outside-toplevel
  from google.protobuf import message  # pylint: disable=import-outside-toplevel
  number = offset
  try:
    for raw in tf.data.TFRecordDataset(path).skip(offset).as_numpy_iterator():
      where = f"{path}:{number}"
      try:
        example = tf.train.Example.FromString(raw)
      except message.DecodeError:
        yield _Problem("not_example", f"{where}: not a tf.train.Example"), number + 1, line
      else:
        yield _record(_example_values(example), spec, where), number + 1, line
      number += 1
  except tf.errors.DataLossError as e:
    yield _Problem("corrupt", f"{path}:{number}: corrupt TFRecord ({e.message})"), FILE_DONE, line


def _named_fields(spec: SourceSpec) -> Optional[list[str]]:
  """The fields a record needs; None when it takes the whole record."""
  if spec.text_field == WHOLE_RECORD:
    return None
  return [spec.text_field, *spec.extra_fields]


def _example_values(example) -> dict[str, Any]:
  """The features of a `tf.train.Example`: one value, or a list when there are several."""
  values = {}
  for name, feature in example.features.feature.items():
    kind = feature.WhichOneof("kind")
    found = list(getattr(feature, kind).value) if kind else []
    values[name] = found[0] if len(found) == 1 else found
  return values


def _read_tfds(name: str, spec: SourceSpec, offset: int, line: int):
  """Rows of a prepared TFDS dataset from row `offset`, in order; never downloads."""
  from instruct_pt.data.tf_runtime import tf  # pylint: disable=import-outside-toplevel,unused-import
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  try:
    dataset, info = tfds.load(name, split=spec.tfds_split, data_dir=spec.tfds_data_dir,
                              download=False, shuffle_files=False, with_info=True)
  except tfds.core.DatasetNotFoundError as e:
    raise FileNotFoundError(f"TFDS dataset {name!r} is not prepared in "
                            f"{spec.tfds_data_dir or 'the default data_dir'}") from e
  features = list(info.features.keys())
  missing = [field for field in _named_fields(spec) or () if field not in features]
  if missing:
    yield (_Problem("missing_field", f"{name}: no feature {missing[0]!r} (features: {features})"),
           FILE_DONE, line)
    return
  for row, example in enumerate(tfds.as_numpy(dataset.skip(offset)), offset):
    yield _record(example, spec, f"{name}/{spec.tfds_split}:{row}"), row + 1, line


_READERS = {"text": _read_text, "jsonl": _read_jsonl, "parquet": _read_parquet,
            "tfrecord": _read_tfrecord, "tfds": _read_tfds}


def _is_remote(path: str) -> bool:
  return "://" in path


def _open(path: str) -> io.BufferedIOBase:
  """A buffered binary reader of `path`: plain Python locally, `tf.io.gfile` for remote paths."""
  if not _is_remote(path):
    return open(path, "rb")
  from instruct_pt.data.tf_runtime import tf  # pylint: disable=import-outside-toplevel
  return io.BufferedReader(_GFileReader(tf.io.gfile.GFile(path, "rb")))


class _GFileReader(io.RawIOBase):
  """A `tf.io.gfile.GFile` as a standard raw reader (pyarrow needs `closed`, `readinto`)."""

  def __init__(self, gfile):
    super().__init__()
    self._gfile = gfile

  def readable(self) -> bool:
    return True

  def seekable(self) -> bool:
    return True

  def readinto(self, buffer) -> int:
    data = self._gfile.read(len(buffer))
    buffer[:len(data)] = data
    return len(data)

  def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
    self._gfile.seek(offset, whence)
    return self._gfile.tell()

  def tell(self) -> int:
    return self._gfile.tell()

  def close(self) -> None:
    self._gfile.close()
    super().close()
