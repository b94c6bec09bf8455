"""Array backends: NumPy (default), PyTorch, CuPy and array-api-strict.

The solver (`fgd`), the operators and the monitors are written against the
Array API standard through `array-api-compat`: an operator carries its
namespace `xp` and `device`, every array it makes lives there, and `fgd`
follows the operator. Choose a backend when building an operator,
``make_operator(kind, n1, n2, m, backend="torch", device="cuda")``, or move one,
``to_backend(operator, "torch", "cuda")``.

Three kernels have no equivalent in the standard; each is one small function
with a NumPy/SciPy fast path and a per-library or standard fallback:

- `segment_sum` (here) — scatter-add of rows into segments (entry sampling's A*(z)V);
- `gaussian_chunk` (in `asymsense.operators.gaussian`, next to its generator)
  — SFC64 + Box–Muller on the host, so every backend holds the same operator
  entries for the same seed;
- `dct` / `idct` (here) — the orthonormal DCT-II of the structured operator.

Data moves between host and device only at the monitor cadence: the loop keeps
losses on the device and reads them (with the factors, for the monitors) when
it records a row of the history.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as array_device
from threadpoolctl import threadpool_limits

from asymsense.errors import InputError

BACKENDS = ("numpy", "torch", "cupy", "array-api-strict")


@lru_cache(maxsize=None)
def get_namespace(backend: str = "numpy"):
    """The Array API namespace for a backend name (one of BACKENDS)."""
    try:
        if backend == "numpy":
            import array_api_compat.numpy as xp
        elif backend == "torch":
            import array_api_compat.torch as xp
        elif backend == "cupy":
            import array_api_compat.cupy as xp
        elif backend == "array-api-strict":
            import array_api_strict as xp
        else:
            raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    except ImportError as exc:
        raise InputError(f"backend {backend!r} needs a package that is not installed ({exc.name}); install it or choose backend='numpy'") from None
    return xp


NUMPY = get_namespace("numpy")


def is_numpy(xp) -> bool:
    """True for the NumPy namespace (plain or compat), which gets the fast paths."""
    return xp is NUMPY or xp is np


def namespace(*arrays):
    """The namespace of the given arrays (NumPy for Python scalars and lists)."""
    return array_namespace(*arrays)


def backend_name(xp) -> str:
    name = xp.__name__
    for backend in BACKENDS:
        if name.endswith(backend.replace("-", "_")):
            return backend
    return name


def device_of(x):
    return array_device(x)


def to_numpy(x) -> np.ndarray:
    """A NumPy copy (or view) of an array from any backend: the only way data
    leaves the device, used at the monitor cadence and for results."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get") and type(x).__module__.startswith("cupy"):
        return x.get()
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    if hasattr(x, "__dlpack__"):
        try:
            return np.from_dlpack(x)
        except (TypeError, RuntimeError, BufferError, ValueError):
            pass
    return np.asarray(x)


def asarray(x, xp, device=None, dtype=None):
    """x (any backend, or NumPy) as an array of namespace xp on device."""
    if is_numpy(xp):
        return np.asarray(to_numpy(x), dtype=dtype)
    if not isinstance(x, np.ndarray) and namespace(x) is not xp:
        x = to_numpy(x)
    if isinstance(x, np.ndarray):
        x = np.ascontiguousarray(x)
    return xp.asarray(x, dtype=dtype, device=device)


def xp_dtype(xp, dtype):
    """The namespace's float dtype named like the NumPy dtype `dtype`."""
    return getattr(xp, np.dtype(dtype).name)


def to_backend(operator, backend: str = "numpy", device=None):
    """A copy of `operator` whose arrays live in `backend` on `device`; the
    values are unchanged, so results agree with the NumPy operator to rounding."""
    xp = get_namespace(backend)
    return operator.to_namespace(xp, device)


