"""The demo corpus: paragraphs of CPython's documentation topics, as one shipped snapshot.

Every Python ships its documentation topics in `pydoc_data.topics`, but their text differs
from release to release (3.11.2 and 3.11.7 already differ), so a split recomputed from the
running Python would put different paragraphs on each side on another machine, and held-out
evaluation files built on one Python would overlap the training split on another. The demo
therefore reads one snapshot, `snapshots/pydoc_topics.jsonl.gz`: one JSON line per paragraph,
`{"topic", "split", "text"}`, with its SHA-256 and the Python it came from in
`snapshots/pydoc_topics.json`. Training (`sources.demo_corpus("train")`) and the held-out
evaluation files (`instruct_pt.evaluation.tasks.demo`) both come from it, on every Python.

The split: paragraphs of at least `MIN_PARAGRAPH_CHARS` characters, one in `HELD_OUT_ONE_IN`
held out by a CRC32 of its text (so it does not move when paragraphs elsewhere change).
`build` rewrites the snapshot from the running Python's `pydoc_data`
(`python -m instruct_pt.evaluation.tasks --corpus_from_running_python`); the evaluation files
record the snapshot's digest, and `instruct_pt.evaluation.tasks.demo.check_snapshot` stops
the demo with one line when they were built from another one.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import platform
import random
import zlib
from typing import Any

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "snapshots")
SNAPSHOT_FILE = os.path.join(DATA_DIR, "pydoc_topics.jsonl.gz")
MANIFEST_FILE = os.path.join(DATA_DIR, "pydoc_topics.json")
SPLITS = ("train", "held_out")
# Paragraphs shorter than this are mostly headings and code fragments.
MIN_PARAGRAPH_CHARS = 64
# One paragraph in this many goes to the held-out split (by a CRC32 of its text).
HELD_OUT_ONE_IN = 20


def split_of(paragraph: str) -> str:
  """The split a paragraph belongs to: "held_out" for one in `HELD_OUT_ONE_IN` by CRC32.

  Args:
    paragraph: the paragraph's text, stripped.
  """
  return "held_out" if zlib.crc32(paragraph.encode("utf-8")) % HELD_OUT_ONE_IN == 0 else "train"


def paragraphs_of_running_python() -> list[dict[str, str]]:
  """The running Python's `pydoc_data` topics as snapshot records, in topic order."""
  from pydoc_data import topics  # pylint: disable=import-outside-toplevel

  records = []
  for topic in sorted(topics.topics):
    for paragraph in topics.topics[topic].split("\n\n"):
      paragraph = paragraph.strip()
      if len(paragraph) >= MIN_PARAGRAPH_CHARS:
        records.append({"topic": topic, "split": split_of(paragraph), "text": paragraph})
  return records


def build(directory: str = DATA_DIR) -> dict[str, Any]:
  """Writes the snapshot and its manifest from the running Python's `pydoc_data`.

  The gzip stream carries no time stamp, so the same Python gives byte-identical files.
  Both files are written beside their final names and renamed, so an interrupted build leaves
  the old snapshot whole.

  Args:
    directory: where to write `pydoc_topics.jsonl.gz` and `pydoc_topics.json`.

  Returns:
    The manifest.
  """
  records = paragraphs_of_running_python()
  text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
  buffer = io.BytesIO()
  with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as f:
    f.write(text)
  counts = {split: sum(r["split"] == split for r in records) for split in SPLITS}
  manifest = {"source": "pydoc_data.topics", "python": platform.python_version(),
              "sha256": hashlib.sha256(text).hexdigest(), "paragraphs": counts,
              "topics": len({r["topic"] for r in records}),
              "rebuild": "python -m instruct_pt.evaluation.tasks --corpus_from_running_python"}
  os.makedirs(directory, exist_ok=True)
  for name, data in ((os.path.basename(SNAPSHOT_FILE), buffer.getvalue()),
                     (os.path.basename(MANIFEST_FILE),
                      (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))):
    partial = os.path.join(directory, name + ".partial")
    with open(partial, "wb") as f:
      f.write(data)
    os.replace(partial, os.path.join(directory, name))
  _records.cache_clear()
  return manifest


def manifest() -> dict[str, Any]:
  """The shipped snapshot's manifest (`sha256`, `python`, paragraph counts)."""
  with open(MANIFEST_FILE, encoding="utf-8") as f:
    return json.load(f)


def digest() -> str:
  """SHA-256 of the snapshot's JSONL text (what the evaluation files record)."""
  return manifest()["sha256"]


@functools.lru_cache(maxsize=1)
def _records() -> tuple[dict[str, str], ...]:
  with gzip.open(SNAPSHOT_FILE, "rb") as f:
    text = f.read()
  expected = digest()
  actual = hashlib.sha256(text).hexdigest()
  if actual != expected:
    raise ValueError(f"{SNAPSHOT_FILE}: SHA-256 {actual[:12]}... is not the {expected[:12]}... "
                     f"of {MANIFEST_FILE}; the snapshot was edited or damaged (rebuild both with "
                     f"{manifest()['rebuild']})")
  return tuple(json.loads(line) for line in text.decode("utf-8").splitlines())


def topics(split: str = "train") -> list[tuple[str, str]]:
  """`(topic, paragraph)` of one split of the snapshot, in topic order.

  Args:
    split: "train" (about 95%) or "held_out" (about 5%).

  Raises:
    ValueError: an unknown split, or a snapshot whose digest is not its manifest's.
  """
  if split not in SPLITS:
    raise ValueError(f"Unknown demo corpus split {split!r}; choose one of {SPLITS}")
  return [(r["topic"], r["text"]) for r in _records() if r["split"] == split]


def sample_documents(count: int, seed: int) -> list[dict[str, str]]:
  """`count` training-split paragraphs of the corpus snapshot, round-robin across its topics:
  topics in a seeded order, each topic's paragraphs in a seeded order, one from each topic
  in turn until `count` (a topic that runs out drops out).

  Args:
    count: documents to draw.
    seed: the draw's seed.

  Returns:
    `{"id": "<topic>/<index in the topic>", "text"}` records, in the order drawn.

  Raises:
    ValueError: `count` is more than the split holds.
  """
  by_topic: dict[str, list[tuple[int, str]]] = {}
  for topic, paragraph in topics("train"):
    by_topic.setdefault(topic, []).append((len(by_topic.get(topic, [])), paragraph))
  total = sum(map(len, by_topic.values()))
  if not 0 < count <= total:
    raise ValueError(f"cannot sample {count} documents from the {total} of the training split")
  rng = random.Random(seed)
  queues = {}
  for topic in rng.sample(sorted(by_topic), len(by_topic)):
    queues[topic] = rng.sample(by_topic[topic], len(by_topic[topic]))
  drawn: list[dict[str, str]] = []
  while len(drawn) < count:
    for topic, queue in queues.items():
      if queue and len(drawn) < count:
        index, text = queue.pop()
        drawn.append({"id": f"{topic}/{index}", "text": text})
  return drawn
