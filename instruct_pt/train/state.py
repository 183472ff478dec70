"""The train state: parameters, optimizer state and step, created directly in their shardings.

A state may also hold a soft prompt (`prompt`, `[p, embed]`, replicated), which the model reads
ahead of every row. Either the parameters or the prompt is trained (`trainable`); the optimizer
state is that part's alone, and the other part passes through unchanged.
"""

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


# What a train step can train: the model's parameters or the soft prompt.
TRAINABLE = ("params", "prompt")


@flax.struct.dataclass
class TrainState:
  """Everything a checkpoint holds: the step, parameters, optimizer state and soft prompt.

  Attributes:
    step: optimizer steps taken.
    params: the model's parameters.
    opt_state: the optimizer state of the trained part (`params` or `prompt`).
    prompt: float32 `[p, embed]` vectors ahead of every row, or None for no prompt.
  """
  step: jax.Array
  params: Any
  opt_state: Any
  prompt: Any = None


def check_trainable(trainable: str, has_prompt: bool) -> None:
  """Raises a ValueError unless `trainable` names a part a state with(out) a prompt has."""
  if trainable not in TRAINABLE:
    raise ValueError(f"trainable={trainable!r}; choose one of {TRAINABLE}")
  if trainable == "prompt" and not has_prompt:
    raise ValueError("trainable='prompt' needs a prompt to train")


def _state_initializer(model: Decoder, tx: optax.GradientTransformation,
                       trainable: str) -> Callable:
  """`(key, prompt) -> TrainState` with logically boxed parameters and optimizer moments."""
  def init(key, prompt):
    params = model.init(key, jnp.zeros((1, 8), jnp.int32))["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=tx.init(params if trainable == "params" else prompt),
                      prompt=prompt)
  return init


def create_train_state(model: Decoder, tx: optax.GradientTransformation, rng: jax.Array,
                       mesh: Mesh, rules: parallel.Rules, params: Optional[Any] = None,
                       prompt: Optional[jax.Array] = None,
                       trainable: str = "params") -> tuple[TrainState, Any]:
  """Initialises a train state directly in its shardings (no host copy of the model).

  Args:
    model: the decoder.
    tx: the optimizer of the trained part.
    rng: initialisation key (unused when `params` is given).
    mesh: the device mesh.
    rules: logical axis rules.
    params: parameters to start from (e.g. an imported checkpoint, already on the mesh);
      None initialises them randomly.
    prompt: the soft prompt `[p, embed]` to start from, or None for none.
    trainable: a `TRAINABLE` entry: what the optimizer state is for.

  Returns:
    `(state, state_shardings)`.
  """
  check_trainable(trainable, prompt is not None)
  init = _state_initializer(model, tx, trainable)
  shardings = parallel.tree_shardings(jax.eval_shape(init, rng, prompt), mesh, rules)
  if prompt is not None:  # from the host, or from a sharded embedding table: replicate it
    prompt = jax.device_put(prompt, shardings.prompt)
  if params is None:
    state = jax.jit(lambda key, p: nn.meta.unbox(init(key, p)), in_shardings=(
        None, shardings.prompt), out_shardings=shardings)(rng, prompt)
  else:
    from_params = lambda p, q: TrainState(  # pylint: disable=unnecessary-lambda-assignment
        step=jnp.zeros((), jnp.int32), params=p,
        opt_state=tx.init(p if trainable == "params" else q), prompt=q)
    state = jax.jit(from_params, in_shardings=(shardings.params, shardings.prompt),
                    out_shardings=shardings)(params, prompt)
  return state, shardings


def abstract_train_state(model: Decoder, tx: optax.GradientTransformation, mesh: Mesh,
                         rules: parallel.Rules, prompt_shape: Optional[tuple[int, int]] = None,
                         trainable: str = "params") -> Any:
  """Shapes, dtypes and shardings of the train state, for restoring a checkpoint onto `mesh`.

  Args:
    model: the decoder.
    tx: the optimizer of the trained part.
    mesh: the device mesh to restore onto (may differ from the one that saved).
    rules: logical axis rules.
    prompt_shape: `(p, embed)` of the state's soft prompt, or None for none.
    trainable: a `TRAINABLE` entry: what the optimizer state is for.
  """
  check_trainable(trainable, prompt_shape is not None)
  prompt = None if prompt_shape is None else jax.ShapeDtypeStruct(prompt_shape, jnp.float32)
  abstract = jax.eval_shape(_state_initializer(model, tx, trainable), jax.random.key(0), prompt)
  shardings = parallel.tree_shardings(abstract, mesh, rules)
  return jax.tree_util.tree_map(
      lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
      nn.meta.unbox(abstract), shardings)
