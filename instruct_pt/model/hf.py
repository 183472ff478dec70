"""Hugging Face interop: name maps, config mapping, streamed import, export.

`load_params` streams a tensor source (`instruct_pt.model.readers`: safetensors or GGUF) onto
the mesh: each tensor is converted on the host and placed with its target sharding before the
next is read; stacked (scanned) layer parameters are built layer by layer into a donated
device buffer. Host memory therefore peaks near the largest single tensor, not the model.

`save_hf_model` writes our parameters as a Hugging Face model directory (safetensors, sharded
past 5 GiB), loadable by transformers, vLLM and lm-eval.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Iterator, Optional

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from instruct_pt import parallel, progress
from instruct_pt.model import store
from instruct_pt.model.config import ModelConfig, RopeScaling

_SUPPORTED_HF_TYPES = ("llama", "mistral")
# Tensors in HF checkpoints that carry no parameters of ours.
_IGNORED_HF_TENSORS = re.compile(r".*rotary_emb\.inv_freq$")

# Our scanned parameter path -> Hugging Face name inside `model.layers.{i}.`.
_LAYER_TENSORS = {
    ("attention_norm", "scale"): "input_layernorm.weight",
    ("attention", "query", "kernel"): "self_attn.q_proj.weight",
    ("attention", "key", "kernel"): "self_attn.k_proj.weight",
    ("attention", "value", "kernel"): "self_attn.v_proj.weight",
    ("attention", "out", "kernel"): "self_attn.o_proj.weight",
    ("mlp_norm", "scale"): "post_attention_layernorm.weight",
    ("mlp", "gate", "kernel"): "mlp.gate_proj.weight",
    ("mlp", "up", "kernel"): "mlp.up_proj.weight",
    ("mlp", "down", "kernel"): "mlp.down_proj.weight",
}
_TOP_TENSORS = {
    ("embedder", "embedding"): "model.embed_tokens.weight",
    ("final_norm", "scale"): "model.norm.weight",
    ("lm_head", "kernel"): "lm_head.weight",
}


# --------------------------------------------------------------------------------------------
# Layout conversion between Hugging Face `[out, in]` matrices and our kernels.

def _to_ours(path: tuple[str, ...], hf: np.ndarray, config: ModelConfig) -> np.ndarray:
  """Converts one HF tensor (one layer's, for stacked params) to our layout."""
  d, hd = config.embed_dim, config.head_dim
  name = path[-2] if path[-1] == "kernel" else path[-1]
  if name == "query":
    return hf.T.reshape(d, config.num_heads, hd)
  if name in ("key", "value"):
    return hf.T.reshape(d, config.num_kv_heads, hd)
  if name == "out":
    return hf.T.reshape(config.num_heads, hd, d)
  if path[-1] == "kernel":  # gate, up, down, lm_head
    return hf.T
  return hf  # embedding [vocab, embed] and norm scales


def _to_hf(path: tuple[str, ...], ours: np.ndarray) -> np.ndarray:
  """Inverse of `_to_ours` for one (per-layer) array."""
  name = path[-2] if path[-1] == "kernel" else path[-1]
  if name in ("query", "key", "value"):
    return ours.reshape(ours.shape[0], -1).T
  if name == "out":
    return ours.reshape(-1, ours.shape[-1]).T
  if path[-1] == "kernel":
    return ours.T
  return ours


def hf_tensor_shape(path: tuple[str, ...], config: ModelConfig) -> tuple[int, ...]:
  """Shape the HF tensor of our parameter `path` must have under `config`."""
  d, hd, m = config.embed_dim, config.head_dim, config.mlp_dim
  name = path[-2] if path[-1] == "kernel" else path[-1]
  return {
      "query": (config.num_heads * hd, d), "key": (config.num_kv_heads * hd, d),
      "value": (config.num_kv_heads * hd, d), "out": (d, config.num_heads * hd),
      "gate": (m, d), "up": (m, d), "down": (d, m), "lm_head": (config.vocab_size, d),
      "embedding": (config.vocab_size, d), "scale": (d,),
  }[name]


def expected_hf_tensors(config: ModelConfig) -> dict[str, tuple[tuple[str, ...], Optional[int]]]:
  """HF tensor name -> (our parameter path, layer index or None) for a model of `config`."""
  names = {}
  for path, hf_name in _TOP_TENSORS.items():
    if path[0] == "lm_head" and config.tie_embeddings:
      continue
    names[hf_name] = (path, None)
  for layer in range(config.num_layers):
    for path, hf_name in _LAYER_TENSORS.items():
      names[f"model.layers.{layer}.{hf_name}"] = (("layers",) + path, layer)
  return names


# --------------------------------------------------------------------------------------------
# Hugging Face configs.

def model_config_from_hf(hf_config: dict[str, Any], source: str = "config.json",
                         **overrides) -> ModelConfig:
  """Maps a Hugging Face Llama / Mistral `config.json` to a `ModelConfig`.

  Args:
    hf_config: the parsed config.json.
    source: where it came from, for error messages.
    **overrides: ModelConfig fields to set on top (e.g. dtype, param_dtype).

  Raises:
    ValueError: an unsupported model type, activation, bias or RoPE scaling, naming `source`.
  """
  model_type = hf_config.get("model_type")
  if model_type not in _SUPPORTED_HF_TYPES:
    raise ValueError(f"{source}: model_type {model_type!r} is not supported "
                     f"(supported: {', '.join(_SUPPORTED_HF_TYPES)})")
  if hf_config.get("hidden_act", "silu") != "silu":
    raise ValueError(f"{source}: hidden_act {hf_config['hidden_act']!r} is not supported (silu)")
  for flag in ("attention_bias", "mlp_bias"):
    if hf_config.get(flag):
      raise ValueError(f"{source}: {flag}=true is not supported")
  # transformers >= 5 nests RoPE settings in `rope_parameters`; older files use top-level keys.
  rope = dict(hf_config.get("rope_parameters") or hf_config.get("rope_scaling") or {})
  theta = hf_config.get("rope_theta", rope.get("rope_theta", 10000.0))
  rope_type = rope.get("rope_type", rope.get("type", "default"))
  if rope_type == "default":
    scaling = None
  elif rope_type == "llama3":
    scaling = RopeScaling(factor=rope["factor"], low_freq_factor=rope["low_freq_factor"],
                          high_freq_factor=rope["high_freq_factor"],
                          original_max_position=rope["original_max_position_embeddings"])
  else:
    raise ValueError(f"{source}: RoPE scaling type {rope_type!r} is not supported "
                     f"(default, llama3)")
  heads = hf_config["num_attention_heads"]
  fields = dict(
      vocab_size=hf_config["vocab_size"], embed_dim=hf_config["hidden_size"],
      num_layers=hf_config["num_hidden_layers"], num_heads=heads,
      num_kv_heads=hf_config.get("num_key_value_heads") or heads,
      head_dim=hf_config.get("head_dim") or hf_config["hidden_size"] // heads,
      mlp_dim=hf_config["intermediate_size"],
      max_seq_len=hf_config.get("max_position_embeddings", 2048), rope_theta=float(theta),
      rope_scaling=scaling, sliding_window=hf_config.get("sliding_window"),
      tie_embeddings=bool(hf_config.get("tie_word_embeddings", False)),
      norm_eps=float(hf_config.get("rms_norm_eps", 1e-6)))
  fields.update(overrides)
  return ModelConfig(**fields)


def hf_config_from_model(config: ModelConfig, bos_id: Optional[int] = None,
                         eos_id: Optional[int] = None, pad_id: Optional[int] = None,
                         torch_dtype: str = "float32") -> dict[str, Any]:
  """A Hugging Face `config.json` (Mistral when a sliding window is set, else Llama).

  Both the flat keys older loaders read (`rope_theta`, `rope_scaling`) and the
  `rope_parameters` of transformers >= 5 are written.

  Args:
    config: the model.
    bos_id: BOS token id for the config, if known.
    eos_id: EOS token id, if known.
    pad_id: padding id, if known.
    torch_dtype: dtype of the exported tensors.
  """
  mistral = config.sliding_window is not None
  rope = {"rope_type": "default", "rope_theta": config.rope_theta}
  rope_scaling = None
  if config.rope_scaling is not None:
    rope_scaling = {"rope_type": "llama3", "factor": config.rope_scaling.factor,
                    "low_freq_factor": config.rope_scaling.low_freq_factor,
                    "high_freq_factor": config.rope_scaling.high_freq_factor,
                    "original_max_position_embeddings":
                        config.rope_scaling.original_max_position}
    rope.update(rope_scaling)
  hf = {
      "architectures": ["MistralForCausalLM" if mistral else "LlamaForCausalLM"],
      "model_type": "mistral" if mistral else "llama",
      "vocab_size": config.vocab_size, "hidden_size": config.embed_dim,
      "intermediate_size": config.mlp_dim, "num_hidden_layers": config.num_layers,
      "num_attention_heads": config.num_heads, "num_key_value_heads": config.num_kv_heads,
      "head_dim": config.head_dim, "hidden_act": "silu",
      "max_position_embeddings": config.max_seq_len, "rms_norm_eps": config.norm_eps,
      "rope_theta": config.rope_theta, "rope_scaling": rope_scaling, "rope_parameters": rope,
      "tie_word_embeddings": config.tie_embeddings, "attention_bias": False,
      "mlp_bias": False, "attention_dropout": 0.0, "torch_dtype": torch_dtype,
      "bos_token_id": bos_id, "eos_token_id": eos_id, "pad_token_id": pad_id,
  }
  if mistral:
    hf["sliding_window"] = config.sliding_window
  return hf


# --------------------------------------------------------------------------------------------
# Streaming a source onto the mesh.

def _tree_get(tree: Any, path: tuple[str, ...]) -> Any:
  for key in path:
    tree = tree[key]
  return tree


def _tree_set(tree: dict, path: tuple[str, ...], value: Any) -> None:
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def load_params(source, config: ModelConfig, mesh: jax.sharding.Mesh, rules: parallel.Rules,
                progress: bool = True) -> dict[str, Any]:
  """Reads every parameter of a model of `config` from `source` onto the mesh.

  Args:
    source: a `SafetensorsSource` or `GGUFSource` (anything with `names`, `get`, `where`).
    config: the model config the tensors must match.
    mesh: the device mesh.
    rules: logical axis rules.
    progress: show a progress bar.

  Returns:
    The parameter tree, each leaf a `jax.Array` in its sharding and `config.param_dtype`.

  Raises:
    ValueError: a tensor is missing or its shape disagrees with the config (naming the tensor,
      its file, and both shapes).
  """
  abstract, shardings = store.param_shardings(config, mesh, rules)
  expected = expected_hf_tensors(config)
  available = source.names()
  missing = sorted(set(expected) - available)
  if missing:
    raise ValueError(f"{source.where(next(iter(available)) if available else '')}: "
                     f"missing {len(missing)} tensor(s) the config needs, e.g. {missing[0]}")
  unexpected = sorted(n for n in available - set(expected) if not _IGNORED_HF_TENSORS.match(n))
  if unexpected:
    raise ValueError(f"{source.where(unexpected[0])}: tensor {unexpected[0]} does not fit a "
                     f"model with the given config ({len(unexpected)} unexpected tensor(s); "
                     f"e.g. more layers than num_hidden_layers?)")

  def read(hf_name: str, path: tuple[str, ...]) -> np.ndarray:
    array = source.get(hf_name)
    want = hf_tensor_shape(path, config)
    if tuple(array.shape) != want:
      raise ValueError(f"{source.where(hf_name)}: tensor {hf_name} has shape "
                       f"{tuple(array.shape)}, but the config implies {want}")
    return _to_ours(path, array, config).astype(jnp.dtype(config.param_dtype))

  params: dict[str, Any] = {}
  paths = [path for path in _TOP_TENSORS if not (path[0] == "lm_head" and config.tie_embeddings)]
  stacked = [("layers",) + path for path in _LAYER_TENSORS]
  bar = _progress(len(paths) + len(stacked) * config.num_layers, progress)
  for path in paths:
    sharding = _tree_get(shardings, path)
    _tree_set(params, path, jax.device_put(read(_TOP_TENSORS[path], path), sharding))
    bar.update(1)
  for path in stacked:
    leaf = _tree_get(abstract, path)
    sharding = _tree_get(shardings, path)
    layer_sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(
        *tuple(sharding.spec)[1:]))
    buffer = _zeros(leaf.shape, leaf.dtype, sharding)
    for layer in range(config.num_layers):
      hf_name = f"model.layers.{layer}.{_LAYER_TENSORS[path[1:]]}"
      value = jax.device_put(read(hf_name, path), layer_sharding)
      buffer = _set_layer(buffer, value, layer)
      bar.update(1)
    _tree_set(params, path, buffer)
  bar.close()
  return params


