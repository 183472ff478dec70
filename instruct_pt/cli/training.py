"""`instruct-pt train` and `instruct-pt finetune`: their parsers, handlers and summaries; each
one's `--help` lists every gin setting of its run."""

from __future__ import annotations

import argparse
import dataclasses

from instruct_pt.cli import common


def train_command(args: argparse.Namespace) -> int:
  """Trains a model from gin configs; resumes from the run directory's latest checkpoint.

  Args:
    args: the parsed flags of `instruct-pt train`.
  """
  from instruct_pt import commands, config  # pylint: disable=import-outside-toplevel
  from instruct_pt import run_dir  # pylint: disable=import-outside-toplevel
  run = config.train_run(args.run_dir, args.gin_file, args.gin_param)
  result = commands.train(dataclasses.replace(
      run, allow_changed_settings=args.allow_changed_settings))
  print(f"train: {_stop_status(result)} at step {result.step}. {_summary(result)}Newest "
        f"checkpoint: {run_dir.RunDir(args.run_dir).checkpoint_step(result.step)}. Run "
        f"directory: {args.run_dir} (metrics.jsonl, config.gin, checkpoints/, tensorboard/)")
  return 130 if result.stop_signal == "SIGINT" else 0


def _summary(result) -> str:
  """This invocation's last training and held-out loss, tokens and wall time, as a sentence
  (empty when it trained no step: the run had reached its last step before)."""
  if not result.losses:
    return "Nothing left to train. "
  last = max(result.losses)
  losses = f"Loss {result.losses[last]:.4f} at step {last}"
  if result.eval_losses:
    last_eval = max(result.eval_losses)
    losses += f", held-out loss {result.eval_losses[last_eval]:.4f} at step {last_eval}"
  minutes, seconds = divmod(round(result.seconds), 60)
  wall = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
  return f"{losses}; {result.tokens:,} tokens in {wall}. "


def _stop_status(result) -> str:
  """How a training run ended: done, preempted or interrupted (Ctrl-C), the latter two with
  their checkpoint saved."""
  if not result.preempted:
    return "done"
  if result.stop_signal == "SIGINT":
    return "interrupted (re-run the command to resume), checkpoint saved"
  return "preempted, checkpoint saved"


def finetune_command(args: argparse.Namespace) -> int:
  """Fine-tunes a model in two stages; re-running resumes in whichever stage it stopped.

  Args:
    args: the parsed flags of `instruct-pt finetune`.
  """
  from instruct_pt import commands, config, run_dir  # pylint: disable=import-outside-toplevel
  run = config.finetune_run(args.run_dir, args.gin_file, args.gin_param)
  result = commands.finetune(dataclasses.replace(
      run, allow_changed_settings=args.allow_changed_settings))
  status = _stop_status(result)
  out = run_dir.RunDir(args.run_dir)
  prompt = f"; the soft prompt: {out.prompt.name}" if out.prompt.exists() else ""
  print(f"finetune: {status} at stage {result.stage} step {result.step}. Run directory: "
        f"{args.run_dir} ({out.stage(1).path.name}/, {out.stage(2).path.name}/: checkpoints "
        f"and metrics; config.gin{prompt})")
  return 130 if result.stop_signal == "SIGINT" else 0


def train_help() -> str:
  """Every gin setting of `instruct-pt train`, with defaults."""
  from instruct_pt import config  # pylint: disable=import-outside-toplevel
  return common.run_settings_help(config.TrainRun)


def finetune_help() -> str:
  """Every gin setting of `instruct-pt finetune`, with defaults."""
  from instruct_pt import config  # pylint: disable=import-outside-toplevel
  return common.run_settings_help(config.FinetuneRun)


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # pylint: disable=protected-access
  """Adds `train` and `finetune`.

  Args:
    subparsers: the sub-parsers of `instruct-pt`, one per command.
  """
  train = common.add_command(
      subparsers, "train", "train or continue training a model",
      "Trains a model from gin settings (a recipe and --gin_param bindings), or resumes the "
      "run directory's newest checkpoint. Re-running the same command resumes; raising "
      "train.num_steps continues a finished run.",
      "instruct-pt train --gin_file=pretrain/tiny_cpu --gin_param=train.num_steps=200 "
      "--run_dir=runs/tiny", settings=train_help,
      settings_flag_help="show this help, with every gin setting of a training run, and exit")
  common.add_gin_flags(train)
  _add_allow_changed_settings(train, "train.num_steps")
  train.set_defaults(func=train_command)
  finetune = common.add_command(
      subparsers, "finetune",
      "two-stage fine-tuning: broad then specialized, or ProMoT (soft prompt, then model)",
      "Fine-tunes a model in two stages, each with its own checkpoints and metrics "
      "(RUN/stage1/, RUN/stage2/). Modes: broad_then_specialized (stage 1 on a broad "
      "mixture, stage 2 from its final weights on a specialized one) and promot (stage 1 "
      "trains a soft prompt with the model frozen, stage 2 the model with the prompt "
      "frozen; the prompt is saved as RUN/prompt.npy and used at inference for the "
      "fine-tuned task only: evaluate --soft_prompt=RUN). Re-running the same command "
      "resumes in whichever stage it stopped.",
      "instruct-pt finetune --gin_file=finetune/promot_tiny --run_dir=runs/promot",
      settings=finetune_help,
      settings_flag_help="show this help, with every gin setting of a fine-tuning run, and exit")
  common.add_gin_flags(finetune)
  _add_allow_changed_settings(finetune, "finetune.stage2_steps")
  finetune.set_defaults(func=finetune_command)


def _add_allow_changed_settings(parser: argparse.ArgumentParser, resumable: str) -> None:
  parser.add_argument("--allow_changed_settings", action="store_true",
                      help="resume with settings other than those the run has trained with "
                      f"(its config.gin is kept as config.N.gin); without it, only {resumable} "
                      "may change")
