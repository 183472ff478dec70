"""`instruct-pt <command> --gin_file=... --gin_param=... --run_dir=...`.

One function per command. Each parses gin, builds plain config values and hands them to the
deep code. Errors a user can cause are printed as one line naming the value, file or line,
with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional, Sequence

_USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError)


def _add_gin_flags(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--gin_file", action="append", default=[],
                      help="gin config file (repeatable); paths relative to the repo work too")
  parser.add_argument("--gin_param", action="append", default=[],
                      help='gin binding, e.g. --gin_param="train.num_steps=100" (repeatable)')
  parser.add_argument("--run_dir", required=True,
                      help="run directory (local path or gs://); re-running resumes")


def train_command(args: argparse.Namespace) -> int:
  """Trains a model from gin configs; resumes from the run directory's latest checkpoint."""
  from instruct_pt import config, parallel  # pylint: disable=import-outside-toplevel
  from instruct_pt.data import feed, sources, vocab  # pylint: disable=import-outside-toplevel
  from instruct_pt.model import checkpoints  # pylint: disable=import-outside-toplevel
  from instruct_pt.train import loop  # pylint: disable=import-outside-toplevel

  parallel.maybe_initialize_distributed()
  config.parse(args.gin_file, args.gin_param)
  model_cfg, train_cfg, optimizer_cfg, mesh_cfg = config.build_run_configs()
  mesh = parallel.create_mesh(mesh_cfg.shape)
  rules = mesh_cfg.rules()

  init_params = None
  tokenizer = vocab.ByteVocabulary()
  if train_cfg.init_from:
    model_cfg = config.model_config(preset=train_cfg.init_from)
    tokenizer = vocab.load_vocabulary(os.path.join(train_cfg.init_from,
                                                   checkpoints.TOKENIZER_DIR))
    init_params = lambda: checkpoints.restore_params(  # pylint: disable=unnecessary-lambda-assignment
        train_cfg.init_from, model_cfg, mesh, rules)
  if model_cfg.vocab_size < tokenizer.vocab_size:
    raise ValueError(f"model vocab_size={model_cfg.vocab_size} is smaller than the "
                     f"tokenizer's {tokenizer.vocab_size} ids")
  if train_cfg.mixture is None:
    train_feed = feed.text_feed(sources.demo_corpus("train"), tokenizer, train_cfg.seq_len,
                                train_cfg.batch_size, train_cfg.seed)
    eval_feed = feed.text_feed(sources.demo_corpus("held_out"), tokenizer, train_cfg.seq_len,
                               train_cfg.batch_size, train_cfg.seed)
    logging.info("demo corpus (numpy feed): packing efficiency %.1f%%",
                 100 * train_feed.packing_efficiency)
  else:
    train_feed, eval_feed = _seqio_feeds(config, train_cfg, tokenizer)

  config.write_run_config(args.run_dir, model_cfg)
  vocab.save_vocabulary(tokenizer, os.path.join(args.run_dir, checkpoints.TOKENIZER_DIR))
  result = loop.train(model_cfg, optimizer_cfg, train_cfg, mesh, rules, args.run_dir,
                      train_batches=train_feed.iterate,
                      eval_batches=eval_feed.iterate if eval_feed else None,
                      init_params=init_params)
  status = "preempted, checkpoint saved" if result.preempted else "done"
  print(f"train: {status} at step {result.step}. Run directory: {args.run_dir} "
        f"(metrics.jsonl, config.gin, checkpoints/, tensorboard/)")
  return 0


