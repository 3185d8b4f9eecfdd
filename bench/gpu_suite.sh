#!/usr/bin/env bash
# The GPU figures of the performance issue on one GPU, as one command, its sections most wanted first; the default
# four fit in 9 minutes on one H200 (estimated: every ViT-B/16 compiles once per process, about a minute cold).
#
#   OFFICIAL=.official/mae bash bench/gpu_suite.sh               # ratio profile numerics e2e
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
#   numerics    200-step loss curves of bf16 and bf16 + compile against fp32 eager (MAE and LC-MAE ViT-B/16, batch 64)
#   e2e         MAE ViT-B/16 end to end from 500x375 JPEGs: the GPU data path, then the PIL path; 16 workers
#   data        the data paths alone (GPU decode + crop, PIL), no model
#   autotune    bf16 + torch.compile(mode="max-autotune-no-cudagraphs") (slow to compile)
#   throughput  every model workload in fp32, bf16 and bf16 + compile
#   graphs      ViT-T/4 and ViT-B/16 with CUDA graphs
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}  # the device image's interpreter is python3 (it may have no "python")
OFFICIAL=${OFFICIAL:-.official/mae}
JPEGS=${JPEGS:-/tmp/lcmae_jpegs}
WORKERS=${WORKERS:-16}
RESULTS=${RESULTS:-${OUT:-bench/results}}
export PYTHONUNBUFFERED=1
# the workloads and sizes; a rehearsal swaps in the smoke-sized models, fp32 and a few steps on the CPU
DEV=cuda MAE=mae_b16 LCMAE=lcmae_b16 T4=mae_t4 AE=ae48_b16 MODE=bf16_compile MODES=fp32,bf16,bf16_compile
NUM_MODES=bf16,bf16_compile NUM_STEPS=200 NUM_BATCH=64 NJPEG=4096 S=1 DATA_BATCH=256
if [ -n "${REHEARSAL:-}" ]; then
  DEV=cpu MAE=tiny LCMAE=lcmae_tiny T4=tiny AE=tiny MODE=fp32 MODES=fp32 NUM_MODES=bf16 NUM_STEPS=3 NUM_BATCH=8
  NJPEG=64 WORKERS=2 S=0 DATA_BATCH=8
fi
steps() { [ "$S" = 1 ] && echo "$1" || echo 2; }  # a rehearsal takes 2 of each
OUTFILE="$RESULTS/gpu_suite_$(date +%F).jsonl"
B="$PY -m lcmae_core.perf.bench --device $DEV --no-progress --out $OUTFILE"
SECTIONS=("$@")
[ ${#SECTIONS[@]} -gt 0 ] || SECTIONS=(ratio profile numerics e2e)
mkdir -p "$RESULTS"

jpegs() { [ -d "$JPEGS/train" ] || $PY bench/make_jpegs.py "$JPEGS" --num "$NJPEG" --jobs "$WORKERS"; }

for s in "${SECTIONS[@]}"; do
  echo "== $s ($(date +%T))"
  case $s in
    ratio)
      $PY bench/official_ratio.py --official-dir "$OFFICIAL" --device $DEV --workloads $MAE,$LCMAE,$T4 --mode $MODE \
        --steps "$(steps 20)" --warmup "$(steps 5)" --rounds "$(steps 4)" --out "$OUTFILE" ;;
    profile)
      $B --workloads $MAE,$LCMAE --modes $MODE --steps "$(steps 20)" --warmup "$(steps 5)" --profile "$(steps 5)" ;;
    numerics)
      $B --workloads $MAE,$LCMAE --modes $NUM_MODES --batch $NUM_BATCH --steps "$(steps 3)" --warmup 1 \
        --numerics $NUM_STEPS ;;
    e2e) jpegs
      $B --workloads e2e --e2e-model $MAE --modes $MODE --data-root "$JPEGS" --batch $DATA_BATCH --workers "$WORKERS" --data-path gpu \
        --steps "$(steps 30)" --warmup "$(steps 10)"
      $B --workloads e2e --e2e-model $MAE --modes $MODE --data-root "$JPEGS" --batch $DATA_BATCH --workers "$WORKERS" --data-path cpu \
        --steps "$(steps 10)" --warmup "$(steps 3)" ;;
    data) jpegs
      $B --workloads loader,loader_pil --data-root "$JPEGS" --batch $DATA_BATCH --workers "$WORKERS" --steps "$(steps 20)" --warmup 3 ;;
    autotune)
      $B --workloads $MAE,$LCMAE,$T4 --modes bf16_autotune --steps "$(steps 30)" --warmup "$(steps 10)" ;;
    throughput)
      $B --workloads $MAE,$LCMAE,$AE,$T4 --modes $MODES --steps "$(steps 30)" --warmup "$(steps 10)" ;;
    graphs)
      $B --workloads $T4,$MAE --modes $MODE --cuda-graphs --steps "$(steps 30)" --warmup "$(steps 10)" ;;
    *) echo "unknown section '$s'; choose from: ratio profile numerics e2e data autotune throughput graphs" >&2
       exit 2 ;;
  esac
done
echo "== done ($(date +%T)); results in $RESULTS"
