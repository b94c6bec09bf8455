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
#    smaller m, and the large single problems (structured / rank-one beyond dense size);
# 4. the completion step (EntrySample forward + both gradient blocks, float32, k = 64) at
#    10^7 entries on the card against the host (numba or NumPy path), seconds per step;
# 5. the demo's batched alpha sweep (60x40, k = 60, 6 alpha as one fgd call) on the card
#    against the host, same iterations, largest relative difference of the final errors.
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
  N="${N:-20}"; M="${M:-400}"; K=20; MS=300; BATCHES="1 4"; ITERS=3; CM=200000; SWEEP_ITERS=20
else
  # Dense float64 A of m·n1·n2·8 bytes: 300×300 and m = 45,000 → 32 GB (float32: 16 GB).
  N="${N:-300}"; M="${M:-45000}"; K=100; MS=4000; BATCHES="1 4 16 64 256"; ITERS=9; CM=10000000; SWEEP_ITERS=300
fi

step "correctness subset on $DEVICE (tests/test_backends.py)"
ASYMSENSE_TEST_DEVICE="$DEVICE" timeout 80 python -m pytest tests/test_backends.py -p no:cacheprovider -p no:warnings -x -rs \
  | tee "$RESULTS/${TAG}_tests.txt" | tail -1 || echo "correctness subset FAILED or timed out: see $RESULTS/${TAG}_tests.txt"

step "dense float64/float32, batched, structured, rank-one on $DEVICE (n1=n2=$N, m=$M, k=$K)"
timeout 100 python benchmarks/bench_iteration.py --backend torch --device "$DEVICE" --n1 "$N" --n2 "$N" --m "$M" --k "$K" \
  --iters "$ITERS" --batches $BATCHES --kinds structured rank-one --threads 1 --out "$RESULTS/${TAG}_iteration.md" | tail -25 \
  || echo "iteration benchmark failed or timed out"

step "matrix-free Gaussian on $DEVICE (m=$MS: host generation, copies to the device)"
timeout 35 python benchmarks/bench_iteration.py --backend torch --device "$DEVICE" --n1 "$N" --n2 "$N" --m "$MS" --k "$K" \
  --iters 3 --batches --dtypes float32 --kinds gaussian-stream --threads 1 --out "$RESULTS/${TAG}_stream.md" | tail -8 || echo "matrix-free step timed out"

step "completion step on $DEVICE (|Omega| = $CM, k = 64, float32) against the host"
DEVICE="$DEVICE" CM="$CM" timeout 45 python - <<'PY' | tee "$RESULTS/${TAG}_completion.txt" || echo "completion step failed or timed out"
import os, time
import numpy as np
from asymsense.backend import to_backend, get_namespace, to_numpy
from asymsense.operators import EntrySample
m, k = int(os.environ["CM"]), 64
n1, n2 = max(1000, m // 10), max(100, m // 100)
rng = np.random.default_rng(0)
rows, cols = rng.integers(0, n1, m), rng.integers(0, n2, m)
order = np.lexsort((cols, rows)); rows, cols = rows[order], cols[order]
host = EntrySample(rows, cols, (n1, n2), dtype="float32")
U = (0.1 * rng.standard_normal((n1, k))).astype(np.float32); V = (0.1 * rng.standard_normal((n2, k))).astype(np.float32)
target = rng.standard_normal(m).astype(np.float32)
dev = to_backend(host, "torch", os.environ["DEVICE"]); xp = dev.xp
Ud, Vd, td = dev.asarray(U), dev.asarray(V), dev.asarray(target)
def sync():
    import torch
    if torch.cuda.is_available(): torch.cuda.synchronize()
def step(op, U, V, t):
    r = op.forward_factors(U, V) - t
    return op.gradient_products(r, U, V)
runs = (("host", lambda: step(host, U, V, target)), ("host, one residual_gradient call (the tiled one-pass kernel with numba)", lambda: host.residual_gradient(U, V, target, np.float32)[1:]),
        ("device", lambda: step(dev, Ud, Vd, td)))
for name, run in runs:
    run(); sync(); ts = []
    for _ in range(3):
        t0 = time.perf_counter(); out = run(); sync(); ts.append(time.perf_counter() - t0)
    print(f"{name}: {np.median(ts):.4f} s per completion step (median of 3: {', '.join(f'{x:.4f}' for x in ts)})")
    if name == "host": ref = out
    else:
        rel = max(float(np.linalg.norm(to_numpy(a) - b) / np.linalg.norm(b)) for a, b in zip(out, ref))
        print(f"largest relative difference, {name} vs host: {rel:.2e}; load {os.getloadavg()}")
PY

step "demo batched alpha sweep on $DEVICE ($SWEEP_ITERS iterations, 6 alpha, k = 60) against the host"
DEVICE="$DEVICE" SWEEP_ITERS="$SWEEP_ITERS" timeout 40 python - <<'PY' | tee "$RESULTS/${TAG}_sweep.txt" || echo "batched sweep failed or timed out"
import os, time
import numpy as np
import asymsense
from asymsense.backend import to_backend
from asymsense.operators import DenseGaussian
alphas, iters = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6], int(os.environ["SWEEP_ITERS"])
truth = asymsense.planted(60, 40, 3, cond=3.0, seed=1)
op = DenseGaussian(60, 40, 1455, seed=2); y = asymsense.measure(truth, op)
runs = {}
for name, o in (("host", op), ("device", to_backend(op, "torch", os.environ["DEVICE"]))):
    t0 = time.perf_counter()
    runs[name] = asymsense.fgd(o, y, width=60, init_scale=alphas, step_size=0.469, max_iter=iters, seed=0, truth=truth, record_every=10, threads=1)
    print(f"{name}: {time.perf_counter() - t0:.2f} s for {iters} iterations of 6 trials")
diff = max(abs(a.history["rel_error"][-1] - b.history["rel_error"][-1]) / b.history["rel_error"][-1] for a, b in zip(runs["device"], runs["host"]))
print(f"largest relative difference of the final errors: {diff:.2e}")
PY

step "done in $(( $(date +%s) - start )) s; reports in $RESULTS"
ls -1 "$RESULTS"/${TAG}_* 
