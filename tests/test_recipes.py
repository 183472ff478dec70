"""The Recipes (docs/recipes.md): every step of the paper's experiments, run at tiny size, and
its launch.

`EXPERIMENTS` and `INPUTS` below are the one owner of the recipes. docs/recipes.md's Recipes
section (written to RECIPES_SECTION.md until it is pasted there) holds their rendering: the
experiments table (`render_experiments`), the numbered commands (`render_commands`) and the
bucket's inputs (`render_inputs`). `test_readme_shows_the_recipes` parses those three out of
the section and fails, printing the rendering, when they differ from the tables here.

Every step then runs as a user types it, shrunk: `gs://YOUR_BUCKET` becomes a local folder
holding tiny stand-ins of the inputs, `/models/...` Hugging Face checkpoints become tiny random
ones, and the command's own gin settings are overridden only in size (`tiny` model, 2 steps of
16 rows of 64 tokens, one small synthesis shard). Steps run in order, so each reads what the
ones before it wrote (the synthesizer a fine-tuning step made, the shards synthesis wrote), as
the full recipe does. Evaluation steps cannot download lm-eval's datasets here: they check
that their model and tasks resolve offline. Each launch line runs with DRY_RUN=1 and stub
gcloud / ssh (as tests/test_launch.py does).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
from typing import Any, Optional

import jax
import numpy as np
import pytest

from instruct_pt import cli, commands, config, parallel, run_dir
from instruct_pt.data import sources
from instruct_pt.data import tokenizer as tokenizer_lib
from instruct_pt.model import hf, store
from instruct_pt.model.config import get_preset
from instruct_pt.train import optim

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUCKET = "gs://YOUR_BUCKET"
# Every step runs on the TPU VM through this prefix; the commands block sets NAME and ZONE.
LAUNCH = "launch/tpu_vm.sh run $NAME --zone $ZONE --"
PREAMBLE = (
    "NAME=my-tpu ZONE=us-east5-a",
    "launch/tpu_vm.sh create $NAME --zone $ZONE --accelerator v5p-64",
    "launch/tpu_vm.sh setup $NAME --zone $ZONE --extras tpu,eval",
    "launch/tpu_vm.sh run $NAME --zone $ZONE -- pip install torch --index-url "
    "https://download.pytorch.org/whl/cpu",
)


@dataclasses.dataclass(frozen=True)
class Step:
  """One command of a recipe.

  Attributes:
    title: what it does, as the commands block's comment says.
    command: the `instruct-pt ...` command line (shell words; `LAUNCH` runs it).
  """

  title: str
  command: str


@dataclasses.dataclass(frozen=True)
class Experiment:
  """One experiment of the paper and the steps that run it.

  Attributes:
    name: the experiment.
    paper: where the paper summary (docs/design.md, sections s.1 to s.6) describes it.
    model: the model preset it trains or evaluates (its configs must name it).
    steps: its commands, in order.
  """

  name: str
  paper: str
  model: str
  steps: tuple[Step, ...]


@dataclasses.dataclass(frozen=True)
class Input:
  """What a user puts in the bucket (or on every worker) before running the steps.

  Attributes:
    path: the path or glob the steps read.
    what: what it holds.
  """

  path: str
  what: str


def _synthesize(config_file: str, corpus: str, output: str) -> str:
  return (f"instruct-pt synthesize --gin_file={config_file} "
          f"--gin_param=\"synthesize.model='{BUCKET}/runs/synthesizer'\" "
          f"--gin_param=\"synthesize.input_pattern='{BUCKET}/{corpus}'\" "
          f"--run_dir={BUCKET}/synthesis/{output}")


_VARIANTS = {"vanilla": "Vanilla PT (raw RefinedWeb only)",
             "instruct": "Instruct PT (raw + augmented texts + synthesizer data)"}


def _from_scratch(size: str, model: str) -> Experiment:
  steps = [Step(f"{size}: train {name}",
                f"instruct-pt train --gin_file=configs/data/general_{variant}_pt.gin "
                f"--gin_file=configs/pretrain/{model}.gin "
                f"--run_dir={BUCKET}/runs/{model}_{variant}")
           for variant, name in _VARIANTS.items()]
  steps += [Step(f"{size}: evaluate {variant.capitalize()} PT on the general suite",
                 f"instruct-pt evaluate --run_dir={BUCKET}/runs/{model}_{variant} "
                 f"--tasks=paper_general --output_dir=eval/{model}_{variant}")
            for variant in _VARIANTS]
  steps.append(Step(f"{size}: Vanilla PT and Instruct PT side by side (Table 1)",
                    f"instruct-pt evaluate --compare eval/{model}_vanilla eval/{model}_instruct "
                    f"--output_dir=eval/{model}"))
  return Experiment(f"From scratch, {size}: Vanilla PT vs Instruct PT, 100B tokens", "s.4, s.6",
                    model, tuple(steps))


def _continual(domain: str, data: str, texts: str, corpus: str, augmented: str, suite: str,
               import_base: bool) -> Experiment:
  steps = []
  if import_base:
    steps.append(Step("Import Llama-3-8B (base, not Instruct)",
                      f"instruct-pt convert --from_hf=/models/Meta-Llama-3-8B "
                      f"--run_dir={BUCKET}/models/llama3_8b"))
  steps += [
      Step(f"Convert every {texts} with the synthesizer (M=3 rounds)",
           _synthesize("configs/synthesis/instruction_synthesizer_7b_domain.gin",
                       f"{corpus}/*.jsonl", augmented)),
      Step("Continually pre-train Llama-3-8B on them, mixed 1:1 with general instructions",
           f"instruct-pt train --gin_file=configs/data/{data}_cpt.gin "
           f"--gin_file=configs/continual/llama3_8b.gin "
           f"--run_dir={BUCKET}/runs/llama3_8b_{data}"),
      Step(f"Evaluate on the {domain} suite (AdaptLLM's tasks, from the hub)",
           f"instruct-pt evaluate --run_dir={BUCKET}/runs/llama3_8b_{data} --tasks={suite} "
           f"--output_dir=eval/llama3_8b_{data}"),
  ]
  return Experiment(f"Continual pre-training on {domain}: Llama-3-8B", "s.5, s.6", "llama3_8b",
                    tuple(steps))


EXPERIMENTS = (
    Experiment("Instruction synthesizer: Mistral-7B fine-tuned on context → pairs", "s.1",
               "mistral_7b", (
                   Step("Import Mistral-7B-v0.1, the synthesizer's base",
                        f"instruct-pt convert --from_hf=/models/Mistral-7B-v0.1 "
                        f"--run_dir={BUCKET}/models/mistral_7b"),
                   Step("Fine-tune it on the context → pairs collection (loss on the pairs)",
                        f"instruct-pt train --gin_file=configs/synthesizer/mistral_7b.gin "
                        f"--run_dir={BUCKET}/runs/synthesizer"),
               )),
    Experiment("Synthesis: RefinedWeb texts set aside for conversion (1/5), M=2 rounds",
               "s.1, s.3", "mistral_7b", (
                   Step("Convert the set-aside RefinedWeb texts (M=2 rounds)",
                        _synthesize("configs/synthesis/instruction_synthesizer_7b.gin",
                                    "refinedweb_for_synthesis/*.parquet", "refinedweb")),
               )),
    _from_scratch("500M", "instructlm_500m"),
    _from_scratch("1.3B", "instructlm_1_3b"),
    _continual("biomedicine", "biomed", "PubMed abstract", "pubmed", "pubmed", "paper_biomed",
               import_base=True),
    _continual("finance", "finance", "financial news text", "financial_news", "finance",
               "paper_finance", import_base=False),
)

INPUTS = (
    Input("/models/Mistral-7B-v0.1",
          "Hugging Face `mistralai/Mistral-7B-v0.1` (config.json, safetensors, tokenizer), a "
          "local copy on every worker"),
    Input(f"{BUCKET}/synthesizer_collection/*/shard/*.jsonl",
          "the released `instruction-pretrain/ft-instruction-synthesizer-collection`, one folder "
          "per dataset, records `{\"context\", \"QA_list\": [{\"Q\", \"A\"}]}`"),
    Input(f"{BUCKET}/refinedweb/*.parquet",
          "RefinedWeb texts kept raw: 4/5 of a 200M-text subset, Parquet with `content`"),
    Input(f"{BUCKET}/refinedweb_for_synthesis/*.parquet",
          "the other 1/5, which synthesis converts (same format)"),
    Input("/models/Meta-Llama-3-8B",
          "Hugging Face `meta-llama/Meta-Llama-3-8B`, a local copy on every worker"),
    Input(f"{BUCKET}/pubmed/*.jsonl",
          "PubMed abstracts: The Pile's rows `{\"text\", \"meta\"}`, decompressed"),
    Input(f"{BUCKET}/financial_news/*.jsonl",
          "financial news as `{\"text\"}` rows (yours: the paper's corpus was not released)"),
    Input(f"{BUCKET}/instructions/*.jsonl",
          "general instructions as `{\"prompt\", \"response\"}` rows (e.g. OpenOrca, LIMA, "
          "WizardLM converted; plain text, no chat template)"),
)

# The sizes every train and synthesize step is shrunk to (16 rows: the recipes that take two
# micro-batches still give each of the 8 forced CPU devices a row of each).
TINY_TRAIN = {"num_steps": 2, "batch_size": 16, "seq_len": 64, "log_every": 1}
TINY_SLOTS = 8  # prompts per synthesis round; a multiple of the 8 forced CPU devices
TINY_VOCAB = 400  # the stand-in SentencePiece tokenizer (<= the tiny preset's 512)


# ---- Rendering (what docs/recipes.md shows) -------------------------------------------------


def numbered_steps() -> list[tuple[int, Experiment, Step]]:
  """Every step with its number (from 1, in table order) and its experiment."""
  steps = [(experiment, step) for experiment in EXPERIMENTS for step in experiment.steps]
  return [(number, experiment, step) for number, (experiment, step) in enumerate(steps, 1)]


def _gin_files(command: str) -> list[str]:
  return [word.split("=", 1)[1] for word in shlex.split(command)
          if word.startswith("--gin_file=")]


def experiment_rows() -> list[list[str]]:
  """The cells of the experiments table: experiment, paper section, model, configs, steps."""
  rows = []
  for experiment in EXPERIMENTS:
    numbers = [n for n, e, _ in numbered_steps() if e is experiment]
    configs = dict.fromkeys(f for step in experiment.steps for f in _gin_files(step.command))
    span = str(numbers[0]) if len(numbers) == 1 else f"{numbers[0]}–{numbers[-1]}"
    rows.append([experiment.name, experiment.paper, f"`{experiment.model}`",
                 ", ".join(f"`{f}`" for f in configs), span])
  return rows


EXPERIMENTS_HEADER = ["Experiment", "Paper", "Model", "Configs", "Steps"]
INPUTS_HEADER = ["Path", "What"]


def _table(header: list[str], rows: list[list[str]]) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def render_experiments() -> str:
  """The experiments table (markdown)."""
  return _table(EXPERIMENTS_HEADER, experiment_rows())


def render_inputs() -> str:
  """The table of what goes into the bucket and onto the workers (markdown)."""
  return _table(INPUTS_HEADER, [[f"`{i.path}`", i.what] for i in INPUTS])


def _shell_word(word: str) -> str:
  """`word` as the shell reads it back: as is when safe (or a `$VARIABLE`), else a flag's value
  in double quotes (`--gin_param="synthesize.model='...'"`), else single-quoted."""
  if word.startswith("$") or re.fullmatch(r"[\w@%+=:,./-]+", word):
    return word
  flag, equals, value = word.partition("=") if word.startswith("--") else ("", "", word)
  if re.search(r'["$`\\!]', value):
    return flag + equals + shlex.quote(value)
  return f'{flag}{equals}"{value}"'


def _wrap(words: list[str], width: int = 96) -> str:
  """Shell words as lines of at most `width` characters joined by backslashes."""
  lines, line = [], ""
  for word in map(_shell_word, words):
    if line and len(line) + 1 + len(word) > width - 2:
      lines.append(line + " \\")
      line = "    " + word
    else:
      line = f"{line} {word}" if line else word
  return "\n".join(lines + [line])


def launch_words(step: Step) -> list[str]:
  """The launch line of `step` as shell words (`$NAME` / `$ZONE` left for the shell).

  Args:
    step: the step.
  """
  return LAUNCH.split() + shlex.split(step.command)


def render_commands() -> str:
  """The commands block (bash): the TPU VM preamble, then each step, numbered."""
  parts = ["\n".join(PREAMBLE)]
  for number, _, step in numbered_steps():
    parts.append(f"# {number}. {step.title}\n{_wrap(launch_words(step))}")
  return "```bash\n" + "\n\n".join(parts) + "\n```\n"


# ---- Reading the section back -----------------------------------------------------------------


def _section() -> tuple[pathlib.Path, str]:
  """The Recipes section: docs/recipes.md's "# Recipes" (up to its first "## " heading), else
  RECIPES_SECTION.md's "## Recipes"."""
  for path in (ROOT / "docs" / "recipes.md", ROOT / "RECIPES_SECTION.md"):
    if not path.exists():
      continue
    match = re.search(r"^#{1,2} Recipes\n(.*?)(?=^## |\Z)", path.read_text(encoding="utf-8"),
                      re.MULTILINE | re.DOTALL)
    if match:
      return path, match.group(1)
  raise AssertionError("neither docs/recipes.md nor RECIPES_SECTION.md has a Recipes section")


