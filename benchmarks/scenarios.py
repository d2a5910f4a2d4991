"""Scenario and ceiling definitions as data, and the quick/full profiles.

To add a scenario, append a ``Scenario`` to ``build_scenarios``: pick an engine (``wrk`` for
closed-loop maximum throughput, ``open-loop`` for held sessions), the request (or the ``mix``),
the ceiling it is a ratio of (a ceiling name, or ``scenario:<name>`` for another scenario's
req/s) and its ``checks``. Metrics available to checks are listed in ``engines.py``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from benchmarks.opensim.mix import MixEntry, refresh_entry

Engine = Literal["wrk", "open-loop", "export"]
Auth = Literal["none", "bearer", "login"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}

PREFERENCES_BODY: dict[str, object] = {
    "language": "en",
    "timezone": "UTC",
    "notifications": {"email": True, "push": False, "sms": False},
    "privacy": {"profileVisible": True, "showProgress": True, "allowMessages": False},
}


@dataclass(frozen=True)
class Check:
    """One target: ``metric op limit`` (e.g. ``ratio >= 0.6``)."""

    metric: str
    op: str
    limit: float

    def passes(self, value: float) -> bool:
        return _OPS[self.op](value, self.limit)

    def describe(self) -> str:
        return f"{self.metric} {self.op} {self.limit:g}"


@dataclass(frozen=True)
class Ceiling:
    """A ceiling: an ASGI app served by Granian and hammered by wrk, or the argon2 measurement."""

    name: str
    kind: Literal["asgi", "argon2"] = "asgi"
    app: str = ""
    method: str = "GET"
    path: str = "/"
    body: object | None = None
    needs_db: bool = False
    description: str = ""


CEILINGS: tuple[Ceiling, ...] = (
    Ceiling(
        "json",
        app="benchmarks.ceilings:json_app",
        path="/json",
        description="bare Litestar + msgspec JSON route",
    ),
    Ceiling(
        "select",
        app="benchmarks.ceilings:select_app",
        path="/select",
        needs_db=True,
        description="one psycopg primary-key SELECT from a pool",
    ),
    Ceiling(
        "update",
        app="benchmarks.ceilings:update_app",
        method="PUT",
        path="/update",
        body=PREFERENCES_BODY,
        needs_db=True,
        description="decode preferences body + one primary-key UPDATE",
    ),
    Ceiling(
        "row-update",
        app="benchmarks.ceilings:row_update_app",
        method="POST",
        path="/row-update",
        needs_db=True,
        description="bodiless POST + one primary-key UPDATE",
    ),
    Ceiling("argon2", kind="argon2", description="cores / one argon2id verify (m=19 MiB, t=2)"),
)


@dataclass(frozen=True)
class Scenario:
    """One measured figure: how to load the target, what it is compared with, what must hold."""

    name: str
    engine: Engine
    description: str = ""
    method: str = "GET"
    path: str = "/"
    body: object | None = None
    auth: Auth = "bearer"
    against: str = "server"  # "server" or a ceiling name (the load then targets that app)
    ceiling: str | None = None  # ceiling name, or "scenario:<name>"
    checks: tuple[Check, ...] = ()
    connections: int | None = None  # wrk; default from the profile
    mix: tuple[MixEntry, ...] = ()  # open-loop
    sessions: int | None = None  # open-loop; default from the profile
    steady_s: float | None = None  # open-loop; default from the profile
    search: bool = False  # open-loop: also search the largest passing session count
    fresh_server: bool = False  # restart the server first (memory is measured from its idle)
    server_env: tuple[tuple[str, str], ...] = ()  # a second server, with these settings changed
    round_scale: int = 1  # wrk against a ceiling: this many times the profile's rounds and time
    requests: str | None = None  # wrk: a list of requests the harness builds (REQUEST_LISTS)
    profiles: frozenset[str] = frozenset({"quick", "full"})

    @property
    def needs_courses(self) -> bool:
        """Needs the seeded catalogue (its requests, or placeholders only a student fills)."""
        return self.requests is not None or any(e.placeholders - {"user_id"} for e in self.mix)

    @property
    def needs_tokens(self) -> bool:
        if self.engine == "open-loop":
            return any(e.auth or e.kind == "refresh" for e in self.mix)
        return self.auth != "none"

    @property
    def needs_server(self) -> bool:
        return self.against == "server"


@dataclass(frozen=True)
class Profile:
    """Durations and sizes of one harness run."""

    name: str
    wrk_duration_s: float
    wrk_warmup_s: float
    connections: int
    argon2_samples: int
    open_loop_sessions: int
    open_loop_ramp_s: float
    open_loop_steady_s: float
    tokens: int
    rounds: int = 4  # alternations of ceiling and scenario per wrk scenario (1 s minimum each)
    search_counts: tuple[int, ...] = ()
    search_steady_s: float = 30.0
    search_floor: int = 1_250  # when the first count fails, halve down to this
    recheck_ceilings: bool = False
    soak_s: float = 600.0
    export_rows: int = 1_000_000  # enrollments the export scenario reads (its own database)
    export_rounds: int = 3  # exports, each beside a COPY of the same query


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        wrk_duration_s=4,
        wrk_warmup_s=1,
        connections=100,
        argon2_samples=10,
        open_loop_sessions=2_000,
        open_loop_ramp_s=4,
        open_loop_steady_s=20,
        tokens=2_000,
        rounds=4,
        export_rows=200_000,
        export_rounds=2,
    ),
    "full": Profile(
        name="full",
        wrk_duration_s=15,
        wrk_warmup_s=8,
        connections=100,
        argon2_samples=30,
        open_loop_sessions=10_000,
        open_loop_ramp_s=15,
        open_loop_steady_s=60,
        tokens=10_000,
        rounds=10,
        search_counts=(12_500, 15_000, 17_500),
        search_steady_s=30,
        recheck_ceilings=True,
    ),
}


@dataclass(frozen=True)
class RouteConfig:
    """Paths that differ between deployments of the server under test."""

    limited_path: str = "/api/auth/me"  # measured on a server with the limiter and one without
    refresh_path: str = "/api/auth/refresh"
    interval_s: float = 2.0
    extra: dict[str, str] = field(default_factory=dict)


NO_ERRORS = Check("errors", "==", 0)
OPEN_LOOP_TARGETS = (Check("p99_ms", "<", 250), NO_ERRORS)
# Latency alone would pass a run in which no request was answered at all.
ANSWERED = Check("requests", ">", 0)
SEARCH_TARGETS = (Check("p50_ms", "<", 20), Check("p99_ms", "<", 100), NO_ERRORS, ANSWERED)

CATALOGUE_COURSES = 10_000  # seeded with seed_demo before the learning-domain scenarios
COURSES_PER_STUDENT = 3  # enrollments of every seeded session, so completions have lessons
SEARCH_TERMS = 400
SEARCH_CLIENTS = 20
GRADEBOOK_CLIENTS = 4

REQUEST_LISTS: dict[str, str] = {
    "course-read": "one published course, each row with the next student token",
    "search-student": "catalogue search terms with student tokens (the cached path)",
    "search-admin": "the same terms with an admin token (searches that skip the cache)",
    "enroll": "student-course pairs, none enrolled before, none repeated",
    "complete": "each lesson of each seeded enrollment of the token students, once",
    "submit": "the quiz's submission path with each token student in turn (unlimited attempts)",
    "gradebook": "the seeded gradebook course's page of 100 students, with an admin token",
}
"""Request lists the harness writes once the catalogue is seeded (``Scenario.requests``)."""


def student_day_mix(routes: RouteConfig) -> tuple[MixEntry, ...]:
    """A student's day, the mix of an authenticated session: about half identity calls (who am
    I, profile, preferences, sessions, token refresh), half courses (browse and search the
    catalogue, read a course and its lessons, complete lessons, enroll now and then).
    Placeholders are filled per session (``course_requests.session_values``)."""
    return (
        MixEntry(30, "GET", "/api/auth/me"),
        MixEntry(7, "GET", "/api/users/profile"),
        MixEntry(4, "GET", "/api/users/preferences"),
        MixEntry(2, "PUT", "/api/users/preferences", body=PREFERENCES_BODY),
        MixEntry(5, "GET", "/api/auth/sessions"),
        refresh_entry(1, routes.refresh_path),
        MixEntry(8, "GET", "/api/courses?{browse}", name="browse courses"),
        MixEntry(10, "GET", "/api/courses?q={term}", name="search courses"),
        MixEntry(14, "GET", "/api/courses/{course}", name="read a course"),
        MixEntry(8, "GET", "/api/courses/{enrolled}/lessons", name="read lessons"),
        MixEntry(3, "GET", "/api/users/progress", name="own progress"),
        MixEntry(6, "POST", "/api/courses/{todo}/complete", name="complete a lesson"),
        MixEntry(2, "POST", "/api/courses/{enroll}/enroll", name="enroll"),
    )


def learning_scenarios() -> list[Scenario]:
    """Issue 17's figures: cached course reads, catalogue search, enroll, lesson completion."""
    return [
        Scenario(
            "course-read-cached",
            "wrk",
            "a published course, warmed, read with student tokens (cache hit, ETag)",
            path="/api/courses/{id}",
            requests="course-read",
            ceiling="json",
            checks=(Check("ratio", ">=", 0.5), NO_ERRORS),
        ),
        Scenario(
            "course-search-cached",
            "wrk",
            f"q= over {CATALOGUE_COURSES:,} courses, {SEARCH_TERMS} title-word terms (typos, "
            f"prefixes), student tokens: repeats served by the cache; {SEARCH_CLIENTS} clients",
            path="/api/courses?q={term}",
            requests="search-student",
            connections=SEARCH_CLIENTS,
            checks=SEARCH_TARGETS,
        ),
        Scenario(
            "course-search-uncached",
            "wrk",
            f"the same terms with an admin token, whose searches skip the cache; "
            f"{SEARCH_CLIENTS} clients",
            path="/api/courses?q={term}",
            requests="search-admin",
            connections=SEARCH_CLIENTS,
            checks=SEARCH_TARGETS,
        ),
        Scenario(
            "course-enroll",
            "wrk",
            "enroll: every request a new student-course pair",
            method="POST",
            path="/api/courses/{id}/enroll",
            requests="enroll",
            ceiling="row-update",
            checks=(Check("ratio", ">=", 0.5), NO_ERRORS),
        ),
        Scenario(
            "lesson-complete",
            "wrk",
            "lesson completion: every request a new lesson of an enrolled student",
            method="POST",
            path="/api/courses/{id}/lessons/{lessonId}/complete",
            requests="complete",
            ceiling="row-update",
            checks=(Check("ratio", ">=", 0.5), NO_ERRORS),
        ),
    ]


