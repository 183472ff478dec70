"""Log-likelihoods of token continuations with the Decoder on a mesh, in packed rows.

A request is `(context ids, continuation ids)`; its answer is the summed log-probability of
the continuation given the context and whether greedy decoding would produce it. `Scorer`
answers many at once, the way training batches are built:

* **Left truncation** as lm-eval's `hf` model does it: the model reads the last `max_length`
  tokens of `context + continuation` minus the final one; longer requests lose their oldest
  context tokens and are counted (`ScoringStats.truncated`).
* **A shared context is run once**: requests with the same context tokens (the choices of a
  multiple-choice question, with their few-shot examples) form one *tree*: the context as one
  segment, then each distinct continuation (less its last token) as a segment of its own that
  also sees the context (`Decoder(context_ids=...)`), its positions going on from the
  context's. Each continuation's first token is scored at the context's last position, the
  rest inside its segment; identical requests share everything. A tree grows to a row
  (`row_len`), or to the bucket its context and one continuation need; beyond that it is
  split into several, each with the context (so the prefix token every rolling window starts
  from does not gather all documents into one row of quadratic attention).
* **Packing**: trees are packed into rows with segment ids (`packing.best_fit_rows`, the one
  packer), so attention never crosses requests and no row is padded to its longest member.
  Rows are `row_len` tokens long, or a longer bucket for a tree that needs one.
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
from instruct_pt.model.generate import prompt_buckets

Request = tuple[Sequence[int], Sequence[int]]

# Default packed row length and tokens per device call: short rows keep the attention of
# packed sequences cheap (it spans the row), and CPU matmuls gain little from bigger calls.
ROW_LEN = 256
BATCH_TOKENS = 4096


@dataclasses.dataclass(frozen=True)
class ScoringConfig:
  """How evaluation scores (gin: `evaluate.*`; `instruct-pt evaluate`'s flags of the same
  names win over it).

  Attributes:
    max_length: the most tokens the model reads per request (None: the model's
      max_seq_len, less a soft prompt's length).
    row_len: tokens per packed row.
    batch_tokens: tokens per device call (rows x row length).
  """

  max_length: Optional[int] = None
  row_len: int = ROW_LEN
  batch_tokens: int = BATCH_TOKENS

  def __post_init__(self):
    for name in ("max_length", "row_len", "batch_tokens"):
      value = getattr(self, name)
      if value is not None and value <= 0:
        raise ValueError(f"evaluate.{name}={value} must be positive")


@dataclasses.dataclass
class ScoringStats:
  """Counters over every `Scorer.score` call.

  Attributes:
    requests: requests scored.
    truncated: requests longer than `max_length + 1` tokens, cut from the left.
    contexts: distinct contexts run (each with all of its continuations).
    tokens: real tokens run through the model.
    slots: row slots run (tokens plus padding).
    compiled_shapes: the `(rows, row length, picks)` shapes run; one program each.
  """

  requests: int = 0
  truncated: int = 0
  contexts: int = 0
  tokens: int = 0
  slots: int = 0
  compiled_shapes: set = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class _Tree:
  """A context and its continuations as laid out in a row: the context is segment 1, each
  continuation (less its last token) a segment 2, 3, ... after it; every token also sees
  segment 1. `picks` are `(index in the layout, target, request, continuation token)`."""
  tokens: list[int]
  positions: list[int]
  segments: list[int]
  picks: list[tuple[int, int, int, int]]
  requests: int


def _score_rows(model: Decoder, params, prompt, unit_keep, rows):
  """Log-probabilities of `rows["targets"]` at `rows["logits_at"]` (behind the soft `prompt`,
  if any, with the units `unit_keep` zeroes ablated), and whether each target is the argmax
  there."""
  logits, _ = model.apply({"params": params}, rows["tokens"], positions=rows["positions"],
                          segment_ids=rows["segments"], context_ids=rows["contexts"],
                          logits_at=rows["logits_at"], prefix_embeddings=prompt,
                          unit_keep=unit_keep)
  target = jnp.take_along_axis(logits, rows["targets"][..., None], axis=-1)[..., 0]
  return target - jax.nn.logsumexp(logits, axis=-1), target >= jnp.max(logits, axis=-1)


def _next_power_of_two(n: int) -> int:
  return 1 << max(0, n - 1).bit_length()


def _row_shapes(num_rows: int, row_len: int, num_picks: int) -> dict[str, tuple[int, int]]:
  """Shapes of the `rows` a device call takes (`_score_rows`)."""
  shape, picks = (num_rows, row_len), (num_rows, num_picks)
  return {"tokens": shape, "positions": shape, "segments": shape, "contexts": shape,
          "logits_at": picks, "targets": picks}


@functools.lru_cache(maxsize=8)
def _scoring_program(model_config: ModelConfig, mesh: jax.sharding.Mesh,
                     rules: tuple) -> Callable:
  """The jitted scoring program of a model shape on a mesh, shared by every `Scorer` of the
  process: jitted over plain values, not a `Scorer` (see model.generate.Engine), so a
  second model of the same shape (the demo evaluates four) reuses each traced and compiled
  row shape instead of tracing it again. The mesh and logical-axis rules are part of the key
  because the program is traced under them."""
  del mesh, rules  # only keys: tracing reads them from the sharding context
  return jax.jit(functools.partial(_score_rows, Decoder(model_config)))


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
    self._run = _scoring_program(model_config, mesh, tuple(map(tuple, rules)))

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
    return [(float(logprobs.sum()), bool(greedy.all()))
            for logprobs, greedy in self.score_tokens(requests, progress)]

  def score_tokens(self, requests: Sequence[Request],
                   progress: Optional[Callable[[int], None]] = None
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per continuation token: float64 log-probabilities and whether each is the argmax.

    Args and errors as `score`.
    """
    trees = self._trees(requests)
    logprobs = [np.zeros(len(continuation)) for _, continuation in requests]
    greedy = [np.zeros(len(continuation), bool) for _, continuation in requests]
    by_bucket: dict[int, list[_Tree]] = {}
    for tree in trees:
      bucket = next(b for b in self.buckets if b >= len(tree.tokens))
      by_bucket.setdefault(bucket, []).append(tree)
    with parallel.sharding_context(self.mesh, self.rules):
      for row_len in sorted(by_bucket, reverse=True):
        group = by_bucket[row_len]
        rows = packing.best_fit_rows([len(t.tokens) for t in group], row_len, decreasing=True)
        per_call = max(1, self.batch_tokens // row_len)
        per_call = -(-per_call // self.row_multiple) * self.row_multiple
        for start in range(0, len(rows), per_call):
          members = [[group[i] for i in row] for row in rows[start:start + per_call]]
          num_rows = min(per_call, self.row_multiple * _next_power_of_two(
              -(-len(members) // self.row_multiple)))
          values, is_greedy, picks = self._call(members, num_rows, row_len)
          for (row, column), (_, _, request, token) in picks:
            logprobs[request][token] = values[row, column]
            greedy[request][token] = is_greedy[row, column]
          if progress is not None:
            progress(sum(tree.requests for row in members for tree in row))
    return list(zip(logprobs, greedy))

  def largest_call(self) -> tuple[int, int, int]:
    """`(rows, row length, picks)` of the largest device call `score` can make: rows of the
    longest bucket, as many as one call takes, every position scored (a rolling
    log-likelihood scores every token)."""
    row_len = self.buckets[-1]
    per_call = max(1, self.batch_tokens // row_len)
    return (-(-per_call // self.row_multiple) * self.row_multiple, row_len,
            _next_power_of_two(row_len))

  def lower(self, num_rows: int, row_len: int, num_picks: int) -> jax.stages.Lowered:
    """The program of one device call of that shape, lowered but not compiled. Only shapes
    are needed: the parameters may be `jax.ShapeDtypeStruct`s and the mesh a TPU topology's
    (`instruct_pt.aot`).

    Args:
      num_rows: rows per call.
      row_len: tokens per row.
      num_picks: scored positions per row.
    """
    rows = {name: jax.ShapeDtypeStruct(shape, jnp.int32, sharding=self._sharding)
            for name, shape in _row_shapes(num_rows, row_len, num_picks).items()}
    replicated = jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec())
    prompt = None if self.prompt is None else jax.ShapeDtypeStruct(
        self.prompt.shape, self.prompt.dtype, sharding=replicated)
    with parallel.sharding_context(self.mesh, self.rules):
      return self._run.lower(self.params, prompt, self.unit_keep, rows)

  def _trees(self, requests: Sequence[Request]) -> list[_Tree]:
    """The trees to run: requests grouped by their (left-truncated) context tokens, each
    distinct continuation once, split where a tree would outgrow the longest row."""
    contexts: dict[tuple[int, ...], dict[tuple[int, ...], list[int]]] = {}
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
      kept = tuple(whole[:len(whole) - len(continuation)])
      contexts.setdefault(kept, {}).setdefault(tuple(continuation), []).append(index)
    trees = []
    for context, continuations in contexts.items():
      tree = None
      for continuation, owners in continuations.items():
        if tree is None or len(tree.tokens) + len(continuation) - 1 > self._tree_limit(
            len(context) + len(continuation) - 1):
          tree = _Tree(list(context), list(range(len(context))), [1] * len(context), [], 0)
          trees.append(tree)
        start, segment = len(tree.tokens), tree.segments[-1] + 1
        tree.tokens.extend(continuation[:-1])
        tree.positions.extend(range(len(context), len(context) + len(continuation) - 1))
        tree.segments.extend([segment] * (len(continuation) - 1))
        tree.requests += len(owners)
        for request in owners:
          tree.picks.append((len(context) - 1, continuation[0], request, 0))
          tree.picks.extend((start + i - 1, target, request, i)
                            for i, target in enumerate(continuation[1:], 1))
    self.stats.requests += len(requests)
    self.stats.contexts += len(contexts)
    return trees

  def _tree_limit(self, request_tokens: int) -> int:
    """The tokens a tree may grow to: a row (`row_len`), or the bucket its context and one
    continuation need when that is longer. Attention costs the square of a tree's row, so a
    short context shared by many continuations (lm-eval's rolling windows all start from one
    prefix token) makes many row-sized trees rather than one huge one."""
    return max(self.buckets[0], next(b for b in self.buckets if b >= request_tokens))

  def _call(self, rows: list[list[_Tree]], num_rows: int, row_len: int):
    """Runs `rows` (padded to `num_rows`); returns log-probs, greedy flags and the
    `((row, column), pick)` of every pick."""
    num_picks = _next_power_of_two(max(sum(len(t.picks) for t in row) for row in rows))
    arrays = {name: np.zeros(shape, np.int32)
              for name, shape in _row_shapes(num_rows, row_len, num_picks).items()}
    where = []
    for r, row in enumerate(rows):
      offset, column, first_segment = 0, 0, 0
      for tree in row:
        span = slice(offset, offset + len(tree.tokens))
        arrays["tokens"][r, span] = tree.tokens
        arrays["positions"][r, span] = tree.positions
        arrays["segments"][r, span] = np.asarray(tree.segments) + first_segment
        arrays["contexts"][r, span] = first_segment + 1
        for pick in tree.picks:
          arrays["logits_at"][r, column] = offset + pick[0]
          arrays["targets"][r, column] = pick[1]
          where.append(((r, column), pick))
          column += 1
        offset += len(tree.tokens)
        first_segment += tree.segments[-1]
        self.stats.tokens += len(tree.tokens)
    self.stats.slots += num_rows * row_len
    self.stats.compiled_shapes.add((num_rows, row_len, num_picks))
    values, greedy = self._run(self.params, self.prompt, self.unit_keep,
                               jax.device_put(arrays, self._sharding))
    return np.asarray(values), np.asarray(greedy), where
