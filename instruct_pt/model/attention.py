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
* The KV cache is one pair of buffers per layer (`init_cache`), each `[batch, kv_heads,
  cache_len, head_dim]`, keys and values at their absolute positions (per (row, kv head) the
  keys are one contiguous `[cache_len, head_dim]` matrix, the operand layout of the attention
  dot). Separate buffers let a decode step that runs one block per layer read each layer's
  buffer as it is and update it in place; slices of one stacked `[layers, ...]` buffer would be
  copied out for the attention dot, the whole cache once per step. New tokens are written to
  their layer's buffer first (`write_layer`) and then attend over it up to their own
  position, so a cache row can be reused for a new prompt without clearing it (stale entries
  lie after the new positions). A prefill writes the keys and values its rows computed
  among themselves.
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

CACHE_AXES = ("cache_batch", "cache_kv_heads", "cache_length", "head_dim")  # one layer's

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


def effective_window(sliding_window: Optional[int], length: int) -> Optional[int]:
  """The sliding window that can hide anything among `length` positions, or None.

  A window at least as long as the sequence hides nothing, so plain causal attention (and
  its kernels, which take no window) gives the same result.

  Args:
    sliding_window: `ModelConfig.sliding_window`.
    length: positions the keys span (a row's length, or the cache length).
  """
  return sliding_window if sliding_window is not None and sliding_window < length else None


def cached_attention(q: jnp.ndarray, layer_cache: dict[str, jnp.ndarray],
                     positions: jnp.ndarray, sliding_window: Optional[int] = None,
                     logits_dtype=jnp.float32) -> jnp.ndarray:
  """Attention of new tokens over one layer's cache, their own keys already written to it.

  The query at position p of row b sees the row's cache entries at positions up to p (and
  within the sliding window): the row's earlier tokens and the new tokens up to itself.
  Entries after p are stale (a reused row) or empty, and hidden.

  Args:
    q: `[batch, new_len, heads, head_dim]`.
    layer_cache: this layer's `{"key", "value"}`, each `[batch, kv_heads, cache_len,
      head_dim]`, holding the new tokens' keys and values (`write_layer`).
    positions: int `[batch, new_len]`, absolute positions of the new tokens.
    sliding_window: keys at least this many positions back are hidden; None for no window.
    logits_dtype: dtype of the scores and softmax (`ModelConfig.logits_dtype`).

  Returns:
    `[batch, new_len, heads, head_dim]` in the dtype of `q`.
  """
  cache_key, cache_value = layer_cache["key"], layer_cache["value"]
  batch, new_len, num_heads, head_dim = q.shape
  num_kv_heads, cache_len = cache_key.shape[1], cache_key.shape[2]
  q = q.reshape(batch, new_len, num_kv_heads, num_heads // num_kv_heads, head_dim)
  logits = jnp.einsum("btkgh,bksh->bkgts", q, cache_key.astype(q.dtype),
                      preferred_element_type=logits_dtype) / math.sqrt(head_dim)
  cache_positions = jnp.arange(cache_len)[None, None, :]
  mask = cache_positions <= positions[:, :, None]
  window = effective_window(sliding_window, cache_len)
  if window is not None:
    mask &= positions[:, :, None] - cache_positions < window
  logits = jnp.where(mask[:, None, None], logits, _MASK_VALUE)
  weights = jax.nn.softmax(logits, axis=-1).astype(q.dtype)
  out = jnp.einsum("bkgts,bksh->btkgh", weights, cache_value.astype(q.dtype))
  return out.reshape(batch, new_len, num_heads, head_dim)


def init_cache(config: ModelConfig, batch_size: int, cache_len: Optional[int] = None,
               dtype=None) -> tuple[dict[str, jnp.ndarray], ...]:
  """Zero KV cache for `batch_size` sequences of up to `cache_len` tokens.

  Args:
    config: the model's config.
    batch_size: number of sequences (rows).
    cache_len: tokens per row; defaults to `config.max_seq_len`.
    dtype: cache dtype; defaults to the compute dtype.

  Returns:
    One `{"key": array, "value": array}` per layer, each `[batch, kv_heads, cache_len,
    head_dim]`: separate buffers, so a decode step reads and updates each layer's in place.
  """
  shape = (batch_size, config.num_kv_heads, cache_len or config.max_seq_len, config.head_dim)
  dtype = dtype or jnp.dtype(config.compute_dtype)
  return tuple({"key": jnp.zeros(shape, dtype), "value": jnp.zeros(shape, dtype)}
               for _ in range(config.num_layers))


def write_layer(layer_cache: dict[str, jnp.ndarray], keys: jnp.ndarray, values: jnp.ndarray,
                rows: jnp.ndarray, positions: jnp.ndarray) -> dict[str, jnp.ndarray]:
  """Writes one layer's keys/values of new tokens into its cache buffers.

  Entries whose row or position lies past the end of the cache are dropped (send padding
  tokens there; negative indices count from the end, as in numpy).

  Args:
    layer_cache: `{"key", "value"}`, each `[batch, kv_heads, cache_len, head_dim]`.
    keys: `[tokens_batch, new_len, kv_heads, head_dim]`.
    values: like `keys`.
    rows: int `[tokens_batch, new_len]`: the cache row of each new token.
    positions: int `[tokens_batch, new_len]`: its position in that row.

  Returns:
    The updated buffers.
  """
  def write(buffer, update):
    # Advanced indices split by a slice put their broadcast dims first: [B, T, K, H].
    return buffer.at[rows, :, positions, :].set(update.astype(buffer.dtype), mode="drop")
  return {"key": write(layer_cache["key"], keys), "value": write(layer_cache["value"], values)}


def write_prefix(layer_cache: dict[str, jnp.ndarray], keys: jnp.ndarray, values: jnp.ndarray,
                 rows: jnp.ndarray) -> dict[str, jnp.ndarray]:
  """Writes a shared prefix's keys/values at positions `0..p-1` of every cache row in `rows`.

  A prefix that attends only to itself has the same keys and values in every row, so one
  row's are written to each cache row the prefilled tokens go to.

  Args:
    layer_cache: one layer's `{"key", "value"}`, each `[batch, kv_heads, cache_len, head_dim]`.
    keys: the prefix's keys, `[p, kv_heads, head_dim]`.
    values: like `keys`.
    rows: int, any shape: the cache rows to write (rows past the cache's batch are ignored).

  Returns:
    The updated buffers.
  """
  batch, length = layer_cache["key"].shape[0], keys.shape[0]
  used = jnp.zeros(batch, bool).at[rows.reshape(-1)].set(True, mode="drop")

  def write(buffer, update):
    region = buffer[:, :, :length, :]
    update = jnp.transpose(update, (1, 0, 2))[None].astype(buffer.dtype)
    return buffer.at[:, :, :length, :].set(jnp.where(used[:, None, None, None], update, region))
  return {"key": write(layer_cache["key"], keys), "value": write(layer_cache["value"], values)}
