"""The decoder: one Flax module for the Llama / Mistral / SmolLM2 family.

Token embedding (tied or untied) -> N x [RMSNorm -> GQA attention with RoPE -> residual ->
RMSNorm -> SwiGLU MLP -> residual] -> RMSNorm -> LM head. The blocks are stacked with
`nn.scan`, so parameters have a leading `layers` axis and the block compiles once (or, with
`ModelConfig.scan_layers=False`, once per layer, unrolled over the same stacked parameters).

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

from typing import Any, Optional

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
  """Grouped-query self-attention with RoPE, masks by position/segment, optional KV cache.

  Attributes:
    config: the model config.
    shared_prefix: every segment also sees the keys of segment `attention.PREFIX_SEGMENT`.
  """
  config: ModelConfig
  shared_prefix: bool = False

  @nn.compact
  def __call__(self, x, positions, segment_ids, context_ids, layer_cache):
    """Returns the output and, without `layer_cache`, the tokens' `(keys, values)` (for a
    prefill's cache writer); with it (one layer's buffers), the buffers with the tokens'
    keys and values written, which the tokens attended over."""
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
      window = attention.effective_window(cfg.sliding_window, x.shape[1])
      mask = attention.attention_mask(positions, positions, segment_ids, segment_ids, window,
                                      self.shared_prefix, context_ids)
      causal_only = segment_ids is None and window is None
      out = attention.dot_product_attention(q, k, v, mask, cfg.attention_kernel, causal_only,
                                            jnp.dtype(cfg.logits_dtype))
      kv = (k, v)
    else:
      rows = jnp.broadcast_to(jnp.arange(x.shape[0])[:, None], positions.shape)
      kv = attention.write_layer(layer_cache, k, v, rows, positions)
      out = attention.cached_attention(q, kv, positions, cfg.sliding_window,
                                       jnp.dtype(cfg.logits_dtype))
    out = nn.with_logical_constraint(
        out, ("activation_batch", "activation_length", "activation_heads", "head_dim"))
    out = _dense(cfg.embed_dim, ("heads", "head_dim", "embed"), cfg, "out", contract=2)(out)
    return out, kv


class MLP(nn.Module):
  """SwiGLU feed-forward block: down(silu(gate(x)) * up(x)).

  Its hidden units `silu(gate(x)) * up(x)` (`[batch, length, mlp]`) are multiplied by `keep`
  when given (unit ablation) and sown as `intermediates/mlp` when that collection is mutable
  (unit recording); neither costs anything otherwise.
  """
  config: ModelConfig

  @nn.compact
  def __call__(self, x, keep=None):
    cfg = self.config
    gate = _dense(cfg.mlp_dim, ("embed", "mlp"), cfg, "gate")(x)
    up = _dense(cfg.mlp_dim, ("embed", "mlp"), cfg, "up")(x)
    hidden = nn.silu(gate) * up
    if keep is not None:
      hidden = hidden * keep.astype(hidden.dtype)
    hidden = nn.with_logical_constraint(
        hidden, ("activation_batch", "activation_length", "activation_mlp"))
    self.sow("intermediates", "mlp", hidden)
    return _dense(cfg.embed_dim, ("mlp", "embed"), cfg, "down")(hidden)


class DecoderBlock(nn.Module):
  """Pre-norm attention and MLP with residuals; the unit that `nn.scan` repeats.

  Attributes:
    config: the model config.
    emit_kv: also return the block's new keys and values (stacked over layers by the scan,
      for a prefill's cache writer) or, given a layer cache, the updated one; False in
      training, where they would only cost memory.
    shared_prefix: the rows start with a prefix that every segment sees (`Attention`).
  """
  config: ModelConfig
  emit_kv: bool = False
  shared_prefix: bool = False

  @nn.compact
  def __call__(self, x, positions, segment_ids, context_ids, layer_cache, unit_keep=None):
    """`unit_keep`: this layer's `{"residual": [embed], "mlp": [mlp]}` keep factors (either
    key optional), or None. The block's output (its residual units, after any keep factors)
    is sown as `intermediates/residual` when that collection is mutable."""
    unit_keep = unit_keep or {}
    residual_axes = ("activation_batch", "activation_length", "activation_embed")
    x = nn.with_logical_constraint(x, residual_axes)
    attn_out, new_kv = Attention(self.config, self.shared_prefix, name="attention")(
        RMSNorm(self.config, name="attention_norm")(x), positions, segment_ids, context_ids,
        layer_cache)
    x = x + attn_out
    x = x + MLP(self.config, name="mlp")(RMSNorm(self.config, name="mlp_norm")(x),
                                         unit_keep.get("mlp"))
    if unit_keep.get("residual") is not None:
      x = x * unit_keep["residual"].astype(x.dtype)
    x = nn.with_logical_constraint(x, residual_axes)
    self.sow("intermediates", "residual", x)
    return x, (new_kv if self.emit_kv else None)


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

  def _extend(self, x, positions, cache, unit_keep):
    """Runs the blocks one per layer over the cache (extend mode): each writes the tokens'
    keys and values into its layer's buffers and attends over them; returns the output and
    the updated cache."""
    cfg = self.config
    params = self.variables["params"]
    updated = []
    for i, layer_cache in enumerate(cache):
      if f"layer_{i}" in params:
        layer_params = params[f"layer_{i}"]
      else:  # sliced here, inside the program: a decode loop should pass split_layers' slices
        layer_params = jax.tree_util.tree_map(lambda p, i=i: p[i], params["layers"])
      keep = jax.tree_util.tree_map(lambda k, i=i: k[i], unit_keep)
      x, layer_cache = DecoderBlock(cfg, True, parent=None).apply(
          {"params": layer_params}, x, positions, None, None, layer_cache, keep)
      updated.append(layer_cache)
    return x, tuple(updated)

  @nn.compact
  def __call__(self, tokens: jnp.ndarray, positions: Optional[jnp.ndarray] = None,
               segment_ids: Optional[jnp.ndarray] = None,
               cache: Optional[tuple[dict[str, jnp.ndarray], ...]] = None,
               cache_rows: Optional[jnp.ndarray] = None,
               logits_at: Optional[jnp.ndarray] = None,
               prefix_embeddings: Optional[jnp.ndarray] = None,
               context_ids: Optional[jnp.ndarray] = None,
               unit_keep: Optional[dict[str, jnp.ndarray]] = None):
    """Runs the model.

    With a `cache` there are two modes. Without `cache_rows` (extend), row b of `tokens`
    continues cache row b: the blocks run one per layer (each over its own cache buffers,
    updated in place), and each block writes the tokens' keys and values at their positions
    before they attend to the row's entries up to their own position. With `cache_rows`
    (prefill), the tokens (packed rows with segment ids allowed) attend only to each other,
    as without a cache (the scanned blocks), and each token's key and value is then stored in
    cache row `cache_rows[b, t]` at `positions[b, t]` of every layer.

    Extending takes the stacked parameters or `split_layers`' (one slice per layer, made once
    outside a decode loop; the stacked ones are sliced inside the program).

    With `prefix_embeddings` (a soft prompt of p vectors) every row starts with them, ahead of
    its token embeddings: they take positions `0..p-1` of every document in the row (all
    packed segments see them; they see only themselves), the tokens' positions move up by p,
    and their logits are dropped, so the outputs (and `logits_at`) are about the tokens
    alone, as without a prefix. When prefilling, the prefix's keys and values go to
    positions `0..p-1` of every cache row written, so decode steps continue at positions
    `p + prompt length`. A prefix of length 0 (or None) runs the plain model.

    Args:
      tokens: int `[batch, length]`.
      positions: int `[batch, length]`, each token's index inside its document; defaults to
        `0..length-1`. With a cache, the absolute positions of the new tokens.
      segment_ids: int `[batch, length]` document ids of packed rows (0 = padding); None when
        each row is one document. Not allowed when extending a cache (one sequence per row).
      cache: KV cache from `attention.init_cache`, or None for a plain forward pass.
      cache_rows: int `[batch, length]`: prefill mode, the cache row of each token; rows past
        the cache's batch drop the token (padding).
      logits_at: int `[batch, n]`: compute logits only at these indices of each row (e.g. the
        last token of each prompt when prefilling), skipping the vocabulary projection
        elsewhere.
      prefix_embeddings: float `[p, embed]` or `[batch, p, embed]` vectors ahead of every row
        (a soft prompt), or None. A prefill takes `[p, embed]` only (shared by all rows); not
        allowed when extending a cache (the prefill wrote it).
      context_ids: int `[batch, length]`, with `segment_ids` and no cache: each token also
        sees the keys of the segment named here (the shared context its segment continues;
        its own segment id where there is none), or None.
      unit_keep: unit ablation: `{"residual": [layers, embed], "mlp": [layers, mlp]}` (either
        key optional) factors, usually 0/1, that multiply each layer's output dimensions
        (residual units, from that layer on) and SwiGLU hidden units; None (the default) runs
        the unmodified program. `instruct_pt.model.units` makes them from a units file.

    Returns:
      `(logits, cache)`: float32 logits `[batch, length, vocab]` (`[batch, n, vocab]` with
      `logits_at`) and the updated cache (None when no cache was given).

    Raises:
      ValueError: `cache_rows` without a cache, `segment_ids` or `prefix_embeddings` when
        extending a cache, per-row prefixes in a prefill, prefix vectors of another width
        than the model's, `context_ids` with a cache or without segment ids, or `unit_keep`
        of another shape than the model's units.

    Recording: with `mutable=["intermediates"]`, `apply` also returns every layer's residual
    units (`intermediates/layers/residual`, `[layers, batch, length, embed]`) and SwiGLU hidden
    units (`intermediates/layers/mlp/mlp`, `[layers, batch, length, mlp]`) of the scanned path,
    each wrapped in a 1-tuple (flax's `sow`).
    """
    cfg = self.config
    _check_unit_keep(unit_keep, cfg)
    if context_ids is not None and (cache is not None or segment_ids is None):
      raise ValueError("context_ids need segment_ids and no cache")
    if cache_rows is not None and cache is None:
      raise ValueError("cache_rows is given but cache is None")
    if cache is not None and cache_rows is None and segment_ids is not None:
      raise ValueError("segment_ids cannot be used when extending a cache (one sequence per "
                       "row); prefill packed rows with cache_rows instead")
    prefix = 0 if prefix_embeddings is None else prefix_embeddings.shape[-2]
    if prefix and cache is not None and cache_rows is None:
      raise ValueError("prefix_embeddings cannot be used when extending a cache: the prefill "
                       "(cache_rows) wrote them")
    if prefix and cache is not None and prefix_embeddings.ndim != 2:
      raise ValueError("a prefill takes one prefix_embeddings [p, embed] shared by every row "
                       f"(its keys go to every cache row), got shape {prefix_embeddings.shape}")
    if positions is None:
      positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
    embedder = Embedder(cfg, name="embedder")
    x = embedder(tokens)
    if prefix:
      x, positions, segment_ids, context_ids = _prepend(prefix_embeddings, x, positions,
                                                        segment_ids, context_ids)

    block = DecoderBlock
    if cfg.remat_policy != "none":
      block = nn.remat(block, policy=_REMAT_POLICIES[cfg.remat_policy], prevent_cse=False)
    extending = cache is not None and cache_rows is None
    if "layer_0" in self.variables.get("params", {}) and not extending:
      raise ValueError("parameters split by split_layers serve decode steps only (extending "
                       "a cache); pass the stacked parameters otherwise")
    if extending:
      x, cache = self._extend(x, positions, cache, unit_keep)
    else:
      layers = nn.scan(
          block, variable_axes={"params": 0, "intermediates": 0}, split_rngs={"params": True},
          in_axes=(nn.broadcast, nn.broadcast, nn.broadcast, nn.broadcast, 0),
          length=cfg.num_layers, unroll=1 if cfg.scan_layers else cfg.num_layers,
          metadata_params={nn.PARTITION_NAME: "layers"})(cfg, cache is not None, bool(prefix),
                                                         name="layers")
      # A prefill's rows attend among themselves; every layer's keys and values come out
      # stacked and are written to the layers' buffers below. Unit keep factors enter one
      # layer's row per step.
      x, new_kv = layers(x, positions, segment_ids, context_ids, None, unit_keep)
      if cache is not None:
        cache = _write_prefill(cache, new_kv, cache_rows, positions, prefix)

    if prefix:
      x = x[:, prefix:]
    if logits_at is not None:
      x = jnp.take_along_axis(x, logits_at[:, :, None], axis=1)
    x = RMSNorm(cfg, name="final_norm")(x)
    if cfg.tie_embeddings:
      logits = embedder.attend(x)
    else:
      logits = _dense(cfg.vocab_size, ("embed", "vocab"), cfg, "lm_head")(x)
    logits = nn.with_logical_constraint(
        logits.astype(jnp.float32), ("activation_batch", "activation_length", "activation_vocab"))
    return logits, cache


def _write_prefill(cache, new_kv, cache_rows, positions, prefix: int):
  """Each layer's buffers with a prefill's keys and values (`[layers, rows, length, ...]`,
  the soft prompt's first when `prefix`) written to their cache rows."""
  keys, values = new_kv
  written = []
  for i, layer_cache in enumerate(cache):
    if prefix:  # the same in every row: row 0's go to each cache row being prefilled
      layer_cache = attention.write_prefix(layer_cache, keys[i, 0, :prefix],
                                           values[i, 0, :prefix], cache_rows)
    written.append(attention.write_layer(layer_cache, keys[i, :, prefix:],
                                         values[i, :, prefix:], cache_rows,
                                         positions[:, prefix:]))
  return tuple(written)


def _check_unit_keep(unit_keep: Optional[dict[str, jnp.ndarray]], cfg: ModelConfig) -> None:
  """Raises a ValueError naming the key and both shapes unless `unit_keep` fits the model."""
  for kind, value in (unit_keep or {}).items():
    widths = {"residual": cfg.embed_dim, "mlp": cfg.mlp_dim}
    if kind not in widths:
      raise ValueError(f"unit_keep has key {kind!r}; the unit kinds are {tuple(widths)}")
    expected = (cfg.num_layers, widths[kind])
    if value is not None and tuple(value.shape) != expected:
      raise ValueError(f"unit_keep[{kind!r}] has shape {tuple(value.shape)}; the model's "
                       f"{kind} units are {expected} (layers, width)")


def _prepend(prefix: jnp.ndarray, x: jnp.ndarray, positions: jnp.ndarray,
             segment_ids: Optional[jnp.ndarray], context_ids: Optional[jnp.ndarray]):
  """`x`, positions, segment ids and context ids with the prefix vectors ahead of every
  row."""
  batch, length, width = x.shape[0], prefix.shape[-2], x.shape[-1]
  if prefix.shape[-1] != width:
    raise ValueError(f"prefix_embeddings have width {prefix.shape[-1]}; the model's "
                     f"embed_dim is {width}")
  prefix = jnp.broadcast_to(prefix.astype(x.dtype), (batch, length, width))
  prefix_positions = jnp.broadcast_to(jnp.arange(length, dtype=positions.dtype),
                                      (batch, length))
  positions = jnp.concatenate([prefix_positions, positions + length], axis=1)
  segment_ids, context_ids = (
      None if ids is None else jnp.concatenate(
          [jnp.full((batch, length), attention.PREFIX_SEGMENT, ids.dtype), ids], axis=1)
      for ids in (segment_ids, context_ids))
  return jnp.concatenate([prefix, x], axis=1), positions, segment_ids, context_ids


def split_layers(params: dict[str, Any], num_layers: int) -> dict[str, Any]:
  """The parameters for decode steps (extending a cache), one slice per layer.

  The stacked `layers` subtree becomes `layer_0` ... `layer_{num_layers - 1}`, each one
  layer's slice; everything else is shared. Decode steps run one block per layer (each over
  its own cache buffers); given stacked parameters they slice them inside the step, and XLA
  materialises those slices, every block weight copied per step. The engine splits once per
  decode loop, outside its steps, so the slices are made once per call, at the cost of one
  more copy of the block weights while the loop runs (MaxText decodes with
  `scan_layers=False` for the same reason).

  Args:
    params: the model's parameters (stacked, as `init` makes them and checkpoints hold them).
    num_layers: `ModelConfig.num_layers`.
  """
  split = {name: value for name, value in params.items() if name != "layers"}
  for i in range(num_layers):
    split[f"layer_{i}"] = jax.tree_util.tree_map(lambda p, i=i: p[i], params["layers"])
  return split
