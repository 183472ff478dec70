"""Part 3 of the device suite: log-likelihood scoring speed, ours vs lm-eval's `hf` model.

* `eval`: the same random (context, continuation) requests scored for SmolLM2-135M- and
  InstructLM-1.3B-shaped random models (bfloat16 on accelerators): requests/s. Where lm-eval
  is installed, through `instruct_pt.evaluation`'s lm-eval model `instruct_pt`, from a run
  directory written here. The device image has no lm-eval (see device_suite.sh), so there
  `PackedScorer` stands in: the same packing (best-fit rows with segment ids, logits only at
  continuation positions) as `instruct_pt.evaluation.scoring.Scorer`, without its shared
  prefixes (random requests share none) and bucket ladder (one row length here).
* `eval_hf`: lm-eval's `hf` model (transformers, same shapes, random weights) on the same
  requests, if lm-eval is importable; otherwise a note says why it was skipped. It runs in
  `suite_torch.py` (a process without jax); `describe` below writes the summary cells of both.

Requests are text over a word-level vocabulary (`w0 w17 ...`, one token per word), so both
sides see the same token ids without a trained tokenizer (`suite_common.make_requests`).
"""

from __future__ import annotations

import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from instruct_pt.data import packing
from instruct_pt.model import store
from instruct_pt.model.config import get_preset
from instruct_pt.model.transformer import Decoder
from suite_common import (Part, Request, Sizes, lm_eval_scorer, make_requests, score_row, timed,
                          word_tokenizer_file)
from suite_jax import RULES, one_device_mesh


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
      word_tokenizer_file(config.vocab_size, tempfile.mkdtemp())))
  return lm_eval_scorer(get_model("instruct_pt").create_from_arg_string(f"run_dir={run}"))


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
    requests = make_requests(sizes, config.vocab_size)
    with tempfile.TemporaryDirectory() as directory:
      score = _evaluation_module_scorer(config, params, directory)
      how = "instruct_pt.evaluation (lm-eval model instruct_pt)"
      if score is None:
        score = PackedScorer(config, params, sizes.eval_row_len, sizes.eval_rows)
        how = "PackedScorer (lm-eval, hence instruct_pt.evaluation, is not importable)"
      scores, seconds = timed(score, requests)
    part.add(score_row(f"ours {name}", "ours", name, how, requests, scores, seconds))
  part.each({f"ours {name}": name for name in sizes.eval_models}, 10, measure)


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
