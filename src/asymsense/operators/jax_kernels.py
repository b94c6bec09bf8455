"""Optional JAX/XLA kernel for a whole dense Gaussian step (issue 14), opt-in
with `DenseGaussian(..., kernel="jax")`.

A step computes X = U Vᵀ, r = G vec(X) − y, M = mat(Gᵀ r) and (MV, MᵀU),
the same formulas as the NumPy path, the two products over G by one compiled
XLA function (per shape). The gain is in the two products over G
with B (the batch) rows: at B = 6, m = 1455, n1·n2 = 2400 (the demo sweep)
XLA's skinny GEMMs ran 2.0× faster than OpenBLAS's on one thread (median of
5 interleaved rounds, load 14; with the XLA_FLAGS below, which turned out
not to hold XLA to one thread). The summation order is XLA's, so
the numbers are not OpenBLAS's bits: in float64 they agree to ~1e-15 per step
and the fits to 1e-12 (tests/test_kernels_jax.py); hence opt-in, and the
default path (and the pins) stay OpenBLAS's.

jax is not a dependency: `pip install jax` (CPU). fgd's `threads` limits
BLAS only: XLA's CPU client starts a worker per core it may run on, and
XLA_FLAGS "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
did not change that (jax 0.10.2: a 2048³ product took twice its wall time in
CPU time on 2 cores). To hold XLA to one core, start jax while the calling
thread's affinity is one core (os.sched_setaffinity) — XLA's threads keep it
(benchmarks/bench_ratios.py `pin_xla_to_one_core`). float64 needs jax's x64
mode, which the first call here turns on.
"""

from __future__ import annotations

import numpy as np

_STEP = None


def available() -> bool:
    """True when jax imports."""
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def _step():
    global _STEP
    if _STEP is None:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)

        @jax.jit
        def step(G, GT, y, flat):
            r = flat @ GT - y
            return r, r @ G

        _STEP = (jnp, step)
    return _STEP


def device_matrix(G: np.ndarray):
    """(G, Gᵀ) as row-major jax arrays, kept by the operator: XLA's forward
    X·Gᵀ ran 1.4× faster on a row-major Gᵀ than on G (4.8 vs 6.6 ms CPU per
    demo step), at the price of a second copy of G."""
    jnp, _ = _step()
    return jnp.asarray(G), jnp.asarray(np.ascontiguousarray(G.T))


def dense_step(G_device, y, U, V, dtype):
    """(r, A*(r)V, A*(r)ᵀU) as NumPy arrays in `dtype` for a dense operator
    whose matrix is G_device ((G, Gᵀ) from `device_matrix`): the two products over G
    by XLA, the small k-wide ones (UVᵀ, MV, MᵀU) by NumPy (XLA's batched
    small matmuls cost 2.3 ms of a 6.9 ms demo step, NumPy's 0.6 ms)."""
    jnp, step = _step()
    kind = np.dtype(G_device[0].dtype)
    U, V = np.asarray(U, dtype=kind), np.asarray(V, dtype=kind)
    n1, n2 = U.shape[-2], V.shape[-2]
    X = U @ np.swapaxes(V, -1, -2)
    r, Mflat = step(*G_device, jnp.asarray(y, dtype=kind), jnp.asarray(X.reshape(X.shape[:-2] + (n1 * n2,))))
    r, M = np.asarray(r), np.asarray(Mflat).reshape(X.shape)
    return r.astype(dtype, copy=False), (M @ V).astype(dtype, copy=False), (np.swapaxes(M, -1, -2) @ U).astype(dtype, copy=False)
