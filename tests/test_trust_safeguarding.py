"""Safeguarding: a child's "hurt" on a board reaches a person, and the council's systems,
whatever the consent says, without sending what the child said anywhere."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook, WebhookVerificationError

from app import cli
from app.core.clock import clock
from app.main import create_app
from app.services import background
from tests.support import World, assert_problem, symbols_entry

# A Standard Webhooks secret: whsec_ and base64 of random bytes (synthetic, tests only).
SECRET = "whsec_dGVzdC1vbmx5LXdlYmhvb2stc2VjcmV0LW5vdC1mb3ItdXNl"


def marked_board_body() -> dict:
    ids = ["happy", "sad", "hurt", "scared", "home", "school"]
    buttons = [{"id": i, "label": i} for i in ids]
    for b in buttons:
        if b["id"] in ("hurt", "scared"):
            b["ext_childvoice_safeguarding"] = True
    return {"name": "Safe board", "grid": {"rows": 2, "columns": 3,
                                          "order": [ids[:3], ids[3:]]}, "buttons": buttons}


def mat_entry(board: dict, placements: list[tuple[str, str]]) -> dict:
    return {"kind": "mat", "client_id": str(uuid.uuid4()),
            "captured_at": datetime.now(timezone.utc).isoformat(), "source": "child_direct",
            "prompt": "Sort these", "board_id": board["id"], "board_version": board["version"],
            "scale": ["like", "not sure", "don't like"],
            "placements": [{"button_id": b, "scale_value": v} for b, v in placements]}


@pytest.fixture
def board(world: World) -> dict:
    r = world.admin.post("/boards", json=marked_board_body())
    assert r.status_code == 201, r.text
    return r.json()


def _session(world: World, board: dict, child_id: str | None = None) -> tuple[dict, object]:
    r = world.worker.post(f"/children/{child_id or world.child_id}/sessions",
                          json={"setting": "home", "board_ids": [board["id"]]})
    assert r.status_code == 201, r.text
    session = r.json()
    return session, world.capture(session)


class Receiver:
    """The council's endpoint, on 127.0.0.1: answers with `statuses` in turn (then 200)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.received = list(statuses), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/childvoice"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings, monkeypatch):  # noqa: ANN001, ANN201
    r = Receiver([500])
    monkeypatch.setattr(settings, "webhook_url", r.url)
    monkeypatch.setattr(settings, "webhook_secret", SECRET)
    yield r
    r.close()


def verify(headers: dict, body: bytes) -> bool:
    """What the council's receiver does (see docs/privacy.md): the Standard Webhooks
    library's own verifier."""
    try:
        Webhook(SECRET).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def _alert_ids(api) -> list[str]:  # noqa: ANN001
    r = api.get("/alerts")
    assert r.status_code == 200, r.text
    return [a["id"] for a in r.json()["items"]]


def test_a_marked_symbol_raises_exactly_one_alert_for_worker_and_manager(
        world: World, board: dict) -> None:
    session, tablet = _session(world, board)
    body = symbols_entry(board, ["happy", "hurt", "scared"])
    r = tablet.post(f"/sessions/{session['id']}/entries", json=body)
    assert r.status_code == 201, r.text
    entry = r.json()
    # The tablet resends it (bad signal): still one entry, one alert.
    assert tablet.post(f"/sessions/{session['id']}/entries", json=body).status_code == 200
    # A choice with no signal raises nothing.
    tablet.post(f"/sessions/{session['id']}/entries", json=symbols_entry(board, ["happy"]))

    alerts = world.worker.get("/alerts").json()["items"]
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["entry_id"] == entry["id"] and alert["child_id"] == world.child_id
    assert alert["status"] == "open" and alert["escalated"] is False
    assert [(s["button_id"], s["rule"]) for s in alert["signals"]] == [
        ("hurt", "marked"), ("scared", "marked")]
    assert alert["worker_id"] == world.worker.user_id
    assert _alert_ids(world.manager) == [alert["id"]]
    assert world.manager.get(f"/alerts/{alert['id']}").status_code == 200

    # No one else: not a colleague, not another team, not the admin, not the tablet.
    for api in (world.colleague, world.other_worker, world.other_manager, world.admin):
        assert _alert_ids(api) == []
        assert_problem(api.get(f"/alerts/{alert['id']}"), 404)
        assert_problem(api.post(f"/alerts/{alert['id']}/acknowledge",
                                json={"outcome": "x"}), 404)
    assert_problem(tablet.get("/alerts"), 403)


