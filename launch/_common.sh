# shellcheck shell=bash
# Helpers shared by launch/tpu_vm.sh and launch/gpu_node.sh. Sourced, never run on its own.
#
# The remote side of every subcommand is a one-line POSIX sh script (rendered from the
# templates below) handed to `gcloud ... ssh --command`, `ssh HOST` or `sh -c`, so that
# DRY_RUN=1 prints exactly one line per command. Written for bash >= 3.2 (macOS laptops).

# shellcheck disable=SC2034  # the constants are used by the scripts that source this file
LAUNCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAUNCH_LOG_DIR=instruct_pt_logs           # under $HOME on every machine
LAUNCH_REMOTE_REPO_DIR=instruct_pt        # default checkout, relative to $HOME on the target
LAUNCH_TARBALL=instruct_pt_src.tar.gz     # under $HOME on the target while setup copies the tree

die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  printf "Run '%s --help' for usage.\n" "$0" >&2
  exit 2
}

info() { printf '[%s] %s\n' "$PROG" "$*" >&2; }

# Prints the comment block at the top of the calling script (after the shebang).
usage() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

is_dry_run() { [[ -n ${DRY_RUN:-} && ${DRY_RUN} != 0 ]]; }

# Quotes one word for sh: bare when it only holds safe characters, else in single quotes.
shquote_one() {
  local s=$1 sq="'" out="'"
  if [[ -n $s && $s != *[![:alnum:]_./:=,@%+-]* ]]; then
    printf '%s' "$s"
    return
  fi
  while [[ $s == *$sq* ]]; do
    out=$out${s%%"$sq"*}$sq\\$sq$sq
    s=${s#*"$sq"}
  done
  printf '%s' "$out$s$sq"
}

# Quotes each argument and joins them with spaces: `sh -c "$(shquote "$@")"` runs "$@".
shquote() {
  local out='' arg
  for arg in "$@"; do
    out="$out${out:+ }$(shquote_one "$arg")"
  done
  printf '%s' "$out"
}

# Runs a command, or with DRY_RUN=1 prints it (quoted, one line, prefixed by "+ ") instead.
run_cmd() {
  if is_dry_run; then
    printf '+ %s\n' "$(shquote "$@")"
  else
    "$@"
  fi
}

# Replaces every occurrence of KEY in TEMPLATE by VALUE, literally (no pattern or `&` magic).
subst() {
  local t=$1 k=$2 v=$3 out=''
  while [[ $t == *"$k"* ]]; do
    out=$out${t%%"$k"*}$v
    t=${t#*"$k"}
  done
  printf '%s' "$out$t"
}

# Joins a template's lines into one line (every line ends in a separator or keyword).
one_line() {
  printf '%s' "$1" | tr '\n' ' ' | sed -e 's/  */ /g' -e 's/^ //' -e 's/ $//'
}

# A directory as sh words for the target machine: absolute paths as they are, relative ones
# (and "~/x" passed quoted) under the target's $HOME.
target_dir_expr() {
  local d=${1#\~/}
  # shellcheck disable=SC2016  # $HOME is expanded on the target, not here
  case $d in
    /*) shquote_one "$d" ;;
    *) printf '"$HOME"/%s' "$(shquote_one "$d")" ;;
  esac
}

timestamp() { date -u +%Y%m%d-%H%M%S; }

check_uint() {  # NAME VALUE
  [[ $2 =~ ^[0-9]+$ ]] || die "$1 must be a non-negative integer, got '$2'"
}

# --- the working tree -----------------------------------------------------------------------

# What `source_tarball` does, for DRY_RUN output.
source_tarball_description() {
  printf '(cd %s && git ls-files -co --exclude-standard -z | tar --null -T - -czf -)' \
    "$(shquote_one "$LAUNCH_ROOT")"
}

# Writes a gzipped tarball of the repo to stdout: the files git tracks plus untracked files
# that .gitignore does not exclude (so no .venv, runs/, caches). Outside a git checkout it
# falls back to the whole directory minus the usual heavy folders.
source_tarball() {
  (
    cd "$LAUNCH_ROOT" || exit
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
      git ls-files -co --exclude-standard -z |
        while IFS= read -r -d '' f; do
          if [[ -e $f || -L $f ]]; then printf '%s\0' "$f"; fi  # skip deleted tracked files
        done |
        tar --null -T - -czf -
    else
      info "$LAUNCH_ROOT is not a git checkout: copying it all but .git, .venv, runs, caches"
      tar --exclude=.git --exclude=.venv --exclude=runs --exclude=__pycache__ -czf - .
    fi
  )
}

# --- remote script templates (POSIX sh; @KEY@ placeholders) ---------------------------------

# Unpacks a copied tarball (if any), creates .venv and installs the package in editable mode.
# Keys: REPO (sh words), TARBALL, PYTHON, SPEC (quoted '.[extras]'), INSTALL (1/0).
# shellcheck disable=SC2016
SETUP_TEMPLATE='set -e;
mkdir -p @REPO@;
if [ -f "$HOME"/@TARBALL@ ]; then tar -xzf "$HOME"/@TARBALL@ -C @REPO@; rm -f "$HOME"/@TARBALL@; fi;
cd @REPO@;
install=@INSTALL@;
if [ "$install" = 0 ]; then echo "$(uname -n): code updated in $PWD"; exit 0; fi;
if [ ! -x .venv/bin/python ]; then
rm -rf .venv;
if ! @PYTHON@ -m venv .venv; then
echo "$(uname -n): @PYTHON@ -m venv failed; installing python3-venv" >&2;
rm -rf .venv;
sudo apt-get update -qq;
sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv;
@PYTHON@ -m venv .venv;
fi;
fi;
. .venv/bin/activate;
python -m pip install -q --upgrade pip;
python -m pip install -e @SPEC@;
python -c "import instruct_pt";
echo "$(uname -n): installed in $PWD/.venv";'

# Starts the command detached (own session, nohup, all fds redirected) inside the venv.
# Writes ~/instruct_pt_logs/TS.log and TS.pid ("PID STARTTIME" for `stop`).
# Keys: REPO, LOGDIR, TS, PREAMBLE (sh statements ending in ';', may be empty), CMD.
# shellcheck disable=SC2016
RUN_TEMPLATE='set -e;
cd @REPO@;
if [ ! -f .venv/bin/activate ]; then echo "$(uname -n): no .venv in $PWD: run setup first" >&2; exit 1; fi;
. .venv/bin/activate;
logs="$HOME"/@LOGDIR@;
mkdir -p "$logs";
log="$logs"/@TS@.log;
@PREAMBLE@
if command -v setsid >/dev/null 2>&1; then detach=setsid; else detach=; fi;
$detach nohup env @CMD@ >"$log" 2>&1 </dev/null &
pid=$!;
echo "$pid $(sed "s/.*) //" /proc/$pid/stat 2>/dev/null | cut -d" " -f20)" >"$logs"/@TS@.pid;
echo "$(uname -n): started pid $pid, log $log";'

# Prints the newest log. Keys: LOGDIR, LINES, FOLLOW ("-f" or empty).
# shellcheck disable=SC2016
LOGS_TEMPLATE='logs="$HOME"/@LOGDIR@;
log=$(ls -1t "$logs"/*.log 2>/dev/null | head -n 1);
if [ -z "$log" ]; then echo "$(uname -n): no logs in $logs" >&2; exit 1; fi;
echo "==> $(uname -n):$log <==";
exec tail -n @LINES@ @FOLLOW@ "$log";'

# SIGTERM to the process groups of the jobs `run` started (checked against their start time,
# so a recycled pid is never hit), wait up to GRACE seconds, then SIGKILL what is left.
# Keys: LOGDIR, GRACE.
# shellcheck disable=SC2016
STOP_TEMPLATE='logs="$HOME"/@LOGDIR@;
pstat() { sed "s/.*) //" "/proc/$1/stat" 2>/dev/null; };
alive() { s=$(pstat "$1" | cut -d" " -f1); [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]; };
pids=;
for f in "$logs"/*.pid; do
[ -f "$f" ] || continue;
p=; t=; read -r p t <"$f" || true;
if [ -n "$p" ] && alive "$p" && [ "$(pstat "$p" | cut -d" " -f20)" = "$t" ]; then pids="$pids $p"; else rm -f "$f"; fi;
done;
if [ -z "$pids" ]; then echo "$(uname -n): nothing to stop (no running job started by run)"; exit 0; fi;
echo "$(uname -n): SIGTERM to$pids; waiting up to @GRACE@ s for the checkpoint";
for p in $pids; do kill -TERM "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done;
n=0;
while [ "$n" -lt $((@GRACE@ * 2)) ]; do
left=;
for p in $pids; do if alive "$p"; then left="$left $p"; fi; done;
if [ -z "$left" ]; then break; fi;
sleep 0.5 2>/dev/null || sleep 1;
n=$((n + 1));
done;
left=;
for p in $pids; do if alive "$p"; then left="$left $p"; fi; done;
if [ -n "$left" ]; then
echo "$(uname -n): still running after @GRACE@ s: SIGKILL to$left";
for p in $left; do kill -KILL "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true; done;
else echo "$(uname -n): stopped"; fi;'

render_setup() {  # REPO_EXPR PYTHON EXTRAS INSTALL(1/0)
  local repo=$1 python=$2 extras=$3 install=$4 t
  # Templates are joined into one line first, so values (paths, commands) stay untouched.
  t=$(one_line "$SETUP_TEMPLATE")
  t=$(subst "$t" @REPO@ "$repo")
  t=$(subst "$t" @TARBALL@ "$(shquote_one "$LAUNCH_TARBALL")")
  t=$(subst "$t" @PYTHON@ "$(shquote_one "$python")")
  t=$(subst "$t" @SPEC@ "$(shquote_one ".[$extras]")")
  subst "$t" @INSTALL@ "$install"
}

render_run() {  # REPO_EXPR TS PREAMBLE CMD...
  local repo=$1 ts=$2 preamble=$3 t
  shift 3
  t=$(one_line "$RUN_TEMPLATE")
  t=$(subst "$t" @PREAMBLE@ "$(one_line "$preamble")")
  t=$(subst "$t" @REPO@ "$repo")
  t=$(subst "$t" @LOGDIR@ "$(shquote_one "$LAUNCH_LOG_DIR")")
  t=$(subst "$t" @TS@ "$ts")
  subst "$t" @CMD@ "$(shquote "$@")"
}

render_logs() {  # LINES FOLLOW(1/0)
  local t follow=
  if [[ $2 == 1 ]]; then follow=-f; fi
  t=$(one_line "$LOGS_TEMPLATE")
  t=$(subst "$t" @LOGDIR@ "$(shquote_one "$LAUNCH_LOG_DIR")")
  t=$(subst "$t" @LINES@ "$1")
  subst "$t" @FOLLOW@ "$follow"
}

render_stop() {  # GRACE
  local t
  t=$(one_line "$STOP_TEMPLATE")
  t=$(subst "$t" @LOGDIR@ "$(shquote_one "$LAUNCH_LOG_DIR")")
  subst "$t" @GRACE@ "$1"
}

# --- argument parsing -----------------------------------------------------------------------

# Splits "--opt=value" into "--opt" "value" (up to a lone "--") into the array ARGS.
# Usage: split_eq_args "$@"; set -- ${ARGS[@]+"${ARGS[@]}"}
split_eq_args() {
  ARGS=()
  while (($#)); do
    case $1 in
      --) ARGS+=("$@"); return ;;
      --*=*) ARGS+=("${1%%=*}" "${1#*=}") ;;
      *) ARGS+=("$1") ;;
    esac
    shift
  done
}

# need_value "$@": the option in $1 must be followed by a value.
need_value() {
  if (($# < 2)) || [[ $2 == -- ]]; then die "option $1 needs a value"; fi
}

# only_for OPTION SUBCOMMAND...: dies unless the current subcommand ($SUBCMD) is listed.
only_for() {
  local opt=$1 s
  shift
  for s in "$@"; do
    if [[ $SUBCMD == "$s" ]]; then return 0; fi
  done
  die "option $opt does not apply to '$SUBCMD'"
}
