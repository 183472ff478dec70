"""Host batches for the training loop.

`text_feed` tokenizes and packs an in-memory corpus (the embedded demo corpus, a small file)
into step-indexed batches with plain numpy, so training needs no TensorFlow. SeqIO mixtures
feed the same features.
"""

from __future__ import annotations

from typing import Sequence

import jax

from instruct_pt.data.packing import StepIndexedBatches, pack_documents


def text_feed(texts: Sequence[str], vocab, seq_len: int, global_batch_size: int,
              seed: int = 0) -> StepIndexedBatches:
  """Packs `texts` into rows and serves this host's share of each step's batch.

  Args:
    texts: documents.
    vocab: a vocabulary with `encode`, `bos_id` and `eos_id`.
    seq_len: tokens per row.
    global_batch_size: rows per step over all hosts.
    seed: data order seed.
  """
  rows = pack_documents((vocab.encode(t) for t in texts), seq_len, vocab.bos_id, vocab.eos_id)
  return StepIndexedBatches(rows, global_batch_size, seed=seed,
                            process_index=jax.process_index(),
                            process_count=jax.process_count())
