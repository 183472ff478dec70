"""Rotary embeddings, attention masks, attention kernels and the KV cache.

Conventions (shared by training, generation and evaluation):

* Activations are `[batch, length, heads, head_dim]`; keys and values have `num_kv_heads`
  heads and queries `num_heads` (grouped-query attention when they differ).
* Every token carries a `position` (its index inside its own document) and a `segment id`
  (which packed document it belongs to; 0 is padding). A query may see a key when both are in
  the same segment, the key's position is not after the query's, and, with a sliding window,
  the key is fewer than `window` positions back. Causality is therefore defined by positions,
  which is what makes one rule serve packed training rows and a KV cache alike. A token may
  also name a *context* segment whose keys it sees as well: continuations of one shared
  context, packed as segments of their own after it (positions going on from the context's),
  read the context once instead of each carrying a copy (evaluation scoring).
* The KV cache holds, per layer, keys and values at their absolute positions
  (`[layers, batch, kv_heads, cache_len, head_dim]`: per (row, kv head) the keys are one
  contiguous `[cache_len, head_dim]` matrix, the operand layout of the attention dot). New
  tokens read only cache entries before their row's first new position and attend to each
  other directly, so a cache row can be reused for a new prompt without clearing it (stale
  entries lie at or after the new positions) and the cache itself is only read inside the
  layers: the model writes all layers' new keys and values once, after the last layer
  (`write_cache`), which XLA does in place inside a decode loop.
"""

from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp

from instruct_pt.model.config import ModelConfig, RopeScaling

# Added to masked logits. Finite, so a fully masked row (padding) gives a uniform softmax
# instead of NaNs.
_MASK_VALUE = -0.7 * float(jnp.finfo(jnp.float32).max)

CACHE_AXES = ("layers", "cache_batch", "cache_kv_heads", "cache_length", "head_dim")

# The segment id of a shared prefix (a soft prompt ahead of a packed row): its keys are seen
# by every segment of the row (`attention_mask(shared_prefix=True)`).
PREFIX_SEGMENT = -1


def rope_inverse_frequencies(head_dim: int, theta: float,
                             scaling: Optional[RopeScaling] = None) -> jnp.ndarray:
  """Inverse frequencies of the rotary embedding, with optional Llama-3 scaling.

  Args:
    head_dim: width of one head (even).
    theta: RoPE base.
    scaling: Llama-3 style scaling of the low frequencies, or None.

  Returns:
    float32 array `[head_dim // 2]`.
  """
  inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
  if scaling is None:
    return inv_freq
  low_freq_wavelen = scaling.original_max_position / scaling.low_freq_factor
  high_freq_wavelen = scaling.original_max_position / scaling.high_freq_factor
  wavelen = 2 * math.pi / inv_freq
  scaled = jnp.where(wavelen > low_freq_wavelen, inv_freq / scaling.factor, inv_freq)
  smooth = ((scaling.original_max_position / wavelen - scaling.low_freq_factor) /
            (scaling.high_freq_factor - scaling.low_freq_factor))
  smoothed = (1 - smooth) * scaled / scaling.factor + smooth * scaled
  is_medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
  return jnp.where(is_medium, smoothed, scaled)


def apply_rope(x: jnp.ndarray, positions: jnp.ndarray, inv_freq: jnp.ndarray) -> jnp.ndarray:
  """Rotates `x` by its positions, "rotate half" layout (as Hugging Face Llama / Mistral).

  Args:
    x: `[batch, length, heads, head_dim]`.
    positions: int `[batch, length]`.
    inv_freq: `[head_dim // 2]` from `rope_inverse_frequencies`.

  Returns:
    Array like `x`.
  """
  angles = positions[..., None].astype(jnp.float32) * inv_freq  # [B, T, H/2]
  sin = jnp.sin(angles)[:, :, None, :]
  cos = jnp.cos(angles)[:, :, None, :]
  x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
  rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return rotated.astype(x.dtype)


