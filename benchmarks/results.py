"""Result records of a run and the verdict rule: metrics + checks -> pass/fail/info."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from benchmarks.scenarios import Check

Status = Literal["pass", "fail", "info", "pending", "error", "invalid"]


@dataclass
class CheckOutcome:
    """One check applied to a measured value (``value`` None: metric missing)."""

    metric: str
    op: str
    limit: float
    value: float | None
    passed: bool

    @property
    def target(self) -> str:
        return f"{self.metric} {self.op} {self.limit:g}"


@dataclass
class ScenarioResult:
    """Outcome of one scenario (or one ceiling)."""

    name: str
    engine: str
    description: str = ""
    status: Status = "pending"
    reason: str = ""
    ceiling: str | None = None
    targets: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    checks: list[CheckOutcome] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScenarioResult:
        checks = [CheckOutcome(**c) for c in data.get("checks", [])]
        return cls(**{**data, "checks": checks})


def evaluate(
    metrics: dict[str, float], checks: tuple[Check, ...], *, valid: bool = True
) -> tuple[Status, list[CheckOutcome], str]:
    """Apply ``checks`` to ``metrics``: (status, outcomes, reason of the first failure)."""
    outcomes: list[CheckOutcome] = []
    failures: list[str] = []
    for check in checks:
        value = metrics.get(check.metric)
        passed = value is not None and check.passes(value)
        outcomes.append(CheckOutcome(check.metric, check.op, check.limit, value, passed))
        if not passed:
            shown = "missing" if value is None else f"{value:g}"
            failures.append(f"{check.metric} = {shown}, target {check.op} {check.limit:g}")
    if not valid:
        return "invalid", outcomes, "load generator was the bottleneck"
    if not checks:
        return "info", outcomes, ""
    if failures:
        return "fail", outcomes, "; ".join(failures)
    return "pass", outcomes, ""


@dataclass
class RunRecord:
    """Everything one harness run produced; serialised as results.json."""

    started_at: str
    profile: str
    environment: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    ceilings: dict[str, ScenarioResult] = field(default_factory=dict)
    scenarios: list[ScenarioResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hotspots: dict[str, Any] = field(default_factory=dict)
    finished_at: str | None = None
    duration_s: float = 0.0
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": round(self.duration_s, 1),
            "profile": self.profile,
            "interrupted": self.interrupted,
            "environment": self.environment,
            "settings": self.settings,
            "ceilings": {k: v.to_dict() for k, v in self.ceilings.items()},
            "scenarios": [s.to_dict() for s in self.scenarios],
            "notes": list(self.notes),
            "hotspots": self.hotspots,
            "summary": self.summary(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        return cls(
            started_at=data.get("started_at", ""),
            profile=data.get("profile", ""),
            environment=data.get("environment", {}),
            settings=data.get("settings", {}),
            ceilings={k: ScenarioResult.from_dict(v) for k, v in data.get("ceilings", {}).items()},
            scenarios=[ScenarioResult.from_dict(s) for s in data.get("scenarios", [])],
            notes=data.get("notes", []),
            finished_at=data.get("finished_at"),
            duration_s=data.get("duration_s", 0.0),
            interrupted=data.get("interrupted", False),
        )

    def summary(self) -> dict[str, int]:
        """Count of scenarios per status."""
        counts: dict[str, int] = {}
        for s in self.scenarios:
            counts[s.status] = counts.get(s.status, 0) + 1
        return counts
