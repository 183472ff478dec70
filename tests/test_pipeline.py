"""The synthesis pipeline: shards, rounds, exactly-once resume, statistics, bad input."""

import json
import os
import subprocess
import sys

import pytest

from instruct_pt import run_dir
from instruct_pt.data import tokenizer as tokenizer_lib
from instruct_pt.synthesis import pipeline

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BYTES = tokenizer_lib.ByteTokenizer()


class FakeEngine:
  """Stands in for `generate.Engine`: answers every prompt with two well-formed pairs about
  the prompt's last text and one malformed pair, and records what it was asked."""

  def __init__(self, fail_on_call=None):
    self.calls = []
    self.fail_on_call = fail_on_call

  def generate(self, prompts, sampling, seed=0):
    del sampling, seed
    self.calls.append(prompts)
    if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
      raise KeyboardInterrupt("simulated kill")
    outputs = []
    for ids in prompts:
      text = BYTES.decode(ids).rsplit("<CON>", 1)[-1].split("</CON>")[0].strip()
      words = text.split()
      outputs.append(BYTES.encode(
          f"<QUE> What word starts text number {words[1]} of the corpus collection here? <ANS> "
          f"{words[0]} </END>\n\n"
          f"<QUE> How many words does it have? <ANS> {len(words)} </END>\n\n"
          f"<QUE> broken pair without an answer </END>\n\n<QUE> cut off"))
    return outputs


def _config(tmp_path, **overrides):
  corpus = tmp_path / "corpus.jsonl"
  if not corpus.exists():
    corpus.write_text("".join(json.dumps({"text": f"Document {i} talks about topic {i} in "
                                                  f"several plain words."}) + "\n"
                              for i in range(10)))
  settings = dict(input_pattern=str(corpus), documents_per_shard=4, num_rounds=2,
                  max_len=2048, max_new_tokens=256, write_tfrecord=False)
  settings.update(overrides)
  return pipeline.SynthesisConfig(**settings)


def _run(tmp_path, config, engine=None):
  converter = pipeline.ShardConverter(engine or FakeEngine(), BYTES, config)
  return pipeline.run(config, converter, str(tmp_path / "out"), show_progress=False)


def _outputs(run_dir):
  records = []
  for name in sorted(os.listdir(run_dir)):
    if name.endswith(".jsonl"):
      with open(os.path.join(run_dir, name), encoding="utf-8") as f:
        records += [json.loads(line) for line in f]
  return records


def test_every_document_appears_once_with_its_pairs(tmp_path):
  """10 documents, 4 per shard, 2 rounds: 3 shards; each input id in exactly one record; a
  record holds the two linked documents of a chain in one templatified text."""
  stats = _run(tmp_path, _config(tmp_path))
  records = _outputs(tmp_path / "out")
  ids = [i for r in records for i in r["source_ids"]]
  assert sorted(ids) == sorted(f"{tmp_path / 'corpus.jsonl'}:{n}" for n in range(1, 11))
  assert stats["shards"] == 3 and stats["documents"] == 10
  assert stats["pairs"] == 20 and stats["malformed_pairs"] == 10
  assert stats["pairs_per_document"] == 2.0
  assert stats["parse_failure_rate"] == 10 / 30  # one malformed pair of three per document
  assert sum(stats["categories"].values()) == 20
  two_doc = [r for r in records if len(r["source_ids"]) == 2]
  assert two_doc, records
  for record in records:
    for pairs in record["pairs"]:
      for pair in pairs:
        assert pair["answer"] in record["text"]


def test_skipped_input_records_are_counted_in_the_stats(tmp_path):
  """With on_error='skip', bad lines are skipped and their counts reach each shard's done
  marker and stats.json (3 bad lines around 6 good documents in shards of 4)."""
  corpus = tmp_path / "bad.jsonl"
  good = [json.dumps({"text": f"Document {i} is a fine document of words."}) for i in range(6)]
  corpus.write_text("\n".join(good[:2] + ["not json", '{"body": 1}'] + good[2:5] + ["[1]"]
                              + good[5:]) + "\n")
  stats = _run(tmp_path, _config(tmp_path, input_pattern=str(corpus), on_error="skip"))
  assert stats["documents"] == 6 and stats["shards"] == 2
  assert stats["skipped_not_json"] == 1 and stats["skipped_missing_field"] == 1
  assert stats["skipped_not_object"] == 1
  first = json.loads(run_dir.RunDir(tmp_path / "out").shard(0, ".done.json").read_text())
  assert first["skipped_not_json"] == 1 and "skipped_not_object" not in first