def assessment_scenarios() -> list[Scenario]:
    """Issue 18's figures: a submission of 20 objective questions, a gradebook page of 100
    students x 20 assessments, the enrollments export against COPY of its query."""
    return [
        Scenario(
            "assessment-submit",
            "wrk",
            "a student's submission of 20 objective questions (single choice, true/false, "
            "numeric), auto-graded; unlimited attempts, students in turn",
            method="POST",
            path="/api/assessments/{id}/submissions",
            requests="submit",
            ceiling="row-update",
            checks=(Check("ratio", ">=", 0.3), NO_ERRORS),
        ),
        Scenario(
            "gradebook-page",
            "wrk",
            f"one gradebook page of 100 students x 20 assessments (1-2 graded submissions "
            f"each), admin token; {GRADEBOOK_CLIENTS} clients",
            path="/api/courses/{id}/gradebook?limit=100",
            requests="gradebook",
            connections=GRADEBOOK_CLIENTS,
            checks=(Check("p50_ms", "<", 50), NO_ERRORS, ANSWERED),
        ),
        Scenario(
            "export-enrollments",
            "export",
            "GET /api/analytics/export as an admin over the profile's enrollment rows (a "
            "database of their own), in rounds with COPY (same query) TO STDOUT; rows/s",
            path="/api/analytics/export",
            auth="none",  # its own database, with an admin of its own
            ceiling="copy",
            checks=(
                Check("ttfb_ms", "<", 500),
                Check("rss_growth_mib", "<", 50),
                NO_ERRORS,
                ANSWERED,
            ),
        ),
    ]


