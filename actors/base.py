"""The actor contract: a long-lived task that owns its state, and the status it reports."""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from dataclasses import dataclass

import anyio
import anyio.abc


class ActorState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ActorStatus:
    name: str
    state: ActorState
    restarts: int
    mailbox_depth: int
    last_error: str | None
    details: Mapping[str, object]


class Actor(abc.ABC):
    """Long-lived task owning its state.

    The SAME instance is re-run on restart (hot-path code holds references to it),
    so run() must (re)initialise whatever it needs.
    """

    name: str

    @abc.abstractmethod
    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Call task_status.started() once ready, then run until cancelled; raising is a crash."""

    def mailbox_depth(self) -> int:
        return 0

    def details(self) -> Mapping[str, object]:
        return {}

    def request_stop(self) -> bool:
        """Ask run() to wind down and return on its own, without being cancelled.

        Return True if the request was taken; the supervisor then waits up to its
        stop_timeout before cancelling. The default, False, means "no graceful path":
        the actor is cancelled straight away.
        """
        return False
