"""The synthesizer's text format: pieces, whole-run tokenization, and parsing the output.

Expected strings and pairs are written by hand from the official release's rules
(`read_compre.py`: `cook_read`, `cook_compre`, `parse_pred`), not from this module's constants.
"""

import pytest

from instruct_pt.data import formats
from instruct_pt.data import tokenizer as tokenizer_lib
from instruct_pt.data.formats import QAPair

BYTES = tokenizer_lib.ByteTokenizer()
ROUND_A = ("A1 text.", [QAPair("qa1", "x")])
ROUND_B = ("B1 text.", [QAPair("qb1", "y"), QAPair("qb2", "z")])


# The format -----------------------------------------------------------------------------------

def test_prompts_are_the_official_strings():
  """Round 0, round 1 after A, round 2 after A and B, and an empty context (`<s>` alone), as
  the official `get_dataset` writes them."""
  assert formats.join(formats.prompt_pieces([], "A1 text.")) == "<s> <CON> A1 text. </CON>\n\n"
  assert formats.join(formats.prompt_pieces([ROUND_A], "B1 text.")) == (
      "<s> <CON> A1 text. </CON>\n\n<QUE> qa1 <ANS> x </END></s><s> <CON> B1 text. </CON>\n\n")
  assert formats.join(formats.prompt_pieces([ROUND_A, ROUND_B], "C1 text.")) == (
      "<s> <CON> A1 text. </CON>\n\n<QUE> qa1 <ANS> x </END></s>"
      "<s> <CON> B1 text. </CON>\n\n<QUE> qb1 <ANS> y </END>\n\n<QUE> qb2 <ANS> z </END></s>"
      "<s> <CON> C1 text. </CON>\n\n")
  assert formats.join(formats.prompt_pieces([], "")) == "<s>"
  # A round with an empty context writes no <CON> wrapper either.
  assert formats.join(formats.format_pieces([("", [QAPair("q", "a")])])) == (
      "<s><QUE> q <ANS> a </END></s>")


def test_rounds_need_pairs():
  with pytest.raises(ValueError, match="at least one"):
    formats.format_pieces([])
  with pytest.raises(ValueError, match="round 1 .* has no question-answer pairs"):
    formats.format_pieces([ROUND_A, ("Empty.", [])])


def test_encode_weights_exactly_the_pairs_and_eos():
  """Byte tokenizer: the loss falls on `<QUE> ... </END>\\n\\n<QUE> ... </END>` and `</s>`,
  not on `<s>` or ` <CON> ... </CON>\\n\\n`; a missing BOS id writes no BOS."""
  pieces = formats.format_pieces([ROUND_B])
  ids, weights = formats.encode(BYTES, pieces, 1, 2)
  head = " <CON> B1 text. </CON>\n\n"
  body = "<QUE> qb1 <ANS> y </END>\n\n<QUE> qb2 <ANS> z </END>"
  assert ids == [1] + [b + 3 for b in (head + body).encode()] + [2]
  assert weights == [0] + [0] * len(head) + [1] * len(body) + [1]
  assert formats.encode(BYTES, pieces, None, 2)[0] == ids[1:]
  with pytest.raises(ValueError, match="EOS"):
    formats.encode(BYTES, pieces, 1, None)


def test_prompt_ids_equal_whole_string_tokenization(prepend_tokenizer):
  """With a tokenizer whose normalizer prepends "▁" (Llama / Mistral style), the ids of a
  3-document prompt (2 earlier rounds) equal tokenizing the whole official prompt string, in
  which `<s>` / `</s>` are special tokens; tokenizing piece by piece (the old way) does not."""
  tokenizer, raw = prepend_tokenizer
  pieces = formats.prompt_pieces([ROUND_A, ROUND_B], "C1 text.")
  ids, _ = formats.encode(tokenizer, pieces, tokenizer.bos_id, tokenizer.eos_id)
  assert ids == raw.encode(formats.join(pieces), add_special_tokens=False).ids
  assert ids.count(tokenizer.bos_id) == 3  # one BOS per round, no extra one in front
  piecewise = [tokenizer.bos_id] + tokenizer.encode(" <CON> A1 text. </CON>\n\n") + \
      tokenizer.encode("<QUE> qa1 <ANS> x </END>")
  assert ids[:len(piecewise)] != piecewise


