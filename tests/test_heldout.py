"""Held-out data stays held out on every Python: the demo corpus is one shipped snapshot, the
evaluation files are its held-out split's output, and nothing in them leaks training text.

None of these tests skips: they read the snapshot, not the running Python's `pydoc_data`.
"""

import filecmp
import gzip
import json
import os
import shutil

import pytest

from instruct_pt.data import demo_corpus, sources
from instruct_pt.evaluation.tasks import demo


def test_heldout_files_are_the_snapshots_output_and_nothing_leaks(tmp_path):
  """A rebuild from the snapshot on the running Python is byte-identical to the shipped task
  files (twice), the leak check on them finds nothing, and their manifest names the
  snapshot training reads."""
  first = demo.build(str(tmp_path / "a"))
  assert demo.build(str(tmp_path / "b")) == first
  names = [*demo.DATA_FILES, demo.MANIFEST_FILE]
  assert filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", names, shallow=False)[0] == names
  assert filecmp.cmpfiles(tmp_path / "a", demo.DEMO_DIR, names, shallow=False)[0] == names
  assert demo.leaks(demo.DEMO_DIR, sources.demo_corpus("train")) == []
  demo.check_snapshot()
  assert first["corpus_sha256"] == demo_corpus.digest()
  assert first["near_duplicates_dropped"] > 0  # e.g. str.rjust beside str.ljust


def test_leak_check_finds_exact_and_near_duplicate_leaks(tmp_path):
  """Planted leaks are each named with file and line: a passage copied from training, one
  with a word changed (a near-duplicate), and an item sentence from training."""
  train = sources.demo_corpus("train")
  shutil.copytree(demo.DEMO_DIR, tmp_path / "demo")
  path = tmp_path / "demo" / demo.PERPLEXITY_FILE
  docs = [json.loads(line) for line in path.read_text().splitlines()]
  near = train[100].replace(" the ", " a ", 1)
  assert near != train[100] and demo.similarity(near, train[100]) >= demo.NEAR_DUPLICATE_RATIO
  docs[0]["text"], docs[1]["text"] = train[5], near
  path.write_text("".join(json.dumps(d) + "\n" for d in docs))
  rc = tmp_path / "demo" / demo.RC_FILE
  items = [json.loads(line) for line in rc.read_text().splitlines()]
  items[2]["sentence"] = " ".join(train[7].split())
  rc.write_text("".join(json.dumps(i) + "\n" for i in items))
  found = demo.leaks(str(tmp_path / "demo"), train)
  assert [line.split(":")[:2] for line in found] == [
      [demo.PERPLEXITY_FILE, "1"], [demo.PERPLEXITY_FILE, "2"], [demo.RC_FILE, "3 sentence"]]
  assert "occurs in the training split" in found[0]
  assert "similar to training paragraph 100" in found[1]


def test_heldout_passages_drop_near_duplicates_by_hand():
  """Hand-made corpus: an exact copy, a one-word edit (similarity 0.98) and a distinct
  paragraph; only the distinct one survives, and similarity is difflib's ratio."""
  train = ["Return the string left justified in a string of length width.",
           "Something else entirely about the grammar of numbers."]
  held_out = [train[1], "Return the string right justified in a string of length width.",
              "Exceptions are raised by the raise statement."]
  passages = demo.held_out_passages(held_out, train)
  assert [p.text for p in passages] == [held_out[2]]
  assert demo.similarity("abcd", "abce") == pytest.approx(0.75)  # 2 * 3 / 8


def test_heldout_corpus_is_the_snapshot_not_this_pythons_pydoc(monkeypatch):
  """The demo corpus does not change when the running Python's pydoc_data does."""
  before = sources.demo_corpus("held_out")
  from pydoc_data import topics
  monkeypatch.setattr(topics, "topics", {"x": "Nothing of the real documentation is here. " * 4})
  demo_corpus._records.cache_clear()
  try:
    assert sources.demo_corpus("held_out") == before
    assert len(before) == demo_corpus.manifest()["paragraphs"]["held_out"]
  finally:
    demo_corpus._records.cache_clear()


def test_heldout_snapshot_mismatches_stop_with_one_line(tmp_path, monkeypatch):
  """A damaged snapshot, or task files built from another one, stop with one line naming
  the file and the rebuild command."""
  snapshot = tmp_path / "pydoc_topics.jsonl.gz"
  with gzip.open(demo_corpus.SNAPSHOT_FILE, "rb") as f:
    text = f.read()
  with gzip.open(snapshot, "wb") as f:
    f.write(text.replace(b"assert", b"ASSERT", 1))
  monkeypatch.setattr(demo_corpus, "SNAPSHOT_FILE", str(snapshot))
  demo_corpus._records.cache_clear()
  try:
    with pytest.raises(ValueError, match=r"pydoc_topics.jsonl.gz: SHA-256 .* is not the .*rebuild"):
      sources.demo_corpus("train")
  finally:
    demo_corpus._records.cache_clear()
  shutil.copytree(demo.DEMO_DIR, tmp_path / "demo")
  manifest = tmp_path / "demo" / demo.MANIFEST_FILE
  manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "corpus_sha256": "0" * 64}))
  with pytest.raises(ValueError, match=r"manifest.json: the demo tasks were built from corpus "
                                       r"snapshot 000000000000\.\.\..*python -m instruct_pt"):
    demo.check_snapshot(str(tmp_path / "demo"))
  os.remove(manifest)
  with pytest.raises(ValueError, match="is missing; rebuild"):
    demo.check_snapshot(str(tmp_path / "demo"))


def test_heldout_snapshot_build_is_deterministic(tmp_path):
  """Building the snapshot twice from this Python gives byte-identical files whose manifest
  digest is the JSONL text's."""
  first = demo_corpus.build(str(tmp_path / "a"))
  second = demo_corpus.build(str(tmp_path / "b"))
  assert first == second
  names = ["pydoc_topics.jsonl.gz", "pydoc_topics.json"]
  assert filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", names, shallow=False)[0] == names
  assert sum(first["paragraphs"].values()) == len(demo_corpus.paragraphs_of_running_python())
