"""Who is calling, and the request facts the audit trail needs, handed to services.

Services never see a Request: routers build a Context and pass it down.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import Session

from app.models.capture import CaptureSession
from app.models.staff import StaffSession, User


@dataclass
class Actor:
    """A signed-in staff user, or a tablet in child mode holding one session's capture token."""

    user: User | None = None
    capture_session: CaptureSession | None = None
    # The staff sign-in the access token belongs to (for sign-out).
    staff_session: StaffSession | None = None

    @property
    def is_staff(self) -> bool:
        return self.user is not None

    @property
    def kind(self) -> str:
        return "staff" if self.user else "capture" if self.capture_session else "system"

    @property
    def id(self) -> uuid.UUID | None:
        if self.user:
            return self.user.id
        return self.capture_session.id if self.capture_session else None

    @property
    def role(self) -> str | None:
        if self.user:
            return self.user.role
        return "capture_token" if self.capture_session else None


@dataclass
class Context:
    db: Session
    actor: Actor
    client_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    @property
    def user(self) -> User:
        assert self.actor.user is not None
        return self.actor.user
