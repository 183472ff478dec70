"""Checkpoint import / export parity with Hugging Face `transformers` (torch CPU, float32)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")

from instruct_pt import parallel  # pylint: disable=wrong-import-position
from instruct_pt import run_dir  # pylint: disable=wrong-import-position
from instruct_pt.model import hf, readers  # pylint: disable=wrong-import-position
from instruct_pt.model.transformer import Decoder  # pylint: disable=wrong-import-position
from hf_reference import tiny_hf_model  # pylint: disable=wrong-import-position

RULES = parallel.LOGICAL_AXIS_RULES
VOCAB = 128


@pytest.fixture(scope="module")
def mesh():
  return parallel.create_mesh((1, -1, 1))


def _import(source, mesh):
  model = run_dir.load(str(source), mesh, RULES, progress=False)
  return model.config, model.params


def llama_cpp_permute(weight, num_heads):
  """HF q/k rows -> llama.cpp's interleaved order (the inverse of what GGUFSource undoes)."""
  rows, cols = weight.shape
  half = rows // num_heads // 2
  return weight.reshape(num_heads, 2, half, cols).swapaxes(1, 2).reshape(rows, cols)


def _ragged_batch(lengths, seq_len=16, seed=0):
  """Right-padded token ids and a 0/1 mask for rows of the given lengths."""
  rng = np.random.default_rng(seed)
  ids = rng.integers(0, VOCAB, (len(lengths), seq_len))
  mask = (np.arange(seq_len)[None] < np.asarray(lengths)[:, None]).astype(np.int64)
  return ids * mask, mask


def _ours(config, params, ids, mask):
  logits, _ = Decoder(config).apply({"params": params}, jnp.asarray(ids),
                                    segment_ids=jnp.asarray(mask))
  return np.asarray(logits)


def _theirs(model, ids, mask):
  with torch.no_grad():
    return model(torch.tensor(ids), attention_mask=torch.tensor(mask)).logits.numpy()


def _assert_valid_logits_close(ours, theirs, mask, atol):
  valid = mask.astype(bool)
  diff = np.abs(ours[valid] - theirs[valid]).max()
  assert diff < atol, f"max |logit difference| {diff:.2e} >= {atol}"


@pytest.mark.parametrize("kind, overrides", [
    ("llama", {}),
    ("llama", {"tie_word_embeddings": True}),
    ("llama", {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 16}}),
    ("mistral", {"sliding_window": 4}),  # window smaller than the sequence
])
def test_hf_import_matches_transformers_logits(tmp_path, mesh, kind, overrides):
  """Random tiny Llama / Mistral saved by transformers: our logits within 1e-4 (float32) on a
  batch of different lengths."""
  model = tiny_hf_model(kind, **overrides)
  model.save_pretrained(tmp_path)
  config, params = _import(tmp_path, mesh)
  if kind == "mistral":
    assert config.sliding_window == 4
  ids, mask = _ragged_batch([16, 11, 5])
  _assert_valid_logits_close(_ours(config, params, ids, mask), _theirs(model, ids, mask), mask,
                             atol=1e-4)


def test_sharded_safetensors_with_index_import(tmp_path, mesh):
  """A checkpoint split into several safetensors files with an index imports the same."""
  model = tiny_hf_model("llama")
  model.save_pretrained(tmp_path, max_shard_size="60KB")
  assert os.path.exists(tmp_path / "model.safetensors.index.json")
  assert len([f for f in os.listdir(tmp_path) if f.endswith(".safetensors")]) > 2
  config, params = _import(tmp_path, mesh)
  ids, mask = _ragged_batch([16, 9])
  _assert_valid_logits_close(_ours(config, params, ids, mask), _theirs(model, ids, mask), mask,
                             atol=1e-4)


def test_import_onto_a_tensor_parallel_mesh(tmp_path):
  """Streaming onto a (2, 2, 2) mesh shards the parameters and gives the same logits."""
  model = tiny_hf_model("llama")
  model.save_pretrained(tmp_path)
  config, params = _import(tmp_path, parallel.create_mesh((2, 2, 2)))
  kernel = params["layers"]["mlp"]["gate"]["kernel"]
  assert kernel.sharding.spec == jax.sharding.PartitionSpec(None, "fsdp", "tensor")
  ids, mask = _ragged_batch([16, 7])
  _assert_valid_logits_close(_ours(config, params, ids, mask), _theirs(model, ids, mask), mask,
                             atol=1e-4)


