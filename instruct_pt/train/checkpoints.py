"""Training checkpoints: the train state as Orbax items under the run directory's checkpoints/.

Each step directory holds the items of `run_dir.CHECKPOINT_ITEMS`: `params` (readable on its
own, exactly as imported `params/` are, by `run_dir.load`) and `train_state` (the step and
the optimizer state). Saves are asynchronous; a checkpoint exists once Orbax has finalised
its step directory, so a killed save leaves no half-written step behind.

A step directory that is finalised but cannot be read (a half-copied bucket, a bad disk) does
not stop a run: `restore_newest` warns, names the step and why, moves it aside to
`checkpoints/<step>.unreadable` (kept for inspection, never deleted) and resumes from the
newest readable step. When none is readable it stops with one error naming the directory.
"""

from __future__ import annotations

import logging
from typing import Optional

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from instruct_pt import run_dir
from instruct_pt.model import store
from instruct_pt.train.state import TrainState


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

  def save(self, state: TrainState) -> None:
    """Saves `state` at its step (asynchronously when so configured)."""
    step = int(state.step)
    self._manager.save(step, args=ocp.args.Composite(**{
        run_dir.PARAMS_ITEM: ocp.args.StandardSave(state.params),
        run_dir.TRAIN_STATE_ITEM: ocp.args.StandardSave(
            {"step": state.step, "opt_state": state.opt_state})}), force=True)

  def restore_newest(self, abstract: TrainState) -> Optional[TrainState]:
    """The newest readable checkpoint, restored into the shardings of `abstract`.

    Unreadable steps are moved aside with a warning (see the module docstring).

    Args:
      abstract: `jax.ShapeDtypeStruct`s with shardings of the state (the target mesh).

    Returns:
      The restored state, or None when the run has no checkpoint yet.

    Raises:
      ValueError: checkpoints exist but none is readable; names the directory and each
        step's error.
    """
    def restore(step: int) -> TrainState:
      restored = self._manager.restore(step, args=ocp.args.Composite(**{
          run_dir.PARAMS_ITEM: ocp.args.StandardRestore(abstract.params),
          run_dir.TRAIN_STATE_ITEM: ocp.args.StandardRestore(
              {"step": abstract.step, "opt_state": abstract.opt_state})}))
      rest = restored[run_dir.TRAIN_STATE_ITEM]
      return TrainState(step=rest["step"], params=restored[run_dir.PARAMS_ITEM],
                        opt_state=rest["opt_state"])

    steps = sorted(self._manager.all_steps())
    if not steps:
      return None
    step, state = store.restore_newest(steps, restore, str(self.directory),
                                       on_unreadable=self._move_aside)
    logging.info("Resumed from %s at step %d", self.directory, step)
    return state

  def _move_aside(self, step: int) -> None:
    """Renames an unreadable step directory so that it is kept but no longer a step."""
    source = self.directory / str(step)
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

