"""Experiment E3: task-relevant units in SmolLM2-135M: localize and ablate (E3a), targeted
fine-tuning (E3b).

AlKhamissi et al. (arXiv 2411.02280) localize "language-selective" units (each dimension of
the residual stream after each block) by Welch's t on |activation|, language vs non-word
stimuli, and report that ablating them, but not random units, wrecks language tasks. The
paper fine-tunes nothing; E3b asks whether training (or freezing) selected units changes the
trade-off between learning a target domain and forgetting general text.

* **E3a** (forward only): 240 twelve-word sentences from CPython's documentation vs 240 lists
  of 12 pronounceable pseudowords (the offline stand-in for the Fedorenko et al. localizer,
  whose files are an external download), last-token pooling, 12 tokens; top 1% and 0.25% of
  residual units; ablated (zeroed from their layer on) vs the same count of random units
  drawn outside the selection (seeds 42, 43, 44). Measured with the evaluation harness's
  scorer: held-out documentation perplexity, accuracy on templated subject-verb agreement
  minimal pairs (p(good) > p(bad)), and the gold answer's log-probability on 1-shot addition.
* **E3b**: the top 1% of MLP units by Welch t on mean-pooled |h|, standard-library code vs
  documentation prose; arms trained on other code snippets with the same batches: full
  fine-tuning (lr 1e-4), the selected units' slices only (lr 1e-3), as many random units
  (lr 1e-3), and everything except the general-language MLP units (sentences vs pseudowords,
  lr 1e-4). Every few steps: held-out code loss (target gain) and held-out prose loss
  (forgetting), plotted against each other.

  python experiments/units.py --out runs/e3            # SmolLM2-135M, 9 min on 2 CPU cores
  python experiments/units.py --quick --out /tmp/e3    # tiny random model, a smoke run

Writes DIR/results.json, DIR/report.md, DIR/e3a.png, DIR/e3b.png and the units files
DIR/units/{language,code}/ (units.json, t_values.npy, units.png) (fresh each time).
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import sys
import time
from typing import Any, Optional, Sequence

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=wrong-import-position
import common  # experiments/common.py: the script's directory is on sys.path
import stats  # experiments/stats.py
from instruct_pt import parallel, run_dir
from instruct_pt.analysis import stimuli
from instruct_pt.analysis import units as analysis
from instruct_pt.data import feed, sources
from instruct_pt.evaluation.scoring import Scorer
from instruct_pt.model import units as units_lib
from instruct_pt.model.transformer import Decoder
from instruct_pt.train import loop, optim
from instruct_pt.train import state as state_lib

SEEDS = (42, 43, 44)
ARMS = ("full", "units", "random_units", "freeze_general")
NOUNS = (("author", "authors"), ("pilot", "pilots"), ("doctor", "doctors"), ("key", "keys"),
         ("teacher", "teachers"), ("dog", "dogs"), ("farmer", "farmers"), ("senator",
         "senators"), ("painting", "paintings"), ("student", "students"), ("car", "cars"),
         ("manager", "managers"), ("friend", "friends"), ("window", "windows"))
LINKS = ("near", "behind", "beside", "with", "from")
PREDICATES = (("is", "are", "very old"), ("was", "were", "here yesterday"),
              ("has", "have", "a red door"), ("is", "are", "on the table"),
              ("was", "were", "quite small"))


@dataclasses.dataclass(frozen=True)
class Settings:
  """The sizes of one run (`FULL` or `QUICK`)."""
  model: str
  stimuli: int
  percents: tuple[float, ...]
  docs: int
  doc_tokens: int
  pairs: int
  sums: int
  code_stimuli: int
  code_tokens: int
  steps: int
  eval_every: int
  batch_size: int
  seq_len: int
  eval_docs: int
  lr_full: float = 1e-4
  lr_units: float = 1e-3


FULL = Settings("smollm2", stimuli=240, percents=(1.0, 0.25), docs=32, doc_tokens=64, pairs=80,
                sums=48, code_stimuli=64, code_tokens=64, steps=12, eval_every=6,
                batch_size=4, seq_len=64, eval_docs=16)
QUICK = Settings("tiny", stimuli=16, percents=(1.0, 0.25), docs=4, doc_tokens=32, pairs=8,
                 sums=8, code_stimuli=8, code_tokens=32, steps=2, eval_every=1, batch_size=4,
                 seq_len=32, eval_docs=4, lr_full=1e-2, lr_units=1e-2)


# Data ------------------------------------------------------------------------------------------

def agreement_pairs(count: int, seed: int) -> list[tuple[str, str]]:
  """`(grammatical, ungrammatical)` sentences differing in the verb's number, with an
  attractor noun of the other number between subject and verb half of the time."""
  rng = np.random.default_rng(seed)
  pairs = []
  for index in range(count):
    (subject, other) = (NOUNS[i] for i in rng.choice(len(NOUNS), 2, replace=False))
    plural = bool(rng.integers(2))
    attractor = other[int(not plural)] if index % 2 else other[int(plural)]
    singular_verb, plural_verb, rest = PREDICATES[rng.integers(len(PREDICATES))]
    start = f"The {subject[int(plural)]} {LINKS[rng.integers(len(LINKS))]} the {attractor}"
    good, bad = (plural_verb, singular_verb) if plural else (singular_verb, plural_verb)
    pairs.append((f"{start} {good} {rest}.", f"{start} {bad} {rest}."))
  return pairs


def addition_items(count: int, seed: int) -> list[tuple[str, str]]:
  """`(1-shot prompt, gold answer)` of two-digit additions."""
  rng = np.random.default_rng(seed)
  items = []
  for _ in range(count):
    a, b, c, d = rng.integers(10, 50, 4)
    items.append((f"Q: What is {a} + {b}? A: {a + b}\nQ: What is {c} + {d}? A:", str(c + d)))
  return items


def stream_docs(tokenizer, texts: Sequence[str], tokens: int, count: int) -> list[list[int]]:
  """`count` consecutive `tokens`-token chunks of the texts' token stream."""
  ids = tokenizer.encode("\n\n".join(texts))
  if len(ids) < tokens * count:
    raise ValueError(f"{len(ids)} tokens of text; {count} chunks of {tokens} need more")
  return [ids[i * tokens:(i + 1) * tokens] for i in range(count)]


