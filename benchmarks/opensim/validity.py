"""The invalid-run rule: was the load generator, not the server, the bottleneck of a run?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ValidityRule:
    """Thresholds beyond which an open-loop run measures the generator instead of the server."""

    min_delivery: float = 0.95  # achieved / offered send rate
    max_lag_p99_ms: float = 50.0  # generator-caused send delay
    max_worker_cpu: float = 0.90  # fraction of one core per generator process
    fast_service_p99_ms: float = 250.0  # below this the server is keeping up
    max_late_start_s: float = 0.5


def judge_validity(
    *,
    offered_rps: float,
    achieved_rps: float,
    lag_p99_ms: float,
    service_p99_ms: float,
    worker_cpu: Sequence[float],
    late_start_s: Sequence[float] = (),
    rule: ValidityRule | None = None,
) -> list[str]:
    """Reasons the run is invalid; empty when it is valid.

    * a generator process used >= ``max_worker_cpu`` of its core: it could not go faster;
    * while the server answered fast (service p99 below ``fast_service_p99_ms``):
      - the generator's own lag (send time minus the later of intended time and previous
        response) has p99 above ``max_lag_p99_ms``: its event loop fell behind;
      - fewer than ``min_delivery`` of the intended sends happened in the window.
    When the server is slow, a lagging generator is most likely starved of CPU by the server it
    shares the machine with, and a delivery shortfall is the server's backpressure: the run stays
    valid and fails its latency target instead.
    """
    rule = rule or ValidityRule()
    reasons: list[str] = []
    for i, frac in enumerate(worker_cpu):
        if frac >= rule.max_worker_cpu:
            reasons.append(
                f"generator process {i} used {frac:.0%} of a core (limit {rule.max_worker_cpu:.0%})"
            )
    server_fast = service_p99_ms < rule.fast_service_p99_ms
    if server_fast and lag_p99_ms > rule.max_lag_p99_ms:
        reasons.append(
            f"generator lag p99 {lag_p99_ms:.1f} ms > {rule.max_lag_p99_ms:.0f} ms "
            f"while the server answered fast (service p99 {service_p99_ms:.1f} ms)"
        )
    if offered_rps > 0:
        delivery = achieved_rps / offered_rps
        if delivery < rule.min_delivery and server_fast:
            reasons.append(
                f"achieved {achieved_rps:.0f}/s of {offered_rps:.0f}/s offered ({delivery:.0%}) "
                f"while the server answered fast (service p99 {service_p99_ms:.1f} ms)"
            )
    for i, late in enumerate(late_start_s):
        if late > rule.max_late_start_s:
            reasons.append(f"generator process {i} started {late:.2f} s late")
    return reasons
