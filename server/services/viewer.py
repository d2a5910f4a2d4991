"""Who is asking: the signed-in user's id and role, and the client address they ask from."""

from __future__ import annotations

from dataclasses import dataclass

from server.security.permissions import Role


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: str
    role: Role
    address: str | None = None
    """The client's address, as the audit log records it."""

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_student(self) -> bool:
        return self.role is Role.STUDENT

    def visibility(self) -> dict[str, object]:
        """The parameters of the visibility predicate in `server.db.queries.courses`."""
        return {"viewer": self.user_id, "admin": self.is_admin}
