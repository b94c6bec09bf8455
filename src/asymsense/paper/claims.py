"""The claims table: a statement, the number measured from stored results with
its uncertainty, a threshold stated up front, and pass/fail.

A claim passes when the *whole* stated quantity clears the threshold: for
`">="` the lower end of the interval must be ≥ threshold, for `"<="` the upper
end ≤ threshold, for `"within"` the interval must lie inside
[threshold, threshold_high] (a point value has low = high = value).

Every claim carries the regime its experiment ran in (`regime`: oversampling,
κ, μ‖X*‖₂ and the measured RIP proxies, see `asymsense.paper.regime`), so a
number is never read without the conditions it was measured under. A claim whose number
could not be measured (missing or failed trials) is reported as "not measured"
and counts as failed — never dropped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from asymsense.serialize import dumps

OPS = (">=", "<=", "within")


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
    threshold_high: float | None = None
    regime: list | None = None  # the experiment's regime (Regime.as_dict() + "text" per group), set by the report
    passed: bool = field(init=False, default=False)

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"claim {self.id}: op must be one of {OPS}, got {self.op!r}")
        if (self.op == "within") != (self.threshold_high is not None):
            raise ValueError(f"claim {self.id}: threshold_high is needed with op 'within' and only then")
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
        if self.op == "within":
            return self.threshold <= self.low and self.high <= self.threshold_high
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
        if self.op == "within":
            basis = "" if self.low == self.high else " (whole interval)"
            return f"in [{_fmt(self.threshold)}, {_fmt(self.threshold_high)}]{basis}"
        basis = "" if self.low == self.high else (" (lower end)" if self.op == ">=" else " (upper end)")
        return f"{self.op} {_fmt(self.threshold)}{basis}"


def claim(id, experiment, statement, quantity, estimate, op, threshold, *, uncertainty=None, note="", regime=None) -> Claim:
    """Build a claim from an `Estimate` (value/low/high/n and how the interval
    was obtained), a float, or None (not measured). `threshold` is a number, or
    a (low, high) pair for op "within"."""
    high = None
    if op == "within":
        threshold, high = (float(x) for x in threshold)
    if estimate is None:
        return Claim(id, experiment, statement, quantity, math.nan, math.nan, math.nan, op, threshold, uncertainty or "—", 0, note, high, regime)
    if isinstance(estimate, (int, float)):
        v = float(estimate)
        return Claim(id, experiment, statement, quantity, v, v, v, op, threshold, uncertainty or "point value", 0, note, high, regime)
    unc = uncertainty or estimate.label
    return Claim(id, experiment, statement, quantity, estimate.value, estimate.low, estimate.high, op, threshold, unc, estimate.n, note, high, regime)


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
