"""Tests of the decoder model: packing, KV cache, attention kernels, RoPE, GQA, remat, presets.

Expectations are derived independently of the code under test: by running each document
alone, by a full forward pass, by a numpy reference, by invariances of RoPE, or by
published parameter counts. Everything runs on the CPU in float32 with tiny shapes.
"""

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from instruct_pt.model import attention
from instruct_pt.model.config import ModelConfig, RopeScaling, get_preset, preset_names
from instruct_pt.model.transformer import Decoder, split_layers

TOL = 1e-5

# The tiny preset, with a larger init scale than the default 0.02 so that attention weights
# are far from uniform and a wrong mask / position / head mapping moves the logits well above
# the 1e-5 tolerance (each such test also asserts that sensitivity).
CFG = get_preset("tiny", init_std=0.1)
VOCAB_LO, VOCAB_HI = 3, 259  # byte-vocabulary ids


@functools.lru_cache(maxsize=None)
def _jitted_apply(cfg: ModelConfig):
  model = Decoder(cfg)

  def apply(params, tokens, positions, segment_ids, cache, cache_rows):
    return model.apply({"params": params}, tokens, positions, segment_ids, cache, cache_rows)

  return jax.jit(apply)


def forward(cfg, params, tokens, positions=None, segment_ids=None, cache=None,
            cache_rows=None):
  """`(logits, cache)` of `Decoder(cfg)` (jitted once per config and input shapes)."""
  as_int = lambda x: None if x is None else jnp.asarray(x, jnp.int32)
  return _jitted_apply(cfg)(params, as_int(tokens), as_int(positions), as_int(segment_ids),
                            cache, as_int(cache_rows))


def init_params(cfg, seed=0):
  variables = jax.jit(Decoder(cfg).init)(jax.random.PRNGKey(seed), jnp.zeros((1, 4), jnp.int32))
  return nn.meta.unbox(variables)["params"]


def random_tokens(rng, *shape):
  return rng.integers(VOCAB_LO, VOCAB_HI, size=shape).astype(np.int32)


def param_count(tree) -> int:
  return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree)))


@pytest.fixture(scope="module")
def params():
  return init_params(CFG)


# Shared inputs: five documents of different lengths, packed into two rows of 16 tokens
# (row 0: three documents + 1 padding token; row 1: two documents), and the same documents
# each alone in its own row, right-padded to 16 (padding after a causal document cannot change
# its logits). Reusing these shapes keeps the number of XLA compilations small.
DOC_LENGTHS = ((4, 6, 5), (9, 7))
ROW_LEN = 16


def _packed_row(docs, row_len):
  pad = row_len - sum(len(d) for d in docs)
  tokens = np.concatenate(docs + [np.zeros(pad, np.int32)])
  segments = np.concatenate([np.full(len(d), i + 1) for i, d in enumerate(docs)] +
                            [np.zeros(pad, np.int32)])
  positions = np.concatenate([np.arange(len(d)) for d in docs] + [np.zeros(pad, np.int32)])
  starts = np.cumsum([0] + [len(d) for d in docs])
  return tokens, positions, segments, starts


@pytest.fixture(scope="module")
def data():
  rng = np.random.default_rng(1)
  docs_per_row = [[random_tokens(rng, n) for n in lengths] for lengths in DOC_LENGTHS]
  rows = [_packed_row(docs, ROW_LEN) for docs in docs_per_row]
  docs = [d for row_docs in docs_per_row for d in row_docs]
  alone = np.zeros((len(docs), ROW_LEN), np.int32)
  for i, d in enumerate(docs):
    alone[i, :len(d)] = d
  return {
      "docs": docs,
      "tokens": np.stack([r[0] for r in rows]),
      "positions": np.stack([r[1] for r in rows]),
      "segments": np.stack([r[2] for r in rows]),
      # (row, start, end) of every document, in the order of `docs`.
      "spans": [(r, row[3][j], row[3][j + 1]) for r, row in enumerate(rows)
                for j in range(len(row[3]) - 1)],
      "alone": alone,
  }


@pytest.fixture(scope="module")
def alone_logits(params, data):
  """Logits of each document run alone (one per row, no segment ids), per sliding window."""
  return {w: np.asarray(forward(CFG.replace(sliding_window=w), params, data["alone"])[0])
          for w in (None, 3)}


def _packed(data):
  return data["tokens"], data["positions"], data["segments"]


# 1. Packing ------------------------------------------------------------------------------------