def test_an_alert_is_raised_whatever_the_consent_says(world: World, board: dict) -> None:
    r = world.worker.post("/children", json={"preferred_name": "Ash",
                                             "date_of_birth": "2016-01-01",
                                             "team_id": world.team_id})
    child_id = r.json()["id"]  # no consent recorded at all
    session, tablet = _session(world, board, child_id)

    assert_problem(tablet.post(f"/sessions/{session['id']}/entries",
                               json=symbols_entry(board, ["happy"])), 403)
    r = tablet.post(f"/sessions/{session['id']}/entries", json=symbols_entry(board, ["hurt"]))
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["consent_id"] is None  # kept for safeguarding, used for nothing else
    alerts = world.worker.get("/alerts").json()["items"]
    assert [a["entry_id"] for a in alerts] == [entry["id"]]
    assert world.worker.get(f"/children/{child_id}/plan").json()["latest_voice"] == []


def test_mat_placements_under_a_negative_value(world: World, board: dict) -> None:
    session, tablet = _session(world, board)
    calm = tablet.post(f"/sessions/{session['id']}/entries", json=mat_entry(
        board, [("home", "like"), ("school", "don't like"), ("scared", "not sure")]))
    assert calm.status_code == 201
    assert _alert_ids(world.worker) == []

    r = tablet.post(f"/sessions/{session['id']}/entries", json=mat_entry(
        board, [("school", "like"), ("home", "don't like"), ("hurt", "don't like")]))
    assert r.status_code == 201
    alerts = world.worker.get("/alerts").json()["items"]
    assert len(alerts) == 1
    assert [(s["button_id"], s["rule"], s["scale_value"]) for s in alerts[0]["signals"]] == [
        ("home", "sensitive_topic", "don't like"), ("hurt", "marked", "don't like")]


def test_acknowledge_with_an_outcome_and_open_first(world: World, board: dict) -> None:
    session, tablet = _session(world, board)
    start = datetime.now(timezone.utc)
    ids = []
    for minutes in (0, 1, 2):
        clock.set(start + timedelta(minutes=minutes))
        tablet.post(f"/sessions/{session['id']}/entries", json=symbols_entry(board, ["hurt"]))
        ids.append(_alert_ids(world.worker)[0])
    assert _alert_ids(world.worker) == [ids[2], ids[1], ids[0]]

    assert_problem(world.worker.post(f"/alerts/{ids[2]}/acknowledge", json={}), 422)
    r = world.worker.post(f"/alerts/{ids[2]}/acknowledge",
                          json={"outcome": "Talked with Robin; DSL informed."})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged" and r.json()["outcome"].startswith("Talked")
    assert r.json()["acknowledged_by"] == world.worker.user_id
    assert_problem(world.manager.post(f"/alerts/{ids[2]}/acknowledge",
                                      json={"outcome": "again"}), 409)
    # Open first (newest first), then acknowledged.
    assert _alert_ids(world.manager) == [ids[1], ids[0], ids[2]]
    assert [a["id"] for a in world.manager.get("/alerts?status=open").json()["items"]] == \
        [ids[1], ids[0]]
    page = world.manager.get("/alerts?limit=2").json()
    assert [a["id"] for a in page["items"]] == [ids[1], ids[0]]
    rest = world.manager.get(f"/alerts?limit=2&cursor={page['next_cursor']}").json()
    assert [a["id"] for a in rest["items"]] == [ids[2]] and rest["next_cursor"] is None


