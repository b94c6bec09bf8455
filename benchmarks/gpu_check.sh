#!/usr/bin/env bash
# GPU check (issue 5 item 2): one prepared script, under 5 minutes on one CUDA card.
#
#   bash benchmarks/gpu_check.sh                    # on a CUDA machine: writes benchmarks/results/gpu_*.md
#   DEVICE=cpu SMALL=1 bash benchmarks/gpu_check.sh # dry run of the same steps on the CPU at tiny sizes
#
# 1. correctness subset on the device: tests/test_backends.py with ASYMSENSE_TEST_DEVICE
#    (torch, and CuPy when importable), torch results against the NumPy path;
# 2. the iteration benchmark on the device: dense float64/float32 at sizes that fill
#    the card (ratio to the measured read bandwidth of the card: GEMV and sum over A),
#    batched trials B = 1..256, structured and rank-one;
# 3. the matrix-free Gaussian (chunks generated on the host, copied to the card) at a
#    smaller m, and the large single problems (structured / rank-one beyond dense size).
# Environment: OUT (results folder, default benchmarks/results, or $OUT when the device
# tool sets it), DEVICE (default cuda), SMALL=1 for tiny sizes, N (n1 = n2), M (m).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
DEVICE="${DEVICE:-cuda}"
RESULTS="${OUT:-benchmarks/results}"
mkdir -p "$RESULTS"
TAG="gpu"
[ "$DEVICE" = "cpu" ] && TAG="gpu_dryrun_cpu"
start=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - start )) s)"; }

step "environment"
{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; } || echo "no nvidia-smi"
python - <<'PY'
import importlib.util
for name in ("numpy", "scipy", "torch", "cupy", "array_api_compat", "array_api_strict", "pytest", "hypothesis"):
    print(f"{name}: {'present' if importlib.util.find_spec(name) else 'MISSING'}")
import torch
print("torch", torch.__version__, "cuda available:", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY

if [ "${SMALL:-0}" = "1" ]; then
  N="${N:-20}"; M="${M:-400}"; K=20; MS=300; BATCHES="1 4"; ITERS=3
else
  # Dense float64 A of m·n1·n2·8 bytes: 300×300 and m = 45,000 → 32 GB (float32: 16 GB).
  N="${N:-300}"; M="${M:-45000}"; K=100; MS=4000; BATCHES="1 4 16 64 256"; ITERS=9
fi

step "correctness subset on $DEVICE (tests/test_backends.py)"
ASYMSENSE_TEST_DEVICE="$DEVICE" timeout 120 python -m pytest tests/test_backends.py -p no:cacheprovider -p no:warnings -x -rs \
  | tee "$RESULTS/${TAG}_tests.txt" | tail -1 || echo "correctness subset FAILED or timed out: see $RESULTS/${TAG}_tests.txt"

step "dense float64/float32, batched, structured, rank-one on $DEVICE (n1=n2=$N, m=$M, k=$K)"
timeout 150 python benchmarks/bench_iteration.py --backend torch --device "$DEVICE" --n1 "$N" --n2 "$N" --m "$M" --k "$K" \
  --iters "$ITERS" --batches $BATCHES --kinds structured rank-one --threads 1 --out "$RESULTS/${TAG}_iteration.md" | tail -25 \
  || echo "iteration benchmark failed or timed out"

step "matrix-free Gaussian on $DEVICE (m=$MS: host generation, copies to the device)"
timeout 60 python benchmarks/bench_iteration.py --backend torch --device "$DEVICE" --n1 "$N" --n2 "$N" --m "$MS" --k "$K" \
  --iters 3 --batches --dtypes float32 --kinds gaussian-stream --threads 1 --out "$RESULTS/${TAG}_stream.md" | tail -8 || echo "matrix-free step timed out"

step "done in $(( $(date +%s) - start )) s; reports in $RESULTS"
ls -1 "$RESULTS"/${TAG}_* 
