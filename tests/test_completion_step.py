"""The completion fit's step through `EntrySample.residual_gradient` (one call
per step, the numba kernels where the operator takes them) gives the numbers of
the NumPy/SciPy path: factors, losses and monitors to 1e-12 relative in
float64 and 1e-6 in float32, for one fit, an ensemble and the implicit term."""

import numpy as np
import pytest

from asymsense import backend
from asymsense.completion import complete
from asymsense.operators import entries as entries_module
from asymsense.operators import entry_kernels

pytest.importorskip("numba")


def _table(seed=0):
    rng = np.random.default_rng(seed)
    n1, n2 = 3000, 700
    m = int(entries_module.FUSED_ENTRIES / 0.9) + 500  # the training part alone takes the kernels
    rows, cols = rng.integers(0, n1, m), rng.integers(0, n2, m)
    values = np.einsum("ik,ik->i", rng.standard_normal((n1, 3))[rows], rng.standard_normal((n2, 3))[cols])
    return rows, cols, values + 0.1 * rng.standard_normal(m), (n1, n2)


def _close(a, b, tol):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))  # monitors only at their cadence
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    assert np.linalg.norm(a - b) <= tol * np.linalg.norm(b)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-6)])
@pytest.mark.parametrize("options", [{}, {"ensemble": 2}, {"implicit": True, "l2": 0.01}], ids=["one", "ensemble", "implicit-l2"])
def test_fit_with_the_kernels_matches_the_numpy_path(monkeypatch, dtype, tol, options):
    rows, cols, values, shape = _table()
    kwargs = dict(width=4, max_iter=6, patience=None, validation=0.1, seed=1, dtype=dtype, record_every=2, refit=False, **options)
    calls = []
    for name in ("one_pass_step", "residual_gradient"):
        original = getattr(entry_kernels, name)
        monkeypatch.setattr(entry_kernels, name, lambda *a, _f=original, **k: calls.append(1) or _f(*a, **k))
    fast = complete(rows, cols, values, shape, **kwargs)
    assert len(calls) == 7 * options.get("ensemble", 1)  # one fused call per iterate (0..6) and member
    monkeypatch.setenv(backend.NUMBA_DISABLE_ENV, "1")
    plain = complete(rows, cols, values, shape, **kwargs)
    assert len(calls) == 7 * options.get("ensemble", 1)  # the NumPy path took no kernel
    _close(fast.U, plain.U, tol)
    _close(fast.V, plain.V, tol)
    assert fast.history.names == plain.history.names
    for name in ("loss", "val_rmse", "train_rmse", "sv_1"):
        _close(fast.history[name], plain.history[name], tol)
    assert fast.n_iter == plain.n_iter == 6
