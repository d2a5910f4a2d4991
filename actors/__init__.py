"""Actor runtime: actors, their mailboxes, and the supervisors that keep them running."""

from actors.base import Actor, ActorState, ActorStatus
from actors.mailbox import ActorCrashed, Mailbox, MailboxClosed, MailboxFull, Reply
from actors.supervisor import RestartPolicy, Strategy, Supervisor, SupervisorEscalated

__all__ = [
    "Actor",
    "ActorCrashed",
    "ActorState",
    "ActorStatus",
    "Mailbox",
    "MailboxClosed",
    "MailboxFull",
    "Reply",
    "RestartPolicy",
    "Strategy",
    "Supervisor",
    "SupervisorEscalated",
]