def _progress(total: int, enabled: bool):
  return progress.bar(total=total, desc="load tensors", unit="tensor",
                      disable=not enabled or jax.process_index() != 0)


def _zeros(shape, dtype, sharding) -> jax.Array:
  return jax.jit(lambda: jnp.zeros(shape, dtype), out_shardings=sharding)()


def _set_layer_impl(buffer, value, layer):
  return jax.lax.dynamic_update_index_in_dim(buffer, value.astype(buffer.dtype), layer, 0)


_set_layer = jax.jit(_set_layer_impl, donate_argnums=(0,))


# --------------------------------------------------------------------------------------------
# Export.

def iter_hf_tensors(params: Any, config: ModelConfig,
                    dtype: str = "float32") -> Iterator[tuple[str, np.ndarray]]:
  """Yields (HF name, host array) for every parameter, one layer tensor at a time.

  Args:
    params: our parameter tree (jax or numpy arrays; may be sharded over several hosts only
      if fully addressable here).
    config: the model config.
    dtype: "float32", "bfloat16" or "float16" for the exported arrays.
  """
  np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
  for path, hf_name in _TOP_TENSORS.items():
    if path[0] == "lm_head" and config.tie_embeddings:
      continue
    yield hf_name, _host_array(_to_hf(path, np.asarray(_tree_get(params, path))), np_dtype)
  for path, hf_name in _LAYER_TENSORS.items():
    stacked = _tree_get(params, ("layers",) + path)
    for layer in range(config.num_layers):
      array = _to_hf(("layers",) + path, np.asarray(stacked[layer]))
      yield f"model.layers.{layer}.{hf_name}", _host_array(array, np_dtype)


