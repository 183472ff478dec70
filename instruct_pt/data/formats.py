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
segment boundary).

`parse_pairs` reads the pairs back out of the synthesizer's generated text, and
`encode_segment_pieces` tokenizes segments one by one (prompts must be tokenized exactly as
training tokenizes its examples).

This module imports neither TensorFlow nor SeqIO.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, Sequence

# Placeholders of the tokenizer's BOS and EOS tokens (the official code's literal strings).
BOS = "<s>"
EOS = "</s>"
CONTEXT_OPEN = "<CON>"
CONTEXT_CLOSE = "</CON>"
QUESTION_MARKER = "<QUE>"
ANSWER_MARKER = "<ANS>"
END_MARKER = "</END>"
# The format's markers, in order of appearance; tokenizers trained here keep each whole.
MARKERS = (CONTEXT_OPEN, CONTEXT_CLOSE, QUESTION_MARKER, ANSWER_MARKER, END_MARKER)
CONTEXT_TEMPLATE = f" {CONTEXT_OPEN} {{context}} {CONTEXT_CLOSE}\n\n"
PAIR_TEMPLATE = f"{QUESTION_MARKER} {{question}} {ANSWER_MARKER} {{answer}} {END_MARKER}"
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
  tokenize `prompt_segments` instead to get them as ids with any tokenizer.

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


# Tokenizing segments ---------------------------------------------------------------------------

class Encoder(Protocol):
  """Anything with `encode(text) -> ids` (`instruct_pt.data.tokenizer.Tokenizer`, a `seqio.Vocabulary`)."""

  def encode(self, text: str) -> Sequence[int]:
    """Token ids of `text`, no BOS / EOS added."""


def encode_segment_pieces(tokenizer: Encoder, segments: Sequence[Segment], bos_id: int | None,
                          eos_id: int | None) -> list[list[int]]:
  """Token ids of each segment, each tokenized on its own.

  A segment that is exactly `BOS` / `EOS` becomes that token (no token for a tokenizer without
  BOS). Training (`instruct_pt.data.tasks.encode_segments`) and inference prompts
  (`rounds.RoundBuilder`) both tokenize through it, so their ids agree.

  Args:
    tokenizer: tokenizer of the text segments.
    segments: `(text, carries_loss)` pieces.
    bos_id: the BOS id, or None.
    eos_id: the EOS id; None only when no segment is `EOS`.

  Raises:
    ValueError: when a segment is `EOS` and `eos_id` is None.
  """
  return [_segment_ids(tokenizer, text, bos_id, eos_id) for text, _ in segments]


def _segment_ids(tokenizer: Encoder, text: str, bos_id: int | None,
                 eos_id: int | None) -> list[int]:
  if text == BOS:
    return [] if bos_id is None else [bos_id]
  if text == EOS:
    if eos_id is None:
      raise ValueError("an EOS segment needs a tokenizer with an EOS id")
    return [eos_id]
  return list(tokenizer.encode(text))


# Parsing generated text ------------------------------------------------------------------------

@dataclasses.dataclass
class ParseResult:
  """The pairs read from one generated output, and what was thrown away.

  Attributes:
    pairs: the well-formed pairs, first occurrence of each question, in generation order.
    malformed: complete (`</END>`-terminated) fragments that are not a valid pair.
    duplicates: valid pairs dropped because an earlier pair had the same question.
    truncated: True when non-blank text followed the last `</END>` (an unfinished pair,
      dropped: generation hit EOS or `max_new_tokens` mid-pair).
  """

  pairs: list[QAPair]
  malformed: int = 0
  duplicates: int = 0
  truncated: bool = False


def parse_pairs(generated: str) -> ParseResult:
  """The instruction-response pairs in the synthesizer's output (the official `parse_pred`).

  Text from a literal `</s>` on is ignored (the model ended the example there). The rest is
  split on `</END>`; the fragment after the last `</END>` is an unfinished pair and is dropped.
  Each complete fragment, stripped, must be `<QUE> {question} <ANS> {answer}` with exactly one
  `<QUE>` (at its start) and one `<ANS>`, and non-blank question and answer; anything else is
  malformed. (The official code allows extra `<QUE>` markers and removes them all; one marker is
  required here, since two mean a pair lost its `<ANS>` and `</END>`.) A question repeated
  within the output, compared case-insensitively with whitespace runs collapsed, keeps only its
  first pair. Question and answer are stripped of surrounding whitespace; inner whitespace
  (e.g. the CoT question's newline) is kept.

  Args:
    generated: the decoded generation, without the prompt.
  """
  fragments = generated.split(EOS, 1)[0].split(END_MARKER)
  result = ParseResult(pairs=[], truncated=bool(fragments[-1].strip()))
  seen = set()
  for fragment in fragments[:-1]:
    pair = _parse_pair(fragment)
    if pair is None:
      result.malformed += 1
    elif _question_key(pair.question) in seen:
      result.duplicates += 1
    else:
      seen.add(_question_key(pair.question))
      result.pairs.append(pair)
  return result


def _parse_pair(fragment: str) -> QAPair | None:
  """The pair in one `</END>`-terminated fragment, or None when it is malformed."""
  fragment = fragment.strip()
  if (not fragment.startswith(QUESTION_MARKER) or fragment.count(QUESTION_MARKER) != 1
      or fragment.count(ANSWER_MARKER) != 1):
    return None
  question, answer = fragment[len(QUESTION_MARKER):].split(ANSWER_MARKER)
  question, answer = question.strip(), answer.strip()
  return QAPair(question, answer) if question and answer else None


def _question_key(question: str) -> str:
  return " ".join(question.split()).lower()
