"""Tablet clocks are wrong. Consent and session windows are decided on the server's view of
time (the tablet's time corrected by the device's measured offset), with a bounded
tolerance; the tablet's own times are kept as recorded; a time far ahead of the server's
clock is refused naming the tablet's clock, and never sits on top of the plan."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.support import World, assert_problem, consent_body, symbols_entry
from tests.sync_support import Tablet, enroll


def _now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
def fresh_consent(world: World) -> dict:
    """The only consent: recorded online just now (valid from the server's now)."""
    r = world.worker.post(f"/consents/{world.consent['id']}/withdraw", json={"reason": "redo"})
    assert r.status_code == 200, r.text
    body = {k: v for k, v in consent_body().items() if k != "valid_from"}
    r = world.worker.post(f"/children/{world.child_id}/consents", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_tap_seconds_after_consent_from_a_tablet_90s_behind_is_kept_online(
        world: World, fresh_consent: dict) -> None:
    session = world.open_session()
    behind = _now() - timedelta(seconds=85)   # a tap 5 s later, on a clock 90 s behind
    r = world.capture(session).post(f"/sessions/{session['id']}/entries", json=symbols_entry(
        world.board, ["happy"], captured_at=behind.isoformat()))
    assert r.status_code == 201, r.text
    assert r.json()["consent_id"] == fresh_consent["id"]
    assert datetime.fromisoformat(r.json()["captured_at"]) == behind  # as the tablet said


def test_the_same_tap_synced_is_corrected_by_the_measured_offset(world: World,
                                                                 fresh_consent: dict) -> None:
    tablet = Tablet(world.worker, enroll(world.worker))
    behind = _now() - timedelta(seconds=85)
    session = {"type": "session", "client_id": str(uuid.uuid4()), "child_id": world.child_id,
               "setting": "home", "board_ids": [world.board["id"]],
               "started_at": (behind - timedelta(seconds=1)).isoformat()}
    entry = {"type": "entry", "session_client_id": session["client_id"]} | symbols_entry(
        world.board, ["happy"], captured_at=behind.isoformat())
    body = tablet.body([session, entry]) | {
        "sent_at": (_now() - timedelta(seconds=90)).isoformat()}
    r = world.worker.post("/sync", json=body, headers=tablet.headers)
    assert r.status_code == 200, r.text
    assert r.json()["clock_offset_ms"] >= 89_000
    result = r.json()["results"][1]
    assert result["status"] == "created", result
    assert result["entry"]["consent_id"] == fresh_consent["id"]
    assert datetime.fromisoformat(result["entry"]["captured_at"]) == behind


def test_a_tablet_a_whole_day_behind_is_corrected_by_its_offset(world: World,
                                                                fresh_consent: dict) -> None:
    tablet = Tablet(world.worker, enroll(world.worker))
    day = timedelta(days=1)
    behind = _now() - day + timedelta(seconds=5)
    session = {"type": "session", "client_id": str(uuid.uuid4()), "child_id": world.child_id,
               "setting": "home", "board_ids": [world.board["id"]],
               "started_at": behind.isoformat()}
    entry = {"type": "entry", "session_client_id": session["client_id"]} | symbols_entry(
        world.board, ["happy"], captured_at=behind.isoformat())
    without_offset = world.worker.post("/sync", json=tablet.body([session, entry]) | {
        "sent_at": None}, headers=tablet.headers).json()["results"][1]
    assert without_offset["problem"]["type"].endswith("consent-required")
    body = tablet.body([session, entry]) | {"sent_at": (_now() - day).isoformat()}
    assert world.worker.post("/sync", json=body, headers=tablet.headers).json()[
        "results"][1]["status"] == "created"


def test_words_from_before_consent_stay_refused(world: World, fresh_consent: dict) -> None:
    session = world.open_session()
    before = _now() - timedelta(minutes=20)
    r = world.capture(session).post(f"/sessions/{session['id']}/entries", json=symbols_entry(
        world.board, ["happy"], captured_at=before.isoformat()))
    problem = assert_problem(r, 403)
    assert problem["type"].endswith("consent-required")


def test_the_tolerance_is_a_setting(world: World, fresh_consent: dict, app,  # noqa: ANN001
                                    monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(app.state.settings, "clock_tolerance_seconds", 30)
    session = world.open_session()
    r = world.capture(session).post(f"/sessions/{session['id']}/entries", json=symbols_entry(
        world.board, ["happy"], captured_at=(_now() - timedelta(seconds=85)).isoformat()))
    assert assert_problem(r, 403)["type"].endswith("consent-required")


def test_an_entry_dated_in_the_future_is_refused_naming_the_clock(world: World) -> None:
    session = world.open_session()
    ahead = _now() + timedelta(hours=2)
    r = world.capture(session).post(f"/sessions/{session['id']}/entries", json=symbols_entry(
        world.board, ["sad"], captured_at=ahead.isoformat()))
    problem = assert_problem(r, 422)
    assert problem["type"].endswith("clock-ahead") and "clock" in problem["detail"]
    assert "consent" not in problem["detail"]

    # Synced from a tablet whose clock is two hours ahead all along (sent_at too): refused,
    # as its captured_at would otherwise sit on top of the plan.
    tablet = Tablet(world.worker, enroll(world.worker))
    future_session = {"type": "session", "client_id": str(uuid.uuid4()),
                      "child_id": world.child_id, "setting": "home",
                      "board_ids": [world.board["id"]], "started_at": ahead.isoformat()}
    entry = {"type": "entry", "session_id": session["id"]} | symbols_entry(
        world.board, ["sad"], captured_at=ahead.isoformat())
    body = tablet.body([future_session, entry]) | {"sent_at": ahead.isoformat()}
    results = world.worker.post("/sync", json=body, headers=tablet.headers).json()["results"]
    for result in results:
        assert result["status"] == "rejected", result
        assert result["problem"]["type"].endswith("clock-ahead")
        assert not result["problem"].get("retry")

    kept = world.capture(session).post(f"/sessions/{session['id']}/entries",
                                       json=symbols_entry(world.board, ["happy"]))
    assert kept.status_code == 201
    plan = world.worker.get(f"/children/{world.child_id}/plan").json()
    assert [e["id"] for e in plan["latest_voice"]] == [kept.json()["id"]]


def test_a_little_ahead_is_within_the_tolerance(world: World) -> None:
    session = world.open_session()
    r = world.capture(session).post(f"/sessions/{session['id']}/entries", json=symbols_entry(
        world.board, ["happy"], captured_at=(_now() + timedelta(seconds=60)).isoformat()))
    assert r.status_code == 201, r.text


def test_an_end_a_little_before_an_online_start_ends_it(world: World) -> None:
    session = world.open_session()
    tablet = Tablet(world.worker, enroll(world.worker))
    end = {"type": "session_end", "client_id": str(uuid.uuid4()), "session_id": session["id"],
           "ended_at": (_now() - timedelta(seconds=60)).isoformat()}
    result = tablet.send([end]).json()["results"][0]
    assert result["status"] == "created", result
    assert result["session"]["status"] == "ended"


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+00:00", "1970-01-01T00:00:00+00:00",
                                  "9999-12-31T23:59:59+00:00"])
def test_a_date_no_visit_had_is_a_422_online(world: World, when: str) -> None:
    session = world.open_session()
    r = world.capture(session).post(f"/sessions/{session['id']}/entries",
                                    json=symbols_entry(world.board, ["happy"], captured_at=when))
    problem = assert_problem(r, 422)
    # Refused as a date no visit had (the shared datetime bound, or the clock check).
    assert problem["type"].endswith(("clock-implausible", "clock-ahead", "invalid"))
    assert "captured_at" in problem["detail"] or "clock" in problem["detail"]
