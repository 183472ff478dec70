"""Part 3 of the device suite: log-likelihood scoring speed, ours vs lm-eval's `hf` model.

* `eval`: the same random (context, continuation) requests scored for SmolLM2-135M- and
  InstructLM-1.3B-shaped random models (bfloat16 on accelerators): requests/s. Where lm-eval
  is installed, through `instruct_pt.evaluation`'s lm-eval model `instruct_pt`, from a run
  directory written here. The device image has no lm-eval (see device_suite.sh), so there
  `PackedScorer` stands in: the same packing (best-fit rows with segment ids, logits only at
  continuation positions) as `instruct_pt.evaluation.scoring.Scorer`, without its shared
  prefixes (random requests share none) and bucket ladder (one row length here).
* `eval_hf`: lm-eval's `hf` model (transformers, same shapes, random weights) on the same
  requests, if lm-eval is importable; otherwise a note says why it was skipped.

Requests are text over a word-level vocabulary (`w0 w17 ...`, one token per word), so both
sides see the same token ids without a trained tokenizer.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from instruct_pt.data import packing
from instruct_pt.model import store
from instruct_pt.model.config import get_preset
from instruct_pt.model.transformer import Decoder
from suite_common import RULES, Part, Sizes, one_device_mesh, transformers_model

Request = tuple[list[int], list[int]]


def _make_requests(sizes: Sizes, vocab_size: int) -> list[Request]:
  """Random (context, continuation) ids: contexts up to a quarter row, continuations 1-24."""
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


def _word_tokenizer_file(vocab_size: int, directory: str) -> str:
  """Writes a word-level `tokenizer.json` (`w<i>` is id i; EOS `w1`, as the `hf` side is told)
  and its `special_tokens_map.json` into `directory`; returns the tokenizer's path."""
  import tokenizers  # pylint: disable=import-outside-toplevel
  tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(
      {f"w{i}": i for i in range(vocab_size)}, unk_token="w0"))
  tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
  path = os.path.join(directory, "tokenizer.json")
  tokenizer.save(path)
  with open(os.path.join(directory, "special_tokens_map.json"), "w", encoding="utf-8") as f:
    json.dump({"eos_token": "w1", "pad_token": "w0"}, f)
  return path


def _eval_config(name: str):
  dtype = "auto" if jax.default_backend() == "cpu" else "bfloat16"
  return get_preset(name, dtype=dtype, param_dtype=dtype if dtype != "auto" else "float32")


class PackedScorer:
  """Sum of continuation log-probabilities per request, from packed rows of one model.

  Args:
    config: the model.
    params: its parameters (on one device).
    row_len: tokens per packed row.
    rows: rows per forward pass.
  """

  def __init__(self, config, params, row_len: int, rows: int):
    self.params, self.row_len, self.rows = params, row_len, rows
    model = Decoder(config)

    def score(params, tokens, positions, segments, picks, targets):
      logits, _ = model.apply({"params": params}, tokens, positions=positions,
                              segment_ids=segments, logits_at=picks)
      log_probs = jax.nn.log_softmax(logits, axis=-1)
      return jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    self._score = jax.jit(score)

  def __call__(self, requests: list[Request]) -> list[float]:
    inputs = [(c + t)[-self.row_len - 1:-1] for c, t in requests]  # left-truncated
    placed = packing.best_fit_rows([len(x) for x in inputs], self.row_len, decreasing=True)
    totals = np.zeros(len(requests))
    for first in range(0, len(placed), self.rows):
      group = placed[first:first + self.rows]
      shape = (self.rows, self.row_len)
      tokens, positions, segments = (np.zeros(shape, np.int32) for _ in range(3))
      scored = [sum(len(requests[i][1]) for i in members) for members in group]
      width = 1 << (max(scored) - 1).bit_length()  # picks per row, a power of two
      picks, targets = np.zeros((self.rows, width), np.int32), np.zeros((self.rows, width),
                                                                          np.int32)
      owner = np.full((self.rows, width), -1)
      for row, members in enumerate(group):
        offset, pick = 0, 0
        for segment, index in enumerate(members, 1):
          x, continuation = inputs[index], requests[index][1]
          span = slice(offset, offset + len(x))
          tokens[row, span], positions[row, span] = x, np.arange(len(x))
          segments[row, span] = segment
          n = len(continuation)
          picks[row, pick:pick + n] = offset + len(x) - n + np.arange(n)
          targets[row, pick:pick + n], owner[row, pick:pick + n] = continuation, index
          offset, pick = offset + len(x), pick + n
      scores = np.asarray(self._score(self.params, tokens, positions, segments, picks, targets))
      np.add.at(totals, owner[owner >= 0], scores[owner >= 0])
    return totals.tolist()


def _timed(score, requests) -> tuple[list[float], float]:
  score(requests)  # compiles (and warms) every shape the requests need
  start = time.perf_counter()
  scores = score(requests)
  return scores, time.perf_counter() - start


