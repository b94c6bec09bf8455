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

import numpy as np

from ..errors import InputError


class Operator:
    """Base class: subclasses set `shape`, `m`, `dtype` and implement
    `forward` and `adjoint`; the factor products default to forming matrices."""

    shape: tuple[int, int]
    m: int
    dtype: np.dtype

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
        return self.forward(U @ np.swapaxes(V, -1, -2))

    def adjoint_times(self, z, V):
        """A*(z) V: (..., m), (..., n2, k) → (..., n1, k)."""
        return self.adjoint(z) @ V

    def adjoint_t_times(self, z, U):
        """A*(z)ᵀ U: (..., m), (..., n1, k) → (..., n2, k)."""
        return np.swapaxes(self.adjoint(z), -1, -2) @ U

    def gradient_products(self, z, U, V):
        """(A*(z) V, A*(z)ᵀ U) — the two gradient blocks, from one adjoint
        where the operator forms A*(z)."""
        M = self.adjoint(z)
        return M @ V, np.swapaxes(M, -1, -2) @ U

    def take(self, index) -> "Operator":
        """The operator restricted to measurements `index` (an integer array),
        giving the same values as `forward(X)[..., index]` — used to hold out
        validation measurements."""
        raise NotImplementedError

    # --- helpers -----------------------------------------------------------
    @property
    def n1(self) -> int:
        return self.shape[0]

    @property
    def n2(self) -> int:
        return self.shape[1]

    def check_measurements(self, y, name: str = "y") -> np.ndarray:
        """Validate a measurement vector against this operator: shape (..., m), finite."""
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[-1] != self.m:
            raise InputError(f"{name} has shape {y.shape} but the operator takes m = {self.m} measurements (shape mismatch)")
        if not np.issubdtype(y.dtype, np.number):
            raise InputError(f"{name} must be numeric, got dtype {y.dtype}")
        from ..errors import check_finite_array

        check_finite_array(name, y)
        return y.astype(self.dtype, copy=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, m={self.m}, dtype={np.dtype(self.dtype).name})"


def check_shape(n1, n2, m):
    """Validate the integer sizes shared by every operator constructor."""
    from ..errors import check_int

    return check_int("n1", n1, minimum=1), check_int("n2", n2, minimum=1), check_int("m", m, minimum=1)
