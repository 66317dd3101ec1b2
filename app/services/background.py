"""Background work: what runs outside any request.

It lives here, above the safeguarding package, so that the outbox never imports the
alerts that feed it (alerts -> outbox, and this module -> both).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from app.core.config import Settings
from app.services.safeguarding.alerts import escalate_due
from app.services.safeguarding.outbox import deliver_due

log = logging.getLogger("childvoice.outbox")


def run_once(engine: Engine, settings: Settings) -> dict[str, int]:
    """One pass of the worker: escalate overdue alerts, then send what is due."""
    escalated = escalate_due(engine, settings)
    return {"escalated": escalated, **deliver_due(engine, settings)}


@dataclass
class OutboxWorker:
    """The worker each API process runs in a background thread (see create_app's
    lifespan). Deliberately simple: poll, run_once, sleep; all coordination is in the
    database, so running it in every process is safe."""

    engine: Engine
    settings: Settings
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="childvoice-outbox",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                run_once(self.engine, self.settings)
            except Exception as exc:  # noqa: BLE001 - keep the worker alive; log no content
                log.error("outbox pass failed: %s", type(exc).__name__)
            self._stop.wait(self.settings.outbox_poll_seconds)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