def _seqio_feeds(config, train_cfg, tokenizer):
  """Training and (when the mixture has a held_out split) evaluation feeds from SeqIO."""
  from instruct_pt.data import seqio_feed, seqio_vocab  # pylint: disable=import-outside-toplevel
  vocabulary = seqio_vocab.SeqIOVocabulary(tokenizer)
  names = config.register_data(vocabulary)
  if train_cfg.mixture not in names:
    raise ValueError(f"train.mixture={train_cfg.mixture!r} is not registered; registered: "
                     f"{', '.join(names)}")
  def make(split):
    return seqio_feed.SeqIOFeed(train_cfg.mixture, vocabulary, train_cfg.seq_len,
                                train_cfg.batch_size, seed=train_cfg.seed, split=split)
  train_feed = make("train")
  eval_feed = None
  if train_cfg.eval_every:
    try:
      eval_feed = make("held_out")
    except ValueError as e:
      logging.warning("no evaluation: %s has no held_out split (%s)", train_cfg.mixture, e)
  logging.info("SeqIO mixture %s: packing efficiency %.1f%%", train_cfg.mixture,
               100 * train_feed.packing_efficiency(num_batches=4))
  return train_feed, eval_feed


def data_command(args: argparse.Namespace) -> int:
  """`instruct-pt data inspect`: decoded examples, loss masks and token counts of a mixture."""
  from instruct_pt import config  # pylint: disable=import-outside-toplevel
  from instruct_pt.data import seqio_vocab, tasks, vocab  # pylint: disable=import-outside-toplevel
  config.parse(args.gin_file, args.gin_param)
  tokenizer = vocab.load_vocabulary(args.tokenizer)
  vocabulary = seqio_vocab.SeqIOVocabulary(tokenizer)
  names = config.register_data(vocabulary)
  if args.mixture not in names:
    raise ValueError(f"--mixture={args.mixture!r} is not registered; registered: "
                     f"{', '.join(names)}")
  print(tasks.inspect(args.mixture, vocabulary, args.seq_len, args.num_examples))
  return 0


def convert_command(args: argparse.Namespace) -> int:
  """Imports a GGUF / Hugging Face checkpoint into a run directory, or exports a run to HF."""
  from instruct_pt import parallel  # pylint: disable=import-outside-toplevel
  from instruct_pt.data import vocab  # pylint: disable=import-outside-toplevel
  from instruct_pt.model import checkpoints  # pylint: disable=import-outside-toplevel

  sources_given = [flag for flag in ("from_gguf", "from_hf", "from_run") if getattr(args, flag)]
  if len(sources_given) != 1:
    raise ValueError("give exactly one of --from_gguf, --from_hf, --from_run")
  if args.from_run and not args.to_hf:
    raise ValueError("--from_run needs --to_hf=OUT_DIR")
  if not args.from_run and not args.run_dir:
    raise ValueError(f"--{sources_given[0]} needs --run_dir=RUN")
  parallel.maybe_initialize_distributed()
  mesh = parallel.create_mesh(tuple(int(s) for s in args.mesh.split(",")))
  rules = parallel.LOGICAL_AXIS_RULES

  if args.from_run:
    model_cfg = checkpoints.read_model_config(args.from_run)
    params = checkpoints.restore_params(args.from_run, model_cfg, mesh, rules)
    tokenizer = vocab.load_vocabulary(os.path.join(args.from_run, checkpoints.TOKENIZER_DIR))
    checkpoints.save_hf_model(params, model_cfg, args.to_hf, dtype=args.dtype, special_ids={
        "bos": tokenizer.bos_id, "eos": tokenizer.eos_id, "pad": tokenizer.pad_id})
    vocab.save_vocabulary(tokenizer, args.to_hf)
    print(f"convert: wrote a Hugging Face model directory to {args.to_hf}")
    return 0

  if args.from_gguf:
    path = checkpoints.resolve_gguf(args.from_gguf)
    source = checkpoints.GGUFSource(path)
    tokenizer = vocab.gguf_vocabulary(path)
  else:
    source = checkpoints.SafetensorsSource(args.from_hf)
    path = os.path.join(args.from_hf, "config.json")
    has_tokenizer = any(os.path.isfile(os.path.join(args.from_hf, name))
                        for name in ("tokenizer.json", "tokenizer.model"))
    tokenizer = vocab.load_vocabulary(args.from_hf) if has_tokenizer else None
  model_cfg, params = checkpoints.import_checkpoint(source, path, mesh, rules,
                                                    param_dtype=args.param_dtype)
  checkpoints.save_run_params(args.run_dir, params, model_cfg)
  written = "the model config"
  if tokenizer is None:
    logging.warning("%s has no tokenizer.json or tokenizer.model: the run directory gets no "
                    "tokenizer/", args.from_hf)
  else:
    vocab.save_vocabulary(tokenizer, os.path.join(args.run_dir, checkpoints.TOKENIZER_DIR))
    written += " and the tokenizer"
  print(f"convert: wrote {model_cfg.num_params() / 1e6:.1f}M parameters to "
        f"{os.path.join(args.run_dir, checkpoints.PARAMS_DIR)}, {written} to {args.run_dir}")
  return 0


