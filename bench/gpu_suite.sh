#!/usr/bin/env bash
# The GPU figures of the performance issue, in one go, on one GPU (an H100: about 15 minutes).
#
#   bash bench/gpu_suite.sh                   # JPEGs go to $JPEGS (default /tmp/lcmae_jpegs), results to bench/results/
#
# 1. throughput, memory and MFU of every model workload in fp32, bf16 and bf16 + torch.compile;
# 2. ViT-T/4 again with CUDA graphs (torch.compile mode=reduce-overhead);
# 3. numerics: 200-step loss curves of bf16 and bf16 + compile against fp32 eager (ViT-B/16 MAE and LC-MAE);
# 4. the data path alone (GPU decode + crop, and the CPU PIL path) and MAE ViT-B/16 end to end from JPEGs,
#    with 16 loader workers, over synthetic 500x375 JPEGs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
JPEGS=${JPEGS:-/tmp/lcmae_jpegs}
WORKERS=${WORKERS:-16}
B="$PY -m lcmae_core.bench --device cuda --no-progress"

[ -d "$JPEGS/train" ] || $PY bench/make_jpegs.py "$JPEGS" --num 4096 --jobs "$WORKERS"

$B --workloads mae_b16,lcmae_b16,ae48_b16,mae_t4 --modes fp32,bf16,bf16_compile --steps 30 --warmup 10
$B --workloads mae_t4,mae_b16 --modes bf16_compile --cuda-graphs --steps 30 --warmup 10
$B --workloads mae_b16,lcmae_b16 --modes bf16,bf16_compile --steps 3 --warmup 1 --numerics 200
$B --workloads loader,loader_pil --data-root "$JPEGS" --workers "$WORKERS" --steps 20 --warmup 3
$B --workloads e2e --modes bf16_compile --data-root "$JPEGS" --workers "$WORKERS" --data-path gpu --steps 30 --warmup 10
$B --workloads e2e --modes bf16_compile --data-root "$JPEGS" --workers "$WORKERS" --data-path cpu --steps 10 --warmup 3
echo "done: see bench/results/*$(date +%F).jsonl"
