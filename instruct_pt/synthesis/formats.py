r"""The instruction synthesizer's text format (the official `read_compre.py`).

One example, for a context ("raw text") and the instruction-response pairs built from it:

  <s> <CON> {context} </CON>\n\n<QUE> {q1} <ANS> {a1} </END>\n\n<QUE> {q2} <ANS> {a2} </END></s>

The space before `<CON>` is deliberate (the official code says "do NOT strip"). `<s>` and `</s>`
are the tokenizer's BOS and EOS *tokens*, not text: in these strings they appear as the
`BOS` / `EOS` placeholders, and a segment that is exactly one of them stands for the token
(`instruct_pt.data.tasks` maps it to the id). A multi-round ("M-shot") training sequence
concatenates several examples, earlier rounds first, each with its own `<s>` ... `</s>`.

Loss-carrying ("pair") text, exactly: each `<QUE> {q} <ANS> {a} </END>` string, the `\n\n`
between two pairs of the same round, and the round's closing `</s>`. Everything else carries
no loss: each round's `<s>` and its context piece ` <CON> {context} </CON>\n\n` (the
`\n\n` after `</CON>` belongs to the context piece, so an inference prompt ends exactly at a
segment boundary). Nothing here parses model output; that comes with synthesis.

This module imports neither TensorFlow nor SeqIO.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

# Placeholders of the tokenizer's BOS and EOS tokens (the official code's literal strings).
BOS = "<s>"
EOS = "</s>"
CONTEXT_TEMPLATE = " <CON> {context} </CON>\n\n"
PAIR_TEMPLATE = "<QUE> {question} <ANS> {answer} </END>"
PAIR_DELIMITER = "\n\n"

# A piece of text and whether it carries loss.
Segment = tuple[str, bool]


@dataclasses.dataclass(frozen=True)
class QAPair:
  """One instruction-response pair.

  Attributes:
    question: the instruction (for CoT pairs it ends with "\\nLet's think step by step.").
    answer: the response.
  """

  question: str
  answer: str


Round = tuple[str, Sequence[QAPair]]


def format_segments(rounds: Sequence[Round]) -> list[Segment]:
  """The text pieces of one training example, each flagged True when it carries loss.

  Per round, in order: `(BOS, False)`, `(" <CON> {context} </CON>\\n\\n", False)`, then each
  pair `("<QUE> {q} <ANS> {a} </END>", True)` with `("\\n\\n", True)` between consecutive
  pairs, then `(EOS, True)`. Joining the texts gives the official string, `<s>` / `</s>`
  included.

  Args:
    rounds: `(context, pairs)` blocks, earlier rounds first; one block for a single example.

  Raises:
    ValueError: when there are no rounds, or a round has no pairs (naming the round).
  """
  if not rounds:
    raise ValueError("format_segments needs at least one (context, pairs) round")
  segments = []
  for index, (context, pairs) in enumerate(rounds):
    if not pairs:
      raise ValueError(f"round {index} (context {context[:40]!r}...) has no "
                       "question-answer pairs")
    segments += _context_segments(context)
    for number, pair in enumerate(pairs):
      if number:
        segments.append((PAIR_DELIMITER, True))
      segments.append((PAIR_TEMPLATE.format(question=pair.question, answer=pair.answer), True))
    segments.append((EOS, True))
  return segments


def prompt_segments(rounds_before: Sequence[Round], context: str) -> list[Segment]:
  """The inference prompt as segments: earlier rounds with their pairs, then the new context.

  Args:
    rounds_before: completed `(context, pairs)` rounds, earliest first (may be empty).
    context: the text to synthesize pairs for.
  """
  before = format_segments(rounds_before) if rounds_before else []
  return before + _context_segments(context)


def format_prompt(rounds_before: Sequence[Round], context: str) -> str:
  """The inference prompt string, ending right after `</CON>\\n\\n`.

  It is the training format of `rounds_before` followed by the head of a new round, so the
  synthesizer continues with pairs. `<s>` / `</s>` appear literally, as the official code
  writes them (Hugging Face tokenizers of Mistral-style models match them as special tokens);
  tokenize `prompt_segments` instead to get them as ids with any vocabulary.

  Args:
    rounds_before: completed `(context, pairs)` rounds, earliest first (may be empty).
    context: the text to synthesize pairs for.
  """
  return join_segments(prompt_segments(rounds_before, context))


def join_segments(segments: Sequence[Segment]) -> str:
  """The text of `segments` joined (with literal `<s>` / `</s>`)."""
  return "".join(text for text, _ in segments)


def _context_segments(context: str) -> list[Segment]:
  return [(BOS, False), (CONTEXT_TEMPLATE.format(context=context), False)]