@pytest.mark.parametrize("dtype, atol", [("float32", 1e-4), ("bfloat16", 0.1)])
def test_export_round_trip_loads_in_transformers(tmp_path, mesh, dtype, atol):
  """import -> export -> transformers.from_pretrained -> the same logits."""
  model = tiny_hf_model("mistral", sliding_window=4)
  model.save_pretrained(tmp_path / "in")
  config, params = _import(tmp_path / "in", mesh)
  hf.save_hf_model(params, config, str(tmp_path / "out"), dtype=dtype,
                              max_shard_bytes=100_000, special_ids={"bos": 1, "eos": 2})
  assert os.path.exists(tmp_path / "out" / "model.safetensors.index.json")
  reloaded = transformers.AutoModelForCausalLM.from_pretrained(
      tmp_path / "out", dtype=torch.float32).eval()
  assert reloaded.config.sliding_window == 4 and reloaded.config.eos_token_id == 2
  ids, mask = _ragged_batch([16, 12])
  _assert_valid_logits_close(_theirs(reloaded, ids, mask), _theirs(model, ids, mask), mask,
                             atol=atol)


def _write_gguf(path, model, architecture="llama", tensor_type=None):
  """Writes an HF model as a llama.cpp-style GGUF (q/k rows permuted as llama.cpp does)."""
  cfg = model.config
  writer = gguf.GGUFWriter(str(path), architecture)
  writer.add_block_count(cfg.num_hidden_layers)
  writer.add_context_length(cfg.max_position_embeddings)
  writer.add_embedding_length(cfg.hidden_size)
  writer.add_feed_forward_length(cfg.intermediate_size)
  writer.add_head_count(cfg.num_attention_heads)
  writer.add_head_count_kv(cfg.num_key_value_heads)
  writer.add_rope_freq_base(10000.0)
  writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
  writer.add_vocab_size(cfg.vocab_size)
  names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight":
           "output_norm.weight", "lm_head.weight": "output.weight"}
  blocks = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
            "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
            "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
            "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
  for name, tensor in model.state_dict().items():
    array = tensor.numpy().astype(np.float32)
    if name.startswith("model.layers."):
      layer, rest = name[len("model.layers."):].split(".", 1)
      gguf_name = f"blk.{layer}.{blocks[rest[:-len('.weight')]]}.weight"
    else:
      gguf_name = names[name]
    if name.endswith("q_proj.weight"):
      array = llama_cpp_permute(array, cfg.num_attention_heads)
    elif name.endswith("k_proj.weight"):
      array = llama_cpp_permute(array, cfg.num_key_value_heads)
    if tensor_type is not None and array.ndim == 2:
      quantized = gguf.quants.quantize(array, tensor_type)
      writer.add_tensor(gguf_name, quantized, raw_shape=quantized.shape, raw_dtype=tensor_type)
    else:
      writer.add_tensor(gguf_name, array)
  writer.write_header_to_file()
  writer.write_kv_data_to_file()
  writer.write_tensors_to_file()
  writer.close()


def test_gguf_q8_0_tensors_dequantize_within_the_quantization_step(tmp_path):
  """Q8_0 matrices (int8 per 32-value block + one scale) come back in HF layout, q/k rows
  un-permuted, each value within one quantization step (block max / 127) of the HF tensor. (Logits are not compared: a random 0.2-std network amplifies 0.4% weight noise.)"""
  model = tiny_hf_model("llama")
  _write_gguf(tmp_path / "m.gguf", model, tensor_type=gguf.GGMLQuantizationType.Q8_0)
  source = readers.GGUFSource(str(tmp_path / "m.gguf"))
  for name, tensor in model.state_dict().items():
    expected = tensor.numpy()
    got = source.get(name)
    assert got.shape == expected.shape, name
    if expected.ndim == 2:
      block_max = np.abs(expected.reshape(expected.shape[0], -1, 32)).max(-1, keepdims=True)
      step = np.broadcast_to(block_max / 127, block_max.shape[:2] + (32,))
      # One full step: the block scale itself is stored in float16.
      assert np.all(np.abs(got - expected) <= step.reshape(expected.shape) + 1e-6), name
    else:
      np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("tensor_type, atol", [(None, 1e-4), ("F16", 2e-2)])
def test_gguf_import_undoes_llama_cpp_permutation(tmp_path, mesh, tensor_type, atol):
  """A GGUF written from an HF model (F32 / F16 matrices) imports to its logits."""
  model = tiny_hf_model("llama")
  qtype = getattr(gguf.GGMLQuantizationType, tensor_type) if tensor_type else None
  _write_gguf(tmp_path / "m.gguf", model, tensor_type=qtype)
  path = str(tmp_path / "m.gguf")
  config, params = _import(path, mesh)
  ids, mask = _ragged_batch([16, 10])
  _assert_valid_logits_close(_ours(config, params, ids, mask), _theirs(model, ids, mask), mask,
                             atol=atol)