def build_scenarios(
    profile: Profile, routes: RouteConfig | None = None, *, soak: bool = False
) -> list[Scenario]:
    """Every scenario of ``profile``, in run order (referenced scenarios come first)."""
    routes = routes or RouteConfig()
    scenarios = [
        Scenario(
            "health-live",
            "wrk",
            "liveness through the whole middleware stack",
            path="/health/live",
            auth="none",
            ceiling="json",
            checks=(Check("ratio", ">=", 0.7), NO_ERRORS),
        ),
        Scenario(
            "auth-me",
            "wrk",
            "identity from actor state, no I/O",
            path="/api/auth/me",
            ceiling="json",
            checks=(Check("ratio", ">=", 0.6), NO_ERRORS),
        ),
        Scenario(
            "users-profile",
            "wrk",
            "one profile read",
            path="/api/users/profile",
            ceiling="select",
            checks=(Check("ratio", ">=", 0.8), NO_ERRORS),
        ),
        Scenario(
            "users-preferences",
            "wrk",
            "one preferences write",
            method="PUT",
            path="/api/users/preferences",
            body=PREFERENCES_BODY,
            ceiling="update",
            checks=(Check("ratio", ">=", 0.5), NO_ERRORS),
        ),
        Scenario(
            "auth-login",
            "wrk",
            "password login (argon2id bound)",
            method="POST",
            path="/api/auth/login",
            auth="login",
            ceiling="argon2",
            connections=16,
            checks=(Check("ratio", ">=", 0.8), NO_ERRORS),
        ),
        Scenario(
            "not-limited",
            "wrk",
            "the route on a server with the rate limiter switched off",
            path=routes.limited_path,
            ceiling="json",
            checks=(NO_ERRORS,),
            server_env=(("RATE_LIMIT_ENABLED", "false"),),
        ),
        Scenario(
            "rate-limited",
            "wrk",
            "the same route behind the rate limiter",
            path=routes.limited_path,
            ceiling="scenario:not-limited",
            checks=(Check("ratio", ">=", 0.9), NO_ERRORS),
            # Its own server too, started like the other one: the server under test, up since
            # before seeding, ran 3-4 % slower than a server started for the pair with the very
            # same settings (0.96-0.97 in three A/A runs), which this pair must not count.
            server_env=(("RATE_LIMIT_ENABLED", "true"),),
            # A tight target between two servers of this run: three times the rounds, so that
            # the median round is not moved by the noise of a few (±0.1 per round here).
            round_scale=3,
        ),
        *learning_scenarios(),
        *assessment_scenarios(),
        Scenario(
            "telemetry-off",
            "wrk",
            "/api/auth/me on a server with OpenTelemetry and the access log off",
            path="/api/auth/me",
            ceiling="json",
            checks=(NO_ERRORS,),
            server_env=(("OTEL_SDK_DISABLED", "true"), ("ACCESS_LOG", "false")),
        ),
        Scenario(
            "telemetry-on",
            "wrk",
            "the same route with metrics, default trace sampling and JSON access lines at INFO",
            path="/api/auth/me",
            ceiling="scenario:telemetry-off",
            checks=(Check("ratio", ">=", 0.85), NO_ERRORS),
            server_env=(
                ("OTEL_SDK_DISABLED", "false"),
                ("LOG_FORMAT", "json"),
                ("LOG_LEVEL", "INFO"),
                ("ACCESS_LOG", "true"),
            ),
            round_scale=3,
        ),
        Scenario(
            "open-loop-json-ceiling",
            "open-loop",
            "generator check: held sessions on the JSON ceiling",
            against="json",
            mix=(MixEntry(1, "GET", "/json", auth=False),),
            checks=OPEN_LOOP_TARGETS,
            profiles=frozenset({"full"}),
        ),
        Scenario(
            "open-loop-health",
            "open-loop",
            "held connections on the server, liveness only",
            mix=(MixEntry(1, "GET", "/health/live", auth=False),),
            fresh_server=True,
            checks=(*OPEN_LOOP_TARGETS, Check("rss_per_session_kb", "<=", 40)),
        ),
        Scenario(
            "open-loop-sessions",
            "open-loop",
            "authenticated sessions living a student's day (identity calls and courses)",
            mix=student_day_mix(routes),
            search=bool(profile.search_counts),
            fresh_server=True,
            checks=(*OPEN_LOOP_TARGETS, Check("rss_per_session_kb", "<=", 40)),
        ),
    ]
    if soak:
        scenarios.append(
            Scenario(
                "soak",
                "open-loop",
                "long run of students' days: latency and memory drift",
                mix=student_day_mix(routes),
                steady_s=profile.soak_s,
                checks=(*OPEN_LOOP_TARGETS, Check("rss_growth_pct", "<=", 10)),
            )
        )
    return [s for s in scenarios if profile.name in s.profiles]
