r"""The instruction synthesizer's text format (the official `read_compre.py`), and its tokenizing.

One example, for a context ("raw text") and the instruction-response pairs built from it:

  <s> <CON> {context} </CON>\n\n<QUE> {q1} <ANS> {a1} </END>\n\n<QUE> {q2} <ANS> {a2} </END></s>

The space before `<CON>` is deliberate (the official code says "do NOT strip"). An empty
context writes `<s>` alone (no `<CON>` wrapper), as the official `cook_read` does. A multi-round
("M-shot") sequence concatenates several examples, earlier rounds first, each with its own
`<s>` ... `</s>`; an inference prompt is the earlier rounds followed by `<s>` and the new
context, which the synthesizer continues with pairs.

`<s>` and `</s>` are the tokenizer's BOS and EOS *tokens*, not text. So a formatted sequence is
kept as `pieces`: the `BOS` / `EOS` markers and `Run`s of plain text between them. `join`
gives the official string (`<s>` / `</s>` written literally); `encode` tokenizes each run as
one string and puts the BOS / EOS ids between runs. That is what a Hugging Face tokenizer does
with the official prompt string (it matches `<s>` / `</s>` as special tokens and tokenizes the
text between them, a run at a time), so prompt ids equal the released synthesizer's, also
with tokenizers whose normalizer prepends "▁" to every run. The official README feeds the
string to vLLM, whose tokenizer adds a BOS of its own in front of the literal `<s>`: two BOS
tokens. The Hugging Face example on the synthesizer's model card passes
`add_special_tokens=False`, giving one, and so does this module (which one the synthesizer was
trained with is not published).

Loss-carrying ("pair") text, exactly: each `<QUE> {q} <ANS> {a} </END>`, the `\n\n` between
two pairs of the same round, and the round's closing `</s>`; every run records the character
spans that carry loss, and `encode` weights each token by the span its first character lies
in. Training examples and prompts are tokenized by the same `encode`, so a prompt's ids are the
ids the synthesizer was trained on for the same text.

`parse_pairs` reads the pairs back out of the synthesizer's generated text (the official
`parse_pred`, or stricter).

This module imports neither TensorFlow nor SeqIO.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, Sequence, Union

# Markers of the tokenizer's BOS and EOS tokens (the official code's literal strings).
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


@dataclasses.dataclass(frozen=True)
class Run:
  """Plain text between BOS / EOS markers.

  Attributes:
    text: the text.
    loss: `(start, end)` character spans of `text` that carry loss.
  """

  text: str
  loss: tuple[tuple[int, int], ...] = ()


Piece = Union[str, Run]  # BOS, EOS or a Run


def context_text(context: str) -> str:
  """What follows `<s>` for `context`: ` <CON> {context} </CON>\\n\\n`, nothing when empty."""
  return CONTEXT_TEMPLATE.format(context=context) if context else ""


def pairs_text(pairs: Sequence[QAPair]) -> str:
  """The pairs, each `<QUE> {q} <ANS> {a} </END>`, joined by `\\n\\n`."""
  return PAIR_DELIMITER.join(PAIR_TEMPLATE.format(question=p.question, answer=p.answer)
                             for p in pairs)


def format_pieces(rounds: Sequence[Round]) -> list[Piece]:
  """The pieces of a training example: per round, BOS, the context and pairs, EOS.

  Args:
    rounds: `(context, pairs)` blocks, earlier rounds first; one block for a single example.

  Raises:
    ValueError: when there are no rounds, or a round has no pairs (naming the round).
  """
  if not rounds:
    raise ValueError("format_pieces needs at least one (context, pairs) round")
  pieces: list[Piece] = []
  for index, (context, pairs) in enumerate(rounds):
    if not pairs:
      raise ValueError(f"round {index} (context {context[:40]!r}...) has no "
                       "question-answer pairs")
    head, body = context_text(context), pairs_text(pairs)
    pieces += [BOS, Run(head + body, ((len(head), len(head) + len(body)),)), EOS]
  return pieces


def prompt_pieces(rounds_before: Sequence[Round], context: str) -> list[Piece]:
  """The inference prompt: earlier rounds with their pairs, then BOS and the new context.

  Args:
    rounds_before: completed `(context, pairs)` rounds, earliest first (may be empty).
    context: the text to synthesize pairs for.
  """
  before = format_pieces(rounds_before) if rounds_before else []
  head = context_text(context)
  return before + [BOS] + ([Run(head)] if head else [])


def join(pieces: Sequence[Piece]) -> str:
  """The official string of `pieces` (BOS / EOS written `<s>` / `</s>`)."""
  return "".join(piece.text if isinstance(piece, Run) else piece for piece in pieces)


class OffsetTokenizer(Protocol):
  """What `encode` needs: `instruct_pt.data.tokenizer.Tokenizer`'s `encode_with_offsets`."""

  def encode_with_offsets(self, text: str) -> tuple[list[int], list[int]]:
    """Token ids of `text` and the character each starts at."""


