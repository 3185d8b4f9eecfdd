#!/usr/bin/env bash
# The GPU figures of the performance issue on one GPU, section by section, most wanted first.
#
#   bash bench/gpu_suite.sh                      # every section (an H100: about 20 minutes)
#   bash bench/gpu_suite.sh e2e numerics         # only these sections
#
# JPEGs go to $JPEGS (default /tmp/lcmae_jpegs), results (JSON lines and profiles) to bench/results/.
# Sections:
#   data        the data path alone: GPU decode + crop, and the CPU PIL path, 16 workers, 500x375 JPEGs
#   e2e         MAE ViT-B/16 end to end from the JPEG folder, GPU data path (and the CPU path for comparison)
#   profile     MAE and LC-MAE ViT-B/16 in bf16 + compile with a torch.profiler breakdown of each step
#   numerics    200-step loss curves of bf16 and bf16 + compile against fp32 eager (MAE and LC-MAE ViT-B/16)
#   autotune    bf16 + torch.compile(mode="max-autotune-no-cudagraphs") (slow to compile)
#   throughput  every model workload in fp32, bf16 and bf16 + compile
#   graphs      ViT-T/4 and ViT-B/16 with CUDA graphs
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
JPEGS=${JPEGS:-/tmp/lcmae_jpegs}
WORKERS=${WORKERS:-16}
B="$PY -m lcmae_core.perf.bench --device cuda --no-progress"
SECTIONS=("$@")
[ ${#SECTIONS[@]} -gt 0 ] || SECTIONS=(data e2e profile numerics autotune throughput graphs)

jpegs() { [ -d "$JPEGS/train" ] || $PY bench/make_jpegs.py "$JPEGS" --num 4096 --jobs "$WORKERS"; }

for s in "${SECTIONS[@]}"; do
  echo "== $s ($(date +%T))"
  case $s in
    data) jpegs
      $B --workloads loader,loader_pil --data-root "$JPEGS" --workers "$WORKERS" --steps 20 --warmup 3 ;;
    e2e) jpegs
      $B --workloads e2e --modes bf16_compile --data-root "$JPEGS" --workers "$WORKERS" --data-path gpu --steps 30 --warmup 10
      $B --workloads e2e --modes bf16_compile --data-root "$JPEGS" --workers "$WORKERS" --data-path cpu --steps 10 --warmup 3 ;;
    profile)
      $B --workloads mae_b16,lcmae_b16 --modes bf16_compile --steps 20 --warmup 5 --profile 5 ;;
    numerics)
      $B --workloads mae_b16,lcmae_b16 --modes bf16,bf16_compile --steps 3 --warmup 1 --numerics 200 ;;
    autotune)
      $B --workloads mae_b16,lcmae_b16,mae_t4 --modes bf16_autotune --steps 30 --warmup 10 ;;
    throughput)
      $B --workloads mae_b16,lcmae_b16,ae48_b16,mae_t4 --modes fp32,bf16,bf16_compile --steps 30 --warmup 10 ;;
    graphs)
      $B --workloads mae_t4,mae_b16 --modes bf16_compile --cuda-graphs --steps 30 --warmup 10 ;;
    *) echo "unknown section '$s'; choose from: data e2e profile numerics autotune throughput graphs" >&2; exit 2 ;;
  esac
done
echo "done: see bench/results/*$(date +%F)*"
