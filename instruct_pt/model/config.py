"""Model configuration: one frozen dataclass and the named presets.

A `ModelConfig` describes a decoder of the Llama / Mistral / SmolLM2 family. Presets are
plain module-level constants looked up by name with `get_preset`; gin only ever names a
preset and a few overrides (see `instruct_pt.config`), so the deep code sees a plain value.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Optional

import jax


@dataclasses.dataclass(frozen=True)
class RopeScaling:
  """Llama-3 style frequency-dependent RoPE scaling (`rope_type="llama3"` in HF configs).

  Attributes:
    factor: how much longer the target context is than the original one.
    low_freq_factor: wavelengths above `original_max_position / low_freq_factor` are scaled.
    high_freq_factor: wavelengths below `original_max_position / high_freq_factor` are kept.
    original_max_position: the context length the base model was trained with.
  """

  factor: float = 8.0
  low_freq_factor: float = 1.0
  high_freq_factor: float = 4.0
  original_max_position: int = 8192


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Shape and numerics of a decoder-only transformer.

  Attributes:
    vocab_size: number of embedding rows (and logits).
    embed_dim: width of the residual stream.
    num_layers: number of decoder blocks.
    num_heads: query heads.
    num_kv_heads: key/value heads (grouped-query attention when smaller than `num_heads`).
    head_dim: width of one head.
    mlp_dim: hidden width of the SwiGLU MLP.
    max_seq_len: longest sequence the model is configured for (KV cache size default).
    rope_theta: RoPE base frequency.
    rope_scaling: optional Llama-3 style RoPE scaling.
    sliding_window: Mistral-style local attention window (tokens), or None for full attention.
    tie_embeddings: use the embedding matrix as the output projection.
    norm_eps: RMSNorm epsilon.
    param_dtype: dtype of the stored parameters ("float32" or "bfloat16").
    dtype: compute dtype of the matmuls; "auto" (default) is bfloat16 on accelerators and
      float32 on CPU. See `compute_dtype`.
    attention_impl: "xla" (einsum + softmax), "dot_product" (`jax.nn.dot_product_attention`,
      XLA backend), "cudnn" (`jax.nn.dot_product_attention` with the cuDNN flash kernel, GPU,
      bfloat16/float16) or "auto" (default: "cudnn" on GPU with a 16-bit compute dtype, "xla"
      elsewhere; on TPU the Pallas flash kernel is not offered until a TPU measures it
      against XLA). See `attention_kernel`. Decode steps always use the "xla" form over the
      cache buffers.
    attention_logits: the dtype of the "xla" attention's scores and softmax (and of every
      decode step's): "float32" (default) or "compute" (the compute dtype, bfloat16 on
      accelerators, as MaxText's dot-product attention by default). On TPU "compute" halves
      the memory traffic of the scores, the largest cost of long rows (docs/recipes.md).
    remat_policy: "none", "full" (recompute the whole block), "dots" (save matmul outputs,
      the attention scores included) or "dots_no_batch" (save the matmul outputs without a
      batch dimension: the weight projections, not the attention scores, whose memory grows
      with the sequence).
    scan_layers: True (default) runs the blocks as one compiled block looping over the
      stacked `layers` axis (`nn.scan`); False unrolls that loop (and a train step's loop
      over micro-batches) into the program: the same parameters and results, a program that
      grows with the layers. XLA's cost analysis counts a loop's body once, so only the
      unrolled program's FLOPs and cost-model time are the whole step's (`instruct_pt.aot`).
    init_std: standard deviation of the normal initialiser.
  """

  vocab_size: int
  embed_dim: int
  num_layers: int
  num_heads: int
  num_kv_heads: int
  head_dim: int
  mlp_dim: int
  max_seq_len: int = 2048
  rope_theta: float = 10000.0
  rope_scaling: Optional[RopeScaling] = None
  sliding_window: Optional[int] = None
  tie_embeddings: bool = False
  norm_eps: float = 1e-5
  param_dtype: str = "float32"
  dtype: str = "auto"
  attention_impl: str = "auto"
  attention_logits: str = "float32"
  remat_policy: str = "none"
  scan_layers: bool = True
  init_std: float = 0.02

  def __post_init__(self):
    for name in ("vocab_size", "embed_dim", "num_layers", "num_heads", "num_kv_heads",
                 "head_dim", "mlp_dim", "max_seq_len"):
      if getattr(self, name) <= 0:
        raise ValueError(f"ModelConfig.{name} must be positive, got {getattr(self, name)}")
    if self.num_heads % self.num_kv_heads:
      raise ValueError(f"ModelConfig.num_heads={self.num_heads} is not a multiple of "
                       f"num_kv_heads={self.num_kv_heads}")
    if self.attention_impl not in ATTENTION_IMPLS:
      raise ValueError(f"ModelConfig.attention_impl={self.attention_impl!r}; "
                       f"choose one of {ATTENTION_IMPLS}")
    if self.attention_logits not in ATTENTION_LOGITS:
      raise ValueError(f"ModelConfig.attention_logits={self.attention_logits!r}; "
                       f"choose one of {ATTENTION_LOGITS}")
    if self.remat_policy not in REMAT_POLICIES:
      raise ValueError(f"ModelConfig.remat_policy={self.remat_policy!r}; "
                       f"choose one of {REMAT_POLICIES}")
    if self.param_dtype not in DTYPES:
      raise ValueError(f"ModelConfig.param_dtype={self.param_dtype!r}; choose one of {DTYPES}")
    if self.dtype not in DTYPES + ("auto",):
      raise ValueError(f"ModelConfig.dtype={self.dtype!r}; choose one of {DTYPES + ('auto',)}")
    if self.sliding_window is not None and self.sliding_window <= 0:
      raise ValueError(f"ModelConfig.sliding_window must be positive or None, "
                       f"got {self.sliding_window}")

  def replace(self, **overrides) -> "ModelConfig":
    """Returns a copy with `overrides` applied (validated like the original)."""
    unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
    if unknown:
      raise ValueError(f"Unknown ModelConfig field(s): {sorted(unknown)}")
    return dataclasses.replace(self, **overrides)

  def to_json(self) -> str:
    """The config as JSON (`from_json` reads it back)."""
    return json.dumps(dataclasses.asdict(self), indent=2)

  @classmethod
  def from_json(cls, text: str) -> "ModelConfig":
    """The config written by `to_json`.

    Args:
      text: the JSON text.

    Raises:
      ValueError: not JSON, or not the fields of a ModelConfig.
    """
    fields = json.loads(text)
    if not isinstance(fields, dict):
      raise ValueError(f"expected a JSON object, got {type(fields).__name__}")
    unknown = set(fields) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
      raise ValueError(f"unknown ModelConfig field(s) {sorted(unknown)}")
    if fields.get("rope_scaling"):
      fields["rope_scaling"] = RopeScaling(**fields["rope_scaling"])
    return cls(**fields)

  @property
  def compute_dtype(self) -> str:
    """The matmul dtype: `dtype`, with "auto" resolved by the default JAX backend."""
    return self.for_backend(jax.default_backend()).dtype

  def for_backend(self, backend: str) -> "ModelConfig":
    """This config with its "auto" settings (`dtype`, `attention_impl`) resolved for a backend.

    Compiling for a TPU on a CPU host (`instruct_pt.aot`) needs the TPU's choices, not the
    host's.

    Args:
      backend: "cpu", "gpu" or "tpu" (`jax.default_backend()` names the running one).
    """
    resolved = {}
    if self.dtype == "auto":
      resolved["dtype"] = "float32" if backend == "cpu" else "bfloat16"
    if self.attention_impl == "auto":
      dtype = resolved.get("dtype", self.dtype)
      resolved["attention_impl"] = ("cudnn" if backend == "gpu" and dtype in ("bfloat16",
                                                                              "float16")
                                    else "xla")
    return self.replace(**resolved) if resolved else self

  @property
  def logits_dtype(self) -> str:
    """The dtype of attention scores: `attention_logits`, "compute" resolved."""
    return "float32" if self.attention_logits == "float32" else self.compute_dtype

  @property
  def attention_kernel(self) -> str:
    """The attention implementation: `attention_impl`, "auto" resolved by the default JAX
    backend."""
    return self.for_backend(jax.default_backend()).attention_impl

  def num_params(self, include_embeddings: bool = True) -> int:
    """Number of parameters of the model this config builds."""
    attn = self.embed_dim * self.head_dim * (2 * self.num_heads + 2 * self.num_kv_heads)
    mlp = 3 * self.embed_dim * self.mlp_dim
    per_layer = attn + mlp + 2 * self.embed_dim
    body = self.num_layers * per_layer + self.embed_dim
    if not include_embeddings:
      return body
    embeddings = self.vocab_size * self.embed_dim * (1 if self.tie_embeddings else 2)
    return body + embeddings

  def flops_per_token(self, seq_len: int) -> float:
    """Training FLOPs per token: 6 * (matmul params) + 12 * layers * heads * head_dim * seq_len.

    Forward (`forward_flops_per_token`) and backward (twice the forward): every weight matmul,
    including the output projection but not the embedding lookup, and the attention score and
    value products, which grow with the sequence (PaLM paper, appendix B). Causal masking is
    not subtracted, as in PaLM and MaxText.

    Args:
      seq_len: tokens per training row.
    """
    return 3.0 * self.forward_flops_per_token(seq_len)

  def forward_flops_per_token(self, context_len: int, output_head: bool = True) -> float:
    """Forward FLOPs per token: 2 * (matmul params) + 4 * layers * heads * head_dim * context.

    Args:
      context_len: keys each token's attention reads (the row or cache length).
      output_head: count the vocabulary projection (False for tokens whose logits are not
        computed, as a prefill skips them).
    """
    matmul_params = self.num_params(include_embeddings=False)
    if output_head:
      matmul_params += self.vocab_size * self.embed_dim
    attention = 4.0 * self.num_layers * self.num_heads * self.head_dim * context_len
    return 2.0 * matmul_params + attention