def token_docs(tokenizer, texts: Sequence[str], tokens: int, count: int) -> list[list[int]]:
  """The first `tokens` tokens of the first `count` texts that have that many."""
  docs = [ids[:tokens] for ids in map(tokenizer.encode, texts) if len(ids) >= tokens][:count]
  if len(docs) < count:
    raise ValueError(f"only {len(docs)} texts have {tokens} tokens; {count} needed")
  return docs


# E3a -------------------------------------------------------------------------------------------

class Harness:
  """E3a's metrics of one ablation, through one scorer (its program compiles once: every
  condition, the unablated one included, passes a keep table of the same shape)."""

  def __init__(self, model, mesh, rules, settings: Settings, seed: int):
    encode = self.encode = model.tokenizer.encode
    self.docs = stream_docs(model.tokenizer, sources.demo_corpus("held_out"),
                            settings.doc_tokens, settings.docs)
    self.pairs = agreement_pairs(settings.pairs, seed)
    self.sums = addition_items(settings.sums, seed + 1)
    self.requests = ([(d[:1], d[1:]) for d in self.docs]
                     + [(ids[:1], ids[1:]) for pair in self.pairs for ids in map(encode, pair)]
                     + [(encode(p), encode(" " + a)) for p, a in self.sums])
    self.scorer = Scorer(model.config, model.params, mesh, rules, row_len=128)

  def __call__(self, keep: dict[str, np.ndarray]) -> dict[str, Any]:
    self.scorer.unit_keep = keep
    scores = [value for value, _ in self.scorer.score(self.requests)]
    n_docs, n_pairs = len(self.docs), len(self.pairs)
    doc_nll = [-v / (len(d) - 1) for v, d in zip(scores[:n_docs], self.docs)]
    pair_scores = scores[n_docs:n_docs + 2 * n_pairs]
    correct = [float(pair_scores[2 * i] > pair_scores[2 * i + 1]) for i in range(n_pairs)]
    gold = scores[n_docs + 2 * n_pairs:]
    total = sum(len(d) - 1 for d in self.docs)
    return {"docs_perplexity": math.exp(sum(n * (len(d) - 1) for n, d in zip(doc_nll, self.docs))
                                        / total),
            "agreement": float(np.mean(correct)),
            "agreement_ci": stats.wilson(sum(correct), len(correct)),
            "addition_logprob": float(np.mean(gold)),
            "addition_logprob_ci": stats.mean_interval(gold),
            "items": {"doc_nll": doc_nll, "correct": correct, "gold": gold}}


