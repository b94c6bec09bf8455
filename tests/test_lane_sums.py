"""The fixed-order sums of the compiled kernels (operators/lane_sums.py):
`dot` and `fma` against exact arithmetic rounded once per operation, and
the claim they exist for: every compiled kernel (dense step, completion
step, matrix-free step) gives the same bits when compiled for another CPU."""

import contextlib
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asymsense.backend import cpu_flags
from asymsense.operators import entry_kernels

needs_numba = pytest.mark.skipif(not entry_kernels.available(), reason="numba is not installed")


@needs_numba
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 41), kinds=st.sampled_from([("float32", "float64"), ("float32", "float32"), ("float64", "float64")]),
       strides=st.sampled_from([(1, 1), (2, 1), (1, 3), (3, 2)]), seed=st.integers(0, 2**16))
def test_dot_is_its_fixed_order_bit_for_bit(n, kinds, strides, seed):
    """8 lanes of fmas, the tree, the tail by fma: every length's remainder,
    contiguous or strided operands (a column of a row-major array)."""
    from numba import njit

    from asymsense.operators.lane_sums import dot, reference_dot

    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n * strides[0]).astype(kinds[0])[::strides[0]]
    b = rng.standard_normal(n * strides[1]).astype(kinds[1])[::strides[1]]
    got = np.dtype(kinds[1]).type(njit(lambda a, b: dot(a, b))(a, b))
    assert got == reference_dot(a, b, kinds[1])


@needs_numba
def test_tiles_refuse_arrays_that_are_not_row_major():
    """The tile intrinsics address rows as data + i·N: a column-major G must
    fail to compile, not give wrong sums."""
    from numba import njit
    from numba.core.errors import TypingError

    from asymsense.operators.lane_sums import tile_dots

    dots = tile_dots(1, 1)
    run = njit(lambda G, X, out: dots(G, 0, X, 0, out))
    G, X, out = np.arange(32.0).reshape(2, 16), np.ones((1, 16)), np.zeros(1)
    run(G, X, out)
    assert out[0] == G[0].sum()
    with pytest.raises(TypingError):
        run(np.asfortranarray(G), X, out)


@needs_numba
@pytest.mark.parametrize("dtype, eps", [("float64", 2.0 ** -30), ("float32", 2.0 ** -13)])
def test_fma_rounds_once(dtype, eps):
    """(1 + ε)(1 − ε) − 1 = −ε²: one rounding keeps it, a product rounded to
    1 first gives 0. The compiled `fma` and the exact reference agree."""
    from numba import njit

    from asymsense.operators.lane_sums import fma, reference_fma

    kind = np.dtype(dtype).type
    a, b, c = kind(1 + eps), kind(1 - eps), kind(-1)
    assert a * b + c == 0
    assert reference_fma(a, b, c, dtype) == kind(-eps * eps)
    assert njit(lambda a, b, c: fma(a, b, c))(a, b, c) == kind(-eps * eps)


@needs_numba
def test_reference_rounding_is_to_nearest_even():
    from fractions import Fraction

    from asymsense.operators.lane_sums import _round

    one, ulp = Fraction(1), Fraction(2) ** -23
    assert _round(one + ulp / 2, np.dtype("float32")) == np.float32(1)
    assert _round(one + 3 * ulp / 2, np.dtype("float32")) == np.float32(1 + 2 * float(ulp))
    assert _round(one + ulp / 2 + Fraction(1, 2 ** 40), np.dtype("float32")) == np.float32(1 + float(ulp))


@needs_numba
@pytest.mark.parametrize("name, features, want", [
    (None, "+avx2,+fma,+avx512f", 32), (None, "+avx2,+fma,-avx512f", 16), ("haswell", "", 16), ("x86-64-v4", "", 16)])
