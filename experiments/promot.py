"""Experiment E1: does ProMoT keep a fine-tuned model from answering every prompt "True"?

Wang et al. (2022, arXiv 2211.00635) find that fine-tuning on one task first teaches its output
*format*: a model fine-tuned on RTE answers "True"/"False" to prompts of other tasks. ProMoT
trains a soft prompt first (model frozen), then the model with the prompt attached, so that the
prompt, not the weights, absorbs the format. This script measures that on a CPU:

* **target task**: the paper's RTE template over generated transitivity premises ("Ann is
  taller than Bob. Bob is taller than Cid. question: Ann is taller than Cid. Is it true or
  false? answer: True"); loss on the answer only, one example per row (the paper packs none);
* **held-out prompts of other formats**, 1-shot: capitals ("Q: What is the capital of Peru?
  A: Lima") and number successors ("Q: What comes after 17? A: 18"), plus the perplexity of
  held-out CPython documentation paragraphs;
* **arms**: the base model; standard fine-tuning; ProMoT (prompt tuning, then fine-tuning with
  the prompt frozen), with the same batches and step counts in both fine-tuning stages;
* **metrics** (no sampling): target accuracy (log p(True) against log p(False); ProMoT with its
  prompt), the format-specialization rate (share of held-out prompts whose greedy answer
  starts with True or False: the paper's Fig. 2 statistic), the held-out gold answer's mean
  log-probability and greedy exact match (all arms without a prompt), docs perplexity, and on
  the target items the True/False rate of the greedy answers, for every arm and for ProMoT's
  stage 1 alone (the frozen base model with the trained prompt: whether the prompt absorbed
  the format, the mechanism ProMoT relies on); 95%
  intervals (Wilson for shares, normal for means) and paired bootstrap intervals for the
  differences between the two fine-tuned arms, which say plainly when an effect is noise.

  python experiments/promot.py --out runs/e1            # SmolLM2-135M-Instruct, 8 min on 2 CPU cores
  python experiments/promot.py --quick --out /tmp/e1    # tiny random model, a smoke run

Writes DIR/results.json, DIR/report.md and DIR/promot.png (fresh each time).
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import shutil
import sys
import time
from typing import Any, Optional, Sequence

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=wrong-import-position
import common  # experiments/common.py: the script's directory is on sys.path
import stats  # experiments/stats.py
from instruct_pt import run_dir
from instruct_pt.data import sources
from instruct_pt.evaluation.scoring import Scorer
from instruct_pt.model.generate import Engine, SamplingConfig
from instruct_pt.train import finetune as finetune_lib
from instruct_pt.train import loop
from instruct_pt.train.optim import OptimizerConfig

ARMS = ("base", "standard_ft", "promot")
ANSWERS = ("True", "False")
NAMES = ("Ann", "Bob", "Cid", "Dora", "Eve", "Finn", "Gus", "Hana", "Ivo", "Jon", "Kai", "Lea",
         "Max", "Nina", "Omar", "Pia", "Raj", "Sara", "Tom", "Uma", "Vik", "Wes", "Yara", "Zoe")
RELATIONS = (("taller", "shorter"), ("older", "younger"), ("faster", "slower"),
             ("heavier", "lighter"), ("richer", "poorer"), ("stronger", "weaker"))
CAPITALS = (("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
            ("Japan", "Tokyo"), ("China", "Beijing"), ("Russia", "Moscow"), ("Egypt", "Cairo"),
            ("Peru", "Lima"), ("Greece", "Athens"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
            ("Finland", "Helsinki"), ("Poland", "Warsaw"), ("Austria", "Vienna"),
            ("Portugal", "Lisbon"), ("Ireland", "Dublin"), ("Kenya", "Nairobi"),
            ("Cuba", "Havana"), ("Chile", "Santiago"), ("Canada", "Ottawa"),
            ("Mexico", "Mexico City"), ("Argentina", "Buenos Aires"), ("Thailand", "Bangkok"),
            ("Vietnam", "Hanoi"), ("Iran", "Tehran"), ("Iraq", "Baghdad"),
            ("Turkey", "Ankara"), ("Hungary", "Budapest"), ("Denmark", "Copenhagen"),
            ("Belgium", "Brussels"), ("Netherlands", "Amsterdam"), ("India", "New Delhi"),
            ("Australia", "Canberra"), ("Colombia", "Bogota"), ("Venezuela", "Caracas"),
            ("Ukraine", "Kyiv"), ("Romania", "Bucharest"), ("Bulgaria", "Sofia"),
            ("Serbia", "Belgrade"), ("Morocco", "Rabat"), ("Nigeria", "Abuja"))


@dataclasses.dataclass(frozen=True)
class Settings:
  """The sizes of one run (`FULL` or `QUICK`)."""
  model: str
  steps: int
  prompt_length: int
  batch_size: int
  seq_len: int
  train_examples: int
  eval_examples: int
  heldout_per_task: int
  docs: int
  doc_tokens: int
  new_tokens: int
  learning_rate: float = 3e-4
  prompt_learning_rate: float = 3e-2


FULL = Settings("smollm2", steps=20, prompt_length=20, batch_size=8, seq_len=48,
                train_examples=512, eval_examples=100, heldout_per_task=40, docs=32,
                doc_tokens=64, new_tokens=5)
QUICK = Settings("tiny", steps=3, prompt_length=4, batch_size=8, seq_len=128,
                 train_examples=64, eval_examples=16, heldout_per_task=8, docs=4,
                 doc_tokens=32, new_tokens=8)


# Data ------------------------------------------------------------------------------------------

def target_examples(count: int, seed: int) -> list[tuple[str, str]]:
  """`(prompt, answer)` pairs of the target task, half True, in the paper's RTE template."""
  rng = np.random.default_rng(seed)
  examples = []
  for index in range(count):
    a, b, c = rng.choice(NAMES, size=3, replace=False)
    more, less = RELATIONS[rng.integers(len(RELATIONS))]
    premise = f"{a} is {more} than {b}. {b} is {more} than {c}."
    true = index % 2 == 0
    hypothesis = [[f"{c} is {more} than {a}.", f"{a} is {less} than {c}."],
                  [f"{a} is {more} than {c}.", f"{c} is {less} than {a}."]][true][
                      rng.integers(2)]
    examples.append((f"{premise} question: {hypothesis} Is it true or false? answer:",
                     ANSWERS[0] if true else ANSWERS[1]))
  return examples


