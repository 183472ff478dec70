"""Tests of the raw corpus readers: formats, sharding, bad input, layouts and the SeqIO source.

Every corpus is written by the test into tmp_path; expected ids are worked out from the file
layout (text ids name a document's first line, JSONL ids its line, Parquet / TFRecord / TFDS
ids count rows from 0).
"""

import json
import os
import re
import subprocess
import sys

import pytest

from instruct_pt.data import sources
from instruct_pt.data.sources import (CORPUS_LAYOUTS, ReadPosition, RecordReader, SourceSpec,
                                      SourceStats, iter_records,
                                      layout_spec, read_documents)
from instruct_pt.data.seqio_source import BLOCK_RECORDS, BlockReader, seqio_source

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["first document\nwith two lines", "second document", "third, with ünïcödé", "fourth"]
# Where each document of DOCS starts, per format.
TEXT_LINES = [1, 4, 6, 8]
JSONL_LINES = [1, 2, 3, 4]
ROWS = [0, 1, 2, 3]


def _texts(records):
  return [r["text"] for r in records]


def _ids(records):
  return [r["id"] for r in records]


# Writers ------------------------------------------------------------------------------------------

def write_text(path, docs):
  path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")


def write_jsonl(path, rows):
  path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def write_parquet(path, rows):
  pa = pytest.importorskip("pyarrow")
  pq = pytest.importorskip("pyarrow.parquet")
  pq.write_table(pa.Table.from_pylist(rows), str(path), row_group_size=2)


def _example(row):
  tf = pytest.importorskip("tensorflow")
  feature = {}
  for name, value in row.items():
    if isinstance(value, int):
      feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
    else:
      data = value if isinstance(value, bytes) else value.encode("utf-8")
      feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
  return tf.train.Example(features=tf.train.Features(feature=feature))


def write_tfrecord(path, rows):
  tf = pytest.importorskip("tensorflow")
  with tf.io.TFRecordWriter(str(path)) as writer:
    for row in rows:
      writer.write(_example(row).SerializeToString())


def write_tfds(data_dir, name, rows):
  """Prepares TFDS dataset `name` 1.0.0 (one "train" shard of `rows`) without downloading."""
  tf = pytest.importorskip("tensorflow")
  tfds = pytest.importorskip("tensorflow_datasets")
  features = tfds.features.FeaturesDict({key: tfds.features.Text() for key in rows[0]})
  out = os.path.join(data_dir, name, "1.0.0")
  os.makedirs(out)
  template = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
  with tf.io.TFRecordWriter(os.path.join(out, f"{name}-train.tfrecord-00000-of-00001")) as w:
    for row in rows:
      w.write(features.serialize_example(row))
  split = tfds.core.SplitInfo(
      name="train", shard_lengths=[len(rows)], num_bytes=0,
      filename_template=tfds.core.ShardedFileTemplate(
          data_dir=out, template=template, dataset_name=name, split="train",
          filetype_suffix="tfrecord"))
  tfds.folder_dataset.write_metadata(data_dir=out, features=features, split_infos=[split],
                                     filename_template=template)


# Each format: (file name, writer taking rows of {"text", **extras}, ids of DOCS).
FORMATS = {
    "text": ("corpus.txt", lambda path, rows: write_text(path, [r["text"] for r in rows]),
             TEXT_LINES),
    "jsonl": ("corpus.jsonl", write_jsonl, JSONL_LINES),
    "parquet": ("corpus.parquet", write_parquet, ROWS),
    "tfrecord": ("corpus.tfrecord", write_tfrecord, ROWS),
}


# Formats ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_file_format_round_trips(tmp_path, fmt):
  """Documents come back in order, with "<file>:<line or row>" ids, by suffix and by name."""
  name, write, numbers = FORMATS[fmt]
  path = tmp_path / name
  write(path, [{"text": doc} for doc in DOCS])
  for spec_format in ("auto", fmt):
    records = list(iter_records(SourceSpec(str(path), format=spec_format)))
    assert _texts(records) == DOCS
    assert _ids(records) == [f"{path}:{n}" for n in numbers]
    assert all(set(r) == {"text", "id"} for r in records)


