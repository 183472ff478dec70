"""The synthesizer format, SeqIO tasks and mixtures, the paper's recipes, demo data, inspect.

Expectations are derived independently of the code under test: format strings are written by
hand from the official template, token ids are computed from the byte vocabulary's definition
(id = byte + 3) or by encoding hand-cut pieces, and mixture rates are recomputed from the
paper's figures.
"""

import json
import math
import os

import pytest

seqio = pytest.importorskip("seqio")
tf = pytest.importorskip("tensorflow")

# pylint: disable=wrong-import-position
from instruct_pt.data import inspect, sources, tasks, tokenizer as tokenizer_lib
from instruct_pt.data.seqio_vocab import SeqIOVocabulary
from instruct_pt.model import readers
from instruct_pt.data import formats

BYTES = SeqIOVocabulary(tokenizer_lib.ByteTokenizer())
BOS, EOS = 1, 2
LENGTHS = {"targets": 64, "loss_weights": 64}


def _ids(text):
  """Byte-vocabulary ids of `text`, by definition."""
  return [b + 3 for b in text.encode("utf-8")]


def _source(**features):
  """An in-memory source with the given string features (lists of equal length)."""
  def dataset_fn(split, shuffle_files, seed=None):
    del split, shuffle_files, seed
    return tf.data.Dataset.from_tensor_slices({k: tf.constant(v, tf.string)
                                               for k, v in features.items()})
  return seqio.FunctionDataSource(dataset_fn, splits=["train"])


def _examples(name, lengths=None):
  task = seqio.get_mixture_or_task(name)
  return list(task.get_dataset(lengths, split="train", shuffle=False).as_numpy_iterator())


@pytest.fixture(autouse=True)
def clean_registries():
  """Removes the tasks and mixtures a test registers."""
  tasks_before = set(seqio.TaskRegistry.names())
  mixtures_before = set(seqio.MixtureRegistry.names())
  yield
  for name in set(seqio.MixtureRegistry.names()) - mixtures_before:
    seqio.MixtureRegistry.remove(name)
  for name in set(seqio.TaskRegistry.names()) - tasks_before:
    seqio.TaskRegistry.remove(name)


# synthesizer_sft and instructions ---------------------------------------------------------------

@pytest.fixture(scope="module", params=["byte", "smollm2"])
def any_vocab(request):
  """The byte vocabulary and a byte-level BPE one (SmolLM2's), where merges across segment
  boundaries would show."""
  if request.param == "byte":
    return BYTES
  return SeqIOVocabulary(tokenizer_lib.gguf_tokenizer(readers.resolve_gguf("smollm2")))


def _sft_records():
  single = {"id": "one", "context": "The sky is blue.",
            "pairs": [{"question": "What colour is the sky?", "answer": "Blue."},
                      {"question": "Is it green?", "answer": "No."}]}
  multi = {"id": "two", "rounds": [
      {"context": "Cats purr.", "pairs": [{"question": "Do cats purr?", "answer": "Yes."}]},
      {"context": "Dogs bark.", "pairs": [{"question": "What do dogs do?", "answer": "Bark."},
                                          {"question": "Loudly?", "answer": "Often."}]}]}
  return [single, multi]


