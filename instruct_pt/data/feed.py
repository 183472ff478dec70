"""Host batches for the training loop: one interface over the numpy and the SeqIO feeds.

A `Feed` serves this host's share of each step's global batch, as numpy arrays with the five
packed decoder features of `instruct_pt.data.packing` (all int32), and resumes by step.

* `text_feed` tokenizes and packs an in-memory corpus (the embedded demo corpus, a small
  file) with plain numpy, so training needs no TensorFlow.
* `instruct_pt.data.seqio_feed.SeqIOFeed` reads SeqIO tasks and mixtures.

`make_feeds` picks one from a run's `DataConfig`.
"""

from __future__ import annotations

import logging
from typing import Iterator, Optional, Protocol, Sequence

import jax
import numpy as np
from etils import epath

from instruct_pt.data import sources
from instruct_pt.data.packing import StepIndexedBatches, pack_documents
from instruct_pt.data.registry import DataConfig

Batch = dict[str, np.ndarray]


class Feed(Protocol):
  """What the training loop reads batches from."""

  def iterate(self, start_step: int = 0, state: Optional[epath.Path] = None
              ) -> Iterator[Batch]:
    """This host's batches from step `start_step` on, forever.

    A feed whose iterators have `save_state(directory)` resumes from such a `state` in
    constant time; the numpy feed's batches are a function of the step, so it needs none.
    """

  def packing_efficiency(self) -> float:
    """Fraction of the packed slots that hold real tokens."""


def text_feed(texts: Sequence[str], tokenizer, seq_len: int, global_batch_size: int,
              seed: int = 0) -> StepIndexedBatches:
  """Packs `texts` into rows and serves this host's share of each step's batch.

  Args:
    texts: documents.
    tokenizer: a tokenizer with `encode`, `bos_id` and `eos_id`.
    seq_len: tokens per row.
    global_batch_size: rows per step over all hosts.
    seed: data order seed.
  """
  rows = pack_documents((tokenizer.encode(t) for t in texts), seq_len, tokenizer.bos_id,
                        tokenizer.eos_id)
  return StepIndexedBatches(rows, global_batch_size, seed=seed,
                            process_index=jax.process_index(),
                            process_count=jax.process_count())


def make_feeds(data: DataConfig, tokenizer, seq_len: int, global_batch_size: int,
               seed: int = 0, with_eval: bool = False) -> tuple[Feed, Optional[Feed]]:
  """The training feed of `data`, and its held-out feed when `with_eval` and there is one.

  Without `data.mixture`, the numpy feed over the embedded demo corpus's "train" and
  "held_out" splits; with one, SeqIO feeds over the mixture's "train" and "held_out" splits
  (imports SeqIO and TensorFlow).

  Args:
    data: what to train on.
    tokenizer: the model's tokenizer.
    seq_len: tokens per row.
    global_batch_size: rows per step over all hosts.
    seed: data order seed.
    with_eval: also build the held-out feed.

  Raises:
    ValueError: the mixture is not registered (naming the closest names), or a declaration
      in `data` is malformed.
  """
  if data.mixture is None:
    def demo(split: str) -> Feed:
      return text_feed(sources.demo_corpus(split), tokenizer, seq_len, global_batch_size, seed)
    return demo("train"), demo("held_out") if with_eval else None
  # pylint: disable=import-outside-toplevel
  from instruct_pt.data import registry, seqio_feed, seqio_vocab
  vocabulary = seqio_vocab.SeqIOVocabulary(tokenizer)
  registry.check_registered(data.mixture, registry.register(data, vocabulary), "data.mixture")

  def seqio(split: str) -> Feed:
    return seqio_feed.SeqIOFeed(data.mixture, vocabulary, seq_len, global_batch_size, seed=seed,
                                split=split)
  eval_feed = None
  if with_eval:
    try:
      eval_feed = seqio("held_out")
    except ValueError as e:
      logging.warning("no evaluation: %s has no held_out split (%s)", data.mixture, e)
  return seqio("train"), eval_feed
