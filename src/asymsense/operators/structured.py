"""A fast structured operator: random signs, orthonormal DCT, row subsampling.

A(X) = √(N/m) · S C D vec(X),  N = n1·n2, with D a diagonal of random ±1, C the
orthonormal DCT-II on R^N and S the restriction to m distinct random rows.
Since E[SᵀS] = (m/N) I and C, D are orthogonal, E[A*A] = Id as for Gaussian
measurements, and A*(z) = √(N/m) · D Cᵀ Sᵀ z. Each application costs
O(N log N) through scipy.fft.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.fft

from ..errors import InputError, check_dtype, resolve_seed
from .base import Operator, check_shape


class StructuredOperator(Operator):
    def __init__(self, n1, n2, m, *, seed=None, dtype="float64", _parts=None):
        self.shape = check_shape(n1, n2, m)[:2]
        N = self.shape[0] * self.shape[1]
        self.dtype = check_dtype(dtype)
        self.seed = resolve_seed(seed)
        if _parts is None:
            if m > N:
                raise InputError(f"m = {m} exceeds n1·n2 = {N}: the structured operator subsamples distinct rows of an N×N transform")
            rng = np.random.default_rng(self.seed)
            signs = rng.choice(np.array([-1.0, 1.0]), size=N)
            selected = np.sort(rng.choice(N, size=int(m), replace=False))
            _parts = (signs, selected, np.sqrt(N / int(m)))
        signs, selected, scale = _parts
        self.signs = signs.astype(self.dtype)
        self.selected = selected
        self.scale = scale
        self.m = len(selected)
        self._workers = os.cpu_count() or 1

    def forward(self, X):
        X = np.asarray(X, dtype=self.dtype)
        flat = X.reshape(*X.shape[:-2], -1) * self.signs
        coeffs = scipy.fft.dct(flat, type=2, norm="ortho", axis=-1, workers=self._workers)
        return coeffs[..., self.selected] * self.dtype.type(self.scale)

    def adjoint(self, z):
        z = np.asarray(z, dtype=self.dtype)
        full = np.zeros(z.shape[:-1] + (self.n1 * self.n2,), dtype=self.dtype)
        full[..., self.selected] = z * self.dtype.type(self.scale)
        back = scipy.fft.idct(full, type=2, norm="ortho", axis=-1, workers=self._workers) * self.signs
        return back.reshape(*z.shape[:-1], self.n1, self.n2)

    def take(self, index):
        return StructuredOperator(self.n1, self.n2, len(index), seed=self.seed, dtype=self.dtype, _parts=(self.signs, self.selected[np.asarray(index)], self.scale))