def heldout_prompts(per_task: int, seed: int) -> list[tuple[str, str, str]]:
  """`(task, 1-shot prompt, gold answer)` of the held-out formats."""
  rng = np.random.default_rng(seed)
  prompts = []
  for _ in range(per_task):
    (shot, shot_answer), (query, answer) = (CAPITALS[i] for i in rng.choice(
        len(CAPITALS), size=2, replace=False))
    prompts.append(("capitals", f"Q: What is the capital of {shot}? A: {shot_answer}\n\n"
                    f"Q: What is the capital of {query}? A:", answer))
  for _ in range(per_task):
    shot, query = rng.choice(np.arange(1, 99), size=2, replace=False)
    prompts.append(("successor", f"Q: What comes after {shot}? A: {shot + 1}\n\n"
                    f"Q: What comes after {query}? A:", str(query + 1)))
  return prompts


def step_batches(tokenizer, examples: Sequence[tuple[str, str]], settings: Settings, seed: int):
  """`start_step -> iterator` of one-example-per-row batches; batch k depends on k alone."""
  rows = []
  for prompt, answer in examples:
    context, target = tokenizer.encode(prompt), tokenizer.encode(" " + answer)
    tokens = context + target
    if len(tokens) - 1 > settings.seq_len:
      raise ValueError(f"an example has {len(tokens) - 1} tokens; seq_len is {settings.seq_len}")
    rows.append((tokens, len(context)))

  def batch(step: int) -> dict[str, np.ndarray]:
    shape = (settings.batch_size, settings.seq_len)
    out = {name: np.zeros(shape, np.int32) for name in (
        "decoder_input_tokens", "decoder_target_tokens", "decoder_loss_weights",
        "decoder_segment_ids", "decoder_positions")}
    picks = np.random.default_rng([seed, step]).choice(len(rows), settings.batch_size,
                                                       replace=False)
    for r, pick in enumerate(picks):
      tokens, answer_start = rows[pick]
      n = len(tokens) - 1
      out["decoder_input_tokens"][r, :n] = tokens[:-1]
      out["decoder_target_tokens"][r, :n] = tokens[1:]
      out["decoder_loss_weights"][r, answer_start - 1:n] = 1
      out["decoder_segment_ids"][r, :n] = 1
      out["decoder_positions"][r, :n] = np.arange(n)
    return out

  return lambda start: (batch(step) for step in range(start, 1 << 30))