# ---- The bundled SmolLM2-135M-Instruct GGUF against transformers loading the same file.

PROMPTS = ["The capital of France is", "def fibonacci(n):",
           "<|im_start|>user\nWhat is a Python list?<|im_end|>\n<|im_start|>assistant\n"]


def test_smollm2_config_from_gguf_metadata(smollm2):
  """The GGUF metadata maps to SmolLM2-135M's published shape."""
  config = smollm2[0]
  assert (config.num_layers, config.embed_dim, config.num_heads, config.num_kv_heads,
          config.vocab_size, config.rope_theta, config.tie_embeddings) == (
              30, 576, 9, 3, 49152, 100000.0, True)
  assert config.num_params() == 134_515_008


def test_smollm2_gguf_logits_match_transformers(smollm2):
  """Our logits match transformers loading the same GGUF (< 1e-3, float32)."""
  config, params, reference, tokenizer = smollm2
  encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
  lengths = [len(e) for e in encoded]
  ids = np.zeros((len(encoded), max(lengths)), np.int64)
  for row, e in enumerate(encoded):
    ids[row, :len(e)] = e
  mask = (np.arange(ids.shape[1])[None] < np.asarray(lengths)[:, None]).astype(np.int64)
  _assert_valid_logits_close(_ours(config, params, ids, mask), _theirs(reference, ids, mask),
                             mask, atol=1e-3)


# ---- Bad input.

def test_directory_without_config_json(tmp_path):
  """A directory that is not an HF model directory is named in the error."""
  with pytest.raises(FileNotFoundError, match=f"{tmp_path}: no config.json"):
    readers.SafetensorsSource(str(tmp_path))


def test_truncated_safetensors_file(tmp_path):
  """A cut-off weights file is reported as truncated, naming the file."""
  tiny_hf_model("llama").save_pretrained(tmp_path)
  path = tmp_path / "model.safetensors"
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(ValueError, match=r"model.safetensors: truncated safetensors file"):
    readers.SafetensorsSource(str(tmp_path))


def test_unsupported_gguf_architecture(tmp_path):
  """A GGUF of another architecture is refused, naming the file and the architecture."""
  writer = gguf.GGUFWriter(str(tmp_path / "x.gguf"), "gpt2")
  writer.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))
  writer.write_header_to_file()
  writer.write_kv_data_to_file()
  writer.write_tensors_to_file()
  writer.close()
  with pytest.raises(ValueError, match=r"x.gguf: GGUF architecture 'gpt2' is not supported"):
    readers.GGUFSource(str(tmp_path / "x.gguf"))


def test_not_a_gguf_file(tmp_path):
  """Garbage with a .gguf name is reported as unreadable, naming the file."""
  (tmp_path / "bad.gguf").write_bytes(b"not a gguf file at all")
  with pytest.raises(ValueError, match=r"bad.gguf: not a readable GGUF file"):
    readers.GGUFSource(str(tmp_path / "bad.gguf"))


def _save_with_edited_config(model_dir, **changes):
  """Saves a tiny Llama, then changes fields of its config.json."""
  tiny_hf_model("llama").save_pretrained(model_dir)
  config_path = model_dir / "config.json"
  config_path.write_text(json.dumps({**json.loads(config_path.read_text()), **changes}))


def test_config_disagreeing_with_tensors(tmp_path, mesh):
  """config.json says a wider MLP than the tensors have: error names tensor, file, shapes."""
  _save_with_edited_config(tmp_path, intermediate_size=128)
  with pytest.raises(ValueError, match=r"model.safetensors: tensor model.layers.0.mlp.\w+"
                                       r".weight has shape \(\d+, \d+\), but the config implies"):
    _import(tmp_path, mesh)


def test_config_with_fewer_layers_than_tensors(tmp_path, mesh):
  """Tensors of a layer the config does not have are reported by name."""
  _save_with_edited_config(tmp_path, num_hidden_layers=1)
  with pytest.raises(ValueError, match=r"tensor model.layers.1.\S+ does not fit"):
    _import(tmp_path, mesh)


def test_unsupported_model_type():
  """A config of another family is refused, naming its model_type."""
  with pytest.raises(ValueError, match=r"config.json: model_type 'gpt2' is not supported"):
    hf.model_config_from_hf({"model_type": "gpt2"})
