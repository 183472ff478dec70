#!/usr/bin/env bash
# launch/tpu_vm.sh: create Cloud TPU VMs, install this repo on every worker, run jobs there.
#
# Usage:
#   launch/tpu_vm.sh create NAME --zone ZONE --accelerator TYPE [--version V]
#                           [--spot | --preemptible] [-- EXTRA_GCLOUD_FLAGS...]
#   launch/tpu_vm.sh setup  NAME --zone ZONE [--repo_dir DIR] [--python PY] [--extras E]
#                           [--code_only]
#   launch/tpu_vm.sh run    NAME --zone ZONE [--repo_dir DIR] -- COMMAND [ARGS...]
#   launch/tpu_vm.sh logs   NAME --zone ZONE [--worker N|all] [--follow] [--lines N]
#   launch/tpu_vm.sh stop   NAME --zone ZONE [--grace SECONDS]
#   launch/tpu_vm.sh delete NAME --zone ZONE [--yes]
#   launch/tpu_vm.sh --help
# Every subcommand also takes --project P. Options take "--opt value" or "--opt=value".
#
# Subcommands:
#   create  gcloud compute tpus tpu-vm create. --accelerator is the slice type (v5litepod-8,
#           v4-32, v5p-8, v6e-8, ...). --version defaults to the runtime Google lists for
#           JAX: v2-alpha-tpuv6e (v6e), v2-alpha-tpuv5 (v5p), v2-alpha-tpuv5-lite (v5e,
#           v5litepod), tpu-ubuntu2204-base (v4 and older). --spot (or the older
#           --preemptible) gets a cheap VM that Google may reclaim at any time.
#   setup   Copies the working tree to every worker (the files `git ls-files -co
#           --exclude-standard` lists: tracked plus untracked-but-not-ignored, so no .venv,
#           .git or runs/) into --repo_dir (default ~/instruct_pt; relative paths are under
#           the worker's home), then creates .venv there with `PY -m venv` (default python3)
#           and runs `pip install -e '.[tpu]'` (--extras changes the extras). Run it again
#           after changing code; --code_only only copies (the install is editable). Files
#           deleted locally are not deleted on the workers.
#   run     Starts COMMAND on all workers at once (--worker=all), in --repo_dir with .venv
#           active, detached with nohup, logging to ~/instruct_pt_logs/<UTC timestamp>.log
#           on each worker, and prints that path. A leading VAR=value word sets an
#           environment variable. On a multi-host slice (v4-32, v5litepod-16, ...) every
#           worker must run the same command: JAX runs one process per host and they only
#           make progress together; never start the trainer on one worker of a pod. There,
#           the run dir must be a gs:// path (or a filesystem all workers share): a local
#           path would give each worker its own partial checkpoint. On a multi-host slice,
#           run also exports JAX_COORDINATOR_ADDRESS (worker 0, port 8476, from the TPU
#           metadata) unless TPU_WORKER_HOSTNAMES or JAX_COORDINATOR_ADDRESS is already set,
#           so the trainer starts jax.distributed.
#   logs    Prints the newest log of one worker (--worker, default 0; "all" for every
#           worker): the last --lines lines (default 100), and with --follow keeps
#           following it (Ctrl-C to stop; the job keeps running).
#   stop    On all workers: SIGTERM to the jobs `run` started (their whole process group),
#           which makes the trainer save a checkpoint at the next step boundary and exit;
#           after --grace seconds (default 120) whatever is left gets SIGKILL.
#   delete  gcloud compute tpus tpu-vm delete (asks for confirmation unless --yes).
#
# Environment:
#   DRY_RUN=1  print the gcloud commands (one line each, prefixed by "+ ") instead of
#              running them; nothing is packed, copied or started.
#
# Example (single host v5e-8):
#   launch/tpu_vm.sh create my-tpu --zone us-west4-a --accelerator v5litepod-8 --spot
#   launch/tpu_vm.sh setup my-tpu --zone us-west4-a
#   launch/tpu_vm.sh run my-tpu --zone us-west4-a -- instruct-pt train \
#     --gin_file=configs/pretrain/instructlm_500m.gin --run_dir=gs://BUCKET/runs/500m
#   launch/tpu_vm.sh logs my-tpu --zone us-west4-a --follow
set -euo pipefail

