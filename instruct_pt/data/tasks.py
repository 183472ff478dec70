"""SeqIO tasks and mixtures: raw text, instruction-augmented text, synthesizer SFT, instructions.

Every task has two output features, both int32 and of equal length:

  targets       token ids of the example (the converter adds the BOS decoder input)
  loss_weights  1 where the token carries loss, 0 elsewhere

Task kinds (`register_task`), by what the source yields:

* `raw_lm` (`text`): tokens + EOS, all weighted; a document longer than the target sequence
  length is split into consecutive chunks of at most that length (only the last ends with EOS),
  so nothing is truncated away.
* `instruct_augmented_lm` (`text`: one templatified text of the synthesis output): as `raw_lm`.
* `synthesizer_sft` (`text` holding the JSON record `{"context", "pairs": [{"question", "answer"}]}` or multi-round
  `{"rounds": [{"context", "pairs"}, ...]}`): the synthesizer's format
  (`instruct_pt.data.formats`); loss on the pair text and each round's EOS only.
* `instructions` (`text` holding the JSON record `{"prompt", "response"}`): `prompt + "\\n\\n" + response + EOS`
  (plain text, no chat template, as the paper mixes general instructions into domain CPT);
  loss on the response and EOS only.

No target starts with BOS: the feature converter feeds BOS as the first decoder input, and that
input is the example's leading `<s>`. Inner `<s>` tokens (rounds after the first) are targets
with weight 0. Examples of the last two kinds longer than the sequence length are truncated
(SeqIO trims them); `inspect` counts them.

Registration happens only when a `register_*` function is called; registering an existing
name replaces it. A mixture keeps the Task objects it was built with, so re-register the
mixtures after re-registering their tasks (`register_demo_tasks` does).
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Mapping, Sequence

import numpy as np
# First: TensorFlow imported quietly, before SeqIO imports it.
from instruct_pt.data.tf_runtime import tf
import seqio  # pylint: disable=wrong-import-order

from instruct_pt.data.seqio_source import seqio_source
from instruct_pt.data.sources import WHOLE_RECORD, SourceSpec
from instruct_pt.data import formats

KINDS = ("raw_lm", "instruct_augmented_lm", "synthesizer_sft", "instructions")
# Between a general instruction's prompt and its response.
INSTRUCTION_SEPARATOR = "\n\n"
DEMO_DATA_DIR = os.path.join(os.path.dirname(__file__), "demo_data")
# Demo tasks read from hand-made stand-in files shipped in DEMO_DATA_DIR; they stand in for
# real synthesis output and the released synthesizer tuning data until those are produced.
DEMO_STAND_IN_FILES = {
    "demo_instruct_augmented": "instruct_augmented.jsonl",
    "demo_synthesizer_sft": "synthesizer_sft.jsonl",
    "demo_instructions": "instructions.jsonl",
}
# Defaults of the from-scratch recipe (docs/design.md s.1 and s.4), see `pretrain_rates`.
PAPER_AUGMENTED_FRACTION = 0.2  # 1/5 of the raw texts are converted
PAPER_ROUNDS = 2  # M: raw texts chained into one augmented text
PAPER_SYNTHESIZER_REPEATS = 4  # UNVERIFIED
PAPER_SYNTHESIZER_TO_RAW_TOKEN_RATIO = 0.2e9 / 100e9  # tuning data vs raw corpus tokens
PAPER_RAW_TOKENS_PER_TEXT = 100e9 / 200e6  # 100B tokens in 200M texts
# 0.2B tokens over the ~249k rows of the released tuning collection (our estimate).
SYNTHESIZER_TOKENS_PER_EXAMPLE = 0.2e9 / 249e3

_VALID_NAME = re.compile(r"^[\w.:#]+$")


# Output features and vocabulary helpers ------------------------------------------------------

def task_output_features(vocabulary: seqio.Vocabulary) -> dict[str, seqio.Feature]:
  """The `targets` / `loss_weights` output features every task here has.

  Args:
    vocabulary: the tokenizer of `targets`.
  """
  return {
      "targets": seqio.Feature(vocabulary, add_eos=False, dtype=tf.int32),
      "loss_weights": seqio.Feature(seqio.PassThroughVocabulary(size=2), add_eos=False,
                                    dtype=tf.int32),
  }


def special_id(vocabulary: seqio.Vocabulary, name: str) -> int | None:
  """`vocabulary.bos_id` / `eos_id` (by `name`), or None when it has none.

  Args:
    vocabulary: a SeqIO vocabulary.
    name: "bos_id" or "eos_id".
  """
  try:
    return getattr(vocabulary, name)
  except NotImplementedError:  # seqio.Vocabulary's default bos_id
    return None


def _required_eos(vocabulary: seqio.Vocabulary) -> int:
  eos = special_id(vocabulary, "eos_id")
  if eos is None:
    raise ValueError(f"vocabulary {vocabulary} has no EOS id; every task appends EOS")
  return eos


# Preprocessors ---------------------------------------------------------------------------------

def tokenize_text(dataset: tf.data.Dataset, output_features) -> tf.data.Dataset:
  """`text` -> `targets` = tokens + EOS, `loss_weights` = all ones.

  Args:
    dataset: examples with a string `text`.
    output_features: the task's features (SeqIO passes them).
  """
  vocabulary = output_features["targets"].vocabulary
  eos = tf.constant([_required_eos(vocabulary)], tf.int32)

  def tokenize(example):
    tokens = tf.concat([tf.cast(vocabulary.encode_tf(example["text"]), tf.int32), eos], 0)
    return {"targets": tokens, "loss_weights": tf.ones_like(tokens)}

  return dataset.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)


def split_into_chunks(dataset: tf.data.Dataset, sequence_length) -> tf.data.Dataset:
  """Splits each example into consecutive chunks of at most `sequence_length["targets"]`.

  Nothing is dropped: the chunks of an example concatenate back to it. Without a sequence
  length the examples pass unchanged.

  Args:
    dataset: examples with equal-length `targets` and `loss_weights`.
    sequence_length: SeqIO's feature lengths (SeqIO passes them).
  """
  length = (sequence_length or {}).get("targets")
  if length is None:
    return dataset

  def chunks(example):
    size = tf.size(example["targets"])
    splits = tf.concat([tf.range(0, size, length), [size]], 0)
    ragged = {k: tf.RaggedTensor.from_row_splits(v, splits) for k, v in example.items()}
    return tf.data.Dataset.from_tensor_slices(ragged)

  return dataset.flat_map(chunks)


def tokenize_synthesizer_record(dataset: tf.data.Dataset,
                                output_features) -> tf.data.Dataset:
  """JSON synthesizer record in `text` -> tokens and loss weights of `formats.format_pieces`.

  The record is `{"context", "pairs": [{"question", "answer"}]}`, the released collection's
  `{"context", "QA_list": [{"Q", "A"}], ...}`, or `{"rounds": [one of those, ...]}` for a
  multi-round example. Tokenized as `formats.encode` does (each text run between BOS / EOS as
  one string), so an inference prompt of the same text gets the same ids. The leading `<s>`
  is dropped (the converter's BOS input stands for it).

  Args:
    dataset: examples whose string `text` holds one JSON record.
    output_features: the task's features (SeqIO passes them).
  """
  return _tokenize_json(dataset, output_features["targets"].vocabulary, _synthesizer_pieces)


def group_rounds(rounds_per_example: int):
  """A preprocessor joining up to `rounds_per_example` consecutive records of one dataset into
  a multi-round synthesizer example `{"rounds": [...]}` (few-shot sequences, as the paper
  tunes the synthesizer and as the inference chains prompt it).

  A record's dataset is the file it comes from (the released collection keeps one dataset per
  folder, `<dataset>/shard/*.jsonl`); a file's last group may be shorter.

  Args:
    rounds_per_example: records per example (1 leaves them single).
  """
  if rounds_per_example < 1:
    raise ValueError(f"rounds_per_example must be >= 1, got {rounds_per_example}")

  def dataset_key(example):
    file = tf.strings.regex_replace(example["id"], r":[0-9]+$", "")
    return tf.strings.to_hash_bucket_fast(file, 2**62)

  def join(_, window):
    return window.batch(rounds_per_example).map(
        lambda batch: dict(batch, text=tf.strings.join(
            ['{"rounds": [', tf.strings.reduce_join(batch["text"], separator=", "), "]}"]),
                           id=batch["id"][0]))

  def preprocess(dataset: tf.data.Dataset) -> tf.data.Dataset:
    if rounds_per_example == 1:
      return dataset
    return dataset.group_by_window(dataset_key, join, window_size=rounds_per_example)

  return preprocess


def tokenize_instruction_record(dataset: tf.data.Dataset,
                                output_features) -> tf.data.Dataset:
  """JSON `{"prompt", "response"}` in `text` -> tokens, with loss on the response and EOS only.

  Args:
    dataset: examples whose string `text` holds one JSON record.
    output_features: the task's features (SeqIO passes them).
  """
  return _tokenize_json(dataset, output_features["targets"].vocabulary, _instruction_pieces)


def _tokenize_json(dataset, vocabulary, to_pieces):
  """Maps the JSON record in `text` to `targets` / `loss_weights` through `to_pieces(record)`
  (in Python), tokenized by `formats.encode`."""
  eos = _required_eos(vocabulary)
  bos = special_id(vocabulary, "bos_id")
  tokenizer = getattr(vocabulary, "tokenizer", None)
  if tokenizer is None:
    raise ValueError(f"vocabulary {vocabulary} does not wrap an instruct_pt tokenizer "
                     "(instruct_pt.data.seqio_vocab.SeqIOVocabulary), which the synthesizer and "
                     "instruction tasks tokenize with")

  def encode(line) -> tuple[np.ndarray, np.ndarray]:
    line = line.item() if isinstance(line, np.ndarray) else line
    pieces = to_pieces(_parse_record(line))
    # The first piece is the leading <s>: the converter's BOS decoder input plays it.
    ids, weights = formats.encode(tokenizer, pieces[1:], bos, eos)
    return np.asarray(ids, np.int32), np.asarray(weights, np.int32)

  def tokenize(example):
    ids, weights = tf.numpy_function(encode, [example["text"]], [tf.int32, tf.int32],
                                     stateful=False)
    ids.set_shape([None])
    weights.set_shape([None])
    return {"targets": ids, "loss_weights": weights}

  return dataset.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)


# Records ------------------------------------------------------------------------------------

def _parse_record(line: bytes) -> dict:
  text = line.decode("utf-8")
  try:
    record = json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f"record {text[:80]!r} is not JSON ({e.msg})") from e
  if not isinstance(record, dict):
    raise ValueError(f"record {text[:80]!r} is not a JSON object")
  return record


def _where(kind: str, record: dict) -> str:
  """Names a record in errors: its kind and, when it has one, its id."""
  return f"{kind} record" + (f" {record['id']!r}" if "id" in record else "")


def _field(record: dict, name: str, where: str) -> str:
  value = record.get(name)
  if not isinstance(value, str):
    raise ValueError(f"{where}: needs a string {name!r}; got record {str(record)[:120]}")
  return value


def synthesizer_rounds(record: dict) -> list[formats.Round]:
  """The `(context, pairs)` rounds of a synthesizer record (see `tokenize_synthesizer_record`).

  Args:
    record: the parsed JSON record.

  Raises:
    ValueError: a malformed record, naming it and the round.
  """
  where = _where("synthesizer_sft", record)
  blocks = record.get("rounds", [record])
  if not isinstance(blocks, list) or not blocks:
    raise ValueError(f"{where}: 'rounds' must be a non-empty list")
  return [_round(block, f"{where}, round {number}") for number, block in enumerate(blocks)]


def _round(block, where: str) -> formats.Round:
  """One round: ours (`pairs` of `question` / `answer`) or the released (`QA_list` of `Q` /
  `A`)."""
  if not isinstance(block, dict):
    raise ValueError(f"{where}: is not a JSON object")
  released = "QA_list" in block and "pairs" not in block
  pairs = block.get("QA_list" if released else "pairs")
  question, answer = ("Q", "A") if released else ("question", "answer")
  if not isinstance(pairs, list) or not pairs:
    raise ValueError(f"{where}: needs a non-empty list {'QA_list' if released else 'pairs'!r}")
  for pair in pairs:
    if not isinstance(pair, dict):
      raise ValueError(f"{where}: pair {pair!r} is not a {{{question!r}, {answer!r}}} object")
  return (_field(block, "context", where),
          [formats.QAPair(_field(p, question, where), _field(p, answer, where)) for p in pairs])


def _synthesizer_pieces(record: dict) -> list[formats.Piece]:
  return formats.format_pieces(synthesizer_rounds(record))


def _instruction_pieces(record: dict) -> list[formats.Piece]:
  """`<s>`, prompt + separator (no loss) and response (loss) as one run, `</s>` (loss)."""
  where = _where("instructions", record)
  prompt, response = _field(record, "prompt", where), _field(record, "response", where)
  head = prompt + INSTRUCTION_SEPARATOR
  return [formats.BOS, formats.Run(head + response, ((len(head), len(head) + len(response)),)),
          formats.EOS]


# Tasks ---------------------------------------------------------------------------------------

_PREPROCESSORS = {
    "raw_lm": (tokenize_text, split_into_chunks),
    "instruct_augmented_lm": (tokenize_text, split_into_chunks),
    "synthesizer_sft": (tokenize_synthesizer_record,),
    "instructions": (tokenize_instruction_record,),
}


def register_task(name: str, kind: str, source: seqio.DataSource,
                  vocabulary: seqio.Vocabulary, rounds_per_example: int = 1) -> seqio.Task:
  """Registers (or replaces) task `name` of `kind` over `source`.

  Args:
    name: task name (letters, digits, `_ . : #`); must not be a mixture's name.
    kind: one of KINDS (see the module docstring for the features each reads).
    source: yields `text`: the document (`raw_lm`, `instruct_augmented_lm`) or the whole
      record as JSON (the others; `SourceSpec(text_field=WHOLE_RECORD)` reads it so).
    vocabulary: tokenizer of `targets`; it must have an EOS id.
    rounds_per_example: `synthesizer_sft` only: consecutive records of a dataset joined into
      one multi-round example (`group_rounds`).

  Raises:
    ValueError: unknown kind, bad name, a mixture of that name, or no EOS id.
  """
  if kind not in KINDS:
    raise ValueError(f"task {name!r}: unknown kind {kind!r}; choose one of {KINDS}")
  _check_name(name, "task")
  if name in seqio.MixtureRegistry.names():
    raise ValueError(f"task {name!r}: a mixture has that name; names must be unambiguous")
  _required_eos(vocabulary)
  preprocessors = list(_PREPROCESSORS[kind])
  if kind == "synthesizer_sft":
    preprocessors.insert(0, group_rounds(rounds_per_example))
  elif rounds_per_example != 1:
    raise ValueError(f"task {name!r}: rounds_per_example applies to synthesizer_sft tasks only")
  seqio.TaskRegistry.remove(name)
  task = seqio.TaskRegistry.add(name, source=source, preprocessors=preprocessors,
                                output_features=task_output_features(vocabulary))
  _refresh_mixtures_over(name)
  return task


def register_partitioned_tasks(prefix: str, kind: str, sources: Mapping[str, seqio.DataSource],
                               vocabulary: seqio.Vocabulary) -> list[str]:
  """One task per partition (domain, category, ...), named `{prefix}_{partition}`.

  A mixture over them weights the partitions.

  Args:
    prefix: task name prefix.
    kind: one of KINDS, for every partition.
    sources: data source of each partition, by partition name.
    vocabulary: tokenizer of `targets`.

  Returns:
    The task names, in the order of `sources`.
  """
  if not sources:
    raise ValueError(f"register_partitioned_tasks({prefix!r}): no partitions given")
  names = []
  for partition, source in sources.items():
    name = f"{prefix}_{partition}"
    if not _VALID_NAME.match(name):
      raise ValueError(f"partition {partition!r} gives the invalid task name {name!r}; use "
                       "letters, digits and _ . : # only")
    register_task(name, kind, source, vocabulary)
    names.append(name)
  return names


def _check_name(name: str, what: str) -> None:
  if not _VALID_NAME.match(name):
    raise ValueError(f"invalid {what} name {name!r}; use letters, digits and _ . : # only")


# Mixtures and the paper's recipes -----------------------------------------------------------

# The rates of each mixture registered here. A SeqIO mixture holds the Task (and Mixture)
# objects it was built with, so replacing a task leaves the mixtures over it reading the old
# one: `register_task` and `register_mixture` rebuild those mixtures from their rates.
_MIXTURE_RATES: dict[str, dict[str, float]] = {}


def _refresh_mixtures_over(name: str) -> None:
  """Re-registers every mixture of `_MIXTURE_RATES` over `name` (and those over them)."""
  for mixture, rates in list(_MIXTURE_RATES.items()):
    if name in rates and mixture in seqio.MixtureRegistry.names():
      seqio.MixtureRegistry.remove(mixture)
      seqio.MixtureRegistry.add(mixture, list(rates.items()))
      _refresh_mixtures_over(mixture)


def register_mixture(name: str, rates: Mapping[str, float]) -> seqio.Mixture:
  """Registers (or replaces) a mixture sampling its tasks in proportion to `rates`.

  Rates are per example: with rates {a: 3, b: 1}, three examples in four come from a.

  Args:
    name: mixture name; must not be a task's name.
    rates: positive rate of each registered task (or mixture), by name.

  Raises:
    ValueError: no rates, an unregistered task, a rate that is not a positive finite number,
      or a task of that name (each naming the culprit).
  """
  if not rates:
    raise ValueError(f"mixture {name!r} has no tasks")
  _check_name(name, "mixture")
  if name in seqio.TaskRegistry.names():
    raise ValueError(f"mixture {name!r}: a task has that name; names must be unambiguous")
  known = set(seqio.TaskRegistry.names()) | set(seqio.MixtureRegistry.names())
  for task, rate in rates.items():
    if task not in known:
      raise ValueError(f"mixture {name!r}: no task or mixture named {task!r} is registered")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (
        math.isfinite(rate) and rate > 0):
      raise ValueError(f"mixture {name!r}: the rate of task {task!r} must be a positive "
                       f"number, got {rate!r}")
  _MIXTURE_RATES[name] = {task: float(rate) for task, rate in rates.items()}
  seqio.MixtureRegistry.remove(name)
  mixture = seqio.MixtureRegistry.add(name, list(_MIXTURE_RATES[name].items()))
  _refresh_mixtures_over(name)
  return mixture


def pretrain_rates(augmented_fraction: float = PAPER_AUGMENTED_FRACTION,
                   synthesizer_repeats: float = PAPER_SYNTHESIZER_REPEATS,
                   synthesizer_to_raw_token_ratio: float = PAPER_SYNTHESIZER_TO_RAW_TOKEN_RATIO,
                   texts_per_augmented_example: float = PAPER_ROUNDS,
                   raw_tokens_per_example: float = PAPER_RAW_TOKENS_PER_TEXT,
                   synthesizer_tokens_per_example: float = SYNTHESIZER_TOKENS_PER_EXAMPLE
                   ) -> dict[str, float]:
  """Per-example rates of from-scratch Instruct PT (docs/design.md s.4), per raw corpus text.

  The paper: of the raw corpus (200M texts, 100B tokens), 1/5 of the texts are converted to
  instruction-augmented texts (M = 2 rounds) and the rest stay raw; the synthesizer's tuning
  data (about 0.2B tokens) is mixed in, repeated 4 times (the 4x is UNVERIFIED: only a
  secondary summary states it). SeqIO rates count examples, so, per text of the raw corpus:

  * raw: `1 - f` examples (one per raw text; f = augmented_fraction);
  * augmented: `f / M` examples, because synthesis joins the M rounds' texts of a chain into
    one pre-training text (official `cook_pt_entries`); M = texts_per_augmented_example
    (pass the measured mean when chains were cut short);
  * synthesizer: `repeats * ratio * L_raw / L_syn` examples: the tuning data holds
    `ratio * L_raw` tokens per raw text (ratio = synthesizer_to_raw_token_ratio, 0.2B / 100B
    = 0.002), i.e. `ratio * L_raw / L_syn` examples of L_syn tokens, each seen `repeats`
    times. L_raw = 100B / 200M = 500 tokens per raw text. L_syn = 0.2B tokens over the about
    249k rows of the released tuning collection = about 803 tokens (our estimate from the
    dataset viewer's row count, UNVERIFIED). Pass measured lengths (`inspect` prints tokens
    per example) when your data differs.

  With the defaults: raw 0.8, augmented 0.1, synthesizer 4 * 0.002 * 500 / 803 = 0.00498,
  i.e. 88.4%, 11.0% and 0.55% of the examples. A text longer than the sequence length is cut
  into several examples, which raises its task's share of tokens beyond these rates;
  `inspect` shows the token shares a mixture actually implies.

  Args:
    augmented_fraction: fraction f of raw texts converted by synthesis.
    synthesizer_repeats: epochs over the synthesizer tuning data.
    synthesizer_to_raw_token_ratio: tokens of tuning data per token of the raw corpus.
    texts_per_augmented_example: raw texts per augmented example (M).
    raw_tokens_per_example: mean tokens of a raw example (L_raw).
    synthesizer_tokens_per_example: mean tokens of a synthesizer tuning example (L_syn).

  Returns:
    `{"raw": ..., "augmented": ..., "synthesizer": ...}`.

  Raises:
    ValueError: `augmented_fraction` outside (0, 1).
  """
  if not 0 < augmented_fraction < 1:
    raise ValueError(f"augmented_fraction must be in (0, 1), got {augmented_fraction}")
  return {
      "raw": 1.0 - augmented_fraction,
      "augmented": augmented_fraction / texts_per_augmented_example,
      "synthesizer": (synthesizer_repeats * synthesizer_to_raw_token_ratio
                      * raw_tokens_per_example / synthesizer_tokens_per_example),
  }


def register_pretrain_recipe(name: str, raw_task: str, augmented_task: str,
                             synthesizer_task: str,
                             augmented_fraction: float = PAPER_AUGMENTED_FRACTION,
                             synthesizer_repeats: float = PAPER_SYNTHESIZER_REPEATS,
                             synthesizer_to_raw_token_ratio: float = (
                                 PAPER_SYNTHESIZER_TO_RAW_TOKEN_RATIO),
                             texts_per_augmented_example: float = PAPER_ROUNDS,
                             raw_tokens_per_example: float = PAPER_RAW_TOKENS_PER_TEXT,
                             synthesizer_tokens_per_example: float = (
                                 SYNTHESIZER_TOKENS_PER_EXAMPLE)) -> seqio.Mixture:
  """Registers the from-scratch Instruct PT mixture; the rates are `pretrain_rates`'s.

  Args:
    name: mixture name.
    raw_task: the raw corpus task (the texts not converted).
    augmented_task: the instruction-augmented corpus task.
    synthesizer_task: the synthesizer tuning data task (`synthesizer_sft`).
    augmented_fraction: fraction of raw texts converted (paper: 1/5).
    synthesizer_repeats: epochs over the tuning data (paper: 4, UNVERIFIED).
    synthesizer_to_raw_token_ratio: tuning data tokens per raw corpus token (0.2B / 100B).
    texts_per_augmented_example: raw texts per augmented example (M = 2).
    raw_tokens_per_example: mean tokens of a raw example (500).
    synthesizer_tokens_per_example: mean tokens of a tuning example (about 803).
  """
  rates = pretrain_rates(augmented_fraction, synthesizer_repeats, synthesizer_to_raw_token_ratio,
                         texts_per_augmented_example, raw_tokens_per_example,
                         synthesizer_tokens_per_example)
  return register_mixture(name, {raw_task: rates["raw"], augmented_task: rates["augmented"],
                                 synthesizer_task: rates["synthesizer"]})


def register_domain_recipe(name: str, augmented_domain_task: str, instructions_task: str,
                           instructions_to_domain_ratio: float = 1.0) -> seqio.Mixture:
  """Registers domain-adaptive continual pre-training (docs/design.md s.5).

  The paper mixes the domain's instruction-augmented corpus (all texts converted, M = 3)
  1:1 with general instructions. It does not say in which unit; here the ratio counts
  examples. For 1:1 in tokens, pass `instructions_to_domain_ratio` = (tokens per domain
  example) / (tokens per instruction example), both from `inspect`.

  Args:
    name: mixture name.
    augmented_domain_task: the domain instruction-augmented corpus task.
    instructions_task: the general instructions task (`instructions`).
    instructions_to_domain_ratio: instruction examples per domain example.
  """
  return register_mixture(name, {augmented_domain_task: 1.0,
                                 instructions_task: instructions_to_domain_ratio})


# Demo tasks ----------------------------------------------------------------------------------

def register_demo_tasks(vocabulary: seqio.Vocabulary) -> list[str]:
  """Registers the demo tasks and mixtures, unless they are registered with `vocabulary`.

  Tasks: `demo_raw` (the embedded corpus, `instruct_pt.data.sources.demo_corpus`, splits "train" and
  "held_out"), and, from hand-made stand-in files in DEMO_DATA_DIR (DEMO_STAND_IN_FILES;
  paragraphs of the demo corpus with hand-written pairs, to be replaced by synthesis output):
  `demo_instruct_augmented`, `demo_synthesizer_sft`, `demo_instructions`. Mixtures:
  `demo_instruct_pt` (the from-scratch recipe) and `demo_domain_cpt` (the domain recipe over
  the augmented texts and the instructions). There is no mixture `demo_raw`: SeqIO keeps tasks
  and mixtures in separate registries, but a name in both is ambiguous (lookups return the
  mixture with a warning), and a task name works wherever a mixture name does.

  Args:
    vocabulary: tokenizer of every demo task.

  Returns:
    The registered task and mixture names.
  """
  kinds = {"demo_instruct_augmented": "instruct_augmented_lm",
           "demo_synthesizer_sft": "synthesizer_sft", "demo_instructions": "instructions"}
  names = ["demo_raw", *kinds, "demo_instruct_pt", "demo_domain_cpt"]
  if _registered_with(names, vocabulary):
    return names
  register_task("demo_raw", "raw_lm", _demo_corpus_source(), vocabulary)
  for task, kind in kinds.items():
    path = os.path.join(DEMO_DATA_DIR, DEMO_STAND_IN_FILES[task])
    text_field = "text" if kind == "instruct_augmented_lm" else WHOLE_RECORD
    register_task(task, kind, _jsonl_source(path, text_field), vocabulary)
  register_pretrain_recipe("demo_instruct_pt", "demo_raw", "demo_instruct_augmented",
                           "demo_synthesizer_sft")
  register_domain_recipe("demo_domain_cpt", "demo_instruct_augmented", "demo_instructions")
  return names


def _registered_with(names: Sequence[str], vocabulary: seqio.Vocabulary) -> bool:
  """Whether every name is registered and every task among them uses `vocabulary`."""
  registered = set(seqio.TaskRegistry.names()) | set(seqio.MixtureRegistry.names())
  if not set(names) <= registered:
    return False
  tasks = [seqio.TaskRegistry.get(name) for name in names if name in seqio.TaskRegistry.names()]
  return all(task.output_features["targets"].vocabulary == vocabulary for task in tasks)


def _demo_corpus_source() -> seqio.DataSource:
  """The embedded demo corpus, one `text` per paragraph, splits "train" and "held_out"."""
  return seqio_source({"train": SourceSpec("demo"), "held_out": SourceSpec("demo_held_out")})


def _jsonl_source(path: str, text_field: str) -> seqio.DataSource:
  """A shipped JSONL file as a SeqIO source (`text_field` "*" keeps whole records)."""
  return seqio_source(SourceSpec(path, format="jsonl", text_field=text_field))
