"""Experiment E2: do experts on unsupervised clusters beat a dense model at equal compute?

c-BTM (Gururangan et al. 2023, arXiv 2303.14177) clusters a corpus without labels, trains one
expert per cluster from the same starting model, and routes each text to the experts of the
clusters nearest to its prefix. This script measures that on a CPU, compute-matched:

* **pool** (offline, three known sources): prose (paragraphs of the demo corpus, CPython's
  documentation), code (chunks of the standard library's `.py` files), instruction-format
  text (the shipped demo instruction, instruction-augmented and synthesizer records). The
  same number of training documents per source; held-out documents per source from held-out
  paragraphs, held-out files and held-out records. The sources are never shown to the
  clustering: they only measure it;
* **partition**: TF-IDF -> truncated SVD -> balanced k-means, k = 3 (`instruct-pt partition`'s
  code, a real partition directory under DIR/partition). As in c-BTM, the featurizer is fit on
  a larger unlabelled sample of the corpus (`featurizer_documents` of the three sources'
  training documents, drawn at random whatever their source), then the pool is clustered;
  fit on the pool alone, TF-IDF -> SVD leaves its documents nearly orthogonal;
* **arms**, all from the same starting model with the same batch shape and learning rate:
  dense (k x S steps on the whole pool); c-BTM (k experts of S steps, one per cluster); random
  split (k experts of S steps on a random partition of the same sizes, c-BTM's control). Total
  training tokens are equal across arms;
* **metrics**: held-out perplexity per source and overall, on each document's tokens after its
  first `prefix_tokens` (the prefix is the context the router sees and every arm reads);
  c-BTM scored with top-1 routing (one forward pass) and with top-2 mixing (T = 0.1), the
  random split with top-1 routing over the centres of its random parts; 95% bootstrap
  intervals over documents; paired bootstrap intervals of the differences in mean per-token
  negative log-likelihood; cluster purity, its chance level and its true-centroid purity (the
  purity at the sources' own centroids, `analysis.partition.true_centroid_purity`: the
  reference for "the clustering found the sources"), k-means' objective of the clusters found
  against that of the sources, the same for two other featurizers (TF-IDF fit on the pool
  alone, the model's mean hidden state over the first `prefix_tokens` tokens), and router
  accuracy.

  python experiments/partition.py --out runs/e2            # SmolLM2-135M, 8 min on 2 CPU cores
  python experiments/partition.py --quick --out /tmp/e2    # tiny random model, a smoke run

Writes DIR/results.json, DIR/report.md and DIR/partition.png (fresh each time).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import platform
import shutil
import sys
import time
import zlib
from typing import Any, Optional, Sequence

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=wrong-import-position
import common  # experiments/common.py: the script's directory is on sys.path
import stats  # experiments/stats.py
from instruct_pt import run_dir
from instruct_pt.analysis import contexts
from instruct_pt.analysis import partition as partition_lib
from instruct_pt.data import feed, sources
from instruct_pt.evaluation.routed import Router, RoutedScorer
from instruct_pt.evaluation.scoring import Scorer
from instruct_pt.train import loop
from instruct_pt.train.optim import OptimizerConfig

SOURCES = ("prose", "code", "instructions")
ARMS = ("dense", "cbtm_top1", "cbtm_top2", "random_top1")
TEMPERATURE = 0.1
# The shipped demo records (`instruct_pt.data.tasks.DEMO_DATA_DIR`, without importing SeqIO).
DEMO_DATA_DIR = os.path.join(os.path.dirname(sources.__file__), "demo_data")


@dataclasses.dataclass(frozen=True)
class Settings:
  """The sizes of one run (`FULL` or `QUICK`)."""
  model: str
  clusters: int
  expert_steps: int
  batch_size: int
  seq_len: int
  train_per_source: int
  held_out_per_source: int
  prefix_tokens: int
  score_tokens: int
  featurizer_documents: int
  dims: int = 100
  learning_rate: float = 2e-4


FULL = Settings("smollm2", clusters=3, expert_steps=6, batch_size=4, seq_len=96,
                train_per_source=64, held_out_per_source=20, prefix_tokens=32, score_tokens=64,
                featurizer_documents=4000)
QUICK = Settings("tiny", clusters=3, expert_steps=2, batch_size=2, seq_len=64,
                 train_per_source=16, held_out_per_source=6, prefix_tokens=16, score_tokens=24,
                 featurizer_documents=300, dims=16)


# Data ------------------------------------------------------------------------------------------

def _chunks(text: str, max_chars: int = 700, min_chars: int = 200) -> list[str]:
  """Blank-line separated blocks of `text`, joined up to `max_chars` (longer blocks cut at a
  line), keeping chunks of at least `min_chars`."""
  out, current = [], ""
  for block in (b.strip("\n") for b in text.split("\n\n")):
    if not block.strip():
      continue
    while len(block) > max_chars:
      cut = block.rfind("\n", 0, max_chars)
      cut = cut if cut > 0 else max_chars
      out.append(block[:cut])
      block = block[cut:].lstrip("\n")
    if current and len(current) + len(block) + 2 > max_chars:
      out.append(current)
      current = ""
    current = f"{current}\n\n{block}" if current else block
  out.append(current)
  return [chunk for chunk in out if len(chunk) >= min_chars]


def _held_out(key: str, one_in: int) -> bool:
  """One key in `one_in` is held out (a stable hash, so the split never moves)."""
  return zlib.crc32(key.encode("utf-8")) % one_in == 0


def code_documents() -> dict[str, list[str]]:
  """Chunks of the standard library's top-level modules, split by file into train/held_out."""
  out: dict[str, list[str]] = {"train": [], "held_out": []}
  for path in sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "*.py"))):
    name = os.path.basename(path)
    with open(path, encoding="utf-8", errors="replace") as f:
      out["held_out" if _held_out(name, 5) else "train"].extend(_chunks(f.read()))
  return out