# Parsing --------------------------------------------------------------------------------------

def test_parse_official_vectors():
  """The official `parse_pred` on hand-made outputs: the unfinished tail and duplicate
  questions (case-insensitive, spacing kept) dropped; every `<QUE>` removed; an empty
  question kept; an empty answer, two `<ANS>` or leading junk make a fragment malformed."""
  def parse(text):
    result = formats.parse_pairs(text)
    return [(p.question, p.answer) for p in result.pairs], result.malformed, result.duplicates

  assert parse("<QUE> Q1? <ANS> A1 </END>\n\n<QUE> q1? <ANS> dup </END>\n\n<QUE> Q2 <ANS> A2 "
               "</END>\n\n<QUE> unfinished <ANS> par") == ([("Q1?", "A1"), ("Q2", "A2")], 0, 1)
  assert parse("<QUE> a <QUE> b <ANS> c </END>") == ([("a  b", "c")], 0, 0)
  assert parse("<QUE> <ANS> ans </END>") == ([("", "ans")], 0, 0)
  assert parse("<QUE> q <ANS> </END>") == ([], 1, 0)
  assert parse("<QUE> q <ANS> a <ANS> b </END>") == ([], 1, 0)
  assert parse("junk <QUE> q <ANS> a </END>") == ([], 1, 0)
  assert parse("<QUE> Q  one? <ANS> a </END><QUE> Q one? <ANS> b </END>"
               "<QUE> q one? <ANS> c </END>") == ([("Q  one?", "a"), ("Q one?", "b")], 0, 1)


def test_parse_strict_mode_adds_our_rules():
  """Filtered mode: one `<QUE>` and a non-empty question required, spacing ignored when
  comparing questions."""
  def parse(text):
    result = formats.parse_pairs(text, strict=True)
    return [(p.question, p.answer) for p in result.pairs], result.malformed, result.duplicates

  assert parse("<QUE> a <QUE> b <ANS> c </END>") == ([], 1, 0)
  assert parse("<QUE> <ANS> ans </END>") == ([], 1, 0)
  assert parse("<QUE> Q  one? <ANS> a </END><QUE> q one? <ANS> b </END>") == (
      [("Q  one?", "a")], 0, 1)


def test_parse_keeps_inner_newlines_and_flags_the_unfinished_tail():
  generated = ("<QUE> What colour is the sky? <ANS> Blue. </END>\n\n"
               "  \n<QUE>Is it green?\nLet's think step by step.<ANS>No. </END>\n\n<QUE> B")
  result = formats.parse_pairs(generated)
  assert result.pairs == [QAPair("What colour is the sky?", "Blue."),
                          QAPair("Is it green?\nLet's think step by step.", "No.")]
  assert result.truncated and not formats.parse_pairs("<QUE> A <ANS> a </END>\n \n").truncated
  assert formats.parse_pairs("") == formats.ParseResult(pairs=[])


def test_parse_round_trips_the_training_format():
  """The pairs text of a training example parses back to the same pairs."""
  pairs = [QAPair("Q one?", "A one."), QAPair("Q two?", "A two.")]
  run = formats.format_pieces([("Context.", pairs)])[1]
  generated = run.text[run.loss[0][0]:]
  assert formats.parse_pairs(generated) == formats.ParseResult(pairs=pairs)


def test_parse_ignores_everything_after_a_literal_eos():
  generated = ("<QUE> A? <ANS> a. </END></s><s> <CON> Next text. </CON>\n\n"
               "<QUE> B? <ANS> b. </END>")
  assert formats.parse_pairs(generated) == formats.ParseResult(pairs=[QAPair("A?", "a.")])
