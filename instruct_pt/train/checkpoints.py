"""Training checkpoints: the train state (and data state) as Orbax items under checkpoints/.

Each step directory holds the items of `run_dir.CHECKPOINT_ITEMS`: `params` (readable on its
own, exactly as imported `params/` are, by `run_dir.load`), `train_state` (the step, the
optimizer state and, for a run with one, the soft prompt) and, when the batches come from a
feed that keeps one (the SeqIO feed), `data`: each host's data iterator state, so a resumed
run continues the data stream without replaying it. Saves are asynchronous (the data state is written synchronously, at the step
it belongs to); a checkpoint exists once Orbax has finalised its step directory, so a killed
save leaves no half-written step behind.

A step directory that is finalised but cannot be read (a half-copied bucket, a bad disk) does
not stop a run: `restore_newest` warns, names the step and why, moves it aside to
`checkpoints/<step>.unreadable` (kept for inspection, never deleted) and resumes from the
newest readable step. When none is readable it stops with one error naming the directory.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Iterator, Optional

import jax
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils

from instruct_pt import run_dir
from instruct_pt.model import store
from instruct_pt.train.state import TrainState

# (start step, this host's saved data state or None) -> the batches from that step.
BatchesFrom = Callable[[int, Optional[epath.Path]], Iterator[Any]]


class _DataStateHandler(ocp.CheckpointHandler):
  """Saves the `data` item by calling the iterator's own `save_state`, one directory per host.

  The call is synchronous (Orbax runs handlers that are not asynchronous before `save`
  returns), so the state saved is the one after the checkpoint's step. Restoring reads the
  files directly (`Checkpoints.restore_newest`), so `restore` only names the directory.
  """

  def save(self, directory: epath.Path, args: "DataStateSave"):
    args.save_state(directory / run_dir.host_data_state(jax.process_index(),
                                                        jax.process_count()))

  def restore(self, directory: epath.Path, args: Any = None) -> epath.Path:
    del args
    return directory


@ocp.args.register_with_handler(_DataStateHandler, for_save=True, for_restore=True)
@dataclasses.dataclass
class DataStateSave(ocp.args.CheckpointArgs):
  """Orbax arguments of the data item: the iterator's `save_state(directory)` (None when
  Orbax asks for the item's restore arguments)."""

  save_state: Optional[Callable[[epath.Path], None]] = None


def _rest(state: TrainState) -> dict[str, Any]:
  """The train_state item of `state`: all but the parameters (no prompt entry without one)."""
  rest = {"step": state.step, "opt_state": state.opt_state}
  if state.prompt is not None:
    rest["prompt"] = state.prompt
  return rest


class Checkpoints:
  """The training checkpoints of one run.

  Args:
    run: the run directory.
    keep: how many checkpoints to keep (older ones are deleted after a save).
    async_save: save in a background thread while training goes on.
  """

  def __init__(self, run: run_dir.RunDir, keep: int, async_save: bool = True):
    self.run = run
    self.directory = run.checkpoints
    self._manager = ocp.CheckpointManager(
        self.directory, item_names=run_dir.CHECKPOINT_ITEMS,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep,
                                             enable_async_checkpointing=async_save,
                                             create=True))

  def latest_step(self) -> Optional[int]:
    """The newest finalised step, or None."""
    return self._manager.latest_step()

  def save(self, state: TrainState, batches: Any = None) -> None:
    """Saves `state` at its step (asynchronously when so configured).

    Args:
      state: the train state.
      batches: the batch iterator; when it has `save_state(directory)`, its state is saved
        too (synchronously).
    """
    items = {
        run_dir.PARAMS_ITEM: ocp.args.StandardSave(state.params),
        run_dir.TRAIN_STATE_ITEM: ocp.args.StandardSave(_rest(state))}
    if hasattr(batches, "save_state"):
      items[run_dir.DATA_ITEM] = DataStateSave(batches.save_state)
    self._manager.save(int(state.step), args=ocp.args.Composite(**items), force=True)

  def restore_newest(self, abstract: TrainState, batches_from: Optional[BatchesFrom] = None
                     ) -> tuple[Optional[TrainState], Optional[Iterator[Any]]]:
    """The newest readable checkpoint, restored into the shardings of `abstract`, and the
    batches from its step.

    Unreadable steps (the train state or this host's data state) are moved aside with a
    warning (see the module docstring). A checkpoint without a data state for this host (a
    feed that keeps none, or another number of hosts) resumes the batches by step.

    Args:
      abstract: `jax.ShapeDtypeStruct`s with shardings of the state (the target mesh).
      batches_from: makes the batches from a step and a saved data state; None for none.

    Returns:
      `(state, batches)`, or `(None, None)` when the run has no checkpoint yet.

    Raises:
      ValueError: checkpoints exist but none is readable; names the directory and each
        step's error.
    """
    def restore(step: int) -> tuple[TrainState, Optional[Iterator[Any]]]:
      restored = self._manager.restore(step, args=ocp.args.Composite(**{
          run_dir.PARAMS_ITEM: ocp.args.StandardRestore(abstract.params),
          run_dir.TRAIN_STATE_ITEM: ocp.args.StandardRestore(_rest(abstract))}))
      state = TrainState(params=restored[run_dir.PARAMS_ITEM],
                         **restored[run_dir.TRAIN_STATE_ITEM])
      if batches_from is None:
        return state, None
      data = self.run.data_state(step, jax.process_index(), jax.process_count())
      if not data.exists():
        if self.run.checkpoint_item(step, run_dir.DATA_ITEM).exists():
          logging.warning("checkpoint step %d has no data state for host %d of %d (saved with "
                          "another number of hosts): replaying the batches instead", step,
                          jax.process_index(), jax.process_count())
        data = None
      return state, batches_from(step, data)

    steps = sorted(self._manager.all_steps())
    if not steps:
      return None, None
    step, (state, batches) = store.restore_newest(steps, restore, str(self.directory),
                                                  on_unreadable=self._move_aside)
    logging.info("Resumed from %s at step %d", self.directory, step)
    return state, batches

  def _move_aside(self, step: int) -> None:
    """Renames an unreadable step directory so that it is kept but no longer a step."""
    source = self.run.checkpoint_step(step)
    target = self.directory / f"{step}.unreadable"
    if jax.process_index() == 0:
      if target.exists():
        target = self.directory / f"{step}.unreadable.{len(list(self.directory.iterdir()))}"
      source.rename(target)
      logging.warning("moved the unreadable checkpoint %s aside to %s", source, target)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"instruct_pt.checkpoints.move_aside.{step}")
    self._manager.reload()

  def wait_until_finished(self) -> None:
    """Blocks until pending asynchronous saves are written."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    """Finishes pending saves and releases the manager."""
    self._manager.wait_until_finished()
    self._manager.close()