def run_e3a(model, mesh, rules, settings: Settings, out: run_dir.RunDir,
            seed: int) -> dict[str, Any]:
  """Localizes language units, ablates them and random units; returns E3a's results."""
  tokenizer = model.tokenizer
  task = analysis.encode_stimuli(tokenizer, stimuli.sentences(settings.stimuli, seed), 12)
  control = analysis.encode_stimuli(tokenizer, stimuli.pseudowords(settings.stimuli, seed), 12)
  recorder = analysis.Recorder(model.config, model.params, "residual", "last", 12, 16, mesh,
                               rules)
  found = analysis.localize(recorder, "residual", task, control, max(settings.percents), {
      "model": settings.model, "statistic": analysis.STATISTIC.format(pooling="last"),
      "task_source": "builtin:sentences", "control_source": "builtin:pseudowords"})
  analysis.write(found, str(out.path / "units" / "language"), "E3a: language-selective "
                 "residual units (sentences vs pseudowords)")
  evaluate = Harness(model, mesh, rules, settings, seed)
  shape = found.t.shape
  conditions = {"none": evaluate({"residual": np.ones(shape, np.float32)})}
  selections = {}
  for percent in settings.percents:
    layers, indices = analysis.top_units(found.t, percent)
    chosen = np.zeros(shape, bool)
    chosen[layers, indices] = True
    selections[percent] = {"count": int(chosen.sum()),
                           "per_layer": np.bincount(layers, minlength=shape[0]).tolist()}
    conditions[f"language {percent}%"] = evaluate({"residual": (~chosen).astype(np.float32)})
    for s in SEEDS:
      drawn = analysis.random_units(shape, int(chosen.sum()), chosen, s)
      conditions[f"random {percent}% (seed {s})"] = evaluate(
          {"residual": (~drawn).astype(np.float32)})
  items = {name: r.pop("items") for name, r in conditions.items()}
  differences = {}
  for percent in settings.percents:
    lang = items[f"language {percent}%"]
    rand = {key: np.mean([items[f"random {percent}% (seed {s})"][key] for s in SEEDS], axis=0)
            for key in lang}
    for key, label in (("correct", "agreement"), ("doc_nll", "docs NLL"),
                       ("gold", "addition log-prob")):
      differences[f"{label}: language {percent}% - none"] = stats.paired_difference(
          lang[key], items["none"][key])
      differences[f"{label}: language {percent}% - random {percent}%"] = (
          stats.paired_difference(lang[key], rand[key]))
  return {"selections": {str(k): v for k, v in selections.items()},
          "t_max": float(np.nanmax(found.t)), "conditions": conditions,
          "differences": differences, "per_layer": analysis.per_layer(found)}


# E3b -------------------------------------------------------------------------------------------

