"""Background work in one place: where it runs (a thread of `serve` on the embedded
default, `childvoice worker` with a database server), and that however many workers run,
no job is run twice at once or twice within its interval, no webhook is sent twice at
once, escalations go first, and every notification is signed to the Standard Webhooks
spec."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import select

from app import cli
from app.core.clock import clock, utcnow
from app.core.db import new_session
from app.main import create_app
from app.models.jobs import JobLease
from app.models.safeguarding import SafeguardingAlert
from app.services import background
from app.services.safeguarding import outbox
from tests.support import World, symbols_entry
from tests.test_trust_safeguarding import SECRET, marked_board_body, verify


class Receiver:
    """The council's endpoint: records each notification, calls `during` while answering."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, bytes]] = []
        self.during = lambda: None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                receiver.during()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.received]


@pytest.fixture
def receiver(settings, monkeypatch):  # noqa: ANN001, ANN201
    r = Receiver()
    monkeypatch.setattr(settings, "webhook_url", r.url)
    monkeypatch.setattr(settings, "webhook_secret", SECRET)
    yield r
    r.server.shutdown()
    r.server.server_close()


def _alerts(world: World, count: int) -> None:
    board = world.admin.post("/boards", json=marked_board_body()).json()
    session = world.worker.post(f"/children/{world.child_id}/sessions",
                                json={"setting": "home", "board_ids": [board["id"]]}).json()
    for _ in range(count):
        r = world.capture(session).post(f"/sessions/{session['id']}/entries",
                                        json=symbols_entry(board, ["hurt"]))
        assert r.status_code == 201, r.text


def _count(app, sql: str) -> int:  # noqa: ANN001
    with app.state.engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def test_serve_runs_background_work_only_on_the_embedded_default(app, settings) -> None:  # noqa: ANN001
    """(`app`: whatever the thread does here is emptied away after the test.)"""
    embedded = settings.resolved_database_url.startswith("sqlite")
    running = create_app(settings.model_copy(update={"background": "auto"}))
    with TestClient(running):
        assert (running.state.background is not None) is embedded
    # Told so, the API processes leave it all to `childvoice worker`.
    running = create_app(settings.model_copy(update={"background": "worker"}))
    with TestClient(running):
        assert running.state.background is None


def test_two_workers_sending_at_once_send_each_notification_once(
        world: World, receiver: Receiver, app, settings) -> None:  # noqa: ANN001
    _alerts(world, 12)
    start = threading.Barrier(2)
    results: list[dict] = []

    def work() -> None:
        start.wait()
        for _ in range(4):
            results.append(background.run_once(app.state.engine, settings))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [json.loads(body)["delivery_id"] for _, body in receiver.received]
    assert len(ids) == len(set(ids)) == 12
    assert sum(r["delivered"] for r in results) == 12
    assert all(verify(headers, body) for headers, body in receiver.received)
    # Each periodic job ran once between them, not once each.
    assert sum(r["checkpoints"] for r in results) == 1


def test_a_delivery_is_never_sent_past_its_lease(world: World, receiver: Receiver, app,
                                                 settings, monkeypatch) -> None:  # noqa: ANN001
    """A slow receiver eats the lease: what is left of the batch is handed back unsent,
    rather than sent while another worker may have taken it over."""
    monkeypatch.setattr(settings, "outbox_batch_size", 3)
    _alerts(world, 3)
    start = datetime.now(timezone.utc)
    clock.set(start)
    lease = outbox.lease_seconds(settings)
    assert lease > settings.outbox_batch_size * settings.webhook_timeout_seconds
    # While the first is being answered, almost the whole lease goes by.
    receiver.during = lambda: clock.set(start + timedelta(seconds=lease - 1))
    counts = background.run_once(app.state.engine, settings)
    assert counts["delivered"] == 1 and len(receiver.received) == 1
    assert _count(app, "SELECT count(*) FROM webhook_deliveries "
                       "WHERE status = 'pending' AND claimed_until IS NULL") == 2
    receiver.during = lambda: None
    assert background.run_once(app.state.engine, settings)["delivered"] == 2
    ids = [json.loads(body)["delivery_id"] for _, body in receiver.received]
    assert len(set(ids)) == 3


def test_escalations_go_first(world: World, receiver: Receiver, app, settings,
                              monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(settings, "outbox_batch_size", 1)
    monkeypatch.setattr(settings, "webhook_url", None)  # the endpoint is down a while
    start = datetime.now(timezone.utc)
    clock.set(start)
    _alerts(world, 2)
    clock.set(start + timedelta(minutes=settings.alert_escalation_minutes, seconds=1))
    monkeypatch.setattr(settings, "webhook_url", receiver.url)
    # Deliveries were only queued while a URL is set: queue the raised ones now.
    with new_session(app.state.engine) as db:
        for alert_id in db.exec(select(SafeguardingAlert.id)):
            outbox.enqueue(db, settings, "alert.raised", alert_id)
        db.commit()
    # The pass escalates both alerts, then sends one delivery: an escalation.
    assert background.run_once(app.state.engine, settings)["escalated"] == 2
    assert receiver.events() == ["alert.escalated"]
    background.run_once(app.state.engine, settings)
    background.run_once(app.state.engine, settings)
    background.run_once(app.state.engine, settings)
    assert receiver.events() == ["alert.escalated", "alert.escalated", "alert.raised",
                                 "alert.raised"]


def test_a_job_held_by_another_worker_waits_for_its_lease(app, settings) -> None:  # noqa: ANN001
    now = utcnow()
    with new_session(app.state.engine) as db:
        db.add(JobLease(job="audit_checkpoint", holder="another-worker",
                        leased_until=now + timedelta(minutes=5)))
        db.commit()
    assert background.run_once(app.state.engine, settings)["checkpoints"] == 0
    # That worker died: once its lease has run out, another takes the job over.
    clock.set(now + timedelta(minutes=6))
    assert background.run_once(app.state.engine, settings)["checkpoints"] == 1
    assert background.run_once(app.state.engine, settings)["checkpoints"] == 0


def test_the_worker_applies_retention_on_its_interval(world: World, app, settings,
                                                      capsys) -> None:  # noqa: ANN001
    scheduled = settings.model_copy(update={"retention_interval_hours": 24})
    assert cli.main(["worker", "--once"], settings=scheduled) == 0
    assert "checkpoints=1" in capsys.readouterr().out
    assert _count(app, "SELECT count(*) FROM retention_runs") == 1
    background.run_once(app.state.engine, scheduled)
    assert _count(app, "SELECT count(*) FROM retention_runs") == 1  # not due yet
    clock.set(datetime.now(timezone.utc) + timedelta(hours=25))
    background.run_once(app.state.engine, scheduled)
    assert _count(app, "SELECT count(*) FROM retention_runs") == 2


def test_a_secret_that_is_not_a_standard_webhooks_secret_sends_nothing(
        world: World, receiver: Receiver, app, settings, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(settings, "webhook_secret", "plain-text-secret")
    _alerts(world, 1)
    assert background.run_once(app.state.engine, settings)["retrying"] == 1
    assert receiver.received == []
    r = world.admin.get("/admin/webhook-deliveries")
    assert "Standard Webhooks secret" in r.json()["items"][0]["last_error"]