@pytest.mark.parametrize("window", [None, 3])
def test_packed_rows_match_each_document_alone(params, data, alone_logits, window):
  """Packed rows (segment ids 1,2,3 / 1,2, positions restarting at 0, padding) give every
  document the logits it gets when run alone, with the same sliding window (if any)."""
  cfg = CFG.replace(sliding_window=window)
  assert len(set(DOC_LENGTHS[0])) == 3 and min(map(min, DOC_LENGTHS)) > 3  # docs > window
  packed, cache = forward(cfg, params, *_packed(data))
  assert cache is None
  assert packed.shape == (2, ROW_LEN, cfg.vocab_size) and packed.dtype == jnp.float32
  for i, (row, start, end) in enumerate(data["spans"]):
    np.testing.assert_allclose(packed[row, start:end], alone_logits[window][i, :end - start],
                               atol=TOL, rtol=TOL, err_msg=f"document {i}")
  # The three documents of row 0 also run alone at their exact lengths (no padding at all).
  for i, (row, start, end) in enumerate(data["spans"][:3]):
    exact, _ = forward(cfg, params, data["docs"][i][None])
    assert exact.shape[1] == end - start
    np.testing.assert_allclose(packed[row, start:end], exact[0], atol=TOL, rtol=TOL,
                               err_msg=f"document {i}")
  # Sensitivity: the same rows read as one causal document each give different logits to the
  # later documents, so the comparison above does depend on segments and positions.
  one_doc, _ = forward(cfg, params, data["tokens"],
                       np.broadcast_to(np.arange(ROW_LEN), (2, ROW_LEN)),
                       np.ones((2, ROW_LEN), np.int32))
  _, start, end = data["spans"][1]
  assert np.abs(one_doc[0, start:end] - packed[0, start:end]).max() > 1e-3


def test_sliding_window_changes_logits_only_past_the_window(data, alone_logits):
  """With window 3, positions 0..2 of a document see the same keys as with full attention
  (same logits) and every later position does not (different logits)."""
  for i, doc in enumerate(data["docs"]):
    full, windowed = alone_logits[None][i, :len(doc)], alone_logits[3][i, :len(doc)]
    np.testing.assert_allclose(windowed[:3], full[:3], atol=TOL, rtol=TOL)
    assert np.abs(windowed[3:] - full[3:]).max(axis=-1).min() > 1e-4


def test_a_window_as_long_as_the_row_takes_the_causal_kernel(params, data, monkeypatch):
  """A sliding window at least as long as the row hides nothing, so it is dropped
  (`attention.effective_window`) and a one-document row takes the causal kernel path (no
  mask operand; cuDNN then skips the masked blocks), with the logits of full attention; a
  shorter window keeps the mask."""
  assert attention.effective_window(4096, 4096) is None
  assert attention.effective_window(4095, 4096) == 4095
  assert attention.effective_window(None, 8) is None
  calls = []
  real = attention.dot_product_attention

  def spy(*args, **kwargs):
    calls.append(args[5])  # causal_only
    return real(*args, **kwargs)

  monkeypatch.setattr(attention, "dot_product_attention", spy)
  tokens = jnp.asarray(data["alone"][:1])
  cfg = CFG.replace(attention_impl="dot_product")
  outputs = {}
  for window in (None, tokens.shape[1], tokens.shape[1] - 1):
    calls.clear()
    outputs[window] = Decoder(cfg.replace(sliding_window=window)).apply({"params": params},
                                                                        tokens)[0]
    assert calls and set(calls) == {window != tokens.shape[1] - 1}, (window, calls)
  np.testing.assert_array_equal(outputs[tokens.shape[1]], outputs[None])


# 2. KV cache -----------------------------------------------------------------------------------

CACHE_LEN = 16
PREFILL = 5


def _decode(cfg, params, cache, prompt, positions, steps):
  """Prefills `prompt` at `positions`, then feeds `steps` ([tokens], [positions]) one at a
  time. Returns the prefill logits, the per-step logits and the cache."""
  prefill, cache = forward(cfg, params, prompt, positions, cache=cache)
  outs = []
  for toks, pos in steps:
    logits, cache = forward(cfg, params, toks, pos, cache=cache)
    outs.append(np.asarray(logits[:, 0]))
  return np.asarray(prefill), outs, cache


