"""Multi-round synthesis: round planning, prompt budgets, chains.

Expected lengths for the byte tokenizer come from its definition (one id per UTF-8 byte, plus
BOS / EOS ids 1 / 2); expected prompts are rebuilt by encoding the official prompt string a run
(the text between `<s>` / `</s>`) at a time, as a Hugging Face tokenizer does.
"""

import pytest

from instruct_pt.data import tokenizer as tokenizer_lib
from instruct_pt.data import formats
from instruct_pt.synthesis import rounds
from instruct_pt.data.formats import QAPair

BYTES = tokenizer_lib.ByteTokenizer()
# BOS + " <CON> " + text + " </CON>\n\n": 1 + 7 + len(text) + 9 bytes.
TEXT_OVERHEAD = 17


@pytest.fixture(scope="module", params=["byte", "smollm2"])
def any_vocab(request):
  """The byte vocabulary and SmolLM2's byte-level BPE (merges across segments would show)."""
  if request.param == "byte":
    return BYTES
  from instruct_pt.model import readers  # pylint: disable=import-outside-toplevel
  try:
    return tokenizer_lib.gguf_tokenizer(readers.resolve_gguf("smollm2"))
  except FileNotFoundError as e:
    pytest.skip(str(e))


def _chain(count):
  """`count` blocks of growing size, oldest first."""
  return [(f"Text number {i}. " * (i + 1), [QAPair(f"Question {i}?", f"Answer {i}."),
                                             QAPair(f"Why {i}?", "Because.")])
          for i in range(count)]


def _expected_ids(vocabulary, chain, text):
  """The official prompt string cut at `<s>` / `</s>`, each run encoded whole."""
  ids = []
  for block in formats.join(formats.prompt_pieces(chain, text)).split("<s>")[1:]:
    run, eos, _ = block.partition("</s>")
    ids += [vocabulary.bos_id] + vocabulary.encode(run) + ([vocabulary.eos_id] if eos else [])
  return ids


def _byte_block_len(text, pairs):
  """Byte-vocabulary ids of one earlier block: BOS, context, pairs with blank lines, EOS."""
  pair_bytes = sum(len(f"<QUE> {p.question} <ANS> {p.answer} </END>") for p in pairs)
  return TEXT_OVERHEAD + len(text) + pair_bytes + 2 * (len(pairs) - 1) + 1


# plan_rounds --------------------------------------------------------------------------------

@pytest.mark.parametrize("count, num_rounds, expected", [
    (7, 2, [[0, 1, 2, 3], [4, 5, 6]]),           # B = ceil(7 / 2) = 4
    (9, 3, [[0, 1, 2], [3, 4, 5], [6, 7, 8]]),   # B = 3
    (4, 3, [[0, 1], [2, 3]]),                    # B = 2; the third slice is empty, left out
    (3, 1, [[0, 1, 2]]),
    (0, 2, []),
])
def test_plan_rounds_slices(count, num_rounds, expected):
  """Round r is the r-th consecutive slice of ceil(N / M) documents."""
  assert rounds.plan_rounds([f"doc{i}" for i in range(count)], num_rounds) == expected


def test_plan_rounds_rejects_zero_rounds():
  with pytest.raises(ValueError, match="num_rounds"):
    rounds.plan_rounds(["a"], 0)


# advance --------------------------------------------------------------------------------------

def test_advance_appends_or_restarts_on_empty_pairs():
  """Pairs extend the chain (a new list; the input is unchanged); no pairs restart it."""
  chain = _chain(2)
  pairs = [QAPair("Q?", "A.")]
  assert rounds.advance(chain, "New.", pairs) == [*chain, ("New.", pairs)]
  assert len(chain) == 2
  assert rounds.advance(chain, "New.", []) == []
  assert rounds.advance([], "New.", pairs) == [("New.", pairs)]


# RoundBuilder ---------------------------------------------------------------------------------

def test_prompt_ids_are_runs_encoded_whole(any_vocab):
  """BOS / EOS between runs, each run encoded whole; decoded, the prompt ends with
  `</CON>\\n\\n`."""
  builder = rounds.RoundBuilder(any_vocab, max_len=4096, max_new_tokens=400)
  chain = _chain(2)
  ids, chained, kept = builder.prompt(chain, "The new text.")
  assert (chained, kept) == (True, chain)
  assert ids == _expected_ids(any_vocab, chain, "The new text.")
  assert ids[0] == any_vocab.bos_id
  assert any_vocab.decode(ids).endswith("The new text. </CON>\n\n")
  first, chained, kept = builder.prompt([], "The new text.")
  assert (first, chained, kept) == (_expected_ids(any_vocab, [], "The new text."), False, [])


def test_official_mode_keeps_all_or_nothing_of_the_chain():
  """Paper-faithful: a budget that holds the whole chain keeps it; one token less drops all of
  it (the official rule drops every earlier block when the candidate prompt is too long)."""
  chain = _chain(3)
  text = "Fresh."
  whole = sum(_byte_block_len(*block) for block in chain) + TEXT_OVERHEAD + len(text)
  builder = rounds.RoundBuilder(BYTES, max_len=whole + 100, max_new_tokens=100)
  ids, chained, kept = builder.prompt(chain, text)
  assert (len(ids), chained, kept) == (whole, True, chain)
  builder = rounds.RoundBuilder(BYTES, max_len=whole + 99, max_new_tokens=100)
  ids, chained, kept = builder.prompt(chain, text)
  assert (len(ids), chained, kept) == (TEXT_OVERHEAD + len(text), False, [])


