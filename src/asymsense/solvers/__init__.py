"""Solvers: the one descent loop (`loop`), the paper's algorithm on it (`fgd`),
the step-size rule (`stepsize`), the held-out splits (`stopping`) and the
result types (`result`)."""