def attention_mask(q_positions: jnp.ndarray, kv_positions: jnp.ndarray,
                   q_segment_ids: Optional[jnp.ndarray] = None,
                   kv_segment_ids: Optional[jnp.ndarray] = None,
                   sliding_window: Optional[int] = None,
                   shared_prefix: bool = False,
                   q_context_ids: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """Boolean mask `[batch, q_len, kv_len]`, True where a query may attend to a key.

  Args:
    q_positions: int `[batch, q_len]`.
    kv_positions: int `[batch, kv_len]`.
    q_segment_ids: int `[batch, q_len]` or None (one document per row).
    kv_segment_ids: int `[batch, kv_len]` or None.
    sliding_window: keys at least this many positions back are hidden; None for no window.
    shared_prefix: keys of segment `PREFIX_SEGMENT` are in every query's segment (a soft
      prompt that every packed document of the row reads).
    q_context_ids: int `[batch, q_len]` or None: a query also sees the keys of the segment
      named here (the shared context that its segment continues; a token without one names
      its own segment). Needs segment ids.
  """
  q_pos = q_positions[:, :, None]
  kv_pos = kv_positions[:, None, :]
  mask = kv_pos <= q_pos
  if q_segment_ids is not None and kv_segment_ids is not None:
    same = q_segment_ids[:, :, None] == kv_segment_ids[:, None, :]
    if shared_prefix:
      same |= kv_segment_ids[:, None, :] == PREFIX_SEGMENT
    if q_context_ids is not None:
      same |= q_context_ids[:, :, None] == kv_segment_ids[:, None, :]
    mask &= same
  if sliding_window is not None:
    mask &= q_pos - kv_pos < sliding_window
  return mask


def _xla_attention(q, k, v, mask, logits_dtype=jnp.float32):
  """Einsum attention with the softmax in `logits_dtype`; supports grouped-query attention."""
  batch, q_len, num_heads, head_dim = q.shape
  num_kv_heads = k.shape[2]
  groups = num_heads // num_kv_heads
  q = q.reshape(batch, q_len, num_kv_heads, groups, head_dim)
  logits = jnp.einsum("btkgh,bskh->bkgts", q, k, preferred_element_type=logits_dtype)
  logits = logits / math.sqrt(head_dim)
  logits = jnp.where(mask[:, None, None, :, :], logits, _MASK_VALUE)
  weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
  out = jnp.einsum("bkgts,bskh->btkgh", weights, v)
  return out.reshape(batch, q_len, num_heads, head_dim)


def dot_product_attention(q: jnp.ndarray, k: jnp.ndarray, v: jnp.ndarray, mask: jnp.ndarray,
                          impl: str = "xla", causal_only: bool = False,
                          logits_dtype=jnp.float32) -> jnp.ndarray:
  """Attention of `q` over `k`/`v` under a boolean `mask`.

  Args:
    q: `[batch, q_len, heads, head_dim]`.
    k: `[batch, kv_len, kv_heads, head_dim]`.
    v: like `k`.
    mask: bool `[batch, q_len, kv_len]` from `attention_mask`.
    impl: "xla" (einsum), "dot_product" (`jax.nn.dot_product_attention`, XLA backend) or
      "cudnn" (its cuDNN flash kernel; GPU, bfloat16/float16 only).
    causal_only: promise that `mask` is plain causal attention of a sequence over itself,
      which lets the cuDNN kernel skip the masked blocks instead of reading a mask.
    logits_dtype: dtype of the scores and softmax of the "xla" implementation
      (`ModelConfig.logits_dtype`); the others choose their own.

  Returns:
    `[batch, q_len, heads, head_dim]` in the dtype of `v`.
  """
  if impl == "xla":
    return _xla_attention(q, k, v, mask, logits_dtype)
  implementation = "cudnn" if impl == "cudnn" else None
  if causal_only:
    return jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation=implementation)
  return jax.nn.dot_product_attention(q, k, v, mask=mask[:, None, :, :],
                                      implementation=implementation)


