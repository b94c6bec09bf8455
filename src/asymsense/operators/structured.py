"""A fast structured operator: random signs, orthonormal DCT, row subsampling.

A(X) = √(N/m) · S C D vec(X),  N = n1·n2, with D a diagonal of random ±1, C the
orthonormal DCT-II on R^N and S the restriction to m distinct random rows.
Since E[SᵀS] = (m/N) I and C, D are orthogonal, E[A*A] = Id as for Gaussian
measurements, and A*(z) = √(N/m) · D Cᵀ Sᵀ z. Each application costs
O(N log N) through scipy.fft (on other backends, asymsense.backend.dct).
"""

from __future__ import annotations

import os

import numpy as np

from asymsense.backend import dct, idct, is_numpy, to_numpy
from asymsense.validation import check_dtype, check_sampled_measurements, resolve_seed
from asymsense.operators.base import Operator, check_shape


class StructuredOperator(Operator):
    def __init__(self, n1, n2, m, *, seed=None, dtype="float64", _parts=None):
        self.shape = check_shape(n1, n2, m)[:2]
        N = self.shape[0] * self.shape[1]
        self.dtype = check_dtype(dtype)
        self.seed = resolve_seed(seed)
        if _parts is None:
            check_sampled_measurements(m, n1, n2, "structured")
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

    backend_arrays = ("signs", "selected")

    def forward(self, X):
        X = self._arr(X)
        if is_numpy(self.xp):
            X = np.asarray(X, dtype=self.dtype)
        xp = self.xp
        flat = xp.reshape(X, (*X.shape[:-2], self.n1 * self.n2)) * self.signs
        coeffs = dct(flat, xp, self._workers)
        if is_numpy(xp):
            return coeffs[..., self.selected] * self.dtype.type(self.scale)
        return xp.take(coeffs, self.selected, axis=-1) * float(self.scale)

    def adjoint(self, z):
        z = self._arr(z)
        xp = self.xp
        if is_numpy(xp):
            z = np.asarray(z, dtype=self.dtype)
            full = np.zeros(z.shape[:-1] + (self.n1 * self.n2,), dtype=self.dtype)
            full[..., self.selected] = z * self.dtype.type(self.scale)
        else:
            # Sᵀz by a gather: position j reads z at its rank among the selected rows, or a zero appended at m.
            padded = xp.concat([z * float(self.scale), xp.zeros((*z.shape[:-1], 1), dtype=z.dtype, device=self.device)], axis=-1)
            full = xp.take(padded, self._positions, axis=-1)
        back = idct(full, xp, self._workers) * self.signs
        return xp.reshape(back, (*z.shape[:-1], self.n1, self.n2))

    def to_namespace(self, xp, device=None):
        new = super().to_namespace(xp, device)
        if not is_numpy(xp):
            positions = np.full(self.n1 * self.n2, self.m, dtype=np.int64)
            positions[to_numpy(self.selected)] = np.arange(self.m)
            new._positions = new.xp.asarray(positions, device=new.device)
        return new

    def take(self, index):
        index = np.asarray(index)
        host = StructuredOperator(self.n1, self.n2, len(index), seed=self.seed, dtype=self.dtype,
                                  _parts=(to_numpy(self.signs), to_numpy(self.selected)[index], self.scale))
        return host if is_numpy(self.xp) else host.to_namespace(self.xp, self.device)
