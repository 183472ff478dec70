"""Batched generation on the device mesh: prefill + decode with a KV cache.

The engine serves synthesis (and, later, evaluation) with the training model and the training
mesh and rules: parameters keep their training shardings, and the KV cache is sharded by the
same rule table (`cache_batch` over data/fsdp, `cache_kv_heads` over tensor).

* **Prefill** packs the admitted prompts into rows (best-fit decreasing, segment ids keep
  them apart), runs the rows through the model once and writes every token's key and value
  straight into its slot's cache row, then samples each prompt's first token. The row length
  is picked from a small set of buckets (the one that needs the fewest padded tokens), so a
  long run compiles a handful of programs, not one per batch, and mixed lengths do not pay
  for padding every prompt to the longest.
* **Decode** runs entirely on device in a `lax.while_loop`: each step feeds every slot's last
  token at its own position, samples the next one, and marks slots done on an EOS id or at
  `max_new_tokens`.
* **A soft prompt** (`prompt`, e.g. a ProMoT run's `prompt.npy`) goes ahead of every prompt:
  prefill writes its keys and values at the first positions of each slot's cache row.
* **Continuous batching** (the default) refills finished slots with waiting prompts between
  decode chunks, so short outputs do not leave the batch idle; **static** mode runs batches to
  completion (kept for tests and comparison). Both give the same tokens for the same seed:
  every request samples with its own key, `fold_in(fold_in(seed, request_index), step)`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from instruct_pt import parallel
from instruct_pt.data import packing
from instruct_pt.model import attention
from instruct_pt.model.config import ModelConfig
from instruct_pt.model.transformer import Decoder, split_layers

MODES = ("continuous", "static")


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
  """How to pick the next token.

  Attributes:
    temperature: 0 for greedy decoding; otherwise logits are divided by it.
    top_k: keep the k most likely tokens (0 keeps all).
    top_p: keep the smallest set of tokens whose probability reaches p (1.0 keeps all).
    max_new_tokens: tokens to generate at most per prompt.
  """

  temperature: float = 0.0
  top_k: int = 0
  top_p: float = 1.0
  max_new_tokens: int = 400

  def __post_init__(self):
    if self.temperature < 0:
      raise ValueError(f"temperature must be >= 0, got {self.temperature}")
    if not 0 < self.top_p <= 1:
      raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
    if self.top_k < 0 or self.max_new_tokens <= 0:
      raise ValueError(f"top_k must be >= 0 and max_new_tokens > 0, got {self.top_k}, "
                       f"{self.max_new_tokens}")


@dataclasses.dataclass
class GenerationStats:
  """Counters of one `generate` call.

  Attributes:
    prompts: prompts processed.
    prompt_tokens: prompt tokens prefilled.
    generated_tokens: tokens generated (EOS excluded).
    seconds: wall time.
    prefill_seconds: the part of `seconds` spent in prefill calls, each timed until the
      device finished it (the rest is decoding and host work between decode chunks).
    prefill_calls: prefill programs run (admitted prompts go in groups of at most
      `Engine.max_prefill_tokens` tokens).
    compiled_prefill_lengths: the prefill row lengths (buckets) used; a prefill program is
      compiled per row length, row count and prompts-per-row bucket.
  """
  prompts: int = 0
  prompt_tokens: int = 0
  generated_tokens: int = 0
  seconds: float = 0.0
  prefill_seconds: float = 0.0
  prefill_calls: int = 0
  compiled_prefill_lengths: set = dataclasses.field(default_factory=set)

  @property
  def tokens_per_second(self) -> float:
    """Generated tokens per second of wall time."""
    return self.generated_tokens / self.seconds if self.seconds else 0.0


def sample_tokens(logits: jnp.ndarray, keys: jnp.ndarray, sampling: SamplingConfig) -> jnp.ndarray:
  """Picks one token per row.

  Args:
    logits: float32 `[batch, vocab]`.
    keys: one PRNG key per row, `[batch]` (typed keys).
    sampling: greedy when `sampling.temperature == 0`.

  Returns:
    int32 `[batch]`.
  """
  if sampling.temperature == 0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = logits / sampling.temperature
  if sampling.top_k:
    kth = jax.lax.top_k(logits, sampling.top_k)[0][:, -1:]
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  if sampling.top_p < 1.0:
    sorted_logits = jnp.sort(logits, axis=-1)[:, ::-1]
    cumulative = jnp.cumsum(jax.nn.softmax(sorted_logits, axis=-1), axis=-1)
    # The smallest prefix whose probability reaches top_p: keep tokens ranked before the first
    # position where the cumulative probability (excluding itself) already reaches it.
    keep = (cumulative - jax.nn.softmax(sorted_logits, axis=-1)) < sampling.top_p
    threshold = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits < threshold, -jnp.inf, logits)
  return jax.vmap(jax.random.categorical)(keys, logits).astype(jnp.int32)


def prompt_buckets(max_prompt_len: int, smallest: int = 16) -> tuple[int, ...]:
  """Row lengths for prefill: `smallest * 2**i` and `1.5 * smallest * 2**i`, up to (and
  including) `max_prompt_len`."""
  buckets, length = [], smallest
  while length < max_prompt_len:
    buckets.append(length)
    if length * 3 // 2 < max_prompt_len:
      buckets.append(length * 3 // 2)
    length *= 2
  buckets.append(max_prompt_len)
  return tuple(buckets)


@dataclasses.dataclass(frozen=True)
class PrefillPlan:
  """Where each prompt goes in the packed prefill rows.

  Attributes:
    row_len: tokens per row (a bucket).
    num_rows: rows.
    placements: `(row, offset)` of each prompt, in the order given.
  """
  row_len: int
  num_rows: int
  placements: tuple[tuple[int, int], ...]

  @property
  def max_prompts_per_row(self) -> int:
    """The most prompts any row holds."""
    rows = [row for row, _ in self.placements]
    return max(rows.count(row) for row in set(rows))


def _placements(lengths: Sequence[int], row_len: int) -> list[tuple[int, int]]:
  """`(row, offset)` of each prompt, packed best-fit decreasing into rows of `row_len`."""
  placements: list[tuple[int, int]] = [(0, 0)] * len(lengths)
  for row, members in enumerate(packing.best_fit_rows(lengths, row_len, decreasing=True)):
    offset = 0
    for index in members:
      placements[index] = (row, offset)
      offset += lengths[index]
  return placements


def plan_prefill(lengths: Sequence[int], buckets: Sequence[int], max_row_len: int,
                 row_multiple: int = 1) -> PrefillPlan:
  """Packs prompts into prefill rows with the fewest padded tokens.

  Every bucket from the smallest that holds the longest prompt up to `max_row_len` is tried
  (best-fit decreasing); the one with the fewest rows x row length wins, the shorter row on
  a tie (attention inside a row costs the square of its length).

  Args:
    lengths: prompt lengths (each > 0).
    buckets: allowed row lengths, increasing; the last must hold the longest prompt.
    max_row_len: longest row to consider unless the longest prompt needs a longer one.
    row_multiple: the row count is rounded up to a multiple of this (the batch shards).

  Returns:
    The plan.
  """
  longest = max(lengths)
  fitting = [b for b in buckets if b >= longest]
  if not fitting:
    raise ValueError(f"a prompt of {longest} tokens exceeds the largest bucket {buckets[-1]}")
  candidates = [b for b in fitting if b <= max_row_len] or fitting[:1]
  best = None
  for row_len in candidates:
    placements = _placements(lengths, row_len)
    num_rows = -(-(1 + max(row for row, _ in placements)) // row_multiple) * row_multiple
    if best is None or num_rows * row_len < best.num_rows * best.row_len:
      best = PrefillPlan(row_len, num_rows, tuple(placements))
  return best


def prefill_groups(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
  """Splits prompts, in order, into consecutive groups of at most `max_tokens` tokens each (a
  longer prompt alone), one prefill call each: the call's activations and the keys and values
  it emits before writing them to the cache grow with its tokens, not with the batch.

  Args:
    lengths: prompt lengths, in admission order.
    max_tokens: tokens per group at most (`Engine.max_prefill_tokens`).

  Returns:
    The indices into `lengths` of each group.
  """
  groups: list[list[int]] = []
  total = 0
  for index, length in enumerate(lengths):
    if not groups or total + length > max_tokens:
      groups.append([])
      total = 0
    groups[-1].append(index)
    total += length
  return groups


def _prefill(model: Decoder, eos_ids: jax.Array, cache_sharding: NamedSharding,
             sampling: SamplingConfig, params, prompt, cache, state, rows, slots, root):
  """Prefills the packed prompt `rows` (behind the soft `prompt`, if any) into the cache and
  starts their slots.

  `rows` holds `[num_rows, row_len]` tokens, positions, segment ids and cache rows (the
  slot of each token; `num_slots` for padding) plus `logits_at` `[num_rows, k]`, the last
  token of each prompt. `slots` holds, per slot, the request admitted into it (-1: none),
  its prompt length and `pick`, the flat index of its last token into `logits_at`.
  """
  logits, cache = model.apply(
      {"params": params}, rows["tokens"], positions=rows["positions"],
      segment_ids=rows["segments"], cache=cache, cache_rows=rows["cache_rows"],
      logits_at=rows["logits_at"], prefix_embeddings=prompt)
  cache = jax.lax.with_sharding_constraint(
      cache, tuple({"key": cache_sharding, "value": cache_sharding} for _ in cache))
  last = logits.reshape(-1, logits.shape[-1])[slots["pick"]]
  admitted = slots["request"] >= 0
  keys = jax.vmap(lambda request: jax.random.fold_in(root, request))(slots["request"])
  first = sample_tokens(last, jax.vmap(jax.random.fold_in)(keys, jnp.zeros_like(
      slots["request"])), sampling)
  done = jnp.isin(first, eos_ids) | (sampling.max_new_tokens <= 1)
  prompt_length = 0 if prompt is None else prompt.shape[0]
  fresh = {"token": first, "position": slots["length"] + prompt_length,
           "count": jnp.ones_like(first),
           "limit": jnp.full_like(first, sampling.max_new_tokens), "done": done,
           "out": jnp.full_like(state["out"], -1).at[:, 0].set(first), "key": keys}
  state = {name: jnp.where(admitted.reshape((-1,) + (1,) * (value.ndim - 1)), fresh[name],
                           value) for name, value in state.items()}
  return cache, state


def _decode(model: Decoder, eos_ids: jax.Array, sampling: SamplingConfig, params, cache, state,
            steps):
  """Runs up to `steps` decode steps for every live slot; stops early when all are done."""
  params = split_layers(params, model.config.num_layers)  # once per call, not per step

  def cond(carry):
    i, _, state = carry
    return (i < steps) & ~jnp.all(state["done"])

  def body(carry):
    i, cache, state = carry
    logits, cache = model.apply({"params": params}, state["token"][:, None],
                                positions=state["position"][:, None], cache=cache)
    keys = jax.vmap(jax.random.fold_in)(state["key"], state["count"])
    token = sample_tokens(logits[:, 0], keys, sampling)
    live = ~state["done"]
    is_eos = jnp.isin(token, eos_ids)
    out = state["out"].at[jnp.arange(token.shape[0]), state["count"]].set(
        jnp.where(live, token, -1), mode="drop")
    count = state["count"] + live.astype(jnp.int32)
    done = state["done"] | (live & (is_eos | (count >= state["limit"])))
    state = dict(state, token=jnp.where(live, token, state["token"]),
                 position=state["position"] + live.astype(jnp.int32), out=out, count=count,
                 done=done)
    return i + 1, cache, state

  _, cache, state = jax.lax.while_loop(cond, body, (jnp.int32(0), cache, state))
  return cache, state


class Engine:
  """Generates continuations for many prompts with one model on one mesh.

  Args:
    model_config: the model.
    params: its parameters (already on `mesh`).
    mesh: the device mesh.
    rules: logical axis rules.
    eos_ids: token ids that end a sequence.
    num_slots: sequences decoded at once (the batch).
    max_len: cache length per slot: prompt + generated tokens must fit.
    decode_chunk: decode steps per device call between refills (continuous mode).
    prefill_row_len: prompts admitted together are packed into rows of up to this many
      tokens (longer when a prompt needs it).
    max_prefill_tokens: prompts admitted together are prefilled in calls of at most this
      many prompt tokens (`prefill_groups`), which bounds a call's memory; a longer prompt
      gets a call of its own.
    prompt: a soft prompt `[length, embed_dim]` ahead of every prompt (`run_dir.read_prompt`),
      or None; it takes `length` of each slot's `max_len` positions.
  """

  def __init__(self, model_config: ModelConfig, params: Any, mesh: Mesh,
               rules: parallel.Rules, eos_ids: Sequence[int], num_slots: int = 8,
               max_len: int = 1024, decode_chunk: int = 16, prefill_row_len: int = 1024,
               max_prefill_tokens: int = 16384, prompt: Optional[Any] = None):
    if not eos_ids:
      raise ValueError("eos_ids must name at least one token id")
    if prompt is not None and np.shape(prompt)[-1] != model_config.embed_dim:
      raise ValueError(f"the soft prompt has width {np.shape(prompt)[-1]}; the model's "
                       f"embed_dim is {model_config.embed_dim}")
    parallel.check_batch_size(num_slots, mesh, rules, "num_slots")
    self.config = model_config
    self.params = params
    self.mesh = mesh
    self.rules = rules
    self.eos_ids = jnp.asarray(sorted(set(int(i) for i in eos_ids)), jnp.int32)
    self.num_slots = num_slots
    self.max_len = max_len
    self.decode_chunk = decode_chunk
    self.prefill_row_len = prefill_row_len
    if max_prefill_tokens < 1:
      raise ValueError(f"max_prefill_tokens must be positive, got {max_prefill_tokens}")
    self.max_prefill_tokens = max_prefill_tokens
    self.prompt = None if prompt is None or not len(prompt) else jax.device_put(
        jnp.asarray(prompt, jnp.float32), NamedSharding(mesh, PartitionSpec()))
    self.prompt_length = 0 if self.prompt is None else self.prompt.shape[0]
    self.model = Decoder(model_config)
    # One layer's key (or value) buffer; the cache holds two per layer.
    self.cache_shape = (num_slots, model_config.num_kv_heads, max_len, model_config.head_dim)
    self.cache_sharding = parallel.logical_sharding(mesh, attention.CACHE_AXES, rules,
                                                    self.cache_shape)
    self.slot_sharding = parallel.logical_sharding(mesh, ("cache_batch",), rules, (num_slots,))
    self.stats = GenerationStats()
    # Jitted per engine over plain values, never over `self`: a jit keyed on the engine would
    # keep every engine (and its parameters) alive in JAX's caches after it is dropped. The
    # outputs keep the inputs' shardings, so one program's outputs are the next one's inputs
    # as compiled (`_programs`).
    state_shardings = {name: self._state_sharding(value.ndim) for name, value in
                       self._state_arrays(SamplingConfig(max_new_tokens=1)).items()}
    carried = (self._cache_tree(self.cache_sharding),
               dict(state_shardings, key=self._state_sharding(1)))
    self._prefill = jax.jit(functools.partial(_prefill, self.model, self.eos_ids,
                                              self.cache_sharding),
                            static_argnums=(0,), donate_argnums=(3, 4), out_shardings=carried)
    self._decode = jax.jit(functools.partial(_decode, self.model, self.eos_ids),
                           static_argnums=(0,), donate_argnums=(2, 3), out_shardings=carried)
    self._programs: dict[tuple[Any, ...], jax.stages.Compiled] = {}
    self._empty_cache = jax.jit(
        functools.partial(attention.init_cache, model_config, num_slots, max_len,
                          jnp.dtype(model_config.compute_dtype)),
        out_shardings=self._cache_tree(self.cache_sharding))

  # -------------------------------------------------------------------------------- host code

  def _prompt_room(self, sampling: SamplingConfig) -> int:
    """The longest prompt the cache holds with `sampling.max_new_tokens` (and the soft
    prompt); raises a ValueError when there is no room at all."""
    limit = self.max_len - sampling.max_new_tokens - self.prompt_length
    if limit <= 0:
      soft = f" after the soft prompt's {self.prompt_length}" if self.prompt_length else ""
      raise ValueError(f"max_new_tokens={sampling.max_new_tokens} leaves no room for a prompt "
                       f"in the engine's cache of {self.max_len} tokens (max_len){soft}")
    return limit

  def _check_prompts(self, prompts, sampling):
    limit = self._prompt_room(sampling)
    for index, prompt in enumerate(prompts):
      if not prompt:
        raise ValueError(f"prompt {index} is empty")
      if len(prompt) > limit:
        raise ValueError(f"prompt {index} has {len(prompt)} tokens; with max_new_tokens="
                         f"{sampling.max_new_tokens} the cache of {self.max_len} holds at most "
                         f"{limit}" + (f" (and the soft prompt's {self.prompt_length})"
                                       if self.prompt_length else ""))
    return limit

  def generate(self, prompts: Sequence[Sequence[int]],
               sampling: SamplingConfig = SamplingConfig(), seed: int = 0,
               mode: str = "continuous") -> list[list[int]]:
    """Generates a continuation for every prompt.

    Args:
      prompts: token ids of each prompt (BOS included if the model wants one).
      sampling: decoding settings.
      seed: sampling seed (unused by greedy decoding).
      mode: "continuous" (refill finished slots) or "static" (whole batches).

    Returns:
      The generated ids of each prompt, in order, without the final EOS.

    Raises:
      ValueError: an empty prompt, or one too long for the cache and `max_new_tokens`.
    """
    if mode not in MODES:
      raise ValueError(f"mode {mode!r}; choose one of {MODES}")
    buckets = prompt_buckets(self._check_prompts(prompts, sampling))
    eos = set(self.eos_ids.tolist())
    start = time.perf_counter()
    root = jax.random.key(seed)
    results: list[Optional[list[int]]] = [None] * len(prompts)
    pending = list(range(len(prompts)))
    slot_request = [-1] * self.num_slots
    cache = self._empty_cache()
    state = self._initial_state(sampling)
    with parallel.sharding_context(self.mesh, self.rules):
      while pending or any(r >= 0 for r in slot_request):
        free = [s for s in range(self.num_slots) if slot_request[s] < 0]
        if pending and free and (mode == "continuous" or len(free) == self.num_slots):
          admitted = pending[:len(free)]
          pending = pending[len(admitted):]
          prefill_start = time.perf_counter()
          cache, state = self._admit(cache, state, admitted, free[:len(admitted)], prompts,
                                     sampling, root, buckets)
          jax.block_until_ready(state["token"])
          self.stats.prefill_seconds += time.perf_counter() - prefill_start
          for slot, request in zip(free, admitted):
            slot_request[slot] = request
        steps = self.decode_chunk if mode == "continuous" else sampling.max_new_tokens
        cache, state = self.decode_program(sampling)(self.params, cache, state, steps)
        host = jax.device_get({k: state[k] for k in ("done", "count", "out")})
        for slot, request in enumerate(slot_request):
          if request >= 0 and host["done"][slot]:
            tokens = host["out"][slot, :host["count"][slot]].tolist()
            if tokens and tokens[-1] in eos:
              tokens = tokens[:-1]
            results[request] = tokens
            self.stats.generated_tokens += len(tokens)
            slot_request[slot] = -1
    self.stats.prompts += len(prompts)
    self.stats.seconds += time.perf_counter() - start
    return results

  def lower_decode(self, sampling: SamplingConfig = SamplingConfig()) -> jax.stages.Lowered:
    """The decode program that `generate` runs with `sampling`, lowered but not compiled.

    `.compile().as_text()` is the optimised HLO of the decode loop (e.g. to see which buffers
    a step copies: `benchmarks/hlo_copies.py`); `.compile().memory_analysis()` its memory.
    Only shapes are needed: the parameters may be `jax.ShapeDtypeStruct`s
    (`store.abstract_params`), and the mesh's devices those of a TPU topology
    (`instruct_pt.aot`).

    Args:
      sampling: decoding settings (the program is specialised on them).
    """
    with parallel.sharding_context(self.mesh, self.rules):
      return self._decode.lower(sampling, self.params, self._abstract_cache(),
                                self._abstract_state(sampling), self.decode_chunk)

  def decode_program(self, sampling: SamplingConfig = SamplingConfig()) -> jax.stages.Compiled:
    """The compiled decode program that `generate` runs with `sampling`: compiled on first
    use and kept, so a caller that reads its HLO or memory (`benchmarks/device_suite.py`)
    and `generate` share one compilation.

    Args:
      sampling: decoding settings (the program is specialised on them).
    """
    key = ("decode", sampling)
    if key not in self._programs:
      self._programs[key] = self.lower_decode(sampling).compile()
    return self._programs[key]

  def prefill_program(self, plan: PrefillPlan,
                      sampling: SamplingConfig = SamplingConfig()) -> jax.stages.Compiled:
    """The compiled prefill program that `generate` runs for prompts placed as `plan` says,
    compiled on first use and kept (as `decode_program`).

    Args:
      plan: where the prompts go.
      sampling: decoding settings (the program is specialised on them).
    """
    rows, _ = self._prefill_shapes(plan)
    key = ("prefill", sampling, tuple(sorted(rows.items())))
    if key not in self._programs:
      self._programs[key] = self.lower_prefill(plan, sampling).compile()
    return self._programs[key]

  def largest_prefill(self, sampling: SamplingConfig = SamplingConfig()) -> PrefillPlan:
    """The prefill call with the most tokens `generate` can run: as many slots as one call
    takes (`max_prefill_tokens`, at least one), each with a prompt of the longest length
    `sampling` leaves room for (one row each)."""
    limit = self._prompt_room(sampling)
    slots = min(self.num_slots, max(1, self.max_prefill_tokens // limit))
    return plan_prefill([limit] * slots, prompt_buckets(limit), self.prefill_row_len,
                        parallel.data_parallel_size(self.mesh, self.rules))

  def lower_prefill(self, plan: PrefillPlan,
                    sampling: SamplingConfig = SamplingConfig()) -> jax.stages.Lowered:
    """The prefill program that `generate` runs for prompts placed as `plan` says, lowered
    but not compiled (from shapes alone, as `lower_decode`).

    Args:
      plan: where the prompts go (`largest_prefill` gives the largest).
      sampling: decoding settings (the program is specialised on them).
    """
    rows, slots = self._prefill_shapes(plan)
    replicated = NamedSharding(self.mesh, PartitionSpec())
    abstract = lambda shapes: {  # pylint: disable=unnecessary-lambda-assignment
        name: jax.ShapeDtypeStruct(shape, np.int32, sharding=replicated)
        for name, shape in shapes.items()}
    root = jax.eval_shape(lambda: jax.random.key(0))
    prompt = None if self.prompt is None else jax.ShapeDtypeStruct(
        self.prompt.shape, self.prompt.dtype, sharding=replicated)
    with parallel.sharding_context(self.mesh, self.rules):
      return self._prefill.lower(sampling, self.params, prompt, self._abstract_cache(),
                                 self._abstract_state(sampling), abstract(rows), abstract(slots),
                                 jax.ShapeDtypeStruct(root.shape, root.dtype,
                                                      sharding=replicated))

  def _prefill_shapes(self, plan: PrefillPlan) -> tuple[dict[str, tuple[int, ...]],
                                                       dict[str, tuple[int, ...]]]:
    """Shapes of the prefill's `rows` and per-slot inputs (`_prefill`) for `plan`."""
    shape = (plan.num_rows, plan.row_len)
    # Prompts per row, rounded up to a power of two to bound the compiled shapes.
    picks = 1 << (plan.max_prompts_per_row - 1).bit_length()
    rows = {"tokens": shape, "positions": shape, "segments": shape, "cache_rows": shape,
            "logits_at": (plan.num_rows, picks)}
    return rows, {name: (self.num_slots,) for name in ("request", "length", "pick")}

  def _state_arrays(self, sampling: SamplingConfig) -> dict[str, np.ndarray]:
    """The decode state of idle slots as host arrays, less `key` (`_slot_keys`)."""
    n = self.num_slots
    return {
        "token": np.zeros(n, np.int32), "position": np.zeros(n, np.int32),
        "count": np.zeros(n, np.int32), "limit": np.zeros(n, np.int32),
        "done": np.ones(n, bool), "out": np.full((n, sampling.max_new_tokens), -1, np.int32),
    }

  def _slot_keys(self) -> jax.Array:
    """The state's `key`: one typed PRNG key per slot."""
    return jax.random.split(jax.random.key(0), self.num_slots)

  def _state_sharding(self, ndim: int) -> NamedSharding:
    """Slot-sharded leading dimension, the rest replicated."""
    return NamedSharding(self.mesh, PartitionSpec(*self.slot_sharding.spec,
                                                  *([None] * (ndim - 1))))

  def _initial_state(self, sampling: SamplingConfig) -> dict[str, jax.Array]:
    state = dict(self._state_arrays(sampling), key=self._slot_keys())
    return {k: jax.device_put(v, self._state_sharding(v.ndim)) for k, v in state.items()}

  def _abstract_state(self, sampling: SamplingConfig) -> dict[str, jax.ShapeDtypeStruct]:
    state = dict(self._state_arrays(sampling), key=jax.eval_shape(self._slot_keys))
    return {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=self._state_sharding(v.ndim))
            for k, v in state.items()}

  def _cache_tree(self, leaf) -> tuple[dict[str, Any], ...]:
    """The cache's structure (`attention.init_cache`) with `leaf` at every buffer."""
    return tuple({"key": leaf, "value": leaf} for _ in range(self.config.num_layers))

  def _abstract_cache(self) -> tuple[dict[str, jax.ShapeDtypeStruct], ...]:
    return self._cache_tree(jax.ShapeDtypeStruct(
        self.cache_shape, jnp.dtype(self.config.compute_dtype), sharding=self.cache_sharding))

  def _admit(self, cache, state, requests, slots, prompts, sampling, root, buckets):
    """Prefills `requests` into `slots` and samples their first tokens, in calls of at most
    `max_prefill_tokens` prompt tokens."""
    lengths = [len(prompts[r]) for r in requests]
    row_multiple = parallel.data_parallel_size(self.mesh, self.rules)
    for group in prefill_groups(lengths, self.max_prefill_tokens):
      group_lengths = [lengths[i] for i in group]
      plan = plan_prefill(group_lengths, buckets, self.prefill_row_len, row_multiple)
      self.stats.prompt_tokens += sum(group_lengths)
      self.stats.prefill_calls += 1
      self.stats.compiled_prefill_lengths.add(plan.row_len)
      rows, per_slot = self._prefill_inputs(plan, [requests[i] for i in group],
                                            [slots[i] for i in group], prompts)
      cache, state = self.prefill_program(plan, sampling)(self.params, self.prompt, cache, state,
                                                          rows, per_slot, root)
    return cache, state

  def _prefill_inputs(self, plan, requests, slots, prompts):
    """The prefill's `rows` and per-slot inputs (`_prefill`) placing `requests` as `plan`
    says, into `slots`."""
    row_shapes, slot_shapes = self._prefill_shapes(plan)
    fill = {"cache_rows": self.num_slots, "request": -1}  # padding goes nowhere; no request
    rows, per_slot = ({name: np.full(shape, fill.get(name, 0), np.int32)
                       for name, shape in shapes.items()}
                      for shapes in (row_shapes, slot_shapes))
    in_row = [0] * plan.num_rows
    for request, slot, (row, offset) in zip(requests, slots, plan.placements):
      length = len(prompts[request])
      span = slice(offset, offset + length)
      rows["tokens"][row, span] = prompts[request]
      rows["positions"][row, span] = np.arange(length)
      rows["segments"][row, span] = in_row[row] + 1
      rows["cache_rows"][row, span] = slot
      rows["logits_at"][row, in_row[row]] = offset + length - 1
      per_slot["request"][slot], per_slot["length"][slot] = request, length
      per_slot["pick"][slot] = row * rows["logits_at"].shape[1] + in_row[row]
      in_row[row] += 1
    return rows, per_slot
