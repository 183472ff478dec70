"""The generation engine against transformers' generate(), across modes, meshes and seeds."""

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from instruct_pt import parallel  # pylint: disable=wrong-import-position
from instruct_pt import run_dir  # pylint: disable=wrong-import-position
from instruct_pt.model import store  # pylint: disable=wrong-import-position
from instruct_pt.model.generate import (  # pylint: disable=wrong-import-position
    Engine, SamplingConfig, plan_prefill, prefill_groups, prompt_buckets, sample_tokens)
from hf_reference import tiny_hf_model  # pylint: disable=wrong-import-position

RULES = parallel.LOGICAL_AXIS_RULES
EOS = 2  # SmolLM2-Instruct's <|im_end|>
PROMPTS = ["The capital of France is", "def fibonacci(n):",
           "<|im_start|>user\nWhat is a Python list?<|im_end|>\n<|im_start|>assistant\n",
           "Once upon a time", "import numpy as np\nx ="]
NEW_TOKENS = 32


@pytest.fixture(scope="module")
def prompt_ids(smollm2):
  tokenizer = smollm2[3]
  return [tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]


@pytest.fixture(scope="module")
def expected(smollm2, prompt_ids):
  """transformers' greedy continuations (generate() stops after EOS; we drop the EOS)."""
  reference = smollm2[2]
  outputs = []
  for ids in prompt_ids:
    with torch.no_grad():
      out = reference.generate(torch.tensor([ids]), max_new_tokens=NEW_TOKENS,
                               do_sample=False)[0, len(ids):].tolist()
    outputs.append(out[:-1] if out and out[-1] == EOS else out)
  return outputs


def _on_mesh(config, params, mesh):
  _, shardings = store.param_shardings(config, mesh, RULES)
  return jax.device_put(params, shardings)


@pytest.fixture(scope="module")
def engine(smollm2):
  """Eight slots on one device (the sharded case has its own test)."""
  config, params = smollm2[:2]
  mesh = parallel.create_mesh((1, 1, 1), jax.devices()[:1])
  return Engine(config, _on_mesh(config, params, mesh), mesh, RULES, eos_ids=[EOS],
                num_slots=8, max_len=128, decode_chunk=8)


@pytest.mark.parametrize("mode", ["static", "continuous"])
def test_greedy_matches_transformers(engine, prompt_ids, expected, mode):
  """Greedy output equals transformers' token for token, prompts of different lengths in one
  batch, in static and continuous modes."""
  assert len({len(p) for p in prompt_ids}) > 1
  assert engine.generate(prompt_ids, SamplingConfig(max_new_tokens=NEW_TOKENS),
                         mode=mode) == expected


def test_continuous_batching_refills_slots(engine, prompt_ids, expected):
  """With 2 slots for 5 prompts, finished slots take waiting prompts; outputs stay exact."""
  two_slot = Engine(engine.config, engine.params, engine.mesh, RULES, eos_ids=[EOS],
                    num_slots=2, max_len=128, decode_chunk=4)
  assert two_slot.generate(prompt_ids, SamplingConfig(max_new_tokens=NEW_TOKENS)) == expected
  assert two_slot.stats.prompts == 5


def test_mistral_checkpoint_with_a_window_matches_transformers(tmp_path):
  """A Mistral safetensors checkpoint (untied, sliding window 4, shorter than every sequence)
  imported and decoded greedily with 2 slots (refills, packed prefill) gives transformers'
  tokens for prompts of 3 to 9 tokens."""
  model = tiny_hf_model("mistral", sliding_window=4)
  model.save_pretrained(tmp_path)
  mesh = parallel.create_mesh((1, 1, 1), jax.devices()[:1])
  loaded = run_dir.load(str(tmp_path), mesh, RULES, progress=False)
  config, params = loaded.config, loaded.params
  assert config.sliding_window == 4 and not config.tie_embeddings
  eos = model.config.eos_token_id
  rng = np.random.default_rng(0)
  prompts = [rng.integers(3, config.vocab_size, n).tolist() for n in (5, 9, 3, 7)]
  expected = []
  for ids in prompts:
    with torch.no_grad():
      out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids)),
                           max_new_tokens=12, do_sample=False, pad_token_id=eos)
    out = out[0, len(ids):].tolist()
    expected.append(out[:-1] if out and out[-1] == eos else out)
  assert sum(len(e) for e in expected) > 24  # most continuations run past the window
  engine = Engine(config, params, mesh, RULES, eos_ids=[eos], num_slots=2, max_len=32,
                  decode_chunk=4)
  assert engine.generate(prompts, SamplingConfig(max_new_tokens=12)) == expected


