"""`instruct-pt partition` and `instruct-pt analyze-units`, the commands of
`instruct_pt.analysis`: their parsers and handlers, and the `--help` of partition, which
describes each option from `config.PartitionRun`."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap

from instruct_pt.cli import common


def partition_command(args: argparse.Namespace) -> int:
  """Partitions a corpus by context (c-BTM) and writes the partition directory.

  Args:
    args: the parsed flags of `instruct-pt partition`.
  """
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  summary = commands.partition(config.PartitionRun(
      **{name: value for name, value in vars(args).items() if name in _PARTITION_FLAGS}))
  purity = "" if summary.get("purity") is None else (
      f"; purity {summary['purity']:.3f} (chance {summary['chance_purity']:.3f})")
  routed = "" if "router_accuracy" not in summary else (
      f"; router accuracy {summary['router_accuracy']:.3f} on {summary['held_out_documents']} "
      f"held-out documents")
  print(f"partition: {summary['documents']} documents into {summary['clusters']} clusters of "
        f"{summary['sizes']}{purity}{routed}. Wrote {args.output_dir} (partition.json, "
        f"featurizer, centres.npy, assignments.jsonl, clusters/); train expert j on "
        f"--gin_param=\"data.partitions={{'part': '{args.output_dir}'}}\" "
        f"--gin_param=\"data.mixture='part_j'\"")
  return 0


# The flags of `instruct-pt partition`, one per `config.PartitionRun` field (parsed here;
# described and defaulted by PartitionRun, read only when --help asks).
_PARTITION_FLAGS = {"output_dir": str, "corpus": str, "text_field": str, "label_field": str,
                    "held_out": str, "max_documents": int, "clusters": int, "features": str,
                    "model": str, "dims": int, "max_terms": int, "min_df": int,
                    "max_tokens": int, "prefix_chars": int, "seed": int}


def partition_help() -> str:
  """Every option of `instruct-pt partition`, with its default and description."""
  from instruct_pt import config  # pylint: disable=import-outside-toplevel
  described = common.documented_attributes(config.PartitionRun)
  parts = ["options (each a PartitionRun field):"]
  for field in dataclasses.fields(config.PartitionRun):
    default = " (required)" if field.name == "output_dir" else f" (default: {field.default!r})"
    parts.append(textwrap.fill(f"--{field.name}{default}: {described[field.name]}", 90,
                               initial_indent="  ", subsequent_indent="      "))
  return "\n".join(parts)


def analyze_units_command(args: argparse.Namespace) -> int:
  """Localizes task-relevant units and writes units.json, t_values.npy and units.png.

  Args:
    args: the parsed flags of `instruct-pt analyze-units`.
  """
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  run = config.AnalyzeUnitsRun(
      model=args.model, task_stimuli=args.task_stimuli, control_stimuli=args.control_stimuli,
      output_dir=args.output_dir, kind=args.kind, pooling=args.pooling, top_percent=args.top_percent,
      max_tokens=args.max_tokens, batch_size=args.batch_size, text_field=args.text_field,
      mesh=common.mesh_config(args))
  found = commands.analyze_units(run)
  from instruct_pt.analysis import units  # pylint: disable=import-outside-toplevel
  print(units.summary(found))
  print(f"analyze-units: wrote {args.output_dir}/units.json, t_values.npy and units.png")
  return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # pylint: disable=protected-access
  """Adds `partition` and `analyze-units`.

  Args:
    subparsers: the sub-parsers of `instruct-pt`, one per command.
  """
  partition = common.add_command(
      subparsers, "partition", "partition a corpus by context without labels (c-BTM): "
      "clusters, centres, one SeqIO task per cluster",
      "Embeds a corpus (TF-IDF -> truncated SVD, or a frozen model's mean-pooled hidden "
      "states), clusters it with balanced k-means and writes OUTPUT_DIR: partition.json, "
      "featurizer.json/.npz, centres.npy, assignments.jsonl and clusters/cluster-NNN.jsonl. "
      "Register the clusters as SeqIO tasks with data.partitions={'NAME': OUTPUT_DIR} "
      "(tasks NAME_0, NAME_1, ...), train one expert per cluster with instruct-pt train, "
      "and evaluate them routed with instruct-pt evaluate --partition=OUTPUT_DIR "
      "--experts=RUN_0,RUN_1,...",
      "instruct-pt partition --corpus=demo --clusters=4 --output_dir=runs/partition",
      settings=partition_help,
      settings_flag_help="show this help, with every option described, and exit")
  for name, kind in _PARTITION_FLAGS.items():
    partition.add_argument(f"--{name}", type=kind, required=name == "output_dir",
                           default=argparse.SUPPRESS, help=argparse.SUPPRESS)
  partition.set_defaults(func=partition_command)
  units = common.add_command(
      subparsers, "analyze-units", "localize task-relevant units (Welch t, task vs control "
      "stimuli) for ablation and targeted tuning",
      "Records every unit of the model (residual: each dimension after each block; mlp: "
      "SwiGLU hidden units) on task and control stimuli, pooled per stimulus, computes "
      "Welch's t on |activation| per unit from streaming statistics, and selects the "
      "global top --top_percent% (AlKhamissi et al., arXiv 2411.02280). Writes "
      "OUTPUT_DIR/units.json, t_values.npy and units.png. Use the units file to ablate "
      "(lm-eval --model_args unit_mask=OUTPUT_DIR/units.json) or for targeted tuning "
      "(--gin_param=\"train.trainable_units='OUTPUT_DIR/units.json'\" or "
      "train.freeze_units).",
      "instruct-pt analyze-units --run_dir=smollm2 --task_stimuli=task.jsonl "
      "--control_stimuli=control.jsonl --output_dir=runs/units")
  units.add_argument("--run_dir", dest="model", required=True,
                     help="the model: a run directory, Hugging Face directory, GGUF file or "
                     "bundled name (smollm2)")
  units.add_argument("--task_stimuli", required=True,
                     help="task stimuli: a text file (one per line), a .jsonl file, or "
                     "builtin:NAME[:COUNT] with NAME one of sentences, pseudowords, code, prose")
  units.add_argument("--control_stimuli", required=True,
                     help="control stimuli, in the same forms (e.g. builtin:pseudowords)")
  units.add_argument("--output_dir", required=True, help="where units.json, t_values.npy and "
                     "units.png go")
  units.add_argument("--kind", default="residual", choices=("residual", "mlp"),
                     help="units: residual (each dimension after each block, the paper's) or "
                     "mlp (SwiGLU hidden units) (default: residual)")
  units.add_argument("--pooling", default="last", choices=("last", "mean"),
                     help="pool each stimulus by its last token or the mean over its tokens "
                     "(default: last)")
  units.add_argument("--top_percent", type=float, default=1.0,
                     help="share of all units to select, in percent (default: 1.0)")
  units.add_argument("--max_tokens", type=int, default=12,
                     help="each stimulus is cut to this many tokens (default: 12)")
  units.add_argument("--batch_size", type=int, default=16,
                     help="stimuli per forward pass (default: 16)")
  units.add_argument("--text_field", default="text",
                     help="the JSONL field holding each stimulus (default: text)")
  units.add_argument("--mesh", default="1,-1,1", help="data,fsdp,tensor mesh to load onto")
  units.add_argument("--gin_param", action="append", default=[],
                     help='mesh settings, e.g. --gin_param="mesh.rule_overrides=(...)"')
  units.set_defaults(func=analyze_units_command)
