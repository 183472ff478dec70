"""benchmarks/roofline.py: the generation time floor, against numbers worked out by hand.

The made-up model: 1 layer, 2 query heads, 1 key / value head, head_dim 4, 100 matmul
parameters, 1,000 weight bytes, 2-byte cache elements. So a cached token is
2 * 1 * 1 * 4 * 2 = 16 bytes and an attended (query, key) pair 4 * 1 * 2 * 4 = 32 FLOPs.
Prompts of 3 and 5 tokens (batch 2, 8 prompt tokens), 3 new tokens each (2 decode steps):

  prefill: FLOPs 2 * 100 * 8 + 32 * (3*4/2 + 5*6/2) = 1,600 + 32 * 21 = 2,272;
           bytes 1,000 + 16 * 8 = 1,128.
  step 0:  live tokens (3 + 1) + (5 + 1) = 10: FLOPs 2 * 100 * 2 + 32 * 10 = 720;
           bytes 1,000 + 16 * 10 = 1,160.
  step 1:  live tokens (3 + 2) + (5 + 2) = 12: FLOPs 400 + 32 * 12 = 784;
           bytes 1,000 + 16 * 12 = 1,192.
  decode totals: FLOPs 720 + 784 = 1,504; bytes 1,160 + 1,192 = 2,352.
"""

import os
import sys
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
import roofline  # pylint: disable=wrong-import-position

SHAPE = roofline.ModelShape(layers=1, heads=2, kv_heads=1, head_dim=4, matmul_params=100,
                            weight_bytes=1000, kv_itemsize=2)
PROMPTS = (3, 5)


def _floor(bandwidth, flops, new_tokens=3):
  return roofline.generation_floor(SHAPE, PROMPTS, new_tokens, bandwidth, flops)


def test_counts_bytes_and_flops():
  """The byte and FLOP totals of the module docstring, whatever the rates."""
  floor = _floor(1000.0, 1000.0)
  assert SHAPE.kv_bytes_per_token == 16 and SHAPE.attention_flops_per_pair == 32
  assert (floor["prefill_flops"], floor["prefill_bytes"]) == (2272, 1128)
  assert (floor["decode_flops"], floor["decode_bytes"], floor["decode_steps"]) == (1504, 2352, 2)


@pytest.mark.parametrize("bandwidth, flops, expected", [
    # 1,000 bytes/s, 1 MFLOP/s: every phase is its bytes / 1,000. Prefill max(2,272 / 1e6,
    # 1,128 / 1,000) = 1.128 s; steps 1.160 + 1.192 = 2.352 s (mean 1.176 s); total 3.48 s.
    (1000.0, 1e6, (1.128, 2.352, 1.176, 3.48)),
    # 1 GB/s, 1,000 FLOP/s: every phase is its FLOPs / 1,000. Prefill max(2.272 s, 1,128 /
    # 1e9 s) = 2.272 s; steps 0.720 + 0.784 = 1.504 s (mean 0.752 s); total 3.776 s.
    (1e9, 1000.0, (2.272, 1.504, 0.752, 3.776)),
], ids=["bandwidth_bound", "flop_bound"])
def test_one_bound_throughout(bandwidth, flops, expected):
  """Known answers when one ceiling binds every phase; 2 prompts x 3 tokens / total."""
  floor = _floor(bandwidth, flops)
  got = tuple(floor[k] for k in ("prefill_s", "decode_s", "decode_step_s", "total_s"))
  assert got == pytest.approx(expected)
  assert floor["tokens_per_s"] == pytest.approx(6 / expected[3])


def test_each_phase_takes_its_own_bound():
  """1,000 bytes/s and 1,000 FLOP/s: prefill is FLOP-bound (2.272 s > 1.128 s), each step
  bandwidth-bound (1.160 s > 0.720 s, 1.192 s > 0.784 s): total 2.272 + 2.352 = 4.624 s."""
  floor = _floor(1000.0, 1000.0)
  assert floor["prefill_s"] == pytest.approx(2.272)
  assert floor["decode_s"] == pytest.approx(2.352)
  assert floor["total_s"] == pytest.approx(4.624)


def test_one_new_token_is_the_prefill_alone():
  """new_tokens=1: no decode step; 2 tokens in the 1.128 s prefill (bandwidth-bound)."""
  floor = _floor(1000.0, 1e6, new_tokens=1)
  assert floor["decode_steps"] == 0 and floor["decode_s"] == 0 and floor["decode_step_s"] == 0
  assert floor["total_s"] == pytest.approx(1.128)
  assert floor["tokens_per_s"] == pytest.approx(2 / 1.128)
  with pytest.raises(ValueError):
    _floor(1000.0, 1e6, new_tokens=0)


def test_shape_from_a_config():
  """`from_config` reads the config's fields; its matmul parameters are those without
  embeddings (72) less the norm scales ((2 x 1 layer + 1) x width 4 = 12) plus the output
  projection (vocab 10 x width 4 = 40): 100."""
  config = SimpleNamespace(num_layers=1, num_heads=2, num_kv_heads=1, head_dim=4,
                           vocab_size=10, embed_dim=4,
                           num_params=lambda include_embeddings=True:
                           72 + 900 * include_embeddings)
  assert roofline.ModelShape.from_config(config, weight_bytes=1000) == SHAPE
  assert roofline.ModelShape.from_config(config, 4000, kv_itemsize=4).kv_bytes_per_token == 32
