"""What the device suite's parts share: sizes (real and --smoke), the per-part JSON, the
synthesis prompts and evaluation requests both systems see, helpers.

Imports neither jax nor torch: the torch parts (`suite_torch.py`) run in processes that must
never initialise jax on the device, the jax helpers are in `suite_jax.py`.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import time
from typing import Any, Callable, Optional

import numpy as np

# Issue #22: training MFU; ours over transformers with a static cache; decode and end-to-end
# synthesis against their roofline floors (`roofline.py`).
TARGETS = {"mfu": 0.45, "vs_transformers": 2.0, "roofline": 0.60, "end_to_end": 0.70}
Request = tuple[list[int], list[int]]  # (context ids, continuation ids)


@dataclasses.dataclass(frozen=True)
class Sizes:
  """What each part measures: the real sizes on an accelerator, toy ones with --smoke."""
  # (preset, attention, remat, batch) in priority order; each batch is fixed (no probing
  # compiles), estimated to fit with room, smaller only if its compiled step does not fit.
  train_cases: tuple[tuple[str, str, str, int], ...]
  train_seq: int
  train_steps: int
  train_case_seconds: float  # a case is started only with this much budget left
  synth_preset: str
  synth_overrides: dict
  prompt_lengths: tuple[int, int]
  new_tokens: int
  synth_batch: int
  synth_max_batch: int
  prefill_row_len: int
  max_prefill_tokens: int
  eval_models: tuple[str, ...]
  eval_requests: int
  eval_row_len: int
  eval_rows: int
  copy_elements: int
  matmul_size: int


FULL = Sizes(
    # Batches from activations of about 34 x embed + 6 x mlp bytes per token and layer (none;
    # a sixteenth of that with full remat) next to 16 bytes of state per parameter, on an
    # H200; XLA attention also keeps [heads, 2048, 2048] float32 scores per row and layer.
    # One compile and six steps each: the 150 s cap runs two or three; `--caps train=580`
    # all of them.
    train_cases=(("instructlm_1_3b", "cudnn", "none", 16), ("instructlm_1_3b", "xla", "none", 4),
                 ("instructlm_1_3b", "cudnn", "full", 64),
                 ("instructlm_500m", "cudnn", "none", 32),
                 ("instructlm_1_3b", "xla", "full", 16),
                 ("instructlm_500m", "cudnn", "full", 64)),
    train_seq=2048, train_steps=5, train_case_seconds=45,
    synth_preset="mistral_7b", synth_overrides={}, prompt_lengths=(1000, 3500),
    new_tokens=400, synth_batch=32, synth_max_batch=256, prefill_row_len=4096,
    max_prefill_tokens=16384,
    eval_models=("smollm2_135m", "instructlm_1_3b"), eval_requests=1000, eval_row_len=2048,
    eval_rows=16, copy_elements=2**30, matmul_size=8192)

# CPU: "dot_product" stands in for cuDNN (the same jax.nn.dot_product_attention call).
SMOKE = Sizes(
    train_cases=(("tiny", "dot_product", "full", 4),), train_seq=64,
    train_steps=2, train_case_seconds=2,
    synth_preset="tiny", synth_overrides={"sliding_window": 48}, prompt_lengths=(20, 60),
    new_tokens=8, synth_batch=4, synth_max_batch=8, prefill_row_len=128,
    max_prefill_tokens=128,
    eval_models=("tiny",), eval_requests=24, eval_row_len=256, eval_rows=4,
    copy_elements=2**20, matmul_size=256)


def sizes_for(smoke: bool) -> Sizes:
  """SMOKE or FULL.

  Args:
    smoke: toy sizes.
  """
  return SMOKE if smoke else FULL


class Part:
  """The JSON of one part: rows of measurements, notes, errors; rewritten after each change.

  Args:
    name: the part.
    out_dir: where `name.json` goes.
    budget: seconds from now until the part stops starting measurements.
    smoke: toy sizes.
    platform: what runs the part, at least "jax" (version), "backend" and "device" (its kind);
      `suite_jax.describe_device()` for the jax parts, `suite_torch` describes its own.
  """

  def __init__(self, name: str, out_dir: str, budget: float, smoke: bool,
               platform: dict[str, Any]):
    self.path = os.path.join(out_dir, f"{name}.json")
    self.deadline = time.monotonic() + budget
    self.start = time.monotonic()
    self.data: dict[str, Any] = {
        "part": name, "smoke": smoke, **platform, "budget_s": budget, "finished": False,
        "rows": [], "notes": [], "errors": []}
    self.save()

  def remaining(self) -> float:
    """Seconds left before the part's deadline."""
    return self.deadline - time.monotonic()

  def add(self, row: dict[str, Any]) -> None:
    """Records one measurement.

    Args:
      row: its figures (JSON-serialisable).
    """
    self.data["rows"].append(row)
    self.save()

  def note(self, text: str) -> None:
    """Records (and prints) a remark, e.g. a case not run.

    Args:
      text: the remark.
    """
    print(f"  note: {text}", flush=True)
    self.data["notes"].append(text)
    self.save()

  def error(self, case: str, error: BaseException) -> None:
    """Records (and prints) a case that failed; the part goes on with the next.

    Args:
      case: which case.
      error: what it raised.
    """
    text = " ".join(f"{type(error).__name__}: {error}".split())[:400]
    print(f"  error in {case}: {text}", flush=True)
    self.data["errors"].append({"case": case, "error": text})
    self.save()

  def each(self, cases: dict[str, Any], seconds_needed: float,
           measure: Callable[[Any], None]) -> None:
    """Runs `measure(case)` for each case while the budget lasts; a case that fails is
    recorded and the next one runs.

    Args:
      cases: the cases' values by name, in priority order.
      seconds_needed: a case starts only with this much budget left (else a note says so).
      measure: measures one case and `add`s its row.
    """
    for name, case in cases.items():
      if self.remaining() < seconds_needed:
        self.note(f"{name}: not run (time cap)")
        continue
      print(f"{self.data['part']}: {name}", flush=True)
      try:
        measure(case)
      except Exception as e:  # pylint: disable=broad-except
        self.error(name, e)
      gc.collect()

  def save(self, finished: bool = False) -> None:
    """Rewrites the JSON (atomically).

    Args:
      finished: the part ran to its end.
    """
    self.data["finished"] = finished
    self.data["elapsed_s"] = round(time.monotonic() - self.start, 1)
    with open(self.path + ".tmp", "w", encoding="utf-8") as f:
      json.dump(self.data, f, indent=1)
    os.replace(self.path + ".tmp", self.path)


