"""Tokenizers usable by plain numpy code (no TensorFlow needed).

Every kind implements `Tokenizer` (`encode` adds no BOS / EOS; packing does that):

* `ByteTokenizer` maps UTF-8 bytes to ids; it needs no training and no files, so from-scratch
  runs on the embedded corpus work anywhere. Ids 0, 1 and 2 are PAD, BOS and EOS.
* `SentencePieceTokenizer` reads a SentencePiece `tokenizer.model` (Llama-2 / Mistral style);
  `train_sentencepiece` trains one.
* `HFTokenizer` reads a Hugging Face `tokenizer.json` (e.g. Llama-3's byte-level BPE)
  with the `tokenizers` package; `gguf_tokenizer` builds one from the tokenizer in a GGUF file.

`load_tokenizer` picks the kind from a path, and `save_tokenizer` writes files that both it and
`transformers.AutoTokenizer.from_pretrained` read. sentencepiece, tokenizers and gguf are imported
only when a tokenizer of theirs is used.
"""

from __future__ import annotations

import abc
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from etils import epath

from instruct_pt.data import formats

# File that `save_tokenizer` writes for a `ByteTokenizer`.
BYTE_TOKENIZER_FILE = "byte_tokenizer.json"
# Names (as in `tokenizer_config.json`) of the special tokens a tokenizer exposes.
SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "pad_token")

# transformers writes this `model_max_length` when the length is unknown.
_UNKNOWN_MAX_LENGTH = int(1e30)
# GGUF token types (llama.cpp's `llama_token_type`).
_GGUF_CONTROL = 3
_GGUF_USER_DEFINED = 4
# Splitting regexes of the byte-level BPE pre-tokenizers GGUF files name in `tokenizer.ggml.pre`,
# as transformers uses them; any other name gets the GPT-2 split of `ByteLevel` itself.
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_GGUF_PRE_TOKENIZER_SPLITS = {
    "llama-bpe": _LLAMA3_SPLIT,
    "llama3": _LLAMA3_SPLIT,
    "llama-v3": _LLAMA3_SPLIT,
    "smaug-bpe": _LLAMA3_SPLIT,
    "qwen2": _QWEN2_SPLIT,
}