@pytest.mark.parametrize("fmt", sorted(FORMATS) + ["tfds", "demo"])
@pytest.mark.parametrize("hosts", [1, 2, 4])
def test_a_reader_resumes_from_any_saved_position(tmp_path, fmt, hosts):
  """Three files of each format (blank lines and a bad line in between, skipped): a reader
  started at the position saved after any record yields exactly the rest of the stream, for
  every host of 1, 2 or 4 (item sharding when the files are fewer than the hosts)."""
  if fmt == "demo":
    spec = SourceSpec("demo_held_out")
  elif fmt == "tfds":
    write_tfds(str(tmp_path), "tiny_corpus", [{"text": f"{doc} {i}"} for i in range(9)
                                              for doc in DOCS[:1]])
    spec = SourceSpec("tiny_corpus", format="tfds", tfds_data_dir=str(tmp_path))
  else:
    name, write, _ = FORMATS[fmt]
    for part in range(3):
      write(tmp_path / f"{part}-{name}", [{"text": f"{doc} (part {part})"} for doc in DOCS])
    if fmt == "jsonl":  # blank and bad lines between records
      path = tmp_path / f"1-{name}"
      path.write_text(path.read_text() + "\n\nnot json\n" + json.dumps({"text": "last"}) + "\n")
    spec = SourceSpec(str(tmp_path / f"*-{name}"), on_error="skip")
  for index in range(hosts):
    reader = RecordReader(spec, index, hosts)
    everything, positions = [], []
    for record in reader:
      everything.append(record)
      positions.append(reader.position)
    assert everything, (fmt, index)
    for cut in sorted({0, 1, len(everything) // 2, len(everything) - 1}):
      resumed = list(RecordReader(spec, index, hosts, start=positions[cut]))
      assert resumed == everything[cut + 1:], (fmt, index, cut, positions[cut])
    assert list(RecordReader(spec, index, hosts, start=ReadPosition())) == everything


def test_a_position_past_the_files_is_refused(tmp_path):
  write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}])
  with pytest.raises(ValueError, match="past this host's 1 files"):
    RecordReader(SourceSpec(str(tmp_path / "a.jsonl")), start=ReadPosition(file=3))


def test_tfds_round_trips_offline(tmp_path):
  """A prepared TFDS dataset reads by name and by name:version, never downloading."""
  write_tfds(str(tmp_path), "tiny_corpus", [{"text": doc} for doc in DOCS])
  for name in ("tiny_corpus", "tiny_corpus:1.0.0"):
    spec = SourceSpec(name, format="tfds", tfds_data_dir=str(tmp_path))
    records = list(iter_records(spec))
    assert _texts(records) == DOCS
    assert _ids(records) == [f"{name}/train:{n}" for n in ROWS]
  with pytest.raises(FileNotFoundError, match="'absent_corpus' is not prepared in"):
    list(iter_records(SourceSpec("absent_corpus", format="tfds", tfds_data_dir=str(tmp_path))))


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "tfrecord"])
def test_extra_fields_are_carried_as_strings(tmp_path, fmt):
  """Extra fields come through as strings; a non-string JSON value is written as JSON."""
  name, write, _ = FORMATS[fmt]
  path = tmp_path / name
  write(path, [{"text": doc, "url": f"https://x/{i}", "rank": i} for i, doc in enumerate(DOCS)])
  records = list(iter_records(SourceSpec(str(path), extra_fields=("url", "rank"))))
  assert [r["url"] for r in records] == [f"https://x/{i}" for i in range(len(DOCS))]
  assert [r["rank"] for r in records] == [str(i) for i in range(len(DOCS))]
  assert _texts(records) == DOCS


def test_extra_fields_from_tfds(tmp_path):
  """A TFDS feature named in extra_fields is carried, decoded to str."""
  write_tfds(str(tmp_path), "with_urls", [{"text": d, "url": f"u{i}"} for i, d in enumerate(DOCS)])
  spec = SourceSpec("with_urls", format="tfds", tfds_data_dir=str(tmp_path),
                    extra_fields=("url",))
  assert [(r["text"], r["url"]) for r in iter_records(spec)] == [
      (d, f"u{i}") for i, d in enumerate(DOCS)]


def test_text_files_keep_blank_line_documents_and_crlf(tmp_path):
  """Blank (or whitespace-only) lines separate documents; CRLF line ends are dropped."""
  path = tmp_path / "c.txt"
  path.write_bytes(b"\n\na\r\nb\r\n \r\n\r\nc\n")
  records = list(iter_records(SourceSpec(str(path))))
  assert [(r["text"], r["id"]) for r in records] == [("a\nb", f"{path}:3"), ("c", f"{path}:7")]


