"""The claims table: a statement, the number measured from stored results with
its uncertainty, a threshold stated up front, and pass/fail.

A claim passes when the *whole* stated quantity clears the threshold: for
`">="` the lower end of the interval must be ≥ threshold, for `"<="` the upper
end ≤ threshold (a point value has low = high = value). A claim whose number
could not be measured (missing or failed trials) is reported as "not measured"
and counts as failed — never dropped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from asymsense.serialize import dumps

OPS = (">=", "<=")


@dataclass
class Claim:
    """One row of the claims table."""

    id: str
    experiment: str
    statement: str
    quantity: str
    value: float
    low: float
    high: float
    op: str
    threshold: float
    uncertainty: str = "point value"
    n: int = 0
    note: str = ""
    passed: bool = field(init=False, default=False)

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"claim {self.id}: op must be one of {OPS}, got {self.op!r}")
        self.value, self.low, self.high = (float(v) if v is not None else math.nan for v in (self.value, self.low, self.high))
        self.passed = self.evaluate()

    @property
    def measured(self) -> bool:
        return all(math.isfinite(v) for v in (self.value, self.low, self.high))

    def evaluate(self) -> bool:
        if not self.measured:
            return False
        if self.op == ">=":
            return self.low >= self.threshold
        return self.high <= self.threshold

    @property
    def verdict(self) -> str:
        if not self.measured:
            return "FAIL (not measured)"
        return "pass" if self.passed else "FAIL"

    def measured_text(self) -> str:
        if not self.measured:
            return "—"
        if self.low == self.high == self.value:
            return _fmt(self.value)
        return f"{_fmt(self.value)} [{_fmt(self.low)}, {_fmt(self.high)}]"

    def threshold_text(self) -> str:
        basis = "" if self.low == self.high else (" (lower CI end)" if self.op == ">=" else " (upper CI end)")
        return f"{self.op} {_fmt(self.threshold)}{basis}"


def claim(id, experiment, statement, quantity, estimate, op, threshold, *, uncertainty=None, note="") -> Claim:
    """Build a claim from an `Estimate` (value/low/high/n), a float, or None (not measured)."""
    if estimate is None:
        return Claim(id, experiment, statement, quantity, math.nan, math.nan, math.nan, op, threshold, uncertainty or "—", 0, note)
    if isinstance(estimate, (int, float)):
        v = float(estimate)
        return Claim(id, experiment, statement, quantity, v, v, v, op, threshold, uncertainty or "point value", 0, note)
    unc = uncertainty or f"{int(round(estimate.level * 100))}% bootstrap CI over {estimate.n} seeds"
    return Claim(id, experiment, statement, quantity, estimate.value, estimate.low, estimate.high, op, threshold, unc, estimate.n, note)


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.4g}"
    return f"{x:.2e}"


def claims_markdown(claims: list[Claim]) -> str:
    """A Markdown table of the claims."""
    lines = [
        "| id | claim | quantity | measured [CI] | uncertainty | threshold | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in claims:
        cells = [c.id, c.statement, c.quantity, c.measured_text(), c.uncertainty, c.threshold_text(), f"**{c.verdict}**"]
        lines.append("| " + " | ".join(str(x).replace("|", "\\|") for x in cells) + " |")
    return "\n".join(lines)


def claims_json(claims: list[Claim]) -> str:
    """The claims as strict JSON (a value that could not be measured is null)."""
    return dumps([{**asdict(c), "verdict": c.verdict} for c in claims])