# Answers ---------------------------------------------------------------------------------------

def answer_line(generation: str) -> str:
  """The answer a greedy generation gives: its first non-blank line, stripped."""
  return generation.strip().split("\n")[0].strip()


def true_false_hits(generations: Sequence[str]) -> list[float]:
  """1.0 for each generation whose answer's first word is "True" or "False" (case as written,
  trailing "." or "," dropped), else 0.0; their mean is the True/False rate.

  Args:
    generations: decoded greedy continuations, one per prompt.
  """
  return [float(bool(line) and line.split(" ")[0].strip(".,") in ANSWERS)
          for line in map(answer_line, generations)]


# Evaluation ------------------------------------------------------------------------------------

class Evaluator:
  """The metrics of one arm. The scorers and engines are built once (one pair without a
  prompt, one with ProMoT's prompt) and get each arm's parameters, so their programs compile
  once."""

  def __init__(self, model, mesh, rules, settings: Settings, data: dict[str, Any]):
    self.model, self.mesh, self.rules = model, mesh, rules
    self.tokenizer, self.settings, self.data = model.tokenizer, settings, data
    self.scorer, self.engine = self._scorer_and_engine(None)
    self.prompted: Optional[tuple[np.ndarray, Scorer, Engine]] = None

  def _scorer_and_engine(self, prompt: Optional[np.ndarray]) -> tuple[Scorer, Engine]:
    model, eos_id = self.model, self.tokenizer.eos_id
    return (Scorer(model.config, model.params, self.mesh, self.rules, row_len=128,
                   prompt=prompt),
            Engine(model.config, model.params, self.mesh, self.rules,
                   eos_ids=[0 if eos_id is None else eos_id], num_slots=8, max_len=160,
                   decode_chunk=self.settings.new_tokens, prompt=prompt))

  def _greedy(self, engine: Engine, prompts: Sequence[str]) -> list[str]:
    return [self.tokenizer.decode(ids) for ids in engine.generate(
        [self.tokenizer.encode(p) for p in prompts],
        SamplingConfig(max_new_tokens=self.settings.new_tokens))]

  def target(self, params, prompt: Optional[np.ndarray] = None) -> dict[str, Any]:
    """The target-task metrics of `params`, reading `prompt` ahead of every item if given:
    accuracy (log p(True) against log p(False)), the share answered True, and the True/False
    rate of the greedy answers. `items` holds the per-item values."""
    if prompt is None:
      scorer, engine = self.scorer, self.engine
    else:
      if self.prompted is None or not np.array_equal(self.prompted[0], prompt):
        self.prompted = (prompt, *self._scorer_and_engine(prompt))
      _, scorer, engine = self.prompted
    scorer.params = engine.params = params
    encode, target = self.tokenizer.encode, self.data["target"]
    scores = scorer.score([(encode(p), encode(" " + a)) for p, _ in target for a in ANSWERS])
    said_true = [scores[2 * i][0] > scores[2 * i + 1][0] for i in range(len(target))]
    correct = [float(said == (a == ANSWERS[0])) for said, (_, a) in zip(said_true, target)]
    formatted = true_false_hits(self._greedy(engine, [p for p, _ in target]))
    return {"target_accuracy": float(np.mean(correct)),
            "target_accuracy_ci": stats.wilson(sum(correct), len(correct)),
            "target_true_share": float(np.mean(said_true)),
            "target_format_rate": float(np.mean(formatted)),
            "target_format_rate_ci": stats.wilson(sum(formatted), len(formatted)),
            "items": {"correct": correct, "target_formatted": formatted}}

  def __call__(self, params, prompt: Optional[np.ndarray] = None) -> dict[str, Any]:
    """The metrics of `params` (with `prompt` on the target task only)."""
    results = self.target(params, prompt)
    encode = self.tokenizer.encode
    self.scorer.params = self.engine.params = params
    heldout = self.data["heldout"]
    gold = [value for value, _ in self.scorer.score(
        [(encode(p), encode(" " + answer)) for _, p, answer in heldout])]
    outputs = self._greedy(self.engine, [p for _, p, _ in heldout])
    first_lines = [answer_line(text) for text in outputs]
    formatted = true_false_hits(outputs)
    exact = [float(line == answer) for line, (_, _, answer) in zip(first_lines, heldout)]
    docs = self.data["docs"]
    doc_logprob = sum(v for v, _ in self.scorer.score([(d[:1], d[1:]) for d in docs]))
    per_task = {}
    for task in sorted({t for t, _, _ in heldout}):
      members = [i for i, (t, _, _) in enumerate(heldout) if t == task]
      per_task[task] = {"format_rate": float(np.mean([formatted[i] for i in members])),
                        "gold_logprob": float(np.mean([gold[i] for i in members])),
                        "exact_match": float(np.mean([exact[i] for i in members]))}
    return {
        **results,
        "format_rate": float(np.mean(formatted)),
        "format_rate_ci": stats.wilson(sum(formatted), len(formatted)),
        "gold_logprob": float(np.mean(gold)),
        "gold_logprob_ci": stats.mean_interval(gold),
        "exact_match": float(np.mean(exact)),
        "exact_match_ci": stats.wilson(sum(exact), len(exact)),
        "docs_perplexity": float(math.exp(-doc_logprob / sum(len(d) - 1 for d in docs))),
        "per_task": per_task, "outputs": first_lines,
        "items": {**results["items"], "formatted": formatted, "gold": gold},
    }