def test_synthesizer_sft_loss_covers_exactly_the_pairs(any_vocab):
  """Targets are each round's text run (context and pairs, one string) tokenized whole, EOS
  after it and BOS before the next (the first <s> is the converter's BOS input, not a target);
  the loss falls on the pairs text and each EOS, and the weighted tokens decode to exactly the
  pairs."""
  records = _sft_records()
  tasks.register_task("test_sft", "synthesizer_sft",
                      _source(text=[json.dumps(r) for r in records]), any_vocab)
  examples = _examples("test_sft")
  assert len(examples) == 2
  enc, eos, bos = any_vocab.encode, any_vocab.eos_id, any_vocab.bos_id
  pairs_1 = ("<QUE> What colour is the sky? <ANS> Blue. </END>\n\n"
             "<QUE> Is it green? <ANS> No. </END>")
  run_a = " <CON> Cats purr. </CON>\n\n<QUE> Do cats purr? <ANS> Yes. </END>"
  run_b = (" <CON> Dogs bark. </CON>\n\n<QUE> What do dogs do? <ANS> Bark. </END>\n\n"
           "<QUE> Loudly? <ANS> Often. </END>")
  assert examples[0]["targets"].tolist() == enc(" <CON> The sky is blue. </CON>\n\n"
                                                + pairs_1) + [eos]
  assert examples[1]["targets"].tolist() == enc(run_a) + [eos, bos] + enc(run_b) + [eos]
  for example in examples:
    targets, weights = example["targets"].tolist(), example["loss_weights"].tolist()
    assert targets[-1] == eos and weights[-1] == 1 and weights[0] == 0
    assert all(w == 0 for t, w in zip(targets, weights) if t == bos)
  first = examples[0]
  weighted = first["targets"][first["loss_weights"] == 1].tolist()
  assert weighted[-1] == eos and any_vocab.tokenizer.decode(weighted[:-1]) == pairs_1


def test_synthesizer_sft_ids_equal_the_whole_string_tokenization(prepend_tokenizer):
  """With a prepend-normalizer tokenizer, a training example's ids are the official string's
  (`<s>` / `</s>` as special tokens), tokenized whole, so inference prompts of the same text
  (tested in test_formats) get the ids the synthesizer was trained on."""
  tokenizer, raw = prepend_tokenizer
  record = _sft_records()[1]
  tasks.register_task("test_sft_prepend", "synthesizer_sft",
                      _source(text=[json.dumps(record)]), SeqIOVocabulary(tokenizer))
  (example,) = _examples("test_sft_prepend")
  rounds = tasks.synthesizer_rounds(record)
  whole = raw.encode(formats.join(formats.format_pieces(rounds)), add_special_tokens=False).ids
  assert whole[0] == tokenizer.bos_id
  assert example["targets"].tolist() == whole[1:]


def test_released_collection_layout_becomes_few_shot_examples(tmp_path):
  """Files in the released layout (`<dataset>/shard/*.jsonl` of {context, QA_list: [{Q, A}],
  QA_type, rc_name}) register as a synthesizer_sft task with rounds_per_example=2: consecutive
  records of one dataset join into one multi-round example, never across datasets, and the
  text is the official few-shot string."""
  from instruct_pt.data import registry  # pylint: disable=import-outside-toplevel
  rows = {"squad": [("Paris is the capital of France.",
                     [("What is the capital of France?", "Paris"),
                      ("Is Paris in France?\nOptions:\n- yes\n- no", "yes")]),
                    ("Rome is in Italy.", [("Where is Rome?", "Italy")]),
                    ("Oslo is in Norway.", [("Where is Oslo?", "Norway")])],
          "race": [("A story.", [("What is it?", "A story")])]}
  for dataset, records in rows.items():
    (tmp_path / dataset / "shard").mkdir(parents=True)
    (tmp_path / dataset / "shard" / "00000.jsonl").write_text("".join(
        json.dumps({"context": c, "QA_list": [{"Q": q, "A": a} for q, a in qa],
                    "QA_type": "free", "rc_name": dataset}) + "\n" for c, qa in records))
  registry.register(registry.DataConfig(tasks={"collection": {
      "kind": "synthesizer_sft", "layout": "synthesizer_collection",
      "pattern": str(tmp_path / "*" / "shard" / "*.jsonl"), "rounds_per_example": 2}}), BYTES)
  texts = sorted("<s>" + _decoded_with_specials(e["targets"]) for e in _examples("collection"))
  assert texts == sorted([
      "<s> <CON> A story. </CON>\n\n<QUE> What is it? <ANS> A story </END></s>",
      "<s> <CON> Paris is the capital of France. </CON>\n\n<QUE> What is the capital of "
      "France? <ANS> Paris </END>\n\n<QUE> Is Paris in France?\nOptions:\n- yes\n- no <ANS> yes "
      "</END></s><s> <CON> Rome is in Italy. </CON>\n\n<QUE> Where is Rome? <ANS> Italy </END>"
      "</s>",
      "<s> <CON> Oslo is in Norway. </CON>\n\n<QUE> Where is Oslo? <ANS> Norway </END></s>"])