@pytest.mark.parametrize("window", [None, 3])
def test_kv_cache_prefill_then_decode_matches_full_forward(params, data, alone_logits, window):
  """Prefilling a prompt into a KV cache, then decoding one token at a time, gives at every
  position the logits of the full (cache-free) forward pass, with and without a window."""
  cfg = CFG.replace(sliding_window=window)
  i = 3
  seq = data["docs"][i][None]
  assert seq.shape[1] > PREFILL + 2
  cache = attention.init_cache(cfg, batch_size=1, cache_len=CACHE_LEN)
  assert len(cache) == cfg.num_layers
  assert cache[0]["key"].shape == (1, cfg.num_kv_heads, CACHE_LEN, cfg.head_dim)
  assert cache[0]["key"].dtype == jnp.float32
  prefill, steps, cache = _decode(
      cfg, params, cache, seq[:, :PREFILL], np.arange(PREFILL)[None],
      [(seq[:, p:p + 1], [[p]]) for p in range(PREFILL, seq.shape[1])])
  full = alone_logits[window][i]
  np.testing.assert_allclose(prefill[0], full[:PREFILL], atol=TOL, rtol=TOL)
  for p, logits in zip(range(PREFILL, seq.shape[1]), steps):
    np.testing.assert_allclose(logits[0], full[p], atol=TOL, rtol=TOL, err_msg=f"position {p}")


@pytest.mark.parametrize("window", [None, 3])
def test_decode_with_split_layers_equals_the_stacked_parameters(params, data, window):
  """Decode steps given `split_layers` slices (made once, outside a decode loop) give exactly
  the logits and cache of the same steps given the stacked parameters (sliced inside), step
  after step, for a batch of prompts at different positions, with and without a window; the
  split parameters serve decode steps only."""
  cfg = CFG.replace(sliding_window=window)
  split = split_layers(params, CFG.num_layers)
  assert "layers" not in split and set(split["layer_1"]) == set(params["layers"])
  np.testing.assert_array_equal(split["layer_1"]["mlp"]["up"]["kernel"],
                                params["layers"]["mlp"]["up"]["kernel"][1])
  with pytest.raises(ValueError, match="serve decode steps only"):
    forward(cfg, split, data["docs"][3][None])
  prompt = np.stack([data["docs"][3][:PREFILL], data["docs"][4][:PREFILL]])
  _, cache = forward(cfg, params, prompt, np.broadcast_to(np.arange(PREFILL), prompt.shape),
                     cache=attention.init_cache(CFG, batch_size=2, cache_len=CACHE_LEN),
                     cache_rows=np.broadcast_to(np.arange(2)[:, None], prompt.shape))
  caches = {"stacked": cache, "split": cache}
  for step in range(4):
    tokens = np.asarray([[VOCAB_LO + step], [VOCAB_HI - 1 - step]])
    positions = np.asarray([[PREFILL + step], [PREFILL + 2 * step]])
    expected, caches["stacked"] = forward(cfg, params, tokens, positions,
                                          cache=caches["stacked"])
    logits, caches["split"] = forward(cfg, split, tokens, positions, cache=caches["split"])
    np.testing.assert_array_equal(logits, expected, err_msg=f"step {step}")
    jax.tree_util.tree_map(np.testing.assert_array_equal, caches["split"], caches["stacked"])


def test_attention_impl_auto_resolves_by_backend():
  """"auto" is cuDNN's flash kernel on GPU with a 16-bit compute dtype, XLA elsewhere (these
  tests run on CPU: XLA)."""
  assert jax.default_backend() == "cpu"
  assert CFG.attention_impl == "auto" and CFG.attention_kernel == "xla"
  assert CFG.for_backend("gpu").attention_impl == "cudnn"
  assert CFG.replace(dtype="float32").for_backend("gpu").attention_impl == "xla"
  assert CFG.for_backend("tpu").attention_impl == "xla"
  assert CFG.replace(attention_impl="dot_product").attention_kernel == "dot_product"


def test_kv_cache_batch_of_right_padded_prompts(params, data, alone_logits):
  """Two prompts of lengths 3 and 5, right-padded to 5 and prefilled together; then each row
  decodes its own continuation at its own positions (row 0's padded slots 3, 4 get
  overwritten). Every real position matches that sequence's full forward pass."""
  cfg = CFG
  doc_ids, prompt_lens = (1, 3), (3, PREFILL)
  seqs = [data["docs"][i] for i in doc_ids]
  prompt = np.zeros((2, PREFILL), np.int32)
  for r, n in enumerate(prompt_lens):
    prompt[r, :n] = seqs[r][:n]
  num_steps = max(len(s) - n for s, n in zip(seqs, prompt_lens))
  # A row past its sequence keeps decoding filler tokens; those positions are not checked.
  steps = []
  for t in range(num_steps):
    pos = [n + t for n in prompt_lens]
    toks = [[s[p] if p < len(s) else VOCAB_LO] for s, p in zip(seqs, pos)]
    steps.append((toks, [[p] for p in pos]))
  cache = attention.init_cache(cfg, batch_size=2, cache_len=CACHE_LEN)
  prefill, outs, _ = _decode(cfg, params, cache, prompt,
                             np.broadcast_to(np.arange(PREFILL), (2, PREFILL)), steps)
  checked = 0
  for r, (i, n) in enumerate(zip(doc_ids, prompt_lens)):
    full = alone_logits[None][i]
    np.testing.assert_allclose(prefill[r, :n], full[:n], atol=TOL, rtol=TOL)
    for t, logits in enumerate(outs):
      p = n + t
      if p < len(seqs[r]):
        np.testing.assert_allclose(logits[r], full[p], atol=TOL, rtol=TOL,
                                   err_msg=f"row {r} position {p}")
        checked += 1
  assert checked == sum(len(s) - n for s, n in zip(seqs, prompt_lens))


