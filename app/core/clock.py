"""The server clock, in one place so tests can move it."""

from __future__ import annotations

from datetime import datetime, timezone


class Clock:
    def __init__(self) -> None:
        self._fixed: datetime | None = None

    def now(self) -> datetime:
        return self._fixed or datetime.now(timezone.utc)

    def set(self, when: datetime | None) -> None:
        self._fixed = when


clock = Clock()


def utcnow() -> datetime:
    return clock.now()