def encode(tokenizer: OffsetTokenizer, pieces: Sequence[Piece], bos_id: int | None,
           eos_id: int | None) -> tuple[list[int], list[int]]:
  """Token ids of `pieces` and their 0/1 loss weights.

  Each run is tokenized as one string; a token carries loss when its first character lies in
  one of its run's loss spans. BOS becomes `bos_id` (nothing when None) and carries no loss;
  EOS becomes `eos_id` and carries loss (it closes a round's pairs).

  Args:
    tokenizer: tokenizes the runs.
    pieces: from `format_pieces` / `prompt_pieces`.
    bos_id: the BOS id, or None.
    eos_id: the EOS id; None only when no piece is EOS.

  Raises:
    ValueError: when a piece is EOS and `eos_id` is None.
  """
  ids: list[int] = []
  weights: list[int] = []
  for piece in pieces:
    if piece == BOS:
      if bos_id is not None:
        ids.append(bos_id)
        weights.append(0)
    elif piece == EOS:
      if eos_id is None:
        raise ValueError("an EOS piece needs a tokenizer with an EOS id")
      ids.append(eos_id)
      weights.append(1)
    else:
      run_ids, starts = tokenizer.encode_with_offsets(piece.text)
      ids += run_ids
      weights += [int(any(start <= s < end for start, end in piece.loss)) for s in starts]
  return ids, weights


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


def parse_pairs(generated: str, strict: bool = False) -> ParseResult:
  """The instruction-response pairs in the synthesizer's output.

  The official rules (`parse_pred`): text from a literal `</s>` on is ignored; the rest is
  split on `</END>` and the fragment after the last `</END>` (an unfinished pair) is dropped.
  A complete fragment, stripped, must hold exactly one `<ANS>`, start with `<QUE>` and have a
  non-blank answer; every `<QUE>` is then removed from the question (which may be empty), and
  both sides are stripped (inner whitespace, e.g. the CoT question's newline, is kept). A
  question repeated case-insensitively keeps only its first pair.

  `strict` (our filtered mode) also requires exactly one `<QUE>` (two mean a pair lost its
  `<ANS>` and `</END>`) and a non-blank question, and compares questions for duplicates with
  whitespace runs collapsed.

  Args:
    generated: the decoded generation, without the prompt.
    strict: apply our stricter rules on top of the official ones.
  """
  fragments = generated.split(EOS, 1)[0].split(END_MARKER)
  result = ParseResult(pairs=[], truncated=bool(fragments[-1].strip()))
  seen = set()
  for fragment in fragments[:-1]:
    pair = _parse_pair(fragment, strict)
    key = None if pair is None else (" ".join(pair.question.split()) if strict
                                     else pair.question).lower()
    if pair is None:
      result.malformed += 1
    elif key in seen:
      result.duplicates += 1
    else:
      seen.add(key)
      result.pairs.append(pair)
  return result


def _parse_pair(fragment: str, strict: bool) -> QAPair | None:
  """The pair in one `</END>`-terminated fragment, or None when it is malformed."""
  sides = fragment.split(ANSWER_MARKER)
  if len(sides) != 2:
    return None
  question, answer = (side.strip() for side in sides)
  if not question.startswith(QUESTION_MARKER) or not answer:
    return None
  if strict and question.count(QUESTION_MARKER) != 1:
    return None
  question = question.replace(QUESTION_MARKER, "").strip()
  if strict and not question:
    return None
  return QAPair(question, answer)
