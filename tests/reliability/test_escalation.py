"""Past the restart intensity the root supervisor gives up: readiness turns 503, the server stops."""

from __future__ import annotations

import signal
import subprocess

import anyio
import pytest
from anyio.abc import TaskStatus

from actors.base import Actor
from actors.supervisor import SupervisorEscalated
from server.runtime import build_runtime
from server.settings import load_settings


class AlwaysCrashing(Actor):
    name = "always-crashing"

    def __init__(self) -> None:
        self.starts = 0

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self.starts += 1
        task_status.started()
        await anyio.sleep(0.01)
        raise RuntimeError("injected fault")


async def test_a_crash_loop_escalates_to_a_clean_shutdown(database_url: str) -> None:
    stand_in_main = subprocess.Popen(["sleep", "60"])  # receives the shutdown signal
    try:
        settings = load_settings(
            {"DATABASE_URL": database_url, "SEVENP_MAIN_PID": str(stand_in_main.pid),
             "SEVENP_ENV": "test", "JWT_SECRET": "s" * 40}
        )  # fmt: skip
        crasher = AlwaysCrashing()
        runtime = build_runtime(settings, extra_actors=[crasher])
        with pytest.raises(BaseExceptionGroup) as caught, anyio.fail_after(30):
            async with runtime.running():
                while not runtime.supervisor.escalated:
                    await anyio.sleep(0.05)
        assert caught.group_contains(SupervisorEscalated)
        assert runtime.supervisor.escalated
        assert not runtime.health.ready
        assert crasher.starts == 6  # the first start and five restarts
        states = {s.name: str(s.state) for s in runtime.supervisor.statuses()}
        assert states["always-crashing"] == "failed"
        assert states["health"] == "stopped"
        assert await anyio.to_thread.run_sync(stand_in_main.wait, 10) == -signal.SIGTERM
    finally:
        stand_in_main.kill()
        stand_in_main.wait()