def _host_array(array: np.ndarray, dtype) -> np.ndarray:
  # Transposes are views in Fortran order; safetensors writes the raw buffer, so make it C.
  return np.ascontiguousarray(array.astype(dtype))


def save_hf_model(params: Any, config: ModelConfig, out_dir: str, dtype: str = "float32",
                  max_shard_bytes: int = 5 * 2**30, special_ids: Optional[dict] = None) -> None:
  """Writes `config.json` and safetensors weights (sharded with an index past one shard).

  Args:
    params: our parameter tree.
    config: the model config.
    out_dir: output directory (created).
    dtype: dtype of the written tensors.
    max_shard_bytes: largest safetensors file.
    special_ids: `{"bos": id, "eos": id, "pad": id}` for config.json and
      generation_config.json.
  """
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel
  special_ids = special_ids or {}
  os.makedirs(out_dir, exist_ok=True)
  shards: list[dict[str, np.ndarray]] = [{}]
  sizes = [0]
  for name, array in iter_hf_tensors(params, config, dtype):
    if sizes[-1] and sizes[-1] + array.nbytes > max_shard_bytes:
      shards.append({})
      sizes.append(0)
    shards[-1][name] = array
    sizes[-1] += array.nbytes
  if len(shards) == 1:
    save_file(shards[0], os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
  else:
    weight_map = {}
    for i, shard in enumerate(shards, 1):
      filename = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
      save_file(shard, os.path.join(out_dir, filename), metadata={"format": "pt"})
      weight_map.update({name: filename for name in shard})
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w",
              encoding="utf-8") as f:
      json.dump({"metadata": {"total_size": sum(sizes)}, "weight_map": weight_map}, f, indent=2)
  hf_config = hf_config_from_model(config, special_ids.get("bos"), special_ids.get("eos"),
                                   special_ids.get("pad"), torch_dtype=dtype)
  with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
    json.dump(hf_config, f, indent=2)
  generation = {k: v for k, v in (("bos_token_id", special_ids.get("bos")),
                                   ("eos_token_id", special_ids.get("eos")),
                                   ("pad_token_id", special_ids.get("pad"))) if v is not None}
  with open(os.path.join(out_dir, "generation_config.json"), "w", encoding="utf-8") as f:
    json.dump(generation, f, indent=2)