class Tokenizer(abc.ABC):
  """What the data pipeline needs from a tokenizer.

  Attributes:
    pad_id: id that fills padding; a tokenizer without a padding token uses its EOS id, so this
      is None only when it has neither.
    bos_id: beginning-of-sequence id, or None when the tokenizer has none.
    eos_id: end-of-sequence id, or None when the tokenizer has none.
  """

  pad_id: int | None
  bos_id: int | None
  eos_id: int | None

  @property
  @abc.abstractmethod
  def vocab_size(self) -> int:
    """Number of ids the tokenizer can produce."""

  @abc.abstractmethod
  def encode(self, text: str) -> list[int]:
    """Token ids of `text` (no BOS / EOS added)."""

  @abc.abstractmethod
  def decode(self, ids: Sequence[int]) -> str:
    """Text of `ids`; special and out-of-range ids are skipped."""

  def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each of `texts`, as `encode` gives them."""
    return [self.encode(text) for text in texts]

  @property
  def adds_bos(self) -> bool:
    """Whether transformers' tokenizer of the same files prepends BOS when it encodes text
    with its defaults (what lm-eval's `hf` model feeds a model)."""
    return False

  @abc.abstractmethod
  def encode_with_offsets(self, text: str) -> tuple[list[int], list[int]]:
    """`encode(text)` and, for each token, the index of the character of `text` it starts at
    (a token the tokenizer adds itself, such as a prepended "▁", gets the position it stands
    at)."""

  @abc.abstractmethod
  def _write_files(self, directory: Path) -> None:
    """Writes the files `load_tokenizer(directory)` reads back (see `save_tokenizer`)."""


class ByteTokenizer(Tokenizer):
  """UTF-8 byte-level tokenizer: id = byte + 3, after PAD=0, BOS=1, EOS=2."""

  pad_id = 0
  bos_id = 1
  eos_id = 2
  _offset = 3

  @property
  def vocab_size(self) -> int:
    """Number of ids the tokenizer can produce (259)."""
    return 256 + self._offset

  def encode(self, text: str) -> list[int]:
    """Token ids of `text` (no BOS / EOS added)."""
    return [b + self._offset for b in text.encode("utf-8")]

  def encode_with_offsets(self, text: str) -> tuple[list[int], list[int]]:
    """`encode(text)` and the character each byte token belongs to."""
    starts = [index for index, char in enumerate(text) for _ in char.encode("utf-8")]
    return self.encode(text), starts

  def decode(self, ids: Sequence[int]) -> str:
    """Text of `ids`; special and out-of-range ids are skipped, bad UTF-8 replaced."""
    data = bytes(i - self._offset for i in ids if self._offset <= i < self.vocab_size)
    return data.decode("utf-8", errors="replace")

  def _write_files(self, directory: Path) -> None:
    """Writes the `byte_tokenizer.json` marker."""
    _write_json(directory / BYTE_TOKENIZER_FILE, {"type": "byte"})


class SentencePieceTokenizer(Tokenizer):
  """A SentencePiece model (`tokenizer.model`), encoded and decoded by sentencepiece itself.

  BOS, EOS and PAD are the model's own ids; a model without a PAD id pads with EOS.
  """

  def __init__(self, model_path: str | os.PathLike):
    """Loads the model.

    Args:
      model_path: a serialized SentencePiece `ModelProto` (`tokenizer.model`, `*.model`).

    Raises:
      FileNotFoundError: when there is no such file.
      ValueError: when it is not a SentencePiece model.
    """
    import sentencepiece  # pylint: disable=import-outside-toplevel

    model_path = _existing(model_path)
    try:
      self._processor = sentencepiece.SentencePieceProcessor(model_file=str(model_path))
    except (OSError, RuntimeError) as e:
      raise ValueError(f"{model_path} is not a readable SentencePiece model: {e}") from e
    self.bos_id = _id_or_none(self._processor.bos_id())
    self.eos_id = _id_or_none(self._processor.eos_id())
    pad_id = _id_or_none(self._processor.pad_id())
    self.pad_id = self.eos_id if pad_id is None else pad_id

  @property
  def vocab_size(self) -> int:
    """Number of pieces in the model."""
    return self._processor.get_piece_size()

  def encode(self, text: str) -> list[int]:
    """Token ids of `text` (no BOS / EOS added)."""
    return self._processor.encode(text)

  def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each of `texts`, as `encode` gives them."""
    return self._processor.encode(list(texts))

  def encode_with_offsets(self, text: str) -> tuple[list[int], list[int]]:
    """`encode(text)` and each piece's first character (from sentencepiece's byte offsets)."""
    char_of_byte = [index for index, char in enumerate(text) for _ in char.encode("utf-8")]
    char_of_byte.append(len(text))
    pieces = self._processor.encode(text, return_type="proto").pieces
    return [p.id for p in pieces], [char_of_byte[min(p.begin, len(char_of_byte) - 1)]
                                    for p in pieces]

  def decode(self, ids: Sequence[int]) -> str:
    """Text of `ids`; control (BOS / EOS / PAD) and out-of-range ids are skipped."""
    return self._processor.decode([i for i in ids if 0 <= i < self.vocab_size])

  @property
  def adds_bos(self) -> bool:
    """True when the model has a BOS id (transformers' LlamaTokenizer adds it by default)."""
    return self.bos_id is not None

  def _write_files(self, directory: Path) -> None:
    """Writes `tokenizer.model` and a `tokenizer_config.json` for transformers' LlamaTokenizer.

    `add_prefix_space` follows the model's `add_dummy_prefix` (transformers does not read it
    from the model); `legacy: false` is the current, non-legacy handling of text after special
    tokens.
    """
    from sentencepiece import sentencepiece_model_pb2  # pylint: disable=import-outside-toplevel

    proto = self._processor.serialized_model_proto()
    model = sentencepiece_model_pb2.ModelProto.FromString(proto)
    (directory / "tokenizer.model").write_bytes(proto)
    config = {
        "tokenizer_class": "LlamaTokenizer",
        **self._special_tokens(),
        "unk_token": self._processor.id_to_piece(self._processor.unk_id()),
        "add_prefix_space": model.normalizer_spec.add_dummy_prefix,
        "legacy": False,
    }
    _write_json(directory / "tokenizer_config.json", config)

  def _special_tokens(self) -> dict[str, str | None]:
    ids = (self.bos_id, self.eos_id, self.pad_id)
    return {name: None if i is None else self._processor.id_to_piece(i)
            for name, i in zip(SPECIAL_TOKEN_NAMES, ids)}


class HFTokenizer(Tokenizer):
  """A Hugging Face `tokenizer.json`, run by the `tokenizers` package.

  `encode` adds no special tokens (its post-processor is not applied), but special tokens written
  in the text are matched as such, as transformers does. Truncation and padding configured in
  the file are turned off.

  Attributes:
    special_tokens: the `bos_token`, `eos_token` and `pad_token` strings (None where absent); a
      missing `pad_token` is replaced by the EOS token.
    model_max_length: longest sequence the model takes, or None when unknown.
  """

  def __init__(self, tokenizer_json: str | os.PathLike | Any,
               special_tokens: Mapping[str, str | None] | None = None,
               model_max_length: int | None = None):
    """Loads the tokenizer and resolves its special tokens.

    Special tokens not given are read from the files next to `tokenizer.json`, each from the
    first that names it: `special_tokens_map.json` and `tokenizer_config.json` as transformers
    reads them (`bos_token`, `eos_token`, `pad_token`: a string or a dict with `content`), then
    `config.json` and `generation_config.json` (`bos_token_id`, ...; of a list of ids, the
    first). transformers' tokenizers never read the last two.

    Args:
      tokenizer_json: path of a `tokenizer.json`, or a `tokenizers.Tokenizer`.
      special_tokens: `bos_token`, `eos_token` and `pad_token` strings; when given, no file is
        read for them.
      model_max_length: overrides `tokenizer_config.json`'s `model_max_length`.

    Raises:
      FileNotFoundError: when `tokenizer_json` is a path to no file.
      ValueError: when a file is unreadable, or names a special token the tokenizer lacks.
    """
    if isinstance(tokenizer_json, (str, os.PathLike)):
      path = _existing(tokenizer_json)
      self._tokenizer = _read_tokenizer_json(path)
      if special_tokens is None:
        special_tokens = _special_tokens_from_files(path.parent, self._tokenizer)
      if model_max_length is None:
        config = _read_json(path.parent / "tokenizer_config.json")
        model_max_length = _known_max_length(config.get("model_max_length"))
    else:
      self._tokenizer = tokenizer_json
    self._tokenizer.no_truncation()
    self._tokenizer.no_padding()
    self.special_tokens = _checked_special_tokens(special_tokens or {}, self._tokenizer)
    self.model_max_length = model_max_length
    self.bos_id, self.eos_id, self.pad_id = (
        None if token is None else self._tokenizer.token_to_id(token)
        for token in self.special_tokens.values())

  @property
  def vocab_size(self) -> int:
    """Number of ids, added tokens included."""
    return self._tokenizer.get_vocab_size(with_added_tokens=True)

  def encode(self, text: str) -> list[int]:
    """Token ids of `text` (no BOS / EOS added)."""
    return self._tokenizer.encode(text, add_special_tokens=False).ids

  def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each of `texts`, as `encode` gives them."""
    encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
    return [encoding.ids for encoding in encodings]

  def encode_with_offsets(self, text: str) -> tuple[list[int], list[int]]:
    """`encode(text)` and each token's first character (the `tokenizers` offsets)."""
    encoding = self._tokenizer.encode(text, add_special_tokens=False)
    return encoding.ids, [start for start, _ in encoding.offsets]

  def decode(self, ids: Sequence[int]) -> str:
    """Text of `ids`; special and out-of-range ids are skipped."""
    ids = [i for i in ids if 0 <= i < self.vocab_size]
    return self._tokenizer.decode(ids, skip_special_tokens=True)

  @property
  def adds_bos(self) -> bool:
    """Whether the file's post-processor puts the BOS token first."""
    ids = self._tokenizer.encode("a", add_special_tokens=True).ids
    return self.bos_id is not None and ids[:1] == [self.bos_id]

  def _write_files(self, directory: Path) -> None:
    """Writes `tokenizer.json` and a `tokenizer_config.json` for PreTrainedTokenizerFast."""
    self._tokenizer.save(str(directory / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **self.special_tokens,
        "clean_up_tokenization_spaces": False,
    }
    if self.model_max_length is not None:
      config["model_max_length"] = self.model_max_length
    _write_json(directory / "tokenizer_config.json", config)


def gguf_tokenizer(gguf_path: str | os.PathLike) -> HFTokenizer:
  """The tokenizer embedded in a GGUF file, rebuilt as transformers rebuilds it.

  Only byte-level BPE tokenizers (`tokenizer.ggml.model` "gpt2": SmolLM2, Llama-3, Qwen2, ...)
  are supported. Control tokens become special tokens and user-defined ones added tokens, so
  each is matched whole in text. The split regex follows `tokenizer.ggml.pre` for the Llama-3
  and Qwen2 families, and is GPT-2's for any other name, as in transformers (llama.cpp has its
  own regexes for some of those, e.g. SmolLM2's, which splits digits one by one).

  Args:
    gguf_path: a `.gguf` model file.

  Raises:
    FileNotFoundError: when there is no such file.
    ValueError: when it is not a GGUF file, has no tokenizer, or its tokenizer is not
      byte-level BPE (SentencePiece-style "llama" tokenizers included: use the model's
      `tokenizer.model` instead).
  """
  gguf_path = _existing(gguf_path)
  metadata = _read_gguf_metadata(gguf_path)
  ggml = {key[len("tokenizer.ggml."):]: value for key, value in metadata.items()
          if key.startswith("tokenizer.ggml.")}
  if "model" not in ggml:
    raise ValueError(f"{gguf_path}: GGUF file has no tokenizer (no tokenizer.ggml.model)")
  if ggml["model"] != "gpt2":
    raise ValueError(f"{gguf_path}: GGUF tokenizer model {ggml['model']!r} is not "
                     "supported; only 'gpt2' (byte-level BPE) is")
  if "merges" not in ggml:
    raise ValueError(f"{gguf_path}: GGUF tokenizer has no tokenizer.ggml.merges")
  tokenizer = _byte_level_bpe(ggml["tokens"], ggml["merges"], ggml.get("token_type", ()),
                              ggml.get("pre"))
  special_ids = [ggml.get(f"{key}_token_id") for key in ("bos", "eos", "padding")]
  special_tokens = {name: None if i is None else tokenizer.id_to_token(i)
                    for name, i in zip(SPECIAL_TOKEN_NAMES, special_ids)}
  context_length = metadata.get(f"{metadata.get('general.architecture')}.context_length")
  return HFTokenizer(tokenizer, special_tokens, model_max_length=context_length)


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
  """The tokenizer at `path`.

  Args:
    path: "byte" for `ByteTokenizer`; a `.gguf` file; a `tokenizer.json` (any `.json`) or
      `tokenizer.model` (any `.model`) file; or a directory holding `tokenizer.json`, else
      `tokenizer.model`, else the `byte_tokenizer.json` that `save_tokenizer` writes.

  Raises:
    FileNotFoundError: when nothing is at `path`.
    ValueError: when the directory holds no tokenizer file, or the file is unreadable.
  """
  if str(path) == "byte":
    return ByteTokenizer()
  if "://" in str(path):  # gs:// etc.: copy the tokenizer files down first
    return load_tokenizer(_copy_tree(epath.Path(path), Path(tempfile.mkdtemp())))
  path = _existing(path)
  if path.is_dir():
    for name in ("tokenizer.json", "tokenizer.model", BYTE_TOKENIZER_FILE):
      if (path / name).is_file():
        return _load_file(path / name)
    raise ValueError(f"{path} holds neither tokenizer.json, tokenizer.model nor "
                     f"{BYTE_TOKENIZER_FILE}")
  return _load_file(path)


def save_tokenizer(tokenizer: Tokenizer, directory: str | os.PathLike) -> None:
  """Writes `tokenizer`'s files into `directory` (created if needed).

  `load_tokenizer(directory)` gives back an equivalent tokenizer. Except for a
  `ByteTokenizer` (written as a `byte_tokenizer.json` marker), so does
  `transformers.AutoTokenizer.from_pretrained(directory)`, with the same BOS, EOS and PAD:
  `tokenizer.json` and `tokenizer_config.json` for a tokenizers-based tokenizer,
  `tokenizer.model` and a LlamaTokenizer `tokenizer_config.json` for SentencePiece.

  Args:
    tokenizer: the tokenizer.
    directory: where to write.
  """
  if "://" in str(directory):  # gs:// etc.: write locally, then copy up
    local = Path(tempfile.mkdtemp())
    tokenizer._write_files(local)  # pylint: disable=protected-access
    _copy_tree(local, epath.Path(directory))
    return
  directory = Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  tokenizer._write_files(directory)  # pylint: disable=protected-access


def train_sentencepiece(texts: Iterable[str], vocab_size: int, model_prefix: str | os.PathLike,
                        character_coverage: float = 0.9995) -> SentencePieceTokenizer:
  """Trains a SentencePiece BPE model (Llama-2 / Mistral style) on `texts`.

  Ids: PAD=0, BOS=1, EOS=2 (as in `ByteTokenizer`), UNK=3, then the synthesizer format's markers (`formats.MARKERS`) as
  user-defined symbols (each always one piece), then the 256 byte-fallback pieces. Text is not
  normalized, whitespace is kept as written, digits are split one by one, and no dummy prefix
  space is added (so text at the start of a document encodes like text after a newline, and
  transformers' LlamaTokenizer encodes exactly as sentencepiece). Training is single-threaded and
  reads every text, so equal inputs give equal models.

  Args:
    texts: training documents.
    vocab_size: number of pieces, special, marker and byte pieces included.
    model_prefix: writes `{model_prefix}.model` and `{model_prefix}.vocab`.
    character_coverage: fraction of characters covered by pieces; the rest fall back to bytes.

  Raises:
    ValueError: when the texts are too few for `vocab_size` pieces.
  """
  import sentencepiece  # pylint: disable=import-outside-toplevel

  Path(model_prefix).parent.mkdir(parents=True, exist_ok=True)
  try:
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=str(model_prefix), vocab_size=vocab_size,
        model_type="bpe", character_coverage=character_coverage, pad_id=0, bos_id=1, eos_id=2,
        unk_id=3, user_defined_symbols=list(formats.MARKERS), byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=False, split_digits=True, allow_whitespace_only_pieces=True,
        max_sentence_length=1 << 20, num_threads=1, minloglevel=2)
  except RuntimeError as e:
    raise ValueError(f"Cannot train a {vocab_size}-piece SentencePiece model (is the corpus too "
                     f"small?): {e}") from e
  return SentencePieceTokenizer(f"{model_prefix}.model")


# Helpers -------------------------------------------------------------------------------------

def _copy_tree(source, destination):
  """Copies the files of directory `source` into `destination` (either may be remote)."""
  if not source.exists():
    raise FileNotFoundError(f"No tokenizer directory at {source}")
  destination.mkdir(parents=True, exist_ok=True)
  for item in source.iterdir():
    if item.is_file():
      (destination / item.name).write_bytes(item.read_bytes())
  return destination


def _existing(path: str | os.PathLike) -> Path:
  """`path` as a Path, if something is there."""
  path = Path(path)
  if not path.exists():
    raise FileNotFoundError(f"No tokenizer file or directory at {path}")
  return path


def _id_or_none(token_id: int) -> int | None:
  """sentencepiece's id, None for its "disabled" -1."""
  return token_id if token_id >= 0 else None


def _load_file(path: Path) -> Tokenizer:
  """The tokenizer in a file, by its name or suffix."""
  if path.name == BYTE_TOKENIZER_FILE:
    if _read_json(path).get("type") != "byte":
      raise ValueError(f"{path} does not describe a byte tokenizer")
    return ByteTokenizer()
  loaders = {".gguf": gguf_tokenizer, ".json": HFTokenizer,
             ".model": SentencePieceTokenizer}
  if path.suffix not in loaders:
    raise ValueError(f"{path} is not a .gguf, tokenizer .json or SentencePiece .model file")
  return loaders[path.suffix](path)


def _read_json(path: Path) -> dict:
  """The JSON object in `path`, or {} when there is no such file."""
  if not path.is_file():
    return {}
  try:
    content = json.loads(path.read_text(encoding="utf-8"))
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ValueError(f"{path} is not readable JSON: {e}") from e
  if not isinstance(content, dict):
    raise ValueError(f"{path} holds no JSON object")
  return content


def _write_json(path: Path, content: dict) -> None:
  path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _read_tokenizer_json(path: Path):
  """The `tokenizers.Tokenizer` saved in `path`."""
  from tokenizers import Tokenizer  # pylint: disable=import-outside-toplevel

  try:
    return Tokenizer.from_file(str(path))
  except Exception as e:  # pylint: disable=broad-exception-caught
    # tokenizers raises a bare Exception for unparsable files.
    raise ValueError(f"{path} is not a readable tokenizer.json: {e}") from e


def _special_tokens_from_files(directory: Path, tokenizer) -> dict[str, str | None]:
  """Special tokens as named next to a `tokenizer.json` (see HFTokenizer)."""
  config = _read_json(directory / "tokenizer_config.json")
  by_token = [config]
  if "added_tokens_decoder" not in config:
    # As in transformers: special_tokens_map.json overrides an older-style config, and is not
    # read next to a newer one (which lists its added tokens).
    by_token.insert(0, _read_json(directory / "special_tokens_map.json"))
  by_id = [_read_json(directory / name) for name in ("config.json", "generation_config.json")]
  special_tokens = {}
  for name in SPECIAL_TOKEN_NAMES:
    candidates = [_token_content(content.get(name)) for content in by_token]
    candidates += [_first_id_token(content.get(f"{name}_id"), tokenizer) for content in by_id]
    special_tokens[name] = next((token for token in candidates if token is not None), None)
  return special_tokens


def _token_content(value: str | dict | None) -> str | None:
  """A special token as `tokenizer_config.json` writes it: a string or an AddedToken dict."""
  return value.get("content") if isinstance(value, dict) else value


def _first_id_token(value: int | list[int] | None, tokenizer) -> str | None:
  """The token of a `config.json` id, or of the first of a list of ids."""
  if isinstance(value, list):
    value = value[0] if value else None
  return None if value is None else tokenizer.id_to_token(value)


def _checked_special_tokens(special_tokens: Mapping[str, str | None],
                            tokenizer) -> dict[str, str | None]:
  """All of SPECIAL_TOKEN_NAMES, each in the tokenizer's tokenizer; PAD defaults to EOS."""
  unknown = set(special_tokens) - set(SPECIAL_TOKEN_NAMES)
  if unknown:
    raise ValueError(f"Unknown special token names {sorted(unknown)}; use {SPECIAL_TOKEN_NAMES}")
  checked = {name: special_tokens.get(name) for name in SPECIAL_TOKEN_NAMES}
  if checked["pad_token"] is None:
    checked["pad_token"] = checked["eos_token"]
  for name, token in checked.items():
    if token is not None and tokenizer.token_to_id(token) is None:
      raise ValueError(f"{name} {token!r} is not in the tokenizer's tokenizer")
  return checked


def _known_max_length(value: int | None) -> int | None:
  """`model_max_length` from a config, None for transformers' "unknown" placeholder."""
  return value if isinstance(value, int) and value < _UNKNOWN_MAX_LENGTH else None


def _read_gguf_metadata(path: Path) -> dict[str, Any]:
  """The `general.*`, `*.context_length` and `tokenizer.ggml.*` metadata of a GGUF file."""
  import gguf  # pylint: disable=import-outside-toplevel

  try:
    reader = gguf.GGUFReader(path)
  except Exception as e:  # pylint: disable=broad-exception-caught
    # The reader fails with assorted numpy errors on truncated or foreign files.
    raise ValueError(f"{path} is not a readable GGUF file: {e}") from e
  return {key: field.contents() for key, field in reader.fields.items()
          if key.startswith(("general.", "tokenizer.ggml.")) or key.endswith(".context_length")}


def _byte_level_bpe(tokens: Sequence[str], merges: Sequence[str], token_types: Sequence[int],
                    pre: str | None):
  """A byte-level BPE `tokenizers.Tokenizer` from a GGUF file's tokenizer metadata.

  Normal tokens are looked up in the byte-level spelling (a space is "Ġ"); a file that stores
  one in plain text gets it respelled. Control and user-defined tokens keep their text and are
  registered as added tokens, so they are matched whole before byte-level splitting.
  """
  import tokenizers  # pylint: disable=import-outside-toplevel
  from tokenizers import pre_tokenizers  # pylint: disable=import-outside-toplevel

  added_types = {_GGUF_CONTROL, _GGUF_USER_DEFINED}
  types = list(token_types) or [None] * len(tokens)
  respell = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
  alphabet = set(pre_tokenizers.ByteLevel.alphabet())
  vocab = {}
  for index, (token, token_type) in enumerate(zip(tokens, types)):
    if token_type not in added_types and not set(token) <= alphabet:
      token = "".join(piece for piece, _ in respell.pre_tokenize_str(token))
    vocab[token] = index
  pairs = [tuple(merge.split(" ", 1)) for merge in merges]
  model = tokenizers.models.BPE(vocab, pairs, fuse_unk=False, byte_fallback=False)
  tokenizer = tokenizers.Tokenizer(model)
  split = _GGUF_PRE_TOKENIZER_SPLITS.get(pre)
  if split is None:
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  else:
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(tokenizers.Regex(split), behavior="isolated"), respell])
  tokenizer.decoder = tokenizers.decoders.ByteLevel()
  tokenizer.add_special_tokens([tokenizers.AddedToken(token, special=True, normalized=False)
                                for token, t in zip(tokens, types) if t == _GGUF_CONTROL])
  tokenizer.add_tokens([tokenizers.AddedToken(token, special=False, normalized=False)
                        for token, t in zip(tokens, types) if t == _GGUF_USER_DEFINED])
  return tokenizer
