"""`instruct-pt data inspect`: what a task or mixture feeds the model, before spending a TPU-day.

Decoded examples with the tokens that carry no loss marked, per-task token counts, the shares
a mixture's rates imply, and which demo tasks still read hand-made stand-in files.
"""

from __future__ import annotations

import itertools
from typing import Mapping, Sequence

# First: TensorFlow imported quietly, before SeqIO imports it.
from instruct_pt.data.tf_runtime import tf  # pylint: disable=unused-import
import seqio  # pylint: disable=wrong-import-order

from instruct_pt.data import formats
from instruct_pt.data.tasks import DEMO_DATA_DIR, DEMO_STAND_IN_FILES, special_id

# Marks tokens that carry no loss in reports.
MASK_OPEN, MASK_CLOSE = "⟦", "⟧"


def report(name: str, vocabulary: seqio.Vocabulary, sequence_length: int,
            num_examples: int = 3, sample_size: int = 200) -> str:
  """A report to read before training on a task or mixture.

  It shows the first `num_examples` training examples (shuffled with seed 0, as a feed with
  seed 0 draws them), decoded, with the tokens that carry no loss between ⟦ and ⟧ and the
  BOS / EOS tokens written `<s>` / `</s>`; then, per task, counts over its first
  `sample_size` examples (unshuffled): examples, tokens, loss tokens, tokens per example and
  examples longer than `sequence_length` (truncated in training); for a mixture, each task's
  rate and the implied shares of examples, tokens and loss tokens; and which demo tasks read
  hand-made stand-in files.

  Args:
    name: a registered task or mixture.
    vocabulary: its tokenizer.
    sequence_length: the training sequence length.
    num_examples: examples to show.
    sample_size: examples counted per task.
  """
  provider = seqio.get_mixture_or_task(name)
  tasks = seqio.get_subtasks(provider)
  lengths = {"targets": sequence_length, "loss_weights": sequence_length}
  kind = "mixture" if isinstance(provider, seqio.Mixture) else "task"
  lines = [f"{kind} {name}: {len(tasks)} task(s), sequence length {sequence_length}",
           f"tokens without loss are shown {MASK_OPEN}like this{MASK_CLOSE}"]
  dataset = provider.get_dataset(lengths, split="train", shuffle=True, seed=0, num_epochs=None,
                                 try_in_mem_cache=False)
  for number, example in enumerate(itertools.islice(dataset.as_numpy_iterator(),
                                                    num_examples)):
    weights = example["loss_weights"]
    lines += ["", f"--- example {number}: {len(weights)} tokens, {int(weights.sum())} with loss",
              render_example(example["targets"], weights, vocabulary)]
  rates = {t.name: provider.get_rate(t) if kind == "mixture" else 1.0 for t in tasks}
  counts = {t.name: _task_counts(t, lengths, sample_size) for t in tasks}
  lines += [""] + _counts_table(counts, rates, sequence_length, sample_size)
  stand_ins = [t.name for t in tasks if t.name in DEMO_STAND_IN_FILES]
  files = ", ".join(f"{t} <- {DEMO_STAND_IN_FILES[t]}" for t in stand_ins)
  lines.append(f"stand-in data (hand-made files in {DEMO_DATA_DIR}, not synthesis output): "
               f"{files or 'none'}")
  return "\n".join(lines)


def render_example(targets: Sequence[int], weights: Sequence[int],
                   vocabulary: seqio.Vocabulary) -> str:
  """Decoded `targets`, runs without loss wrapped in ⟦…⟧, BOS / EOS written `<s>` / `</s>`.

  Args:
    targets: token ids.
    weights: their 0/1 loss weights.
    vocabulary: the tokenizer.
  """
  specials = {special_id(vocabulary, "bos_id"): formats.BOS,
              special_id(vocabulary, "eos_id"): formats.EOS}
  pieces = []
  for masked, run in itertools.groupby(zip(targets, weights), key=lambda tw: tw[1] == 0):
    text = _decode_with_specials([int(t) for t, _ in run], vocabulary, specials)
    pieces.append(f"{MASK_OPEN}{text}{MASK_CLOSE}" if masked else text)
  return "".join(pieces)


def _decode_with_specials(ids: list[int], vocabulary, specials) -> str:
  out = []
  for special, group in itertools.groupby(ids, key=lambda i: i in specials):
    group = list(group)
    out += [specials[i] for i in group] if special else [vocabulary.decode(group)]
  return "".join(out)


def _task_counts(task: seqio.Task, lengths: Mapping[str, int], sample_size: int) -> dict:
  """Counts over the first `sample_size` examples of `task` (before truncation)."""
  dataset = task.get_dataset(lengths, split="train", shuffle=False, num_epochs=1,
                             trim_output_features=False, try_in_mem_cache=False)
  limit = lengths["targets"]
  counts = dict(examples=0, tokens=0, loss_tokens=0, truncated=0)
  for example in dataset.take(sample_size).as_numpy_iterator():
    weights = example["loss_weights"]
    counts["examples"] += 1
    counts["tokens"] += min(len(weights), limit)
    counts["loss_tokens"] += int(weights[:limit].sum())
    counts["truncated"] += int(len(weights) > limit)
  return counts


def _counts_table(counts: Mapping[str, dict], rates: Mapping[str, float],
                  sequence_length: int, sample_size: int) -> list[str]:
  """Per-task count lines, with the mixture's implied shares."""
  per_example = {name: {k: c[k] / max(c["examples"], 1) for k in ("tokens", "loss_tokens")}
                 for name, c in counts.items()}
  totals = {k: sum(rates[n] * per_example[n][k] for n in counts) for k in ("tokens",
                                                                            "loss_tokens")}
  total_rate = sum(rates.values())
  lines = [f"per task, over its first {sample_size} examples (tokens after truncation to "
           f"{sequence_length}); shares implied by the rates:",
           f"{'task':<28} {'rate':>9} {'examples':>8} {'tokens':>8} {'loss tok':>8} "
           f"{'tok/ex':>7} {'trunc':>5} {'ex %':>6} {'tok %':>6} {'loss %':>6}"]
  for name, c in counts.items():
    shares = [100 * rates[name] / total_rate] + [
        100 * rates[name] * per_example[name][k] / max(totals[k], 1e-12)
        for k in ("tokens", "loss_tokens")]
    lines.append(f"{name:<28} {rates[name]:>9.5g} {c['examples']:>8} {c['tokens']:>8} "
                 f"{c['loss_tokens']:>8} {per_example[name]['tokens']:>7.1f} "
                 f"{c['truncated']:>5} " + " ".join(f"{s:>6.2f}" for s in shares))
  return lines