def _decoded_with_specials(ids):
  """Byte ids as text, BOS / EOS written `<s>` / `</s>`."""
  specials = {BOS: b"<s>", EOS: b"</s>"}
  data = b"".join(specials[i] if i in specials else bytes([i - 3]) for i in map(int, ids))
  return data.decode("utf-8")


def test_synthesizer_sft_bad_record_names_it():
  """A record without pairs fails with a message naming its id and round."""
  record = {"id": "broken-7", "context": "c", "pairs": []}
  tasks.register_task("test_sft_bad", "synthesizer_sft", _source(text=[json.dumps(record)]),
                      BYTES)
  with pytest.raises(tf.errors.InvalidArgumentError, match="'broken-7', round 0"):
    _examples("test_sft_bad")


def test_instructions_loss_on_response_and_eos_only():
  """targets = prompt + blank line + response + EOS (byte ids by definition); weight 1 exactly
  on the response bytes and EOS."""
  records = [{"prompt": "Add 2 and 3.", "response": "5"},
             {"prompt": "Say hi", "response": "Hi there!", "extra": 1}]
  tasks.register_task("test_instructions", "instructions",
                      _source(text=[json.dumps(r) for r in records]), BYTES)
  for example, record in zip(_examples("test_instructions"), records):
    prompt, response = _ids(record["prompt"] + "\n\n"), _ids(record["response"])
    assert example["targets"].tolist() == prompt + response + [EOS]
    assert example["loss_weights"].tolist() == [0] * len(prompt) + [1] * (len(response) + 1)


# raw_lm ---------------------------------------------------------------------------------------

def test_raw_lm_splits_long_documents_without_loss():
  """A 1000-byte document at length 64 becomes 16 chunks (15 full, 1 of 41) whose
  concatenation is the document's ids + EOS; a short one stays whole; all weights are 1."""
  long_doc = "".join(f"word{i:03d} " for i in range(125))  # 1000 bytes
  docs = ["short one", long_doc]
  tasks.register_task("test_raw", "raw_lm", _source(text=docs), BYTES)
  chunks = _examples("test_raw", LENGTHS)
  assert [len(c["targets"]) for c in chunks] == [10] + [64] * 15 + [41]
  assert chunks[0]["targets"].tolist() == _ids("short one") + [EOS]
  rebuilt = sum((c["targets"].tolist() for c in chunks[1:]), [])
  assert rebuilt == _ids(long_doc) + [EOS]
  assert all(c["loss_weights"].tolist() == [1] * len(c["targets"]) for c in chunks)
  # Without a sequence length nothing is split.
  assert [len(e["targets"]) for e in _examples("test_raw")] == [10, 1001]


def test_register_task_replaces_and_validates():
  """Registering a name again replaces the task; unknown kinds, bad names and names of
  mixtures are refused with the culprit named."""
  tasks.register_task("test_replace", "raw_lm", _source(text=["first"]), BYTES)
  tasks.register_task("test_replace", "raw_lm", _source(text=["second"]), BYTES)
  assert [e["targets"].tolist() for e in _examples("test_replace")] == [_ids("second") + [EOS]]
  with pytest.raises(ValueError, match="'raw'"):
    tasks.register_task("test_kind", "raw", _source(text=["x"]), BYTES)
  with pytest.raises(ValueError, match="bad name"):
    tasks.register_task("bad name", "raw_lm", _source(text=["x"]), BYTES)
  tasks.register_mixture("test_replace_mix", {"test_replace": 1})
  with pytest.raises(ValueError, match="test_replace_mix"):
    tasks.register_task("test_replace_mix", "raw_lm", _source(text=["x"]), BYTES)


