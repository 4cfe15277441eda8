"""The conformance suite's results: the names of the checks (``CHECKS``, ``QUICK_CHECKS``),
one check's outcome (``CheckResult``) and a model's report (``CheckReport``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CHECKS", "QUICK_CHECKS", "CheckReport", "CheckResult"]

CHECKS: tuple[str, ...] = (
    "capabilities",
    "config_json",
    "config_roundtrip",
    "predict_before_fit",
    "fit_returns_self",
    "output_shape",
    "output_finite",
    "output_in_scale",
    "no_mutation",
    "global_rng",
    "rng_seeds",
    "deterministic",
    "seed_declared",
    "batch_order",
    "chunking",
    "future",
)
QUICK_CHECKS: tuple[str, ...] = (
    "capabilities",
    "config_json",
    "config_roundtrip",
    "predict_before_fit",
)


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: ``passed`` (a skipped check counts as passed), a one-line
    ``reason`` and the wall-clock ``seconds`` it took. ``knock_on``: for a failure that
    follows from another check's failure, that check's name (its reason then starts with
    "knock-on of <check>:"); None for a root cause."""

    name: str
    passed: bool
    reason: str
    seconds: float = 0.0
    skipped: bool = False
    knock_on: str | None = None

    @property
    def status(self) -> Literal["PASS", "FAIL", "SKIP"]:
        if self.skipped:
            return "SKIP"
        return "PASS" if self.passed else "FAIL"


@dataclass(frozen=True)
class CheckReport:
    """All check results for one model (``model`` is its display name)."""

    model: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    @property
    def root_failures(self) -> list[CheckResult]:
        """The failures that are not knock-ons of another: the ones to fix first."""
        return [r for r in self.failures if r.knock_on is None]

    def __getitem__(self, name: str) -> CheckResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no check named {name!r}; checks: {', '.join(CHECKS)}")

    def table(self) -> str:
        """A plain-text table: check, status (PASS/FAIL/SKIP), seconds, reason."""
        rows = [(r.name, r.status, f"{r.seconds:.2f}", r.reason) for r in self.results]
        head = ("check", "status", "s", "reason")
        widths = [max(len(x[i]) for x in [head, *rows]) for i in range(3)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
            for row in [head, *rows]
        ]
        lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 6)
        return "\n".join(line.rstrip() for line in lines)

    def summary(self) -> str:
        """One line: how many checks failed, and how many of those are root causes."""
        n, roots = len(self.failures), self.root_failures
        head = f"{self.model}: {n} of {len(self.results)} checks failed"
        if n > len(roots):
            head += f" ({n - len(roots)} of them knock-ons; root cause(s): "
            head += ", ".join(r.name for r in roots) or "checks not run"
            head += ")"
        return head

    def __str__(self) -> str:
        return self.summary() + "\n" + self.table()

    def raise_for_failures(self) -> None:
        """Raise ``AssertionError`` listing every failed check (nothing when all passed)."""
        bad = self.failures
        if bad:
            lines = [f"  {r.name}: {r.reason}" for r in bad]
            raise AssertionError(
                f"{self.model} failed {len(bad)} of {len(self.results)} conformance "
                "check(s):\n" + "\n".join(lines)
            )
