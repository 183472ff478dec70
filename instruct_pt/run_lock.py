"""One writer per run directory: a lock file naming the process that writes it.

`writer_lock(RunDir)` holds `RUN/writer.lock` (JSON: pid, host, start time) while a command
writes the directory, and removes it on exit. A second command on the same directory refuses
at once with one line naming the holder, instead of interleaving checkpoints and metrics.

* A lock left by a dead process of this host (kill -9, a crash) is taken over with a warning.
* A lock from another host is taken over with a warning too: a preempted TPU VM's successor
  has another name, and resuming must not need a person to delete the file. Two live jobs on
  two hosts writing one `gs://` directory are not detected.
* On a pod only process 0 takes the lock; the others write only what process 0 coordinates.
* Local directories are locked atomically (`O_EXCL`); on object stores (`gs://`) the check and
  the write are two requests.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import socket
from typing import Any, Iterator, Optional

import jax

from instruct_pt import run_dir

LOCK_FILE = "writer.lock"


def _holder() -> dict[str, Any]:
  return {"pid": os.getpid(), "host": socket.gethostname(),
          "since": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}


def _alive(pid: int) -> bool:
  """Whether a process of this host has that pid."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's process
    return True
  return True


def _read(path) -> Optional[dict[str, Any]]:
  try:
    return json.loads(path.read_text())
  except (FileNotFoundError, json.JSONDecodeError, ValueError):
    return None


def _take(path, holder: dict[str, Any]) -> bool:
  """Writes the lock if none exists (atomically on a local disk); False when one exists."""
  text = json.dumps(holder)
  if run_dir.is_remote(path):
    if path.exists():
      return False
    path.write_text(text)
    return True
  try:
    descriptor = os.open(os.fspath(path), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
  except FileExistsError:
    return False
  with os.fdopen(descriptor, "w") as f:
    f.write(text)
  return True


@contextlib.contextmanager
def writer_lock(directory: run_dir.RunDir) -> Iterator[None]:
  """Holds the run directory's writer lock for the `with` block.

  Args:
    directory: the (created) run directory.

  Raises:
    ValueError: a live process of this host holds it: "RUN is in use by pid N on host H since
      T".
  """
  if jax.process_index() != 0:
    yield
    return
  path = directory.path / LOCK_FILE
  holder = _holder()
  while not _take(path, holder):
    other = _read(path)
    if other is None:  # half-written or just removed: take it over
      path.unlink(missing_ok=True)
      continue
    same_host = other.get("host") == holder["host"]
    if same_host and other.get("pid") != holder["pid"] and _alive(int(other.get("pid", -1))):
      raise ValueError(f"{directory} is in use by pid {other['pid']} on host {other['host']} "
                       f"since {other.get('since', '?')} ({LOCK_FILE}); wait for it or stop it "
                       f"first")
    reason = "whose process is gone" if same_host else "from another host"
    logging.warning("%s: taking over the writer lock of pid %s on %s since %s (%s)", directory,
                    other.get("pid"), other.get("host"), other.get("since"), reason)
    path.unlink(missing_ok=True)
  try:
    yield
  finally:
    if _read(path) == holder:
      path.unlink(missing_ok=True)
