"""Known answers for the packed scorer (`instruct_pt.evaluation.scoring`): each request's
log-likelihood and greedy flag against an unpacked forward pass of that request alone, the
trees, rows and device calls it builds (counted by hand), truncation, the soft prompt, unit
ablation, the sharded batch and bad input. A tiny random one-layer model, float32, CPU."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from instruct_pt import parallel
from instruct_pt.evaluation import scoring
from instruct_pt.model.config import get_preset
from instruct_pt.model.transformer import Decoder

# Wide initialisation: peaked next-token distributions, so greedy and non-greedy tokens differ
# by far more than the packed and unpacked runs' float32 rounding.
CFG = get_preset("tiny", vocab_size=32, embed_dim=16, num_layers=1, num_heads=2,
                 num_kv_heads=1, head_dim=8, mlp_dim=32, max_seq_len=64, init_std=0.5)
RULES = parallel.LOGICAL_AXIS_RULES
TOL = 1e-4  # nats per request: packed vs unpacked attention, float32


@pytest.fixture(scope="module")
def params():
  """Random parameters of CFG's shapes: norm scales 1, every other weight normal with
  CFG.init_std (numpy draws: compiling the model's own initialiser takes seconds)."""
  shapes = nn.meta.unbox(jax.eval_shape(Decoder(CFG).init, jax.random.key(0),
                                        jnp.zeros((1, 4), jnp.int32)))["params"]
  rng = np.random.default_rng(0)
  return jax.tree_util.tree_map_with_path(
      lambda path, leaf: jnp.asarray(
          np.ones(leaf.shape) if path[-1].key == "scale" else
          rng.normal(0.0, CFG.init_std, leaf.shape), jnp.float32), shapes)


@pytest.fixture(scope="module")
def mesh():
  return parallel.create_mesh((1, 1, 1), jax.devices()[:1])


@jax.jit
def _logits(params, tokens, prefix, unit_keep):
  return Decoder(CFG).apply({"params": params}, tokens, prefix_embeddings=prefix,
                            unit_keep=unit_keep)[0]


def _row_logits(params, ids, prefix=None, unit_keep=None):
  """float64 logits of one unpacked row `ids` (right-padded to a fixed width, which a causal
  model never reads from earlier positions; one program for every length)."""
  width = CFG.max_seq_len - (0 if prefix is None else len(prefix))
  tokens = np.zeros((1, width), np.int32)
  tokens[0, :len(ids)] = ids
  return np.asarray(_logits(params, jnp.asarray(tokens), prefix, unit_keep), np.float64)[0]


def _reference(params, requests, max_length=CFG.max_seq_len, prefix=None, unit_keep=None):
  """Per request, from one forward pass over that request alone: its continuation tokens'
  log-probabilities (scipy's logsumexp in float64) and whether each token is the argmax.

  The model reads the last `max_length + 1` tokens of context + continuation less the final
  one (lm-eval's left truncation); continuation token i is predicted at input position
  `len(inputs) - len(continuation) + i`."""
  answers = []
  for context, continuation in requests:
    inputs = (list(context) + list(continuation))[-(max_length + 1):][:-1]
    scored = _row_logits(params, inputs, prefix, unit_keep)[
        len(inputs) - len(continuation):len(inputs)]
    logprobs = scored - special.logsumexp(scored, axis=-1, keepdims=True)
    target = np.asarray(continuation)
    answers.append((logprobs[np.arange(len(target)), target], scored.argmax(-1) == target))
  return answers


def _assert_matches(answers, expected):
  """`Scorer.score`'s `(sum, all greedy)` against the reference's per-token values."""
  assert len(answers) == len(expected)
  for index, ((value, greedy), (logprobs, flags)) in enumerate(zip(answers, expected)):
    assert value == pytest.approx(logprobs.sum(), abs=TOL), index
    assert greedy == bool(flags.all()), index


def _greedy(params, context, steps):
  """`steps` tokens decoded greedily after `context` (unpacked forward passes)."""
  ids = list(context)
  for _ in range(steps):
    ids.append(int(_row_logits(params, ids)[len(ids) - 1].argmax()))
  return ids[len(context):]


def _least_likely(params, ids):
  return int(_row_logits(params, ids)[len(ids) - 1].argmin())


def test_next_power_of_two():
  """1 << bit_length(n - 1): the smallest power of two >= n (1 for n <= 1)."""
  assert [scoring._next_power_of_two(n) for n in (0, 1, 2, 3, 4, 5, 8, 9)] == [
      1, 1, 2, 4, 4, 8, 8, 16]


def test_row_shapes():
  """Token-wise inputs are [rows, row length]; the scored positions and their targets
  [rows, picks]."""
  assert scoring._row_shapes(2, 16, 4) == {
      "tokens": (2, 16), "positions": (2, 16), "segments": (2, 16), "contexts": (2, 16),
      "logits_at": (2, 4), "targets": (2, 4)}


@pytest.mark.parametrize("field", ["max_length", "row_len", "batch_tokens"])
def test_scoring_config_refuses_a_non_positive_setting(field):
  """0 and -1 are refused with the gin name; 1 (the least positive value) is accepted."""
  for value in (0, -1):
    with pytest.raises(ValueError, match=rf"^evaluate\.{field}={value} must be positive$"):
      scoring.ScoringConfig(**{field: value})
  assert getattr(scoring.ScoringConfig(**{field: 1}), field) == 1
  assert scoring.ScoringConfig() == scoring.ScoringConfig(None, 256, 4096)


def test_sums_and_greedy_flags_match_each_request_alone(params, mesh):
  """Shared contexts, one-token continuations, a duplicate, and continuations that are greedy
  at every token, at the first only, or at all but the first, packed as trees into rows of
  32: each request's sum and greedy flag (and each token's value and flag) are those of the
  request run alone. The counters are counted by hand below."""
  rng = np.random.default_rng(0)
  contexts = [rng.integers(0, 32, n).tolist() for n in (1, 3, 9, 20)]
  requests = [(c, rng.integers(0, 32, n).tolist()) for c in contexts for n in (1, 1, 4, 9)]
  requests.append(requests[2])  # a duplicate: same context, same continuation
  greedy = _greedy(params, contexts[1], 3)
  worst = _least_likely(params, contexts[1] + greedy[:1])
  first_worst = _least_likely(params, contexts[1])
  requests += [(contexts[1], greedy),  # greedy at each token
               (contexts[1], greedy[:1] + [worst]),  # greedy first token only
               (contexts[1], [first_worst] + _greedy(params, contexts[1] + [first_worst], 2))]
  expected = _reference(params, requests)
  flags = [bool(f.all()) for _, f in expected]
  assert flags[-3:] == [True, False, False]  # the premises of the mixed cases
  assert [bool(f[0]) for _, f in expected[-3:]] == [True, True, False]
  assert [bool(f[-1]) for _, f in expected[-3:]] == [True, False, True]
  scorer = scoring.Scorer(CFG, params, mesh, RULES, row_len=32, batch_tokens=64)
  _assert_matches(scorer.score(requests), expected)
  for index, ((logprobs, is_greedy), (want, want_greedy)) in enumerate(
      zip(scorer.score_tokens(requests), expected)):
    assert (logprobs.dtype, is_greedy.dtype) == (np.float64, bool), index
    np.testing.assert_allclose(logprobs, want, atol=1e-5, err_msg=str(index))
    np.testing.assert_array_equal(is_greedy, want_greedy, err_msg=str(index))
  # Per scoring call: 4 contexts, run once each, then each distinct continuation less its
  # last token: 0 + 0 + 3 + 8 per context; context 1 has three more (2 + 1 + 2).
  tokens = sum(len(c) + 11 for c in contexts) + 5
  assert (scorer.stats.requests, scorer.stats.contexts, scorer.stats.tokens,
          scorer.stats.truncated) == (2 * len(requests), 8, 2 * tokens, 0)
  # Trees (context + continuations): 12, 14 + 5 = 19, 20, 31, within the 32 bucket (the
  # longest, 20 + 9 - 1 = 28, needs 32): best fit, longest first: [31], [20 + 12], [19] in
  # one call of 64 // 32 = 2 rows and one of 1 row. Picks (one per continuation token of
  # each request): 15 per context, the duplicate's 4 on the 1-token context's tree, 8 more on
  # the 3-token one's; a call takes the power of two at or above its fullest row's:
  # max(15, 15 + 19) -> 64 and 15 + 8 -> 32.
  assert scorer.stats.slots == 2 * 3 * 32
  assert scorer.stats.compiled_shapes == {(2, 32, 64), (1, 32, 32)}


def test_trees_split_at_the_row_and_rows_go_to_the_smallest_bucket(params, mesh):
  """Rows of 16, max_length 40 (buckets 16, 24, 32, 40), 32 tokens a call. A tree takes a
  continuation while context + its continuations less their last tokens stay within the
  bucket that the context and that one continuation need (at least a row). Context a (6
  tokens) with continuations of 6, 6, 7 and 6 tokens: 6 + 5 + 5 = 16 fills a row exactly
  (kept); 16 + 6 > 16 starts a tree 6 + 6 = 12; 12 + 5 = 17 > 16 starts a tree 6 + 5 = 11.
  Context b (20) with two 6-token continuations needs 20 + 6 - 1 = 25, so its tree may grow
  to the 32 bucket: 20 + 5 + 5 = 30, one tree. Bucket 32 runs first (2 requests), then
  bucket 16: rows [16], [12], [11] (best fit), 2 a call: calls of 3 and 1 requests."""
  rng = np.random.default_rng(1)
  a, b = rng.integers(0, 32, 6).tolist(), rng.integers(0, 32, 20).tolist()
  requests = [(a, rng.integers(0, 32, n).tolist()) for n in (6, 6, 7, 6)]
  requests += [(b, rng.integers(0, 32, 6).tolist()) for _ in range(2)]
  scorer = scoring.Scorer(CFG, params, mesh, RULES, max_length=40, row_len=16,
                          batch_tokens=32)
  assert scorer.buckets == (16, 24, 32, 40)
  done = []
  _assert_matches(scorer.score(requests, progress=done.append),
                  _reference(params, requests, 40))
  assert done == [2, 3, 1]
  assert (scorer.stats.tokens, scorer.stats.contexts) == (16 + 12 + 11 + 30, 2)
  # Picks (one per continuation token): [16] 12, [12] 7 -> a call of 2 rows, 16 picks;
  # [11] 6 -> 1 row, 8 picks; b's tree 12 -> 1 row of 32, 16 picks.
  assert scorer.stats.compiled_shapes == {(2, 16, 16), (1, 16, 8), (1, 32, 16)}
  assert scorer.stats.slots == 2 * 16 + 16 + 32


def test_three_trees_share_a_row(params, mesh):
  """Three 4-token contexts with a 2-token continuation each: trees of 5 tokens (context as
  one segment, the continuation's first token as another), all three in one row of 16, each
  placed after the last and with segments of its own: each request scores as alone."""
  rng = np.random.default_rng(8)
  requests = [(rng.integers(0, 32, 4).tolist(), rng.integers(0, 32, 2).tolist())
              for _ in range(3)]
  scorer = scoring.Scorer(CFG, params, mesh, RULES, max_length=40, row_len=16,
                          batch_tokens=16)
  _assert_matches(scorer.score(requests), _reference(params, requests, 40))
  assert (scorer.stats.compiled_shapes, scorer.stats.tokens) == ({(1, 16, 8)}, 15)


def test_rows_are_packed_longest_first_and_calls_padded_to_a_power_of_two(params, mesh):
  """Rows of 10, 30 tokens a call (3 rows). Trees of 3, 3, 3, 7, 7, 7 tokens (contexts of 2
  and 6, one 2-token continuation each) in arrival order would need 4 rows (3 + 3 + 3, then
  a 7 each); longest first they fill 3 rows of 7 + 3 exactly: one call of 3 rows. Then 5 and
  7 one-row trees at 4 rows a call: calls of 4 and 1 rows, and of 4 and 3 rows padded to 4."""
  rng = np.random.default_rng(2)
  requests = [(rng.integers(0, 32, n).tolist(), rng.integers(0, 32, 2).tolist())
              for n in (2, 2, 2, 6, 6, 6)]
  scorer = scoring.Scorer(CFG, params, mesh, RULES, max_length=40, row_len=10,
                          batch_tokens=30)
  _assert_matches(scorer.score(requests), _reference(params, requests, 40))
  assert scorer.stats.compiled_shapes == {(3, 10, 4)}
  assert scorer.stats.slots == 30
  for trees, shapes in ((5, {(4, 10, 2), (1, 10, 2)}), (7, {(4, 10, 2)})):
    full = [(rng.integers(0, 32, 9).tolist(), rng.integers(0, 32, 2).tolist())
            for _ in range(trees)]
    scorer = scoring.Scorer(CFG, params, mesh, RULES, max_length=40, row_len=10,
                            batch_tokens=40)
    done = []
    _assert_matches(scorer.score(full, progress=done.append), _reference(params, full, 40))
    assert scorer.stats.compiled_shapes == shapes
    assert scorer.stats.slots == (8 if trees == 7 else 5) * 10
    assert done == [4, trees - 4]


def test_a_call_takes_at_least_one_row(params, mesh):
  """batch_tokens below the row length still makes calls of one row."""
  rng = np.random.default_rng(3)
  requests = [(rng.integers(0, 32, 9).tolist(), rng.integers(0, 32, 2).tolist())
              for _ in range(2)]
  scorer = scoring.Scorer(CFG, params, mesh, RULES, max_length=40, row_len=10,
                          batch_tokens=4)
  _assert_matches(scorer.score(requests), _reference(params, requests, 40))
  assert scorer.stats.compiled_shapes == {(1, 10, 2)}
  assert scorer.largest_call() == (1, 40, 64)


def test_over_long_requests_are_cut_from_the_left_and_counted(params, mesh):
  """max_length 8: a request of 9 tokens (max_length + 1) is read whole, longer ones lose
  their oldest context tokens (a continuation of exactly 8 keeps one context token); two
  contexts whose last tokens agree become one context once cut."""
  rng = np.random.default_rng(4)
  tail = rng.integers(0, 32, 5).tolist()
  requests = [(tail[:4], rng.integers(0, 32, 5).tolist()),  # 9 tokens: whole
              ([2] + tail, rng.integers(0, 32, 4).tolist()),  # 10: cut, context = tail
              ([3] + tail, rng.integers(0, 32, 3).tolist()),  # 9: whole, context = 3 + tail
              ([4, 5, 6] + tail, rng.integers(0, 32, 4).tolist()),  # 12: cut, context = tail
              (rng.integers(0, 32, 5).tolist(), rng.integers(0, 32, 8).tolist())]  # 13: cut
  scorer = scoring.Scorer(CFG, params, mesh, RULES, max_length=8, row_len=16)
  _assert_matches(scorer.score(requests), _reference(params, requests, 8))
  assert (scorer.stats.truncated, scorer.stats.contexts) == (3, 4)


def test_bad_requests_are_named(params, mesh):
  """An empty context or continuation, and a continuation longer than max_length, are
  refused naming the request; nothing is counted."""
  scorer = scoring.Scorer(CFG, params, mesh, RULES, max_length=8, row_len=16)
  with pytest.raises(ValueError, match=r"^request 1: empty context \(the model needs a token "
                     r"to condition on and one to score\)$"):
    scorer.score([([1], [2]), ([], [2])])
  with pytest.raises(ValueError, match=r"^request 0: empty continuation \("):
    scorer.score([([1], [])])
  with pytest.raises(ValueError, match=r"^request 0: continuation of 9 tokens exceeds "
                     r"max_length=8$"):
    scorer.score([([1], list(range(9)))])
  assert scorer.stats == scoring.ScoringStats()


def test_constructor_limits_and_buckets(params, mesh):
  """max_length defaults to max_seq_len (less a soft prompt's length) and may not pass it;
  row_len and batch_tokens must be positive; buckets start at min(row_len, max_length)."""
  prompt = np.zeros((3, CFG.embed_dim))
  assert scoring.Scorer(CFG, params, mesh, RULES).max_length == 64
  assert scoring.Scorer(CFG, params, mesh, RULES, prompt=prompt).max_length == 61
  assert scoring.Scorer(CFG, params, mesh, RULES, max_length=61, prompt=prompt).max_length == 61
  assert scoring.Scorer(CFG, params, mesh, RULES, max_length=64).max_length == 64
  with pytest.raises(ValueError, match=r"^max_length=62 with the soft prompt's 3 exceeds the "
                     r"model's max_seq_len=64$"):
    scoring.Scorer(CFG, params, mesh, RULES, max_length=62, prompt=prompt)
  with pytest.raises(ValueError, match=r"^max_length=65 exceeds the model's max_seq_len=64$"):
    scoring.Scorer(CFG, params, mesh, RULES, max_length=65)
  # (16, 0) first: were only both refused, row_len 0 would reach prompt_buckets' endless loop.
  for row_len, batch_tokens in ((16, 0), (-1, 4096), (16, -1), (0, 4096)):
    with pytest.raises(ValueError, match=rf"^row_len={row_len} and batch_tokens="
                       rf"{batch_tokens} must be positive$"):
      scoring.Scorer(CFG, params, mesh, RULES, row_len=row_len, batch_tokens=batch_tokens)
  # prompt_buckets: 16, 24, 32, (48 > 40 skipped), then max_length.
  scorer = scoring.Scorer(CFG, params, mesh, RULES, max_length=40, row_len=16)
  assert (scorer.buckets, scorer.batch_tokens, scorer.row_multiple) == ((16, 24, 32, 40),
                                                                        4096, 1)
  assert scoring.Scorer(CFG, params, mesh, RULES, max_length=40, row_len=100).buckets == (40,)
  assert scoring.Scorer(CFG, params, mesh, RULES).buckets == (64,)  # row_len 256 > 64
  assert scoring.Scorer(CFG, params, mesh, RULES, prompt=np.zeros((0, 16))).prompt is None
  smallest = scoring.Scorer(CFG, params, mesh, RULES, max_length=4, row_len=1, batch_tokens=1)
  assert (smallest.buckets[0], smallest.buckets[-1], smallest.batch_tokens) == (1, 4, 1)


def test_the_program_is_shared_by_scorers_of_one_model_shape(params, mesh):
  """Two scorers of one model config and mesh share the jitted program (no second trace);
  another shape gets its own."""
  one = scoring.Scorer(CFG, params, mesh, RULES)
  assert one._run is scoring.Scorer(CFG, params, mesh, RULES, row_len=16)._run
  other = get_preset("tiny", vocab_size=32, embed_dim=16, num_layers=1, num_heads=2,
                     num_kv_heads=1, head_dim=8, mlp_dim=32, max_seq_len=32)
  assert one._run is not scoring.Scorer(other, params, mesh, RULES)._run
  two = parallel.create_mesh((2, 1, 1), jax.devices()[:2])
  assert one._run is not scoring.Scorer(CFG, params, two, RULES)._run
  rules = (("batch", None),) + tuple(RULES)  # other rules: traced under them, another program
  assert one._run is not scoring.Scorer(CFG, params, mesh, rules)._run


def test_soft_prompt_is_read_ahead_of_every_request(params, mesh):
  """With a soft prompt of 3 vectors, each request scores as the model run on the prompt then
  that request alone (`Decoder(prefix_embeddings=...)`), and differs from the plain model;
  the lowered program takes the prompt as a float32 [3, embed] argument."""
  rng = np.random.default_rng(5)
  prefix = rng.normal(size=(3, CFG.embed_dim)).astype(np.float16)  # stored as float32
  requests = [(rng.integers(0, 32, 6).tolist(), rng.integers(0, 32, 3).tolist()),
              (rng.integers(0, 32, 4).tolist(), rng.integers(0, 32, 1).tolist())]
  scorer = scoring.Scorer(CFG, params, mesh, RULES, row_len=16, prompt=prefix)
  assert scorer.prompt.dtype == jnp.float32
  assert scorer.prompt.sharding == jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  expected = _reference(params, requests, 61, jnp.asarray(prefix, jnp.float32))
  answers = scorer.score(requests)
  _assert_matches(answers, expected)
  plain = _reference(params, requests)
  assert max(abs(value - p.sum()) for (value, _), (p, _) in zip(answers, plain)) > 1e-2
  args, _ = scorer.lower(1, 16, 4).args_info
  assert (args[1].shape, args[1].dtype) == ((3, CFG.embed_dim), jnp.float32)


def test_unit_keep_ablates_units(params, mesh):
  """Scores with half the MLP units and a quarter of the residual zeroed are the model's
  with the same `unit_keep`, not the plain model's; setting `scorer.unit_keep` switches."""
  rng = np.random.default_rng(6)
  keep = {"residual": jnp.asarray(np.arange(16) % 4 != 0, jnp.float32)[None],
          "mlp": jnp.asarray(np.arange(32) % 2 == 0, jnp.float32)[None]}
  requests = [(rng.integers(0, 32, 6).tolist(), rng.integers(0, 32, 3).tolist()),
              (rng.integers(0, 32, 4).tolist(), rng.integers(0, 32, 2).tolist())]
  scorer = scoring.Scorer(CFG, params, mesh, RULES, row_len=16, unit_keep=keep)
  answers = scorer.score(requests)
  _assert_matches(answers, _reference(params, requests, unit_keep=keep))
  plain = _reference(params, requests)
  assert max(abs(value - p.sum()) for (value, _), (p, _) in zip(answers, plain)) > 1e-2
  args, _ = scorer.lower(1, 16, 4).args_info
  assert {name: a.shape for name, a in args[2].items()} == {"residual": (1, 16), "mlp": (1, 32)}
  scorer.unit_keep = None
  _assert_matches(scorer.score(requests), plain)


def test_lower_takes_the_call_shapes(params, mesh):
  """`lower(rows, row length, picks)` lowers the scoring program for int32 inputs of those
  shapes (and no prompt or ablation); largest_call is rows of the longest bucket, every
  position scored."""
  scorer = scoring.Scorer(CFG, params, mesh, RULES, max_length=40, row_len=16, batch_tokens=64)
  args, kwargs = scorer.lower(2, 16, 4).args_info
  assert kwargs == {} and args[1] is None and args[2] is None
  assert {name: (a.shape, a.dtype) for name, a in args[3].items()} == {
      name: (shape, jnp.int32) for name, shape in scoring._row_shapes(2, 16, 4).items()}
  # 64 // 40 = 1 row of 40 tokens, 64 picks (the power of two above 40).
  assert scorer.largest_call() == (1, 40, 64)


def test_data_parallel_calls_take_rows_in_multiples_of_the_data_shards(params):
  """On a (2, 1, 1) mesh the batch is split in two: 48 tokens a call is 3 rows of 16, rounded
  up to 4; five one-row trees make calls of 4 rows and of 2 (1 row, rounded up to the
  shards); the scores are each request's own."""
  mesh = parallel.create_mesh((2, 1, 1), jax.devices()[:2])
  rng = np.random.default_rng(7)
  requests = [(rng.integers(0, 32, 15).tolist(), rng.integers(0, 32, 2).tolist())
              for _ in range(5)]
  scorer = scoring.Scorer(CFG, params, mesh, RULES, row_len=16, batch_tokens=48)
  assert scorer.row_multiple == 2
  calls, run = [], scorer._run

  def recording(params, prompt, unit_keep, rows):
    calls.append((jax.sharding.get_mesh(), nn.get_logical_axis_rules(),
                  {name: [shard.data.shape for shard in array.addressable_shards]
                   for name, array in rows.items()}))
    return run(params, prompt, unit_keep, rows)

  scorer._run = recording
  _assert_matches(scorer.score(requests), _reference(params, requests))
  assert scorer.stats.compiled_shapes == {(4, 16, 2), (2, 16, 2)}
  # Each call runs under the scorer's mesh and rules, its rows split in two by row.
  for (active_mesh, rules, shards), rows in zip(calls, (4, 2)):
    assert active_mesh == mesh and rules == RULES
    assert shards == {name: [(rows // 2, 16 if name in ("tokens", "positions", "segments",
                                                         "contexts") else 2)] * 2
                      for name in scoring._row_shapes(1, 1, 1)}
  assert scorer.stats.slots == 6 * 16
  # The longest bucket (64): max(1, 48 // 64) = 1 row, rounded up to 2; 64 picks.
  assert scorer.largest_call() == (2, 64, 64)
  # Lowered ahead of time: the six row inputs split by row over the data shards, the soft
  # prompt replicated, and the model's activations constrained under the rules.
  prompted = scoring.Scorer(CFG, params, mesh, RULES, row_len=16, prompt=np.zeros((3, 16)))
  text = prompted.lower(2, 16, 4).as_text()
  split = '{sdy.sharding = #sdy.sharding<@mesh, [{"data", "fsdp"}, {}]>}'
  assert text.count("xi32> " + split) == 6
  assert "tensor<3x16xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}]>}" in text
  assert "sdy.sharding_constraint" in text
