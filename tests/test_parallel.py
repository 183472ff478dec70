"""Mesh construction, logical axis rules and sharded-vs-single-device equality."""

import re

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec

from instruct_pt import parallel
from instruct_pt.data import packing, sources, tokenizer as tokenizer_lib
from instruct_pt.model.config import get_preset
from instruct_pt.model.transformer import Decoder
from instruct_pt.train import loop, optim
from instruct_pt.train import state as state_lib
from trees import zip_leaves  # pylint: disable=wrong-import-position

RULES = parallel.LOGICAL_AXIS_RULES
LEARNING_RATE = 1e-2


def test_eight_forced_cpu_devices():
  """The suite runs with 8 CPU devices (conftest), which the sharding tests need."""
  assert jax.device_count() == 8


@pytest.mark.parametrize("shape, expected", [
    ((1, -1, 1), (1, 8, 1)),
    ((2, -1, 2), (2, 2, 2)),
    ((-1, 1, 1), (8, 1, 1)),
    ((2, 2, 2), (2, 2, 2)),
])
def test_resolve_mesh_shape_fills_minus_one(shape, expected):
  """-1 takes the devices the other axes leave."""
  assert parallel.resolve_mesh_shape(shape, 8) == expected


@pytest.mark.parametrize("shape, message", [
    ((3, -1, 1), "does not divide the 8 devices"),
    ((2, 2, 1), "needs 4 devices, but 8 are available"),
    ((-1, -1, 1), "at most one -1"),
    ((1, 8), "must have 3 entries"),
    ((0, 8, 1), "not positive"),
])
def test_bad_mesh_shapes_raise_clear_errors(shape, message):
  """A mesh that does not use exactly the available devices is refused, naming the shape."""
  with pytest.raises(ValueError, match=message):
    parallel.create_mesh(shape)


def test_logical_to_spec_maps_and_drops_non_dividing_axes():
  """Rules map names to axes; an axis that does not divide a dimension is dropped."""
  mesh = parallel.create_mesh((2, 2, 2))
  spec = parallel.logical_to_spec(("embed", "heads", "head_dim"), RULES, mesh, (64, 4, 16))
  assert spec == PartitionSpec("fsdp", "tensor", None)
  # 3 KV heads cannot be split over tensor=2: replicated on that dimension instead of failing.
  spec = parallel.logical_to_spec(("embed", "kv_heads", "head_dim"), RULES, mesh, (64, 3, 16))
  assert spec == PartitionSpec("fsdp", None, None)
  # The batch takes (data, fsdp); with 2 rows only data (the leading axis) remains.
  assert parallel.logical_to_spec(parallel.BATCH_AXES, RULES, mesh, (8, 16)) == PartitionSpec(
      ("data", "fsdp"), None)
  assert parallel.logical_to_spec(parallel.BATCH_AXES, RULES, mesh, (2, 16)) == PartitionSpec(
      "data", None)


def test_a_mesh_axis_is_used_once_per_array():
  """Two dimensions mapping to the same mesh axis: only the first gets it."""
  rules = (("a", "tensor"), ("b", "tensor"))
  assert parallel.logical_to_spec(("a", "b"), rules) == PartitionSpec("tensor", None)


def test_rule_overrides_replace_entries_and_reject_unknown_axes():
  """Overrides win over the defaults; an unknown mesh axis is an error naming it."""
  config = parallel.MeshConfig(rule_overrides=(("embed", None), ("extra", "data")))
  rules = dict(config.rules())
  assert rules["embed"] is None and rules["extra"] == "data" and rules["mlp"] == "tensor"
  with pytest.raises(ValueError, match="'model'"):
    parallel.MeshConfig(rule_overrides=(("embed", "model"),)).rules()


def test_check_batch_size_names_the_value():
  """A batch that does not split over the batch shards raises naming the parameter."""
  mesh = parallel.create_mesh((2, 2, 2))
  parallel.check_batch_size(8, mesh, RULES)
  with pytest.raises(ValueError, match=r"train.batch_size=6 is not divisible by the 4 batch"):
    parallel.check_batch_size(6, mesh, RULES, "train.batch_size")


def _tiny_batch(batch_size=8, seq_len=32):
  byte_vocab = tokenizer_lib.ByteTokenizer()
  docs = [byte_vocab.encode(t) for t in sources.demo_corpus()[:40]]
  rows = packing.pack_documents(docs, seq_len, byte_vocab.bos_id, byte_vocab.eos_id)
  return packing.StepIndexedBatches(rows, batch_size, seed=1)


