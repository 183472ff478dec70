"""The shipped offline lm-eval tasks: the demo generator and the paper suites."""

import filecmp
import json
import os

import pytest

pytest.importorskip("lm_eval")

from instruct_pt.data import sources  # pylint: disable=wrong-import-position
from instruct_pt.evaluation.tasks import demo, suites  # pylint: disable=wrong-import-position


def _read(directory, name):
  with open(os.path.join(directory, name), encoding="utf-8") as f:
    return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def shipped_manifest():
  with open(os.path.join(demo.DEMO_DIR, demo.MANIFEST_FILE), encoding="utf-8") as f:
    return json.load(f)


def test_generator_is_deterministic_and_the_shipped_files_are_its_output(tmp_path,
                                                                         shipped_manifest):
  """Two builds are byte-identical; on the corpus the shipped files were built from, so are
  the shipped files (another Python's pydoc_data gives other paragraphs)."""
  first, second = demo.build(str(tmp_path / "a")), demo.build(str(tmp_path / "b"))
  assert first == second
  names = [demo.CLOZE_FILE, demo.PERPLEXITY_FILE, demo.MANIFEST_FILE]
  assert filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", names, shallow=False)[0] == names
  if first["held_out_sha256"] != shipped_manifest["held_out_sha256"]:
    pytest.skip(f"this Python's held-out corpus differs from the one the shipped files were "
                f"built from (Python {shipped_manifest['python']})")
  assert filecmp.cmpfiles(tmp_path / "a", demo.DEMO_DIR, names, shallow=False)[0] == names


def test_nothing_comes_from_the_training_split(shipped_manifest):
  """No cloze sentence, context + answer or perplexity paragraph occurs in the training
  split; every item is well formed and its sizes are those the manifest documents."""
  train = "\n".join(" ".join(p.split()) for p in sources.demo_corpus("train"))
  items = _read(demo.DEMO_DIR, demo.CLOZE_FILE)
  docs = _read(demo.DEMO_DIR, demo.PERPLEXITY_FILE)
  for item in items:
    assert item["sentence"] not in train
    assert item["context"] + item["choices"][item["label"]] not in train
    assert len(item["choices"]) == demo.NUM_CHOICES == len(set(item["choices"]))
    assert item["sentence"] in item["context"] + item["choices"][item["label"]]
  for doc in docs:
    assert " ".join(doc["text"].split()) not in train
  assert (len(items), len(docs)) == (shipped_manifest["cloze_items"],
                                     shipped_manifest["perplexity_docs"])
  assert sum(shipped_manifest["cloze_kinds"].values()) == len(items)


def test_paper_suite_files_are_rendered_from_the_table(tmp_path):
  written = suites.write_groups(str(tmp_path))
  assert [os.path.basename(p) for p in written] == ["paper_general.yaml", "paper_biomed.yaml"]
  for path in written:
    with open(path, encoding="utf-8") as f, open(os.path.join(
        suites.PAPER_DIR, os.path.basename(path)), encoding="utf-8") as g:
      assert f.read() == g.read()
  assert suites.PAPER_SUITES["paper_general"].lm_eval_tasks[:2] == ["arc_easy", "arc_challenge"]
  assert suites.PAPER_SUITES["paper_finance"].needs_adaptllm == [
      "ConvFinQA", "Headline", "FiQA SA", "FPB", "NER"]