def cached_attention(q: jnp.ndarray, k: jnp.ndarray, v: jnp.ndarray, cache_key: jnp.ndarray,
                     cache_value: jnp.ndarray, positions: jnp.ndarray,
                     sliding_window: Optional[int] = None,
                     logits_dtype=jnp.float32) -> jnp.ndarray:
  """Attention of new tokens over one layer's cache plus themselves (incremental decoding).

  Row b's queries see the cache entries at positions before `positions[b, 0]` (the row's
  first new token) and the new tokens causally; one softmax spans both.

  Args:
    q: `[batch, new_len, heads, head_dim]`.
    k: keys of the new tokens, `[batch, new_len, kv_heads, head_dim]`.
    v: values of the new tokens, like `k`.
    cache_key: this layer's cached keys, `[batch, kv_heads, cache_len, head_dim]`.
    cache_value: cached values, like `cache_key`.
    positions: int `[batch, new_len]`, absolute positions of the new tokens (increasing).
    sliding_window: keys at least this many positions back are hidden; None for no window.
    logits_dtype: dtype of the scores and softmax (`ModelConfig.logits_dtype`).

  Returns:
    `[batch, new_len, heads, head_dim]` in the dtype of `v`.
  """
  batch, new_len, num_heads, head_dim = q.shape
  num_kv_heads, cache_len = cache_key.shape[1], cache_key.shape[2]
  q = q.reshape(batch, new_len, num_kv_heads, num_heads // num_kv_heads, head_dim)
  scale = 1 / math.sqrt(head_dim)
  old = jnp.einsum("btkgh,bksh->bkgts", q, cache_key.astype(q.dtype),
                   preferred_element_type=logits_dtype) * scale
  new = jnp.einsum("btkgh,bskh->bkgts", q, k, preferred_element_type=logits_dtype) * scale
  cache_positions = jnp.arange(cache_len)[None, None, :]
  old_mask = cache_positions < positions[:, :1, None]
  if sliding_window is not None:
    old_mask &= positions[:, :, None] - cache_positions < sliding_window
  new_mask = attention_mask(positions, positions, sliding_window=sliding_window)
  logits = jnp.concatenate([jnp.where(old_mask[:, None, None], old, _MASK_VALUE),
                            jnp.where(new_mask[:, None, None], new, _MASK_VALUE)], axis=-1)
  weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
  out = (jnp.einsum("bkgts,bksh->btkgh", weights[..., :cache_len], cache_value.astype(v.dtype))
         + jnp.einsum("bkgts,bskh->btkgh", weights[..., cache_len:], v))
  return out.reshape(batch, new_len, num_heads, head_dim)


def init_cache(config: ModelConfig, batch_size: int, cache_len: Optional[int] = None,
               dtype=None) -> dict[str, jnp.ndarray]:
  """Zero KV cache for `batch_size` sequences of up to `cache_len` tokens.

  Args:
    config: the model's config.
    batch_size: number of sequences (rows).
    cache_len: tokens per row; defaults to `config.max_seq_len`.
    dtype: cache dtype; defaults to the compute dtype.

  Returns:
    `{"key": array, "value": array}`, each `[layers, batch, kv_heads, cache_len, head_dim]`.
  """
  shape = (config.num_layers, batch_size, config.num_kv_heads,
           cache_len or config.max_seq_len, config.head_dim)
  dtype = dtype or jnp.dtype(config.compute_dtype)
  return {"key": jnp.zeros(shape, dtype), "value": jnp.zeros(shape, dtype)}


def write_cache(cache: dict[str, jnp.ndarray], new_keys: jnp.ndarray, new_values: jnp.ndarray,
                rows: jnp.ndarray, positions: jnp.ndarray) -> dict[str, jnp.ndarray]:
  """Writes every layer's keys/values of new tokens into the cache.

  Entries whose row or position lies past the end of the cache are dropped (send padding
  tokens there; negative indices count from the end, as in numpy).

  Args:
    cache: `{"key", "value"}`, each `[layers, batch, kv_heads, cache_len, head_dim]`.
    new_keys: `[layers, tokens_batch, new_len, kv_heads, head_dim]`.
    new_values: like `new_keys`.
    rows: int `[tokens_batch, new_len]`: the cache row of each new token.
    positions: int `[tokens_batch, new_len]`: its position in that row.

  Returns:
    The updated cache.
  """
  def write(buffer, update):
    # Advanced indices split by a slice put their broadcast dims first: [B, T, L, K, H].
    return buffer.at[:, rows, :, positions, :].set(
        jnp.transpose(update, (1, 2, 0, 3, 4)).astype(buffer.dtype), mode="drop")
  return {"key": write(cache["key"], new_keys), "value": write(cache["value"], new_values)}


def write_prefix(cache: dict[str, jnp.ndarray], keys: jnp.ndarray, values: jnp.ndarray,
                 rows: jnp.ndarray) -> dict[str, jnp.ndarray]:
  """Writes a shared prefix's keys/values at positions `0..p-1` of every cache row in `rows`.

  A prefix that attends only to itself has the same keys and values in every row, so one
  row's are written to each cache row the prefilled tokens go to.

  Args:
    cache: `{"key", "value"}`, each `[layers, batch, kv_heads, cache_len, head_dim]`.
    keys: the prefix's keys, `[layers, p, kv_heads, head_dim]`.
    values: like `keys`.
    rows: int, any shape: the cache rows to write (rows past the cache's batch are ignored).

  Returns:
    The updated cache.
  """
  batch, length = cache["key"].shape[1], keys.shape[1]
  used = jnp.zeros(batch, bool).at[rows.reshape(-1)].set(True, mode="drop")

  def write(buffer, update):
    region = buffer[:, :, :, :length, :]
    update = jnp.transpose(update, (0, 2, 1, 3))[:, None].astype(buffer.dtype)
    return buffer.at[:, :, :, :length, :].set(
        jnp.where(used[None, :, None, None, None], update, region))
  return {"key": write(cache["key"], keys), "value": write(cache["value"], values)}
