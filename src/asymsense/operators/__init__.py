"""Measurement operators: one protocol (`Operator`), one file per family."""

from __future__ import annotations

import os

import numpy as np

from asymsense.backend import to_backend
from asymsense.errors import InputError
from asymsense.validation import check_dtype, check_memory
from asymsense.operators import entry_kernels
from asymsense.operators.base import Operator, check_shape
from asymsense.operators.entries import BLOCK_BYTES, EntrySample, random_entries
from asymsense.operators.gaussian import CHUNK_ENTRIES, DenseGaussian, StreamGaussian, stream_buffer_bytes
from asymsense.operators.rank_one import RankOneOperator
from asymsense.operators.structured import StructuredOperator

OPERATOR_KINDS = {
    "gaussian": DenseGaussian,
    "gaussian-stream": StreamGaussian,
    "rank-one": RankOneOperator,
    "structured": StructuredOperator,
    "entries": random_entries,
}


def operator_memory(kind: str, n1: int, n2: int, m: int, dtype="float64", *, drawing: bool = True) -> int:
    """Peak bytes of building an operator of family `kind` (its arrays plus the
    temporaries of drawing them; float32 arrays are drawn in float64 first):
    m·n1·n2 numbers for the dense Gaussian (plus its float32 normals for the
    fused kernel, float64 with numba), m·(n1 + n2) for rank-one, a few
    chunks for the streamed Gaussian, O(n1·n2 + m) for the structured
    operator and O(n1 + n2 + m) for entry sampling. With `drawing=False`: what the operator keeps once
    built (no drawing temporaries). Measured against tracemalloc in
    tests/test_reliability.py."""
    item = np.dtype(check_dtype(dtype)).itemsize
    drawn = item + (8 if item < 8 and drawing else 0)
    n1, n2, m = int(n1), int(n2), int(m)
    # the streamed Gaussian: a superchunk and its generation scratch per generator thread (one per core),
    # the chunks' generator states (StreamGaussian.peak_bytes)
    if kind == "gaussian-stream":  # asked only here: the scratch size asks whether numba loads
        return stream_buffer_bytes(n1, n2, m, dtype, os.cpu_count() or 1) + 16 * m
    # a float64 dense Gaussian also keeps its float32 normals where the fused kernel can read them (DenseGaussian)
    normals = 4 if kind == "gaussian" and item == 8 and entry_kernels.available() else 0
    # structured: drawing the signs and the m rows (rng.choice of n1·n2) takes about 4·n1·n2 numbers, the operator keeps
    # its n1·n2 signs and the m selected rows
    sizes = {"gaussian": m * n1 * n2 * (drawn + normals), "rank-one": m * (n1 + n2) * drawn,
             "structured": (4 * n1 * n2 * 8 + 16 * m) if drawing else n1 * n2 * item + 8 * m, "entries": 100 * m + 16 * (n1 + n2 + 2)}  # entries: + the row and column CSR offsets
    return sizes.get(kind, m * n1 * n2 * drawn)


def step_memory(kind: str, n1: int, n2: int, m: int, width: int, batch: int = 1, dtype="float64") -> int:
    """Peak bytes of fgd's working arrays for a batch of `batch` trials of
    width k: factors, gradients, directions and the best iterate (about
    4·(n1 + n2)·k numbers a trial), the monitors' n1×n2 products, the residuals,
    and the operator's temporaries (m·k numbers per trial for rank-one and
    entry sampling (m·k numbers a trial for rank-one, blocks of 1 MB for entry
    sampling, (n1 + n2)·k in float64 for the structured operator, a chunk for
    the Gaussian ones)."""
    item = np.dtype(check_dtype(dtype)).itemsize
    n1, n2, m, width, batch = int(n1), int(n2), int(m), int(width), int(batch)
    factors = (n1 + n2) * width
    common = batch * (4 * factors * item + 2 * n1 * n2 * 8 + 4 * m * item)
    extra = {"rank-one": 2 * batch * m * width * item, "entries": BLOCK_BYTES,
             "structured": batch * factors * 8}.get(kind, CHUNK_ENTRIES * 8)
    return common + extra


def operator_kind(operator) -> str | None:
    """The family name (a key of OPERATOR_KINDS) of an operator object, None when unknown."""
    for kind, cls in (("rank-one", RankOneOperator), ("entries", EntrySample), ("structured", StructuredOperator),
                      ("gaussian-stream", StreamGaussian), ("gaussian", DenseGaussian)):
        if isinstance(operator, cls):
            return kind
    return None


def make_operator(kind: str, n1: int, n2: int, m: int, *, seed=None, dtype="float64", backend=None, device=None) -> Operator:
    """Build an operator of family `kind` (one of OPERATOR_KINDS) for n1×n2 matrices and m measurements.

    `backend` ("numpy" default, "torch", "cupy", "array-api-strict") and
    `device` ("cpu", "cuda", "cuda:1", …) put its arrays on that backend; the
    values are those of the NumPy operator with the same seed.
    """
    if kind not in OPERATOR_KINDS:
        raise InputError(f"operator must be one of {', '.join(OPERATOR_KINDS)}, got {kind!r}")
    n1, n2, m = check_shape(n1, n2, m)  # integral floats (2.0) become ints before any constructor sees them
    check_memory(operator_memory(kind, n1, n2, m, dtype), f"the {kind} operator for {n1}×{n2} matrices and m = {m}",
                 "use operator='gaussian-stream' (memory of one chunk) or fewer measurements m" if kind in ("gaussian", "rank-one")
                 else "use fewer measurements m", "m")
    op = OPERATOR_KINDS[kind](n1, n2, m, seed=seed, dtype=dtype)
    if (backend is None or backend == "numpy") and device in (None, "cpu"):
        return op
    return to_backend(op, backend or "numpy", device)


__all__ = ["Operator", "DenseGaussian", "StreamGaussian", "RankOneOperator", "StructuredOperator", "EntrySample", "random_entries", "make_operator", "OPERATOR_KINDS", "operator_memory", "step_memory", "operator_kind"]
