"""The synthesizer's text format: pieces, whole-run tokenization, and parsing the output.

Expected strings and pairs are written by hand from the official release's rules
(`read_compre.py`: `cook_read`, `cook_compre`, `parse_pred`), not from this module's constants.
"""

import re

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
  # As pieces: the BOS marker alone, no empty run after it (which a tokenizer that prepends
  # "▁" to every run could turn into a token).
  assert formats.prompt_pieces([], "") == [formats.BOS]
  # A round with an empty context writes no <CON> wrapper either.
  assert formats.join(formats.format_pieces([("", [QAPair("q", "a")])])) == (
      "<s><QUE> q <ANS> a </END></s>")


def test_rounds_need_pairs():
  """No rounds, or a round without pairs, raise ValueError; the message names the round's
  index and the first 40 characters of its context (the 50-character context below is cut
  after its fourth "abcdefghij")."""
  with pytest.raises(ValueError,
                     match=r"^format_pieces needs at least one \(context, pairs\) round$"):
    formats.format_pieces([])
  with pytest.raises(ValueError, match="round 1 .* has no question-answer pairs"):
    formats.format_pieces([ROUND_A, ("Empty.", [])])
  message = ("round 2 (context 'abcdefghijabcdefghijabcdefghijabcdefghij'...) has no "
             "question-answer pairs")
  with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
    formats.format_pieces([ROUND_A, ROUND_B, ("abcdefghij" * 5, [])])


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
  with pytest.raises(ValueError, match="^an EOS piece needs a tokenizer with an EOS id$"):
    formats.encode(BYTES, pieces, 1, None)


def test_encode_loss_spans_are_half_open():
  """A loss span `(start, end)` covers characters start .. end - 1: with one byte token per
  character, "abcdef" with spans (0, 1) and (3, 5) weights a, d, e (1 0 0 1 1 0); the token
  starting at a span's end (b, f) carries no loss."""
  ids, weights = formats.encode(BYTES, [formats.Run("abcdef", ((0, 1), (3, 5)))], None, None)
  assert ids == [ord(c) + 3 for c in "abcdef"]
  assert weights == [1, 0, 0, 1, 1, 0]


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
  # Counts add up: two malformed fragments (no <ANS>; empty answer) and two repeats of Q.
  assert parse("<QUE> x </END><QUE> Q <ANS> a </END><QUE> y <ANS> </END><QUE> q <ANS> b </END>"
               "<QUE> Q <ANS> c </END>") == ([("Q", "a")], 2, 2)
  # Case-insensitive as the official `deduplicate_questions` is: by `str.lower()`, under which
  # "Straße?" ("straße?") and "STRASSE?" ("strasse?") differ (their upper cases would not).
  assert parse("<QUE> Straße? <ANS> a </END><QUE> STRASSE? <ANS> b </END>") == (
      [("Straße?", "a"), ("STRASSE?", "b")], 0, 0)


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
  # Questions are compared as their words joined by single spaces, lowercased: Python's
  # `str.lower` turns a word-final capital sigma into "ς", so "ΠΟΣΟΣ  ΧΡΟΝΟΣ;" becomes
  # "ποσος χρονος;", the same as the lowercase question below.
  assert parse("<QUE> ΠΟΣΟΣ  ΧΡΟΝΟΣ; <ANS> a </END><QUE> ποσος χρονος; <ANS> b </END>") == (
      [("ΠΟΣΟΣ  ΧΡΟΝΟΣ;", "a")], 0, 1)


def test_parse_keeps_inner_newlines_and_flags_the_unfinished_tail():
  """Stripping keeps the CoT question's inner newline; non-blank text after the last `</END>`
  is an unfinished pair (dropped, `truncated`), blank text is not; empty output has nothing."""
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
  """Text from the first literal `</s>` on is ignored (also when a later round ends with its
  own `</s>`), so only the first round's pair is read."""
  generated = ("<QUE> A? <ANS> a. </END></s><s> <CON> Next text. </CON>\n\n"
               "<QUE> B? <ANS> b. </END>")
  assert formats.parse_pairs(generated) == formats.ParseResult(pairs=[QAPair("A?", "a.")])
  assert formats.parse_pairs(generated + "</s>") == formats.ParseResult(
      pairs=[QAPair("A?", "a.")])