@pytest.mark.parametrize("impl", ["xla", "dot_product"])
def test_packed_prefill_into_cache_rows(params, data, alone_logits, impl):
  """Prefilling the packed rows (five documents in two rows, segment ids) with `cache_rows`
  sending document j to cache row j and padding past the cache: the logits are each document's
  alone, the cache rows hold what prefilling each document alone writes, and one decode step
  from either cache gives the same logits (the zero entries after each document and the
  alone run's padding entries are both masked)."""
  cfg = CFG.replace(attention_impl=impl)
  num_docs = len(data["docs"])
  rows = np.full(data["tokens"].shape, num_docs)  # padding: past the cache, dropped
  for j, (r, start, end) in enumerate(data["spans"]):
    rows[r, start:end] = j
  packed_logits, packed_cache = forward(
      cfg, params, data["tokens"], data["positions"], data["segments"],
      cache=attention.init_cache(cfg, num_docs, ROW_LEN + 1), cache_rows=rows)
  _, alone_cache = forward(cfg, params, data["alone"], np.broadcast_to(
      np.arange(ROW_LEN), data["alone"].shape), cache=attention.init_cache(
          cfg, num_docs, ROW_LEN + 1))
  lengths = [len(d) for d in data["docs"]]
  for j, (r, start, end) in enumerate(data["spans"]):
    np.testing.assert_allclose(packed_logits[r, start:end], alone_logits[None][j, :lengths[j]],
                               atol=TOL, rtol=TOL)
    for part in ("key", "value"):
      packed, alone = (np.stack([layer[part] for layer in c]) for c in (packed_cache,
                                                                       alone_cache))
      np.testing.assert_allclose(packed[:, j, :, :lengths[j]], alone[:, j, :, :lengths[j]],
                                 atol=TOL, rtol=TOL)
      assert not packed[:, j, :, lengths[j]:].any()
  step = (np.full((num_docs, 1), VOCAB_LO + 1), np.asarray(lengths)[:, None])
  from_packed, _ = forward(cfg, params, *step, cache=packed_cache)
  from_alone, _ = forward(cfg, params, *step, cache=alone_cache)
  np.testing.assert_allclose(from_packed, from_alone, atol=TOL, rtol=TOL)


def test_cache_modes_reject_bad_arguments(params):
  """cache_rows needs a cache; segment ids cannot be used when extending one."""
  model, tokens = Decoder(CFG), jnp.zeros((1, 3), jnp.int32)
  with pytest.raises(ValueError, match="cache_rows is given but cache is None"):
    model.apply({"params": params}, tokens, cache_rows=tokens)
  with pytest.raises(ValueError, match="segment_ids cannot be used when extending"):
    model.apply({"params": params}, tokens, segment_ids=tokens + 1,
                cache=attention.init_cache(CFG, 1, 8))


def test_kv_cache_slot_reuse_equals_fresh_cache(params, data, alone_logits):
  """After a cache slot held a 9-token sequence, writing a shorter (6-token) new sequence from
  position 0 into it gives the same logits as a fresh (zero) cache, and as the full pass."""
  old, new = data["docs"][3][None], data["docs"][1][None]
  assert old.shape[1] > new.shape[1] > PREFILL

  def run(seq, cache):
    return _decode(CFG, params, cache, seq[:, :PREFILL], np.arange(PREFILL)[None],
                   [(seq[:, p:p + 1], [[p]]) for p in range(PREFILL, seq.shape[1])])

  _, _, used = run(old, attention.init_cache(CFG, 1, CACHE_LEN))
  # The slot really holds the old sequence, past the new one's end too.
  stale = np.abs(np.stack([layer["key"][0, :, new.shape[1]:old.shape[1]] for layer in used]))
  assert (stale.max(axis=(0, 1, 3)) > 0).all()
  reused_prefill, reused_steps, _ = run(new, used)
  fresh_prefill, fresh_steps, _ = run(new, attention.init_cache(CFG, 1, CACHE_LEN))
  reused = np.concatenate([reused_prefill[0]] + [s[0][None] for s in reused_steps])
  fresh = np.concatenate([fresh_prefill[0]] + [s[0][None] for s in fresh_steps])
  np.testing.assert_allclose(reused, fresh, atol=TOL, rtol=TOL)
  np.testing.assert_allclose(reused, alone_logits[None][1, :new.shape[1]], atol=TOL, rtol=TOL)


