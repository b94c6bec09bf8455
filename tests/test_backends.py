"""Array API backends: torch (CPU) and array-api-strict must give the NumPy results.

Each backend holds the same operator entries as NumPy (see asymsense.backend),
so operator applications and whole fgd runs agree to rounding.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import scipy.fft
from hypothesis import given, settings
from hypothesis import strategies as st

import asymsense
from asymsense import backend as bk
from asymsense.errors import DivergenceError, InputError
from asymsense.operators import EntrySample

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_CUPY = importlib.util.find_spec("cupy") is not None
DEVICE = os.environ.get("ASYMSENSE_TEST_DEVICE", "cpu")
"""benchmarks/gpu_check.sh sets ASYMSENSE_TEST_DEVICE=cuda to run this file on a GPU."""
BACKENDS = [
    pytest.param("torch", marks=pytest.mark.skipif(not HAS_TORCH, reason="torch is not importable")),
    pytest.param("cupy", marks=pytest.mark.skipif(not (HAS_CUPY and DEVICE.startswith("cuda")), reason="CuPy runs on CUDA only")),
    pytest.param("array-api-strict", marks=pytest.mark.skipif(DEVICE != "cpu", reason="array-api-strict is a CPU reference")),
]
KINDS = ["gaussian", "gaussian-stream", "rank-one", "structured", "entries"]
N1, N2, M = 9, 6, 40


def operator(kind, dtype="float64"):
    return asymsense.make_operator(kind, N1, N2, M, seed=3, dtype=dtype)


def array_type(backend):
    if backend == "torch":
        import torch

        return torch.Tensor
    if backend == "cupy":
        import cupy

        return cupy.ndarray
    import array_api_strict

    return type(array_api_strict.asarray([0.0]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_operator_products_match_numpy(backend, kind):
    rng = np.random.default_rng(0)
    X, z = rng.standard_normal((2, N1, N2)), rng.standard_normal((2, M))
    U, V = rng.standard_normal((2, N1, 4)), rng.standard_normal((2, N2, 4))
    ref = operator(kind)
    op = bk.to_backend(ref, backend, DEVICE)
    assert op.backend == backend
    pairs = [
        (op.forward(op.asarray(X)), ref.forward(X)),
        (op.adjoint(op.asarray(z)), ref.adjoint(z)),
        (op.forward_factors(op.asarray(U), op.asarray(V)), ref.forward_factors(U, V)),
        *zip(op.gradient_products(op.asarray(z), op.asarray(U), op.asarray(V)), ref.gradient_products(z, U, V)),
    ]
    for got, want in pairs:
        assert isinstance(got, array_type(backend))
        np.testing.assert_allclose(bk.to_numpy(got), want, rtol=1e-12, atol=1e-12)
    index = np.array([7, 0, 31, 2])
    sub, sub_ref = op.take(index), ref.take(index)
    np.testing.assert_allclose(bk.to_numpy(sub.forward(sub.asarray(X))), sub_ref.forward(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_entry_scatter_with_repeated_entries(backend):
    ref = EntrySample(np.array([0, 0, 4, 8, 8, 1]), np.array([1, 1, 5, 0, 2, 2]), (N1, N2))
    op = bk.to_backend(ref, backend, DEVICE)
    z, V = np.arange(1.0, 7.0), np.random.default_rng(1).standard_normal((N2, 3))
    np.testing.assert_allclose(bk.to_numpy(op.adjoint_times(op.asarray(z), op.asarray(V))), ref.adjoint_times(z, V), rtol=1e-13)
    np.testing.assert_allclose(bk.to_numpy(op.adjoint(op.asarray(z))), ref.adjoint(z), rtol=1e-13)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["gaussian", "gaussian-stream", "rank-one", "structured", "entries"])
def test_fgd_matches_numpy(backend, kind):
    problem = asymsense.planted(N1, N2, 2, cond=2.0, seed=1)
    ref_op = operator(kind)
    y = asymsense.measure(problem, ref_op)
    kwargs = dict(width=7, init_scale=[1e-2, 1e-4], max_iter=40, seed=5, truth=problem, record_every=1, validation=0.2, patience=30, threads=1)
    want = asymsense.fgd(ref_op, y, **kwargs)
    got = asymsense.fgd(bk.to_backend(ref_op, backend, DEVICE), y, **kwargs)
    for g, w in zip(got, want):
        assert isinstance(g.U, array_type(backend))
        assert g.stop_reason == w.stop_reason and g.n_iter == w.n_iter and g.best_iter == w.best_iter
        np.testing.assert_allclose(g.step_size, w.step_size, rtol=1e-12)
        np.testing.assert_allclose(bk.to_numpy(g.product()), w.product(), rtol=1e-9, atol=1e-12)
        for column in ("loss", "rel_error", "rel_imbalance", "val_loss", "sv_1"):
            np.testing.assert_allclose(g.history[column], w.history[column], rtol=1e-8, atol=1e-15)


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not importable")
def test_float32_torch_matches_numpy_float32():
    problem = asymsense.planted(N1, N2, 2, seed=2)
    ref_op = operator("gaussian", dtype="float32")
    y = asymsense.measure(problem, ref_op)
    want = asymsense.fgd(ref_op, y, width=6, init_scale=1e-3, max_iter=60, seed=0, truth=problem, threads=1)
    got = asymsense.fgd(asymsense.make_operator("gaussian", N1, N2, M, seed=3, dtype="float32", backend="torch", device=DEVICE), y,
                        width=6, init_scale=1e-3, max_iter=60, seed=0, truth=problem, threads=1)
    assert str(got.U.dtype) == "torch.float32"
    np.testing.assert_allclose(got.history["rel_error"], want.history["rel_error"], rtol=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reads_to_host_only_at_monitor_cadence(backend, monkeypatch):
    """The loop keeps losses on the device: to_numpy runs a fixed number of
    times per recorded row, never per iteration."""
    problem = asymsense.planted(N1, N2, 2, seed=0)
    ref_op = operator("gaussian")
    y = asymsense.measure(problem, ref_op)
    op = bk.to_backend(ref_op, backend, DEVICE)
    calls = []
    original = bk.to_numpy
    monkeypatch.setattr(bk, "to_numpy", lambda x: calls.append(1) or original(x))
    counts = []
    for max_iter, every in ((99, 25), (399, 100)):
        calls.clear()
        result = asymsense.fgd(op, y, width=5, init_scale=1e-3, max_iter=max_iter, seed=0, record_every=every, threads=1)
        assert len(result.history) == 5
        counts.append(len(calls))
    assert counts[0] == counts[1] <= 3 * 5 + 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_is_reported_on_backends(backend):
    problem = asymsense.planted(N1, N2, 2, seed=0)
    ref_op = operator("gaussian")
    y = asymsense.measure(problem, ref_op)
    with pytest.raises(DivergenceError, match="step_size"):
        asymsense.fgd(bk.to_backend(ref_op, backend, DEVICE), y, width=5, init_scale=0.5, step_size=50.0, max_iter=200, seed=0, record_every=10, threads=1)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), batch=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_dct_by_fft_equals_scipy(n, batch, seed):
    import array_api_strict as xp

    x = np.random.default_rng(seed).standard_normal((batch, n))
    forward = bk.to_numpy(bk._dct_via_fft(xp.asarray(x), xp, inverse=False))
    np.testing.assert_allclose(forward, scipy.fft.dct(x, type=2, norm="ortho", axis=-1), rtol=1e-10, atol=1e-12)
    back = bk.to_numpy(bk._dct_via_fft(xp.asarray(forward), xp, inverse=True))
    np.testing.assert_allclose(back, x, rtol=1e-10, atol=1e-12)


def test_backend_choice_errors_name_the_parameter():
    with pytest.raises(InputError, match="backend must be one of"):
        asymsense.make_operator("gaussian", 4, 3, 10, seed=0, backend="jax")
    with pytest.raises(InputError, match="device"):
        asymsense.make_operator("gaussian", 4, 3, 10, seed=0, backend="numpy", device="cuda")
    if HAS_TORCH:
        import torch

        if not torch.cuda.is_available():
            with pytest.raises(InputError, match="CUDA is not available"):
                asymsense.make_operator("gaussian", 4, 3, 10, seed=0, backend="torch", device="cuda")


def test_to_numpy_accepts_plain_python_and_pandas_data():
    assert bk.to_numpy([1.0, 2.0]).tolist() == [1.0, 2.0]
    assert float(bk.to_numpy(3.0)) == 3.0
    op = operator("gaussian")
    with pytest.raises(InputError, match="shape mismatch"):
        op.check_measurements([1.0, 2.0])
    with pytest.raises(InputError, match="non-finite"):
        op.check_measurements([float("nan")] * M)
