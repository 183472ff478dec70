"""What a command may print on stderr: its log lines, its progress bars and its own messages."""

import re

_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) ")
_PROGRESS = re.compile(r"^[\w .-]+: +\d+%\|")


def foreign_lines(stderr: str) -> list[str]:
  """The lines of `stderr` that are none of ours: not a log line of the `instruct-pt` format,
  not a progress bar (tqdm's, redrawn with carriage returns), not an `instruct-pt ...` message.

  Args:
    stderr: a command's standard error.
  """
  return [line for line in stderr.splitlines()
          if line.strip() and not _LOG_LINE.match(line)
          and not _PROGRESS.match(line.split("\r")[-1] or line.lstrip("\r"))
          and not line.startswith("instruct-pt ")]