def _cells(line: str) -> list[str]:
  return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _parse_table(text: str, header: list[str]) -> list[list[str]]:
  """The rows (cells stripped) of the markdown table in `text` whose header is `header`."""
  lines = text.splitlines()
  starts = [i for i, line in enumerate(lines) if line.startswith("|") and _cells(line) == header]
  assert starts, f"no table with header {header}"
  rows = []
  for line in lines[starts[0] + 2:]:
    if not line.startswith("|"):
      break
    rows.append(_cells(line))
  return rows


def _parse_commands(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
  """The preamble lines and the (comment, shell words) of each command of the commands block
  (the ```bash block that starts with the preamble's first line)."""
  blocks = re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
  block = next((b for b in blocks if b.startswith(PREAMBLE[0])), None)
  assert block is not None, f"no ```bash block starting with {PREAMBLE[0]!r}"
  preamble, *chunks = block.strip().split("\n\n")
  commands = []
  for chunk in chunks:
    comment, *lines = chunk.splitlines()
    commands.append((comment, shlex.split(" ".join(l.rstrip("\\").strip() for l in lines))))
  return preamble.splitlines(), commands


def test_readme_shows_the_recipes():
  """The section's experiments table, commands and inputs table are this file's tables."""
  path, text = _section()
  hint = (f"{path.name}'s Recipes section differs from tests/test_recipes.py; its rendering:\n\n"
          f"{render_experiments()}\n{render_commands()}\n{render_inputs()}")
  assert _parse_table(text, EXPERIMENTS_HEADER) == experiment_rows(), hint
  assert _parse_table(text, INPUTS_HEADER) == [[f"`{i.path}`", i.what] for i in INPUTS], hint
  preamble, commands = _parse_commands(text)
  assert preamble == list(PREAMBLE), hint
  assert commands == [(f"# {n}. {step.title}", launch_words(step))
                      for n, _, step in numbered_steps()], hint


# ---- The full-size configs --------------------------------------------------------------------


def _args(words: list[str]):
  """argparse's namespace of `instruct-pt` words (without the program name)."""
  return cli.build_parser().parse_args(words)


def _parsed_run(words: list[str]) -> Any:
  """The TrainRun / SynthesizeRun the CLI would build from `words` (gin parsed, nothing run)."""
  args = _args(words)
  make = {"train": config.train_run, "synthesize": config.synthesize_run}[args.command]
  return make(args.run_dir, args.gin_file, args.gin_param)


def _strings(value: Any) -> list[str]:
  """Every string inside a run config (dataclasses, dicts, tuples)."""
  if isinstance(value, str):
    return [value]
  if dataclasses.is_dataclass(value):
    return [s for f in dataclasses.fields(value) for s in _strings(getattr(value, f.name))]
  if isinstance(value, dict):
    return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
  if isinstance(value, (tuple, list)):
    return [s for v in value for s in _strings(v)]
  return []


@pytest.mark.parametrize("number", [n for n, _, s in numbered_steps()
                                    if shlex.split(s.command)[1] == "train"])
def test_full_size_config_names_the_experiments_model(number):
  """The un-shrunk train configs parse and name the experiment's model preset, whose config
  (with the run's overrides) resolves to a paper-size model without making its parameters;
  the optimizer builds, its learning rate rising to the peak and staying positive to the end;
  fine-tuning and continual runs start from an import of that model, from-scratch runs name a
  real tokenizer (not bytes)."""
  _, experiment, step = numbered_steps()[number - 1]
  run = _parsed_run(shlex.split(step.command)[1:])
  assert run.model.preset == experiment.model
  # the smallest, instructlm_500m, has 0.55B
  assert commands.model_config(run.model).num_params() > 4e8
  _, schedule = optim.make_optimizer(run.optimizer, run.train.num_steps)
  peak, last = (float(schedule(s)) for s in (run.optimizer.warmup_steps, run.train.num_steps))
  assert peak == pytest.approx(run.optimizer.learning_rate) and 0 < last < peak
  if run.model.init_from is None:
    assert run.model.tokenizer != "byte"
  else:
    assert run.model.init_from == f"{BUCKET}/models/{experiment.model}"


# ---- Where the data flows ---------------------------------------------------------------------


def _outputs(words: list[str]) -> list[str]:
  """What a step writes: its run directory or evaluation output."""
  args = _args(words)
  return [path for path in (getattr(args, "run_dir", None), getattr(args, "output_dir", None))
          if path and not (args.command == "evaluate" and path == args.run_dir)]


def _reads(words: list[str]) -> list[str]:
  """The bucket paths, worker paths and evaluation outputs a step reads."""
  args = _args(words)
  if args.command == "convert":
    return [args.from_hf]
  if args.command == "evaluate":
    return args.compare or [args.run_dir]
  return [s for s in _strings(_parsed_run(words))
          if s.startswith((BUCKET, "/models/")) and s != args.run_dir]


def test_every_path_a_step_reads_is_an_input_or_an_earlier_output():
  """Steps connect: each read is an `INPUTS` path or under what an earlier step wrote, and
  every input is read by some step."""
  written, unread = [], {i.path for i in INPUTS}
  for number, _, step in numbered_steps():
    words = shlex.split(step.command)[1:]
    for path in _reads(words):
      unread.discard(path)
      assert path in {i.path for i in INPUTS} or any(
          path == out or path.startswith(out + "/") for out in written), (
              f"step {number} reads {path}, which no input or earlier step provides")
    written += _outputs(words)
  assert not unread, f"inputs no step reads: {sorted(unread)}"


# ---- The steps at tiny size -------------------------------------------------------------------


def _texts(count: int, seed: int = 0) -> list[str]:
  """Short paragraphs of the embedded demo corpus."""
  paragraphs = [p for p in sources.demo_corpus() if 80 <= len(p) <= 300]
  rng = np.random.default_rng(seed)
  return [paragraphs[i] for i in rng.choice(len(paragraphs), count, replace=False)]


def _write_jsonl(path: pathlib.Path, records: list[dict]) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _write_parquet(path: pathlib.Path, texts: list[str]) -> None:
  import pyarrow as pa  # pylint: disable=import-outside-toplevel
  from pyarrow import parquet  # pylint: disable=import-outside-toplevel
  path.parent.mkdir(parents=True, exist_ok=True)
  parquet.write_table(pa.table({"content": texts, "url": [f"https://example.com/{i}"
                                                          for i in range(len(texts))]}), path)


def _write_hf_checkpoint(path: pathlib.Path, tokenizer, sliding_window: Optional[int]) -> None:
  """A tiny random Llama (or Mistral, with a sliding window) Hugging Face directory."""
  model_config = get_preset("tiny", sliding_window=sliding_window, tie_embeddings=False)
  mesh = parallel.create_mesh((1, -1, 1))
  abstract, _ = store.param_shardings(model_config, mesh, parallel.LOGICAL_AXIS_RULES)
  rng = np.random.default_rng(0)
  params = jax.tree_util.tree_map(
      lambda leaf: rng.normal(0, 0.02, leaf.shape).astype(np.float32), abstract)
  hf.save_hf_model(params, model_config, str(path), special_ids={
      "bos": tokenizer.bos_id, "eos": tokenizer.eos_id, "pad": tokenizer.pad_id})
  tokenizer_lib.save_tokenizer(tokenizer, path)


def _write_inputs(bucket: pathlib.Path, models: pathlib.Path) -> None:
  """Tiny stand-ins of every `INPUTS` entry (one writer per path)."""
  tokenizer = tokenizer_lib.train_sentencepiece(_texts(600, seed=9), TINY_VOCAB,
                                                models / "spm")
  writers = {
      "/models/Mistral-7B-v0.1": lambda: _write_hf_checkpoint(
          models / "Mistral-7B-v0.1", tokenizer, sliding_window=32),
      "/models/Meta-Llama-3-8B": lambda: _write_hf_checkpoint(
          models / "Meta-Llama-3-8B", tokenizer, sliding_window=None),
      f"{BUCKET}/synthesizer_collection/*/shard/*.jsonl": lambda: [_write_jsonl(
          bucket / "synthesizer_collection" / dataset / "shard" / "00000.jsonl",
          [{"context": text, "QA_list": [{"Q": "What is this text about?", "A": text[:40]}]}
           for text in _texts(6, seed)]) for seed, dataset in enumerate(("squad", "race"))],
      f"{BUCKET}/refinedweb/*.parquet": lambda: _write_parquet(
          bucket / "refinedweb" / "part-00000.parquet", _texts(24, seed=2)),
      f"{BUCKET}/refinedweb_for_synthesis/*.parquet": lambda: _write_parquet(
          bucket / "refinedweb_for_synthesis" / "part-00000.parquet", _texts(24, seed=3)),
      f"{BUCKET}/pubmed/*.jsonl": lambda: _write_jsonl(
          bucket / "pubmed" / "pubmed-00.jsonl",
          [{"text": t, "meta": {"pile_set_name": "PubMed Abstracts"}} for t in _texts(24, 4)]),
      f"{BUCKET}/financial_news/*.jsonl": lambda: _write_jsonl(
          bucket / "financial_news" / "news-00.jsonl", [{"text": t} for t in _texts(24, 5)]),
      f"{BUCKET}/instructions/*.jsonl": lambda: _write_jsonl(
          bucket / "instructions" / "instructions-00.jsonl",
          [{"prompt": f"Summarize: {t}", "response": t[:60]} for t in _texts(12, 6)]),
  }
  assert set(writers) == {i.path for i in INPUTS}, "every input needs a tiny stand-in"
  for write in writers.values():
    write()


class _Local:
  """Maps the recipes' placeholders to the local stand-ins: `gs://YOUR_BUCKET` to a folder,
  `/models/...` to tiny Hugging Face checkpoints.

  Args:
    bucket: the local bucket folder.
    models: the folder of the stand-in checkpoints.
  """

  def __init__(self, bucket: pathlib.Path, models: pathlib.Path):
    self.bucket, self.models = str(bucket), str(models)

  def __call__(self, value: Any) -> Any:
    """`value` (a string, or a config holding strings) with the placeholders replaced."""
    if isinstance(value, str):
      value = re.sub(r"(?<![\w/])/models/", self.models + "/", value)
      return value.replace(BUCKET, self.bucket)
    if dataclasses.is_dataclass(value):
      return dataclasses.replace(value, **{f.name: self(getattr(value, f.name))
                                           for f in dataclasses.fields(value)})
    if isinstance(value, dict):
      return {self(k): self(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
      return type(value)(self(v) for v in value)
    return value


def _shrink(run: Any) -> Any:
  """`run` at test size: the tiny model, 2 short steps or one small synthesis shard, on a
  (1, -1, 1) mesh of the 8 forced CPU devices. Training uses the default optimizer, which 2
  steps cannot tell from the recipe's (built at full size in
  `test_full_size_config_names_the_experiments_model`), so that the steps with the same model
  settings share their compiled programs."""
  mesh = dataclasses.replace(run.mesh, shape=(1, -1, 1))
  if isinstance(run, config.TrainRun):
    return dataclasses.replace(run, model=dataclasses.replace(run.model, preset="tiny"),
                               train=dataclasses.replace(run.train, **TINY_TRAIN), mesh=mesh,
                               optimizer=optim.OptimizerConfig())
  documents = TINY_SLOTS * run.synthesis.num_rounds  # one shard, TINY_SLOTS prompts a round
  return dataclasses.replace(run, mesh=mesh, synthesis=dataclasses.replace(
      run.synthesis, documents_per_shard=documents, max_documents=documents,
      num_slots=TINY_SLOTS, max_len=512, max_new_tokens=8))


def tiny_words(step: Step, local: _Local) -> list[str]:
  """The `instruct-pt` words (without the program name) that run `step` at test size: its own
  words with the placeholders replaced, then, for train and synthesize, gin bindings of every
  setting `_shrink` or the placeholders change (the rest stays the command's own).

  Args:
    step: the step.
    local: the placeholder mapping.
  """
  words = [local(word) for word in shlex.split(step.command)[1:]]
  if words[0] not in ("train", "synthesize"):
    return words
  run = _parsed_run(words)
  own = set(config.to_gin(run).splitlines())
  changed = [line for line in config.to_gin(local(_shrink(run))).splitlines()
             if line and not line.startswith("#") and line not in own]
  return words + [f"--gin_param={line}" for line in changed]


@dataclasses.dataclass
class _Outcome:
  words: list[str]
  error: str = ""


@pytest.fixture(scope="module")
def tiny_recipes(tmp_path_factory):
  """Runs every train, convert and synthesize step at test size, in order, in one local
  bucket; returns each step's outcome (its words, and its error line if it failed) by number.

  Steps with the same model and optimizer compile once (the session's compilation cache,
  conftest.py). The log line's packing measurement, which
  reads four batches through a second SeqIO pipeline before training, is skipped.
  """
  pytest.importorskip("seqio")  # the data extra: every recipe trains through SeqIO
  from instruct_pt.data import seqio_feed  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp("recipes")
  local = _Local(root / "bucket", root / "models")
  _write_inputs(root / "bucket", root / "models")
  outcomes = {}
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(seqio_feed.SeqIOFeed, "packing_efficiency", lambda self, *_: math.nan)
    for number, _, step in numbered_steps():
      words = tiny_words(step, local)
      outcomes[number] = outcome = _Outcome(words)
      if words[0] == "evaluate":
        continue
      stderr = io.StringIO()
      with contextlib.redirect_stderr(stderr):
        status = cli.main(words)
      if status:
        outcome.error = stderr.getvalue().strip().splitlines()[-1]
  return outcomes


def _metrics(path: pathlib.Path) -> list[dict]:
  return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("number", [n for n, _, s in numbered_steps()
                                    if shlex.split(s.command)[1] != "evaluate"])
def test_step_runs_at_tiny_size(tiny_recipes, number):
  """Convert writes a model source; train runs 2 steps with finite losses on the recipe's
  mixture and checkpoints the last; synthesize converts its shard into augmented texts."""
  outcome = tiny_recipes[number]
  assert not outcome.error, f"step {number} ({' '.join(outcome.words)}): {outcome.error}"
  args = _args(outcome.words)
  out = pathlib.Path(args.run_dir)
  if args.command == "convert":
    assert run_dir.source_kind(str(out)) == "run"
    assert run_dir.load(str(out), with_params=False).tokenizer.vocab_size == TINY_VOCAB
  elif args.command == "train":
    losses = [m["loss"] for m in _metrics(out) if "loss" in m]
    assert len(losses) == TINY_TRAIN["num_steps"] and all(map(math.isfinite, losses))
    assert (out / "checkpoints" / str(TINY_TRAIN["num_steps"])).is_dir()
    mixture = _parsed_run(shlex.split(numbered_steps()[number - 1][2].command)[1:]).data.mixture
    assert f"data.mixture = {mixture!r}" in (out / "config.gin").read_text()
  else:
    stats = json.loads((out / "stats.json").read_text())
    assert stats["documents"] == TINY_SLOTS * _parsed_run(outcome.words).synthesis.num_rounds
    texts = [json.loads(line)["text"] for line in (out / "shard-00000.jsonl").open()]
    assert texts and all(texts)


@pytest.mark.parametrize("number", [n for n, _, s in numbered_steps()
                                    if shlex.split(s.command)[1] == "evaluate"])
def test_evaluation_step_resolves_offline(tiny_recipes, number):
  """What runs without lm-eval's datasets: the model an evaluation reads exists (as the tiny
  step before it left it) and its suite resolves to the shipped group; a comparison reads
  earlier evaluations' outputs."""
  pytest.importorskip("lm_eval")
  from instruct_pt.evaluation import runner  # pylint: disable=import-outside-toplevel
  from instruct_pt.evaluation.tasks import suites  # pylint: disable=import-outside-toplevel
  step = numbered_steps()[number - 1][2]
  assert not _args(shlex.split(step.command)[1:]).output_dir.startswith("gs://"), (
      "evaluate writes its results with local file calls: a gs:// output_dir would become a "
      "local folder named gs:")
  args = _args(tiny_recipes[number].words)
  if args.compare:
    earlier = [_args(shlex.split(s.command)[1:]).output_dir for n, _, s in numbered_steps()
               if n < number and shlex.split(s.command)[1] == "evaluate"]
    assert set(args.compare) <= set(earlier)
    return
  assert run_dir.load(args.run_dir, with_params=False).config.embed_dim == 64  # tiny
  _, tasks = runner.resolve_tasks([args.tasks])
  assert tasks == [args.tasks] and suites.PAPER_SUITES[args.tasks].lm_eval_tasks


# ---- The launch lines -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dry_run_env(tmp_path_factory) -> dict[str, str]:
  """DRY_RUN=1 and a PATH whose gcloud / ssh fail loudly if called."""
  stubs = tmp_path_factory.mktemp("stub_bin")
  for name in ("gcloud", "ssh"):
    (stubs / name).write_text(f"#!/bin/sh\necho 'stub {name} called' >&2\nexit 97\n")
    (stubs / name).chmod(0o755)
  env = {k: v for k, v in os.environ.items()
         if k not in ("TPU_WORKER_HOSTNAMES", "JAX_COORDINATOR_ADDRESS")}
  return dict(env, DRY_RUN="1", PATH=f"{stubs}{os.pathsep}{env.get('PATH', '')}")


def _dry_run(words: list[str], env: dict[str, str]) -> list[list[str]]:
  """The gcloud commands a launch line prints under DRY_RUN, `$NAME` / `$ZONE` filled in from
  the preamble."""
  values = dict(pair.split("=") for pair in PREAMBLE[0].split())
  words = [values.get(w[1:], w) if w.startswith("$") else w for w in words]
  proc = subprocess.run(["bash", *words], env=env, capture_output=True, text=True, timeout=30,
                        cwd=ROOT, check=False)
  assert proc.returncode == 0 and "stub" not in proc.stderr, proc.stderr
  return [shlex.split(line[2:]) for line in proc.stdout.splitlines() if line.startswith("+ ")]


@pytest.mark.skipif(shutil.which("bash") is None or not sys.platform.startswith("linux"),
                    reason="the launch scripts need bash")
def test_launch_lines_dry_run(dry_run_env):
  """The preamble's create / setup and every step's `run` print their gcloud commands; each
  step's command reaches every worker with its words intact."""
  for line in PREAMBLE[1:]:
    assert _dry_run(shlex.split(line), dry_run_env)[-1][:4] == [
        "gcloud", "compute", "tpus", "tpu-vm"], line
  for number, _, step in numbered_steps():
    (ssh,) = _dry_run(launch_words(step), dry_run_env)
    assert "--worker=all" in ssh, number
    script = ssh[ssh.index("--command") + 1]
    started = re.search(r"nohup env (.*?) >\"\$log\"", script)
    assert started and shlex.split(started.group(1)) == shlex.split(step.command), number
