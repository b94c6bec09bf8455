"""The one-pass step of the matrix-free Gaussian (StreamGaussian.residual_gradient,
each chunk generated once per iteration) gives fgd exactly the numbers of the
two-pass forward/adjoint path: factors and history bit for bit."""

import numpy as np
import pytest

import asymsense
from asymsense import backend
from asymsense.operators import StreamGaussian


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("validation", [None, 0.2])
def test_stream_fused_step_is_bit_identical(monkeypatch, dtype, validation):
    truth = asymsense.planted(9, 7, 2, seed=1)
    op = StreamGaussian(9, 7, 150, seed=4, dtype=dtype, threads=2)
    y = asymsense.measure(truth, op)
    kwargs = dict(width=5, init_scale=[1e-2, 1e-3], max_iter=40, seed=0, truth=truth, record_every=7, validation=validation)
    fused = asymsense.fgd(op, y, **kwargs)
    monkeypatch.setattr(StreamGaussian, "residual_gradient", None, raising=True)
    plain = asymsense.fgd(op, y, **kwargs)
    for a, b in zip(fused, plain):
        np.testing.assert_array_equal(a.U, b.U)
        np.testing.assert_array_equal(a.V, b.V)
        assert a.history.names == b.history.names
        for name in a.history.names:
            np.testing.assert_array_equal(a.history[name], b.history[name])
        assert a.n_iter == b.n_iter and a.stop_reason == b.stop_reason


@pytest.mark.parametrize("n", [1, 2, 7, 4096, 60001])
def test_numba_box_muller_inputs_match_numpy_path(monkeypatch, n):
    pytest.importorskip("numba")
    from asymsense.operators.gaussian import standard_normal_fill

    def draw():
        bit_generator = np.random.SFC64(np.random.SeedSequence(3, spawn_key=(5,)))
        out = standard_normal_fill(bit_generator, np.empty(n, dtype=np.float32))
        return out, bit_generator.random_raw(2)

    fast, fast_next = draw()
    monkeypatch.setenv(backend.NUMBA_DISABLE_ENV, "1")
    plain, plain_next = draw()
    np.testing.assert_array_equal(fast, plain)
    np.testing.assert_array_equal(fast_next, plain_next)  # the generator advanced by the same words
