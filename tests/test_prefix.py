"""Soft prompts (`Decoder(prefix_embeddings=...)`): the plain model without one, the prefix as
equal to tokens whose embeddings it holds, packed rows, prefill + decode with the prefix in the
KV cache, and bad input. Tiny model, float32, CPU.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from instruct_pt import parallel, run_dir
from instruct_pt.data import tokenizer as tokenizer_lib
from instruct_pt.model import attention, store
from instruct_pt.model.config import get_preset
from instruct_pt.model.transformer import Decoder
from instruct_pt.model.generate import Engine, SamplingConfig

CFG = get_preset("tiny", init_std=0.1)  # far from uniform attention (see test_model.py)
TOL = 1e-5
P = 3  # prefix length


@pytest.fixture(scope="module")
def params():
  variables = jax.jit(Decoder(CFG).init)(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))
  return nn.meta.unbox(variables)["params"]


@jax.jit
def _run(params, tokens, positions=None, segment_ids=None, cache=None, cache_rows=None,
         logits_at=None, prefix=None):
  """`(logits, cache)` of the tiny decoder, jitted (eager scans are slow)."""
  return Decoder(CFG).apply({"params": params}, tokens, positions, segment_ids, cache,
                            cache_rows, logits_at, prefix_embeddings=prefix)


def _apply(params, tokens, positions, segment_ids, prefix):
  return _run(params, tokens, positions, segment_ids, prefix=prefix)[0]


def _tokens(rng, *shape):
  return rng.integers(3, 259, size=shape).astype(np.int32)


def test_no_prefix_and_empty_prefix_are_the_plain_model(params):
  """None and a `[0, d]` prefix give exactly (bit for bit) the logits of a call without the
  argument, packed rows included."""
  rng = np.random.default_rng(0)
  tokens = _tokens(rng, 2, 12)
  segments = np.repeat([[1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0]], 2, axis=0)
  positions = np.repeat([[0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 0]], 2, axis=0)
  plain = _run(params, tokens, positions, segments)[0]
  for prefix in (None, jnp.zeros((0, CFG.embed_dim))):
    np.testing.assert_array_equal(_apply(params, tokens, positions, segments, prefix), plain)


def test_prefix_equals_tokens_with_those_embeddings(params):
  """A prefix made of the embedding rows of tokens t gives the logits the model gives the
  tokens when t is written ahead of them (independent: the plain model on longer rows)."""
  rng = np.random.default_rng(1)
  head, tokens = _tokens(rng, P), _tokens(rng, 2, 9)
  prefix = params["embedder"]["embedding"][head]
  with_prefix = _apply(params, tokens, None, None, prefix)
  assert with_prefix.shape == (2, 9, CFG.vocab_size)
  written = np.concatenate([np.broadcast_to(head, (2, P)), tokens], axis=1)
  expected = _run(params, written)[0][:, P:]
  np.testing.assert_allclose(with_prefix, expected, atol=TOL, rtol=TOL)
  # Per-row prefixes ([batch, p, d]) work the same way.
  heads = _tokens(rng, 2, P)
  per_row = _apply(params, tokens, None, None, params["embedder"]["embedding"][heads])
  expected = _run(params, np.concatenate([heads, tokens], 1))[0]
  np.testing.assert_allclose(per_row, expected[:, P:], atol=TOL, rtol=TOL)


def test_every_packed_document_sees_the_prefix(params):
  """In a packed row each document gets the logits it gets alone behind the prefix (the
  prefix is shared by the segments, which still do not see each other)."""
  rng = np.random.default_rng(2)
  prefix = jnp.asarray(rng.normal(size=(P, CFG.embed_dim)), jnp.float32)
  docs = [_tokens(rng, n) for n in (4, 6, 3)]
  tokens = np.concatenate(docs + [np.zeros(2, np.int32)])[None]
  segments = np.concatenate([np.full(len(d), i + 1) for i, d in enumerate(docs)] + [[0, 0]])
  positions = np.concatenate([np.arange(len(d)) for d in docs] + [[0, 0]])
  packed = _apply(params, tokens, positions[None], segments[None].astype(np.int32), prefix)
  alone = np.zeros((3, 6), np.int32)  # right padding cannot change a causal document's logits
  for i, doc in enumerate(docs):
    alone[i, :len(doc)] = doc
  alone_logits = _apply(params, alone, None, None, prefix)
  start = 0
  for i, doc in enumerate(docs):
    np.testing.assert_allclose(packed[0, start:start + len(doc)], alone_logits[i, :len(doc)],
                               atol=TOL, rtol=TOL, err_msg=f"document {i}")
    start += len(doc)
  # Sensitivity: without the prefix the logits differ.
  plain = _apply(params, alone, None, None, None)
  assert np.abs(plain[1] - packed[0, 4:10]).max() > 1e-3


def test_prefill_with_prefix_then_decode_matches_the_full_forward(params):
  """Two prompts packed into one prefill row go to cache rows 1 and 0 with the prefix ahead;
  decoding then continues each at position p + its length, and every step's logits equal the
  full forward pass of prefix + sequence."""
  rng = np.random.default_rng(3)
  prefix = jnp.asarray(rng.normal(size=(P, CFG.embed_dim)), jnp.float32)
  seqs = [_tokens(rng, 7), _tokens(rng, 6)]
  lengths = (4, 3)
  row = np.zeros((1, 8), np.int32)
  row[0, :4], row[0, 4:7] = seqs[0][:4], seqs[1][:3]
  positions = np.asarray([[0, 1, 2, 3, 0, 1, 2, 0]], np.int32)
  segments = np.asarray([[1, 1, 1, 1, 2, 2, 2, 0]], np.int32)
  cache_rows = np.asarray([[1, 1, 1, 1, 0, 0, 0, 2]], np.int32)  # 2: past the cache, dropped
  cache = attention.init_cache(CFG, batch_size=2, cache_len=16)
  prefill, cache = _run(params, row, positions, segments, cache, cache_rows,
                        np.asarray([[3, 6]], np.int32), prefix)
  both = np.zeros((2, 7), np.int32)
  both[0], both[1, :6] = seqs[0], seqs[1]
  full = _apply(params, both, None, None, prefix)
  np.testing.assert_allclose(prefill[0, 0], full[0][3], atol=TOL, rtol=TOL)
  np.testing.assert_allclose(prefill[0, 1], full[1][2], atol=TOL, rtol=TOL)
  for step in range(3):
    slots = [1, 0]  # cache row of sequence 0, 1
    tokens = np.zeros((2, 1), np.int32)
    where = np.zeros((2, 1), np.int32)
    for s, slot in enumerate(slots):
      tokens[slot, 0] = seqs[s][lengths[s] + step]
      where[slot, 0] = P + lengths[s] + step
    logits, cache = _run(params, tokens, where, cache=cache)
    for s, slot in enumerate(slots):
      np.testing.assert_allclose(logits[slot, 0], full[s][lengths[s] + step], atol=TOL,
                                 rtol=TOL, err_msg=f"sequence {s} step {step}")


def test_bad_prefixes_are_refused(params):
  """A prefix of another width names both widths; a prefix while extending a cache is
  refused (the prefill wrote it), and so are per-row prefixes in a prefill."""
  tokens = np.ones((1, 4), np.int32)
  with pytest.raises(ValueError, match=f"width 7; the model's embed_dim is {CFG.embed_dim}"):
    Decoder(CFG).apply({"params": params}, tokens, prefix_embeddings=jnp.zeros((2, 7)))
  cache = attention.init_cache(CFG, batch_size=1, cache_len=8)
  with pytest.raises(ValueError, match="when extending a cache"):
    Decoder(CFG).apply({"params": params}, tokens, cache=cache,
                       prefix_embeddings=jnp.zeros((2, CFG.embed_dim)))
  with pytest.raises(ValueError, match="a prefill takes one prefix_embeddings"):
    Decoder(CFG).apply({"params": params}, tokens, cache=cache, cache_rows=np.zeros_like(tokens),
                       prefix_embeddings=jnp.zeros((1, 2, CFG.embed_dim)))


# The soft prompt in generation and evaluation -------------------------------------------------

def _one_device_mesh():
  return parallel.create_mesh((1, 1, 1), jax.devices()[:1]), parallel.LOGICAL_AXIS_RULES


def _greedy_reference(params, prompts, prefix, new_tokens, width=24):
  """Greedy continuations by full forward passes (no cache) of prefix + prompt + output."""
  outputs = []
  for prompt in prompts:
    sequence = list(prompt)
    for _ in range(new_tokens):
      row = np.zeros((1, width), np.int32)  # right padding: the causal logits do not change
      row[0, :len(sequence)] = sequence
      logits = _apply(params, row, None, None, prefix)
      sequence.append(int(np.argmax(logits[0, len(sequence) - 1])))
    outputs.append(sequence[len(prompt):])
  return outputs


def test_engine_generates_behind_the_soft_prompt(params):
  """Greedy generation with a soft prompt equals full forward passes with the prefix, with
  two slots refilled by continuous batching (the prefix is rewritten into a reused slot);
  an empty prompt generates what no prompt does, and a prompt of another width is refused."""
  mesh, rules = _one_device_mesh()
  rng = np.random.default_rng(4)
  prefix = np.asarray(rng.normal(size=(P, CFG.embed_dim)), np.float32)
  prompts = [_tokens(rng, n).tolist() for n in (5, 9, 3)]
  sampling = SamplingConfig(max_new_tokens=6)

  def generate(prompt):
    engine = Engine(CFG, params, mesh, rules, eos_ids=[1], num_slots=2, max_len=32,
                    decode_chunk=4, prompt=prompt)
    return engine.generate(prompts, sampling)

  with_prompt = generate(prefix)
  assert with_prompt == _greedy_reference(params, prompts, jnp.asarray(prefix), 6)
  plain = generate(None)
  assert generate(np.zeros((0, CFG.embed_dim), np.float32)) == plain
  assert plain != with_prompt
  with pytest.raises(ValueError, match=f"width 7; the model's embed_dim is {CFG.embed_dim}"):
    generate(np.zeros((2, 7), np.float32))


def test_scorer_and_lm_eval_model_score_behind_the_soft_prompt(params, tmp_path):
  """The scorer's log-likelihoods with a prompt are those of full forward passes with the
  prefix; the lm-eval model takes the prompt as `soft_prompt=RUN` and refuses one saved for
  another model, naming both widths."""
  pytest.importorskip("lm_eval")  # instruct_pt.evaluation registers the lm-eval model
  from instruct_pt.evaluation import scoring  # pylint: disable=import-outside-toplevel
  mesh, rules = _one_device_mesh()
  rng = np.random.default_rng(5)
  prefix = np.asarray(rng.normal(size=(P, CFG.embed_dim)), np.float32)
  requests = [(_tokens(rng, 6).tolist(), _tokens(rng, 3).tolist()),
              (_tokens(rng, 4).tolist(), _tokens(rng, 1).tolist())]
  expected = []
  for context, continuation in requests:
    whole = np.asarray(context + continuation)
    logits = np.asarray(_apply(params, whole[None, :-1], None, None, jnp.asarray(prefix))[0])
    logprobs = logits - jax.scipy.special.logsumexp(logits, axis=-1, keepdims=True)
    expected.append(sum(logprobs[len(context) - 1 + i, t] for i, t in enumerate(continuation)))
  scorer = scoring.Scorer(CFG, params, mesh, rules, row_len=16, prompt=prefix)
  assert scorer.max_length == CFG.max_seq_len - P
  scores = [value for value, _ in scorer.score(requests)]
  np.testing.assert_allclose(scores, expected, rtol=1e-5)
  plain = [value for value, _ in scoring.Scorer(CFG, params, mesh, rules, row_len=16)
           .score(requests)]
  assert np.abs(np.asarray(plain) - expected).max() > 1e-2

  # pylint: disable-next=import-outside-toplevel
  from instruct_pt.evaluation.lm_eval_model import InstructPTLM
  run = run_dir.RunDir(tmp_path / "model").create()
  run.write_model_config(CFG)
  run.write_tokenizer(tokenizer_lib.ByteTokenizer())
  store.save_params(run.params, params)
  run.write_prompt(prefix)
  model = InstructPTLM(str(run), mesh=mesh, soft_prompt=str(run), row_len=16, progress=False)
  assert model.get_model_info()["soft_prompt"] == str(run)
  ours = [value for value, _ in model._loglikelihood_tokens(  # pylint: disable=protected-access
      [(None, context, continuation) for context, continuation in requests])]
  np.testing.assert_allclose(ours, expected, rtol=1e-5)
  other = run_dir.RunDir(tmp_path / "other").create()
  other.write_prompt(np.zeros((2, 576), np.float32))
  with pytest.raises(ValueError, match=f"embed_dim 576; this model's embed_dim is "
                                       f"{CFG.embed_dim}"):
    InstructPTLM(str(run), mesh=mesh, soft_prompt=str(other), progress=False)