def resolve_device(xp, device):
    """Map a device name ("cpu", "cuda", "cuda:1") to the namespace's device object."""
    if device is None:
        return None
    if is_numpy(xp):
        if device == "cpu":
            return "cpu"
        if str(device) != "cpu":
            raise InputError(f"device must be 'cpu' for the numpy backend, got {device!r}")
        return "cpu"
    if not isinstance(device, str):
        return device
    name = backend_name(xp)
    if name == "torch":
        import torch

        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise InputError(f"device {device!r} is not a torch device (e.g. cpu, cuda, cuda:0)") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise InputError(f"device {device!r}: CUDA is not available to torch on this machine")
        return dev
    if name == "array-api-strict":
        return xp.Device() if str(device) in ("cpu", "CPU_DEVICE") else xp.Device(str(device))
    if name == "cupy":
        import cupy

        text = str(device)
        return cupy.cuda.Device(int(text.split(":")[1]) if ":" in text else 0)
    return device


@contextlib.contextmanager
def limit_threads(xp, threads: int | None):
    """Limit BLAS/OpenMP threads to `threads` inside the block (None: no change),
    torch's intra-op pool included (threadpoolctl does not reach it). On a
    loaded 2-core machine torch's default pool made a small fgd run 100×
    slower than with one thread."""
    if threads is None:
        yield
        return
    torch = None
    if backend_name(xp) == "torch":
        import torch
    previous = torch.get_num_threads() if torch is not None else None
    budget = _THREAD_BUDGET.set(int(threads))
    with threadpool_limits(threads):
        if torch is not None:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            _THREAD_BUDGET.reset(budget)
            if torch is not None:
                torch.set_num_threads(previous)


_THREAD_BUDGET: contextvars.ContextVar[int] = contextvars.ContextVar("asymsense_thread_budget", default=1)


def thread_budget() -> int:
    """The threads the innermost `limit_threads` block allows (fgd sets one
    for its loop), 1 outside any: what BLAS may use, which decides whether a
    one-core compiled kernel beats it (`DenseGaussian.step_kernel`)."""
    return _THREAD_BUDGET.get()


def run_threads(work, items, threads: int) -> list:
    """[work(item) for item in items], on up to `threads` threads when there
    are several items: for compiled kernels and NumPy/SciPy calls that release
    the GIL (the results keep the items' order)."""
    items = list(items)
    if threads > 1 and len(items) > 1:
        with ThreadPoolExecutor(min(threads, len(items))) as pool:
            return list(pool.map(work, items))
    return [work(item) for item in items]


NUMBA_DISABLE_ENV = "ASYMSENSE_NO_NUMBA"
"""Set this environment variable (to anything non-empty) to force the NumPy paths of every compiled kernel."""


def numba_enabled() -> bool:
    """True when numba imports and ASYMSENSE_NO_NUMBA is not set: the one switch of the
    compiled kernels (the operators' fused steps, the monitors' small eigenproblems), each of
    which has a NumPy path for when it is off (`pip install asymsense[fast]` turns it on)."""
    import os

    if os.environ.get(NUMBA_DISABLE_ENV):
        return False
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


AUTO_THREAD_FLOPS = 5e7
"""Below this many flops per BLAS call a second thread costs more than it
saves (thread wake-up and the spin-wait at the end of each call)."""


def free_cores() -> int:
    """Cores this process may use that other processes are not busy on now:
    the affinity set (os.sched_getaffinity) minus the 1-minute load average
    of the rest of the machine (this process counted as one), at least 1."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        others = max(0.0, os.getloadavg()[0] - 1.0)
    except OSError:
        others = 0.0
    return max(1, min(cores, int(math.floor(cores - others + 0.5))))


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (/proc/cpuinfo: "avx2",
    "fma", "avx512f", …); empty where there is no such file."""
    from pathlib import Path

    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return frozenset(line.split(":", 1)[-1].split())


def auto_threads(flops_per_call: float) -> int:
    """BLAS threads for calls of about `flops_per_call` flops: 1 for small
    calls, else the free cores (free_cores), never above the process's
    current BLAS limit. On a loaded 2-core machine two OpenBLAS threads spin
    waiting for each other: a small step measured 24× slower than with one
    thread, the demo sweep 0.6× a plain single-trial script."""
    from threadpoolctl import threadpool_info

    if flops_per_call < AUTO_THREAD_FLOPS:
        return 1
    current = [i.get("num_threads") or 1 for i in threadpool_info() if i.get("user_api") == "blas"]
    return max(1, min(min(current) if current else 1, free_cores()))


