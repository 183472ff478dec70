#!/usr/bin/env bash
# launch/gpu_node.sh: install this repo on a GPU machine and run instruct-pt jobs there,
# either on this machine or on another one over ssh (--host user@host).
#
# Usage:
#   launch/gpu_node.sh setup [--host USER@HOST] [--repo_dir DIR] [--python PY] [--extras E]
#                            [--code_only]
#   launch/gpu_node.sh run   [--host USER@HOST] [--repo_dir DIR] -- COMMAND [ARGS...]
#   launch/gpu_node.sh logs  [--host USER@HOST] [--follow] [--lines N]
#   launch/gpu_node.sh stop  [--host USER@HOST] [--grace SECONDS]
#   launch/gpu_node.sh --help
# Options take "--opt value" or "--opt=value".
#
# Where the code lives (--repo_dir):
#   without --host  this checkout (the folder above launch/), nothing is copied; a relative
#                   --repo_dir is relative to the current directory;
#   with --host     ~/instruct_pt on the host (relative paths are under the remote home);
#                   setup copies the working tree there: the files `git ls-files -co
#                   --exclude-standard` lists (tracked plus untracked-but-not-ignored, so no
#                   .venv, .git or runs/), streamed through `ssh HOST tar -x`.
#
# Subcommands:
#   setup  (Copies the tree, then) creates .venv with `PY -m venv` (default python3) and runs
#          `pip install -e '.[gpu]'` (--extras changes the extras). --code_only only copies
#          (the install is editable, so that is enough after code changes).
#   run    Starts COMMAND in --repo_dir with .venv active, detached with nohup, logging to
#          ~/instruct_pt_logs/<UTC timestamp>.log on the GPU machine, and prints that path.
#          A leading VAR=value word sets an environment variable (CUDA_VISIBLE_DEVICES=0 ...).
#          One process drives all the GPUs of the node.
#   logs   Prints the last --lines lines (default 100) of the newest log; --follow keeps
#          following it (Ctrl-C to stop; the job keeps running).
#   stop   SIGTERM to the jobs `run` started (their whole process group), which makes the
#          trainer save a checkpoint at the next step boundary and exit; after --grace
#          seconds (default 120) whatever is left gets SIGKILL.
#
# ssh options (port, key, jump host) go in ~/.ssh/config. The GPU machine needs Linux
# (/proc), python3 with venv, and the CUDA driver; pip brings the CUDA libraries.
#
# Environment:
#   DRY_RUN=1  print the ssh / sh commands (one line each, prefixed by "+ ") instead of
#              running them.
#
# Example:
#   launch/gpu_node.sh setup --host me@gpu-box
#   launch/gpu_node.sh run --host me@gpu-box -- instruct-pt train \
#     --gin_file=configs/pretrain/instructlm_500m.gin --run_dir=/data/runs/500m
#   launch/gpu_node.sh logs --host me@gpu-box --follow
set -euo pipefail

PROG=$(basename "$0")
# shellcheck source-path=SCRIPTDIR source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

SUBCMD=${1:-}
case $SUBCMD in
  -h | --help | help) usage; exit 0 ;;
  '') usage >&2; exit 2 ;;
  setup | run | logs | stop) shift ;;
  *) die "unknown subcommand '$SUBCMD' (expected setup, run, logs or stop)" ;;
esac

HOST='' REPO_DIR='' PYTHON=python3 EXTRAS=gpu CODE_ONLY=0 FOLLOW=0 LINES=100 GRACE=120
REST=()

split_eq_args "$@"
set -- ${ARGS[@]+"${ARGS[@]}"}
while (($#)); do
  case $1 in
    --) shift; REST=("$@"); break ;;
    -h | --help) usage; exit 0 ;;
    --host) need_value "$@"; HOST=$2; shift ;;
    --repo_dir) only_for "$1" setup run; need_value "$@"; REPO_DIR=$2; shift ;;
    --python) only_for "$1" setup; need_value "$@"; PYTHON=$2; shift ;;
    --extras) only_for "$1" setup; need_value "$@"; EXTRAS=$2; shift ;;
    --code_only) only_for "$1" setup; CODE_ONLY=1 ;;
    --follow | -f) only_for "$1" logs; FOLLOW=1 ;;
    --lines | -n) only_for "$1" logs; need_value "$@"; LINES=$2; shift ;;
    --grace) only_for "$1" stop; need_value "$@"; GRACE=$2; shift ;;
    -*) die "unknown option '$1' for '$SUBCMD'" ;;
    *) die "unexpected argument '$1' (the command to run goes after --; the machine is --host)" ;;
  esac
  shift
done

if [[ $SUBCMD != run && ${#REST[@]} -gt 0 ]]; then
  die "$SUBCMD: unexpected arguments after --: ${REST[*]}"
fi
if [[ -z $REPO_DIR ]]; then
  if [[ -n $HOST ]]; then REPO_DIR=$LAUNCH_REMOTE_REPO_DIR; else REPO_DIR=$LAUNCH_ROOT; fi
elif [[ -z $HOST && $REPO_DIR != /* ]]; then
  REPO_DIR=$PWD/$REPO_DIR  # on this machine, relative means relative to here
fi
HINT_HOST=${HOST:+ --host $(shquote_one "$HOST")}

# Runs a one-line sh script on the GPU machine.
on_target() {
  if [[ -n $HOST ]]; then run_cmd ssh "$HOST" "$1"; else run_cmd sh -c "$1"; fi
}

case $SUBCMD in
  setup)
    repo=$(target_dir_expr "$REPO_DIR")
    if [[ -n $HOST ]]; then
      unpack="mkdir -p $repo && tar -xzf - -C $repo"
      if is_dry_run; then
        printf '+ %s | %s\n' "$(source_tarball_description)" "$(shquote ssh "$HOST" "$unpack")"
      else
        info "copying $LAUNCH_ROOT to $HOST:$REPO_DIR"
        # shellcheck disable=SC2029  # $unpack is quoted for the remote shell on purpose
        source_tarball | ssh "$HOST" "$unpack"
      fi
    fi
    on_target "$(render_setup "$repo" "$PYTHON" "$EXTRAS" "$((1 - CODE_ONLY))")"
    info "next: $0 run$HINT_HOST -- instruct-pt train ..."
    ;;

  run)
    ((${#REST[@]})) || die "run: missing the command (put it after --)"
    ts=$(timestamp)
    on_target "$(render_run "$(target_dir_expr "$REPO_DIR")" "$ts" '' "${REST[@]}")"
    echo "log: ~/$LAUNCH_LOG_DIR/$ts.log${HOST:+ on $HOST}"
    info "follow it with: $0 logs$HINT_HOST --follow"
    ;;

  logs)
    check_uint --lines "$LINES"
    on_target "$(render_logs "$LINES" "$FOLLOW")"
    ;;

  stop)
    check_uint --grace "$GRACE"
    on_target "$(render_stop "$GRACE")"
    ;;
esac