class GroundlessEngine(FakeEngine):
  """Round 1 answers with an extractive question whose answer is not in the text (our filter
  drops it; the official pipeline keeps it); later rounds answer from the text."""

  def generate(self, prompts, sampling=None, seed=0):
    if self.calls:
      return super().generate(prompts, sampling, seed)
    self.calls.append(list(prompts))
    return [BYTES.encode("<QUE> Extract the city named in the text. <ANS> Atlantis </END>")
            for _ in prompts]


@pytest.mark.parametrize("mode", ["official", "filtered"])
def test_chains_follow_parsed_pairs_officially_and_kept_pairs_when_filtered(tmp_path, mode):
  """Official: a round whose parsed pair our filter would drop still continues its chain (the
  next prompt holds it, the two documents make one text). Filtered: the pair is dropped, the
  chain restarts, and the first document is written raw, on its own."""
  engine = GroundlessEngine()
  stats = _run(tmp_path, _config(tmp_path, max_documents=4, post_processing=mode), engine)
  second_prompt = BYTES.decode(engine.calls[1][0])
  records = _outputs(tmp_path / "out")
  assert stats["post_processing"] == mode
  if mode == "official":
    assert "Atlantis" in second_prompt and second_prompt.count("<CON>") == 2
    assert sorted(len(r["source_ids"]) for r in records) == [2, 2]
    assert stats["chained_documents"] == 2
  else:
    assert "Atlantis" not in second_prompt and second_prompt.count("<CON>") == 1
    assert sorted(len(r["source_ids"]) for r in records) == [1, 1, 1, 1]
    raw = [r for r in records if not r["pairs"][0]]
    assert len(raw) == 2 and all(r["text"].startswith("Document ") for r in raw)
    assert stats["filtered_ungrounded"] == 2


def test_second_round_prompts_carry_the_first_round(tmp_path):
  """Round 2 prompts start with the round-1 text and its generated pairs (multi-round)."""
  engine = FakeEngine()
  _run(tmp_path, _config(tmp_path, max_documents=4), engine)
  first_round, second_round = engine.calls
  assert len(first_round) == 2 and len(second_round) == 2
  prompt = BYTES.decode(second_round[0])
  assert prompt.count("<CON>") == 2 and "<ANS> Document </END>" in prompt
  assert "topic 0" in prompt and "topic 2" in prompt  # round 2 continues document 0's chain


def test_rerun_does_nothing_and_a_deleted_shard_is_regenerated(tmp_path):
  """Re-running skips done shards; deleting shard 1 regenerates exactly it, identically."""
  config = _config(tmp_path)
  _run(tmp_path, config)
  out = tmp_path / "out"
  before = {name: (out / name).read_text() for name in os.listdir(out)}
  engine = FakeEngine()
  _run(tmp_path, config, engine)
  assert engine.calls == []
  (out / "shard-00001.jsonl").unlink()
  engine = FakeEngine()
  _run(tmp_path, config, engine)
  assert len(engine.calls) == 2  # the two rounds of shard 1 only
  after = {name: (out / name).read_text() for name in os.listdir(out)}
  outputs = lambda files: {k: v for k, v in files.items() if k.endswith(".jsonl")}
  assert outputs(after) == outputs(before)


def test_interrupted_run_resumes_exactly_once(tmp_path):
  """Killed in shard 1: shard 0 is kept, nothing partial is visible, and the re-run's
  outputs equal an uninterrupted run's."""
  config = _config(tmp_path)
  with pytest.raises(KeyboardInterrupt):
    _run(tmp_path, config, FakeEngine(fail_on_call=3))
  out = tmp_path / "out"
  assert sorted(n for n in os.listdir(out) if n.startswith("shard")) == [
      "shard-00000.done.json", "shard-00000.jsonl"]
  _run(tmp_path, config)
  reference = tmp_path / "reference"
  reference.mkdir()
  _run(reference, _config(tmp_path))
  assert _outputs(out) == _outputs(reference / "out")


def test_bad_input_line_is_named_and_earlier_shards_are_kept(tmp_path):
  """A non-JSON line stops the run naming file and line; shards before it stay written."""
  corpus = tmp_path / "corpus.jsonl"
  lines = [json.dumps({"text": f"Document {i} has words."}) for i in range(9)]
  lines[6] = "{not json"
  corpus.write_text("\n".join(lines) + "\n")
  with pytest.raises(ValueError, match=r"corpus.jsonl:7: not a JSON line"):
    _run(tmp_path, _config(tmp_path, documents_per_shard=2))
  assert sorted(n for n in os.listdir(tmp_path / "out") if n.endswith(".jsonl")) == [
      "shard-00000.jsonl", "shard-00001.jsonl", "shard-00002.jsonl"]