def _loss_and_grads(mesh_shape):
  """Loss, grads and train-step metrics of the tiny model on a given mesh."""
  devices = jax.devices()[:int(np.prod(mesh_shape))]
  mesh = parallel.create_mesh(mesh_shape, devices)
  model = Decoder(get_preset("tiny"))
  tx, schedule = optim.make_optimizer(optim.OptimizerConfig(learning_rate=LEARNING_RATE), 10)
  state, shardings = state_lib.create_train_state(model, tx, jax.random.key(0), mesh, RULES)
  batch_sharding = parallel.batch_sharding(mesh, RULES)
  batch = parallel.host_local_to_global(_tiny_batch().batch(0), batch_sharding, 8)
  step = loop.make_train_step(model, tx, schedule, loop.TrainConfig(batch_size=8, seq_len=32))
  with parallel.sharding_context(mesh, RULES):
    loss_sum = lambda p: loop.batch_loss(model, p, batch, 0.0)[0]
    loss, grads = jax.jit(jax.value_and_grad(loss_sum))(state.params)
    new_state, metrics = jax.jit(step, in_shardings=(shardings, batch_sharding),
                                 out_shardings=(shardings, None))(state, batch)
  return jax.device_get((loss, grads, metrics)), new_state


def test_sharded_training_step_equals_single_device():
  """Loss, gradients and the train step's metrics on a (2,2,2) mesh equal one device's.

  Tolerance (float32; the sharded program reorders the reductions): losses and gradient
  norms within 1e-5 relative; every gradient element within 1e-5 x the largest magnitude of
  its tensor. (Updated parameters are not compared element-wise: Adam's first step is about
  lr * g / |g|, which turns a reordering difference in a near-zero gradient into a visible one.)
  """
  (loss_1, grads_1, metrics_1), _ = _loss_and_grads((1, 1, 1))
  (loss_8, grads_8, metrics_8), state_8 = _loss_and_grads((2, 2, 2))
  np.testing.assert_allclose(loss_8, loss_1, rtol=1e-5)
  for name, a, b in zip_leaves(grads_8, grads_1):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(b).max(), err_msg=name)
  for name in ("loss", "grad_norm"):
    np.testing.assert_allclose(metrics_8[name], metrics_1[name], rtol=1e-5)
  # The parameters really are distributed: the query kernel is split over fsdp and tensor.
  query = state_8.params["layers"]["attention"]["query"]["kernel"]
  assert query.sharding.spec == PartitionSpec(None, "fsdp", "tensor", None)
  assert query.addressable_shards[0].data.shape == (2, 32, 2, 16)


def test_host_local_to_global_assembles_the_global_batch():
  """Single process: the global array holds the host's rows, sharded over the batch axes."""
  mesh = parallel.create_mesh((2, 2, 2))
  sharding = parallel.batch_sharding(mesh, RULES)
  local = {"x": np.arange(8 * 4, dtype=np.int32).reshape(8, 4)}
  global_batch = parallel.host_local_to_global(local, sharding, 8)
  np.testing.assert_array_equal(np.asarray(global_batch["x"]), local["x"])
  assert global_batch["x"].addressable_shards[0].data.shape == (2, 4)


def test_rule_overrides_from_lm_eval_model_args():
  """lm-eval splits --model_args on commas, so rule overrides are written
  "name=axes;name=axes" with "+" joining axes: the written-out table is what
  MeshConfig.rule_overrides would hold, and the model's rule table has them merged in."""
  from lm_eval.utils import simple_parse_args_string  # pylint: disable=import-outside-toplevel
  from instruct_pt.evaluation.lm_eval_model import placement  # pylint: disable=import-outside-toplevel
  args = simple_parse_args_string("run_dir=x,mesh=1:1:1,"
                                  "rule_overrides=embed=None; heads=fsdp+tensor;mlp=tensor")
  overrides = parallel.parse_rule_overrides(args["rule_overrides"])
  assert overrides == (("embed", None), ("heads", ("fsdp", "tensor")), ("mlp", "tensor"))
  assert parallel.parse_rule_overrides("") == ()
  assert parallel.parse_rule_overrides((("embed", None),)) == (("embed", None),)
  mesh, rules = placement(args["mesh"], None, args["rule_overrides"])
  table = dict(rules)
  assert table["embed"] is None and table["heads"] == ("fsdp", "tensor")
  assert table["mlp"] == "tensor" and len(rules) == len(parallel.LOGICAL_AXIS_RULES)
  assert dict(mesh.shape) == {"data": 1, "fsdp": 1, "tensor": 1}


@pytest.mark.parametrize("value, named", [("embed", "'embed' is not name=axes"),
                                          ("=fsdp", "'=fsdp' is not name=axes"),
                                          ("embed=fsdq", "'fsdq'")])
def test_bad_rule_overrides_name_the_entry(value, named):
  """A malformed entry or an unknown mesh axis is one error naming the value and the entry."""
  with pytest.raises(ValueError, match=re.escape(named)) as error:
    parallel.parse_rule_overrides(value, "--rule_overrides")
  assert str(error.value).startswith(f"--rule_overrides={value!r}: ")


def test_lm_eval_model_takes_rules_or_overrides_not_both():
  """Both a whole table and changes to the default table is ambiguous: refused before any
  model loads (the run directory does not exist)."""
  from instruct_pt.evaluation.lm_eval_model import InstructPTLM  # pylint: disable=import-outside-toplevel
  with pytest.raises(ValueError, match="not both"):
    InstructPTLM("no/such/run", mesh="1:1:1", rules=parallel.LOGICAL_AXIS_RULES,
                 rule_overrides="embed=None")
