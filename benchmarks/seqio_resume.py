"""Resuming a SeqIO-fed run: from the saved data state, against replaying the batches.

  python benchmarks/seqio_resume.py --steps 10,10000

For each step k, the feed's iterator is advanced to k once and its state saved (what a
training checkpoint at step k holds); then two fresh pipelines are timed up to their first
batch: one restored from that state (`SeqIOFeed.iterate(k, state)`), one replaying k batches
inside tf.data (`SeqIOFeed.iterate(k)`, what resuming cost before data states were saved).
Both yield the same batch (checked). The last line holds both times at the largest step.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # pylint: disable=wrong-import-position

from instruct_pt.data import registry, seqio_feed, seqio_vocab  # pylint: disable=wrong-import-position
from instruct_pt.data import tokenizer as tokenizer_lib  # pylint: disable=wrong-import-position


def _first_batch_seconds(make_iterator) -> tuple[float, dict]:
  start = time.perf_counter()
  batch = next(make_iterator())
  return time.perf_counter() - start, batch


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--mixture", default="demo_instruct_pt")
  parser.add_argument("--steps", default="10,10000", help="comma-separated steps to resume at")
  parser.add_argument("--seq_len", type=int, default=128)
  parser.add_argument("--batch", type=int, default=8)
  args = parser.parse_args()
  steps = sorted(int(step) for step in args.steps.split(","))

  vocabulary = seqio_vocab.SeqIOVocabulary(tokenizer_lib.ByteTokenizer())
  registry.register(registry.DataConfig(), vocabulary)
  feed = seqio_feed.SeqIOFeed(args.mixture, vocabulary, args.seq_len, args.batch, seed=0)
  with tempfile.TemporaryDirectory() as scratch:
    batches, at = feed.iterate(), 0
    for step in steps:
      for _ in range(step - at):
        next(batches)
      at = step
      batches.save_state(os.path.join(scratch, str(step)))
    print(f"mixture={args.mixture} seq_len={args.seq_len} batch={args.batch}")
    print(f"{'step':>8} {'from state s':>13} {'replay s':>10}")
    for step in steps:
      state = os.path.join(scratch, str(step))
      restored_s, restored = _first_batch_seconds(lambda: feed.iterate(step, state))
      replayed_s, replayed = _first_batch_seconds(lambda: feed.iterate(step))
      for name, value in restored.items():
        np.testing.assert_array_equal(value, replayed[name], err_msg=f"step {step} {name}")
      print(f"{step:>8} {restored_s:>13.2f} {replayed_s:>10.2f}")
  print(f"resume at step {steps[-1]}: from the saved state {restored_s:.2f} s, replaying "
        f"{replayed_s:.2f} s (at step {steps[0]}: see the first row)")


if __name__ == "__main__":
  main()
