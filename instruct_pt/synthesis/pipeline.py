"""Corpus shards -> instruction-augmented shards: resumable, exactly-once, multi-host.

The input documents (any `instruct_pt.data.sources.SourceSpec`) are cut into shards of
`documents_per_shard`. Each shard is converted on its own, so shards are the unit of progress:

1. plan the M rounds (`rounds.plan_rounds`): round r converts the r-th slice of the shard, and
   document i of round r continues the chain of document i of round r - 1;
2. per round, build each prompt with the real tokenizer (`rounds.RoundBuilder`), generate on
   the mesh (`generate.Engine`), parse the output (`formats.parse_pairs`), categorize the
   pairs (`categories`), and advance the chains;
3. templatify each chain into its pre-training texts (`templates.templatify`: one per group
   of linked entries, plus the raw texts of entries left without pairs).

`SynthesisConfig.post_processing` chooses what decides a chain and what is written:

* `"official"` (the default: the paper's released pipeline, so our corpora compare with the
  released ones): the official parsing, a chain continues when the previous round yielded at
  least one *parsed* pair, the history holds every parsed pair, and history that does not fit
  is dropped whole; nothing else is removed.
* `"filtered"` (our additions, none in the official code): stricter parsing, and the
  `filters.QualityFilter` (empty, over-long and ungrounded extractive answers, near-duplicate
  questions across the corpus) drops pairs before they decide the chain, enter the next
  prompt or reach the text; history that does not fit loses its oldest blocks first.

A shard is written to a temporary file and renamed (`shard-00012.jsonl`, plus a TFRecord
copy when TensorFlow is installed), then its statistics are written as the done marker
(`shard-00012.done.json`). A re-run skips shards that have both, so after any number of
interruptions every input document appears in exactly one output record; deleting a shard's
output makes the next run regenerate exactly that shard. Near-duplicate questions are filtered
across all earlier shards of the same process (done shards' kept questions are replayed into
the index on a re-run), so resumed output equals uninterrupted output. With several processes, process p
converts the shards whose index is p modulo the process count, each on a mesh of its own
devices (synthesis is data-parallel over hosts). `stats.json` sums the done markers.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import time
from typing import Any, Iterator, Optional, Sequence

import jax
from etils import epath
from jax.experimental import multihost_utils

from instruct_pt import progress, run_dir
from instruct_pt.data import sources
from instruct_pt.data import formats
from instruct_pt.synthesis import categories as categories_lib
from instruct_pt.synthesis import filters, recovery, rounds, templates
from instruct_pt.model.generate import Engine, SamplingConfig

POST_PROCESSING = ("official", "filtered")


@dataclasses.dataclass(frozen=True)
class SynthesisConfig:
  """Run-level synthesis settings (gin: `synthesize.*`).

  Attributes:
    model: "smollm2" (the bundled GGUF, converted on the fly) or a run directory with
      params/ (or checkpoints/), model_config.json and tokenizer/.
    input_pattern: documents to convert ("demo" for the embedded corpus).
    input_format: `SourceSpec.format`.
    text_field: `SourceSpec.text_field`.
    on_error: `SourceSpec.on_error` ("raise" or "skip").
    max_documents: convert only the first N documents (None for all).
    documents_per_shard: documents per output shard (a multiple of num_rounds keeps chains
      whole). Each round of a shard is one batch of documents_per_shard / num_rounds prompts:
      keep that at least num_slots, or slots decode nothing (a warning says so).
    num_rounds: M, rounds of the multi-round conversion (2 for general, 3 for domain data).
    max_len: longest prompt + output, in tokens (the paper: 4096).
    max_new_tokens: generated tokens per document at most (the paper: 400).
    temperature: 0 for greedy (the paper), else sampling.
    top_k: sampling top-k (0: off).
    top_p: sampling top-p (1.0: off).
    num_slots: sequences decoded at once.
    max_prefill_tokens: prompt tokens per prefill call at most (`Engine.max_prefill_tokens`):
      bounds a prefill's memory whatever the batch.
    post_processing: "official" (the paper's) or "filtered" (with our quality filters); see
      the module docstring.
    max_answer_chars: longer answers are filtered out (filtered mode).
    seed: sampling and template seed.
    write_tfrecord: also write each shard as TFRecord (needs TensorFlow).
  """

  model: str = "smollm2"
  input_pattern: str = "demo"
  input_format: str = "auto"
  text_field: str = "text"
  on_error: str = "raise"
  max_documents: Optional[int] = None
  documents_per_shard: int = 64
  num_rounds: int = 2
  max_len: int = 4096
  max_new_tokens: int = 400
  temperature: float = 0.0
  top_k: int = 0
  top_p: float = 1.0
  num_slots: int = 8
  max_prefill_tokens: int = 16384
  post_processing: str = "official"
  max_answer_chars: int = 2000
  seed: int = 0
  write_tfrecord: bool = True

  def __post_init__(self):
    if self.post_processing not in POST_PROCESSING:
      raise ValueError(f"synthesize.post_processing={self.post_processing!r}; choose one of "
                       f"{POST_PROCESSING}")
    if self.num_rounds < 1 or self.documents_per_shard < 1:
      raise ValueError(f"synthesize.num_rounds={self.num_rounds} and documents_per_shard="
                       f"{self.documents_per_shard} must be positive")
    prompts_per_round = -(-self.documents_per_shard // self.num_rounds)
    if prompts_per_round < self.num_slots:
      logging.warning("synthesize.documents_per_shard=%d with num_rounds=%d gives %d prompts per "
                      "round, fewer than num_slots=%d: %d slots stay idle",
                      self.documents_per_shard, self.num_rounds, prompts_per_round,
                      self.num_slots, self.num_slots - prompts_per_round)

  def sampling(self) -> SamplingConfig:
    """The decoding settings."""
    return SamplingConfig(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p,
                          max_new_tokens=self.max_new_tokens)

  def source_spec(self) -> sources.SourceSpec:
    """Where the input documents are."""
    return sources.SourceSpec(self.input_pattern, format=self.input_format,
                              text_field=self.text_field, on_error=self.on_error)


def is_done(run: run_dir.RunDir, index: int) -> bool:
  """Whether shard `index` has both its output and its done marker."""
  return run.shard(index).exists() and run.shard(index, ".done.json").exists()


def document_shards(config: SynthesisConfig
                    ) -> Iterator[tuple[int, list[dict], dict[str, int]]]:
  """(shard index, records, skipped input) of the input, `documents_per_shard` records each.

  Bad input records skipped (`on_error="skip"`) while reading a shard's records are counted
  with that shard, as `skipped_<reason>`, so `stats.json` sums them over the corpus.
  """
  source_stats = sources.SourceStats()
  counted: collections.Counter = collections.Counter()

  def skipped() -> dict[str, int]:
    delta = source_stats.skipped - counted
    counted.update(delta)
    return {f"skipped_{reason}": count for reason, count in delta.items()}

  records = sources.iter_records(config.source_spec(), stats=source_stats)
  shard, index = [], 0
  for number, record in enumerate(records):
    if config.max_documents is not None and number >= config.max_documents:
      break
    shard.append(record)
    if len(shard) == config.documents_per_shard:
      yield index, shard, skipped()
      shard, index = [], index + 1
  if shard:
    yield index, shard, skipped()


class ShardConverter:
  """Converts one shard of documents with a generation engine.

  Args:
    engine: the generation engine (model, mesh, slots, cache length).
    tokenizer: the model's tokenizer (`instruct_pt.data.tokenizer.Tokenizer`).
    config: synthesis settings.
  """

  def __init__(self, engine: Engine, tokenizer, config: SynthesisConfig):
    self.engine = engine
    self.tokenizer = tokenizer
    self.config = config
    self.filtered = config.post_processing == "filtered"
    self.builder = rounds.RoundBuilder(tokenizer, config.max_len, config.max_new_tokens,
                                       keep_partial_history=self.filtered)
    self.quality = filters.QualityFilter(max_answer_chars=config.max_answer_chars)

  def convert(self, index: int, records: Sequence[dict]) -> tuple[list[dict], dict[str, Any]]:
    """Output records (one per pre-training text) and statistics of shard `index`.

    Args:
      index: the shard index (seeds sampling and templates).
      records: the shard's input records (`text`, `id`).
    """
    stats = collections.Counter(documents=len(records))
    categories: collections.Counter = collections.Counter()
    prompt_chains: dict[int, list] = {}  # what the next round's prompt may inherit
    chains: dict[int, list] = {}         # per chain head: (doc, Entry, pair categories)
    plan = rounds.plan_rounds([r["id"] for r in records], self.config.num_rounds)
    truncated_before = self.builder.texts_truncated
    start = time.perf_counter()
    for round_index, documents in enumerate(plan):
      prompts, kept_chains = [], []
      for position, doc in enumerate(documents):
        chain = prompt_chains.get(plan[0][position], []) if round_index else []
        ids, chained, kept = self.builder.prompt(chain, records[doc]["text"])
        stats["chained_documents"] += int(chained)
        prompts.append(ids)
        kept_chains.append(kept)
      outputs = self.engine.generate(prompts, self.config.sampling(),
                                     seed=self.config.seed + 1000 * index + round_index)
      for position, (doc, kept, output) in enumerate(zip(documents, kept_chains, outputs)):
        text = records[doc]["text"]
        stats["generated_tokens"] += len(output)
        pairs, pair_categories = self._pairs(text, self.tokenizer.decode(output), stats)
        categories.update(pair_categories)
        head = plan[0][position]
        prompt_chains[head] = rounds.advance(kept, text, pairs)
        entry = templates.Entry(text, pairs, linked=bool(kept) and bool(pairs))
        chains.setdefault(head, []).append((doc, entry, pair_categories))
    stats["seconds"] = time.perf_counter() - start
    stats["texts_truncated"] = self.builder.texts_truncated - truncated_before
    records_out = []
    for head, chain in chains.items():
      entries = [entry for _, entry, _ in chain]
      for text in templates.templatify(entries, self.config.seed + 100003 * index + head,
                                       self.config.post_processing):
        members = [chain[i] for i in text.entries]
        records_out.append({
            "text": text.text,
            "source_ids": [records[doc]["id"] for doc, _, _ in members],
            "pairs": [[dataclasses.asdict(p) for p in entry.pairs] for _, entry, _ in members],
            "categories": [cats for _, _, cats in members],
        })
      stats["pairs_dropped_by_recovery"] += sum(
          recovery.recover_all(entry.pairs)[1] for entry in entries)
    stats["texts"] = len(records_out)
    return records_out, {**stats, "categories": dict(categories)}

  def _pairs(self, text: str, generated: str, stats: collections.Counter
             ) -> tuple[list[formats.QAPair], list[str]]:
    """The pairs of one output that decide the chain and reach the text, with categories."""
    parsed = formats.parse_pairs(generated, strict=self.filtered)
    stats.update(malformed_pairs=parsed.malformed, duplicate_pairs=parsed.duplicates)
    if self.filtered:
      pairs, dropped, pair_categories = self.quality.filter_pairs(text, parsed.pairs)
      stats.update({f"filtered_{reason}": count for reason, count in dropped.items()
                    if reason != "kept"})
    else:
      pairs = parsed.pairs
      pair_categories = [categories_lib.categorize(pair, text) for pair in pairs]
    stats.update(pairs=len(pairs), documents_without_pairs=int(not pairs))
    return pairs, pair_categories


def write_shard(run: run_dir.RunDir, index: int, records: list[dict], stats: dict,
                write_tfrecord: bool) -> None:
  """Writes shard `index` atomically (temporary file + rename), the done marker last."""
  _write_atomically(run.shard(index),
                    "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
  if write_tfrecord:
    _write_tfrecord(run.shard(index, ".tfrecord"), [r["text"] for r in records])
  _write_atomically(run.shard(index, ".done.json"), json.dumps(stats))


def _write_atomically(path: epath.Path, text: str) -> None:
  temporary = path.with_name(path.name + ".tmp")
  temporary.write_text(text)
  temporary.replace(path)


def _write_tfrecord(path: epath.Path, texts: list[str]) -> None:
  try:
    from instruct_pt.data.tf_runtime import tf  # pylint: disable=import-outside-toplevel
  except ImportError:
    logging.warning("TensorFlow is not installed: %s not written (the JSONL shard is)", path)
    return
  temporary = path.with_name(path.name + ".tmp")
  with tf.io.TFRecordWriter(str(temporary)) as writer:
    for text in texts:
      feature = {"text": tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[text.encode("utf-8")]))}
      writer.write(tf.train.Example(features=tf.train.Features(feature=feature))
                   .SerializeToString())
  temporary.replace(path)


def kept_questions(run: run_dir.RunDir, index: int) -> list[str]:
  """The questions of shard `index`'s output, in the order they were kept."""
  return [pair["question"] for line in run.shard(index).read_text().splitlines()
          for pairs in json.loads(line)["pairs"] for pair in pairs]


def parse_failure_rate(stats: dict[str, Any]) -> float:
  """Malformed pairs over all generated pairs (malformed, duplicate, filtered and kept)."""
  well_formed = stats.get("pairs", 0) + stats.get("duplicate_pairs", 0) + sum(
      count for name, count in stats.items() if name.startswith("filtered_"))
  malformed = stats.get("malformed_pairs", 0)
  return malformed / (malformed + well_formed) if malformed + well_formed else 0.0


def summarize(run: run_dir.RunDir, post_processing: str, write: bool = True) -> dict[str, Any]:
  """Sums the done markers of `run` into a summary; writes it to `stats.json` if `write`.

  Args:
    run: the synthesis run directory.
    post_processing: the mode the shards were made in (`SynthesisConfig.post_processing`).
    write: write `stats.json`.
  """
  total: collections.Counter = collections.Counter()
  categories: collections.Counter = collections.Counter()
  shards = 0
  for marker in run.shards(".done.json"):
    stats = json.loads(marker.read_text())
    categories.update(stats.pop("categories", {}))
    total.update(stats)
    shards += 1
  summary = dict(total, shards=shards, post_processing=post_processing,
                 categories=dict(categories.most_common()))
  summary["tokens_per_second"] = (total["generated_tokens"] / total["seconds"]
                                  if total.get("seconds") else 0.0)
  summary["pairs_per_document"] = total["pairs"] / max(total["documents"], 1)
  summary["parse_failure_rate"] = parse_failure_rate(total)
  if write:
    run.stats.write_text(json.dumps(summary, indent=2))
  return summary


def run(config: SynthesisConfig, converter: ShardConverter, out: run_dir.PathLike,
        show_progress: bool = True) -> dict[str, Any]:
  """Converts every shard of this process that is not done yet; returns the run's stats.

  With several processes, process p converts shards p, p + P, ...; all wait for each other
  at the end and process 0 writes `stats.json` over every shard.

  Args:
    config: synthesis settings.
    converter: the shard converter (engine + tokenizer).
    out: the output directory (a `run_dir.RunDir` or its path).
    show_progress: tqdm progress bar (process 0).
  """
  out = run_dir.RunDir(out).create()
  process, count = jax.process_index(), jax.process_count()
  bar = progress.bar(desc="synthesize", unit="doc", disable=not show_progress or process != 0)
  totals = collections.Counter()
  for index, records, skipped in document_shards(config):
    if index % count != process:
      continue
    if is_done(out, index):
      # Near-duplicate filtering continues across this process's shards in order: replay
      # the kept questions, so a resumed or regenerated shard is filtered as in one run.
      converter.quality.remember(kept_questions(out, index))
      continue
    output, stats = converter.convert(index, records)
    stats.update(skipped)
    write_shard(out, index, output, stats, config.write_tfrecord)
    totals.update({k: v for k, v in stats.items() if k != "categories"})
    bar.update(len(records))
    bar.set_postfix(docs_s=f"{totals['documents'] / max(totals['seconds'], 1e-9):.2f}",
                    tok_s=f"{totals['generated_tokens'] / max(totals['seconds'], 1e-9):.0f}",
                    pairs_doc=f"{totals['pairs'] / max(totals['documents'], 1):.2f}",
                    parse_fail=f"{parse_failure_rate(totals):.0%}")
  bar.close()
  if count > 1:
    multihost_utils.sync_global_devices("instruct_pt.synthesis.run")
  return summarize(out, config.post_processing, write=process == 0)