# --- kernels outside the standard --------------------------------------------------------


def quiet_overflow():
    """numpy.errstate silencing overflow/invalid/divide warnings: a diverging
    run is reported once, as a DivergenceError (exit 3, or a failed sweep
    trial), not as a burst of RuntimeWarnings on stderr."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


def segment_sum(values, segments, indptr, xp):
    """out[s] = Σ_{i: segments[i] = s} values[..., i, :] for values (..., L, k)
    and sorted segment ids (L,) with CSR pointers indptr (S + 1,). Scatter-add:
    index_add on torch, cupyx.scatter_add on CuPy, np.add.at on NumPy, and in
    the standard a cumulative sum differenced at the segment ends (used by the
    reference backend array-api-strict)."""
    name = backend_name(xp)
    n_segments = indptr.shape[0] - 1
    shape = tuple(values.shape[:-2]) + (n_segments, values.shape[-1])
    if is_numpy(xp):
        out = np.zeros(shape, dtype=values.dtype)
        np.add.at(out, (..., segments, slice(None)), values)
        return out
    if name == "torch":
        out = xp.zeros(shape, dtype=values.dtype, device=device_of(values))
        return out.index_add_(out.ndim - 2, segments, values)
    if name == "cupy":
        import cupyx

        out = xp.zeros(shape, dtype=values.dtype)
        cupyx.scatter_add(out, (..., segments, slice(None)), values)
        return out
    axis = values.ndim - 2
    csum = xp.cumulative_sum(values, axis=axis, include_initial=True)
    return xp.take(csum, indptr[1:], axis=axis) - xp.take(csum, indptr[:-1], axis=axis)


def _dct_via_fft(x, xp, inverse: bool):
    """Orthonormal DCT-II (or its inverse, DCT-III) along the last axis by one
    complex FFT of length N (Makhoul 1980): v = (x₀, x₂, …, x₃, x₁),
    C_k = Re(e^{−iπk/2N} FFT(v)_k), then orthonormal scaling."""
    N = x.shape[-1]
    dev = device_of(x)
    real = x.dtype
    cplx = xp.complex64 if real == xp.float32 else xp.complex128
    k = xp.astype(xp.arange(N, device=dev), real)
    scale = xp.full((N,), math.sqrt(2.0 / N), dtype=real, device=dev)
    first = xp.asarray([1.0 / math.sqrt(N)], dtype=real, device=dev)
    scale = xp.concat([first, scale[1:]])
    angle = (-math.pi / (2 * N)) * k
    twiddle = xp.astype(xp.cos(angle), cplx) + 1j * xp.astype(xp.sin(angle), cplx)
    even = xp.arange(0, N, 2, device=dev)
    odd = xp.flip(xp.arange(1, N, 2, device=dev))
    order = xp.concat([even, odd])
    if not inverse:
        v = xp.take(x, order, axis=-1)
        V = xp.fft.fft(xp.astype(v, cplx), axis=-1)
        return xp.real(V * twiddle) * scale
    W = xp.astype(x * scale, cplx) * xp.conj(twiddle)
    v = xp.real(xp.fft.ifft(W, axis=-1)) * N
    inv = xp.argsort(order)
    return xp.take(v, inv, axis=-1)


def dct(x, xp, workers: int = 1, *, inverse: bool = False):
    """Orthonormal DCT-II along the last axis (its inverse, the orthonormal
    DCT-III, with `inverse=True`): SciPy on NumPy, cupyx on CuPy, an FFT
    (Makhoul's reordering) on any other namespace."""
    name = "idct" if inverse else "dct"
    if is_numpy(xp):
        import scipy.fft

        return getattr(scipy.fft, name)(x, type=2, norm="ortho", axis=-1, workers=workers)
    if backend_name(xp) == "cupy":
        import cupyx.scipy.fft

        return getattr(cupyx.scipy.fft, name)(x, type=2, norm="ortho", axis=-1)
    return _dct_via_fft(x, xp, inverse=inverse)


def idct(x, xp, workers: int = 1):
    """Inverse of `dct`."""
    return dct(x, xp, workers, inverse=True)