def _render(record: dict[str, Any]) -> str:
  """A shipped demo record as the plain text a model would be trained on."""
  if "prompt" in record:
    return f"{record['prompt']}\n\n{record['response']}"
  if "text" in record:
    return record["text"]
  parts = []
  for entry in record.get("rounds", [record]):
    parts.append(entry["context"])
    for pair in entry.get("pairs", []):
      parts.append(f"Question: {pair['question']}\nAnswer: {pair['answer']}")
  return "\n\n".join(parts)


def instruction_documents() -> dict[str, list[str]]:
  """Chunks of the shipped instruction-format records, split by record into train/held_out
  (one record in three held out: there are only 60)."""
  out: dict[str, list[str]] = {"train": [], "held_out": []}
  for name in sorted(os.listdir(DEMO_DATA_DIR)):
    with open(os.path.join(DEMO_DATA_DIR, name), encoding="utf-8") as f:
      for line in f:
        record = json.loads(line)
        out["held_out" if _held_out(record["id"], 3) else "train"].extend(
            _chunks(_render(record), max_chars=350, min_chars=120))
  return out


def pool(settings: Settings, tokenizer, seed: int) -> dict[str, Any]:
  """Training documents and held-out documents (as token ids) with their sources, and the
  unlabelled sample the featurizer is fit on (`featurizer_documents` drawn from all the
  sources' training documents, so it holds no held-out document)."""
  rng = np.random.default_rng(seed)
  by_source = {"prose": {"train": sources.demo_corpus("train"),
                         "held_out": sources.demo_corpus("held_out")},
               "code": code_documents(), "instructions": instruction_documents()}
  need = settings.prefix_tokens + 8
  train_texts, train_labels, held = [], [], []
  for source in SOURCES:
    texts = by_source[source]["train"]
    if len(texts) < settings.train_per_source:
      raise ValueError(f"source {source} has {len(texts)} training documents; "
                       f"{settings.train_per_source} are needed")
    for i in sorted(rng.choice(len(texts), settings.train_per_source, replace=False)):
      train_texts.append(texts[i])
      train_labels.append(source)
    candidates = [ids for ids in map(tokenizer.encode, by_source[source]["held_out"])
                  if len(ids) >= need]
    if len(candidates) < settings.held_out_per_source:
      raise ValueError(f"source {source} has {len(candidates)} held-out documents of "
                       f"{need}+ tokens; {settings.held_out_per_source} are needed")
    for i in sorted(rng.choice(len(candidates), settings.held_out_per_source, replace=False)):
      held.append((source, candidates[i][:settings.prefix_tokens + settings.score_tokens]))
  corpus = [text for source in SOURCES for text in by_source[source]["train"]]
  if len(corpus) < settings.featurizer_documents:
    raise ValueError(f"the sources have {len(corpus)} training documents; the featurizer "
                     f"sample needs {settings.featurizer_documents}")
  sample = [corpus[i] for i in rng.choice(len(corpus), settings.featurizer_documents,
                                          replace=False)]
  return {"train_texts": train_texts, "train_labels": train_labels, "held_out": held,
          "featurizer_sample": sample}