def test_reading_streams_instead_of_loading_whole_files(tmp_path, monkeypatch):
  """The first document of a 2 MB file arrives after reading only a small part of it."""
  path = tmp_path / "big.jsonl"
  write_jsonl(path, [{"text": "x" * 200}] * 10_000)
  handles = []

  def spying_open(name):
    handles.append(open(name, "rb"))  # pylint: disable=consider-using-with
    return handles[-1]

  monkeypatch.setattr(sources, "_open", spying_open)
  records = iter_records(SourceSpec(str(path)))
  assert next(records)["text"] == "x" * 200
  assert handles[0].tell() < os.path.getsize(path) // 20


def test_remote_patterns_go_through_tf_io_gfile(tmp_path, monkeypatch):
  """A path with a scheme is globbed and opened by tf.io.gfile (file:// stands in for gs://)."""
  tf = pytest.importorskip("tensorflow")
  write_jsonl(tmp_path / "a.jsonl", [{"text": d} for d in DOCS[:2]])
  write_parquet(tmp_path / "b.parquet", [{"text": d} for d in DOCS[2:]])
  opened = []
  real_gfile = tf.io.gfile.GFile
  monkeypatch.setattr(tf.io.gfile, "GFile", lambda *a: opened.append(a[0]) or real_gfile(*a))
  records = list(iter_records(SourceSpec(f"file://{tmp_path}/*")))
  assert _texts(records) == DOCS
  assert opened == [f"file://{tmp_path}/a.jsonl", f"file://{tmp_path}/b.parquet"]
  assert records[2]["id"] == f"file://{tmp_path}/b.parquet:0"


def test_sources_import_and_read_local_files_without_tensorflow(tmp_path):
  """Local text and JSONL reading needs neither TensorFlow, SeqIO nor pyarrow."""
  write_jsonl(tmp_path / "a.jsonl", [{"text": "one"}])
  write_text(tmp_path / "b.txt", ["two"])
  code = ("import sys; sys.modules['tensorflow'] = sys.modules['seqio'] = None; "
          "sys.modules['pyarrow'] = None; from instruct_pt.data import sources; "
          f"print(list(sources.read_documents({str(tmp_path / '*')!r})))")
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, check=False)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == "['one', 'two']"


# Sharding -----------------------------------------------------------------------------------------

def _corpus_files(tmp_path, num_files, docs_per_file):
  for f in range(num_files):
    write_jsonl(tmp_path / f"part-{f}.jsonl",
                [{"text": f"file {f} doc {d}"} for d in range(docs_per_file)])
  return str(tmp_path / "*.jsonl")


def test_two_hosts_split_by_files(tmp_path):
  """With at least as many files as hosts, host i reads files i, i+2, ...: disjoint, complete."""
  spec = SourceSpec(_corpus_files(tmp_path, 4, 3))
  everything = list(iter_records(spec))
  hosts = [list(iter_records(spec, i, 2)) for i in range(2)]
  assert {r["id"].split(":")[0].rsplit("-", 1)[1] for r in hosts[0]} == {"0.jsonl", "2.jsonl"}
  assert {r["id"].split(":")[0].rsplit("-", 1)[1] for r in hosts[1]} == {"1.jsonl", "3.jsonl"}
  assert sorted(_ids(hosts[0] + hosts[1])) == sorted(_ids(everything))
  assert not set(_ids(hosts[0])) & set(_ids(hosts[1]))
  assert hosts == [list(iter_records(spec, i, 2)) for i in range(2)]


def test_hosts_split_by_records_when_files_are_fewer(tmp_path):
  """With fewer files than hosts, host i takes items i, i+P, ... of the whole ordered stream."""
  spec = SourceSpec(_corpus_files(tmp_path, 3, 3))
  everything = list(iter_records(spec))
  hosts = [list(iter_records(spec, i, 4)) for i in range(4)]
  for i, records in enumerate(hosts):
    assert records == everything[i::4]
  assert hosts == [list(iter_records(spec, i, 4)) for i in range(4)]


