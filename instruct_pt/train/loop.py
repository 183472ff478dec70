"""The training loop: jit train/eval steps, checkpoints, metrics, preemption.

One screen of logic (EasyLM's rule), split into functions a test can call on their own:

* the train state is created directly in its shardings (`instruct_pt.train.state`), and
  saved and restored by `instruct_pt.train.checkpoints`;
* `make_train_step` / `make_eval_step` build the jitted steps (gradient accumulation by
  `lax.scan` over micro-batches, masked cross-entropy with optional z-loss, buffer donation);
  a step differentiates only the trained part of the state (the parameters, or a soft prompt
  ahead of every row with the parameters frozen), so a frozen part gets no gradients at all;
* `train` runs the loop: resumes from the newest readable checkpoint, feeds step-indexed
  batches, logs metrics, saves asynchronously every N steps and on SIGTERM (preemption) or
  SIGINT (Ctrl-C), and
  stops with an error naming the step on a non-finite loss without saving the bad state.

The loop takes numpy batches with the packed decoder features of `instruct_pt.data.packing`
(the same names SeqIO's feature converter produces), so it runs without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import signal
import time
from typing import Any, Callable, Iterator, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax
from etils import epath
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from instruct_pt import parallel, run_dir
from instruct_pt import progress as progress_lib
from instruct_pt.data import packing
from instruct_pt.model import units as units_lib
from instruct_pt.model.config import ModelConfig
from instruct_pt.model.transformer import Decoder
from instruct_pt.train import metrics as metrics_lib
from instruct_pt.train.checkpoints import Checkpoints
from instruct_pt.train.optim import OptimizerConfig, make_optimizer, unit_update_mask
from instruct_pt.train.state import TrainState, abstract_train_state, create_train_state

Batch = dict[str, np.ndarray]
BatchSource = Union[Callable[..., Iterator[Batch]], Iterator[Batch]]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Run-level training settings.

  Attributes:
    num_steps: optimizer steps to train to (a resumed run continues up to this step).
    batch_size: global rows per optimizer step, over all hosts.
    seq_len: tokens per row.
    grad_accum_steps: micro-batches per step (the batch is split into this many).
    seed: seed of parameter initialisation and data order.
    z_loss: coefficient of the log(Z)^2 auxiliary loss (0 disables it).
    log_every: steps between metric records.
    eval_every: steps between held-out evaluations (0 disables them).
    eval_batches: batches per evaluation.
    checkpoint_every: steps between checkpoints (the last step is always saved).
    keep_checkpoints: number of checkpoints kept.
    async_checkpointing: save in a background thread while training goes on.
    trainable_units: a units file (`instruct-pt analyze-units`'s `units.json`): train only
      the parameter slices of its units, everything else frozen (`optim.unit_update_mask`).
      Applies where the model's parameters are trained (not to a soft-prompt stage).
    freeze_units: a units file: freeze its units' parameter slices and train the rest.
  """

  num_steps: int = 100
  batch_size: int = 8
  seq_len: int = 128
  grad_accum_steps: int = 1
  seed: int = 0
  z_loss: float = 0.0
  log_every: int = 10
  eval_every: int = 0
  eval_batches: int = 4
  checkpoint_every: int = 100
  keep_checkpoints: int = 3
  async_checkpointing: bool = True
  trainable_units: Optional[str] = None
  freeze_units: Optional[str] = None

  def __post_init__(self):
    if self.trainable_units and self.freeze_units:
      raise ValueError(f"train.trainable_units={self.trainable_units!r} and train.freeze_units="
                       f"{self.freeze_units!r}: give at most one")
    for name in ("num_steps", "batch_size", "seq_len", "grad_accum_steps", "log_every",
                 "checkpoint_every", "keep_checkpoints", "eval_batches"):
      if getattr(self, name) <= 0:
        raise ValueError(f"train.{name} must be positive, got {getattr(self, name)}")
    if self.batch_size % self.grad_accum_steps:
      raise ValueError(f"train.batch_size={self.batch_size} is not divisible by "
                       f"train.grad_accum_steps={self.grad_accum_steps}")


