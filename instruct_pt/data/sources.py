"""Raw corpus readers.

* `demo_corpus`: the embedded demo corpus, the paragraphs of CPython's own documentation
  (`pydoc_data.topics`), which every Python installation ships, so the demo and the tests need
  no download.
* `read_documents`: local text files (documents separated by blank lines) and JSONL files
  (one document per line, in a chosen field), by glob.
"""

from __future__ import annotations

import glob
import json
import zlib
from typing import Iterator

# Paragraphs shorter than this are mostly headings and code fragments.
_MIN_PARAGRAPH_CHARS = 64
# One paragraph in this many goes to the held-out split (by a stable hash of its text).
_HELD_OUT_ONE_IN = 20

DEMO_SPLITS = ("train", "held_out")


def demo_corpus(split: str = "train") -> list[str]:
  """Paragraphs of CPython's documentation topics, with a fixed train / held-out split.

  The split is decided by a CRC32 of each paragraph, so it does not move when the Python
  version adds or removes paragraphs elsewhere.

  Args:
    split: "train" (about 95%) or "held_out" (about 5%).

  Raises:
    ValueError: for an unknown split.
  """
  if split not in DEMO_SPLITS:
    raise ValueError(f"Unknown demo corpus split {split!r}; choose one of {DEMO_SPLITS}")
  from pydoc_data import topics  # pylint: disable=import-outside-toplevel

  paragraphs = []
  for key in sorted(topics.topics):
    for paragraph in topics.topics[key].split("\n\n"):
      paragraph = paragraph.strip()
      if len(paragraph) < _MIN_PARAGRAPH_CHARS:
        continue
      held_out = zlib.crc32(paragraph.encode("utf-8")) % _HELD_OUT_ONE_IN == 0
      if held_out == (split == "held_out"):
        paragraphs.append(paragraph)
  return paragraphs


def read_documents(pattern: str, text_field: str = "text") -> Iterator[str]:
  """Documents of the files matching `pattern`, in sorted file order.

  `.jsonl` files hold one JSON object per line with the text in `text_field`; any other file
  is UTF-8 text whose documents are separated by blank lines. `pattern` "demo" reads the
  demo corpus's training split.

  Args:
    pattern: a glob, a file path, or "demo".
    text_field: the JSONL field holding the text.

  Raises:
    FileNotFoundError: nothing matches `pattern`.
    ValueError: a line that is not UTF-8, not JSON, or lacks `text_field` (naming file and
      line).
  """
  if pattern == "demo":
    yield from demo_corpus("train")
    return
  paths = sorted(glob.glob(pattern))
  if not paths:
    raise FileNotFoundError(f"no file matches {pattern!r}")
  for path in paths:
    with open(path, "rb") as f:
      lines = f.read().split(b"\n")
    if path.endswith(".jsonl"):
      for number, raw in enumerate(lines, 1):
        if raw.strip():
          yield _jsonl_text(raw, text_field, path, number)
    else:
      document = []
      for number, raw in enumerate(lines, 1):
        line = _decode(raw, path, number)
        if line.strip():
          document.append(line)
        elif document:
          yield "\n".join(document)
          document = []
      if document:
        yield "\n".join(document)


def _decode(raw: bytes, path: str, number: int) -> str:
  try:
    return raw.decode("utf-8")
  except UnicodeDecodeError as e:
    raise ValueError(f"{path}:{number}: not UTF-8 ({e.reason} at byte {e.start})") from e


def _jsonl_text(raw: bytes, field: str, path: str, number: int) -> str:
  try:
    record = json.loads(_decode(raw, path, number))
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}:{number}: not a JSON line ({e.msg})") from e
  if not isinstance(record, dict) or not isinstance(record.get(field), str):
    raise ValueError(f"{path}:{number}: no string field {field!r}")
  return record[field]
