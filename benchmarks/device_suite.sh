#!/usr/bin/env bash
# The accelerator suite in one command: training MFU, synthesis throughput, evaluation speed.
#
#   bash benchmarks/device_suite.sh [--smoke] [--out DIR] [--parts "env train ..."]
#                                   [--caps "train=400 synthesis=300"]
#
# Runs each part in its own process (GPU memory is returned between parts) under its own time
# cap: the jax parts from benchmarks/device_suite.py, the torch parts (synthesis_hf, eval_hf)
# from benchmarks/suite_torch.py, whose processes never import jax (jax would take
# XLA_PYTHON_CLIENT_MEM_FRACTION of the GPU on starting there, leaving torch too little for a
# 7B model). Writes one JSON per part to DIR (default: $OUT, else runs/device_suite),
# suite.log (everything printed) and summary.md, and ends with the summary table. The whole
# suite stays under 9.2 minutes on one H200 (caps below, compiles included); --smoke runs
# every part at toy sizes on CPU in about 2 minutes (tests/test_device_suite.py runs it).
#
# It runs on the accelerator image as it is (python3 with jax/jaxlib CUDA, flax, optax,
# orbax-checkpoint, etils, torch, transformers; no TensorFlow, no network): the project is
# used from this tree through PYTHONPATH (nothing installed, so the image's jax is used), and
# the three packages the image lacks travel as wheels in the ignored .whl/ folder, installed
# with --no-deps into /tmp (their own dependencies are in the image). Fill .whl/ once, on a
# machine with the package registry:
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 --platform any -d .whl \
#       gin-config==0.5.0 tensorboardX==2.6.5 gguf==0.19.0
#
# (268 KiB.) lm-eval is not carried: it needs about a dozen more packages the image lacks
# (datasets, evaluate, pytablewriter, rouge-score, ...; rouge-score's current release has no
# wheel), untried against the image's versions; so there the eval_hf part notes at once that
# it skipped the comparison. The Hugging Face hub is used offline (HF_HUB_OFFLINE=1).
#
# On a lent GPU: one device `run` call with carry [".whl"], timeout_s 600, command
#   bash benchmarks/device_suite.sh --out $OUT
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$here/runs/device_suite}"
smoke=""
caps=""
parts="env train synthesis synthesis_hf eval eval_hf"
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke="--smoke" ;;
    --out) out="$2"; shift ;;
    --parts) parts="$2"; shift ;;
    --caps) caps="$2"; shift ;;
    *) echo "device_suite.sh: unknown argument $1 (use --smoke, --out DIR, --parts LIST," \
            "--caps PART=SECONDS...)" >&2
       exit 2 ;;
  esac
  shift
done
python="${PYTHON:-python3}"
mkdir -p "$out" || exit 1
log="$out/suite.log"
: > "$log"

# Seconds per part (a hard cap; each part stops starting measurements 10 s before it). A
# part that ends early leaves its unused seconds to the next part's cap, so the suite never
# runs longer than the caps' sum. The defaults add up to 550 s (9.2 minutes, under a device
# call's 600 s with the summary); evaluation measures two models in 45 s, and eval_hf ends at
# once where lm-eval is not installed (the GPU image);
# --caps raises some for a longer run of fewer parts. synthesis_hf runs plain generate first
# (7B build and three calls, about 30 s) and then the static cache, whose decode step
# torch.compile compiles (estimated 60-90 s with its CUDA graphs): a cap too short for the
# compile costs only that row.
declare -A cap=([env]=25 [train]=150 [synthesis]=180 [synthesis_hf]=140 [eval]=45 [eval_hf]=10)
if [ -n "$smoke" ]; then
  cap=([env]=60 [train]=150 [synthesis]=150 [synthesis_hf]=120 [eval]=90 [eval_hf]=120)
  # Smoke runs check code paths, not speed: cheaper CPU code generation, faster compiles.
  export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_backend_optimization_level=0"
fi
for item in $caps; do
  if [ -z "${cap[${item%%=*}]:-}" ] || ! [[ "${item#*=}" =~ ^[0-9]+$ ]]; then
    echo "device_suite.sh: bad --caps entry $item (PART=SECONDS, PART one of ${!cap[*]})" >&2
    exit 2
  fi
  cap[${item%%=*}]="${item#*=}"
done

# The measured code does not import these three; the rest of the package (the CLI) does.
if ! "$python" -c "import gin, tensorboardX, gguf" 2>/dev/null; then
  if ls "$here"/.whl/*.whl >/dev/null 2>&1; then
    site=/tmp/instruct_pt_site
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" "$here"/.whl/*.whl 2>&1 | tee -a "$log"
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "device_suite.sh: gin / tensorboardX / gguf missing and no wheels in $here/.whl (see" \
         "this script's header); the suite does not need them, going on" | tee -a "$log" >&2
  fi
fi
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.95}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-1}"

status=""
started=$(date +%s)
spare=0
for part in $parts; do
  if [ -z "${cap[$part]:-}" ]; then
    echo "device_suite.sh: unknown part $part (known: ${!cap[*]})" | tee -a "$log" >&2
    exit 2
  fi
  limit=$(( cap[$part] + spare ))
  part_start=$(date +%s)
  case $part in
    synthesis_hf|eval_hf) script=suite_torch.py ;;
    *) script=device_suite.py ;;
  esac
  echo "=== $part (cap ${limit}s, $(( $(date +%s) - started ))s into the suite)" | tee -a "$log"
  timeout --kill-after=10 "$limit" "$python" "$here/benchmarks/$script" "$part" \
      --out "$out" --budget $(( limit - 10 )) $smoke 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  case $rc in
    0) status="$status,$part=ok" ;;
    124|137) status="$status,$part=stopped at its ${limit}s cap" ;;
    *) status="$status,$part=exit $rc" ;;
  esac
  spare=$(( limit - ($(date +%s) - part_start) ))
  [ "$spare" -gt 0 ] || spare=0
done
echo "=== summary ($(( $(date +%s) - started ))s)" | tee -a "$log"
"$python" "$here/benchmarks/device_suite.py" summary --out "$out" --status "${status#,}" \
    2>&1 | tee -a "$log"
