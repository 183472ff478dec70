"""Raw corpus readers.

For now: the embedded demo corpus, the paragraphs of CPython's own documentation
(`pydoc_data.topics`), which every Python installation ships, so the demo and the tests need
no download.
"""

from __future__ import annotations

import zlib

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
