"""The measurement-operator protocol shared by every operator family.

An operator maps X ∈ R^{n1×n2} to m measurements, A(X)_i = ⟨A_i, X⟩, and back
by the adjoint A*(z) = Σ_i z_i A_i. Every method accepts leading batch
dimensions: X of shape (..., n1, n2), z of shape (..., m), U of shape
(..., n1, k), V of shape (..., n2, k). The gradient of
f(U, V) = ½‖A(UVᵀ) − y‖² only needs the products A*(z)V and A*(z)ᵀU, so a
family that can form them without the n1×n2 matrix A*(z) overrides
`adjoint_times`, `adjoint_t_times` and `gradient_products`.
"""

from __future__ import annotations

import copy

import numpy as np

from asymsense import backend as bk
from asymsense.errors import InputError
from asymsense.validation import check_finite_array, check_int


def _mT(A):
    return bk.namespace(A).matrix_transpose(A) if not isinstance(A, np.ndarray) else np.swapaxes(A, -1, -2)


class Operator:
    """Base class: subclasses set `shape`, `m`, `dtype` and implement
    `forward` and `adjoint`; the factor products default to forming matrices.

    `xp` and `device` name the array backend (NumPy by default); the arrays
    listed in `backend_arrays` live there, and `to_namespace` copies the
    operator onto another backend (see asymsense.backend).
    """

    shape: tuple[int, int]
    m: int
    dtype: np.dtype
    xp = bk.NUMPY
    device = None
    backend_arrays: tuple[str, ...] = ()

    # --- required -------------------------------------------------------
    def forward(self, X):
        """A(X): (..., n1, n2) → (..., m)."""
        raise NotImplementedError

    def adjoint(self, z):
        """A*(z): (..., m) → (..., n1, n2)."""
        raise NotImplementedError

    # --- factor forms (override where cheaper) ---------------------------
    def forward_factors(self, U, V):
        """A(UVᵀ) for U (..., n1, k), V (..., n2, k)."""
        return self.forward(U @ _mT(V))

    def adjoint_times(self, z, V):
        """A*(z) V: (..., m), (..., n2, k) → (..., n1, k)."""
        return self.adjoint(z) @ V

    def adjoint_t_times(self, z, U):
        """A*(z)ᵀ U: (..., m), (..., n1, k) → (..., n2, k)."""
        return _mT(self.adjoint(z)) @ U

    def gradient_products(self, z, U, V):
        """(A*(z) V, A*(z)ᵀ U) — the two gradient blocks, from one adjoint
        where the operator forms A*(z)."""
        M = self.adjoint(z)
        return M @ V, _mT(M) @ U

    def take(self, index) -> "Operator":
        """The operator restricted to measurements `index` (an integer array),
        giving the same values as `forward(X)[..., index]` — used to hold out
        validation measurements."""
        raise NotImplementedError

    # --- backends ----------------------------------------------------------
    def to_namespace(self, xp, device=None) -> "Operator":
        """A shallow copy whose `backend_arrays` are moved to namespace xp on device."""
        device = bk.resolve_device(xp, device)
        new = copy.copy(self)
        for name in self.backend_arrays:
            value = getattr(self, name)
            setattr(new, name, bk.asarray(bk.to_numpy(value), xp, device))
        new.xp, new.device = (bk.NUMPY, None) if bk.is_numpy(xp) else (xp, device)
        return new

    def _arr(self, x):
        """An input array as this backend's (NumPy inputs are moved over)."""
        if bk.is_numpy(self.xp):
            return np.asarray(x)
        return self.xp.asarray(x, device=self.device) if isinstance(x, np.ndarray) else x

    @property
    def backend(self) -> str:
        return bk.backend_name(self.xp)

    def asarray(self, x, dtype=None):
        """x as an array of this operator's backend (in its dtype by default)."""
        return bk.asarray(x, self.xp, self.device, bk.xp_dtype(self.xp, dtype or self.dtype))

    # --- helpers -----------------------------------------------------------
    @property
    def n1(self) -> int:
        return self.shape[0]

    @property
    def n2(self) -> int:
        return self.shape[1]

    def check_measurements(self, y, name: str = "y") -> np.ndarray:
        """Validate a measurement vector against this operator: shape (..., m),
        finite. Returns a NumPy array in the operator's dtype (the host copy:
        validation happens once, at the boundary)."""
        y = bk.to_numpy(y)
        if y.ndim == 0 or y.shape[-1] != self.m:
            raise InputError(f"{name} has shape {y.shape} but the operator takes m = {self.m} measurements (shape mismatch)")
        if not np.issubdtype(y.dtype, np.number):
            raise InputError(f"{name} must be numeric, got dtype {y.dtype}")
        check_finite_array(name, y)
        return y.astype(self.dtype, copy=False)

    def __repr__(self) -> str:
        where = "" if bk.is_numpy(self.xp) else f", backend={self.backend}, device={self.device}"
        return f"{type(self).__name__}(shape={self.shape}, m={self.m}, dtype={np.dtype(self.dtype).name}{where})"


def check_shape(n1, n2, m):
    """Validate the integer sizes shared by every operator constructor."""
    return check_int("n1", n1, minimum=1), check_int("n2", n2, minimum=1), check_int("m", m, minimum=1)
