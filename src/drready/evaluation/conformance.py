"""Result types of the E1 conformance checker: one verdict per requirement check (E1, C1, F1–F6).

The conformance checker probes a device black-box over its wire protocol (ECHONET Lite in
:mod:`drready.evaluation.conformance_echonet`, OpenADR elsewhere) and records, for every check,
the requirement it serves (``"C1"``, ``"F1"`` … ``"F6"``), a verdict and the evidence: the
exchanges actually seen (hex frames, or short lines such as ``"Get 0xE1 → 01 5E"``), so that a
reader can re-judge each verdict without re-running the probe.

Verdicts: ``pass`` — the behaviour was observed and is right; ``fail`` — it was observed and is
wrong (or a required property is missing); ``not observable`` — the device does not expose what
the check would need (e.g. no measured power), which is not a failure of the wire protocol but is
reported so it cannot be mistaken for a pass. :attr:`Report.exit_code` is 0 when no check
failed, 1 otherwise. ``drready conformance`` (:mod:`drready.cli.conformance`) prints a report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Check", "Report", "Verdict"]


class Verdict(StrEnum):
    """Outcome of one check."""

    PASS = "pass"
    FAIL = "fail"
    NOT_OBSERVABLE = "not observable"


@dataclass(frozen=True)
class Check:
    """One conformance check: requirement ID, short name, verdict and the exchanges seen."""

    requirement: str
    name: str
    verdict: Verdict
    evidence: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "requirement": self.requirement,
            "name": self.name,
            "verdict": str(self.verdict),
            "evidence": list(self.evidence),
        }


@dataclass
class Report:
    """All checks run against one target (e.g. ``"echonet 192.168.1.20 026B01"``)."""

    target: str
    checks: list[Check] = field(default_factory=list)

    def add(
        self, requirement: str, name: str, verdict: Verdict, evidence: list[str] | None = None
    ) -> Check:
        check = Check(requirement, name, verdict, list(evidence or []))
        self.checks.append(check)
        return check

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.verdict is Verdict.FAIL]

    @property
    def exit_code(self) -> int:
        """0 when no check failed, 1 otherwise."""
        return 1 if self.failed else 0

    def counts(self) -> dict[str, int]:
        return {str(v): sum(c.verdict is v for c in self.checks) for v in Verdict}

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "passed": self.exit_code == 0,
            "counts": self.counts(),
            "checks": [c.as_dict() for c in self.checks],
        }

    def to_json(self, indent: int | None = None) -> str:
        """The report as a JSON document (stable keys: target, passed, counts, checks)."""
        return json.dumps(self.as_dict(), ensure_ascii=False, indent=indent)