def _rows(docs: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
  """One document per row, loss on every next token."""
  tokens = np.asarray(docs, np.int32)
  return {"decoder_input_tokens": tokens[:, :-1], "decoder_target_tokens": tokens[:, 1:],
          "decoder_loss_weights": np.ones_like(tokens[:, 1:], np.float32)}


def run_e3b(model, mesh, rules, settings: Settings, out: run_dir.RunDir,
            seed: int) -> dict[str, Any]:
  """Localizes code MLP units and general-language MLP units; trains and measures each arm."""
  tokenizer = model.tokenizer
  n = settings.code_stimuli
  code = stimuli.code(3 * n + 2 * settings.eval_docs, seed)
  prose = stimuli.prose(n, seed)
  shape = units_lib.unit_shape(model.config, "mlp")
  recorder = analysis.Recorder(model.config, model.params, "mlp", "mean",
                               settings.code_tokens, 16, mesh, rules)
  code_units = analysis.localize(
      recorder, "mlp", analysis.encode_stimuli(tokenizer, code[:n], settings.code_tokens),
      analysis.encode_stimuli(tokenizer, prose, settings.code_tokens), 1.0,
      {"statistic": analysis.STATISTIC.format(pooling="mean"), "task_source": "builtin:code",
       "control_source": "builtin:prose"})
  analysis.write(code_units, str(out.path / "units" / "code"), "E3b: code-selective MLP units")
  language = analysis.Recorder(model.config, model.params, "mlp", "last", 12, 16, mesh, rules)
  general = analysis.localize(
      language, "mlp",
      analysis.encode_stimuli(tokenizer, stimuli.sentences(settings.stimuli, seed), 12),
      analysis.encode_stimuli(tokenizer, stimuli.pseudowords(settings.stimuli, seed), 12), 1.0)
  chosen = code_units.units.selected()
  # (freeze, table, lr) of each arm: full fine-tuning is the freeze mode with nothing frozen.
  arms = {"full": (True, np.zeros(shape, bool), settings.lr_full),
          "units": (False, chosen, settings.lr_units),
          "random_units": (False, analysis.random_units(shape, int(chosen.sum()), chosen,
                                                        SEEDS[0]), settings.lr_units),
          "freeze_general": (True, general.units.selected(), settings.lr_full)}
  eval_sets = {"target": _rows(token_docs(tokenizer, code[3 * n:], settings.seq_len + 1,
                                          settings.eval_docs)),
               "general": _rows(stream_docs(tokenizer, sources.demo_corpus("held_out"),
                                            settings.seq_len + 1, settings.eval_docs))}
  train_feed = feed.text_feed(code[n:3 * n], tokenizer, settings.seq_len, settings.batch_size,
                              seed)
  per_doc = jax.jit(lambda params, rows: _doc_losses(model.config, params, rows))
  base = {name: np.asarray(per_doc(model.params, rows)) for name, rows in eval_sets.items()}
  steps = _train_programs(model, mesh, rules, settings, seed)
  curves, finals, ends = {}, {}, {}
  for arm, (freeze, table, lr) in arms.items():
    begin = time.perf_counter()
    step_fn, fresh_state = steps[lr]
    state = fresh_state()
    points = [{"step": 0, "target_gain": 0.0, "forgetting": 0.0}]
    batches = train_feed.iterate(0)
    with parallel.sharding_context(mesh, rules):
      for step in range(1, settings.steps + 1):
        state, _ = step_fn(state, next(batches), table, freeze)
        if step % settings.eval_every == 0 or step == settings.steps:
          now = {name: np.asarray(per_doc(state.params, rows)) for name, rows in eval_sets.items()}
          points.append({"step": step,
                         "target_gain": float(np.mean(base["target"] - now["target"])),
                         "forgetting": float(np.mean(now["general"] - base["general"]))})
    del state
    curves[arm] = points
    ends[arm] = now
    finals[arm] = {"lr": lr, "trained_entries": _trained_entries(model.params, table, freeze),
                   "target_gain": stats.paired_difference(base["target"], now["target"]),
                   "forgetting": stats.paired_difference(now["general"], base["general"]),
                   "seconds": time.perf_counter() - begin}
  return {"selected_code_units": int(chosen.sum()), "general_units": len(general.units),
          "code_units_per_layer": analysis.per_layer(code_units)["selected"],
          "base_loss": {name: float(v.mean()) for name, v in base.items()},
          "curves": curves, "finals": finals, "between_arms": between_arms(ends),
          "matched_gain": matched_forgetting(curves)}


# (arm, reference) pairs compared on the same held-out documents: each arm against full
# fine-tuning, and the selected units against as many random ones.
ARM_PAIRS = (("units", "full"), ("random_units", "full"), ("freeze_general", "full"),
             ("units", "random_units"))


def between_arms(ends: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
  """Paired differences between arms' final per-document losses: `"A - B"` -> target gain of
  A minus that of B, and forgetting of A minus that of B (bootstrap 95% CI over documents).

  Args:
    ends: arm -> {"target": per-document code losses, "general": per-document prose losses}
      after training.
  """
  return {f"{a} - {b}": {
      "target_gain": stats.paired_difference(ends[b]["target"], ends[a]["target"]),
      "forgetting": stats.paired_difference(ends[a]["general"], ends[b]["general"])}
          for a, b in ARM_PAIRS if a in ends and b in ends}


def _train_programs(model, mesh, rules, settings: Settings, seed: int) -> dict[float, Any]:
  """`lr -> (jitted step(state, batch, unit table, freeze), fresh state)`: the unit table and
  the mode are arguments, so the arms with one learning rate share one compiled program."""
  decoder = Decoder(model.config)
  config = loop.TrainConfig(num_steps=settings.steps, batch_size=settings.batch_size,
                            seq_len=settings.seq_len, seed=seed)
  shape = units_lib.unit_shape(model.config, "mlp")
  programs = {}
  for lr in sorted({settings.lr_full, settings.lr_units}):
    opt = optim.OptimizerConfig(learning_rate=lr, schedule="constant", weight_decay=0.0)

    def step(state, batch, table, freeze, opt=opt):
      tx, schedule = optim.make_optimizer(opt, settings.steps,
                                          optim.unit_update_mask("mlp", table, freeze))
      return loop.make_train_step(decoder, tx, schedule, config)(state, batch)

    def fresh(opt=opt):
      tx, _ = optim.make_optimizer(opt, settings.steps, optim.unit_update_mask(
          "mlp", np.zeros(shape, bool), True))
      return state_lib.create_train_state(decoder, tx, jax.random.key(seed), mesh, rules,
                                          params=model.params)

    shardings = fresh()[1]
    programs[lr] = (jax.jit(step, in_shardings=(
        shardings, parallel.batch_sharding(mesh, rules), None, None),
                            out_shardings=(shardings, None), donate_argnums=(0,)),
                    lambda fresh=fresh: fresh()[0])
  return programs


def _trained_entries(params, table: np.ndarray, freeze: bool) -> int:
  """Parameter entries an arm trains: its units' slices (`optim.UNIT_SLICES`), or all others."""
  slices = {names for names, _ in optim.UNIT_SLICES["mlp"]}
  leaves = jax.tree_util.tree_leaves_with_path(params)
  per_unit = sum(leaf.size // table.size for path, leaf in leaves
                 if tuple(k.key for k in path) in slices)
  chosen = int(table.sum()) * per_unit
  return sum(leaf.size for _, leaf in leaves) - chosen if freeze else chosen


def _doc_losses(config, params, rows):
  """Mean next-token loss of each row (document)."""
  logits, _ = Decoder(config).apply({"params": params}, rows["decoder_input_tokens"])
  log_z = jax.nn.logsumexp(logits, axis=-1)
  picked = jax.numpy.take_along_axis(logits, rows["decoder_target_tokens"][..., None], -1)[..., 0]
  return (log_z - picked).mean(axis=-1)


def matched_forgetting(curves: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
  """Each arm's forgetting, linearly interpolated along its curve, at the largest target gain
  that every arm reached (None when some arm gained nothing)."""
  reached = min(max(p["target_gain"] for p in points) for points in curves.values())
  if reached <= 0:
    return {"gain": None, "forgetting": {arm: None for arm in curves}}
  out = {}
  for arm, points in curves.items():
    gains = [p["target_gain"] for p in points]
    forgets = [p["forgetting"] for p in points]
    for i in range(1, len(points)):
      if gains[i] >= reached:
        span = gains[i] - gains[i - 1]
        w = 1.0 if span <= 0 else (reached - gains[i - 1]) / span
        out[arm] = forgets[i - 1] + w * (forgets[i] - forgets[i - 1])
        break
  return {"gain": reached, "forgetting": out}


# Run -------------------------------------------------------------------------------------------

def run(settings: Settings, out: run_dir.RunDir, seed: int) -> dict[str, Any]:
  """Loads the model, runs E3a and E3b; returns the results."""
  start = time.perf_counter()
  model, mesh, rules = common.load_model(settings.model, seed)
  seconds = {"load": time.perf_counter() - start}
  begin = time.perf_counter()
  e3a = run_e3a(model, mesh, rules, settings, out, seed)
  seconds["e3a"] = time.perf_counter() - begin
  begin = time.perf_counter()
  e3b = run_e3b(model, mesh, rules, settings, out, seed)
  seconds["e3b"] = time.perf_counter() - begin
  seconds["total"] = time.perf_counter() - start
  return {"settings": dataclasses.asdict(settings), "seed": seed, "e3a": e3a, "e3b": e3b,
          "seconds": seconds, "date": time.strftime("%Y-%m-%d"),
          "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}, "
                     f"jax {jax.__version__}"}


# Report ----------------------------------------------------------------------------------------

def _cell(value: float, interval: Sequence[float]) -> str:
  return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def _noise(entry: dict[str, Any]) -> str:
  return "yes" if entry["within_noise"] else "no"


def _verdict(entry: dict[str, Any]) -> str:
  return "within noise" if entry["within_noise"] else "outside noise"


def _gain_cells(r: dict[str, Any]) -> str:
  """A table row's target-gain and forgetting cells: value [CI] | within noise, for each."""
  g, f = r["target_gain"], r["forgetting"]
  return f"{_cell(g['value'], g['ci'])} | {_noise(g)} | {_cell(f['value'], f['ci'])} | {_noise(f)} |"


def _gain_words(r: dict[str, Any], unit: str = "") -> str:
  """The same as a sentence: target gain +x (verdict), forgetting +y (verdict)."""
  g, f = r["target_gain"], r["forgetting"]
  return (f"target gain {g['value']:+.3f}{unit} ({_verdict(g)}), forgetting "
          f"{f['value']:+.3f} ({_verdict(f)})")


def reading(results: dict[str, Any]) -> list[str]:
  """Plain sentences on what the numbers show, noise included."""
  lines = []
  d = results["e3a"]["differences"]
  for percent in results["settings"]["percents"]:
    for label, worse in (("agreement", "lower"), ("docs NLL", "higher"),
                         ("addition log-prob", "lower")):
      vs_none = d[f"{label}: language {percent}% - none"]
      vs_random = d[f"{label}: language {percent}% - random {percent}%"]
      lines.append(
          f"E3a, {label}, ablating the top {percent}% language units: "
          f"{vs_none['value']:+.3f} vs no ablation ({_verdict(vs_none)}), "
          f"{vs_random['value']:+.3f} vs random units ({_verdict(vs_random)}; "
          f"the paper's claim needs this {worse} and outside noise).")
  for arm, r in results["e3b"]["finals"].items():
    lines.append(f"E3b, {arm}: {_gain_words(r, ' nats/token')}.")
  for name, r in results["e3b"]["between_arms"].items():
    lines.append(f"E3b, {name}: {_gain_words(r)}.")
  matched = results["e3b"]["matched_gain"]
  if matched["gain"] is None:
    lines.append("E3b: some arm gained nothing on the target, so no matched-gain comparison.")
  else:
    lines.append(f"E3b at the common target gain {matched['gain']:.3f}: forgetting " + ", ".join(
        f"{arm} {value:+.3f}" for arm, value in matched["forgetting"].items())
                 + " (interpolated along each curve; no interval: the paired differences "
                 "above are the tested comparison).")
  return lines


def write_report(results: dict[str, Any], out: run_dir.RunDir, command: str) -> None:
  """report.md (E3a and E3b tables, the reading, how it was run), e3a.png and e3b.png."""
  s, e3a, e3b = results["settings"], results["e3a"], results["e3b"]
  lines = ["# E3: task-relevant units (localize + ablate, targeted fine-tuning)", ""]
  if s["model"] == "tiny":
    lines += ["**Quick run**: a tiny random model on a few stimuli checks the pipeline; its "
              "figures mean nothing.", ""]
  lines += [
      "## E3a: language units, ablated", "",
      f"Model `{s['model']}`. Residual units (each dimension after each block), Welch t on "
      f"|activation|, last token of {s['stimuli']} twelve-word documentation sentences vs "
      f"{s['stimuli']} pseudoword lists, cut to 12 tokens (offline stand-in for the Fedorenko "
      f"localizer). Selected: " + ", ".join(
          f"top {p}% = {v['count']} units" for p, v in e3a["selections"].items())
      + f". Random units: the same count outside the selection, seeds {', '.join(map(str, SEEDS))}."
      f" Harness: {s['docs']} consecutive {s['doc_tokens']}-token chunks of the held-out "
      f"documentation split (disjoint from the localizer sentences), "
      f"{s['pairs']} subject-verb agreement pairs, {s['sums']} 1-shot additions. Every "
      f"condition runs the same program (the unablated one with an all-ones keep table, which "
      f"equals the plain model bit for bit).", "",
      "| condition | docs perplexity | agreement accuracy [95% CI] | addition gold log-prob "
      "[95% CI] |", "|---|---|---|---|"]
  for name, r in e3a["conditions"].items():
    lines.append(f"| {name} | {r['docs_perplexity']:.3f} | "
                 f"{_cell(r['agreement'], r['agreement_ci'])} | "
                 f"{_cell(r['addition_logprob'], r['addition_logprob_ci'])} |")
  lines += ["", "Paired differences over the same items (random: mean of the three seeds per "
            "item; bootstrap 95% CI):", "", "| difference | value [95% CI] | within noise |",
            "|---|---|---|"]
  for name, entry in e3a["differences"].items():
    lines.append(f"| {name} | {_cell(entry['value'], entry['ci'])} | {_noise(entry)} |")
  lines += ["", "![E3a](e3a.png)", "", "## E3b: targeted fine-tuning", "",
            f"Top 1% MLP units by Welch t on mean-pooled |h|, {s['code_stimuli']} standard-"
            f"library code snippets vs {s['code_stimuli']} documentation paragraphs "
            f"({s['code_tokens']} tokens): {e3b['selected_code_units']} units. Arms trained "
            f"{s['steps']} steps on other code snippets (batch {s['batch_size']} x "
            f"{s['seq_len']} tokens, the same batches, AdamW without weight decay, constant lr): "
            f"full (lr {s['lr_full']}), units (the selected units' gate/up columns and down rows, "
            f"lr {s['lr_units']}), random_units (as many random units, lr {s['lr_units']}), "
            f"freeze_general (all but the {e3b['general_units']} general-language MLP units, "
            f"sentences vs pseudowords, lr {s['lr_full']}). Target gain: the drop of held-out "
            f"code loss ({s['eval_docs']} unseen snippets); forgetting: the rise of the loss on "
            f"{s['eval_docs']} chunks of the held-out documentation split ({s['seq_len']} "
            f"tokens each; nats per token; paired bootstrap 95% CI over documents).", "",
            "| arm | lr | trained entries | target gain [95% CI] | within noise | forgetting "
            "[95% CI] | within noise |", "|---|---|---|---|---|---|---|"]
  for arm, r in e3b["finals"].items():
    lines.append(f"| {arm} | {r['lr']} | {r['trained_entries']} | {_gain_cells(r)}")
  lines += ["", "Between arms, paired over the same held-out documents (A - B; target gain: "
            "positive when A gained more; forgetting: positive when A forgot more; bootstrap "
            "95% CI):", "",
            "| A - B | target gain difference [95% CI] | within noise | forgetting difference "
            "[95% CI] | within noise |", "|---|---|---|---|---|"]
  for name, r in e3b["between_arms"].items():
    lines.append(f"| {name} | {_gain_cells(r)}")
  lines += ["", "Curves (step: target gain / forgetting):", ""]
  for arm, points in e3b["curves"].items():
    lines.append(f"* {arm}: " + "; ".join(
        f"{p['step']}: {p['target_gain']:+.3f} / {p['forgetting']:+.3f}" for p in points))
  lines += ["", "![E3b](e3b.png)", "", "## Reading", ""]
  lines += [f"* {line}" for line in reading(results)]
  secs = results["seconds"]
  lines += ["", "## Run", "", f"`{command}` on {results['date']}, {results['machine']}: "
            f"{secs['total']:.0f} s in all (" + ", ".join(
                f"{name} {value:.0f} s" for name, value in secs.items() if name != "total")
            + ").", ""]
  out.report.write_text("\n".join(lines))
  _plot(results, out)


def _plot(results: dict[str, Any], out: run_dir.RunDir) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  conditions = results["e3a"]["conditions"]
  names = list(conditions)
  colors = ["#999" if n == "none" else "#d62728" if n.startswith("language") else "#1f77b4"
            for n in names]
  figure, axes = plt.subplots(1, 3, figsize=(14, 4.2))
  for axis, (key, title) in zip(axes, (("docs_perplexity", "docs perplexity"),
                                       ("agreement", "agreement accuracy"),
                                       ("addition_logprob", "addition gold log-prob"))):
    values = [conditions[n][key] for n in names]
    if f"{key}_ci" in conditions[names[0]]:
      err = [[v - conditions[n][f"{key}_ci"][0] for v, n in zip(values, names)],
             [conditions[n][f"{key}_ci"][1] - v for v, n in zip(values, names)]]
      axis.bar(range(len(names)), values, yerr=err, capsize=3, color=colors)
    else:
      axis.bar(range(len(names)), values, color=colors)
    axis.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    axis.set_title(title, fontsize=10)
  figure.suptitle("E3a: ablating language units (red) vs random units (blue), 95% CI")
  figure.tight_layout()
  figure.savefig(out.path / "e3a.png", dpi=100)
  plt.close(figure)
  figure, axis = plt.subplots(figsize=(6, 4.5))
  for arm, points in results["e3b"]["curves"].items():
    axis.plot([p["target_gain"] for p in points], [p["forgetting"] for p in points], "o-",
              label=arm)
    final = results["e3b"]["finals"][arm]
    axis.errorbar(final["target_gain"]["value"], final["forgetting"]["value"],
                  xerr=[[final["target_gain"]["value"] - final["target_gain"]["ci"][0]],
                        [final["target_gain"]["ci"][1] - final["target_gain"]["value"]]],
                  yerr=[[final["forgetting"]["value"] - final["forgetting"]["ci"][0]],
                        [final["forgetting"]["ci"][1] - final["forgetting"]["value"]]],
                  fmt="none", ecolor="#888", capsize=2)
  axis.axhline(0, color="#bbb", linewidth=0.5)
  axis.axvline(0, color="#bbb", linewidth=0.5)
  axis.set_xlabel("target gain (held-out code loss drop, nats/token)")
  axis.set_ylabel("forgetting (held-out prose loss rise)")
  axis.legend(fontsize=8)
  axis.set_title("E3b: forgetting vs target gain (final point: 95% CI)", fontsize=10)
  figure.tight_layout()
  figure.savefig(out.path / "e3b.png", dpi=100)
  plt.close(figure)


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
  """Runs E3 and writes DIR/results.json, DIR/report.md, DIR/e3a.png, DIR/e3b.png.

  Args:
    argv: command-line arguments (default: `sys.argv[1:]`).
  """
  return common.run_experiment(
      argv, __doc__.splitlines()[0], "experiments/units.py", (FULL, QUICK), run, write_report,
      "e3a.png and e3b.png",
      quick_help="tiny random model, a few stimuli and steps: checks the pipeline",
      seed_help="stimuli and data seed", preview_lines=20)


if __name__ == "__main__":
  main()
