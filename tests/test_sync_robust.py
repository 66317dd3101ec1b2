"""One item that the database cannot hold (an integer past 32 bits, a NUL byte, a date
past any calendar a database keeps) is that item's rejection: the batch answers 200 with
the other items stored, and a resend drains the queue."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import DataError, OperationalError
from sqlmodel import select

from tests.support import World
from tests.sync_support import Tablet, enroll


@pytest.fixture
def tablet(world: World) -> Tablet:
    return Tablet(world.worker, enroll(world.worker))


def _session_item(world: World, **kw) -> dict:  # noqa: ANN003
    started = datetime.now(timezone.utc) - timedelta(hours=1)
    return {"type": "session", "client_id": str(uuid.uuid4()), "child_id": world.child_id,
            "setting": "home", "board_ids": [world.board["id"]],
            "started_at": started.isoformat()} | kw


def _entry_item(world: World, session: dict, **kw) -> dict:  # noqa: ANN003
    at = datetime.fromisoformat(session["started_at"]) + timedelta(minutes=1)
    return {"type": "entry", "session_client_id": session["client_id"], "kind": "symbols",
            "client_id": str(uuid.uuid4()), "captured_at": at.isoformat(),
            "source": "child_direct", "board_id": world.board["id"],
            "board_version": world.board["version"], "button_ids": ["happy"]} | kw


HOSTILE = {
    "board_version past 32 bits": {"board_version": 2147483648},
    "board_version past 64 bits": {"board_version": 2 ** 70},
    "NUL in the prompt": {"prompt": "How do you\x00 feel?"},
    "NUL in a button id": {"button_ids": ["hap\x00py"]},
    "year 9999": {"captured_at": "9999-12-31T23:59:59+00:00"},
    "year 1": {"captured_at": "0001-01-01T00:00:00+00:00"},
    "NUL in a text entry": {"kind": "text", "text": "hello\x00", "board_id": None},
}


@pytest.mark.parametrize("bad", list(HOSTILE.values()), ids=list(HOSTILE))
def test_an_item_the_database_cannot_hold_is_rejected_alone(world: World, tablet: Tablet,
                                                             bad: dict) -> None:
    session = _session_item(world)
    good = _entry_item(world, session)
    hostile = {k: v for k, v in (_entry_item(world, session) | bad).items() if v is not None}
    if hostile["kind"] == "text":
        for key in ("board_version", "button_ids"):
            hostile.pop(key)
    items = [session, hostile, good]
    for _ in range(2):   # every resend answers the same, so the queue drains
        r = tablet.send(items)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert results[1]["status"] == "rejected", results[1]
        problem = results[1]["problem"]
        assert problem["status"] in (403, 409, 422) and problem["detail"]
        assert not problem.get("retry"), problem
        assert {results[0]["status"], results[2]["status"]} <= {"created", "duplicate"}
    entries = world.worker.get(f"/children/{world.child_id}/entries").json()["items"]
    assert [e["client_id"] for e in entries] == [good["client_id"]]


def test_a_hostile_session_item_is_rejected_alone(world: World, tablet: Tablet) -> None:
    fine = _session_item(world)
    items = [_session_item(world, purpose="weekends\x00"),
             _session_item(world, started_at="9999-12-31T23:59:59+00:00"),
             _session_item(world, board_ids=[world.board["id"], world.board["id"]]),
             fine, _entry_item(world, fine)]
    r = tablet.send(items)
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["rejected"] * 3 + ["created"] * 2


def test_a_hostile_retract_or_end_is_rejected_alone(world: World, tablet: Tablet) -> None:
    session = _session_item(world)
    entry = _entry_item(world, session)
    items = [session, entry,
             {"type": "retract", "client_id": str(uuid.uuid4()),
              "entry_client_id": entry["client_id"],
              "retracted_at": "9999-12-31T23:59:59+00:00"},
             {"type": "session_end", "client_id": str(uuid.uuid4()),
              "session_client_id": session["client_id"], "ended_at": "0001-01-01T00:00:00Z"},
             {"type": "retract", "client_id": "\x00", "entry_client_id": entry["client_id"],
              "retracted_at": entry["captured_at"]}]
    r = tablet.send(items)
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["created", "created", "rejected",
                                                          "rejected", "rejected"]
    assert r.json()["results"][4]["client_id"] is None


def test_an_envelope_of_the_wrong_shape_is_a_422_naming_the_field(world: World,
                                                                   tablet: Tablet) -> None:
    r = world.worker.post("/sync", json={"device_id": tablet.device["id"], "items": "many"},
                          headers=tablet.headers)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"][:2] == ["body", "items"]


def _poisoned(monkeypatch, error: Exception) -> None:  # noqa: ANN001
    """The database refuses one entry (the one whose text is "poison") with `error`."""
    from app.services import capture

    real = capture.prepare_entry

    def prepare(ctx, settings, session, data, **kw):  # noqa: ANN001, ANN003, ANN202
        if getattr(data, "text", None) == "poison":
            ctx.db.exec(select(1))  # a statement ran, as a failing one would have
            raise error
        return real(ctx, settings, session, data, **kw)

    monkeypatch.setattr(capture, "prepare_entry", prepare)


def _text_item(session: dict, text: str) -> dict:
    at = datetime.fromisoformat(session["started_at"]) + timedelta(minutes=2)
    return {"type": "entry", "session_client_id": session["client_id"], "kind": "text",
            "client_id": str(uuid.uuid4()), "captured_at": at.isoformat(),
            "source": "child_direct", "text": text}


def test_a_database_error_on_one_item_is_that_items_rejection(world: World, tablet: Tablet,
                                                              monkeypatch) -> None:  # noqa: ANN001
    _poisoned(monkeypatch, DataError("INSERT …", {}, Exception("value out of range")))
    session = _session_item(world)
    items = [session, _text_item(session, "first"), _text_item(session, "poison"),
             _text_item(session, "last")]
    r = tablet.send(items)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["created", "created", "rejected", "created"]
    assert results[2]["problem"]["type"].endswith("unstorable")
    assert not results[2]["problem"].get("retry")
    texts = {e["text"] for e in world.worker.get(
        f"/children/{world.child_id}/entries").json()["items"]}
    assert texts == {"first", "last"}


def test_the_database_down_is_a_server_error_and_stores_nothing(world: World, tablet: Tablet,
                                                                monkeypatch) -> None:  # noqa: ANN001
    _poisoned(monkeypatch, OperationalError("SELECT …", {}, Exception("connection lost")))
    session = _session_item(world)
    r = tablet.send([session, _text_item(session, "first"), _text_item(session, "poison")])
    assert r.status_code >= 500
    assert tablet.held() == set()
