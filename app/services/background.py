"""Background work, in one place: what runs outside any request.

- escalating overdue safeguarding alerts, then delivering the webhook outbox (every pass);
- expiring unfinished resumable uploads (`upload_cleanup_seconds`);
- sweeping what a crash left in the media root (`media_sweep_seconds`);
- applying retention (`retention_interval_hours`);
- signing an audit checkpoint (`audit_checkpoint_minutes`).

It runs in `childvoice worker`, or on the embedded SQLite default in one thread of
`childvoice serve` (the `background` setting decides). Nothing here relies on running
once: alerts are escalated by conditional updates, deliveries claimed with SKIP LOCKED
and a lease, and each periodic job is claimed through its row in `job_leases`, which also
keeps its interval across every worker. So a second worker (or several `serve` processes
on SQLite) never repeats a run or races another for it.

The job bodies live with their domains (alerts, outbox, uploads, media records,
retention, audit); this module only says when they run. It sits above the safeguarding
package so that the outbox never imports the alerts that feed it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import is_postgres, new_session
from app.models.jobs import JobLease
from app.services import audit
from app.services.media import records as media_records
from app.services.media.uploads import cleanup as expire_uploads
from app.services.rights import retention
from app.services.safeguarding.alerts import escalate_due
from app.services.safeguarding.outbox import deliver_due
from app.storage import make_store, sweep_staging

log = logging.getLogger("childvoice.background")

# A periodic job whose holder died is taken over after this long.
JOB_LEASE_SECONDS = 30 * 60

HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:80]


def _uploads(engine: Engine, settings: Settings) -> dict[str, int]:
    counts = expire_uploads(engine, settings)
    # What crashed processes left in this host's staging area goes within minutes (each
    # API process also sweeps it when it starts: hosts that share no disk sweep their own).
    return {"uploads_expired": counts["expired"],
            "swept_crash_leftovers": sweep_staging(settings.media_root)}


def _media_sweep(engine: Engine, settings: Settings) -> dict[str, int]:
    with new_session(engine) as db:
        swept = media_records.sweep(db, make_store(settings), settings.media_root)
    return {"swept_staging": swept["staging"], "swept_blobs": swept["blobs"]}


def _retention(engine: Engine, settings: Settings) -> dict[str, int]:
    summary = retention.run(engine, settings, apply=True)
    return {"retention_removed": sum(item["removed"] for kind, item in summary.items()
                                     if kind != "run_id")}


def _checkpoint(engine: Engine, settings: Settings) -> dict[str, int]:
    return {"checkpoints": 1 if audit.write_checkpoint(engine, settings) else 0}


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: Callable[[Settings], float]   # 0: never on its own
    run: Callable[[Engine, Settings], dict[str, int]]


PERIODIC = (
    Job("uploads", lambda s: s.upload_cleanup_seconds, _uploads),
    Job("media_sweep", lambda s: s.media_sweep_seconds, _media_sweep),
    Job("retention", lambda s: s.retention_interval_hours * 3600, _retention),
    Job("audit_checkpoint", lambda s: s.audit_checkpoint_minutes * 60, _checkpoint),
)
_COUNTS = {"escalated": 0, "delivered": 0, "retrying": 0, "failed": 0, "uploads_expired": 0,
           "swept_staging": 0, "swept_blobs": 0, "retention_removed": 0, "checkpoints": 0}


def _claim(engine: Engine, job: Job, every: float) -> bool:
    """Take the job's lease if its run is due and no live holder has it."""
    now = utcnow()
    insert = pg_insert if is_postgres(engine) else sqlite_insert
    with new_session(engine) as db:
        db.exec(insert(JobLease).values(job=job.name).on_conflict_do_nothing())
        taken = db.exec(update(JobLease).where(
            JobLease.job == job.name,
            or_(JobLease.leased_until.is_(None), JobLease.leased_until < now),
            or_(JobLease.last_finished_at.is_(None),
                JobLease.last_finished_at <= now - timedelta(seconds=every)))
            .values(holder=HOLDER, leased_until=now + timedelta(seconds=JOB_LEASE_SECONDS)))
        db.commit()
        return taken.rowcount == 1


def _release(engine: Engine, job: Job, finished: bool) -> None:
    with new_session(engine) as db:
        values: dict[str, Any] = {"holder": None, "leased_until": None}
        if finished:
            values["last_finished_at"] = utcnow()
        db.exec(update(JobLease).where(JobLease.job == job.name, JobLease.holder == HOLDER)
                .values(**values))
        db.commit()


def run_once(engine: Engine, settings: Settings) -> dict[str, int]:
    """One pass: escalate overdue alerts, send what is due (escalations first), then each
    periodic job that is due and not held by another worker."""
    counts = dict(_COUNTS)
    counts["escalated"] = escalate_due(engine, settings)
    counts.update(deliver_due(engine, settings))
    for job in PERIODIC:
        every = job.every_seconds(settings)
        if every <= 0 or not _claim(engine, job, every):
            continue
        finished = False
        try:
            counts.update(job.run(engine, settings))
            finished = True
        except Exception as exc:  # noqa: BLE001 - one job's failure never stops the others
            log.error("background job %s failed: %s", job.name, type(exc).__name__)
        finally:
            _release(engine, job, finished)
    return counts


@dataclass
class BackgroundWorker:
    """`run_once` every `outbox_poll_seconds` in a thread: inside `serve` on the embedded
    default (see create_app's lifespan), or driven by `childvoice worker`."""

    engine: Engine
    settings: Settings
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.loop, name="childvoice-background",
                                        daemon=True)
        self._thread.start()

    def loop(self) -> None:
        while not self._stop.is_set():
            try:
                run_once(self.engine, self.settings)
            except Exception as exc:  # noqa: BLE001 - keep the worker alive; log no content
                log.error("background pass failed: %s", type(exc).__name__)
            self._stop.wait(self.settings.outbox_poll_seconds)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
