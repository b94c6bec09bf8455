"""Rank-one projections A_i = a_i b_iᵀ with a_i, b_i i.i.d. N(0, m^{-1/2} I).

Each entry of A_i then has variance 1/m, so E[A*A] = Id as for the Gaussian
operator. On factors nothing n1×n2 is formed:
A(UVᵀ)_i = ⟨Uᵀa_i, Vᵀb_i⟩,  A*(z)V = aᵀ diag(z) (bV),  A*(z)ᵀU = bᵀ diag(z) (aU),
O(m·k·(n1+n2)) per step. Written in the Array API (runs on every backend).
"""

from __future__ import annotations

import copy

import numpy as np

from asymsense.backend import is_numpy
from asymsense.validation import check_dtype, resolve_seed
from asymsense.operators.base import Operator, _mT, check_shape


class RankOneOperator(Operator):
    backend_arrays = ("left", "right")

    def __init__(self, n1, n2, m, *, seed=None, dtype="float64", left=None, right=None):
        self.shape = check_shape(n1, n2, m)[:2]
        self.m = int(m)
        self.dtype = check_dtype(dtype)
        self.seed = resolve_seed(seed)
        if left is None:
            rng = np.random.default_rng(self.seed)
            std = self.m ** -0.25
            left = rng.standard_normal((self.m, self.n1)) * std
            right = rng.standard_normal((self.m, self.n2)) * std
        self.left = np.ascontiguousarray(left, dtype=self.dtype)
        self.right = np.ascontiguousarray(right, dtype=self.dtype)

    def _weighted(self, z, F):
        return self.xp.expand_dims(self._arr(z), axis=-1) * F

    def forward(self, X):
        return self.xp.sum((self.left @ self._arr(X)) * self.right, axis=-1)

    def forward_factors(self, U, V):
        return self.xp.sum((self.left @ self._arr(U)) * (self.right @ self._arr(V)), axis=-1)

    def adjoint(self, z):
        return _mT(self._weighted(z, self.left)) @ self.right

    def adjoint_times(self, z, V):
        return self.left.T @ self._weighted(z, self.right @ self._arr(V))

    def adjoint_t_times(self, z, U):
        return self.right.T @ self._weighted(z, self.left @ self._arr(U))

    def gradient_products(self, z, U, V):
        return self.adjoint_times(z, V), self.adjoint_t_times(z, U)

    def take(self, index):
        index = np.asarray(index)
        if not is_numpy(self.xp):
            new = copy.copy(self)
            idx = self.xp.asarray(index, device=self.device)
            new.left, new.right = self.xp.take(self.left, idx, axis=0), self.xp.take(self.right, idx, axis=0)
            new.m = len(index)
            return new
        return RankOneOperator(self.n1, self.n2, len(index), seed=self.seed, dtype=self.dtype, left=self.left[index], right=self.right[index])