def test_webhook_is_signed_retried_and_carries_no_child_content(
        world: World, board: dict, receiver: Receiver, app, settings) -> None:  # noqa: ANN001
    start = datetime.now(timezone.utc)
    clock.set(start)
    session, tablet = _session(world, board)
    r = tablet.post(f"/sessions/{session['id']}/entries",
                    json=symbols_entry(board, ["hurt"], topic="home",
                                       prompt="Who hurt you?"))
    entry = r.json()
    alert_id = _alert_ids(world.worker)[0]

    # First attempt: the receiver answers 500; the delivery waits for its back-off.
    assert background.run_once(app.state.engine, settings)["retrying"] == 1
    assert background.run_once(app.state.engine, settings)["retrying"] == 0  # not due yet
    clock.set(start + timedelta(seconds=settings.webhook_backoff_seconds + 1))
    assert background.run_once(app.state.engine, settings)["delivered"] == 1
    assert background.run_once(app.state.engine, settings)["delivered"] == 0  # once is enough

    assert len(receiver.received) == 2
    for headers, body in receiver.received:
        assert verify(headers, body)
        assert headers["Content-Type"] == "application/json"
        payload = json.loads(body)
        assert set(payload) == {"event", "delivery_id", "alert_id", "link"}
        assert payload["event"] == "alert.raised" and payload["alert_id"] == alert_id
        assert payload["link"].endswith(f"/api/v1/alerts/{alert_id}")
        text = body.decode()
        for content in ("Robin", "hurt", "home", "Who hurt", world.child_id, entry["id"]):
            assert content not in text
    # Both attempts carry the same delivery id, for the receiver to de-duplicate.
    ids = {h.get("Webhook-Id") or h["Webhook-id"] for h, _ in receiver.received}
    assert ids == {payload["delivery_id"]}
    # A tampered body fails verification.
    headers, body = receiver.received[0]
    assert not verify(headers, body.replace(b"alert.raised", b"alert.escalated"))

    # Admins see the deliveries; nobody else does.
    r = world.admin.get("/admin/webhook-deliveries")
    assert r.status_code == 200, r.text
    [delivery] = r.json()["items"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 2
    assert delivery["last_status_code"] == 200 and delivery["alert_id"] == alert_id
    for api in (world.worker, world.manager):
        assert_problem(api.get("/admin/webhook-deliveries"), 403)


def test_escalation_after_the_timeout(world: World, board: dict, receiver: Receiver, app,
                                      settings) -> None:  # noqa: ANN001
    receiver.statuses = []  # the council's endpoint is up
    start = datetime.now(timezone.utc)
    clock.set(start)
    session, tablet = _session(world, board)
    tablet.post(f"/sessions/{session['id']}/entries", json=symbols_entry(board, ["hurt"]))
    tablet.post(f"/sessions/{session['id']}/entries", json=symbols_entry(board, ["scared"]))
    unanswered, answered = _alert_ids(world.worker)
    world.sign_in_again()

    clock.set(start + timedelta(minutes=settings.alert_escalation_minutes - 1))
    world.sign_in_again()
    world.worker.post(f"/alerts/{answered}/acknowledge", json={"outcome": "Seen to."})
    assert background.run_once(app.state.engine, settings)["escalated"] == 0

    clock.set(start + timedelta(minutes=settings.alert_escalation_minutes, seconds=1))
    world.sign_in_again()
    # The CLI runs the same pass once (what a cron job or a separate worker would do).
    assert cli.main(["worker", "--once"], settings=settings) == 0
    assert background.run_once(app.state.engine, settings)["escalated"] == 0  # only once

    alert = world.manager.get(f"/alerts/{unanswered}").json()
    assert alert["escalated"] is True and alert["escalated_at"]
    assert world.manager.get(f"/alerts/{answered}").json()["escalated"] is False
    # Escalated and open comes first on the manager's list.
    assert _alert_ids(world.manager)[0] == unanswered
    events = [json.loads(b) for _, b in receiver.received]
    assert sorted(e["event"] for e in events) == ["alert.escalated", "alert.raised",
                                                  "alert.raised"]
    assert [e["alert_id"] for e in events if e["event"] == "alert.escalated"] == [unanswered]


def test_the_service_runs_the_worker_itself(world: World, board: dict, receiver: Receiver,
                                            settings) -> None:  # noqa: ANN001
    receiver.statuses = []
    session, tablet = _session(world, board)
    tablet.post(f"/sessions/{session['id']}/entries", json=symbols_entry(board, ["hurt"]))

    running = create_app(settings.model_copy(update={"background": "serve",
                                                     "outbox_poll_seconds": 0.05}))
    with TestClient(running):
        assert running.state.background.alive
        deadline = time.monotonic() + 10
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
    assert not running.state.background.alive  # stopped with the app
    assert len(receiver.received) == 1 and verify(*receiver.received[0])