def test_record_sharding_counts_each_bad_line_on_one_host(tmp_path):
  """A skipped line belongs to one host, like a document, so skips add up over hosts."""
  path = tmp_path / "one.jsonl"
  path.write_text('{"text": "a"}\nnot json\n{"text": "b"}\n{"text": "c"}\n')
  spec = SourceSpec(str(path), on_error="skip")
  stats = [SourceStats(), SourceStats()]
  hosts = [_texts(iter_records(spec, i, 2, stats[i])) for i in range(2)]
  assert hosts == [["a", "b"], ["c"]]
  assert [dict(s.skipped) for s in stats] == [{}, {"not_json": 1}]
  with pytest.raises(ValueError, match="one.jsonl:2: not a JSON line"):
    list(iter_records(SourceSpec(str(path)), 1, 2))
  assert _texts(iter_records(SourceSpec(str(path)), 0, 2)) == ["a", "b"]


def test_bad_shard_arguments():
  """A shard index outside [0, shard_count) is refused."""
  with pytest.raises(ValueError, match=r"shard_index 2 is not in \[0, shard_count=2\)"):
    next(iter_records(SourceSpec("demo"), 2, 2))


def test_file_seed_shuffles_file_order_deterministically(tmp_path):
  """file_seed permutes whole files the same way every time; the documents stay the same."""
  spec = SourceSpec(_corpus_files(tmp_path, 6, 2))
  shuffled = _texts(iter_records(spec, file_seed=7))
  assert shuffled == _texts(iter_records(spec, file_seed=7))
  assert sorted(shuffled) == sorted(_texts(iter_records(spec)))
  assert shuffled != _texts(iter_records(spec))
  assert all(shuffled[i][:6] == shuffled[i + 1][:6] for i in range(0, 12, 2))


# Bad input ----------------------------------------------------------------------------------------

BAD_INPUTS = [
    ("bad.jsonl", b'{"text": "ok"}\nnot json\n{"text": "after"}\n',
     "bad.jsonl:2: not a JSON line (Expecting value)", "not_json", ["ok", "after"]),
    ("bad.jsonl", b'{"text": "ok"}\n[1, 2]\n{"text": "after"}\n',
     "bad.jsonl:2: not a JSON object (it is list)", "not_object", ["ok", "after"]),
    ("bad.jsonl", b'{"text": "ok"}\n{"body": "x"}\n{"text": "after"}\n',
     "bad.jsonl:2: no string field 'text' (it is missing)", "missing_field", ["ok", "after"]),
    ("bad.jsonl", b'{"text": "ok"}\n{"text": 3}\n{"text": "after"}\n',
     "bad.jsonl:2: no string field 'text' (it is int)", "not_string", ["ok", "after"]),
    ("bad.jsonl", b'{"text": "ok"}\n{"text": "\xff"}\n{"text": "after"}\n',
     "bad.jsonl:2: not UTF-8 (invalid start byte at byte 10)", "not_utf8", ["ok", "after"]),
    ("bad.txt", b"ok\n\nfine\n\xff bad\n\nafter\n",
     "bad.txt:4: not UTF-8 (invalid start byte at byte 0)", "not_utf8", ["ok", "after"]),
]


@pytest.mark.parametrize("name,content,message,reason,good", BAD_INPUTS)
def test_bad_input_raises_naming_file_and_line(tmp_path, name, content, message, reason, good):
  """The error names the file and line; records yielded before it are kept."""
  del reason
  (tmp_path / name).write_bytes(content)
  records = iter_records(SourceSpec(str(tmp_path / name)))
  assert next(records)["text"] == good[0]
  with pytest.raises(ValueError) as error:
    next(records)
  assert str(error.value) == f"{tmp_path / name}:{message.split(':', 1)[1]}"


@pytest.mark.parametrize("name,content,message,reason,good", BAD_INPUTS)
def test_bad_input_is_skipped_and_counted(tmp_path, name, content, message, reason, good):
  """With on_error="skip" the bad line is counted by reason and reading goes on."""
  del message
  (tmp_path / name).write_bytes(content)
  stats = SourceStats()
  records = list(iter_records(SourceSpec(str(tmp_path / name), on_error="skip"), stats=stats))
  assert _texts(records) == good
  assert stats.skipped == {reason: 1}
  assert stats.report() == f"2 documents from 1 files, skipped 1 ({reason} 1)"


def test_no_matching_file(tmp_path):
  """A pattern matching nothing raises FileNotFoundError naming the pattern."""
  pattern = str(tmp_path / "nothing-*.jsonl")
  with pytest.raises(FileNotFoundError, match=re.escape(f"no file matches '{pattern}'")):
    list(iter_records(SourceSpec(pattern)))


