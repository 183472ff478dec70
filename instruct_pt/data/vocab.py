"""Vocabularies usable by plain numpy code (no TensorFlow needed).

`ByteVocabulary` maps UTF-8 bytes to ids; it needs no training and no files, so from-scratch
runs on the embedded corpus work anywhere. Ids 0, 1 and 2 are PAD, BOS and EOS.
"""

from __future__ import annotations

from typing import Sequence


class ByteVocabulary:
  """UTF-8 byte-level vocabulary: id = byte + 3, after PAD=0, BOS=1, EOS=2."""

  pad_id = 0
  bos_id = 1
  eos_id = 2
  _offset = 3

  @property
  def vocab_size(self) -> int:
    """Number of ids the vocabulary can produce (259)."""
    return 256 + self._offset

  def encode(self, text: str) -> list[int]:
    """Token ids of `text` (no BOS / EOS added)."""
    return [b + self._offset for b in text.encode("utf-8")]

  def decode(self, ids: Sequence[int]) -> str:
    """Text of `ids`; special and out-of-range ids are skipped, bad UTF-8 replaced."""
    data = bytes(i - self._offset for i in ids if self._offset <= i < self.vocab_size)
    return data.decode("utf-8", errors="replace")
