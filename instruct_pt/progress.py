"""Progress that reads well wherever the output goes: bars, and the stages of a long job.

On a terminal (and in a notebook) `bar` is tqdm's own bar, redrawn in place; `restart_clock`
starts its rate and ETA afresh (after a first step that compiled, which would weigh on
them). When standard error is a file or a pipe (a batch job's log, `nohup`, CI), redrawn
frames would pile up as one line of carriage returns: there each update is a line of its
own, written at most every `LOG_INTERVAL_S` seconds, and the last one when the bar closes.
`Stages` runs a resumable job's stages, skipping finished ones and timing the others.
"""

from __future__ import annotations

import io
import json
import sys
import time
from typing import Any, Callable, TextIO

from etils import epath

# Seconds between two progress lines when standard error is not a terminal.
LOG_INTERVAL_S = 30.0


class _Lines(io.TextIOBase):
  """Writes each frame tqdm draws as one line (its carriage returns and padding dropped)."""

  def __init__(self, stream: TextIO):
    super().__init__()
    self._stream = stream

  def write(self, text: str) -> int:
    frame = text.replace("\r", "").rstrip()
    if frame:
      self._stream.write(frame + "\n")
      self._stream.flush()
    return len(text)

  def flush(self) -> None:
    self._stream.flush()


def bar(**kwargs: Any):
  """A tqdm progress bar (tqdm's arguments), as lines when standard error is not a terminal.

  Args:
    **kwargs: tqdm's arguments (`total`, `desc`, `unit`, `disable`, ...).
  """
  from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
  in_notebook = "ipykernel" in sys.modules
  if "file" not in kwargs and not in_notebook and not sys.stderr.isatty():
    kwargs.update(file=_Lines(sys.stderr), dynamic_ncols=False, ncols=100)
    kwargs.setdefault("mininterval", LOG_INTERVAL_S)
  return tqdm(**kwargs)


def restart_clock(progress_bar) -> None:
  """Starts the bar's rate, elapsed time and ETA afresh from now, keeping its count.

  Args:
    progress_bar: a bar of `bar`.
  """
  count = progress_bar.n
  progress_bar.reset(total=progress_bar.total)
  progress_bar.initial = progress_bar.n = progress_bar.last_print_n = count
  progress_bar.refresh()


class Stages:
  """Runs the stages of a resumable job that are not done yet, timing each into a JSON file.

  `stages(name, done, work)` prints the stage's number and name, then calls `work()` unless
  `done()`; the seconds add up over re-runs (an interrupted stage counts both parts).

  Args:
    timings: the JSON file of seconds per stage (read if it exists, rewritten after each).
    count: how many stages there are (for the progress lines).
    job: the job's name, which starts each line ("[demo 3/8] synthesize").
  """

  def __init__(self, timings: Any, count: int, job: str):
    self.path, self.count, self.job, self.number = epath.Path(timings), count, job, 0
    self.timings: dict[str, float] = (json.loads(self.path.read_text()) if self.path.exists()
                                      else {})

  def __call__(self, name: str, done: Callable[[], bool], work: Callable[[], Any]) -> None:
    self.number += 1
    if done():
      print(f"[{self.job} {self.number}/{self.count}] {name}: done earlier", flush=True)
      return
    print(f"[{self.job} {self.number}/{self.count}] {name}", flush=True)
    start = time.perf_counter()
    work()
    self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
    self.path.write_text(json.dumps(self.timings, indent=2))
