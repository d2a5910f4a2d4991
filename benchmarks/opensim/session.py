"""One virtual session: a held keep-alive connection sending its mix on an open-loop schedule.

Intended send times follow the session's own clock (start + exponential think times), never the
previous response, so a slow response makes the next requests late and that lateness is counted
in their latency (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass

from benchmarks.opensim.http1 import Http1Connection, HttpProtocolError, format_request
from benchmarks.opensim.mix import (
    MixPicker,
    SessionCredentials,
    fill_path,
    parse_rotated_tokens,
)
from benchmarks.opensim.stats import RunStats

RECONNECT_DELAY_S = 0.5

# uvloop's loop.time() has millisecond resolution and is cached per loop iteration, so all
# schedule times and measurements use this clock instead.
clock = time.monotonic


@dataclass(frozen=True)
class Schedule:
    """``clock()`` times shared by the sessions of one process."""

    steady_start: float
    steady_end: float
    hard_stop: float
    interval_s: float
    timeout_s: float


@dataclass(frozen=True)
class Target:
    """Where to send and what to send."""

    host: str
    port: int
    picker: MixPicker
    bodies: tuple[bytes | None, ...]

    @property
    def host_header(self) -> str:
        return f"{self.host}:{self.port}"


def _build(target: Target, index: int, creds: SessionCredentials, rng: random.Random) -> bytes:
    entry = target.picker.entries[index]
    if entry.kind == "refresh":
        body = b'{"refreshToken":"' + (creds.refresh_token or "").encode() + b'"}'
        return format_request(entry.method, entry.path, target.host_header, body=body)
    path = fill_path(entry.path, creds, rng)
    token = creds.access_token if entry.auth else None
    return format_request(
        entry.method, path, target.host_header, token=token, body=target.bodies[index]
    )


async def _connect(target: Target, stats: RunStats) -> Http1Connection | None:
    try:
        conn = await Http1Connection.open(target.host, target.port)
    except OSError as exc:
        stats.error("connect", detail=repr(exc))
        return None
    stats.connects += 1
    return conn


async def run_session(
    target: Target,
    schedule: Schedule,
    creds: SessionCredentials,
    start_at: float,
    stats: RunStats,
    rng: random.Random,
) -> None:
    """Connect at ``start_at``, then send until the steady window ends (or the hard stop)."""
    delay = start_at - clock()
    if delay > 0:
        await asyncio.sleep(delay)
    conn = await _connect(target, stats)
    rate = 1.0 / schedule.interval_s
    next_t = start_at + rng.expovariate(rate)
    prev_done = clock()
    try:
        while next_t < schedule.steady_end:
            now = clock()
            if now >= schedule.hard_stop:
                break
            if next_t > now:
                await asyncio.sleep(next_t - now)
            in_window = next_t >= schedule.steady_start
            if conn is None:
                conn = await _connect(target, stats)
                if conn is None:
                    await asyncio.sleep(RECONNECT_DELAY_S)
                    prev_done = clock()
                    if in_window:
                        stats.intended += 1
                        stats.unsent += 1
                    next_t += rng.expovariate(rate)
                    continue
                prev_done = clock()  # time spent reconnecting is the server's, not the generator's
            index = target.picker.pick(rng.random())
            entry = target.picker.entries[index]
            label = entry.label
            raw = _build(target, index, creds, rng)
            send_t = clock()
            try:
                async with asyncio.timeout(schedule.timeout_s):
                    resp = await conn.request(raw)
            except TimeoutError:
                stats.error("timeout", label, f"{label} after {schedule.timeout_s}s")
                conn.close()
                conn = None
                resp = None
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                HttpProtocolError,
                ValueError,
            ) as exc:
                stats.error("read", label, f"{label}: {exc!r}")
                conn.close()
                conn = None
                resp = None
            done_t = clock()
            stats.requests_total += 1
            if in_window:
                stats.intended += 1
                stats.lag.record((send_t - max(next_t, prev_done)) * 1e6)
                stats.lateness.record((send_t - next_t) * 1e6)
                if schedule.steady_start <= send_t < schedule.steady_end:
                    stats.sent_in_window += 1
            if resp is not None:
                status = resp.status
                stats.statuses[str(status)] += 1
                stats.per_entry.setdefault(label, Counter())["requests"] += 1
                if status >= 500:
                    stats.error("status_5xx", label, f"{label} -> {status}")
                elif status >= 400:
                    stats.error("status_4xx", label, f"{label} -> {status}")
                elif entry.kind == "refresh":
                    rotated = parse_rotated_tokens(resp.body)
                    if rotated is not None:
                        creds.access_token, creds.refresh_token = rotated
                if in_window:
                    stats.completed += 1
                    stats.latency.record((done_t - next_t) * 1e6)
                    stats.service.record((done_t - send_t) * 1e6)
                if resp.close and conn is not None:
                    conn.close()
                    conn = None
            prev_done = done_t
            next_t += rng.expovariate(rate)
        # Requests the session never got to send before the hard stop still count as offered.
        while next_t < schedule.steady_end:
            if next_t >= schedule.steady_start:
                stats.intended += 1
                stats.unsent += 1
            next_t += rng.expovariate(rate)
    finally:
        if conn is not None:
            conn.close()