def test_register_count_follows_the_compile_target(monkeypatch, name, features, want):
    """The dense kernel's 4 × 6 tile needs AVX-512's 32 vector registers
    (with 16 it spills, 2.6× slower): a target named without its features
    counts as 16."""
    from numba.core import config

    from asymsense.operators.lane_sums import vector_registers

    monkeypatch.setattr(config, "CPU_NAME", name)
    monkeypatch.setattr(config, "CPU_FEATURES", features)
    assert vector_registers() == want


@needs_numba
def test_an_unreadable_host_counts_as_16_registers(monkeypatch):
    import llvmlite.binding as llvm
    from numba.core import config

    from asymsense.operators.lane_sums import vector_registers

    def unreadable():
        raise RuntimeError("failed to get host cpu features")

    monkeypatch.setattr(config, "CPU_NAME", None)
    monkeypatch.setattr(config, "CPU_FEATURES", None)
    monkeypatch.setattr(llvm, "get_host_cpu_features", unreadable)
    assert vector_registers() == 16


def test_host_register_count_matches_the_cpu_flags():
    if not entry_kernels.available() or not cpu_flags():
        pytest.skip("needs numba and /proc/cpuinfo")
    from asymsense.operators.lane_sums import vector_registers

    assert vector_registers() == (32 if "avx512f" in cpu_flags() else 16)


_KERNELS = """
import hashlib, numpy as np
from asymsense.operators import DenseGaussian, EntrySample, StreamGaussian
from asymsense.operators.dense_numba import fused_step

def digest(arrays):
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()

rng = np.random.default_rng(0)
for m, N, B, kind in [(301, 403, 6, "float64"), (37, 13, 5, "float32"), (47, 29, 15, "float32")]:
    G = rng.standard_normal((m, N)).astype("float32")
    X, y = rng.standard_normal((B, N)).astype(kind), rng.standard_normal(m).astype(kind)
    r, M = np.empty((B, m), kind), np.empty((B, N), kind)
    fused_step(G, np.dtype(kind).type(m ** -0.5), X, y, r, M, np.dtype(kind).type(0))
    print("dense", kind, digest([r, M]))
n1, n2, k, m = 3000, 2000, 19, 200000
rows, cols = rng.integers(0, n1, m), rng.integers(0, n2, m)
for kind in ("float32", "float64"):
    op = EntrySample(rows, cols, (n1, n2), dtype=kind)
    U, V, y = (rng.standard_normal(s).astype(kind) for s in ((n1, k), (n2, k), m))
    print("entries", kind, digest(op.residual_gradient(U, V, y, np.dtype(kind))))
op = StreamGaussian(30, 20, 3000, seed=1)
U, V, y = rng.standard_normal((30, 5)), rng.standard_normal((20, 5)), rng.standard_normal(3000)
print("stream", digest(op.residual_gradient(U, V, y, np.dtype("float64"))))
"""


@needs_numba
@pytest.mark.slow
def test_kernel_bits_do_not_depend_on_the_target_cpu(tmp_path):
    """The kernels compiled for other CPUs than this one (Haswell: AVX2,
    16 registers of 256 bits; x86-64-v4: AVX-512, where this CPU runs it)
    give the same bits as here. The fastmath kernels they replaced did not:
    on a Zen 4, its own code and Haswell's differed in the completion and
    matrix-free steps, its own and x86-64-v4's in the dense step. (Each
    target is a subprocess that compiles every kernel: ~15 s.)"""
    if not {"avx2", "fma"} <= cpu_flags():
        pytest.skip("no x86 CPU with AVX2 and FMA here")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(_KERNELS, {})
    host = printed.getvalue().splitlines()
    assert len(host) == 6
    targets = ["haswell"] + (["x86-64-v4"] if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= cpu_flags() else [])
    for target in targets:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / target), "NUMBA_CPU_NAME": target, "NUMBA_CPU_FEATURES": ""}
        done = subprocess.run([sys.executable, "-c", _KERNELS], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.splitlines() == host, target
