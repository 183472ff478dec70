"""The shipped offline lm-eval tasks: the demo generator and the paper suites."""

import json
import os

import pytest

pytest.importorskip("lm_eval")

from instruct_pt.data import sources  # pylint: disable=wrong-import-position
from instruct_pt.evaluation.tasks import adaptllm, demo, suites  # pylint: disable=wrong-import-position


def _read(directory, name):
  with open(os.path.join(directory, name), encoding="utf-8") as f:
    return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def shipped_manifest():
  with open(os.path.join(demo.DEMO_DIR, demo.MANIFEST_FILE), encoding="utf-8") as f:
    return json.load(f)


def test_items_are_well_formed_and_nothing_comes_from_the_training_split(shipped_manifest):
  """No item sentence, cloze context + answer or passage occurs in the training split (the
  near-duplicate check is tests/test_heldout.py's); every item is well formed and the sizes
  are those the manifest documents."""
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


def test_reading_comprehension_items(shipped_manifest):
  """Open-book, one-shot and closed-book prompts ask the same question; the passage holds
  the gold term and no distractor; the one-shot example is another passage's item, solved;
  the wording is none of the synthesis template pool's."""
  from instruct_pt.synthesis import template_pools  # pylint: disable=import-outside-toplevel
  items = _read(demo.DEMO_DIR, demo.RC_FILE)
  passages = {d["paragraph"]: d["text"] for d in _read(demo.DEMO_DIR, demo.PERPLEXITY_FILE)}
  assert len(items) == shipped_manifest["rc_items"] >= 30
  assert len({i["paragraph"] for i in items}) == shipped_manifest["rc_passages"]
  for item in items:
    passage = passages[item["paragraph"]]
    gold = item["choices"][item["label"]].strip()
    assert item["term"] == gold and gold in " ".join(passage.split())
    assert not any(c.strip() in " ".join(passage.split())
                   for i, c in enumerate(item["choices"]) if i != item["label"])
    assert item["open_book"] == demo.RC_PASSAGE.format(passage=passage) + item["closed_book"]
    assert item["closed_book"] == demo.RC_QUESTION.format(
        gapped=item["sentence"].replace(gold, demo.RC_GAP))
    shot, question = item["one_shot"].split("\n\n" + demo.RC_PASSAGE.split("{")[0], 1)
    assert demo.RC_PASSAGE.split("{")[0] + question == item["open_book"]
    assert shot.endswith(".") and item["open_book"] not in shot
  pool_text = "\n".join(str(value) for name, value in vars(template_pools).items()
                        if name.isupper())
  for phrase in ("One term was removed", "The removed term is", "From the Python reference"):
    assert phrase not in pool_text


def test_paper_suite_and_adaptllm_task_files_are_rendered_from_the_tables(tmp_path):
  written = suites.write_groups(str(tmp_path / "paper"))
  assert [os.path.basename(p) for p in written] == [
      "paper_general.yaml", "paper_biomed.yaml", "paper_finance.yaml", "adaptllm_law.yaml"]
  tasks = adaptllm.write_tasks(str(tmp_path / "adaptllm"))
  assert len(tasks) == 13
  for path, shipped in [(p, suites.PAPER_DIR) for p in written] + [
      (p, adaptllm.ADAPTLLM_DIR) for p in tasks]:
    with open(path, encoding="utf-8") as f, open(os.path.join(
        shipped, os.path.basename(path)), encoding="utf-8") as g:
      assert f.read() == g.read()
  assert suites.PAPER_SUITES["paper_general"].lm_eval_tasks[:2] == ["arc_easy", "arc_challenge"]
  assert suites.PAPER_SUITES["paper_finance"].lm_eval_tasks == [
      "adaptllm_convfinqa", "adaptllm_headline", "adaptllm_fiqa_sa", "adaptllm_fpb",
      "adaptllm_ner"]