PROG=$(basename "$0")
# shellcheck source-path=SCRIPTDIR source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

# On a multi-host slice, points jax.distributed at worker 0 (what JAX's own Cloud TPU cluster
# detection would pick), so that the trainer, which looks for TPU_WORKER_HOSTNAMES or
# JAX_COORDINATOR_ADDRESS, initializes it. Single-host VMs list one endpoint: nothing is set.
# shellcheck disable=SC2016
TPU_RUN_PREAMBLE='if [ -z "${TPU_WORKER_HOSTNAMES:-}" ] && [ -z "${JAX_COORDINATOR_ADDRESS:-}" ]; then
eps=$(curl -sf --connect-timeout 3 --max-time 10 -H "Metadata-Flavor: Google" http://metadata.google.internal/computeMetadata/v1/instance/attributes/worker-network-endpoints 2>/dev/null || true);
case "$eps" in *,*) JAX_COORDINATOR_ADDRESS=$(printf "%s" "${eps%%,*}" | cut -d: -f3):8476; export JAX_COORDINATOR_ADDRESS; echo "$(uname -n): JAX_COORDINATOR_ADDRESS=$JAX_COORDINATOR_ADDRESS";; esac;
fi;'

default_version() {
  case $1 in
    v6e*) echo v2-alpha-tpuv6e ;;
    v5p*) echo v2-alpha-tpuv5 ;;
    v5litepod* | v5e*) echo v2-alpha-tpuv5-lite ;;
    *) echo tpu-ubuntu2204-base ;;
  esac
}

SUBCMD=${1:-}
case $SUBCMD in
  -h | --help | help) usage; exit 0 ;;
  '') usage >&2; exit 2 ;;
  create | setup | run | logs | stop | delete) shift ;;
  *) die "unknown subcommand '$SUBCMD' (expected create, setup, run, logs, stop or delete)" ;;
esac

NAME='' ZONE='' PROJECT='' ACCELERATOR='' VERSION='' SPOT=0 PREEMPTIBLE=0
REPO_DIR=$LAUNCH_REMOTE_REPO_DIR PYTHON=python3 EXTRAS=tpu CODE_ONLY=0
WORKER=0 FOLLOW=0 LINES=100 GRACE=120 YES=0
REST=()

split_eq_args "$@"
set -- ${ARGS[@]+"${ARGS[@]}"}
while (($#)); do
  case $1 in
    --) shift; REST=("$@"); break ;;
    -h | --help) usage; exit 0 ;;
    --zone) need_value "$@"; ZONE=$2; shift ;;
    --project) need_value "$@"; PROJECT=$2; shift ;;
    --accelerator | --accelerator-type | --accelerator_type)
      only_for "$1" create; need_value "$@"; ACCELERATOR=$2; shift ;;
    --version) only_for "$1" create; need_value "$@"; VERSION=$2; shift ;;
    --spot) only_for "$1" create; SPOT=1 ;;
    --preemptible) only_for "$1" create; PREEMPTIBLE=1 ;;
    --repo_dir) only_for "$1" setup run; need_value "$@"; REPO_DIR=$2; shift ;;
    --python) only_for "$1" setup; need_value "$@"; PYTHON=$2; shift ;;
    --extras) only_for "$1" setup; need_value "$@"; EXTRAS=$2; shift ;;
    --code_only) only_for "$1" setup; CODE_ONLY=1 ;;
    --worker) only_for "$1" logs; need_value "$@"; WORKER=$2; shift ;;
    --follow | -f) only_for "$1" logs; FOLLOW=1 ;;
    --lines | -n) only_for "$1" logs; need_value "$@"; LINES=$2; shift ;;
    --grace) only_for "$1" stop; need_value "$@"; GRACE=$2; shift ;;
    --yes | -y | --quiet) only_for "$1" delete; YES=1 ;;
    -*) die "unknown option '$1' for '$SUBCMD'" ;;
    *)
      if [[ -n $NAME ]]; then
        die "unexpected argument '$1' (the command to run goes after --)"
      fi
      NAME=$1 ;;
  esac
  shift
done

