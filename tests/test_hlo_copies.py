"""The HLO copy census (benchmarks/hlo_copies.py): known answers on small programs, and the
generation engine's decode loop, which must copy no weights and no KV cache per step, on this
CPU and in the program compiled ahead of time for a TPU."""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))
import hlo_copies  # pylint: disable=wrong-import-position

from instruct_pt import parallel  # pylint: disable=wrong-import-position
from instruct_pt.model import store  # pylint: disable=wrong-import-position
from instruct_pt.model.config import get_preset  # pylint: disable=wrong-import-position
from instruct_pt.model.generate import Engine  # pylint: disable=wrong-import-position

RULES = parallel.LOGICAL_AXIS_RULES

# A decode-like loop nested in a call (as a nested jit can leave it): each step copies the
# carried [2, 3, 8, 4] float32 "cache" to a new layout (768 bytes) and slices 4 of the 16
# floats of a "weight" (16 bytes); it runs 5 times (known_trip_count). The entry copies the
# weight once (64 bytes).
_NESTED = """HloModule nested

%body (p: (s32[], f32[2,3,8,4], f32[16])) -> (s32[], f32[2,3,8,4], f32[16]) {
  %p = (s32[], f32[2,3,8,4], f32[16]) parameter(0)
  %i = s32[] get-tuple-element(%p), index=0
  %c = f32[2,3,8,4]{3,2,1,0} get-tuple-element(%p), index=1
  %w = f32[16]{0} get-tuple-element(%p), index=2
  %t = f32[2,3,8,4]{2,3,1,0} copy(%c)
  %s = f32[4]{0} slice(%w), slice={[0:4]}
  %one = s32[] constant(1)
  %n = s32[] add(%i, %one)
  ROOT %r = (s32[], f32[2,3,8,4], f32[16]) tuple(%n, %t, %w)
}

%cond (q: (s32[], f32[2,3,8,4], f32[16])) -> pred[] {
  %q = (s32[], f32[2,3,8,4], f32[16]) parameter(0)
  %j = s32[] get-tuple-element(%q), index=0
  %five = s32[] constant(5)
  ROOT %lt = pred[] compare(%j, %five), direction=LT
}

%inner (a: (s32[], f32[2,3,8,4], f32[16])) -> (s32[], f32[2,3,8,4], f32[16]) {
  %a = (s32[], f32[2,3,8,4], f32[16]) parameter(0)
  ROOT %loop = (s32[], f32[2,3,8,4], f32[16]) while(%a), condition=%cond, body=%body, backend_config={"known_trip_count":{"n":"5"}}
}

ENTRY %main (x: (s32[], f32[2,3,8,4], f32[16])) -> (s32[], f32[2,3,8,4], f32[16]) {
  %x = (s32[], f32[2,3,8,4], f32[16]) parameter(0)
  %w0 = f32[16]{0} get-tuple-element(%x), index=2
  %wc = f32[16]{0} copy(%w0)
  ROOT %called = (s32[], f32[2,3,8,4], f32[16]) call(%x), to_apply=%inner
}
"""


def test_census_finds_a_loop_nested_in_a_call_and_counts_layout_copies():
  """Known answer: per step the cache's layout copy (2*3*8*4*4 = 768 bytes) and the weight's
  slice (4*4 = 16 bytes); per call the entry's weight copy (64 bytes); one instruction each."""
  census = hlo_copies.slice_copies(_NESTED, weight_shapes=[(16,)], cache_shape=(2, 3, 8, 4))
  assert census["per_step"] == {"weights": 16, "cache": 768, "other": 0}
  assert census["per_call"] == {"weights": 64, "cache": 0, "other": 0}
  assert census["count"] == {"weights": 2, "cache": 1, "other": 0}


def test_census_of_a_loop_indexed_slice_inside_a_conditional():
  """A loop inside `lax.cond` slicing one [64, 64] float32 layer (16,384 bytes) out of a
  stacked weight with its loop index feeds a dot: XLA on CPU materialises the slice, and the
  census finds it although the loop is not in the entry computation."""
  stacked = jnp.ones((3, 64, 64))

  def program(weights, x, flag):
    def loop(x):
      def body(carry):
        i, x = carry
        return i + 1, jnp.tanh(x @ jax.lax.dynamic_index_in_dim(weights, i % 3, keepdims=False))
      return jax.lax.while_loop(lambda carry: carry[0] < 10, body, (0, x))[1]
    return jax.lax.cond(flag, loop, lambda x: x, x)

  text = jax.jit(program).lower(stacked, jnp.ones((4, 64)), True).compile().as_text()
  assert "conditional(" in text
  census = hlo_copies.slice_copies(text, [stacked.shape], cache_shape=(9, 9))
  assert census["per_step"]["weights"] == 64 * 64 * 4
  assert census["per_step"]["cache"] == 0


def _engine(config, mesh, params=None):
  params = params if params is not None else store.abstract_params(config, mesh, RULES)
  return params, Engine(config, params, mesh, RULES, eos_ids=[0], num_slots=4, max_len=256,
                        decode_chunk=8)


def test_decode_copies_no_weights_and_no_cache_per_step_on_cpu():
  """The engine's compiled decode loop (one block per layer over per-layer cache buffers
  updated in place, `split_layers` slices made before the loop) copies 0 bytes of weights
  and 0 of KV cache per step; the split copies the block weights once per call."""
  config = get_preset("tiny")
  mesh = parallel.create_mesh((1, 1, 1), jax.devices()[:1])
  params, engine = _engine(config, mesh)
  shapes = [x.shape for x in jax.tree_util.tree_leaves(params["layers"])]
  census = hlo_copies.slice_copies(engine.decode_program().as_text(), shapes,
                                   engine.cache_shape)
  assert census["per_step"]["weights"] == 0 and census["per_step"]["cache"] == 0, census
  block_bytes = sum(int(np.prod(s)) * 4 for s in shapes)  # float32 parameters
  assert census["per_call"]["weights"] == block_bytes
  assert census["per_call"]["cache"] == 0


def test_decode_copies_no_cache_per_step_in_the_tpu_program():
  """The same decode program compiled ahead of time for one TPU v5p chip (libtpu's compiler,
  bfloat16 compute): no cache-sized copy and no weight copy inside the decode loop."""
  from instruct_pt.aot import slices  # pylint: disable=import-outside-toplevel
  devices = slices.topology_devices(slices.parse_slice("v5p-8", 1))
  mesh = parallel.create_mesh((1, 1, 1), devices[:1])
  config = get_preset("tiny").for_backend("tpu")
  params, engine = _engine(config, mesh)
  shapes = [x.shape for x in jax.tree_util.tree_leaves(params["layers"])]
  census = hlo_copies.slice_copies(engine.lower_decode().compile().as_text(), shapes,
                                   engine.cache_shape)
  assert census["per_step"]["cache"] == 0 and census["per_step"]["weights"] == 0, census
