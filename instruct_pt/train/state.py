"""The train state: parameters, optimizer state and step, created directly in their shardings."""

from __future__ import annotations

from typing import Any, Callable, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from instruct_pt import parallel
from instruct_pt.model.transformer import Decoder


@flax.struct.dataclass
class TrainState:
  """Everything a checkpoint holds: the step, parameters and optimizer state."""
  step: jax.Array
  params: Any
  opt_state: Any


def _dummy_tokens(batch_size: int, seq_len: int) -> jnp.ndarray:
  return jnp.zeros((batch_size, seq_len), jnp.int32)


def _state_initializer(model: Decoder, tx: optax.GradientTransformation) -> Callable:
  """`key -> TrainState` with logically boxed parameters and optimizer moments."""
  def init(key):
    params = model.init(key, _dummy_tokens(1, 8))["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))
  return init


def create_train_state(model: Decoder, tx: optax.GradientTransformation, rng: jax.Array,
                       mesh: Mesh, rules: parallel.Rules,
                       params: Optional[Any] = None) -> tuple[TrainState, Any]:
  """Initialises a train state directly in its shardings (no host copy of the model).

  Args:
    model: the decoder.
    tx: the optimizer.
    rng: initialisation key (unused when `params` is given).
    mesh: the device mesh.
    rules: logical axis rules.
    params: parameters to start from (e.g. an imported checkpoint, already on the mesh);
      None initialises them randomly.

  Returns:
    `(state, state_shardings)`.
  """
  init = _state_initializer(model, tx)
  shardings = parallel.tree_shardings(jax.eval_shape(init, rng), mesh, rules)
  if params is None:
    state = jax.jit(lambda key: nn.meta.unbox(init(key)), out_shardings=shardings)(rng)
  else:
    from_params = lambda p: TrainState(  # pylint: disable=unnecessary-lambda-assignment
        step=jnp.zeros((), jnp.int32), params=p, opt_state=tx.init(p))
    state = jax.jit(from_params, in_shardings=(shardings.params,),
                    out_shardings=shardings)(params)
  return state, shardings


def abstract_train_state(model: Decoder, tx: optax.GradientTransformation, mesh: Mesh,
                         rules: parallel.Rules) -> Any:
  """Shapes, dtypes and shardings of the train state, for restoring a checkpoint onto `mesh`.

  Args:
    model: the decoder.
    tx: the optimizer.
    mesh: the device mesh to restore onto (may differ from the one that saved).
    rules: logical axis rules.
  """
  abstract = jax.eval_shape(_state_initializer(model, tx), jax.random.key(0))
  shardings = parallel.tree_shardings(abstract, mesh, rules)
  return jax.tree_util.tree_map(
      lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
      nn.meta.unbox(abstract), shardings)