def _lm_eval_scorer(lm):
  """`requests -> log-likelihoods` through an lm-eval model's `loglikelihood`."""
  from lm_eval.api.instance import Instance  # pylint: disable=import-outside-toplevel

  def score(requests):
    instances = [Instance("loglikelihood", {}, (_as_text(c), _as_text(t, True)), i)
                 for i, (c, t) in enumerate(requests)]
    return [ll for ll, _ in lm.loglikelihood(instances, disable_tqdm=True)]
  return score


def _evaluation_module_scorer(config, params, directory: str):
  """Scores through `instruct_pt.evaluation`'s lm-eval model, or None without that module."""
  try:
    import instruct_pt.evaluation  # pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    return None
  from lm_eval.api.registry import get_model  # pylint: disable=import-outside-toplevel
  from instruct_pt import run_dir  # pylint: disable=import-outside-toplevel
  from instruct_pt.data import tokenizer as tokenizer_lib  # pylint: disable=import-outside-toplevel
  run = run_dir.RunDir(directory).create()
  run.write_model_config(config)
  store.save_params(run.params, params)
  run.write_tokenizer(tokenizer_lib.load_tokenizer(
      _word_tokenizer_file(config.vocab_size, tempfile.mkdtemp())))
  return _lm_eval_scorer(get_model("instruct_pt").create_from_arg_string(f"run_dir={run}"))


def run_eval(part: Part, sizes: Sizes, out_dir: str) -> None:
  """Part 3, ours: requests/s of each model (see the module docstring for how it scores).

  Args:
    part: where the results go.
    sizes: the suite's sizes.
    out_dir: the suite's output directory.
  """
  del out_dir

  def measure(name: str) -> None:
    config = _eval_config(name)
    params = store.init_params(config, one_device_mesh(), RULES)
    requests = _make_requests(sizes, config.vocab_size)
    with tempfile.TemporaryDirectory() as directory:
      score = _evaluation_module_scorer(config, params, directory)
      how = "instruct_pt.evaluation (lm-eval model instruct_pt)"
      if score is None:
        score = PackedScorer(config, params, sizes.eval_row_len, sizes.eval_rows)
        how = "PackedScorer (lm-eval, hence instruct_pt.evaluation, is not importable)"
      scores, seconds = _timed(score, requests)
    part.add(_score_row(f"ours {name}", "ours", name, how, requests, scores, seconds))
  part.each({f"ours {name}": name for name in sizes.eval_models}, 10, measure)


def run_eval_hf(part: Part, sizes: Sizes, out_dir: str) -> None:
  """Part 3, reference: lm-eval's hf model on the same requests, or a note why not.

  Args:
    part: where the results go.
    sizes: the suite's sizes.
    out_dir: the suite's output directory.
  """
  del out_dir
  try:
    from lm_eval.models.huggingface import HFLM  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    part.note(f"lm-eval's hf model is not importable here ({e}): comparison skipped")
    return
  def measure(name: str) -> None:
    config = _eval_config(name)
    model, device = transformers_model(config)
    with tempfile.TemporaryDirectory() as directory:
      tokenizer = transformers.PreTrainedTokenizerFast(
          tokenizer_file=_word_tokenizer_file(config.vocab_size, directory),
          unk_token="w0", pad_token="w0", eos_token="w1")
    batch = 64 if device == "cuda" else 8
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch, device=device,
              max_length=sizes.eval_row_len)
    requests = _make_requests(sizes, config.vocab_size)
    scores, seconds = _timed(_lm_eval_scorer(lm), requests)
    part.add(_score_row(f"lm-eval hf {name} batch={batch}", "hf", name,
                        "lm_eval.models.huggingface.HFLM", requests, scores, seconds))
  part.each({f"lm-eval hf {name}": name for name in sizes.eval_models}, 10, measure)


def _score_row(case: str, system: str, model: str, how: str, requests: list[Request],
               scores: list[float], seconds: float) -> dict[str, Any]:
  finite = bool(np.all(np.isfinite(scores)))
  row = {"case": case, "system": system, "model": model, "how": how,
         "requests": len(requests), "tokens": sum(len(c) + len(t) for c, t in requests),
         "seconds": seconds, "requests_per_s": len(requests) / seconds,
         "mean_loglikelihood": float(np.mean(scores)), "all_finite": finite}
  print(f"  {row['requests_per_s']:,.1f} requests/s ({len(requests)} requests, "
        f"{row['tokens']:,} tokens, {seconds:.2f} s; {how})", flush=True)
  return row


def describe(name: str, row: dict, parts: dict) -> tuple[str, str, str]:
  """(case, result, target) cells of an eval or eval_hf row for the summary table.

  Args:
    name: "eval" or "eval_hf".
    row: one row of that part.
    parts: every part's JSON by name (for the ours/hf ratio).
  """
  result = f"{row['requests_per_s']:,.1f} requests/s ({row['requests']} requests)"
  if name == "eval_hf":
    ours = [r for r in (parts.get("eval") or {}).get("rows", []) if r["model"] == row["model"]]
    if ours:
      result += f"; ours/hf {ours[0]['requests_per_s'] / row['requests_per_s']:.2f}x"
  return row["case"], result, ""
