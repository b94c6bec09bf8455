"""asymsense — overparameterized asymmetric matrix sensing by factorized
gradient descent from small random initialization (Soltanolkotabi, Stöger,
Xie, COLT 2023)."""

from asymsense.errors import DivergenceError, InputError
from asymsense.solvers.fgd import fgd
from asymsense.solvers.result import BatchResult, FGDResult
from asymsense.operators import EntrySample, make_operator
from asymsense.problems import measure, planted
from asymsense import operators

__version__ = "0.1.0"

def __getattr__(name):
    """`asymsense.LowRankCompleter` on first use: it pulls in scikit-learn,
    which the CLI and the solver never need."""
    if name == "LowRankCompleter":
        from asymsense.completion import LowRankCompleter

        return LowRankCompleter
    raise AttributeError(f"module 'asymsense' has no attribute {name!r}")


__all__ = ["LowRankCompleter", "planted", "measure", "make_operator", "EntrySample", "fgd", "FGDResult", "BatchResult", "InputError", "DivergenceError", "operators"]