# The arms --------------------------------------------------------------------------------------

def run_arms(settings: Settings, out: run_dir.RunDir, seed: int) -> dict[str, Any]:
  """Trains the fine-tuned arms and measures all three; returns the results."""
  start = time.perf_counter()
  model, mesh, rules = common.load_model(settings.model, seed)
  tokenizer = model.tokenizer
  docs = [ids[:settings.doc_tokens] for ids in map(tokenizer.encode, sources.demo_corpus(
      "held_out")) if len(ids) >= settings.doc_tokens][:settings.docs]
  data = {"target": target_examples(settings.eval_examples, seed + 1),
          "heldout": heldout_prompts(settings.heldout_per_task, seed + 2), "docs": docs}
  batches = step_batches(tokenizer, target_examples(settings.train_examples, seed), settings,
                         seed)
  train = loop.TrainConfig(num_steps=settings.steps, batch_size=settings.batch_size,
                           seq_len=settings.seq_len, seed=seed, log_every=5,
                           checkpoint_every=settings.steps, keep_checkpoints=1,
                           async_checkpointing=False)
  optimizer = OptimizerConfig(learning_rate=settings.learning_rate, warmup_steps=3,
                              schedule="constant", weight_decay=0.0)
  evaluate = Evaluator(model, mesh, rules, settings, data)
  seconds = {"load": time.perf_counter() - start}
  results = {}

  def timed(name, work, *args):
    begin = time.perf_counter()
    value = work(*args)
    seconds[name] = time.perf_counter() - begin
    return value

  results["base"] = timed("evaluate_base", lambda: evaluate(model.params))
  ft = timed("train_standard_ft", lambda: loop.train(
      model.config, optimizer, train, mesh, rules, out.sub("standard_ft"), batches,
      init_params=lambda: model.params, show_progress=False))
  ft_losses = ft.losses
  results["standard_ft"] = timed("evaluate_standard_ft", evaluate, ft.state.params)
  del ft  # its parameters and optimizer state
  promot = timed("train_promot", lambda: finetune_lib.finetune(
      model.config, optimizer, train, finetune_lib.FinetuneConfig(
          mode="promot", stage1_steps=settings.steps, stage2_steps=settings.steps,
          prompt_length=settings.prompt_length,
          prompt_learning_rate=settings.prompt_learning_rate), mesh, rules, out.sub("promot"),
      train_batches=lambda stage: batches, init_params=lambda: model.params,
      show_progress=False))
  prompt = run_dir.read_prompt(out.sub("promot").path, model.config.embed_dim)  # stage 1's
  stage1 = timed("evaluate_promot_stage1", evaluate.target, model.params, prompt)
  results["promot"] = timed("evaluate_promot", evaluate, promot.state.params, prompt)
  for arm in ("standard_ft", "promot"):  # checkpoints are not needed: keep the metrics only
    for run in (out.sub(arm), out.sub(arm).stage(1), out.sub(arm).stage(2)):
      shutil.rmtree(run.checkpoints, ignore_errors=True)
  seconds["total"] = time.perf_counter() - start
  items = {arm: results[arm].pop("items") for arm in ARMS}
  ft_items, promot_items = items["standard_ft"], items["promot"]
  differences = {
      "target_format_rate: promot_stage1 - base": _difference(
          stage1.pop("items"), items["base"], "target_formatted"),
      "format_rate: standard_ft - promot": _difference(ft_items, promot_items, "formatted"),
      "gold_logprob: promot - standard_ft": _difference(promot_items, ft_items, "gold"),
      "target_accuracy: standard_ft - promot": _difference(ft_items, promot_items, "correct"),
      "format_rate: standard_ft - base": _difference(ft_items, items["base"], "formatted"),
  }
  return {
      "settings": dataclasses.asdict(settings), "seed": seed, "arms": results,
      "promot_stage1": stage1, "differences": differences,
      "losses": {"standard_ft": ft_losses, **{
          f"promot_stage{stage}": losses for stage, losses in promot.losses.items()}},
      "seconds": seconds, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                                     f"{platform.system()}, jax {jax.__version__}",
      "date": time.strftime("%Y-%m-%d"),
  }