[[ -n $NAME ]] || die "$SUBCMD: missing the TPU VM name"
[[ -n $ZONE ]] || die "$SUBCMD: missing --zone"
if [[ $SUBCMD != create && $SUBCMD != run && ${#REST[@]} -gt 0 ]]; then
  die "$SUBCMD: unexpected arguments after --: ${REST[*]}"
fi

GCLOUD=(gcloud compute tpus tpu-vm)
WHERE=(--zone="$ZONE")
if [[ -n $PROJECT ]]; then WHERE+=(--project="$PROJECT"); fi
HINT_WHERE="--zone $(shquote_one "$ZONE")${PROJECT:+ --project $(shquote_one "$PROJECT")}"

case $SUBCMD in
  create)
    [[ -n $ACCELERATOR ]] || die "create: missing --accelerator (e.g. v5litepod-8, v4-32)"
    if ((SPOT && PREEMPTIBLE)); then die "create: --spot and --preemptible exclude each other"; fi
    cmd=("${GCLOUD[@]}" create "$NAME" "${WHERE[@]}" --accelerator-type="$ACCELERATOR"
         --version="${VERSION:-$(default_version "$ACCELERATOR")}")
    if ((SPOT)); then cmd+=(--spot); fi
    if ((PREEMPTIBLE)); then cmd+=(--preemptible); fi
    cmd+=(${REST[@]+"${REST[@]}"})
    run_cmd "${cmd[@]}"
    info "next: $0 setup $(shquote_one "$NAME") $HINT_WHERE"
    ;;

  setup)
    script=$(render_setup "$(target_dir_expr "$REPO_DIR")" "$PYTHON" "$EXTRAS" "$((1 - CODE_ONLY))")
    if is_dry_run; then
      tarball=${TMPDIR:-/tmp}/$LAUNCH_TARBALL
      printf '+ %s > %s\n' "$(source_tarball_description)" "$(shquote_one "$tarball")"
    else
      tmpdir=$(mktemp -d)
      trap 'rm -rf "$tmpdir"' EXIT
      tarball=$tmpdir/$LAUNCH_TARBALL
      source_tarball >"$tarball"
      info "packed $(tar -tzf "$tarball" | wc -l | tr -d ' ') files ($(du -h "$tarball" | cut -f1)) from $LAUNCH_ROOT"
    fi
    run_cmd "${GCLOUD[@]}" scp "$tarball" "$NAME:$LAUNCH_TARBALL" "${WHERE[@]}" --worker=all --recurse
    run_cmd "${GCLOUD[@]}" ssh "$NAME" "${WHERE[@]}" --worker=all --command "$script"
    info "next: $0 run $(shquote_one "$NAME") $HINT_WHERE -- instruct-pt train ..."
    ;;

  run)
    ((${#REST[@]})) || die "run: missing the command (put it after --)"
    ts=$(timestamp)
    script=$(render_run "$(target_dir_expr "$REPO_DIR")" "$ts" "$TPU_RUN_PREAMBLE" "${REST[@]}")
    run_cmd "${GCLOUD[@]}" ssh "$NAME" "${WHERE[@]}" --worker=all --command "$script"
    echo "log: ~/$LAUNCH_LOG_DIR/$ts.log on every worker"
    info "follow it with: $0 logs $(shquote_one "$NAME") $HINT_WHERE --follow"
    ;;

  logs)
    [[ $WORKER == all || $WORKER =~ ^[0-9]+$ ]] || die "logs: --worker must be a number or all"
    check_uint --lines "$LINES"
    run_cmd "${GCLOUD[@]}" ssh "$NAME" "${WHERE[@]}" --worker="$WORKER" \
      --command "$(render_logs "$LINES" "$FOLLOW")"
    ;;

  stop)
    check_uint --grace "$GRACE"
    run_cmd "${GCLOUD[@]}" ssh "$NAME" "${WHERE[@]}" --worker=all --command "$(render_stop "$GRACE")"
    ;;

  delete)
    cmd=("${GCLOUD[@]}" delete "$NAME" "${WHERE[@]}")
    if ((YES)); then cmd+=(--quiet); fi
    run_cmd "${cmd[@]}"
    ;;
esac
