#!/usr/bin/env bash
# The GPU figures of the performance issue on one GPU, as one command, its sections most wanted first; the default
# four should fit in 9 minutes on one H200 (estimated, not yet measured: ratio 3-4.5 min with three cold compiles,
# profile and e2e 1-1.5 min each, numerics about 3 min with one compile per workload). A section that fails is
# reported and the next one runs; the script then exits 1. CAP_S (default 330) stops a command that runs longer.
#
#   OFFICIAL=.official/mae bash bench/gpu_suite.sh               # ratio profile e2e numerics
#   OFFICIAL=.official/mae bash bench/gpu_suite.sh ratio e2e     # only these sections
#   REHEARSAL=1 OFFICIAL=... bash bench/gpu_suite.sh             # every section on the CPU at the smoke size, fp32
#
# OFFICIAL: a checkout of facebookresearch/mae (git clone https://github.com/facebookresearch/mae .official/mae;
# .official/ is ignored, never committed; on the device machine it travels by naming .official in carry).
# Results (one JSON-lines file and the profiles) go to $RESULTS (default bench/results/, or $OUT when it is set, so
# that a run cut short by its time limit still returns every section it finished). JPEGs go to $JPEGS.
# Sections:
#   ratio       ours (bf16 + compile, the engine's step) against fb/mae's model in fb/mae's loop, alternating in one
#               process: MAE ViT-B/16, LC-MAE ViT-B/16 (fb/mae on both views), MAE ViT-T/4 (bench/official_ratio.py)
#   profile     MAE and LC-MAE ViT-B/16 in bf16 + compile with a torch.profiler breakdown of each step
#   e2e         MAE ViT-B/16 end to end from 500x375 JPEGs: the GPU data path, then the PIL path; 16 workers; each
#               timed over whole epochs of the folder from an epoch's start (the workers' prefetch); first the GPU
#               path's checks (tests/test_gpu_data.py: nvJPEG's pictures right under a busy stream, no wait for the
#               device), which fail the section but not the timing
#   numerics    200-step loss curves of bf16 and bf16 + compile against fp32 eager (MAE and LC-MAE ViT-B/16, batch 64)
#   data        the data paths alone (GPU decode + crop, PIL), no model
#   autotune    bf16 + torch.compile(mode="max-autotune-no-cudagraphs") (slow to compile)
#   throughput  every model workload in fp32, bf16 and bf16 + compile
#   graphs      the ratio again, ours under CUDA graphs: MAE ViT-T/4 (the small model, whose step is short enough for
#               the launches to count) and ViT-B/16, each against fb/mae's loop in one process
#   scale       the gpu scale's MAE (48 px, width 96: one of the reference record's short runs) eager and compiled in
#               bf16, 200 steps after 20: whether such runs gain from compiling (each record's warmup_s holds it)
set -uo pipefail  # not -e: a failed section is reported and the next one runs
cd "$(dirname "$0")/.."
PY=${PY:-python3}  # the device image's interpreter is python3 (it may have no "python")
OFFICIAL=${OFFICIAL:-.official/mae}
JPEGS=${JPEGS:-/tmp/lcmae_jpegs}
WORKERS=${WORKERS:-16}
RESULTS=${RESULTS:-${OUT:-bench/results}}
CAP_S=${CAP_S:-330}  # the most one command of a section may take (the ratio's three workloads: 3-4.5 min)
export PYTHONUNBUFFERED=1
# the workloads and sizes; a rehearsal swaps in the smoke-sized models, fp32 and a few steps on the CPU
DEV=cuda MAE=mae_b16 LCMAE=lcmae_b16 T4=mae_t4 AE=ae48_b16 SMALL=mae_gpu MODE=bf16_compile MODES=fp32,bf16,bf16_compile
SMALL_MODES=bf16,bf16_compile
NUM_MODES=bf16,bf16_compile NUM_STEPS=200 NUM_BATCH=64 NJPEG=4096 S=1 DATA_BATCH=256
if [ -n "${REHEARSAL:-}" ]; then
  DEV=cpu MAE=tiny LCMAE=lcmae_tiny T4=tiny AE=tiny SMALL=tiny MODE=fp32 MODES=fp32 SMALL_MODES=fp32 NUM_MODES=bf16
  NUM_STEPS=3 NUM_BATCH=8
  NJPEG=64 WORKERS=2 S=0 DATA_BATCH=8