def test_sharded_mesh_gives_the_same_tokens(smollm2, prompt_ids, expected):
  """On a (2, 2, 2) mesh (params re-laid out, 3 KV heads replicated over tensor=2) the engine
  produces the single-device tokens."""
  config, params = smollm2[:2]
  mesh = parallel.create_mesh((2, 2, 2))
  engine = Engine(config, _on_mesh(config, params, mesh), mesh, RULES, eos_ids=[EOS],
                  num_slots=4, max_len=128)
  new_tokens = 12  # 8 CPU devices on 2 cores are slow; the first 12 tokens suffice here
  outputs = engine.generate(prompt_ids[:4], SamplingConfig(max_new_tokens=new_tokens))
  assert outputs == [e[:new_tokens] for e in expected[:4]]


def test_sampling_is_reproducible_from_a_seed(engine, prompt_ids):
  """Same seed: same samples (in both modes); another seed: different samples."""
  sampling = SamplingConfig(temperature=1.0, top_k=50, top_p=0.95, max_new_tokens=12)
  first = engine.generate(prompt_ids, sampling, seed=7)
  assert engine.generate(prompt_ids, sampling, seed=7, mode="static") == first
  assert engine.generate(prompt_ids, sampling, seed=8) != first


def test_eos_ends_a_sequence(engine, prompt_ids, expected):
  """A token declared as EOS stops the sequence before it (and is not returned)."""
  target = expected[3]
  stop = target[5]
  assert stop not in target[:5]
  custom = Engine(engine.config, engine.params, engine.mesh, RULES, eos_ids=[EOS, stop],
                  num_slots=8, max_len=128)
  assert custom.generate([prompt_ids[3]], SamplingConfig(max_new_tokens=NEW_TOKENS)) == [
      target[:5]]


def test_prompt_buckets_bound_the_compiled_prefill_shapes(engine):
  """Prompts of 30 different lengths compile at most a handful of prefill programs."""
  prompts = [[1 + (i % 50)] * length for i, length in enumerate(range(3, 63, 2))]
  engine.stats.compiled_prefill_lengths.clear()
  engine.generate(prompts, SamplingConfig(max_new_tokens=2))
  assert engine.stats.compiled_prefill_lengths <= set(prompt_buckets(126))
  assert len(engine.stats.compiled_prefill_lengths) <= 3