# Mixtures -------------------------------------------------------------------------------------

def test_mixture_rates_are_honoured():
  """Rates 1 : 3 over 2,000 mixed examples: the share of the second task is 0.75 within 4
  binomial standard deviations (4 * sqrt(2000 * 0.75 * 0.25) = 77.5 examples)."""
  tasks.register_task("test_mix_a", "raw_lm", _source(text=[f"a{i}" for i in range(50)]), BYTES)
  tasks.register_task("test_mix_b", "raw_lm", _source(text=[f"b{i}" for i in range(70)]), BYTES)
  mixture = tasks.register_mixture("test_mix", {"test_mix_a": 1, "test_mix_b": 3.0})
  dataset = mixture.get_dataset(LENGTHS, split="train", shuffle=True, seed=3, num_epochs=None)
  first_bytes = [int(e["targets"][0]) for e in dataset.take(2000).as_numpy_iterator()]
  from_b = sum(b == _ids("b")[0] for b in first_bytes)
  assert sum(b == _ids("a")[0] for b in first_bytes) + from_b == 2000
  assert abs(from_b - 1500) <= 4 * math.sqrt(2000 * 0.75 * 0.25), from_b


def test_bad_mixtures_are_refused():
  """Unknown tasks, non-positive or non-numeric rates, no tasks and task names are refused,
  each error naming the culprit."""
  tasks.register_task("test_ok", "raw_lm", _source(text=["x"]), BYTES)
  with pytest.raises(ValueError, match="'test_missing'"):
    tasks.register_mixture("test_bad", {"test_ok": 1, "test_missing": 1})
  for rate in (0, -1.0, float("nan"), float("inf"), "2", True):
    with pytest.raises(ValueError, match="'test_ok'"):
      tasks.register_mixture("test_bad", {"test_ok": rate})
  with pytest.raises(ValueError, match="no tasks"):
    tasks.register_mixture("test_bad", {})
  with pytest.raises(ValueError, match="a task has that name"):
    tasks.register_mixture("test_ok", {"test_ok": 1})
  assert "test_bad" not in seqio.MixtureRegistry.names()


def test_recipes_rates_follow_the_papers_arithmetic():
  """Pretrain: raw 1 - 1/5, augmented (1/5) / M with M = 2, synthesizer 4 x (0.2B / 100B) x
  (100B / 200M tokens per raw text) / (0.2B / 249k tokens per tuning example). Domain: 1:1."""
  for name in ("test_r", "test_a", "test_s", "test_i"):
    tasks.register_task(name, "raw_lm", _source(text=["x"]), BYTES)
  mixture = tasks.register_pretrain_recipe("test_pt", "test_r", "test_a", "test_s")
  rates = {t.name: mixture.get_rate(t) for t in mixture.tasks}
  synthesizer = 4 * (0.2 / 100) * 500 / (0.2e9 / 249e3)
  assert rates == pytest.approx({"test_r": 0.8, "test_a": 0.1, "test_s": synthesizer})
  assert synthesizer == pytest.approx(0.00498, abs=1e-5)
  mixture = tasks.register_pretrain_recipe(
      "test_pt", "test_r", "test_a", "test_s", augmented_fraction=0.5, synthesizer_repeats=1,
      synthesizer_to_raw_token_ratio=0.01, texts_per_augmented_example=1,
      raw_tokens_per_example=100, synthesizer_tokens_per_example=200)
  rates = {t.name: mixture.get_rate(t) for t in mixture.tasks}
  assert rates == pytest.approx({"test_r": 0.5, "test_a": 0.5, "test_s": 0.005})
  domain = tasks.register_domain_recipe("test_cpt", "test_a", "test_i")
  assert {t.name: domain.get_rate(t) for t in domain.tasks} == {"test_a": 1.0, "test_i": 1.0}