def _difference(a: dict, b: dict, key: str) -> dict[str, Any]:
  # The value is mean(a) - mean(b) (not stats.paired_difference's mean(a - b), which may differ
  # in the last bit), so that results.json stays as it was.
  return stats.noise_entry(float(np.mean(a[key]) - np.mean(b[key])),
                           stats.paired_bootstrap(a[key], b[key]))


# Report ----------------------------------------------------------------------------------------

COLUMNS = (("target_accuracy", "target accuracy"),
           ("format_rate", "True/False rate, held-out prompts"),
           ("gold_logprob", "held-out gold log-prob"),
           ("exact_match", "held-out exact match"))


def _cell(value: float, interval: Sequence[float]) -> str:
  return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def verdict(results: dict[str, Any]) -> list[str]:
  """Plain sentences on what the numbers show, noise included."""
  d = results["differences"]

  def said(key: str, what: str) -> str:
    entry = d[key]
    if entry["ci"] == [0.0, 0.0]:
      return f"{what}: 0, the same on every item."
    size = f"{entry['value']:+.3f} (95% CI {entry['ci'][0]:+.3f} to {entry['ci'][1]:+.3f})"
    return (f"{what}: {size}, within noise." if entry["within_noise"]
            else f"{what}: {size}, outside noise.")

  stage1, base = results["promot_stage1"], results["arms"]["base"]
  lines = [said("target_format_rate: promot_stage1 - base",
                "ProMoT stage 1: the frozen base model's True/False rate on the target items "
                f"with the trained prompt ({stage1['target_format_rate']:.3f}), minus without it "
                f"({base['target_format_rate']:.3f})")]
  absorbed = d["target_format_rate: promot_stage1 - base"]
  if absorbed["within_noise"] or absorbed["value"] <= 0:
    lines.append("The prompt did not absorb the target format: with it the frozen model does not "
                 "answer True/False measurably more often than without it, so ProMoT's "
                 "mechanism was never engaged in this run; its comparison below says nothing "
                 "about the method.")
  else:
    lines.append(f"The prompt absorbed the target format: with it the frozen model answers "
                 f"True/False to {stage1['target_format_rate']:.0%} of the target items "
                 f"against {base['target_format_rate']:.0%} without it, so stage 2 started with "
                 f"the prompt carrying the format, as ProMoT intends.")
  lines.append(said("format_rate: standard_ft - base",
                    "Standard fine-tuning's True/False rate on held-out prompts, minus the base "
                    "model's"))
  if d["format_rate: standard_ft - base"]["within_noise"] or \
     d["format_rate: standard_ft - base"]["value"] <= 0:
    lines.append("Standard fine-tuning did not measurably specialize the output format here, "
                 "so ProMoT had nothing to fix in this run; the ProMoT comparison below says "
                 "nothing about the method.")
  lines.append(said("format_rate: standard_ft - promot",
                    "True/False rate, standard fine-tuning minus ProMoT"))
  lines.append(said("gold_logprob: promot - standard_ft",
                    "Held-out gold log-probability, ProMoT minus standard fine-tuning"))
  lines.append(said("target_accuracy: standard_ft - promot",
                    "Target accuracy, standard fine-tuning minus ProMoT"))
  for arm in ARMS[1:]:
    r = results["arms"][arm]
    if r["target_accuracy_ci"][0] <= 0.5 <= r["target_accuracy_ci"][1]:
      lines.append(f"{arm} did not learn the target task: its accuracy "
                   f"{r['target_accuracy']:.3f} is within noise of chance (0.5), answering "
                   f"True to {r['target_true_share']:.0%} of the items.")
  return lines