def test_plan_prefill_packs_prompts_without_overlap():
  """Packed prompts never overlap or overflow a row; the plan needs no more padded tokens
  than one prompt per row at the longest prompt's bucket; row counts round up to the batch
  shards; a prompt longer than every bucket is named."""
  rng = np.random.default_rng(0)
  buckets = prompt_buckets(200)
  assert buckets[:6] == (16, 24, 32, 48, 64, 96) and buckets[-1] == 200
  for _ in range(50):
    lengths = rng.integers(1, 201, rng.integers(1, 17)).tolist()
    plan = plan_prefill(lengths, buckets, max_row_len=1024, row_multiple=2)
    assert plan.num_rows % 2 == 0
    used = {}
    for length, (row, offset) in zip(lengths, plan.placements):
      assert 0 <= row < plan.num_rows and offset + length <= plan.row_len
      cells = {(row, offset + i) for i in range(length)}
      assert not cells & set(used)
      used.update(dict.fromkeys(cells))
    unpacked_rows = -(-len(lengths) // 2) * 2
    unpacked = unpacked_rows * next(b for b in buckets if b >= max(lengths))
    assert plan.num_rows * plan.row_len <= unpacked
  # Eight prompts of 24..55 tokens: 5 rows of 71 (355 slots) instead of 8 x 71 (568).
  plan = plan_prefill([55, 47, 42, 33, 35, 25, 26, 24], prompt_buckets(71), 1024)
  assert (plan.num_rows, plan.row_len) == (5, 71)
  with pytest.raises(ValueError, match="a prompt of 300 tokens exceeds the largest bucket 200"):
    plan_prefill([300], buckets, 1024)


def test_prefill_groups_cap_the_tokens_of_each_call():
  """Prompts go, in order, into groups of at most the cap; a longer prompt is a group alone."""
  assert prefill_groups([10, 20, 5, 40, 50, 1], 40) == [[0, 1, 2], [3], [4], [5]]
  assert prefill_groups([3, 3, 3], 100) == [[0, 1, 2]]
  assert prefill_groups([7], 1) == [[0]]


def test_top_k_and_top_p_restrict_the_support():
  """top_k=2 only ever samples the two best tokens; top_p keeps the smallest sufficient set."""
  logits = jax.numpy.log(jax.numpy.asarray([[0.5, 0.3, 0.15, 0.05]] * 512))
  keys = jax.random.split(jax.random.key(0), 512)
  top_k = np.asarray(sample_tokens(logits, keys, SamplingConfig(temperature=1.0, top_k=2)))
  assert set(top_k.tolist()) == {0, 1}
  top_p = np.asarray(sample_tokens(logits, keys, SamplingConfig(temperature=1.0, top_p=0.7)))
  assert set(top_p.tolist()) == {0, 1}  # 0.5 < 0.7 <= 0.5 + 0.3
  top_p = np.asarray(sample_tokens(logits, keys, SamplingConfig(temperature=1.0, top_p=0.9)))
  assert set(top_p.tolist()) == {0, 1, 2}
  greedy = np.asarray(sample_tokens(logits, keys, SamplingConfig()))
  assert set(greedy.tolist()) == {0}


def test_temperature_sharpens_the_distribution_by_its_power():
  """At temperature 0.5 the probabilities [0.5, 0.3, 0.15, 0.05] become their squares,
  renormalised: [0.685, 0.247, 0.062, 0.007] (by hand: 0.25, 0.09, 0.0225, 0.0025 over
  0.365); 4,096 draws with fixed keys land within 0.03 of each (4 standard errors or more), at
  temperature 1 within 0.03 of the original."""
  logits = jax.numpy.log(jax.numpy.asarray([[0.5, 0.3, 0.15, 0.05]] * 4096))
  keys = jax.random.split(jax.random.key(1), 4096)
  for temperature, expected in ((0.5, [0.685, 0.247, 0.062, 0.007]),
                                (1.0, [0.5, 0.3, 0.15, 0.05])):
    drawn = np.asarray(sample_tokens(logits, keys, SamplingConfig(temperature=temperature)))
    frequencies = np.bincount(drawn, minlength=4) / len(drawn)
    np.testing.assert_allclose(frequencies, expected, atol=0.03, err_msg=str(temperature))


def test_bad_prompts_are_refused(engine):
  """An empty prompt or one that leaves no room for max_new_tokens is named."""
  with pytest.raises(ValueError, match="prompt 1 is empty"):
    engine.generate([[1, 2], []], SamplingConfig(max_new_tokens=8))
  with pytest.raises(ValueError, match="max_new_tokens=400 leaves no room"):
    engine.generate([[1, 2]])
  with pytest.raises(ValueError, match=r"prompt 0 has 120 tokens; with max_new_tokens=32"):
    engine.generate([[1] * 120], SamplingConfig(max_new_tokens=32))


def test_dropped_engines_free_their_parameters():
  """Engines built, used and dropped in a loop do not accumulate: each one is freed with its
  parameters, cache and compiled programs (device arrays alive return to the baseline)."""
  import gc  # pylint: disable=import-outside-toplevel
  import weakref  # pylint: disable=import-outside-toplevel
  from instruct_pt.model.config import get_preset  # pylint: disable=import-outside-toplevel
  from instruct_pt.model.transformer import Decoder  # pylint: disable=import-outside-toplevel
  config = get_preset("tiny")
  mesh = parallel.create_mesh((1, 1, 1), jax.devices()[:1])

  def build_use_and_drop(seed):
    params = Decoder(config).init(jax.random.key(seed), np.zeros((1, 8), np.int32))["params"]
    params = _on_mesh(config, jax.tree_util.tree_map(lambda x: x.value, params,
                                                     is_leaf=lambda x: hasattr(x, "value")),
                      mesh)
    engine = Engine(config, params, mesh, RULES, eos_ids=[2], num_slots=2, max_len=64)
    assert len(engine.generate([[1, 5, 6], [1, 7]], SamplingConfig(max_new_tokens=4))) == 2
    return weakref.ref(engine)

  build_use_and_drop(0)
  gc.collect()
  baseline = len(jax.live_arrays())
  for seed in range(1, 4):
    engine = build_use_and_drop(seed)
    gc.collect()
    assert engine() is None
    assert len(jax.live_arrays()) == baseline


def test_prefill_in_token_capped_calls_gives_the_same_tokens():
  """An engine that prefills at most 40 prompt tokens per call (`max_prefill_tokens`) runs
  more, smaller prefill calls and samples exactly the tokens of one that admits every free
  slot in one call (slots refilled in between); its prefill time is counted."""
  from instruct_pt.model.config import get_preset  # pylint: disable=import-outside-toplevel
  config = get_preset("tiny", init_std=0.1, num_layers=3)
  mesh = parallel.create_mesh((1, 1, 1), jax.devices()[:1])
  params = store.init_params(config, mesh, RULES)
  rng = np.random.default_rng(0)
  prompts = [rng.integers(3, 259, int(n)).tolist() for n in rng.integers(3, 40, 6)]
  sampling = SamplingConfig(temperature=1.0, top_k=20, max_new_tokens=10)
  outputs, calls = {}, {}
  for cap in (16384, 40):
    engine = Engine(config, params, mesh, RULES, eos_ids=[2], num_slots=4, max_len=64,
                    decode_chunk=4, max_prefill_tokens=cap)
    outputs[cap] = engine.generate(prompts, sampling, seed=3)
    calls[cap] = engine.stats.prefill_calls
    assert 0 < engine.stats.prefill_seconds < engine.stats.seconds
  assert outputs[40] == outputs[16384]
  assert calls[40] > calls[16384]
  assert sum(map(len, outputs[40])) >= 30  # EOS (id 2) may end a few early