# Clustering ------------------------------------------------------------------------------------

def clustering_check(features: np.ndarray, assignment: np.ndarray,
                     labels: Sequence[str]) -> dict[str, float]:
  """How close a clustering of `features` came to the known `labels`.

  Returns `purity` (of `assignment`), `true_centroid_purity` (the reference for finding the
  labels, `partition_lib.true_centroid_purity`), and k-means' objective for the clusters
  found (`objective_found`) and for the labels taken as clusters (`objective_sources`):
  found < sources means the features themselves favour another partition.
  """
  return {"purity": partition_lib.purity(assignment, labels),
          "true_centroid_purity": partition_lib.true_centroid_purity(features, labels),
          "objective_found": partition_lib.within_cluster_sum_of_squares(features, assignment),
          "objective_sources": partition_lib.within_cluster_sum_of_squares(features, labels)}


# The arms --------------------------------------------------------------------------------------

def run_arms(settings: Settings, out: run_dir.RunDir, seed: int) -> dict[str, Any]:
  """Partitions the pool, trains the arms, scores them; returns the results."""
  start = time.perf_counter()
  seconds: dict[str, float] = {}
  model, mesh, rules = common.load_model(settings.model, seed)
  tokenizer, k = model.tokenizer, settings.clusters
  data = pool(settings, tokenizer, seed)
  seconds["load"] = time.perf_counter() - start

  begin = time.perf_counter()
  texts, labels = data["train_texts"], data["train_labels"]
  featurizer = contexts.TfidfSvd.fit(data["featurizer_sample"], settings.dims, seed=seed)
  part_dir = contexts.PartitionDir(out.path / "partition")
  found = partition_lib.partition(
      texts, [f"{l}:{i}" for i, l in enumerate(labels)], part_dir, featurizer, k, seed, labels,
      {"corpus": "E2 pool", "featurizer_fit_on": f"{len(data['featurizer_sample'])} documents "
                                                  f"of the sources' training corpus"})
  random_assignment = np.random.default_rng(seed + 1).permutation(found.assignment)
  features = featurizer(texts)
  other_features = {
      "tfidf_pool": contexts.TfidfSvd.fit(texts, settings.dims, seed=seed)(texts),
      "model": contexts.ModelFeaturizer(settings.model, model.config, model.params, tokenizer,
                                        mesh, rules, max_tokens=settings.prefix_tokens)(texts)}
  featurizers = {"tfidf_corpus": clustering_check(features, found.assignment, labels), **{
      name: clustering_check(x, partition_lib.balanced_kmeans(x, k, seed)[1], labels)
      for name, x in other_features.items()}}
  random_centres = np.stack([features[random_assignment == j].mean(axis=0) for j in range(k)])
  prefix_token = tokenizer.bos_id if tokenizer.bos_id is not None else tokenizer.eos_id
  held = data["held_out"]
  held_sources = np.asarray([s for s, _ in held])
  prefixes = [tokenizer.decode(ids[:settings.prefix_tokens]) for _, ids in held]
  routed = contexts.routing_weights(featurizer(prefixes), found.centres, TEMPERATURE,
                                    1).argmax(axis=1)
  composition = {str(j): {s: int(np.sum((found.assignment == j) & (np.asarray(labels) == s)))
                          for s in SOURCES} for j in range(k)}
  partition_stats = {
      "sizes": found.sizes, "purity": found.purity, "chance_purity": found.chance_purity,
      "true_centroid_purity": featurizers["tfidf_corpus"]["true_centroid_purity"],
      "featurizer_documents": len(data["featurizer_sample"]), "featurizers": featurizers,
      "cluster_labels": found.cluster_labels, "composition": composition,
      "router_accuracy": partition_lib.router_accuracy(routed, held_sources,
                                                       found.cluster_labels),
      "routed_to": {s: np.bincount(routed[held_sources == s], minlength=k).tolist()
                    for s in SOURCES}}
  seconds["partition"] = time.perf_counter() - begin

  train = loop.TrainConfig(num_steps=settings.expert_steps, batch_size=settings.batch_size,
                           seq_len=settings.seq_len, seed=seed, log_every=4,
                           checkpoint_every=10**6, keep_checkpoints=1,
                           async_checkpointing=False)
  optimizer = OptimizerConfig(learning_rate=settings.learning_rate, warmup_steps=2,
                              schedule="constant", weight_decay=0.0)
  losses: dict[str, dict[int, float]] = {}

  def fit(name: str, documents: Sequence[str], steps: int):
    batches = feed.text_feed(documents, tokenizer, settings.seq_len, settings.batch_size, seed)
    result = loop.train(model.config, optimizer, dataclasses.replace(train, num_steps=steps),
                        mesh, rules, out.sub("runs").sub(name), batches.iterate,
                        init_params=lambda: model.params, show_progress=False)
    losses[name] = result.losses
    shutil.rmtree(out.sub("runs").sub(name).checkpoints, ignore_errors=True)
    return result.state.params

  begin = time.perf_counter()
  dense = fit("dense", texts, k * settings.expert_steps)
  seconds["train_dense"] = time.perf_counter() - begin
  begin = time.perf_counter()
  experts = [fit(f"cbtm_{j}", [texts[i] for i in np.flatnonzero(found.assignment == j)],
                 settings.expert_steps) for j in range(k)]
  seconds["train_cbtm"] = time.perf_counter() - begin
  begin = time.perf_counter()
  randoms = [fit(f"random_{j}", [texts[i] for i in np.flatnonzero(random_assignment == j)],
                 settings.expert_steps) for j in range(k)]
  seconds["train_random"] = time.perf_counter() - begin

  begin = time.perf_counter()
  scorer = Scorer(model.config, dense, mesh, rules, row_len=128)
  requests = [([prefix_token] + ids[:settings.prefix_tokens], ids[settings.prefix_tokens:])
              for _, ids in held]
  tokens = np.asarray([len(c) for _, c in requests], np.float64)

  def router(centres, top_k):
    return Router(featurizer, centres, tokenizer.decode, TEMPERATURE, top_k)

  arms = {"dense": lambda: scorer.score(requests),
          "cbtm_top1": RoutedScorer(scorer, experts, router(found.centres, 1)).score,
          "cbtm_top2": RoutedScorer(scorer, experts, router(found.centres, 2)).score,
          "random_top1": RoutedScorer(scorer, randoms, router(random_centres, 1)).score}
  nll: dict[str, np.ndarray] = {}
  for arm in ARMS:
    scorer.params = dense
    answers = arms[arm]() if arm == "dense" else arms[arm](requests)
    nll[arm] = -np.asarray([value for value, _ in answers], np.float64)
  seconds["evaluate"] = time.perf_counter() - begin

  results_by_arm = {}
  for arm in ARMS:
    entry = {}
    for source in (*SOURCES, "overall"):
      mask = np.ones(len(held), bool) if source == "overall" else held_sources == source
      entry[source] = float(math.exp(nll[arm][mask].sum() / tokens[mask].sum()))
      entry[f"{source}_ci"] = stats.perplexity_interval(nll[arm][mask], tokens[mask],
                                                        held_sources[mask], seed)
    results_by_arm[arm] = entry
  differences = {}
  for a, b in (("cbtm_top1", "dense"), ("cbtm_top1", "random_top1"), ("cbtm_top2", "dense")):
    for source in (*SOURCES, "overall"):
      mask = np.ones(len(held), bool) if source == "overall" else held_sources == source
      differences[f"{a} - {b}: {source}"] = stats.per_token_difference(
          nll[a][mask], nll[b][mask], tokens[mask], held_sources[mask], seed)
  seconds["total"] = time.perf_counter() - start
  return {
      "settings": dataclasses.asdict(settings), "seed": seed, "temperature": TEMPERATURE,
      "train_tokens_per_arm": k * settings.expert_steps * settings.batch_size * settings.seq_len,
      "held_out_documents": {s: int(np.sum(held_sources == s)) for s in SOURCES},
      "scored_tokens": int(tokens.sum()), "partition": partition_stats,
      "arms": results_by_arm, "differences": differences,
      "losses": {name: {str(step): value for step, value in curve.items()}
                 for name, curve in losses.items()},
      "seconds": seconds, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                                     f"{platform.system()}, jax {jax.__version__}",
      "date": time.strftime("%Y-%m-%d"),
  }