fi
steps() { [ "$S" = 1 ] && echo "$1" || echo 2; }  # a rehearsal takes 2 of each
OUTFILE="$RESULTS/gpu_suite_$(date +%F).jsonl"
B="$PY -m lcmae_core.perf.bench --device $DEV --no-progress --out $OUTFILE"
SECTIONS=("$@")
[ ${#SECTIONS[@]} -gt 0 ] || SECTIONS=(ratio profile e2e numerics)
mkdir -p "$RESULTS" || exit 2
FAILED=()

jpegs() { [ -d "$JPEGS/train" ] || $PY bench/make_jpegs.py "$JPEGS" --num "$NJPEG" --jobs "$WORKERS"; }
# the GPU data path's own checks before it is timed: nvJPEG's pictures right while the stream is busy, and no call
# that waits for the device (tests/test_gpu_data.py; skipped where there is no CUDA, as in a rehearsal)
CHECKED=  # their exit status, once they ran
checks() {  # once a suite, before the first section that times the GPU data path (a later one gets the same status)
  [ -n "$CHECKED" ] || { timeout -k 10 "$CAP_S" $PY -m pytest -q -p no:cacheprovider tests/test_gpu_data.py -k on_the_gpu
                         CHECKED=$?; }
  return "$CHECKED"
}

try() {  # a command of a section: its failure is the section's, and the section's other commands still run; a
  # program is stopped after CAP_S seconds (exit 124), so that one that hangs leaves the later sections their time
  if [ "$(type -t "$1")" = function ]; then "$@"; else timeout -k 10 "$CAP_S" "$@"; fi
  local rc=$?
  [ $rc -eq 0 ] || SECTION_RC=$rc
  return $rc
}
section() {  # one section: its exit status is its last failing command's, or 0
  SECTION_RC=0
  case $1 in
    ratio)
      try $PY bench/official_ratio.py --official-dir "$OFFICIAL" --device $DEV --workloads $MAE,$LCMAE,$T4 --mode $MODE \
        --steps "$(steps 20)" --warmup "$(steps 5)" --rounds "$(steps 4)" --out "$OUTFILE" ;;
    profile)
      try $B --workloads $MAE,$LCMAE --modes $MODE --steps "$(steps 20)" --warmup "$(steps 5)" --profile "$(steps 5)" ;;
    numerics)
      try $B --workloads $MAE,$LCMAE --modes $NUM_MODES --batch $NUM_BATCH --numerics $NUM_STEPS --numerics-only ;;
    e2e) try jpegs || return
      try checks
      try $B --workloads e2e --e2e-model $MAE --modes $MODE --data-root "$JPEGS" --batch $DATA_BATCH --workers "$WORKERS" --data-path gpu \
        --steps "$(steps 30)" --warmup "$(steps 10)"
      try $B --workloads e2e --e2e-model $MAE --modes $MODE --data-root "$JPEGS" --batch $DATA_BATCH --workers "$WORKERS" --data-path cpu \
        --steps "$(steps 10)" --warmup "$(steps 3)" ;;
    data) try jpegs || return
      try checks
      try $B --workloads loader,loader_pil --data-root "$JPEGS" --batch $DATA_BATCH --workers "$WORKERS" --steps "$(steps 20)" --warmup 3 ;;
    autotune)
      try $B --workloads $MAE,$LCMAE,$T4 --modes bf16_autotune --steps "$(steps 30)" --warmup "$(steps 10)" ;;
    throughput)
      try $B --workloads $MAE,$LCMAE,$AE,$T4 --modes $MODES --steps "$(steps 30)" --warmup "$(steps 10)" ;;
    graphs)
      try $PY bench/official_ratio.py --official-dir "$OFFICIAL" --device $DEV --workloads $T4,$MAE --mode $MODE \
        --cuda-graphs --steps "$(steps 20)" --warmup "$(steps 5)" --rounds "$(steps 4)" --out "$OUTFILE" ;;
    scale)
      try $B --workloads $SMALL --modes $SMALL_MODES --steps "$(steps 200)" --warmup "$(steps 20)" ;;
  esac
  return $SECTION_RC
}
KNOWN=" ratio profile e2e numerics data autotune throughput graphs scale "
for s in "${SECTIONS[@]}"; do
  [[ "$KNOWN" == *" $s "* ]] || { echo "unknown section '$s'; choose from:$KNOWN" >&2; exit 2; }
done
for s in "${SECTIONS[@]}"; do
  echo "== $s ($(date +%T))"
  section "$s"
  rc=$?
  [ $rc -eq 0 ] || { FAILED+=("$s"); echo "== $s failed (exit $rc); going on" >&2; }
done
echo "== done ($(date +%T)); results in $RESULTS${FAILED[*]:+; failed: ${FAILED[*]}}"
[ ${#FAILED[@]} -eq 0 ]