ATTENTION_IMPLS = ("auto", "xla", "dot_product", "cudnn")
ATTENTION_LOGITS = ("float32", "compute")
REMAT_POLICIES = ("none", "full", "dots", "dots_no_batch")
DTYPES = ("float32", "bfloat16", "float16")

_PRESETS = {
    # Unit tests and the CPU demo: byte-level vocabulary (259 ids) padded to 512.
    "tiny": ModelConfig(vocab_size=512, embed_dim=64, num_layers=2, num_heads=4,
                        num_kv_heads=2, head_dim=16, mlp_dim=192, max_seq_len=512,
                        tie_embeddings=True),
    # HuggingFaceTB/SmolLM2-135M-Instruct (config.json; also the bundled GGUF's metadata).
    "smollm2_135m": ModelConfig(vocab_size=49152, embed_dim=576, num_layers=30, num_heads=9,
                                num_kv_heads=3, head_dim=64, mlp_dim=1536, max_seq_len=8192,
                                rope_theta=100000.0, tie_embeddings=True),
    # InstructLM-500M (instruction-pretrain/InstructLM-500M, Mistral architecture): 16 layers,
    # d=1536, 24 heads, SiLU, 32K vocabulary as read from its config.json in third-party model-
    # card notes (docs/design.md s.4, [S3]). The MLP width is not in that source: 4096
    # (about 8/3 d, the Llama rule) gives 0.55B parameters, which HF rounds to the listed 0.6B.
    "instructlm_500m": ModelConfig(vocab_size=32000, embed_dim=1536, num_layers=16,
                                   num_heads=24, num_kv_heads=24, head_dim=64, mlp_dim=4096,
                                   max_seq_len=2048),
    # InstructLM-1.3B: the shape is not in any source we could read (docs/design.md s.4,
    # "UNVERIFIED"; paper Table 14). Its fp32 checkpoint is about 5.4 GB, i.e. 1.35B parameters;
    # a Mistral-style 24 x 2048 model with MLP 5632 and untied 32K embeddings has 1.36B.
    "instructlm_1_3b": ModelConfig(vocab_size=32000, embed_dim=2048, num_layers=24,
                                   num_heads=16, num_kv_heads=16, head_dim=128, mlp_dim=5632,
                                   max_seq_len=2048),
    # mistralai/Mistral-7B-v0.1 config.json: the paper's synthesizer base (docs/design.md s.1).
    "mistral_7b": ModelConfig(vocab_size=32000, embed_dim=4096, num_layers=32, num_heads=32,
                              num_kv_heads=8, head_dim=128, mlp_dim=14336, max_seq_len=32768,
                              rope_theta=10000.0, sliding_window=4096),
    # meta-llama/Meta-Llama-3-8B config.json: the paper's continual pre-training base.
    "llama3_8b": ModelConfig(vocab_size=128256, embed_dim=4096, num_layers=32, num_heads=32,
                             num_kv_heads=8, head_dim=128, mlp_dim=14336, max_seq_len=8192,
                             rope_theta=500000.0),
}


def preset_names() -> tuple[str, ...]:
  """Names accepted by `get_preset`."""
  return tuple(_PRESETS)


def get_preset(name: str, **overrides) -> ModelConfig:
  """Returns the named preset, with `overrides` applied.

  Args:
    name: one of `preset_names()`.
    **overrides: ModelConfig fields to change, e.g. `dtype="bfloat16"`.

  Raises:
    ValueError: for an unknown preset name or an unknown / invalid override.
  """
  if name not in _PRESETS:
    raise ValueError(f"Unknown model preset {name!r}; known presets: {', '.join(_PRESETS)}")
  config = _PRESETS[name]
  return config.replace(**overrides) if overrides else config