def test_empty_shard_raises_or_is_skipped(tmp_path):
  """A file without documents is an error by default, a counted skip with on_error="skip"."""
  write_jsonl(tmp_path / "a.jsonl", [{"text": "a"}])
  (tmp_path / "b.jsonl").write_text("\n  \n")
  write_jsonl(tmp_path / "c.jsonl", [{"text": "c"}])
  pattern = str(tmp_path / "*.jsonl")
  with pytest.raises(ValueError, match="^" + re.escape(f"{tmp_path / 'b.jsonl'}: no documents")):
    list(iter_records(SourceSpec(pattern)))
  stats = SourceStats()
  assert _texts(iter_records(SourceSpec(pattern, on_error="skip"), stats=stats)) == ["a", "c"]
  assert (stats.files, stats.documents, stats.skipped) == (3, 2, {"empty_file": 1})


@pytest.mark.parametrize("fmt,message", [
    ("parquet", "corpus.parquet: no column 'text' (columns: ['body'])"),
    ("tfrecord", "corpus.tfrecord:0: no string field 'text' (it is missing)"),
])
def test_missing_column_or_feature(tmp_path, fmt, message):
  """A Parquet file without the column, a TFRecord without the feature: named, or skipped."""
  name, write, _ = FORMATS[fmt]
  write(tmp_path / name, [{"body": "a"}, {"body": "b"}])
  with pytest.raises(ValueError, match="^" + re.escape(f"{tmp_path}/{message}")):
    list(iter_records(SourceSpec(str(tmp_path / name))))
  stats = SourceStats()
  assert not list(iter_records(SourceSpec(str(tmp_path / name), on_error="skip"), stats=stats))
  assert stats.skipped == {"missing_field": 1 if fmt == "parquet" else 2}