def weighted_cross_entropy(logits: jnp.ndarray, targets: jnp.ndarray, weights: jnp.ndarray,
                           z_loss: float = 0.0) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Sum of per-token cross-entropy (plus z-loss) times `weights`, and the sum of weights.

  Args:
    logits: float32 `[batch, length, vocab]`.
    targets: int `[batch, length]`.
    weights: `[batch, length]` per-token loss weights (0 masks a token out).
    z_loss: coefficient of `log(Z)^2`, which keeps the softmax normaliser near 1.
  """
  log_z = jax.nn.logsumexp(logits, axis=-1)
  target_logits = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  token_loss = log_z - target_logits
  if z_loss:
    token_loss = token_loss + z_loss * jnp.square(log_z)
  weights = weights.astype(jnp.float32)
  return jnp.sum(token_loss * weights), jnp.sum(weights)


def batch_loss(model: Decoder, params: Any, batch: Batch, z_loss: float = 0.0,
               prompt: Optional[jnp.ndarray] = None) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Weighted loss sum and weight sum of `model` on one batch of packed decoder features.

  Args:
    model: the decoder.
    params: its parameters.
    batch: `decoder_input_tokens`, `decoder_target_tokens`, `decoder_loss_weights`, and
      optionally `decoder_segment_ids` / `decoder_positions` for packed rows.
    z_loss: z-loss coefficient.
    prompt: a soft prompt `[p, embed]` ahead of every row (no loss on it), or None.
  """
  logits, _ = model.apply({"params": params}, batch["decoder_input_tokens"],
                          positions=batch.get("decoder_positions"),
                          segment_ids=batch.get("decoder_segment_ids"),
                          prefix_embeddings=prompt)
  return weighted_cross_entropy(logits, batch["decoder_target_tokens"],
                                batch["decoder_loss_weights"], z_loss)


