"""Past the restart intensity the root supervisor gives up: readiness turns 503, the server stops."""

from __future__ import annotations

import signal

import anyio
import pytest
from anyio.abc import TaskStatus

from actors.base import Actor
from actors.supervisor import SupervisorEscalated
from server.runtime import Runtime, build_runtime
from server.settings import load_settings
from tests.support.waiting import eventually


class AlwaysCrashing(Actor):
    name = "always-crashing"

    def __init__(self) -> None:
        self.starts = 0

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self.starts += 1
        task_status.started()
        await anyio.sleep(0.01)
        raise RuntimeError("injected fault")


async def _run_until_escalated(runtime: Runtime) -> None:
    with anyio.fail_after(30):
        async with runtime.running():
            await eventually(lambda: runtime.supervisor.escalated, within=30, poll=0.05)


async def test_a_crash_loop_escalates_to_a_clean_shutdown(database_url: str) -> None:
    # Stands in for Granian's main process, which the escalation signals to stop.
    stand_in_main = await anyio.open_process(["sleep", "60"])
    try:
        settings = load_settings(
            {"DATABASE_URL": database_url, "SEVENP_ENV": "test", "JWT_SECRET": "s" * 40}
        )
        crasher = AlwaysCrashing()
        runtime = build_runtime(settings, extra_actors=[crasher], main_pid=stand_in_main.pid)
        with pytest.raises(BaseExceptionGroup) as caught:
            await _run_until_escalated(runtime)
        assert caught.group_contains(SupervisorEscalated)
        assert runtime.supervisor.escalated
        assert not runtime.health.ready
        assert crasher.starts == 6  # the first start and five restarts
        states = {s.name: str(s.state) for s in runtime.supervisor.statuses()}
        assert states["always-crashing"] == "failed"
        assert states["health"] == "stopped"
        with anyio.fail_after(10):
            assert await stand_in_main.wait() == -signal.SIGTERM
    finally:
        if stand_in_main.returncode is None:
            stand_in_main.kill()
        await stand_in_main.aclose()
