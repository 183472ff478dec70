"""The decoder: one Flax module for the Llama / Mistral / SmolLM2 family.

Token embedding (tied or untied) -> N x [RMSNorm -> GQA attention with RoPE -> residual ->
RMSNorm -> SwiGLU MLP -> residual] -> RMSNorm -> LM head. The blocks are stacked with
`nn.scan`, so parameters have a leading `layers` axis and the block compiles once.

Every parameter is created with logical axis names (`nn.with_logical_partitioning`) and every
large activation is constrained with `nn.with_logical_constraint`; `instruct_pt.parallel` maps
the names onto the mesh. Outside a mesh the constraints are no-ops.

Parameter tree (scanned leaves have a leading `[num_layers]` axis)::

  embedder/embedding                [vocab, embed]
  layers/attention_norm/scale       [embed]
  layers/attention/{query,key,value}/kernel  [embed, (kv_)heads, head_dim]
  layers/attention/out/kernel       [heads, head_dim, embed]
  layers/mlp_norm/scale             [embed]
  layers/mlp/{gate,up}/kernel       [embed, mlp]
  layers/mlp/down/kernel            [mlp, embed]
  final_norm/scale                  [embed]
  lm_head/kernel                    [embed, vocab]   (untied models only)
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from instruct_pt.model import attention
from instruct_pt.model.config import ModelConfig

_REMAT_POLICIES = {
    "full": None,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}


class Dense(nn.Module):
  """Bias-free projection contracting the last `contract` input dims into `features`.

  The kernel is created at its full shape `x.shape[-contract:] + features` with its logical
  axis names (flax's DenseGeneral initialises a flattened kernel, which cannot carry them).

  Attributes:
    features: output dims.
    axes: logical names of the kernel's dims (inputs then outputs).
    config: the model config (dtypes, init scale).
    contract: number of trailing input dims contracted.
  """
  features: tuple[int, ...]
  axes: tuple[str, ...]
  config: ModelConfig
  contract: int = 1

  @nn.compact
  def __call__(self, x):
    cfg = self.config
    shape = tuple(x.shape[-self.contract:]) + tuple(self.features)
    kernel = self.param("kernel", nn.with_logical_partitioning(
        nn.initializers.normal(cfg.init_std), self.axes), shape, jnp.dtype(cfg.param_dtype))
    dtype = jnp.dtype(cfg.compute_dtype)
    return jnp.tensordot(x.astype(dtype), kernel.astype(dtype), axes=self.contract)


def _dense(features, axes, config: ModelConfig, name: str, contract: int = 1) -> Dense:
  features = features if isinstance(features, tuple) else (features,)
  return Dense(features, axes, config, contract, name=name)


class RMSNorm(nn.Module):
  """Root-mean-square layer norm, computed in float32."""
  config: ModelConfig

  @nn.compact
  def __call__(self, x):
    scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones, ("norm",)),
                       (x.shape[-1],), jnp.dtype(self.config.param_dtype))
    x32 = x.astype(jnp.float32)
    normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True)
                                 + self.config.norm_eps)
    return (normed * scale.astype(jnp.float32)).astype(jnp.dtype(self.config.compute_dtype))


class Attention(nn.Module):
  """Grouped-query self-attention with RoPE, masks by position/segment, optional KV cache."""
  config: ModelConfig

  @nn.compact
  def __call__(self, x, positions, segment_ids, layer_cache):
    cfg = self.config
    q = _dense((cfg.num_heads, cfg.head_dim), ("embed", "heads", "head_dim"), cfg, "query")(x)
    k = _dense((cfg.num_kv_heads, cfg.head_dim), ("embed", "kv_heads", "head_dim"), cfg,
               "key")(x)
    v = _dense((cfg.num_kv_heads, cfg.head_dim), ("embed", "kv_heads", "head_dim"), cfg,
               "value")(x)
    inv_freq = attention.rope_inverse_frequencies(cfg.head_dim, cfg.rope_theta,
                                                  cfg.rope_scaling)
    q = attention.apply_rope(q, positions, inv_freq)
    k = attention.apply_rope(k, positions, inv_freq)
    q = nn.with_logical_constraint(
        q, ("activation_batch", "activation_length", "activation_heads", "head_dim"))
    k = nn.with_logical_constraint(
        k, ("activation_batch", "activation_length", "activation_kv_heads", "head_dim"))
    v = nn.with_logical_constraint(
        v, ("activation_batch", "activation_length", "activation_kv_heads", "head_dim"))

    if layer_cache is None:
      mask = attention.attention_mask(positions, positions, segment_ids, segment_ids,
                                      cfg.sliding_window)
      causal_only = segment_ids is None and cfg.sliding_window is None
      out = attention.dot_product_attention(q, k, v, mask, cfg.attention_impl, causal_only)
    else:
      layer_cache = attention.update_cache(layer_cache, k, v, positions)
      cache_len = layer_cache["key"].shape[1]
      kv_positions = jnp.broadcast_to(jnp.arange(cache_len), (x.shape[0], cache_len))
      mask = attention.attention_mask(positions, kv_positions, sliding_window=cfg.sliding_window)
      out = attention.dot_product_attention(
          q, layer_cache["key"].astype(q.dtype), layer_cache["value"].astype(q.dtype), mask,
          cfg.attention_impl)
    out = nn.with_logical_constraint(
        out, ("activation_batch", "activation_length", "activation_heads", "head_dim"))
    out = _dense(cfg.embed_dim, ("heads", "head_dim", "embed"), cfg, "out", contract=2)(out)
    return out, layer_cache


class MLP(nn.Module):
  """SwiGLU feed-forward block: down(silu(gate(x)) * up(x))."""
  config: ModelConfig

  @nn.compact
  def __call__(self, x):
    cfg = self.config
    gate = _dense(cfg.mlp_dim, ("embed", "mlp"), cfg, "gate")(x)
    up = _dense(cfg.mlp_dim, ("embed", "mlp"), cfg, "up")(x)
    hidden = nn.with_logical_constraint(
        nn.silu(gate) * up, ("activation_batch", "activation_length", "activation_mlp"))
    return _dense(cfg.embed_dim, ("mlp", "embed"), cfg, "down")(hidden)


class DecoderBlock(nn.Module):
  """Pre-norm attention and MLP with residuals; the unit that `nn.scan` repeats."""
  config: ModelConfig

  @nn.compact
  def __call__(self, x, positions, segment_ids, layer_cache):
    residual_axes = ("activation_batch", "activation_length", "activation_embed")
    x = nn.with_logical_constraint(x, residual_axes)
    attn_out, layer_cache = Attention(self.config, name="attention")(
        RMSNorm(self.config, name="attention_norm")(x), positions, segment_ids, layer_cache)
    x = x + attn_out
    x = x + MLP(self.config, name="mlp")(RMSNorm(self.config, name="mlp_norm")(x))
    return nn.with_logical_constraint(x, residual_axes), layer_cache


class Embedder(nn.Module):
  """Token embedding table; also the output projection of tied models."""
  config: ModelConfig

  def setup(self):
    cfg = self.config
    self.embedding = self.param(
        "embedding", nn.with_logical_partitioning(nn.initializers.normal(cfg.init_std),
                                                  ("vocab", "embed")),
        (cfg.vocab_size, cfg.embed_dim), jnp.dtype(cfg.param_dtype))

  def __call__(self, tokens):
    # Gather the fsdp shards of the table first (as FSDP does for every weight), so the lookup
    # yields batch-sharded activations without an all-to-all.
    table = nn.with_logical_constraint(self.embedding, ("vocab", "activation_embed"))
    return jnp.take(table, tokens, axis=0).astype(jnp.dtype(self.config.compute_dtype))

  def attend(self, x):
    """Logits of `x` against every embedding row."""
    dtype = jnp.dtype(self.config.compute_dtype)
    return jnp.einsum("...d,vd->...v", x.astype(dtype), self.embedding.astype(dtype))


class Decoder(nn.Module):
  """Decoder-only language model.

  Attributes:
    config: the model's `ModelConfig`.
  """
  config: ModelConfig

  @nn.compact
  def __call__(self, tokens: jnp.ndarray, positions: Optional[jnp.ndarray] = None,
               segment_ids: Optional[jnp.ndarray] = None,
               cache: Optional[dict[str, jnp.ndarray]] = None,
               logits_at: Optional[jnp.ndarray] = None):
    """Runs the model.

    Args:
      tokens: int `[batch, length]`.
      positions: int `[batch, length]`, each token's index inside its document; defaults to
        `0..length-1`. With a cache, the absolute positions of the new tokens.
      segment_ids: int `[batch, length]` document ids of packed rows (0 = padding); None when
        each row is one document. Ignored with a cache (one sequence per cache slot).
      cache: KV cache from `attention.init_cache`, or None for a plain forward pass.
      logits_at: int `[batch]`: compute logits only at this index of each row (e.g. the last
        prompt token when prefilling), skipping the vocabulary projection elsewhere.

    Returns:
      `(logits, cache)`: float32 logits `[batch, length, vocab]` (`[batch, 1, vocab]` with
      `logits_at`) and the updated cache (None when no cache was given).
    """
    cfg = self.config
    if positions is None:
      positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
    embedder = Embedder(cfg, name="embedder")
    x = embedder(tokens)

    block = DecoderBlock
    if cfg.remat_policy != "none":
      block = nn.remat(block, policy=_REMAT_POLICIES[cfg.remat_policy], prevent_cse=False)
    layers = nn.scan(
        block, variable_axes={"params": 0}, split_rngs={"params": True},
        in_axes=(nn.broadcast, nn.broadcast, 0), length=cfg.num_layers,
        metadata_params={nn.PARTITION_NAME: "layers"})(cfg, name="layers")
    x, cache = layers(x, positions, segment_ids, cache)

    if logits_at is not None:
      x = jnp.take_along_axis(x, logits_at[:, None, None], axis=1)
    x = RMSNorm(cfg, name="final_norm")(x)
    if cfg.tie_embeddings:
      logits = embedder.attend(x)
    else:
      logits = _dense(cfg.vocab_size, ("embed", "vocab"), cfg, "lm_head")(x)
    logits = nn.with_logical_constraint(
        logits.astype(jnp.float32), ("activation_batch", "activation_length", "activation_vocab"))
    return logits, cache
