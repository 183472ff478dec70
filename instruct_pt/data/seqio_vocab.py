"""Our tokenizers as `seqio.Vocabulary` objects (SeqIO's name for a tokenizer), for SeqIO tasks.

Imports TensorFlow and SeqIO at module level: only the data pipeline imports this module, so
the core (model, training, generation) still runs without them.

The TensorFlow ops call the wrapped tokenizer's Python `encode` / `decode` through
`tf.numpy_function`, so a SeqIO task tokenizes exactly as the numpy code (and Hugging Face)
does, whatever the tokenizer kind. SeqIO pads with id 0 whatever the tokenizer's own padding
id; packed features carry loss weights, so the padding id never reaches the loss.
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
# First: TensorFlow imported quietly, before SeqIO imports it.
from instruct_pt.data.tf_runtime import tf
import seqio  # pylint: disable=wrong-import-order

from instruct_pt.data.tokenizer import Tokenizer


class SeqIOVocabulary(seqio.Vocabulary):
  """Adapts an `instruct_pt.data.tokenizer.Tokenizer` to SeqIO.

  Args:
    tokenizer: the tokenizer to wrap.
  """

  def __init__(self, tokenizer: Tokenizer):
    super().__init__(extra_ids=0)
    self.tokenizer = tokenizer

  @property
  def _base_vocab_size(self) -> int:
    return self.tokenizer.vocab_size

  @property
  def eos_id(self) -> Optional[int]:
    return self.tokenizer.eos_id

  @property
  def bos_id(self) -> Optional[int]:
    return self.tokenizer.bos_id

  @property
  def unk_id(self) -> Optional[int]:
    return None

  def _encode(self, s: str) -> list[int]:
    return self.tokenizer.encode(s)

  def _decode(self, ids: Iterable[int]) -> str:
    return self.tokenizer.decode([int(i) for i in ids])

  def _encode_tf(self, s: tf.Tensor) -> tf.Tensor:
    def encode(text) -> np.ndarray:  # bytes in graph mode, a 0-d bytes array in eager mode
      text = text.item() if isinstance(text, np.ndarray) else text
      return np.asarray(self.tokenizer.encode(text.decode("utf-8")), np.int32)
    ids = tf.numpy_function(encode, [s], tf.int32, stateful=False)
    ids.set_shape([None])
    return ids

  def _decode_tf(self, ids: tf.Tensor) -> tf.Tensor:
    def decode(values: np.ndarray) -> np.ndarray:
      if values.ndim == 1:
        return np.asarray(self.tokenizer.decode(values.tolist()).encode("utf-8"), object)
      return np.asarray([self.tokenizer.decode(row.tolist()).encode("utf-8") for row in values],
                        object).reshape(values.shape[:-1])
    text = tf.numpy_function(decode, [ids], tf.string, stateful=False)
    text.set_shape(ids.shape[:-1])
    return text

  def __eq__(self, other) -> bool:
    return isinstance(other, SeqIOVocabulary) and other.tokenizer is self.tokenizer

  def __hash__(self) -> int:
    return id(self.tokenizer)
