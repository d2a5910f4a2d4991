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
    *,
    descend_to: int | None = None,
) -> SearchOutcome:
    """Try ``counts`` in increasing order; stop at the first failing (or invalid) run.

    When even the smallest count fails and ``descend_to`` is set, halve it until a count passes
    or the next half would be below ``descend_to``, so an overloaded server still gets a figure.
    """
    target = target or SessionTarget()
    outcome = SearchOutcome()

    def attempt(count: int) -> tuple[bool, str]:
        result = run(count)
        outcome.results.append(result)
        passed, reason = judge_run(result, target)
        outcome.steps.append(
            {"sessions": count, "passed": passed, "valid": result.valid, "reason": reason}
        )
        return passed, reason

    ordered = sorted(counts)
    for count in ordered:
        passed, reason = attempt(count)
        if not passed:
            outcome.stopped = f"{count} sessions: {reason}"
            break
        outcome.best = count
    else:
        outcome.stopped = "every count passed; the maximum may be higher"
    if outcome.best is None and descend_to and ordered:
        count = ordered[0] // 2
        while count >= descend_to:
            passed, _ = attempt(count)
            if passed:
                outcome.best = count
                break
            count //= 2
    return outcome