def test_corrupt_binary_files(tmp_path):
  """A file that is not Parquet, and a truncated TFRecord, are errors naming the file."""
  (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
  with pytest.raises(ValueError, match=re.escape(f"{tmp_path}/junk.parquet: not a readable")):
    list(iter_records(SourceSpec(str(tmp_path / "junk.parquet"))))
  write_tfrecord(tmp_path / "cut.tfrecord", [{"text": d} for d in DOCS])
  data = (tmp_path / "cut.tfrecord").read_bytes()
  (tmp_path / "cut.tfrecord").write_bytes(data[:-5])
  stats = SourceStats()
  records = list(iter_records(SourceSpec(str(tmp_path / "cut.tfrecord"), on_error="skip"),
                              stats=stats))
  assert _texts(records) == DOCS[:3] and stats.skipped == {"corrupt": 1}
  with pytest.raises(ValueError, match=re.escape(f"{tmp_path}/cut.tfrecord:3: corrupt")):
    list(iter_records(SourceSpec(str(tmp_path / "cut.tfrecord"))))


def test_missing_tfds_feature(tmp_path):
  """A TFDS dataset without the text feature is one clear error naming the dataset."""
  write_tfds(str(tmp_path), "no_text", [{"body": "a"}])
  spec = SourceSpec("no_text", format="tfds", tfds_data_dir=str(tmp_path))
  with pytest.raises(ValueError, match=r"^no_text: no feature 'text' \(features: \['body'\]\)"):
    list(iter_records(spec))


def test_max_chars(tmp_path):
  """A document over max_chars is an error naming file:line, or a counted skip."""
  write_jsonl(tmp_path / "c.jsonl", [{"text": "short"}, {"text": "x" * 50}, {"text": "tiny"}])
  path = str(tmp_path / "c.jsonl")
  records = iter_records(SourceSpec(path, max_chars=10))
  assert next(records)["text"] == "short"
  with pytest.raises(ValueError) as error:
    next(records)
  assert str(error.value) == f"{path}:2: document of 50 characters, more than max_chars=10"
  stats = SourceStats()
  assert _texts(iter_records(SourceSpec(path, max_chars=10, on_error="skip"), stats=stats)) == [
      "short", "tiny"]
  assert stats.skipped == {"too_long": 1}


@pytest.mark.parametrize("fields,message", [
    ({"format": "csv"}, "format 'csv' is not one of"),
    ({"on_error": "ignore"}, "on_error 'ignore' is not one of"),
    ({"max_chars": 0}, "max_chars must be positive or None, not 0"),
    ({"extra_fields": ["url", "id"]}, "extra_fields may not contain 'id'"),
    ({"pattern": ""}, "pattern is empty"),
])
def test_source_spec_rejects_bad_fields(fields, message):
  """Each invalid field value is one ValueError naming it."""
  with pytest.raises(ValueError, match=message):
    SourceSpec(**{"pattern": "demo", **fields})


def test_source_spec_takes_extra_fields_as_a_list():
  """Gin binds lists; extra_fields is stored as a tuple so the spec stays hashable."""
  spec = SourceSpec("demo", extra_fields=["url"])
  assert spec.extra_fields == ("url",)
  assert hash(spec) == hash(SourceSpec("demo", extra_fields=("url",)))


# Layouts ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_refinedweb_layout(tmp_path, fmt):
  """RefinedWeb rows (content, url, timestamp, ...) read with the refinedweb preset."""
  name, write, _ = FORMATS[fmt]
  rows = [{"content": d, "url": f"https://site/{i}", "timestamp": "2023-01-01T00:00:00",
           "dump": "CC-MAIN-2023-06", "segment": "s"} for i, d in enumerate(DOCS)]
  write(tmp_path / name, rows)
  records = list(iter_records(layout_spec("refinedweb", str(tmp_path / name))))
  assert [(r["text"], r["url"]) for r in records] == [(d, f"https://site/{i}")
                                                     for i, d in enumerate(DOCS)]
  assert set(records[0]) == {"text", "id", "url"}


def test_instruction_augmented_layout_reads_txt_shards_as_jsonl(tmp_path):
  """The augmented corpora's part-N/shard/NNNNN.txt files are JSON lines with `text`."""
  shard = tmp_path / "part-0" / "shard"
  shard.mkdir(parents=True)
  write_jsonl(shard / "00000.txt", [{"text": d} for d in DOCS])
  spec = layout_spec("instruction_augmented", str(tmp_path / "part-*" / "shard" / "*.txt"))
  assert _texts(iter_records(spec)) == DOCS


def test_synthesizer_collection_layout_carries_qa_list_as_json(tmp_path):
  """Collection rows give `context` as text and `QA_list` as a JSON string."""
  qa = [{"Q": "What is first?", "A": "the first document"}]
  write_jsonl(tmp_path / "00000.jsonl", [{"context": DOCS[0], "QA_list": qa, "QA_type": "x"}])
  records = list(iter_records(layout_spec("synthesizer_collection",
                                          str(tmp_path / "*.jsonl"))))
  assert records[0]["text"] == DOCS[0]
  assert json.loads(records[0]["QA_list"]) == qa


def test_layout_spec_presets_and_overrides():
  """Every preset builds a valid spec; overrides replace its fields; unknown names fail."""
  for name in CORPUS_LAYOUTS:
    assert layout_spec(name, "x.jsonl").pattern == "x.jsonl"
  spec = layout_spec("pubmed_abstracts", "p.jsonl", on_error="skip", max_chars=100)
  assert (spec.text_field, spec.on_error, spec.max_chars) == ("text", "skip", 100)
  assert layout_spec("refinedweb", "r", extra_fields=()).extra_fields == ()
  with pytest.raises(ValueError, match="Unknown corpus layout 'c4'"):
    layout_spec("c4", "x")
  with pytest.raises(TypeError):
    layout_spec("refinedweb", "x", text_feild="t")


# read_documents, demo and stats -------------------------------------------------------------------

def test_read_documents_keeps_its_behaviour(tmp_path):
  """read_documents yields texts: the demo splits, and a JSONL file's chosen field."""
  assert list(read_documents("demo")) == sources.demo_corpus("train")
  assert list(read_documents("demo_held_out")) == sources.demo_corpus("held_out")
  write_jsonl(tmp_path / "a.jsonl", [{"body": d} for d in DOCS])
  assert list(read_documents(str(tmp_path / "a.jsonl"), "body")) == DOCS


def test_demo_records_shard_by_record():
  """The demo corpus is one shard, so two hosts split it record by record."""
  everything = list(iter_records(SourceSpec("demo_held_out")))
  assert everything[0]["id"] == "demo_held_out:0"
  hosts = [list(iter_records(SourceSpec("demo_held_out"), i, 2)) for i in range(2)]
  assert hosts == [everything[0::2], everything[1::2]]


def test_stats_report_is_one_line():
  """The report names documents, files and skips by reason on one line."""
  stats = SourceStats(documents=10, files=2)
  assert stats.report() == "10 documents from 2 files, nothing skipped"
  stats.skipped.update({"too_long": 2, "not_json": 1})
  assert stats.report() == "10 documents from 2 files, skipped 3 (not_json 1, too_long 2)"


# SeqIO --------------------------------------------------------------------------------------------

def _decoded(dataset):
  return [{k: v.decode("utf-8") for k, v in ex.items()} for ex in dataset.as_numpy_iterator()]


def test_seqio_source_yields_the_same_records(tmp_path):
  """get_dataset yields iter_records' records as tf.string features, sharded by shard_info."""
  seqio = pytest.importorskip("seqio")
  for f in range(3):
    write_jsonl(tmp_path / f"p{f}.jsonl",
                [{"text": f"f{f} d{d}", "url": f"u{f}{d}"} for d in range(3)])
  spec = SourceSpec(str(tmp_path / "*.jsonl"), extra_fields=("url",))
  source = seqio_source(spec)
  assert isinstance(source, seqio.DataSource) and source.supports_arbitrary_sharding
  assert source.splits == ("train",)
  assert source.list_shards("train") == [str(tmp_path / f"p{f}.jsonl") for f in range(3)]
  dataset = source.get_dataset("train", shuffle=False)
  assert set(dataset.element_spec) == {"text", "id", "url"}
  assert _decoded(dataset) == list(iter_records(spec))
  for index in range(2):
    shard = seqio.ShardInfo(index=index, num_shards=2)
    assert _decoded(source.get_dataset("train", shuffle=False, shard_info=shard)) == list(
        iter_records(spec, index, 2))


def test_seqio_source_shuffles_files_with_the_seed(tmp_path):
  """shuffle=True reads the files in the order file_seed=seed gives: deterministic."""
  pytest.importorskip("seqio")
  spec = SourceSpec(_corpus_files(tmp_path, 5, 2))
  source = seqio_source(spec)
  first = _decoded(source.get_dataset("train", shuffle=True, seed=3))
  assert first == _decoded(source.get_dataset("train", shuffle=True, seed=3))
  assert first == list(iter_records(spec, file_seed=3))


def test_seqio_source_splits_and_errors(tmp_path):
  """Named splits map to their own specs; bad input inside tf.data still names file:line."""
  tf = pytest.importorskip("tensorflow")
  pytest.importorskip("seqio")
  (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\nnot json\n')
  source = seqio_source({"train": SourceSpec("demo"), "validation": SourceSpec(
      str(tmp_path / "bad.jsonl"))})
  assert source.splits == ("train", "validation")
  with pytest.raises(ValueError, match="Unknown split 'test'"):
    source.get_dataset("test")
  with pytest.raises(tf.errors.OpError, match="bad.jsonl:2: not a JSON line"):
    list(source.get_dataset("validation", shuffle=False))


def test_block_reader_error_sticks_when_a_later_block_is_read_first(tmp_path):
  """tf.data may read block 1 before block 0: the error must not leave block 0 looking empty."""
  lines = ['{"text": "ok %d"}' % i for i in range(BLOCK_RECORDS + 5)] + ["not json"]
  (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
  reader = BlockReader(SourceSpec(str(tmp_path / "bad.jsonl")), 0, 1, None)
  assert len(reader.block(0)) == BLOCK_RECORDS
  for number in (2, 1, 3):
    with pytest.raises(ValueError, match=f"bad.jsonl:{BLOCK_RECORDS + 6}: not a JSON line"):
      reader.block(number)


def test_whole_record_as_json_text(tmp_path):
  """text_field="*" turns each JSONL / Parquet record into its JSON text (structured data)."""
  records = [{"context": "A list holds items.", "pairs": [{"question": "What?", "answer": "Items"}]},
             {"context": "Dicts map keys.", "pairs": []}]
  path = tmp_path / "sft.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in records))
  spec = SourceSpec(str(path), text_field=sources.WHOLE_RECORD)
  assert [json.loads(r["text"]) for r in iter_records(spec)] == records
  pq = pytest.importorskip("pyarrow.parquet")
  pa = pytest.importorskip("pyarrow")
  pq.write_table(pa.Table.from_pylist([{"prompt": "p", "response": "r"}]),
                 str(tmp_path / "i.parquet"))
  parquet = SourceSpec(str(tmp_path / "i.parquet"), text_field=sources.WHOLE_RECORD)
  assert [json.loads(r["text"]) for r in iter_records(parquet)] == [
      {"prompt": "p", "response": "r"}]
