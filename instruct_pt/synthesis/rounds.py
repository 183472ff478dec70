"""Multi-round ("M-shot") synthesis: which documents go in which round, and each prompt.

As in the official script (`get_dataset` / `run`), N documents are converted in M rounds of
`B = ceil(N / M)`: round r takes the r-th slice of B documents, and document i of round r
continues the chain of document i of round r - 1. A chain holds the `(text, pairs)` blocks of
the earlier rounds; the prompt is those blocks in training format, then `<s>` and the new text
(`formats.prompt_pieces`), and the synthesizer continues it with pairs. A chain restarts after
a round whose output yielded no pairs (`advance`).

The official length check measures the *whole candidate prompt* (the earlier blocks, their
pairs, `<s>` / `</s>` and the new text) as `len(prompt.split(" ")) * 1.5`, a word count, and
when that exceeds `max_model_len - max_new_tokens` drops *all* earlier context (the chain is
cut: the new text is prompted alone). Differences here, all about the prompt length:

* The budget `max_len - max_new_tokens` is counted in real tokens of the prompt, so no prompt
  overflows the cache (a word count underestimates code and non-English text).
* In the paper-faithful mode (`keep_partial_history=False`) a chain that does not fit is
  dropped whole, as officially; our filtered mode drops its oldest blocks first, so a prompt
  keeps as much earlier context as fits.
* A text too long even alone is cut (from its end) until its prompt fits, and counted in
  `RoundBuilder.texts_truncated`; the official code never truncates (its over-long prompts
  overflow the model's length). The chain keeps the full text (the pairs come from its start,
  and the pre-training document should hold all of it); a later round drops that block, since
  it cannot fit.

Prompts are tokenized by `formats.encode`, as the synthesizer's training examples are.
"""

from __future__ import annotations

import math
from typing import Sequence

from instruct_pt.data import formats
from instruct_pt.data import tokenizer as tokenizer_lib

# Earlier `(text, pairs)` blocks, oldest first.
Chain = list[tuple[str, list[formats.QAPair]]]


def plan_rounds(doc_ids: Sequence[str], num_rounds: int) -> list[list[int]]:
  """The official split of documents into rounds: consecutive slices of `ceil(N / M)`.

  Position i of round r continues the chain of position i of round r - 1. Rounds past the end
  of the documents (e.g. N=4, M=3 gives slices of 2, 2 and 0) are left out, so fewer than
  `num_rounds` lists may come back.

  Args:
    doc_ids: the documents, in corpus order.
    num_rounds: M, the number of rounds (>= 1).

  Returns:
    Per round, the indices into `doc_ids` of its documents.

  Raises:
    ValueError: when `num_rounds` < 1.
  """
  if num_rounds < 1:
    raise ValueError(f"num_rounds must be >= 1, got {num_rounds}")
  size = math.ceil(len(doc_ids) / num_rounds)
  return [list(range(start, min(start + size, len(doc_ids))))
          for start in range(0, len(doc_ids), size or 1)]


def advance(chain: Chain, text: str, pairs: Sequence[formats.QAPair]) -> Chain:
  """The chain after a round: `chain` plus `(text, pairs)`, or empty when `pairs` is empty.

  Args:
    chain: the blocks the round's prompt held (its kept chain).
    text: the round's text, in full.
    pairs: the pairs parsed from the round's output.
  """
  return [*chain, (text, list(pairs))] if pairs else []


class RoundBuilder:
  """Builds prompt token ids that leave room for `max_new_tokens` in `max_len`.

  Attributes:
    budget: most prompt tokens, `max_len - max_new_tokens`.
    texts_truncated: number of prompts whose text was cut to fit.
  """

  def __init__(self, tokenizer: tokenizer_lib.Tokenizer, max_len: int, max_new_tokens: int,
               keep_partial_history: bool = False):
    """Checks the budget.

    Args:
      tokenizer: the synthesizer's tokenizer (with an EOS id: earlier rounds end with it).
      max_len: longest sequence, prompt plus generation (the official `max_model_len`).
      max_new_tokens: tokens generated at most per prompt.
      keep_partial_history: when the chain does not fit, drop its oldest blocks until it does
        (ours) instead of dropping all of them (official).

    Raises:
      ValueError: when `max_new_tokens` < 1 or the budget cannot hold a prompt of empty text.
    """
    if max_new_tokens < 1:
      raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    self._tokenizer = tokenizer
    self.budget = max_len - max_new_tokens
    self.keep_partial_history = keep_partial_history
    self.texts_truncated = 0
    if len(self._text_ids("")) > self.budget:
      raise ValueError(f"max_len {max_len} - max_new_tokens {max_new_tokens} leaves no room "
                       "for a prompt")

  def prompt(self, chain: Chain, text: str) -> tuple[list[int], bool, Chain]:
    """The prompt for `text` after `chain`, with as much of the chain as the mode keeps.

    Args:
      chain: earlier `(text, pairs)` blocks, oldest first (each with pairs, as `advance` keeps).
      text: the text to synthesize pairs for.

    Returns:
      The prompt ids (at most `budget`), whether any earlier block was kept, and the kept
      blocks (a suffix of `chain`: all or none of it in the official mode).
    """
    text_ids = self._text_ids(text)
    if len(text_ids) > self.budget:
      self.texts_truncated += 1
      return self._text_ids(self._fitting_prefix(text)), False, []
    room = self.budget - len(text_ids)
    blocks = [self._block_ids(block) for block in chain]
    if self.keep_partial_history:
      kept = 0
      while kept < len(blocks) and len(blocks[-1 - kept]) <= room:
        room -= len(blocks[-1 - kept])
        kept += 1
    else:
      kept = len(blocks) if sum(len(ids) for ids in blocks) <= room else 0
    kept_chain = chain[len(chain) - kept:]
    return ([i for ids in blocks[len(blocks) - kept:] for i in ids] + text_ids, bool(kept_chain),
            kept_chain)

  def _encode(self, pieces: Sequence[formats.Piece]) -> list[int]:
    return formats.encode(self._tokenizer, pieces, self._tokenizer.bos_id,
                          self._tokenizer.eos_id)[0]

  def _block_ids(self, block: tuple[str, Sequence[formats.QAPair]]) -> list[int]:
    """Ids of one earlier block; a prompt's blocks are their concatenation (each block is
    closed by BOS / EOS, so it tokenizes the same alone as inside the prompt string)."""
    return self._encode(formats.format_pieces([block]))

  def _text_ids(self, text: str) -> list[int]:
    """Ids of the prompt's last part: BOS and the context of `text`."""
    return self._encode(formats.prompt_pieces([], text))

  def _fitting_prefix(self, text: str) -> str:
    """The longest prefix of `text` (found by bisection) whose prompt fits the budget.

    Cutting characters, not token ids, keeps the text valid (a token prefix can end inside a
    UTF-8 character) and keeps `</CON>\\n\\n` whole at the prompt's end.
    """
    fits, too_long = 0, len(text)
    while too_long - fits > 1:
      middle = (fits + too_long) // 2
      if len(self._text_ids(text[:middle])) <= self.budget:
        fits = middle
      else:
        too_long = middle
    return text[:fits]
