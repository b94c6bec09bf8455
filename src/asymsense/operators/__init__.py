"""Measurement operators: one protocol (`Operator`), one file per family."""

from __future__ import annotations

from asymsense.backend import to_backend
from asymsense.errors import InputError
from asymsense.operators.base import Operator, check_shape
from asymsense.operators.entries import EntrySample, random_entries
from asymsense.operators.gaussian import DenseGaussian, StreamGaussian
from asymsense.operators.rank_one import RankOneOperator
from asymsense.operators.structured import StructuredOperator

OPERATOR_KINDS = {
    "gaussian": DenseGaussian,
    "gaussian-stream": StreamGaussian,
    "rank-one": RankOneOperator,
    "structured": StructuredOperator,
    "entries": random_entries,
}


def make_operator(kind: str, n1: int, n2: int, m: int, *, seed=None, dtype="float64", backend=None, device=None) -> Operator:
    """Build an operator of family `kind` (one of OPERATOR_KINDS) for n1×n2 matrices and m measurements.

    `backend` ("numpy" default, "torch", "cupy", "array-api-strict") and
    `device` ("cpu", "cuda", "cuda:1", …) put its arrays on that backend; the
    values are those of the NumPy operator with the same seed.
    """
    if kind not in OPERATOR_KINDS:
        raise InputError(f"operator must be one of {', '.join(OPERATOR_KINDS)}, got {kind!r}")
    check_shape(n1, n2, m)
    op = OPERATOR_KINDS[kind](n1, n2, m, seed=seed, dtype=dtype)
    if (backend is None or backend == "numpy") and device in (None, "cpu"):
        return op
    return to_backend(op, backend or "numpy", device)


__all__ = ["Operator", "DenseGaussian", "StreamGaussian", "RankOneOperator", "StructuredOperator", "EntrySample", "random_entries", "make_operator", "OPERATOR_KINDS"]
