"""`instruct-pt evaluate`: its parser, and the handler that checks which of its modes the
flags ask for (one model, routed experts, or a comparison of runs) and lays the flags over
the evaluate.* gin settings."""

from __future__ import annotations

import argparse

from instruct_pt.cli import common


def evaluate_command(args: argparse.Namespace) -> int:
  """Evaluates a run with lm-evaluation-harness, or sets several runs' results side by side.

  Args:
    args: the parsed flags of `instruct-pt evaluate`.

  Raises:
    ValueError: the flags mix or miss what a mode needs.
  """
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  evaluates = any(flag is not None for flag in (args.run_dir, args.experts, args.partition))
  if evaluates == (args.compare is not None):
    raise ValueError("give either --run_dir (evaluate a model) or --compare RUN_A RUN_B ...")
  if args.cluster_field is not None and args.compare is None:
    raise ValueError("--cluster_field applies to --compare only")
  if args.compare is not None:
    comparison = commands.compare(args.compare, args.name, args.output_dir,
                                  cluster_field=args.cluster_field)
    print(comparison.table)
    print(f"evaluate --compare: wrote {comparison.table_path} and {comparison.chart_path}")
    return 0
  if not args.tasks:
    raise ValueError("--tasks is required with --run_dir (e.g. --tasks=demo)")
  scoring = config.scoring_config(args.gin_file, args.gin_param)  # flags win over evaluate.*
  run = config.EvaluateRun(
      model=args.run_dir, tasks=tuple(t.strip() for t in args.tasks.split(",")),
      num_fewshot=args.num_fewshot, limit=args.limit, include_path=tuple(args.include_path),
      output_dir=args.output_dir, name=args.name,
      max_length=scoring.max_length if args.max_length is None else args.max_length,
      row_len=args.row_len or scoring.row_len,
      batch_tokens=args.batch_tokens or scoring.batch_tokens, soft_prompt=args.soft_prompt,
      unit_mask=args.unit_mask, mesh=common.mesh_config(args), temperature=args.temperature,
      top_k=args.top_k or None, overwrite=args.overwrite, adaptllm_dir=args.adaptllm_dir,
      experts=tuple(e.strip() for e in (args.experts or "").split(",") if e.strip()),
      partition=args.partition)
  results = commands.evaluate(run)
  if results is not None:
    from instruct_pt.evaluation import runner  # pylint: disable=import-outside-toplevel
    print(runner.results_table(results))
    print(f"evaluate: wrote {commands.results_dir(run)}/{runner.RESULTS_FILE} and "
          f"{runner.TABLE_FILE}")
  return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # pylint: disable=protected-access
  """Adds `evaluate`.

  Args:
    subparsers: the sub-parsers of `instruct-pt`, one per command.
  """
  evaluate = common.add_command(
      subparsers, "evaluate", "evaluate a run with lm-evaluation-harness; compare runs' results",
      "Evaluates one model (--run_dir), or routed experts (--experts with --partition), with "
      "lm-evaluation-harness on the host's devices, and writes results.json and results.md "
      "to RUN/eval/<name>/ (an earlier evaluation of that name is kept unless --overwrite); "
      "or sets several runs' results side by side with paired differences (--compare).",
      "instruct-pt evaluate --run_dir=runs/tiny --tasks=demo --limit=20")
  evaluate.add_argument("--run_dir", help="the model: a run directory (results go to "
                        "RUN/eval/<name>/), Hugging Face directory, GGUF or bundled name")
  evaluate.add_argument("--tasks", help="comma-separated lm-eval tasks or groups: demo, "
                        "paper_general, paper_biomed, paper_finance, adaptllm_law, arc_easy, "
                        "... (globs allowed)")
  evaluate.add_argument("--num_fewshot", type=int, default=None,
                        help="few-shot examples (default: each task's own)")
  evaluate.add_argument("--limit", type=int, default=None, help="documents per task")
  evaluate.add_argument("--overwrite", action="store_true",
                        help="replace an earlier evaluation's results of the same name")
  evaluate.add_argument("--adaptllm_dir", default=None,
                        help="a local copy of the AdaptLLM task data (DIR/<config>/test.json "
                        "or .jsonl; default: the Hugging Face hub), for paper_biomed, "
                        "paper_finance, adaptllm_law")
  evaluate.add_argument("--include_path", action="append", default=[],
                        help="another directory of lm-eval task YAML files (repeatable)")
  evaluate.add_argument("--name", default=None, help="the results' name under RUN/eval/ "
                        "(default: tasks, few-shot and limit); with --compare: which one")
  evaluate.add_argument("--output_dir", default=None,
                        help="where results (or the comparison) go instead")
  evaluate.add_argument("--compare", nargs="+", metavar="RUN",
                        help="set these runs' (or results.json files') results side by side")
  evaluate.add_argument("--cluster_field", default=None,
                        help="with --compare: the doc field clustering multiple-choice items "
                        "made from one source in the paired tests (e.g. paragraph for the "
                        "demo's reading comprehension)")
  evaluate.add_argument("--max_length", type=int, default=None,
                        help="tokens read per request (default: the model's max_seq_len)")
  evaluate.add_argument("--row_len", type=int, default=None,
                        help="tokens per packed row (default: evaluate.row_len, 256)")
  evaluate.add_argument("--batch_tokens", type=int, default=None,
                        help="tokens per scoring call (default: evaluate.batch_tokens, 4096)")
  evaluate.add_argument("--soft_prompt", default=None,
                        help="read this soft prompt ahead of every request: a ProMoT "
                        "fine-tuning run (its prompt.npy) or a .npy file; for the fine-tuned "
                        "task only (results go to RUN/eval/<name>-soft_prompt/)")
  evaluate.add_argument("--experts", default=None,
                        help="routed experts: comma-separated model sources, one per cluster "
                        "of --partition, in cluster order (c-BTM ensemble)")
  evaluate.add_argument("--partition", default=None,
                        help="with --experts: the partition directory (instruct-pt "
                        "partition); results go to PARTITION/eval/<name>/")
  evaluate.add_argument("--temperature", type=float, default=0.1,
                        help="with --experts: routing softmax temperature (default 0.1)")
  evaluate.add_argument("--top_k", type=int, default=1,
                        help="with --experts: experts mixed per request; 1 runs one forward "
                        "pass, 0 mixes all (default 1)")
  evaluate.add_argument("--unit_mask", default=None,
                        help="ablate these units (zero them in every forward pass): a units "
                        "file of analyze-units (units.json or its directory); log-likelihood "
                        "tasks only (results go to RUN/eval/<name>-unit_mask/)")
  evaluate.add_argument("--mesh", default=None,
                        help="data,fsdp,tensor mesh of each host's devices (default: the gin "
                        "files' mesh.shape, else 1,-1,1)")
  evaluate.add_argument("--gin_file", action="append", default=[],
                        help="an evaluation recipe (repeatable): evaluate.* scoring settings "
                        "and mesh.*, e.g. configs/evaluation/llama3_8b.gin")
  evaluate.add_argument("--gin_param", action="append", default=[],
                        help='evaluate.* and mesh settings, e.g. '
                        '--gin_param="evaluate.batch_tokens=65536"')
  evaluate.set_defaults(func=evaluate_command)
