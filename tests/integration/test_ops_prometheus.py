"""ops/ against a real Prometheus: the rules pass promtool, and every dashboard query and alert
expression returns data once Prometheus has scraped a live two-worker server under traffic, so
the metric names in ops/ cannot drift from the code.

Debian's `prometheus` package gives both binaries; without them the tests that need them are
skipped (the runbook and collector checks still run).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from tests.support.accounts import GOOD_PASSWORD
from tests.support.live_server import ROOT, LiveServer
from tests.support.services import free_port
from tests.support.waiting import eventually_sync

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="prometheus and promtool are not installed (Debian: apt-get install prometheus)",
)

OPS = ROOT / "ops"
RULES = OPS / "prometheus" / "alerts.yml"
DASHBOARD = OPS / "grafana" / "sevenp.json"
RUNBOOK = OPS / "runbook.md"
COLLECTOR = OPS / "otel-collector.yaml"
JOB = "sevenp"
# Grafana's own variables, as a short dashboard range would set them; the dashboard's
# variables all stand for every value.
BUILTIN = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
# Every alert's expression ends with a line `<comparison> <threshold>` (see alerts.yml).
THRESHOLD = re.compile(r"\n\s*(?:==|!=|>=|<=|>|<)\s*[0-9.eE+* ]+$")
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")
ROUNDS = 2


class Rule(msgspec.Struct):
    expr: str
    alert: str | None = None
    record: str | None = None


class Group(msgspec.Struct):
    name: str
    rules: list[Rule]


class RuleFile(msgspec.Struct):
    groups: list[Group]


def _alerts() -> list[Rule]:
    rules = msgspec.yaml.decode(RULES.read_bytes(), type=RuleFile)
    return [rule for group in rules.groups for rule in group.rules if rule.alert]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def _dashboard_queries() -> list[tuple[str, str]]:
    """(panel title and refId, expression) of every target of every panel."""
    return [
        (f"{panel['title']} [{target['refId']}]", target["expr"])
        for panel in _panels(_dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


def _substitute(expr: str, variables: set[str]) -> str:
    def value(found: re.Match[str]) -> str:
        name = found[1] or found[2]
        if name in BUILTIN:
            return BUILTIN[name]
        assert name in variables, f"undefined dashboard variable ${name} in {expr}"
        return ".*"

    return VARIABLE.sub(value, expr)


class Prometheus:
    """A Prometheus process on a free port with its own configuration and data directory."""

    def __init__(self, directory: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "prometheus.log"
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
        }
        self.config_path = directory / "prometheus.yml"
        self.config_path.write_text(json.dumps(config))  # JSON is YAML
        self.data = directory / "data"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Prometheus:
        assert PROMETHEUS is not None
        command = [
            PROMETHEUS,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with self.log_path.open("wb") as log:
            proc = self._proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {proc.returncode}:\n{self.log()}")
            try:
                return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            eventually_sync(ready, within=20, poll=0.1)
        except TimeoutError:
            self.stop()
            raise
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def api(self, path: str, params: dict[str, str]) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        if body["status"] != "success":
            raise AssertionError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", {"query": expr})
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture(scope="module")
def server(
    database_url: str, redis_url: str, mail_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = LiveServer(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MAIL_URL": f"file://{mail_dir}",
            "WORKERS": "2",
            "METRICS_SHARE_SECONDS": "0.5",
            "METRICS_DIR": str(tmp_path_factory.mktemp("ops-metrics")),
            "DB_POOL_MIN": "1",
            "DB_POOL_MAX": "4",
            # Revocation catch-up reads every second rather than 5 s, so they have a rate.
            "SESSION_RESYNC_SECONDS": "1",
        },
        workers=2,
    ).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def prometheus(
    server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    started = Prometheus(tmp_path_factory.mktemp("prometheus"), f"127.0.0.1:{server.port}").start()
    try:
        eventually_sync(lambda: started.value(f'up{{job="{JOB}"}}') == 1, within=20, poll=0.2)
        yield started
    finally:
        started.stop()


def _round(base_url: str) -> None:
    """Requests to several routes, a few 4xx among them, and a session revoked at logout."""
    # A connection per request, so both workers take some.
    with httpx.Client(base_url=base_url, timeout=15, headers={"Connection": "close"}) as client:
        email = f"ops-{uuid.uuid4().hex[:12]}@example.test"
        registered = client.post(
            "/api/auth/register",
            json={
                "email": email,
                "password": GOOD_PASSWORD,
                "firstName": "Ada",
                "lastName": "Lovelace",
            },
        )
        assert registered.status_code == 201, registered.text
        auth = {"Authorization": f"Bearer {registered.json()['token']}"}
        for path in ("/health/live", "/health/ready", "/api/health"):
            assert client.get(path).status_code == 200
        assert client.get("/api/auth/me", headers=auth).status_code == 200
        assert client.get("/api/courses", headers=auth).status_code == 200
        assert client.get(f"/api/courses/{uuid.uuid4()}", headers=auth).status_code == 404
        assert client.get("/api/courses/not-an-id", headers=auth).status_code == 400
        assert client.get("/api/auth/me").status_code == 401
        wrong = {"email": email, "password": "not the password at all"}
        assert client.post("/api/auth/login", json=wrong).status_code == 401
        assert client.post("/api/auth/logout", headers=auth).status_code == 204
        # The other worker learns of it over the bus (README, "Revocation").
        eventually_sync(
            lambda: client.get("/api/auth/me", headers=auth).status_code == 401, within=10, poll=0.1
        )


@pytest.fixture(scope="module")
def scraped(server: LiveServer, prometheus: Prometheus) -> Prometheus:
    """Prometheus once it has scraped every round of traffic, so rates have two points."""
    logouts = (
        f'sum(http_server_request_duration_seconds_count{{job="{JOB}", '
        'http_route="/api/auth/logout"})'
    )
    catching_up = (
        "count(sum by (worker) (rate(db_client_operation_duration_seconds_count"
        f'{{job="{JOB}", db_query_summary="sessions.revoked_since"}}[1m])) > 0)'
    )
    for done in range(1, ROUNDS + 1):
        _round(server.base_url)
        eventually_sync(lambda done=done: prometheus.value(logouts) >= done, within=20, poll=0.2)
    eventually_sync(lambda: prometheus.value(catching_up) == 2, within=20, poll=0.2)
    # A revocation's arrival is measured by the worker that did not announce it: more rounds
    # until one worker has seen two, between scrapes, so its rate has two points.
    arriving = f'sum(rate(sevenp_sessions_revocation_propagation_seconds_count{{job="{JOB}"}}[1m]))'
    done = ROUNDS
    while not prometheus.value(arriving) and done < ROUNDS + 8:
        done += 1
        _round(server.base_url)
        eventually_sync(lambda done=done: prometheus.value(logouts) >= done, within=20, poll=0.2)
    return prometheus


def _has_data(result: list[dict[str, Any]]) -> bool:
    """Some series, and a number in at least one (a quantile of no requests is NaN)."""
    return any(not math.isnan(float(series["value"][1])) for series in result)


@needs_prometheus
def test_promtool_accepts_the_rules_and_the_example_configuration() -> None:
    assert PROMTOOL is not None
    rules = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = subprocess.run(
        [PROMTOOL, "check", "config", "prometheus.yml"],
        cwd=OPS / "prometheus",
        capture_output=True,
        text=True,
        check=False,
    )
    assert config.returncode == 0, config.stdout + config.stderr


def test_the_collector_configuration_wires_otlp_to_prometheus_and_traces() -> None:
    config = msgspec.yaml.decode(COLLECTOR.read_bytes(), type=dict[str, Any])
    assert "http" in config["receivers"]["otlp"]["protocols"]
    pipelines = config["service"]["pipelines"]
    assert pipelines["metrics"]["receivers"] == ["otlp"]
    assert pipelines["traces"]["receivers"] == ["otlp"]
    for pipeline in pipelines.values():
        for kind in ("receivers", "processors", "exporters"):
            for name in pipeline[kind]:
                assert name in config[kind], f"{name} used but not configured"


def test_every_alert_has_a_runbook_section() -> None:
    headings = {
        line.lstrip("#").strip()
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("#")
    }
    missing = [rule.alert for rule in _alerts() if rule.alert not in headings]
    assert not missing, f"alerts without a runbook section: {missing}"


@needs_prometheus
def test_every_dashboard_query_returns_data(scraped: Prometheus) -> None:
    variables = {variable["name"] for variable in _dashboard()["templating"]["list"]}
    queries = _dashboard_queries()
    assert len(queries) >= 40
    failures: list[str] = []
    for title, expr in queries:
        try:
            if not _has_data(scraped.query(_substitute(expr, variables))):
                failures.append(f"{title}: no data for {expr}")
        except AssertionError as exc:
            failures.append(f"{title}: {exc} in {expr}")
    assert not failures, "\n".join(failures)


@needs_prometheus
def test_every_dashboard_variable_has_values(scraped: Prometheus) -> None:
    templating = _dashboard()["templating"]["list"]
    names = {variable["name"] for variable in templating}
    queried = [variable for variable in templating if variable["type"] == "query"]
    assert {variable["name"] for variable in queried} == {"job", "instance", "route"}
    for variable in queried:
        found = LABEL_VALUES.match(variable["definition"])
        assert found, variable["definition"]
        selector = _substitute(found["selector"], names)
        values = scraped.api(f"label/{found['label']}/values", {"match[]": selector})
        assert values, f"${variable['name']}: no values for {variable['definition']}"


@needs_prometheus
def test_every_alert_expression_parses_and_its_signal_has_data(scraped: Prometheus) -> None:
    alerts = _alerts()
    assert len(alerts) >= 10
    failures: list[str] = []
    for rule in alerts:
        expr = rule.expr.rstrip()
        threshold = THRESHOLD.search(expr)
        if threshold is None:
            failures.append(f"{rule.alert}: does not end with a threshold line")
            continue
        signal = expr[: threshold.start()]
        try:
            scraped.query(expr)
            if not _has_data(scraped.query(signal)):
                failures.append(f"{rule.alert}: no data for {signal}")
        except AssertionError as exc:
            failures.append(f"{rule.alert}: {exc}")
    assert not failures, "\n".join(failures)


@needs_prometheus
def test_prometheus_evaluates_every_rule_without_error(scraped: Prometheus) -> None:
    def evaluated() -> list[dict[str, Any]]:
        groups = scraped.api("rules", {})["groups"]
        return [rule for group in groups for rule in group["rules"]]

    eventually_sync(
        lambda: all(rule["health"] != "unknown" for rule in evaluated()), within=10, poll=0.2
    )
    rules = evaluated()
    assert {rule["name"] for rule in rules} == {rule.alert for rule in _alerts()}
    unhealthy = [f"{r['name']}: {r['health']} {r.get('lastError')}" for r in rules]
    assert all(rule["health"] == "ok" for rule in rules), "\n".join(unhealthy)
    firing = [rule["name"] for rule in rules if rule["state"] == "firing"]
    assert not firing, f"alerts firing on a healthy server: {firing}"