def write_report(results: dict[str, Any], out: run_dir.RunDir, command: str) -> None:
  """report.md (the tables, the verdict, how it was run) and promot.png."""
  arms = results["arms"]
  quick = results["settings"]["model"] == "tiny"
  lines = ["# E1: ProMoT against standard fine-tuning (format specialization)", ""]
  if quick:
    lines += ["**Quick run**: a tiny random model on a few examples checks the pipeline; its "
              "figures mean nothing.", ""]
  s = results["settings"]
  lines += [f"Model `{s['model']}`; target task: {s['train_examples']} generated RTE-template "
            f"transitivity examples, {s['eval_examples']} held out; held-out formats: "
            f"{s['heldout_per_task']} 1-shot capitals and {s['heldout_per_task']} 1-shot "
            f"successor prompts, {s['docs']} documentation paragraphs of {s['doc_tokens']} "
            f"tokens. Standard FT: {s['steps']} steps, batch {s['batch_size']}, lr "
            f"{s['learning_rate']}; ProMoT: {s['steps']} prompt steps (length "
            f"{s['prompt_length']}, lr {s['prompt_learning_rate']}), then {s['steps']} model "
            f"steps (lr {s['learning_rate']}) with the prompt frozen. Seed {results['seed']}.",
            "", "| arm | " + " | ".join(f"{name} [95% CI]" for _, name in COLUMNS)
            + " | docs perplexity |", "|---" * (len(COLUMNS) + 2) + "|"]
  for arm in ARMS:
    r = arms[arm]
    lines.append(f"| {arm} | " + " | ".join(_cell(r[key], r[f"{key}_ci"]) for key, _ in COLUMNS)
                 + f" | {r['docs_perplexity']:.3f} |")
  target_rows = {**{arm: arms[arm] for arm in ARMS[:2]},
                 "promot_stage1": results["promot_stage1"], "promot": arms["promot"]}
  lines += ["", "Target task, greedy answers and scores; ProMoT's rows read the trained prompt "
            "(`promot_stage1`: the frozen base model with stage 1's prompt, before stage 2):",
            "", "| arm | target accuracy [95% CI] | True/False rate, target items [95% CI] | "
            "share scored True (log p(True) > log p(False)) |", "|---|---|---|---|"]
  for arm, r in target_rows.items():
    lines.append(f"| {arm} | {_cell(r['target_accuracy'], r['target_accuracy_ci'])} | "
                 f"{_cell(r['target_format_rate'], r['target_format_rate_ci'])} | "
                 f"{r['target_true_share']:.3f} |")
  lines += ["", "Paired differences over the same items (bootstrap 95% CI):", "",
            "| difference | value [95% CI] | within noise |", "|---|---|---|"]
  for name, entry in results["differences"].items():
    lines.append(f"| {name} | {_cell(entry['value'], entry['ci'])} | "
                 f"{'yes' if entry['within_noise'] else 'no'} |")
  lines += ["", "Per held-out task (True/False rate, gold log-prob, exact match):", "",
            "| arm / task | True/False rate | gold log-prob | exact match |", "|---|---|---|---|"]
  for arm in ARMS:
    for task, r in arms[arm]["per_task"].items():
      lines.append(f"| {arm} / {task} | {r['format_rate']:.3f} | {r['gold_logprob']:.3f} | "
                   f"{r['exact_match']:.3f} |")
  lines += ["", "## Reading", ""] + [f"* {line}" for line in verdict(results)]
  secs = results["seconds"]
  lines += ["", "## Run", "", f"`{command}` on {results['date']}, {results['machine']}: "
            f"{secs['total']:.0f} s in all (" + ", ".join(
                f"{name} {value:.0f} s" for name, value in secs.items() if name != "total")
            + ").", "", "![E1](promot.png)", ""]
  out.report.write_text("\n".join(lines))
  _plot(results, str(out.path / "promot.png"))


def _plot(results: dict[str, Any], path: str) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
  for axis, (key, name) in zip(axes, COLUMNS[:3]):
    values = [results["arms"][arm][key] for arm in ARMS]
    low = [v - results["arms"][arm][f"{key}_ci"][0] for v, arm in zip(values, ARMS)]
    high = [results["arms"][arm][f"{key}_ci"][1] - v for v, arm in zip(values, ARMS)]
    axis.bar(ARMS, values, yerr=[low, high], capsize=4, color=["#999", "#d62728", "#1f77b4"])
    axis.set_title(name, fontsize=10)
  figure.suptitle("E1: base, standard fine-tuning, ProMoT (95% CI)")
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  plt.close(figure)


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
  """Runs E1 and writes DIR/results.json, DIR/report.md, DIR/promot.png.

  Args:
    argv: command-line arguments (default: `sys.argv[1:]`).
  """
  return common.run_experiment(
      argv, __doc__.splitlines()[0], "experiments/promot.py", (FULL, QUICK), run_arms, write_report,
      "promot.png",
      quick_help="tiny random model, a few steps: checks the pipeline in seconds",
      seed_help="data and initialisation seed", preview_lines=12)


if __name__ == "__main__":
  main()