# 3. Attention implementations --------------------------------------------------------------------

@pytest.mark.parametrize("window", [None, 3])
@pytest.mark.parametrize("packed", [True, False], ids=["packed", "unpacked"])
def test_attention_impls_agree(params, data, alone_logits, packed, window):
  """attention_impl="dot_product" (jax.nn.dot_product_attention) gives the logits of "xla" on a
  packed batch with segment ids and on unpacked rows (the causal_only path without a window),
  with and without a sliding window (compared on non-padding tokens)."""
  dpa_cfg = CFG.replace(sliding_window=window, attention_impl="dot_product")
  if packed:
    ref, _ = forward(CFG.replace(sliding_window=window), params, *_packed(data))
    out, _ = forward(dpa_cfg, params, *_packed(data))
    real = data["segments"] != 0
  else:
    ref = alone_logits[window]
    out, _ = forward(dpa_cfg, params, data["alone"])
    real = data["alone"] != 0
  np.testing.assert_allclose(np.asarray(out)[real], np.asarray(ref)[real], atol=TOL, rtol=TOL)


# 4. Attention mask -----------------------------------------------------------------------------

def _reference_mask(q_pos, kv_pos, q_seg, kv_seg, window, q_ctx=None):
  batch, q_len = q_pos.shape
  kv_len = kv_pos.shape[1]
  mask = np.zeros((batch, q_len, kv_len), bool)
  for b in range(batch):
    for i in range(q_len):
      for j in range(kv_len):
        ok = kv_pos[b, j] <= q_pos[b, i]
        if q_seg is not None:
          ok = ok and (q_seg[b, i] == kv_seg[b, j] or
                       (q_ctx is not None and q_ctx[b, i] == kv_seg[b, j]))
        if window is not None:
          ok = ok and q_pos[b, i] - kv_pos[b, j] < window
        mask[b, i, j] = ok
  return mask


@pytest.mark.parametrize("window", [None, 1, 3])
@pytest.mark.parametrize("segments", ["none", "segments", "with contexts"])
def test_attention_mask_matches_numpy_loop(window, segments):
  """attention_mask equals a direct triple loop over (batch, query, key) for random positions,
  segment ids (or none; with or without context ids) and sliding window (or none)."""
  rng = np.random.default_rng(8)
  q_pos = rng.integers(0, 10, (3, 7))
  kv_pos = rng.integers(0, 10, (3, 9))
  q_seg = rng.integers(0, 3, (3, 7)) if segments != "none" else None
  kv_seg = rng.integers(0, 3, (3, 9)) if segments != "none" else None
  q_ctx = rng.integers(0, 3, (3, 7)) if segments == "with contexts" else None
  got = attention.attention_mask(
      jnp.asarray(q_pos), jnp.asarray(kv_pos),
      None if q_seg is None else jnp.asarray(q_seg),
      None if kv_seg is None else jnp.asarray(kv_seg), window,
      q_context_ids=None if q_ctx is None else jnp.asarray(q_ctx))
  expected = _reference_mask(q_pos, kv_pos, q_seg, kv_seg, window, q_ctx)
  if q_ctx is not None:  # the contexts widen what some query sees
    assert (expected & ~_reference_mask(q_pos, kv_pos, q_seg, kv_seg, window)).any()
  assert got.dtype == jnp.bool_ and got.shape == expected.shape
  np.testing.assert_array_equal(np.asarray(got), expected)
  assert 0 < expected.sum() < expected.size  # the random case exercises both outcomes


# 5. RoPE ---------------------------------------------------------------------------------------

def test_rope_preserves_norms():
  """apply_rope is a rotation: every head vector keeps its norm, and position 0 is identity."""
  rng = np.random.default_rng(9)
  x = rng.normal(size=(2, 6, 3, 16)).astype(np.float32)
  positions = rng.integers(0, 200, (2, 6))
  positions[0, 0] = 0
  inv_freq = attention.rope_inverse_frequencies(16, 10000.0)
  rotated = np.asarray(attention.apply_rope(jnp.asarray(x), jnp.asarray(positions), inv_freq))
  np.testing.assert_allclose(np.linalg.norm(rotated, axis=-1), np.linalg.norm(x, axis=-1),
                             rtol=1e-5)
  np.testing.assert_allclose(rotated[0, 0], x[0, 0], atol=1e-6)
  assert np.abs(rotated[1] - x[1]).max() > 1e-2  # it does rotate


