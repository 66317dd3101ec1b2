"""Enrolled devices: the key is shown once and kept hashed, a sync needs the key and the
worker's own staff token, and a revoked device is refused with nothing stored."""

import uuid
from datetime import datetime, timedelta, timezone

from sqlmodel import func, select

from app.core.clock import clock
from app.core.db import new_session
from app.models.capture import CaptureSession, VoiceEntry
from app.models.sync import Device, SyncReceipt
from tests.support import World, assert_problem, consent_body
from tests.sync_support import Tablet, enroll, mat_board, recorded_visit


def _stored(app) -> tuple[int, int, int]:  # noqa: ANN001
    with new_session(app.state.engine) as db:
        return (db.exec(select(func.count()).select_from(CaptureSession)).one(),
                db.exec(select(func.count()).select_from(VoiceEntry)).one(),
                db.exec(select(func.count()).select_from(SyncReceipt)).one())


def test_enrollment_shows_the_key_once_and_keeps_a_hash(world: World, app) -> None:  # noqa: ANN001
    device = enroll(world.worker)
    assert device["device_key"].startswith("cvd_") and device["status"] == "active"
    assert device["user_id"] == world.worker.user_id
    until = datetime.fromisoformat(device["offline_until"])
    assert timedelta(hours=71) < until - datetime.fromisoformat(device["created_at"]) \
        <= timedelta(hours=72)
    shown = world.worker.get(f"/devices/{device['id']}").json()
    assert "device_key" not in shown and shown["id"] == device["id"]
    listed = world.worker.get("/devices").json()["items"]
    assert [d["id"] for d in listed] == [device["id"]] and "device_key" not in listed[0]
    with new_session(app.state.engine) as db:
        row = db.get(Device, uuid.UUID(device["id"]))
        assert row.key_hash != device["device_key"] and device["device_key"] not in row.key_hash
    assert_problem(world.admin.post("/devices", json={"name": "admin tablet"}), 403)
    assert_problem(world.anonymous.post("/devices", json={"name": "x"}), 401)


def test_who_sees_and_revokes_a_device(world: World) -> None:
    device = enroll(world.worker)
    path = f"/devices/{device['id']}"
    for outsider in (world.colleague, world.other_worker, world.other_manager):
        assert_problem(outsider.get(path), 404)
        assert_problem(outsider.post(path + "/revoke"), 404)
    assert world.manager.get(path).status_code == 200
    assert [d["id"] for d in world.manager.get("/devices").json()["items"]] == [device["id"]]
    assert world.colleague.get("/devices").json()["items"] == []
    assert world.admin.get(path).status_code == 200
    # The manager revokes; a second revocation keeps the first one's who and why.
    r = world.manager.post(path + "/revoke", json={"reason": "Reported lost"})
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    assert r.json()["revoked_by"] == world.manager.user_id and r.json()["offline_until"] is None
    again = world.admin.post(path + "/revoke").json()
    assert again["revoked_by"] == world.manager.user_id
    assert again["revoked_reason"] == "Reported lost"
    # The worker and an admin may revoke too.
    for who in (world.worker, world.admin):
        other = enroll(world.worker, "another")
        assert who.post(f"/devices/{other['id']}/revoke").json()["status"] == "revoked"


def test_a_sync_needs_the_key_and_the_workers_own_token(world: World, app) -> None:  # noqa: ANN001
    device = enroll(world.worker)
    items = recorded_visit(world, [world.board, mat_board(world)], entries=4)
    body = Tablet(world.worker, device).body(items)
    assert_problem(world.worker.post("/sync", json=body), 401)
    wrong = assert_problem(world.worker.post("/sync", json=body,
                                             headers={"X-Device-Key": "cvd_guess"}), 401)
    assert wrong["type"].endswith("invalid-device-key")
    # The key with someone else's token: the colleague cannot sync the worker's tablet.
    stolen = assert_problem(world.colleague.post(
        "/sync", json=body, headers={"X-Device-Key": device["device_key"]}), 403)
    assert stolen["type"].endswith("device-not-yours")
    # A child-mode capture token is not a staff token.
    session = world.open_session()
    capture = world.capture(session)
    assert_problem(capture.post("/sync", json=body,
                                headers={"X-Device-Key": device["device_key"]}), 403)
    assert _stored(app) == (1, 0, 0)


def test_a_device_revoked_while_offline_is_refused_and_nothing_is_stored(
        world: World, app) -> None:  # noqa: ANN001
    device = enroll(world.worker)
    tablet = Tablet(world.worker, device)
    items = recorded_visit(world, [world.board, mat_board(world)])
    # The tablet goes offline and records a visit; meanwhile the manager revokes it.
    assert world.manager.post(f"/devices/{device['id']}/revoke",
                              json={"reason": "Reported lost"}).status_code == 200
    for attempt in (items, items[:1], items[1:]):
        problem = assert_problem(tablet.send(attempt), 403)
        assert problem["type"].endswith("device-revoked") and problem["revoked_at"]
        assert "nothing" in problem["detail"]
    assert_problem(world.worker.get("/sync/state", params={"device_id": device["id"]},
                                    headers=tablet.headers), 403)
    assert_problem(world.worker.get(f"/devices/{device['id']}/boards",
                                    headers=tablet.headers), 403)
    assert _stored(app) == (0, 0, 0)
    # Enrolled again (a new device and key), the same queue goes through once.
    fresh = Tablet(world.worker, enroll(world.worker, "same tablet, enrolled again"))
    assert {r["status"] for r in fresh.send(items).json()["results"]} == {"created"}
    assert _stored(app) == (1, 40, len(items))


def test_offline_window_bounds_sessions_started_offline(world: World, app) -> None:  # noqa: ANN001
    now = datetime.now(timezone.utc)
    enrolled_at = now - timedelta(hours=96)
    assert world.worker.post(f"/children/{world.child_id}/consents", json=consent_body(
        valid_from=(now - timedelta(days=10)).isoformat())).status_code == 201
    # Enrolled four days ago; the tablet has been offline since.
    clock.set(enrolled_at)
    device = enroll(world.worker)
    clock.set(None)
    tablet = Tablet(world.worker, device)
    boards = [world.board, mat_board(world)]
    late = recorded_visit(world, boards, entries=2, started_at=enrolled_at + timedelta(hours=73))
    within = recorded_visit(world, boards, entries=2,
                            started_at=enrolled_at + timedelta(hours=70))
    r = tablet.send(late + within)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    late_results, within_results = results[:len(late)], results[len(late):]
    assert late_results[0]["status"] == "rejected"
    assert late_results[0]["problem"]["type"].endswith("offline-window-exceeded")
    # Its entries cannot land without it, and are told so (no point retrying).
    for result in late_results[1:]:
        assert result["status"] == "rejected" and result["problem"].get("retry") is not True
    assert {result["status"] for result in within_results} == {"created"}
    assert _stored(app)[:2] == (1, 2)
    # This contact renewed the window.
    shown = world.worker.get(f"/devices/{device['id']}").json()
    until = datetime.fromisoformat(shown["offline_until"])
    assert timedelta(hours=71) < until - now <= timedelta(hours=73)