def read_part(out_dir: str, name: str) -> Optional[dict[str, Any]]:
  """A part's JSON, or None when it did not write one.

  Args:
    out_dir: the suite's output directory.
    name: the part.
  """
  path = os.path.join(out_dir, f"{name}.json")
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def is_out_of_memory(error: BaseException) -> bool:
  """Whether `error` is XLA (or torch) running out of device memory.

  Args:
    error: the exception.
  """
  text = str(error)
  return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def synthesis_prompts(sizes: Sizes, vocab_size: int, count: int) -> list[list[int]]:
  """`count` random prompts with lengths uniform in `sizes.prompt_lengths`; prompt i is the
  same in every run and for every count.

  Args:
    sizes: the suite's sizes.
    vocab_size: the model's vocabulary (ids 3 and up are drawn).
    count: how many prompts.
  """
  prompts = []
  for i in range(count):
    rng = np.random.default_rng([0, i])
    length = rng.integers(sizes.prompt_lengths[0], sizes.prompt_lengths[1] + 1)
    prompts.append(rng.integers(3, vocab_size, int(length)).tolist())
  return prompts


# ---------------------------------------------------------------- evaluation requests (part 3)

def make_requests(sizes: Sizes, vocab_size: int) -> list[Request]:
  """Random (context, continuation) ids: contexts up to a quarter row, continuations 1-24.

  Args:
    sizes: the suite's sizes (request count, row length).
    vocab_size: the model's vocabulary (ids 3 and up are drawn).
  """
  rng = np.random.default_rng(1)
  longest = sizes.eval_row_len // 4
  requests = []
  for _ in range(sizes.eval_requests):
    context = rng.integers(3, vocab_size, int(rng.integers(longest // 16, longest + 1)))
    continuation = rng.integers(3, vocab_size, int(rng.integers(1, min(24, longest // 8) + 1)))
    requests.append((context.tolist(), continuation.tolist()))
  return requests


def _as_text(ids: list[int], leading_space: bool = False) -> str:
  return (" " if leading_space else "") + " ".join(f"w{i}" for i in ids)


def word_tokenizer_file(vocab_size: int, directory: str) -> str:
  """Writes a word-level `tokenizer.json` (`w<i>` is id i; EOS `w1`, as the `hf` side is told)
  and its `special_tokens_map.json` into `directory`; returns the tokenizer's path.

  Args:
    vocab_size: ids `w0` ... `w<vocab_size - 1>`.
    directory: where the two files go.
  """
  import tokenizers  # pylint: disable=import-outside-toplevel
  tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(
      {f"w{i}": i for i in range(vocab_size)}, unk_token="w0"))
  tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
  path = os.path.join(directory, "tokenizer.json")
  tokenizer.save(path)
  with open(os.path.join(directory, "special_tokens_map.json"), "w", encoding="utf-8") as f:
    json.dump({"eos_token": "w1", "pad_token": "w0"}, f)
  return path


def lm_eval_scorer(lm) -> Callable[[list[Request]], list[float]]:
  """`requests -> log-likelihoods` through an lm-eval model's `loglikelihood`.

  Args:
    lm: an `lm_eval.api.model.LM` whose tokenizer is `word_tokenizer_file`'s.
  """
  from lm_eval.api.instance import Instance  # pylint: disable=import-outside-toplevel

  def score(requests):
    instances = [Instance("loglikelihood", {}, (_as_text(c), _as_text(t, True)), i)
                 for i, (c, t) in enumerate(requests)]
    return [ll for ll, _ in lm.loglikelihood(instances, disable_tqdm=True)]
  return score


def timed(score: Callable[[list[Request]], list[float]],
          requests: list[Request]) -> tuple[list[float], float]:
  """Scores `requests` twice (the first compiles and warms every shape they need); returns the
  second call's scores and seconds.

  Args:
    score: `requests -> log-likelihoods`.
    requests: what to score.
  """
  score(requests)
  start = time.perf_counter()
  scores = score(requests)
  return scores, time.perf_counter() - start


def score_row(case: str, system: str, model: str, how: str, requests: list[Request],
              scores: list[float], seconds: float) -> dict[str, Any]:
  """The row (and printed line) of one timed scoring of `requests`.

  Args:
    case: the row's name.
    system: "ours" or "hf".
    model: the model preset.
    how: what scored them.
    requests: the requests.
    scores: their log-likelihoods.
    seconds: the timed call's wall time.
  """
  finite = bool(np.all(np.isfinite(scores)))
  row = {"case": case, "system": system, "model": model, "how": how,
         "requests": len(requests), "tokens": sum(len(c) + len(t) for c, t in requests),
         "seconds": seconds, "requests_per_s": len(requests) / seconds,
         "mean_loglikelihood": float(np.mean(scores)), "all_finite": finite}
  print(f"  {row['requests_per_s']:,.1f} requests/s ({len(requests)} requests, "
        f"{row['tokens']:,} tokens, {seconds:.2f} s; {how})", flush=True)
  return row