def test_rope_matches_hugging_face_rotate_half_reference():
  """apply_rope equals a numpy transcription of Hugging Face Llama's rotary embedding:
  x * cos + rotate_half(x) * sin with cos/sin of cat(freqs, freqs) and rotate_half(x) =
  cat(-x2, x1), inv_freq = 1 / theta ** (2i / head_dim) (so HF checkpoints load unchanged)."""
  rng = np.random.default_rng(15)
  head_dim, theta = 16, 10000.0
  x = rng.normal(size=(2, 5, 3, head_dim)).astype(np.float32)
  positions = rng.integers(0, 64, (2, 5))
  inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2) / head_dim)
  freqs = positions[..., None] * inv_freq
  emb = np.concatenate([freqs, freqs], axis=-1)[:, :, None, :]
  rotate_half = np.concatenate([-x[..., head_dim // 2:], x[..., :head_dim // 2]], axis=-1)
  expected = x * np.cos(emb) + rotate_half * np.sin(emb)
  got = attention.apply_rope(jnp.asarray(x), jnp.asarray(positions),
                             attention.rope_inverse_frequencies(head_dim, theta))
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(got), expected, atol=1e-4)


def test_rope_dot_product_depends_only_on_position_difference():
  """<rope(q, m), rope(k, n)> is unchanged when both positions shift by the same offset (two
  offsets checked), and changes when the difference m - n changes."""
  rng = np.random.default_rng(10)
  q = jnp.asarray(rng.normal(size=(1, 1, 1, 32)).astype(np.float32))
  k = jnp.asarray(rng.normal(size=(1, 1, 1, 32)).astype(np.float32))
  inv_freq = attention.rope_inverse_frequencies(32, 10000.0)

  def score(m, n):
    qm = attention.apply_rope(q, jnp.asarray([[m]]), inv_freq)
    kn = attention.apply_rope(k, jnp.asarray([[n]]), inv_freq)
    return float(jnp.sum(qm * kn))

  base = score(7, 3)
  for offset in (5, 40):
    assert score(7 + offset, 3 + offset) == pytest.approx(base, rel=1e-4, abs=1e-4)
  assert abs(score(8, 3) - base) > 1e-3


def test_rope_llama3_scaling():
  """rope_inverse_frequencies with RopeScaling follows Llama-3's rule: wavelengths below
  original/high_freq_factor unchanged, above original/low_freq_factor divided by factor, and
  in between the smooth interpolation (strictly between the two)."""
  head_dim, theta = 128, 500000.0
  scaling = RopeScaling(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                        original_max_position=8192)
  base = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
  unscaled = np.asarray(attention.rope_inverse_frequencies(head_dim, theta))
  np.testing.assert_allclose(unscaled, base, rtol=1e-6)
  got = np.asarray(attention.rope_inverse_frequencies(head_dim, theta, scaling))
  assert got.shape == (head_dim // 2,) and got.dtype == np.float32

  wavelen = 2 * np.pi / base
  high = wavelen < scaling.original_max_position / scaling.high_freq_factor
  low = wavelen > scaling.original_max_position / scaling.low_freq_factor
  medium = ~high & ~low
  assert high.any() and low.any() and medium.any()  # all three regimes exercised
  np.testing.assert_allclose(got[high], base[high], rtol=1e-6)
  np.testing.assert_allclose(got[low], base[low] / scaling.factor, rtol=1e-6)
  assert np.all(got[medium] < base[medium]) and np.all(got[medium] > base[medium] / 8.0)
  # Llama-3 reference: smooth = (orig / wavelen - low_f) / (high_f - low_f),
  # freq = (1 - smooth) * freq / factor + smooth * freq.
  smooth = ((scaling.original_max_position / wavelen[medium] - scaling.low_freq_factor) /
            (scaling.high_freq_factor - scaling.low_freq_factor))
  expected = (1 - smooth) * base[medium] / scaling.factor + smooth * base[medium]
  np.testing.assert_allclose(got[medium], expected, rtol=1e-5)


# 6. Grouped-query attention ----------------------------------------------------------------------

def _with_kv_kernels(params, make_kernel):
  attn = params["layers"]["attention"]
  new_attn = {**attn, **{name: {"kernel": make_kernel(attn[name]["kernel"])}
                         for name in ("key", "value")}}
  return {**params, "layers": {**params["layers"], "attention": new_attn}}


def test_gqa_equals_mha_with_repeated_kv_heads(params, data):
  """A GQA model (4 query heads, 2 kv heads) equals an MHA model (4 kv heads) whose key/value
  kernels are the GQA ones repeated per group (jnp.repeat on the kv_heads axis); both run."""
  assert CFG.num_kv_heads < CFG.num_heads
  mha_cfg = CFG.replace(num_kv_heads=CFG.num_heads)
  groups = CFG.num_heads // CFG.num_kv_heads
  kernel = params["layers"]["attention"]["key"]["kernel"]
  assert kernel.shape == (CFG.num_layers, CFG.embed_dim, CFG.num_kv_heads, CFG.head_dim)
  mha_params = _with_kv_kernels(params, lambda k: jnp.repeat(k, groups, axis=2))
  # The MHA params have exactly the shapes an MHA model initialises.
  expected = jax.tree_util.tree_map(lambda x: x.shape, _abstract_params(mha_cfg))
  assert jax.tree_util.tree_map(lambda x: x.shape, mha_params) == expected

  gqa_logits, _ = forward(CFG, params, *_packed(data))
  mha_logits, _ = forward(mha_cfg, mha_params, *_packed(data))
  assert np.isfinite(np.asarray(gqa_logits)).all() and np.isfinite(np.asarray(mha_logits)).all()
  np.testing.assert_allclose(mha_logits, gqa_logits, atol=TOL, rtol=TOL)
  # Sensitivity: the other head-to-group assignment (tile instead of repeat) differs.
  tiled = _with_kv_kernels(params, lambda k: jnp.tile(k, (1, 1, groups, 1)))
  tiled_logits, _ = forward(mha_cfg, tiled, *_packed(data))
  assert np.abs(np.asarray(tiled_logits) - np.asarray(gqa_logits)).max() > 1e-3


# 7. Rematerialisation --------------------------------------------------------------------------

def _loss_and_grads(cfg, params, batch):
  tokens, positions, segments, targets = batch
  model = Decoder(cfg)

  def loss_fn(p):
    logits, _ = model.apply({"params": p}, tokens, positions, segments)
    logp = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    weights = (segments != 0).astype(jnp.float32)
    return jnp.sum(nll * weights) / jnp.sum(weights)

  return jax.jit(jax.value_and_grad(loss_fn))(params)


@pytest.fixture(scope="module")
def remat_reference(params, data):
  targets = random_tokens(np.random.default_rng(12), *data["tokens"].shape)
  batch = tuple(jnp.asarray(a) for a in (*_packed(data), targets))
  return batch, _loss_and_grads(CFG, params, batch)


@pytest.mark.parametrize("policy", ["full", "dots", "dots_no_batch"])
def test_remat_policies_match_no_remat(params, remat_reference, policy):
  """Every remat policy gives the loss and gradients of remat_policy="none"."""
  batch, (ref_loss, ref_grads) = remat_reference
  loss, grads = _loss_and_grads(CFG.replace(remat_policy=policy), params, batch)
  np.testing.assert_allclose(loss, ref_loss, atol=TOL, rtol=TOL)
  ref_flat, ref_tree = jax.tree_util.tree_flatten(ref_grads)
  flat, tree = jax.tree_util.tree_flatten(grads)
  assert tree == ref_tree
  for g, r in zip(flat, ref_flat):
    np.testing.assert_allclose(g, r, atol=TOL, rtol=TOL)
  assert min(float(jnp.abs(r).max()) for r in ref_flat) > 1e-4  # every gradient is non-trivial


# 8. bfloat16 compute ---------------------------------------------------------------------------

def test_bfloat16_compute_close_to_float32(params, data):
  """dtype="bfloat16" (float32 params) runs, returns float32 logits, and stays within 0.1 of
  the float32 model (tiny preset; init_std 0.1 gives logits of a few units), yet is not
  bit-identical (bf16 is really used). Its default KV cache is bfloat16."""
  cfg16 = CFG.replace(dtype="bfloat16")
  ref, _ = forward(CFG, params, *_packed(data))
  out, _ = forward(cfg16, params, *_packed(data))
  assert out.dtype == jnp.float32
  assert np.isfinite(np.asarray(out)).all()
  real = data["segments"] != 0
  diff = np.abs(np.asarray(out) - np.asarray(ref))[real]
  assert diff.max() < 0.1, diff.max()
  assert diff.max() > 0
  assert attention.init_cache(cfg16, 1, 8)[0]["key"].dtype == jnp.bfloat16


def test_bfloat16_attention_logits_close_to_float32_softmax(params, data):
  """attention_logits="compute" with bfloat16 compute takes the scores and softmax to
  bfloat16 too: still within 0.1 of the float32 model, not identical to bfloat16 compute with
  float32 scores; with float32 compute (CPU's "auto") it changes nothing."""
  cfg16 = CFG.replace(dtype="bfloat16")
  ref, _ = forward(CFG, params, *_packed(data))
  f32_scores, _ = forward(cfg16, params, *_packed(data))
  bf16_scores, _ = forward(cfg16.replace(attention_logits="compute"), params, *_packed(data))
  real = data["segments"] != 0
  diff = np.abs(np.asarray(bf16_scores) - np.asarray(ref))[real]
  assert diff.max() < 0.1, diff.max()
  assert np.abs(np.asarray(bf16_scores) - np.asarray(f32_scores))[real].max() > 0
  same, _ = forward(CFG.replace(attention_logits="compute"), params, *_packed(data))
  np.testing.assert_array_equal(np.asarray(same), np.asarray(ref))
  assert cfg16.replace(attention_logits="compute").logits_dtype == "bfloat16"
  with pytest.raises(ValueError, match="attention_logits='half'"):
    CFG.replace(attention_logits="half")


# 9. Presets and validation ---------------------------------------------------------------------

def _abstract_params(cfg):
  shapes = jax.eval_shape(lambda: Decoder(cfg).init(jax.random.PRNGKey(0),
                                                    jnp.zeros((1, 2), jnp.int32)))
  return nn.meta.unbox(shapes)["params"]


@pytest.mark.parametrize("name", preset_names())
def test_num_params_matches_initialised_model(name):
  """ModelConfig.num_params() equals the parameter count of the model it builds (eval_shape,
  nothing allocated), tied and untied."""
  cfg = get_preset(name)
  assert cfg.num_params() == param_count(_abstract_params(cfg))
  flipped = cfg.replace(tie_embeddings=not cfg.tie_embeddings)
  assert flipped.num_params() == param_count(_abstract_params(flipped))


def test_smollm2_135m_published_parameter_count():
  """The smollm2_135m preset has the published SmolLM2-135M count, 134,515,008 parameters."""
  cfg = get_preset("smollm2_135m")
  assert cfg.num_params() == 134_515_008
  assert param_count(_abstract_params(cfg)) == 134_515_008


def test_tiny_preset_param_count_concrete(params):
  """num_params() of tiny equals the count of really initialised parameters."""
  assert CFG.num_params() == param_count(params)


@pytest.mark.parametrize("make, offending", [
    (lambda: get_preset("no_such_model"), "no_such_model"),
    (lambda: ModelConfig(vocab_size=8, embed_dim=8, num_layers=1, num_heads=6, num_kv_heads=4,
                         head_dim=4, mlp_dim=8), "num_heads=6"),
    (lambda: get_preset("tiny", num_heads=5), "num_heads=5"),
    (lambda: get_preset("tiny", not_a_field=1), "not_a_field"),
    (lambda: get_preset("tiny").replace(not_a_field=1), "not_a_field"),
    (lambda: get_preset("tiny", attention_impl="flash3"), "flash3"),
], ids=["preset", "heads", "heads_override", "override_field", "replace_field", "impl"])
def test_invalid_configs_raise_value_error(make, offending):
  """Unknown preset, num_heads not a multiple of num_kv_heads, unknown override field and bad
  attention_impl raise ValueError naming the offending value."""
  with pytest.raises(ValueError) as info:
    make()
  assert offending in str(info.value)


# 10. Tied vs untied ----------------------------------------------------------------------------

def test_tied_vs_untied_lm_head():
  """An untied model has an lm_head kernel [embed, vocab]; a tied one has none (so it has
  exactly vocab * embed parameters fewer)."""
  tied = get_preset("tiny")
  assert tied.tie_embeddings
  untied = tied.replace(tie_embeddings=False)
  tied_params = _abstract_params(tied)
  untied_params = _abstract_params(untied)
  assert "lm_head" not in tied_params
  assert untied_params["lm_head"]["kernel"].shape == (untied.embed_dim, untied.vocab_size)
  assert param_count(untied_params) - param_count(tied_params) == tied.vocab_size * tied.embed_dim


def test_logits_at_equals_the_full_forward_at_those_positions():
  """logits_at gives each row's logits at its indices, as the full forward pass does."""
  config = get_preset("tiny", init_std=0.1)
  model = Decoder(config)
  tokens = jax.random.randint(jax.random.key(1), (3, 10), 0, config.vocab_size)
  params = model.init(jax.random.key(0), tokens)["params"]
  full, _ = model.apply({"params": params}, tokens)
  index = jnp.asarray([[9, 2], [0, 0], [4, 7]])
  picked, _ = model.apply({"params": params}, tokens, logits_at=index)
  assert picked.shape == (3, 2, config.vocab_size)
  np.testing.assert_allclose(picked, full[jnp.arange(3)[:, None], index], atol=1e-5)
