"""Parsing the synthesizer's output, and segment-by-segment tokenization.

Expected pairs and counts are written by hand from the official parsing rules (split on
`</END>`, drop the unfinished tail, one `<ANS>`, question starting with `<QUE>`, non-empty
answer, case-insensitive duplicate questions removed).
"""

import pytest

from instruct_pt.data import tokenizer as tokenizer_lib
from instruct_pt.data import formats
from instruct_pt.data.formats import QAPair


def test_parse_well_formed_output():
  """Pairs separated by blank lines and stray whitespace parse exactly, inner newlines kept."""
  generated = ("<QUE> What colour is the sky? <ANS> Blue. </END>\n\n"
               "  \n<QUE>Is it green?\nLet's think step by step.<ANS>No. </END>\n\n\n")
  result = formats.parse_pairs(generated)
  assert result == formats.ParseResult(
      pairs=[QAPair("What colour is the sky?", "Blue."),
             QAPair("Is it green?\nLet's think step by step.", "No.")],
      malformed=0, duplicates=0, truncated=False)


def test_parse_round_trips_the_training_format():
  """The pair text of `format_segments` parses back to the same pairs."""
  pairs = [QAPair("Q one?", "A one."), QAPair("Q two?", "A two.")]
  segments = formats.format_segments([("Context.", pairs)])
  generated = formats.join_segments(segments[2:])  # after <s> and the context: pairs + </s>
  assert formats.parse_pairs(generated) == formats.ParseResult(pairs=pairs)


@pytest.mark.parametrize("fragment", [
    "<QUE> No answer marker here. ",            # missing <ANS>
    "<QUE> Two? <ANS> One. <ANS> Two. ",        # two <ANS>
    "<QUE> Empty answer? <ANS>   \n",           # empty answer
    "<QUE>  <ANS> Empty question. ",            # empty question
    "Question without marker? <ANS> Yes. ",     # missing <QUE>
    "<QUE> First? \n\n<QUE> Second? <ANS> A. ",  # a pair that lost its <ANS> and </END>
    "\n\n",                                      # a stray </END>
])
def test_parse_malformed_fragment_is_counted(fragment):
  """Each malformed complete fragment is dropped and counted once; its neighbours survive."""
  generated = f"<QUE> Good? <ANS> Yes. </END>\n\n{fragment}</END>\n\n<QUE> Also? <ANS> Ok. </END>"
  result = formats.parse_pairs(generated)
  assert result.pairs == [QAPair("Good?", "Yes."), QAPair("Also?", "Ok.")]
  assert (result.malformed, result.duplicates, result.truncated) == (1, 0, False)


def test_parse_drops_unterminated_last_pair():
  """Text after the last </END> (generation stopped mid-pair, or at EOS before </END>) is
  dropped and flagged, even when it would be a valid pair; blank tails are not flagged."""
  result = formats.parse_pairs("<QUE> A? <ANS> a. </END>\n\n<QUE> B? <ANS> b.")
  assert result == formats.ParseResult(pairs=[QAPair("A?", "a.")], truncated=True)
  assert not formats.parse_pairs("<QUE> A? <ANS> a. </END>\n \n").truncated
  assert formats.parse_pairs("") == formats.ParseResult(pairs=[])
  assert formats.parse_pairs("<QUE> Cut off") == formats.ParseResult(pairs=[], truncated=True)


def test_parse_removes_duplicate_questions_ignoring_case_and_spacing():
  """Later pairs whose question equals an earlier one (case- and whitespace-insensitive) are
  removed and counted; the first keeps its answer."""
  generated = ("<QUE> What is X? <ANS> First. </END>\n\n"
               "<QUE> what   is x? <ANS> Second. </END>\n\n"
               "<QUE> WHAT IS\nX? <ANS> Third. </END>\n\n"
               "<QUE> What is Y? <ANS> Y. </END>")
  result = formats.parse_pairs(generated)
  assert result.pairs == [QAPair("What is X?", "First."), QAPair("What is Y?", "Y.")]
  assert (result.malformed, result.duplicates) == (0, 2)


def test_parse_junk_before_first_pair_makes_it_malformed():
  """Text before the first <QUE> spoils that pair (its question does not start with <QUE>)."""
  result = formats.parse_pairs("Sure! Here are questions:\n<QUE> A? <ANS> a. </END>\n\n"
                               "<QUE> B? <ANS> b. </END>")
  assert result.pairs == [QAPair("B?", "b.")]
  assert result.malformed == 1


def test_parse_ignores_everything_after_stray_eos_text():
  """A literal </s> ends the output: what follows (a new example) is not parsed."""
  generated = ("<QUE> A? <ANS> a. </END></s><s> <CON> Next text. </CON>\n\n"
               "<QUE> B? <ANS> b. </END>")
  assert formats.parse_pairs(generated) == formats.ParseResult(pairs=[QAPair("A?", "a.")])
  # An unfinished pair cut by </s> is an unterminated tail.
  result = formats.parse_pairs("<QUE> A? <ANS> a. </END>\n\n<QUE> B? <ANS> b.</s>junk</END>")
  assert result == formats.ParseResult(pairs=[QAPair("A?", "a.")], truncated=True)


def test_encode_segment_pieces_maps_placeholders_to_ids():
  """BOS / EOS segments become their ids (none for a missing BOS); text is byte + 3."""
  segments = [("<s>", False), (" <CON> x </CON>\n\n", False), ("</s>", True)]
  expected_text = [b + 3 for b in b" <CON> x </CON>\n\n"]
  byte_vocab = tokenizer_lib.ByteTokenizer()
  assert formats.encode_segment_pieces(byte_vocab, segments, 1, 2) == [[1], expected_text, [2]]
  assert formats.encode_segment_pieces(byte_vocab, segments, None, 2) == [[], expected_text, [2]]
  with pytest.raises(ValueError, match="EOS"):
    formats.encode_segment_pieces(byte_vocab, segments, 1, None)