def _load_synthesizer(model: str, mesh, rules):
  """(model config, params on `mesh`, tokenizer) of a bundled GGUF name, a GGUF path or a run."""
  from instruct_pt.data import vocab  # pylint: disable=import-outside-toplevel
  from instruct_pt.model import checkpoints  # pylint: disable=import-outside-toplevel
  if model in checkpoints.BUNDLED_GGUF or model.endswith(".gguf"):
    path = checkpoints.resolve_gguf(model)
    config, params = checkpoints.import_checkpoint(checkpoints.GGUFSource(path), path, mesh,
                                                   rules)
    return config, params, vocab.gguf_vocabulary(path)
  config = checkpoints.read_model_config(model)
  return (config, checkpoints.restore_params(model, config, mesh, rules),
          vocab.load_vocabulary(os.path.join(model, checkpoints.TOKENIZER_DIR)))


def synthesize_command(args: argparse.Namespace) -> int:
  """Converts a raw corpus into instruction-augmented shards (resumable)."""
  import jax  # pylint: disable=import-outside-toplevel
  from instruct_pt import config, parallel  # pylint: disable=import-outside-toplevel
  from instruct_pt.synthesis import generate, pipeline  # pylint: disable=import-outside-toplevel

  parallel.maybe_initialize_distributed()
  config.parse(args.gin_file, args.gin_param)
  synthesis_cfg = config.synthesis_config()
  # Synthesis is data-parallel over hosts: each host's mesh holds only its own devices.
  mesh = parallel.create_mesh(synthesis_cfg.mesh_shape, jax.local_devices(), allow_subset=True)
  rules = parallel.LOGICAL_AXIS_RULES
  model_cfg, params, tokenizer = _load_synthesizer(synthesis_cfg.model, mesh, rules)
  if tokenizer.eos_id is None:
    raise ValueError(f"the tokenizer of {synthesis_cfg.model} has no EOS id to stop on")
  engine = generate.Engine(model_cfg, params, mesh, rules, eos_ids=[tokenizer.eos_id],
                           num_slots=synthesis_cfg.num_slots, max_len=synthesis_cfg.max_len)
  config.write_operative_config(args.run_dir)
  stats = pipeline.run(synthesis_cfg, pipeline.ShardConverter(engine, tokenizer, synthesis_cfg),
                       args.run_dir)
  print(f"synthesize: {stats['shards']} shards, {stats.get('documents', 0)} documents, "
        f"{stats.get('pairs', 0)} pairs ({stats['pairs_per_document']:.2f} per document), "
        f"{stats.get('malformed_pairs', 0)} malformed, {stats['tokens_per_second']:.0f} "
        f"generated tokens/s. Outputs and stats.json in {args.run_dir}")
  return 0


def tokenizer_command(args: argparse.Namespace) -> int:
  """Trains a SentencePiece tokenizer on a corpus (for from-scratch pre-training)."""
  from instruct_pt.data import sources, vocab  # pylint: disable=import-outside-toplevel
  documents = list(sources.read_documents(args.corpus, args.text_field))
  os.makedirs(args.output_dir, exist_ok=True)
  trained = vocab.train_sentencepiece(documents, args.vocab_size,
                                      os.path.join(args.output_dir, "spm"))
  vocab.save_vocabulary(trained, args.output_dir)
  print(f"tokenizer: trained a {trained.vocab_size}-piece SentencePiece model on "
        f"{len(documents)} documents; wrote {args.output_dir}/tokenizer.model")
  return 0