def test_partitioned_tasks():
  """One task per partition, named prefix_partition, each reading its own source; a partition
  name that makes an invalid task name is refused."""
  names = tasks.register_partitioned_tasks(
      "test_part", "raw_lm", {"bio": _source(text=["b"]), "fin": _source(text=["f"])}, BYTES)
  assert names == ["test_part_bio", "test_part_fin"]
  assert _examples("test_part_fin")[0]["targets"].tolist() == _ids("f") + [EOS]
  with pytest.raises(ValueError, match="'a b'"):
    tasks.register_partitioned_tasks("test_part", "raw_lm", {"a b": _source(text=["x"])}, BYTES)


# Demo data and inspect ------------------------------------------------------------------------

def _demo_records(filename):
  with open(os.path.join(tasks.DEMO_DATA_DIR, filename), encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def test_shipped_demo_files():
  """Each shipped file holds about 20 records; the first says it is hand-made; augmented texts
  and synthesizer contexts are paragraphs of the demo corpus (most of them: another Python
  version may have edited some of its documentation); some synthesizer records are
  multi-round."""
  corpus = set(sources.demo_corpus("train"))
  augmented = _demo_records("instruct_augmented.jsonl")
  sft = _demo_records("synthesizer_sft.jsonl")
  instructions = _demo_records("instructions.jsonl")
  for records in (augmented, sft, instructions):
    assert 18 <= len(records) <= 30
    assert "hand" in records[0]["note"].lower()
  from_corpus = [any(p in r["text"] for p in corpus) for r in augmented]
  assert sum(from_corpus) >= 0.8 * len(augmented), from_corpus
  rounds = [r.get("rounds", [r]) for r in sft]
  assert sum(len(r) > 1 for r in rounds) >= 3
  blocks = sum(rounds, [])
  assert all(block["pairs"] for block in blocks)
  assert sum(block["context"] in corpus for block in blocks) >= 0.8 * len(blocks)
  assert all(r["prompt"] and r["response"] for r in instructions)


def test_general_instructions_carry_no_domain_text():
  """The demo's general instructions (mixed into Instruct PT only) say nothing about the demo
  domain: no mention of Python or code, and no run of five words from the demo corpus."""
  corpus_words = [" ".join(p.lower().split()) for p in sources.demo_corpus("train")]
  corpus_text = "\n".join(corpus_words)
  for record in _demo_records("instructions.jsonl"):
    text = " ".join((record["prompt"] + " " + record["response"]).lower().split())
    assert not any(word in text for word in ("python", "def ", "function", "tuple", "sql")), record
    words = text.split()
    shared = [" ".join(words[i:i + 5]) for i in range(len(words) - 4)
              if " ".join(words[i:i + 5]) in corpus_text]
    assert not shared, (record["id"], shared)


def test_demo_tasks_and_inspect():
  """register_demo_tasks registers the four tasks and two mixtures (twice without error);
  inspect shows decoded examples with the mask marker, per-task counts for every task of the
  mixture and the stand-in line."""
  names = tasks.register_demo_tasks(BYTES)
  demo_raw = seqio.TaskRegistry.get("demo_raw")
  assert tasks.register_demo_tasks(BYTES) == names
  assert seqio.TaskRegistry.get("demo_raw") is demo_raw  # same vocabulary: kept as it is
  tasks.register_demo_tasks(SeqIOVocabulary(tokenizer_lib.ByteTokenizer()))
  assert seqio.TaskRegistry.get("demo_raw") is not demo_raw  # another one: replaced
  tasks.register_demo_tasks(BYTES)
  assert names == ["demo_raw", "demo_instruct_augmented", "demo_synthesizer_sft",
                   "demo_instructions", "demo_instruct_pt", "demo_domain_cpt"]
  assert {t.name for t in seqio.get_mixture_or_task("demo_domain_cpt").tasks} == {
      "demo_instruct_augmented", "demo_instructions"}
  report = inspect.report("demo_instruct_pt", BYTES, 512, num_examples=2, sample_size=30)
  lines = report.splitlines()
  rows = {}
  for task in ("demo_raw", "demo_instruct_augmented", "demo_synthesizer_sft"):
    row = next(line for line in lines if line.startswith(task + " "))
    assert len(row.split()) == 10, row  # name, rate, 3 counts, tok/ex, trunc, 3 shares
    rows[task] = [float(v) for v in row.split()[1:]]
  assert rows["demo_raw"][2] == rows["demo_raw"][3]  # raw text: every token bears loss
  assert rows["demo_synthesizer_sft"][3] < rows["demo_synthesizer_sft"][2]  # pairs only
  for share in (6, 7, 8):  # the shares of examples, tokens and loss tokens add up to 100%
    assert abs(sum(row[share] for row in rows.values()) - 100) < 0.05
  assert sum(line.startswith("--- example") for line in lines) == 2
  assert "</s>" in report  # decoded raw examples end with EOS
  assert any(p.splitlines()[0] in report for p in sources.demo_corpus("train"))
  assert "demo_synthesizer_sft <- synthesizer_sft.jsonl" in report
  sft_report = inspect.report("demo_synthesizer_sft", BYTES, 2048, num_examples=1)
  assert "⟦ <CON> " in sft_report and "</CON>\n\n⟧<QUE> " in sft_report


def test_inspect_counts_table_known_answer():
  """Hand-made counts: task a (rate 3) 2 examples, 10 tokens, 4 loss tokens; task b (rate 1)
  1 example, 30 tokens, all bearing loss, truncated. Per example a 5 / 2, b 30 / 30; rate-
  weighted totals 3 x 5 + 30 = 45 tokens and 3 x 2 + 30 = 36 loss tokens: examples 75 / 25%,
  tokens 15 / 45 = 33.33% and 66.67%, loss tokens 6 / 36 = 16.67% and 83.33%."""
  counts = {"a": dict(examples=2, tokens=10, loss_tokens=4, truncated=0),
            "b": dict(examples=1, tokens=30, loss_tokens=30, truncated=1)}
  table = inspect._counts_table  # pylint: disable=protected-access
  lines = table(counts, {"a": 3.0, "b": 1.0}, 64, 2)
  rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
  assert rows["a"] == ["3", "2", "10", "4", "5.0", "0", "75.00", "33.33", "16.67"]
  assert rows["b"] == ["1", "1", "30", "30", "30.0", "1", "25.00", "66.67", "83.33"]


def test_replacing_a_task_refreshes_the_mixtures_over_it():
  """Registering a task again (e.g. a second run in one process over other files) leaves no
  mixture reading the old one, nested mixtures included; registering twice is harmless."""
  tasks.register_task("test_refresh_a", "raw_lm", _source(text=["first version"]), BYTES)
  tasks.register_task("test_refresh_b", "raw_lm", _source(text=["other task"]), BYTES)
  tasks.register_mixture("test_refresh_mix", {"test_refresh_a": 1.0, "test_refresh_b": 2.0})
  tasks.register_mixture("test_refresh_outer", {"test_refresh_mix": 1.0})
  tasks.register_task("test_refresh_a", "raw_lm", _source(text=["second version"]), BYTES)
  current = seqio.TaskRegistry.get("test_refresh_a")
  for mixture in ("test_refresh_mix", "test_refresh_outer"):
    held = {t.name: t for t in seqio.get_mixture_or_task(mixture).tasks}
    assert held["test_refresh_a"] is current, mixture
  assert seqio.get_mixture_or_task("test_refresh_mix").get_rate(current) == 1.0