# Report ----------------------------------------------------------------------------------------

def _cell(value: float, interval: Sequence[float]) -> str:
  return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def verdict(results: dict[str, Any]) -> list[str]:
  """Plain sentences on what the numbers show, noise included."""
  lines = []
  p = results["partition"]
  used = p["featurizers"]["tfidf_corpus"]
  lines.append(f"The unsupervised clusters have purity {p['purity']:.3f} against the three "
               f"sources (chance {p['chance_purity']:.3f}); a clusterer that found the sources "
               f"would reach {p['true_centroid_purity']:.3f} with these features (true-centroid "
               f"purity). Held-out prefixes are routed to a cluster of their own source "
               f"{p['router_accuracy']:.1%} of the time.")
  if used["objective_found"] < used["objective_sources"]:
    lines.append(f"k-means' objective is lower for the clusters found "
                 f"({used['objective_found']:.2f}) than for the sources taken as clusters "
                 f"({used['objective_sources']:.2f}): the search did not fail, the features "
                 f"favour another partition than the sources.")
  else:
    lines.append(f"k-means' objective is higher for the clusters found "
                 f"({used['objective_found']:.2f}) than for the sources taken as clusters "
                 f"({used['objective_sources']:.2f}): balanced k-means stopped in a worse "
                 f"optimum than the sources' partition.")
  for a, b, what in (("cbtm_top1", "dense", "c-BTM (top-1) against dense"),
                     ("cbtm_top1", "random_top1", "c-BTM (top-1) against the random split"),
                     ("cbtm_top2", "dense", "c-BTM (top-2 mixture) against dense")):
    entry = results["differences"][f"{a} - {b}: overall"]
    size = (f"{entry['value']:+.4f} nats per token (95% CI {entry['ci'][0]:+.4f} to "
            f"{entry['ci'][1]:+.4f})")
    if entry["within_noise"]:
      lines.append(f"{what}: {size}; within noise, no measurable difference.")
    else:
      better = "lower (better)" if entry["value"] < 0 else "higher (worse)"
      lines.append(f"{what}: {size}; outside noise, {a}'s held-out loss is {better}.")
  lines.append("The intervals cover the sampling of held-out documents only: one seed, one "
               "partition and one training run per arm, so differences in training noise "
               "between runs are not in them.")
  return lines


