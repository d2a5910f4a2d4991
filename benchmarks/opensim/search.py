"""Search for the largest number of held sessions the server serves within its targets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from benchmarks.opensim.simulate import OpenLoopResult


@dataclass(frozen=True)
class SessionTarget:
    """What a passing open-loop run must meet."""

    max_p99_ms: float = 250.0
    max_errors: int = 0


def judge_run(result: OpenLoopResult, target: SessionTarget) -> tuple[bool, str]:
    """(passed, reason) of one run against ``target``; an invalid run never passes."""
    if not result.valid:
        return False, "invalid: " + "; ".join(result.invalid_reasons)
    errors = result.stats.error_total
    if errors > target.max_errors:
        return False, f"{errors} errors (max {target.max_errors})"
    p99 = result.stats.latency.percentile_us(99) / 1000
    if p99 >= target.max_p99_ms:
        return False, f"p99 {p99:.1f} ms >= {target.max_p99_ms:.0f} ms"
    return True, f"p99 {p99:.1f} ms, 0 errors"


@dataclass
class SearchOutcome:
    """Every tried session count and the largest that passed."""

    steps: list[dict[str, object]] = field(default_factory=list)
    best: int | None = None
    stopped: str = ""
    results: list[OpenLoopResult] = field(default_factory=list)


def find_max_sessions(
    run: Callable[[int], OpenLoopResult],
    counts: Sequence[int],
    target: SessionTarget | None = None,
) -> SearchOutcome:
    """Try ``counts`` in increasing order; stop at the first failing (or invalid) run."""
    target = target or SessionTarget()
    outcome = SearchOutcome()
    for count in sorted(counts):
        result = run(count)
        outcome.results.append(result)
        passed, reason = judge_run(result, target)
        outcome.steps.append(
            {"sessions": count, "passed": passed, "valid": result.valid, "reason": reason}
        )
        if not passed:
            outcome.stopped = f"{count} sessions: {reason}"
            break
        outcome.best = count
    else:
        outcome.stopped = "every count passed; the maximum may be higher"
    return outcome