def test_synthesize_command_on_embedded_defaults(tmp_path):
  """Acceptance (shortened outputs): SmolLM2 converts 8 demo documents into shards and
  stats.json; re-running does nothing new."""
  run = str(tmp_path / "run")
  args = [sys.executable, "-m", "instruct_pt.cli", "synthesize",
          "--gin_file=configs/synthesis/smollm2_cpu.gin", "--gin_param=synthesize.max_documents=8",
          "--gin_param=synthesize.max_new_tokens=24", f"--run_dir={run}"]
  first = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=False)
  assert first.returncode == 0, first.stderr
  with open(os.path.join(run, "stats.json"), encoding="utf-8") as f:
    stats = json.load(f)
  assert stats["documents"] == 8 and stats["shards"] == 1  # 8 documents per shard
  for key in ("pairs", "malformed_pairs", "generated_tokens", "tokens_per_second", "categories"):
    assert key in stats
  assert stats["generated_tokens"] > 0
  # The TFRecord copy is what an instruct_augmented_lm task can read: the same texts.
  from instruct_pt.data import sources  # pylint: disable=import-outside-toplevel
  texts = [r["text"] for r in sources.iter_records(sources.SourceSpec(
      os.path.join(run, "shard-0000*.tfrecord")))]
  with open(os.path.join(run, "shard-00000.jsonl"), encoding="utf-8") as f:
    records = [json.loads(line) for line in f]
  assert texts == [r["text"] for r in records]
  assert sorted(i for r in records for i in r["source_ids"]) == [f"demo:{n}" for n in range(8)]
  assert stats["post_processing"] == "official"
  mtimes = {n: os.path.getmtime(os.path.join(run, n)) for n in os.listdir(run)
            if n.startswith("shard")}
  second = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=False)
  assert second.returncode == 0, second.stderr
  assert {n: os.path.getmtime(os.path.join(run, n)) for n in mtimes} == mtimes


_HOST_SCRIPT = """
import json, os, sys
sys.path.insert(0, {tests!r})
from instruct_pt import parallel
parallel.maybe_initialize_distributed()
import jax
from test_pipeline import BYTES, FakeEngine, _config
from instruct_pt.synthesis import pipeline
config = _config(__import__("pathlib").Path({tmp!r}))
converter = pipeline.ShardConverter(FakeEngine(), BYTES, config)
converted = []
convert = converter.convert
converter.convert = lambda index, records: converted.append(index) or convert(index, records)
stats = pipeline.run(config, converter, {out!r}, show_progress=False)
print(json.dumps({{"process": jax.process_index(), "count": jax.process_count(),
                  "converted": converted, "shards": stats["shards"]}}))
"""


def test_two_processes_split_the_shards_exactly_once(tmp_path):
  """Two processes joined by jax.distributed (JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES /
  JAX_PROCESS_ID on CPU) convert disjoint shards (p, p + 2, ...), together every document
  once; the end barrier makes both, the one-shard process included, count all 3 shards, and
  stats.json counts all 10 documents."""
  import socket  # pylint: disable=import-outside-toplevel
  _config(tmp_path)  # writes the corpus
  with socket.socket() as sock:
    sock.bind(("localhost", 0))
    port = sock.getsockname()[1]
  script = _HOST_SCRIPT.format(tests=os.path.dirname(__file__), tmp=str(tmp_path),
                               out=str(tmp_path / "out"))
  hosts = []
  for process in range(2):
    env = dict(os.environ, JAX_COORDINATOR_ADDRESS=f"localhost:{port}", JAX_NUM_PROCESSES="2",
               JAX_PROCESS_ID=str(process), XLA_FLAGS="--xla_force_host_platform_device_count=1")
    hosts.append(subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  reports = []
  for host in hosts:
    stdout, stderr = host.communicate(timeout=300)
    assert host.returncode == 0, stderr
    reports.append(json.loads(stdout.strip().splitlines()[-1]))
  assert [(r["process"], r["count"]) for r in reports] == [(0, 2), (1, 2)]
  assert reports[0]["converted"] == [0, 2] and reports[1]["converted"] == [1]
  assert reports[0]["shards"] == reports[1]["shards"] == 3
  ids = [i for r in _outputs(tmp_path / "out") for i in r["source_ids"]]
  assert sorted(ids) == sorted(f"{tmp_path / 'corpus.jsonl'}:{n}" for n in range(1, 11))
  with open(run_dir.RunDir(tmp_path / "out").stats, encoding="utf-8") as f:
    assert json.load(f)["documents"] == 10