def make_train_step(model: Decoder, tx: optax.GradientTransformation,
                    schedule: optax.Schedule, config: TrainConfig,
                    trainable: str = "params") -> Callable:
  """Builds `train_step(state, batch) -> (state, metrics)` (not yet jitted).

  The loss is the token-weighted mean over the whole (accumulated) batch, so gradient
  accumulation gives the same update as one big batch. Only the `trainable` part of the
  state is differentiated and updated; the other (with the prompt, if any) is a constant.

  Args:
    model: the decoder.
    tx: the optimizer of the trained part.
    schedule: learning-rate schedule (for the metric).
    config: training settings (`grad_accum_steps`, `z_loss`).
    trainable: "params" (the model) or "prompt" (the soft prompt, model frozen).
  """
  accum = config.grad_accum_steps

  def loss_and_grads(state, micro_batch):
    def loss_sum(value):
      params, prompt = ((value, state.prompt) if trainable == "params"
                        else (state.params, value))
      return batch_loss(model, params, micro_batch, config.z_loss, prompt)
    (total, weight), grads = jax.value_and_grad(loss_sum, has_aux=True)(
        getattr(state, trainable))
    return total, weight, grads

  def train_step(state: TrainState, batch: Batch):
    if accum == 1:
      total, weight, grads = loss_and_grads(state, batch)
    else:
      # Row r goes to micro-batch r % accum, so every data shard keeps its own rows.
      micro = jax.tree_util.tree_map(
          lambda x: x.reshape((x.shape[0] // accum, accum) + x.shape[1:]).swapaxes(0, 1), batch)

      def body(carry, micro_batch):
        total, weight, grads = loss_and_grads(state, micro_batch)
        return jax.tree_util.tree_map(jnp.add, carry, (total, weight, grads)), None

      zeros = (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32),
               jax.tree_util.tree_map(jnp.zeros_like, getattr(state, trainable)))
      unroll = 1 if model.config.scan_layers else accum  # unrolled programs unroll this too
      (total, weight, grads), _ = jax.lax.scan(body, zeros, micro, unroll=unroll)
    weight = jnp.maximum(weight, 1.0)
    grads = jax.tree_util.tree_map(lambda g: g / weight, grads)
    trained = getattr(state, trainable)
    updates, opt_state = tx.update(grads, state.opt_state, trained)
    metrics = {"loss": total / weight, "grad_norm": optax.tree.norm(grads),
               "learning_rate": schedule(state.step), "loss_tokens": weight}
    return state.replace(step=state.step + 1, opt_state=opt_state,
                         **{trainable: optax.apply_updates(trained, updates)}), metrics

  return train_step


def jit_train_step(model: Decoder, tx: optax.GradientTransformation, schedule: optax.Schedule,
                   config: TrainConfig, state_shardings: Any, batch_sharding: Any,
                   trainable: str = "params") -> Callable:
  """`make_train_step` jitted as `train` runs it: the state and batch in their shardings, the
  state donated. `instruct_pt.aot` lowers the same program from abstract arguments
  (`abstract_batch`, `state.abstract_train_state`). Trace it inside
  `parallel.sharding_context`.

  Args:
    model: the decoder.
    tx: the optimizer of the trained part.
    schedule: learning-rate schedule.
    config: training settings.
    state_shardings: the train state's shardings (a `TrainState` of them).
    batch_sharding: the sharding of every batch feature.
    trainable: "params" or "prompt".
  """
  return jax.jit(make_train_step(model, tx, schedule, config, trainable),
                 in_shardings=(state_shardings, batch_sharding),
                 out_shardings=(state_shardings, None), donate_argnums=(0,))


def abstract_batch(config: TrainConfig, sharding: Any) -> dict[str, jax.ShapeDtypeStruct]:
  """Shapes, dtypes and sharding of one global batch of packed decoder features.

  Args:
    config: training settings (`batch_size` rows of `seq_len` tokens).
    sharding: the batch sharding (`parallel.batch_sharding`).
  """
  shape = (config.batch_size, config.seq_len)
  return {name: jax.ShapeDtypeStruct(shape, jnp.int32, sharding=sharding)
          for name in packing.FEATURES}


def make_eval_step(model: Decoder) -> Callable:
  """Builds `eval_step(params, prompt, batch) -> (loss_sum, weight_sum)` (not yet jitted)."""
  def eval_step(params, prompt, batch):
    return batch_loss(model, params, batch, 0.0, prompt)
  return eval_step


class _Preemption:
  """Tells the loop when to save and stop: the job is being preempted, or interrupted.

  Single process: a SIGTERM or SIGINT (Ctrl-C) handler sets a flag that the loop reads at the
  next step boundary, where it saves a checkpoint and stops; a second Ctrl-C aborts at once.
  Several processes (pods): every host must stop at the same step, so only JAX's preemption
  sync point (driven by the distributed runtime's own SIGTERM notifier, which a Python handler
  would replace) decides.

  Attributes:
    requested: a signal asked the loop to stop.
    cause: the name of that signal ("SIGTERM", "SIGINT"); "SIGTERM" on pods.
  """

  _SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.requested = False
    self.cause = "SIGTERM"
    self._previous = {}
    self._multi_process = jax.process_count() > 1

  def __enter__(self):
    if not self._multi_process:
      try:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self._SIGNALS}
      except ValueError:  # not the main thread: no signal handling
        self._previous = {}
    return self

  def _handle(self, signum, frame):
    del frame
    if signum == signal.SIGINT and self.requested:
      signal.signal(signal.SIGINT, self._previous.get(signal.SIGINT, signal.default_int_handler))
      raise KeyboardInterrupt("interrupted twice: stopping without a checkpoint")
    self.cause = signal.Signals(signum).name
    if signum == signal.SIGINT:
      logging.warning("Interrupted (Ctrl-C): saving a checkpoint at the next step boundary; "
                      "press Ctrl-C again to stop at once, without it")
    else:
      logging.warning("SIGTERM received: saving a checkpoint at the next step boundary")
    self.requested = True

  def reached(self, step: int) -> bool:
    if self._multi_process:
      return multihost_utils.reached_preemption_sync_point(step)
    return self.requested

  def __exit__(self, *exc):
    for sig, previous in self._previous.items():
      signal.signal(sig, previous)


@dataclasses.dataclass
class TrainResult:
  """What `train` returns.

  Attributes:
    step: the step the run stopped at.
    losses: training loss of every step this invocation ran, by step.
    preempted: True when the run stopped early on a signal after saving.
    state: the train state the run stopped with (on the mesh).
    stop_signal: the signal that stopped it ("SIGTERM": preemption; "SIGINT": Ctrl-C), or
      None.
    eval_losses: held-out loss of every evaluation this invocation ran, by step.
    tokens: tokens this invocation trained on (padding included).
    seconds: this invocation's wall time in the training loop, compilation included.
  """
  step: int
  losses: dict[int, float]
  preempted: bool = False
  state: Optional[TrainState] = None
  stop_signal: Optional[str] = None
  eval_losses: dict[int, float] = dataclasses.field(default_factory=dict)
  tokens: int = 0
  seconds: float = 0.0


class NonFiniteLossError(FloatingPointError):
  """The training loss became NaN or infinite."""


def _evaluate(eval_step: Callable, state: TrainState, batches: Iterator[Any]) -> float:
  """Token-weighted mean loss of the state's parameters (and prompt) over `batches`."""
  total, weight = 0.0, 0.0
  for batch in batches:
    batch_total, batch_weight = jax.device_get(eval_step(state.params, state.prompt, batch))
    total, weight = total + float(batch_total), weight + float(batch_weight)
  return total / max(weight, 1.0)


def _batches_from(source: BatchSource, start_step: int,
                  data_state: Optional[epath.Path]) -> Iterator[Batch]:
  """The batches of `source` from `start_step`, restored from `data_state` when there is one."""
  if callable(source):
    return source(start_step) if data_state is None else source(start_step, data_state)
  for _ in range(start_step):  # a plain iterator: skip the batches already trained on
    next(source)
  return source


def units_update_mask(config: TrainConfig, model_config: ModelConfig,
                      trainable: str = "params") -> Optional[Callable]:
  """The optimizer's update mask of `train.trainable_units` / `train.freeze_units`, or None.

  Args:
    config: run-level settings.
    model_config: the model the units file must fit.
    trainable: what the run trains; a soft prompt ("prompt") takes no unit mask.

  Raises:
    FileNotFoundError / ValueError: a missing units file, or one of another model's shape.
  """
  path = config.trainable_units or config.freeze_units
  if not path or trainable != "params":
    return None
  chosen = units_lib.read(path, model_config)
  return unit_update_mask(chosen.kind, chosen.selected(), freeze=bool(config.freeze_units))


def train(model_config: ModelConfig, optimizer_config: OptimizerConfig, config: TrainConfig,
          mesh: Mesh, rules: parallel.Rules, run: run_dir.PathLike, train_batches: BatchSource,
          eval_batches: Optional[Callable[[], Iterator[Batch]]] = None,
          init_params: Optional[Callable[[], Any]] = None,
          prompt_length: int = 0, init_prompt: Optional[Callable[[Any], Any]] = None,
          trainable: str = "params", show_progress: bool = True) -> TrainResult:
  """Trains (or resumes training) up to `config.num_steps`.

  With a soft prompt (`prompt_length` > 0), the model reads it ahead of every row, and either
  the parameters or the prompt is trained (`trainable`); the checkpoints hold both.

  Args:
    model_config: the model.
    optimizer_config: the optimizer.
    config: run-level settings.
    mesh: the device mesh.
    rules: logical axis rules.
    run: the run directory (a `run_dir.RunDir` or its path): checkpoints, metrics and
      TensorBoard files go there.
    train_batches: host-local numpy batches: a function from the start step (and, when a
      checkpoint holds one, the directory of the data state its iterator saved) to an
      iterator (`Feed.iterate`: resumes without replaying data), or a plain iterator. An
      iterator with `save_state(directory)` has its state saved with each checkpoint.
    eval_batches: a function returning an iterator of held-out batches, or None.
    init_params: a function returning the parameters (on the mesh) a fresh run starts from,
      e.g. an imported checkpoint for continual pre-training; not called when resuming.
    prompt_length: vectors of the soft prompt; 0 trains without one.
    init_prompt: with a prompt, a function from the starting parameters (what `init_params`
      returned, None without it) to the prompt `[prompt_length, embed]` a fresh run starts
      from; not called when resuming.
    trainable: "params" or "prompt" (the model frozen: it gets no gradients).
    show_progress: show a tqdm progress bar on process 0.

  Returns:
    A `TrainResult`.

  Raises:
    NonFiniteLossError: the loss became NaN/inf; names the step and the last good checkpoint.
    ValueError: the batch does not divide over the mesh.
  """
  parallel.check_batch_size(config.batch_size, mesh, rules, "train.batch_size")
  parallel.check_batch_size(config.batch_size // config.grad_accum_steps, mesh, rules,
                            "train.batch_size / train.grad_accum_steps")
  model = Decoder(model_config)
  tx, schedule = make_optimizer(optimizer_config, config.num_steps,
                                units_update_mask(config, model_config, trainable))
  run = run_dir.RunDir(run)
  checkpoints = Checkpoints(run, config.keep_checkpoints, config.async_checkpointing)
  prompt_shape = (prompt_length, model_config.embed_dim) if prompt_length else None
  abstract = abstract_train_state(model, tx, mesh, rules, prompt_shape, trainable)
  state, batches = checkpoints.restore_newest(
      abstract, lambda step, data: _batches_from(train_batches, step, data))
  if state is None:
    params = init_params() if init_params else None
    prompt = init_prompt(params) if prompt_shape else None
    if prompt is not None and tuple(prompt.shape) != prompt_shape:
      raise ValueError(f"the soft prompt has shape {tuple(prompt.shape)}; expected "
                       f"{prompt_shape} (prompt_length, the model's embed_dim)")
    state, shardings = create_train_state(model, tx, jax.random.key(config.seed), mesh, rules,
                                          params, prompt, trainable)
    batches = _batches_from(train_batches, 0, None)
  else:
    shardings = jax.tree_util.tree_map(lambda s: s.sharding, abstract)
  start_step = int(state.step)

  batch_sharding = parallel.batch_sharding(mesh, rules)
  with parallel.sharding_context(mesh, rules):
    train_step = jit_train_step(model, tx, schedule, config, shardings, batch_sharding,
                                trainable)
    eval_step = jax.jit(make_eval_step(model), in_shardings=(shardings.params,
                                                             shardings.prompt, batch_sharding))

  writer = metrics_lib.MetricsWriter(run.metrics, run.tensorboard, start_step)
  flops_per_token = model_config.flops_per_token(config.seq_len)
  peak = metrics_lib.device_peak_flops(mesh.devices.flat[0])
  tokens_per_step = config.batch_size * config.seq_len
  losses: dict[int, float] = {}
  pending: list[tuple[int, Any]] = []  # (step, device loss) not yet checked for finiteness

  def check_pending() -> None:
    values = jax.device_get([loss for _, loss in pending])
    for (step, _), value in zip(pending, values):
      losses[step] = float(value)
      if not math.isfinite(value):
        checkpoints.wait_until_finished()
        raise NonFiniteLossError(
            f"loss is {value} at step {step}; training stopped. The last good checkpoint is "
            f"step {checkpoints.latest_step()} in {checkpoints.directory}")
    pending.clear()

  def save(current: TrainState) -> None:
    check_pending()  # never save a state that already produced a non-finite loss
    checkpoints.save(current, batches)

  progress = None
  if show_progress and jax.process_index() == 0:
    progress = progress_lib.bar(total=config.num_steps, initial=start_step, desc="train",
                                unit="step")

  preempted, stop_signal, eval_losses = False, None, {}
  loop_start = window_start = time.perf_counter()
  window_steps = 0
  step = start_step
  try:
    with _Preemption() as preemption, parallel.sharding_context(mesh, rules):
      while step < config.num_steps:
        batch = parallel.host_local_to_global(next(batches), batch_sharding, config.batch_size)
        state, step_metrics = train_step(state, batch)
        step += 1
        pending.append((step, step_metrics["loss"]))
        if step == start_step + 1:  # exclude compilation from the throughput window
          jax.block_until_ready(step_metrics)
          window_start, window_steps = time.perf_counter(), 0
          if progress is not None:  # and from the progress bar's rate and ETA
            progress.update(1)
            progress_lib.restart_clock(progress)
        else:
          window_steps += 1
          if progress is not None:
            progress.update(1)

        if step % config.log_every == 0 or step == config.num_steps:
          check_pending()
          elapsed = time.perf_counter() - window_start
          tokens_per_second = tokens_per_step * window_steps / elapsed if window_steps else 0.0
          record = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
          record.update(tokens_per_second=tokens_per_second,
                        mfu=metrics_lib.mfu(tokens_per_second, flops_per_token, mesh.size, peak))
          writer.write(step, record)
          if progress is not None:
            progress.set_postfix(loss=f"{record['loss']:.4f}", tok_s=f"{tokens_per_second:.0f}")
          window_start, window_steps = time.perf_counter(), 0

        if eval_batches is not None and config.eval_every and step % config.eval_every == 0:
          eval_start = time.perf_counter()
          batches_for_eval = (parallel.host_local_to_global(b, batch_sharding, config.batch_size)
                              for _, b in zip(range(config.eval_batches), eval_batches()))
          eval_losses[step] = _evaluate(eval_step, state, batches_for_eval)
          writer.write(step, {"eval_loss": eval_losses[step]})
          window_start += time.perf_counter() - eval_start  # keep eval out of tokens/s

        preempt_now = preemption.reached(step)
        if step % config.checkpoint_every == 0 or step == config.num_steps or preempt_now:
          save(state)
        if preempt_now and step < config.num_steps:
          preempted, stop_signal = True, preemption.cause
          logging.warning("Stopped on %s: checkpoint saved at step %d", stop_signal, step)
          break
    check_pending()
  finally:
    checkpoints.close()
    writer.close()
    if progress is not None:
      progress.close()
  return TrainResult(step=step, losses=losses, preempted=preempted, state=state,
                     stop_signal=stop_signal, eval_losses=eval_losses,
                     tokens=tokens_per_step * (step - start_step),
                     seconds=time.perf_counter() - loop_start)