def write_report(results: dict[str, Any], out: run_dir.RunDir, command: str) -> None:
  """report.md (the tables, the verdict, how it was run) and partition.png."""
  s = results["settings"]
  quick = s["model"] == "tiny"
  lines = ["# E2: contextual partitioning (c-BTM) against dense and random-split experts", ""]
  if quick:
    lines += ["**Quick run**: a tiny random model on a few documents checks the pipeline; its "
              "figures mean nothing.", ""]
  held = results["held_out_documents"]
  lines += [f"Model `{s['model']}`; pool: {s['train_per_source']} training documents from each "
            f"of {', '.join(SOURCES)}; held out: " + ", ".join(f"{n} {src}" for src, n in
                                                             held.items())
            + f" documents, scored on up to {s['score_tokens']} tokens after a "
            f"{s['prefix_tokens']}-token prefix ({results['scored_tokens']} tokens). "
            f"k = {s['clusters']} clusters (TF-IDF -> SVD {s['dims']} fit on "
            f"{results['partition']['featurizer_documents']} unlabelled documents of the "
            f"sources' training corpus -> balanced k-means). "
            f"Dense: {s['clusters'] * s['expert_steps']} steps; each expert: "
            f"{s['expert_steps']} steps; batch {s['batch_size']} x {s['seq_len']} tokens, lr "
            f"{s['learning_rate']} (constant after 2 warm-up steps); "
            f"{results['train_tokens_per_arm']} training tokens per arm. Routing temperature "
            f"{results['temperature']}. Seed {results['seed']}.", "",
            "Held-out perplexity (95% bootstrap CI over documents):", "",
            "| arm | " + " | ".join(SOURCES) + " | overall |", "|---" * (len(SOURCES) + 2) + "|"]
  for arm in ARMS:
    r = results["arms"][arm]
    lines.append(f"| {arm} | " + " | ".join(_cell(r[src], r[f"{src}_ci"])
                                           for src in (*SOURCES, "overall")) + " |")
  lines += ["", "Paired differences in mean per-token negative log-likelihood (nats; < 0: the "
            "first arm is better), bootstrap 95% CI:", "",
            "| difference | value [95% CI] | within noise |", "|---|---|---|"]
  for name, entry in results["differences"].items():
    lines.append(f"| {name} | {entry['value']:.4f} [{entry['ci'][0]:.4f}, "
                 f"{entry['ci'][1]:.4f}] | {'yes' if entry['within_noise'] else 'no'} |")
  p = results["partition"]
  lines += ["", "Partition (sources hidden from the clustering):", "",
            "| cluster | size | " + " | ".join(SOURCES) + " | majority |",
            "|---" * (len(SOURCES) + 3) + "|"]
  for j, size in enumerate(p["sizes"]):
    lines.append(f"| {j} | {size} | " + " | ".join(str(p["composition"][str(j)][src])
                                                  for src in SOURCES)
                 + f" | {p['cluster_labels'][j]} |")
  lines += ["", f"Purity {p['purity']:.3f} (chance {p['chance_purity']:.3f}, true-centroid "
            f"{p['true_centroid_purity']:.3f}); router accuracy "
            f"{p['router_accuracy']:.3f}: the share of held-out documents whose prefix is "
            f"routed (top-1) to a cluster whose majority training source is their own. Routed "
            f"clusters per source: " + "; ".join(f"{src} {p['routed_to'][src]}"
                                                for src in SOURCES) + ".",
            "", "Balanced k-means (k = 3, the same seed) on three featurizers: purity of the "
            "clusters found; true-centroid purity (the purity of assigning each document to "
            "the nearest of the sources' own centroids, with the clusterer's equal sizes: what a "
            "clusterer that found the sources reaches); k-means' objective (summed squared "
            "distance to the cluster mean) of the clusters found and of the sources taken as "
            "clusters:", "",
            "| featurizer | purity | true-centroid purity | objective, clusters found | "
            "objective, sources |", "|---|---|---|---|---|"]
  for name, check in p["featurizers"].items():
    lines.append(f"| {name} | {check['purity']:.3f} | {check['true_centroid_purity']:.3f} | "
                 f"{check['objective_found']:.3f} | {check['objective_sources']:.3f} |")
  lines += ["", f"`tfidf_corpus` (the partition above): TF-IDF -> SVD fit on "
            f"{p['featurizer_documents']} documents of the sources' training corpus; "
            f"`tfidf_pool`: the same fit on the pool alone; `model`: `{s['model']}`'s mean last "
            f"hidden state over a document's first {s['prefix_tokens']} tokens.",
            "", "## Reading", ""] + [f"* {line}" for line in verdict(results)]
  secs = results["seconds"]
  lines += ["", "## Run", "", f"`{command}` on {results['date']}, {results['machine']}: "
            f"{secs['total']:.0f} s in all (" + ", ".join(
                f"{name} {value:.0f} s" for name, value in secs.items() if name != "total")
            + ").", "", "![E2](partition.png)", ""]
  out.report.write_text("\n".join(lines))
  _plot(results, str(out.path / "partition.png"))


