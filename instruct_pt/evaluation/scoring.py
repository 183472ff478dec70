"""Log-likelihoods of token continuations with the Decoder on a mesh, in packed rows.

A request is `(context ids, continuation ids)`; its answer is the summed log-probability of
the continuation given the context and whether greedy decoding would produce it. `Scorer`
answers many at once, the way training batches are built:

* **Left truncation** as lm-eval's `hf` model does it: the model reads the last `max_length`
  tokens of `context + continuation` minus the final one; longer requests lose their oldest
  context tokens and are counted (`ScoringStats.truncated`).
* **Shared inputs are computed once**: a request whose input tokens are a prefix of another's
  (e.g. one-token answers of a multiple-choice question, or identical requests) is scored
  inside the longer one's sequence, at its own positions with its own targets. Sorting the
  distinct inputs makes each such prefix the neighbour of a longer input.
* **Packing**: sequences are packed into rows with segment ids (`packing.best_fit_rows`, the
  one packer), so attention never crosses sequences and no row is padded to its longest
  member. Rows are `row_len` tokens long, or a longer bucket for a sequence that needs one.
* **Few programs**: a device call takes `[rows, row length]` tokens and `[rows, picks]` scored
  positions, with row lengths from a short ladder of buckets (`generate.prompt_buckets`), the
  row count fixed per bucket (a power of two below it for the last call) and the picks a
  power of two; logits are computed only at the scored positions (`logits_at`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from instruct_pt import parallel
from instruct_pt.data import packing
from instruct_pt.model.config import ModelConfig
from instruct_pt.model.transformer import Decoder
from instruct_pt.synthesis.generate import prompt_buckets

Request = tuple[Sequence[int], Sequence[int]]

# Default packed row length and tokens per device call: short rows keep the attention of
# packed sequences cheap (it spans the row), and CPU matmuls gain little from bigger calls.
ROW_LEN = 256
BATCH_TOKENS = 4096


@dataclasses.dataclass
class ScoringStats:
  """Counters over every `Scorer.score` call.

  Attributes:
    requests: requests scored.
    truncated: requests longer than `max_length + 1` tokens, cut from the left.
    sequences: distinct sequences run (after sharing inputs).
    tokens: real tokens run through the model.
    slots: row slots run (tokens plus padding).
    compiled_shapes: the `(rows, row length, picks)` shapes run; one program each.
  """

  requests: int = 0
  truncated: int = 0
  sequences: int = 0
  tokens: int = 0
  slots: int = 0
  compiled_shapes: set = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class _Sequence:
  """One row segment: its input tokens and the `(position, target, request)` it scores."""
  tokens: tuple[int, ...]
  picks: list[tuple[int, int, int]]


def _score_rows(model: Decoder, params, prompt, unit_keep, rows):
  """Log-probabilities of `rows["targets"]` at `rows["logits_at"]` (behind the soft `prompt`,
  if any, with the units `unit_keep` zeroes ablated), and whether each target is the argmax
  there."""
  logits, _ = model.apply({"params": params}, rows["tokens"], positions=rows["positions"],
                          segment_ids=rows["segments"], logits_at=rows["logits_at"],
                          prefix_embeddings=prompt, unit_keep=unit_keep)
  target = jnp.take_along_axis(logits, rows["targets"][..., None], axis=-1)[..., 0]
  return target - jax.nn.logsumexp(logits, axis=-1), target >= jnp.max(logits, axis=-1)


def _next_power_of_two(n: int) -> int:
  return 1 << max(0, n - 1).bit_length()


class Scorer:
  """Scores `(context, continuation)` token requests with one model on one mesh.

  Args:
    model_config: the model.
    params: its parameters (on `mesh`).
    mesh: the device mesh (one process's devices).
    rules: logical axis rules.
    max_length: the most tokens the model reads per request (default: the model's
      `max_seq_len`, less the soft prompt's length).
    row_len: tokens per packed row (sequences longer than this get a longer bucket).
    batch_tokens: tokens per device call (rows x row length), at least one row.
    prompt: a soft prompt `[length, embed_dim]` read ahead of every request
      (`run_dir.read_prompt`), or None.
    unit_keep: unit ablation, the `Decoder` input of that name (`UnitSet.keep_factors()`), or
      None for the plain model. It is an argument of the compiled program, so setting
      `self.unit_keep` to another table of the same kind does not recompile.
  """

  def __init__(self, model_config: ModelConfig, params: Any, mesh: jax.sharding.Mesh,
               rules: parallel.Rules, max_length: Optional[int] = None, row_len: int = ROW_LEN,
               batch_tokens: int = BATCH_TOKENS, prompt: Optional[Any] = None,
               unit_keep: Optional[dict[str, Any]] = None):
    prompt_length = 0 if prompt is None else len(prompt)
    self.max_length = max_length or model_config.max_seq_len - prompt_length
    if self.max_length + prompt_length > model_config.max_seq_len:
      soft = f" with the soft prompt's {prompt_length}" if prompt_length else ""
      raise ValueError(f"max_length={self.max_length}{soft} exceeds the model's max_seq_len="
                       f"{model_config.max_seq_len}")
    if row_len <= 0 or batch_tokens <= 0:
      raise ValueError(f"row_len={row_len} and batch_tokens={batch_tokens} must be positive")
    self.params = params
    self.prompt = None if not prompt_length else jax.device_put(
        jnp.asarray(prompt, jnp.float32), jax.sharding.NamedSharding(
            mesh, jax.sharding.PartitionSpec()))
    self.unit_keep = unit_keep
    self.mesh = mesh
    self.rules = rules
    self.buckets = prompt_buckets(self.max_length, smallest=min(row_len, self.max_length))
    self.batch_tokens = batch_tokens
    self.row_multiple = parallel.data_parallel_size(mesh, rules)
    self.stats = ScoringStats()
    self._sharding = parallel.batch_sharding(mesh, rules)
    # Jitted over plain values, not `self` (see synthesis.generate.Engine).
    self._run = jax.jit(functools.partial(_score_rows, Decoder(model_config)))

  def score(self, requests: Sequence[Request],
            progress: Optional[Callable[[int], None]] = None) -> list[tuple[float, bool]]:
    """`(log-likelihood, is greedy)` of each request's continuation, in order.

    Args:
      requests: `(context ids, continuation ids)`; the context must not be empty (lm-eval
        puts a prefix token there).
      progress: called with the number of requests finished after each device call.

    Raises:
      ValueError: an empty context or continuation, or a continuation longer than
        `max_length`, naming the request.
    """
    sequences = self._sequences(requests)
    logprob = np.zeros(len(requests), np.float64)
    greedy = np.ones(len(requests), bool)
    pending = {id(s): len({r for _, _, r in s.picks}) for s in sequences}
    by_bucket: dict[int, list[_Sequence]] = {}
    for sequence in sequences:
      bucket = next(b for b in self.buckets if b >= len(sequence.tokens))
      by_bucket.setdefault(bucket, []).append(sequence)
    with parallel.sharding_context(self.mesh, self.rules):
      for row_len in sorted(by_bucket, reverse=True):
        group = by_bucket[row_len]
        rows = packing.best_fit_rows([len(s.tokens) for s in group], row_len, decreasing=True)
        per_call = max(1, self.batch_tokens // row_len)
        per_call = -(-per_call // self.row_multiple) * self.row_multiple
        for start in range(0, len(rows), per_call):
          members = [[group[i] for i in row] for row in rows[start:start + per_call]]
          num_rows = min(per_call, self.row_multiple * _next_power_of_two(
              -(-len(members) // self.row_multiple)))
          values, is_greedy, picks = self._call(members, num_rows, row_len)
          for (row, column), (_, _, request) in picks:
            logprob[request] += values[row, column]
            greedy[request] &= bool(is_greedy[row, column])
          if progress is not None:
            progress(sum(pending[id(s)] for row in members for s in row))
    return [(float(value), bool(flag)) for value, flag in zip(logprob, greedy)]

  def _sequences(self, requests: Sequence[Request]) -> list[_Sequence]:
    """The distinct sequences to run, each with the picks of every request it serves."""
    inputs = []
    for index, (context, continuation) in enumerate(requests):
      if not context or not continuation:
        raise ValueError(f"request {index}: empty {'context' if not context else 'continuation'}"
                         f" (the model needs a token to condition on and one to score)")
      if len(continuation) > self.max_length:
        raise ValueError(f"request {index}: continuation of {len(continuation)} tokens exceeds "
                         f"max_length={self.max_length}")
      whole = list(context) + list(continuation)
      if len(whole) > self.max_length + 1:
        self.stats.truncated += 1
        whole = whole[-(self.max_length + 1):]
      inputs.append((tuple(whole[:-1]), whole[-len(continuation):]))
    # A prefix of another input sorts right before an input it prefixes; each input is run
    # inside the longest input its sorted successors chain up to.
    distinct = sorted({tokens for tokens, _ in inputs})
    host: dict[tuple[int, ...], tuple[int, ...]] = {}
    for k in range(len(distinct) - 1, -1, -1):
      tokens = distinct[k]
      following = distinct[k + 1] if k + 1 < len(distinct) else ()
      host[tokens] = host[following] if following[:len(tokens)] == tokens else tokens
    sequences: dict[tuple[int, ...], _Sequence] = {}
    for request, (tokens, targets) in enumerate(inputs):
      sequence = sequences.setdefault(host[tokens], _Sequence(host[tokens], []))
      first = len(tokens) - len(targets)
      sequence.picks.extend((first + i, target, request) for i, target in enumerate(targets))
    self.stats.requests += len(requests)
    self.stats.sequences += len(sequences)
    return list(sequences.values())

  def _call(self, rows: list[list[_Sequence]], num_rows: int, row_len: int):
    """Runs `rows` (padded to `num_rows`); returns log-probs, greedy flags and the
    `((row, column), pick)` of every pick."""
    num_picks = _next_power_of_two(max(sum(len(s.picks) for s in row) for row in rows))
    shape = (num_rows, row_len)
    arrays = {"tokens": np.zeros(shape, np.int32), "positions": np.zeros(shape, np.int32),
              "segments": np.zeros(shape, np.int32),
              "logits_at": np.zeros((num_rows, num_picks), np.int32),
              "targets": np.zeros((num_rows, num_picks), np.int32)}
    where = []
    for r, row in enumerate(rows):
      offset, column = 0, 0
      for segment, sequence in enumerate(row, 1):
        span = slice(offset, offset + len(sequence.tokens))
        arrays["tokens"][r, span] = sequence.tokens
        arrays["positions"][r, span] = np.arange(len(sequence.tokens))
        arrays["segments"][r, span] = segment
        for pick in sequence.picks:
          arrays["logits_at"][r, column] = offset + pick[0]
          arrays["targets"][r, column] = pick[1]
          where.append(((r, column), pick))
          column += 1
        offset += len(sequence.tokens)
        self.stats.tokens += len(sequence.tokens)
    self.stats.slots += num_rows * row_len
    self.stats.compiled_shapes.add((num_rows, row_len, num_picks))
    values, greedy = self._run(self.params, self.prompt, self.unit_keep,
                               jax.device_put(arrays, self._sharding))
    return np.asarray(values), np.asarray(greedy), where
