"""The time floor of generating tokens for a batch of prompts, from two measured ceilings.

Prefill runs at the measured matmul rate (or, if reading the weights and writing the prompts'
keys and values takes longer, at the copy bandwidth); the prefill's logits give each prompt its
first new token, and every later token is one decode step, which reads all weights and the
live KV cache at the copy bandwidth (or, if its FLOPs take longer, at the matmul rate).

Counts, for `layers` layers of `heads` query heads (`kv_heads` key / value heads) of `head_dim`:

* FLOPs: 2 per matmul parameter per token, plus 4 * layers * heads * head_dim per (query,
  key) pair attended (scores and values); a prompt of length n attends n (n + 1) / 2 causal
  pairs, a decode step of a slot whose cache holds m live tokens (its own included) m pairs.
* Bytes: the weights once per forward pass, plus 2 * layers * kv_heads * head_dim * itemsize
  per cached token written (prefill) or read (decode).

Pure Python (no jax, numpy or torch): both the jax and the torch parts of the device suite use
it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence


@dataclasses.dataclass(frozen=True)
class ModelShape:
  """What the floor needs of a model.

  Attributes:
    layers: decoder layers.
    heads: query heads per layer.
    kv_heads: key / value heads per layer.
    head_dim: width of one head.
    matmul_params: parameters multiplied by each token's activations (no embedding lookup).
    weight_bytes: bytes of all parameters as stored on the device.
    kv_itemsize: bytes per cached key or value element.
  """

  layers: int
  heads: int
  kv_heads: int
  head_dim: int
  matmul_params: int
  weight_bytes: int
  kv_itemsize: int

  @classmethod
  def from_config(cls, config: Any, weight_bytes: int, kv_itemsize: int = 2) -> ModelShape:
    """The shape of a model config (duck-typed: our `ModelConfig`, or anything with its
    `num_layers`, `num_heads`, `num_kv_heads`, `head_dim`, `vocab_size`, `embed_dim` and
    `num_params`). The matmul parameters are the blocks' projections and the output
    projection (tied or not): not the embedding lookup, not the RMSNorm scales (two per
    layer and the final one).

    Args:
      config: the model's config.
      weight_bytes: bytes of its parameters on the device.
      kv_itemsize: bytes per cached element (2: bfloat16).
    """
    return cls(layers=config.num_layers, heads=config.num_heads,
               kv_heads=config.num_kv_heads, head_dim=config.head_dim,
               matmul_params=(config.num_params(include_embeddings=False) -
                              (2 * config.num_layers + 1) * config.embed_dim +
                              config.vocab_size * config.embed_dim),
               weight_bytes=weight_bytes, kv_itemsize=kv_itemsize)

  @property
  def kv_bytes_per_token(self) -> int:
    """Cache bytes of one token: a key and a value per layer and key / value head."""
    return 2 * self.layers * self.kv_heads * self.head_dim * self.kv_itemsize

  @property
  def attention_flops_per_pair(self) -> int:
    """FLOPs of one (query, key) pair over all layers and heads: scores and values."""
    return 4 * self.layers * self.heads * self.head_dim


def generation_floor(shape: ModelShape, prompt_lengths: Sequence[int], new_tokens: int,
                     copy_bandwidth: float, matmul_flops: float) -> dict[str, float]:
  """Seconds (and their bytes and FLOPs) to generate `new_tokens` tokens for each prompt, all
  prompts as one batch: one prefill, then `new_tokens - 1` decode steps.

  Returns prefill_s, decode_s (the steps' sum), total_s, tokens_per_s (batch * new_tokens /
  total_s), decode_step_s (the steps' mean; 0 without steps), decode_steps, and prefill_flops,
  prefill_bytes, decode_flops, decode_bytes (totals).

  Args:
    shape: the model.
    prompt_lengths: tokens of each prompt (the batch).
    new_tokens: tokens generated per prompt (at least 1).
    copy_bandwidth: bytes per second (read + written) of a measured copy.
    matmul_flops: FLOPs per second of a measured matmul.
  """
  if new_tokens < 1 or not prompt_lengths:
    raise ValueError(f"need prompts and new_tokens >= 1, got {len(prompt_lengths)} prompts "
                     f"and new_tokens={new_tokens}")
  batch, prompt_tokens = len(prompt_lengths), sum(prompt_lengths)
  prefill_flops = (2 * shape.matmul_params * prompt_tokens + shape.attention_flops_per_pair *
                   sum(n * (n + 1) // 2 for n in prompt_lengths))
  prefill_bytes = shape.weight_bytes + shape.kv_bytes_per_token * prompt_tokens
  prefill_s = max(prefill_flops / matmul_flops, prefill_bytes / copy_bandwidth)
  decode_s, decode_flops, decode_bytes = 0.0, 0, 0
  for step in range(new_tokens - 1):
    live = prompt_tokens + batch * (step + 1)  # every slot's cache, its newest token included
    flops = 2 * shape.matmul_params * batch + shape.attention_flops_per_pair * live
    read = shape.weight_bytes + shape.kv_bytes_per_token * live
    decode_s += max(flops / matmul_flops, read / copy_bandwidth)
    decode_flops += flops
    decode_bytes += read
  total_s = prefill_s + decode_s
  return {"prefill_s": prefill_s, "decode_s": decode_s, "total_s": total_s,
          "tokens_per_s": batch * new_tokens / total_s,
          "decode_step_s": decode_s / (new_tokens - 1) if new_tokens > 1 else 0.0,
          "decode_steps": new_tokens - 1, "prefill_flops": prefill_flops,
          "prefill_bytes": prefill_bytes, "decode_flops": decode_flops,
          "decode_bytes": decode_bytes}