def test_filtered_mode_drops_oldest_blocks_first_byte_vocabulary():
  """Ours: with hand-computed lengths, a budget that holds exactly the two newest blocks keeps
  them; one token less keeps only the newest; the prompt is then exactly its parts."""
  chain = _chain(3)
  text = "Fresh."
  newest_two = sum(_byte_block_len(*block) for block in chain[1:])
  exact = newest_two + TEXT_OVERHEAD + len(text)
  builder = rounds.RoundBuilder(BYTES, max_len=exact + 100, max_new_tokens=100,
                                keep_partial_history=True)
  ids, chained, kept = builder.prompt(chain, text)
  assert (len(ids), chained, kept) == (exact, True, chain[1:])
  builder = rounds.RoundBuilder(BYTES, max_len=exact + 99, max_new_tokens=100,
                                keep_partial_history=True)
  ids, chained, kept = builder.prompt(chain, text)
  newest = _byte_block_len(*chain[2]) + TEXT_OVERHEAD + len(text)
  assert (len(ids), chained, kept) == (newest, True, chain[2:])
  assert builder.texts_truncated == 0


def test_prompt_never_exceeds_budget_and_keeps_the_longest_suffix(any_vocab):
  """Across budgets: the prompt fits, the kept blocks are the newest ones, and one more older
  block would not have fitted."""
  chain = _chain(4)
  text = "A short new text."
  full = len(_expected_ids(any_vocab, chain, text))
  alone = len(_expected_ids(any_vocab, [], text))
  seen = set()
  for budget in [*range(alone, full, 7), full]:
    builder = rounds.RoundBuilder(any_vocab, max_len=budget + 50, max_new_tokens=50,
                                  keep_partial_history=True)
    ids, chained, kept = builder.prompt(chain, text)
    assert len(ids) <= budget
    assert ids == _expected_ids(any_vocab, kept, text)
    assert kept == chain[len(chain) - len(kept):]
    assert chained == bool(kept)
    if len(kept) < len(chain):
      assert len(_expected_ids(any_vocab, chain[-len(kept) - 1:], text)) > budget
    seen.add(len(kept))
  assert seen == {0, 1, 2, 3, 4}


def test_prompt_truncates_a_text_too_long_alone():
  """Byte vocabulary, budget 50: a 100-character text keeps its first 33 characters (50 - 17),
  drops the chain and is counted; a 2-byte character is never split."""
  builder = rounds.RoundBuilder(BYTES, max_len=60, max_new_tokens=10)
  text = "".join(chr(ord("a") + i % 26) for i in range(100))
  ids, chained, kept = builder.prompt(_chain(1), text)
  assert (len(ids), chained, kept) == (50, False, [])
  assert BYTES.decode(ids) == f" <CON> {text[:33]} </CON>\n\n"
  ids, _, _ = builder.prompt([], "é" * 100)  # 33 bytes of room hold 16 two-byte characters
  assert BYTES.decode(ids) == f" <CON> {'é' * 16} </CON>\n\n"
  assert builder.texts_truncated == 2
  builder.prompt([], "short")
  assert builder.texts_truncated == 2


def test_prompt_truncates_a_text_too_long_alone_bpe(any_vocab):
  """With either tokenizer: the prompt fits, ends with `</CON>\\n\\n`, holds a prefix of the
  text, and that prefix is nearly the longest that fits."""
  builder = rounds.RoundBuilder(any_vocab, max_len=140, max_new_tokens=40)
  text = "Instruction pre-training augments raw corpora with synthesized pairs. " * 20
  ids, chained, kept = builder.prompt(_chain(2), text)
  assert len(ids) <= 100 and (chained, kept) == (False, [])
  decoded = any_vocab.decode(ids)
  assert decoded.startswith(" <CON> ") and decoded.endswith(" </CON>\n\n")
  prefix = decoded[len(" <CON> "):-len(" </CON>\n\n")]
  assert text.startswith(prefix) and len(prefix) > 0
  assert ids == _expected_ids(any_vocab, [], prefix)
  assert len(_expected_ids(any_vocab, [], text[:len(prefix) + 10])) > 100
  assert builder.texts_truncated == 1


def test_builder_rejects_budgets_without_room():
  with pytest.raises(ValueError, match="no room"):  # not even for `<s>` alone
    rounds.RoundBuilder(BYTES, max_len=10, max_new_tokens=10)
  with pytest.raises(ValueError, match="max_new_tokens"):
    rounds.RoundBuilder(BYTES, max_len=20, max_new_tokens=0)


def test_rounds_chain_documents_and_restart_after_empty_output():
  """N=7, M=2 with a fake synthesizer: round-1 documents continue round-0 chains, except after
  a round that produced no pairs; chained flags follow."""
  doc_ids = [f"d{i}" for i in range(7)]
  texts = {doc_id: f"Text of {doc_id}." for doc_id in doc_ids}
  builder = rounds.RoundBuilder(BYTES, max_len=4096, max_new_tokens=400)
  chains, examples = {}, []
  for round_index, positions in enumerate(rounds.plan_rounds(doc_ids, 2)):
    for position, index in enumerate(positions):
      doc_id = doc_ids[index]
      _, chained, kept = builder.prompt(chains.get(position, []), texts[doc_id])
      examples.append((doc_id, round_index, chained, kept))
      pairs = [] if doc_id == "d1" else [QAPair(f"About {doc_id}?", "Yes.")]
      chains[position] = rounds.advance(kept, texts[doc_id], pairs)
  assert [example[:3] for example in examples] == [
      ("d0", 0, False), ("d1", 0, False), ("d2", 0, False), ("d3", 0, False),
      ("d4", 1, True), ("d5", 1, False), ("d6", 1, True)]
  assert examples[4][3] == [("Text of d0.", [QAPair("About d0?", "Yes.")])]
  assert examples[6][3] == [("Text of d2.", [QAPair("About d2?", "Yes.")])]