def _plot(results: dict[str, Any], path: str) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  figure, (bars, curves) = plt.subplots(1, 2, figsize=(12, 4))
  groups = (*SOURCES, "overall")
  width = 0.8 / len(ARMS)
  for a, arm in enumerate(ARMS):
    r = results["arms"][arm]
    values = [r[g] for g in groups]
    errors = [[v - r[f"{g}_ci"][0] for v, g in zip(values, groups)],
              [r[f"{g}_ci"][1] - v for v, g in zip(values, groups)]]
    bars.bar(np.arange(len(groups)) + a * width, values, width, yerr=errors, capsize=3,
             label=arm)
  bars.set_xticks(np.arange(len(groups)) + width * (len(ARMS) - 1) / 2, groups)
  bars.set_ylabel("held-out perplexity")
  bars.legend(fontsize=8)
  bars.set_title("per-source perplexity (95% CI)", fontsize=10)
  for name, curve in results["losses"].items():
    steps = sorted(curve, key=int)
    curves.plot([int(x) for x in steps], [curve[x] for x in steps], label=name,
                linewidth=2 if name == "dense" else 1)
  curves.set_xlabel("step")
  curves.set_ylabel("training loss")
  curves.legend(fontsize=7, ncol=2)
  curves.set_title("training loss of each run", fontsize=10)
  figure.suptitle("E2: dense vs c-BTM experts vs random split, compute-matched")
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  plt.close(figure)


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
  """Runs E2 and writes DIR/results.json, DIR/report.md, DIR/partition.png.

  Args:
    argv: command-line arguments (default: `sys.argv[1:]`).
  """
  return common.run_experiment(
      argv, __doc__.splitlines()[0], "experiments/partition.py", (FULL, QUICK), run_arms,
      write_report,
      "partition.png",
      quick_help="tiny random model, a few steps: checks the pipeline in seconds",
      seed_help="data, split and initialisation seed", preview_lines=14, compilation_cache=True)


if __name__ == "__main__":
  main()