def demo_command(args: argparse.Namespace) -> int:
  """Runs the end-to-end demo on embedded defaults and prints a report."""
  from instruct_pt import demo  # pylint: disable=import-outside-toplevel
  demo.run(args.run_dir)
  return 0


def build_parser() -> argparse.ArgumentParser:
  """The `instruct-pt` argument parser."""
  parser = argparse.ArgumentParser(prog="instruct-pt", description=__doc__.splitlines()[0])
  commands = parser.add_subparsers(dest="command", required=True)
  train = commands.add_parser("train", help="train or continue training a model")
  _add_gin_flags(train)
  train.set_defaults(func=train_command)
  convert = commands.add_parser(
      "convert", help="import GGUF / Hugging Face checkpoints, export runs to Hugging Face")
  convert.add_argument("--from_gguf", help="a GGUF file, or a bundled model name (smollm2)")
  convert.add_argument("--from_hf", help="a local Hugging Face model directory")
  convert.add_argument("--from_run", help="a run directory to export")
  convert.add_argument("--run_dir", help="where an import writes params/, the model config "
                       "and tokenizer/")
  convert.add_argument("--to_hf", help="where an export writes the Hugging Face directory")
  convert.add_argument("--param_dtype", default="float32", choices=("float32", "bfloat16"),
                       help="dtype of imported parameters")
  convert.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                       help="dtype of exported tensors")
  convert.add_argument("--mesh", default="1,-1,1", help="data,fsdp,tensor mesh to load onto")
  convert.set_defaults(func=convert_command)
  synthesize = commands.add_parser(
      "synthesize", help="instruction-augment a corpus with a synthesizer model")
  _add_gin_flags(synthesize)
  synthesize.set_defaults(func=synthesize_command)
  tokenizer = commands.add_parser("tokenizer", help="train a SentencePiece tokenizer")
  tokenizer.add_argument("--corpus", required=True,
                         help='"demo", or a glob of .txt (blank-line separated) / .jsonl files')
  tokenizer.add_argument("--text_field", default="text", help="JSONL field with the text")
  tokenizer.add_argument("--vocab_size", type=int, required=True)
  tokenizer.add_argument("--output_dir", required=True)
  tokenizer.set_defaults(func=tokenizer_command)
  data = commands.add_parser("data", help="look at SeqIO tasks and mixtures")
  data_commands = data.add_subparsers(dest="data_command", required=True)
  inspect = data_commands.add_parser("inspect", help="decoded examples, loss masks, counts")
  inspect.add_argument("--mixture", required=True, help="a registered task or mixture")
  inspect.add_argument("--num_examples", type=int, default=3)
  inspect.add_argument("--seq_len", type=int, default=512, help="training sequence length")
  inspect.add_argument("--tokenizer", default="byte",
                       help='"byte", a tokenizer file/directory or a run\'s tokenizer/ dir')
  inspect.add_argument("--gin_file", action="append", default=[],
                       help="gin files with data.* registrations (repeatable)")
  inspect.add_argument("--gin_param", action="append", default=[])
  inspect.set_defaults(func=data_command)
  demo = commands.add_parser("demo", help="the pipeline on embedded defaults")
  demo.add_argument("--run_dir", default="runs/demo", help="where the demo writes")
  demo.set_defaults(func=demo_command)
  return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point of the `instruct-pt` console script."""
  level = os.environ.get("INSTRUCT_PT_LOG_LEVEL", "INFO")
  logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
  if level != "DEBUG":  # Orbax logs every save step at INFO through absl.
    logging.getLogger("absl").setLevel(logging.WARNING)
  args = build_parser().parse_args(argv)
  try:
    return args.func(args)
  except _USER_ERRORS as e:
    logging.debug("traceback of the error below", exc_info=True)
    print(f"instruct-pt {args.command}: error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
