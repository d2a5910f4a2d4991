"""`sevenp serve` as the README gives it: embedded PostgreSQL, readiness, graceful SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import psutil
import pytest

from tests.support.serve import start_serve
from tests.support.waiting import eventually


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """`sevenp serve` in an empty directory with nothing configured."""
    with tempfile.TemporaryDirectory(prefix="sevenp-serve-") as tmp:
        proc, base = start_serve(Path(tmp))
        try:
            yield proc, base, Path(tmp)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def _postgres_processes(data: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "postgres" and str(data) in cmdline:
            found.append(process)
    return found


async def test_serve_with_embedded_defaults_then_stop_gracefully(
    served: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    proc, base, workdir = served
    assert (workdir / ".data" / "jwt-secret").exists()
    assert _postgres_processes(workdir / ".data" / "postgres")
    results: list[int | str] = []
    sent = 0

    async def note_sent(event: str, info: object) -> None:
        nonlocal sent
        sent += event == "http11.send_request_body.complete"

    # Five: the sixth failed login from one address would meet the default auth limit.
    clients = [httpx.AsyncClient(base_url=base, timeout=20) for _ in range(5)]
    for client in clients:  # connections open before the stop: these requests are in flight
        assert (await client.get("/health/live")).status_code == 200

    async def login(http: httpx.AsyncClient) -> None:
        try:
            response = await http.post(
                "/api/auth/login",
                json={"email": "nobody@example.test", "password": "x" * 12},
                extensions={"trace": note_sent},
            )
            results.append(response.status_code)
        except httpx.HTTPError as exc:
            results.append(type(exc).__name__)

    async with anyio.create_task_group() as tg:
        for client in clients:
            tg.start_soon(login, client)
        await eventually(lambda: sent == len(clients), within=10)
        proc.send_signal(signal.SIGTERM)
    for client in clients:
        await client.aclose()
    assert results == [401] * 5
    assert await anyio.to_thread.run_sync(proc.wait, 30) == 0
    async with httpx.AsyncClient(base_url=base, timeout=2) as late:
        with pytest.raises(httpx.ConnectError):
            await late.get("/health/live")
    await eventually(
        lambda: _postgres_processes(workdir / ".data" / "postgres") == [], within=10, poll=0.1
    )
