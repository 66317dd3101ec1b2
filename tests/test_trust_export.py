"""Data rights: the subject access export (a zip a family can open, with an Open Board
Logging file) and retention."""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from sqlalchemy import text

from app import cli
from app.core.clock import clock
from app.services import audit
from tests.support import World, assert_problem, consent_body, symbols_entry

FILES = {"index.html", "entries.json", "consents.json", "plan-versions.json", "symbols.obl"}


def text_entry(words: str, **kw) -> dict:  # noqa: ANN003
    return {"kind": "text", "client_id": str(uuid.uuid4()),
            "captured_at": datetime.now(timezone.utc).isoformat(), "source": "child_direct",
            "text": words} | kw


def mat_entry(board: dict) -> dict:
    return {"kind": "mat", "client_id": str(uuid.uuid4()),
            "captured_at": datetime.now(timezone.utc).isoformat(), "source": "child_assisted",
            "board_id": board["id"], "board_version": board["version"],
            "scale": ["like", "not sure", "don't like"],
            "placements": [{"button_id": "happy", "scale_value": "like"},
                           {"button_id": "worried", "scale_value": "not sure"}]}


def export(world: World) -> zipfile.ZipFile:
    r = world.manager.get(f"/children/{world.child_id}/export")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;") and world.child_id in disposition
    assert "Robin" not in disposition
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.testzip() is None
    return archive


def _iso8601(value: str) -> bool:
    return isinstance(value, str) and datetime.fromisoformat(value.replace("Z", "+00:00")) \
        .tzinfo is not None


def validate_obl(doc: dict) -> None:
    """The shape of an open-board-log-0.1 file: a header and sessions of events."""
    assert doc["format"] == "open-board-log-0.1"
    assert isinstance(doc.get("user_id"), str) and isinstance(doc.get("source"), str)
    assert isinstance(doc["sessions"], list)
    event_ids = set()
    for session in doc["sessions"]:
        assert isinstance(session["id"], str) and session["type"] == "log"
        assert _iso8601(session["started"]) and _iso8601(session["ended"])
        assert session["started"] <= session["ended"]
        assert isinstance(session["events"], list) and session["events"]
        for event in session["events"]:
            assert isinstance(event["id"], str) and event["id"] not in event_ids
            event_ids.add(event["id"])
            assert event["type"] in ("button", "action", "utterance", "note")
            assert _iso8601(event["timestamp"])
            if event["type"] == "button":
                assert isinstance(event["label"], str) and isinstance(event["button_id"], str)
                assert isinstance(event.get("board_id"), str)
            if event["type"] == "utterance":
                assert isinstance(event["text"], str) and isinstance(event["buttons"], list)
            for key in event:
                assert key in {"id", "type", "timestamp", "label", "vocalization", "button_id",
                               "board_id", "spoken", "modeling", "text", "buttons", "action",
                               "actions", "destination_board_id"} or key.startswith("ext_"), key


@pytest.fixture
def shared(world: World) -> dict:
    """Robin's family may see what Robin says: a consent covering share_family."""
    world.worker.post(f"/consents/{world.consent['id']}/withdraw",
                      json={"reason": "Replaced by the one with sharing."})
    r = world.worker.post(f"/children/{world.child_id}/consents", json=consent_body(
        scopes=["symbols", "plan", "share_family"]))
    assert r.status_code == 201
    return r.json()


def test_the_export_opens_and_holds_everything(world: World, shared: dict, app) -> None:  # noqa: ANN001
    session = world.open_session()
    tablet = world.capture(session)
    choice = tablet.post(f"/sessions/{session['id']}/entries",
                         json=symbols_entry(world.board, ["happy", "calm"])).json()
    mat = tablet.post(f"/sessions/{session['id']}/entries", json=mat_entry(world.board)).json()
    words = tablet.post(f"/sessions/{session['id']}/entries",
                        json=text_entry("<script>alert('hi')</script> I like swings")).json()
    world.worker.put(f"/children/{world.child_id}/plan/sections/important_to_me",
                     json={"text": "Swings & the park <b>matter</b>.",
                           "pinned_entry_ids": [choice["id"]]})
    world.worker.post(f"/children/{world.child_id}/plan/versions")

    archive = export(world)
    # The mat's columns have their pictures (this board has none of its own).
    assert set(archive.namelist()) == FILES | {"pictures/like.png", "pictures/not sure.png",
                                               "pictures/dont like.png"}

    entries = json.loads(archive.read("entries.json"))
    assert [e["id"] for e in entries["entries"]] == [choice["id"], mat["id"], words["id"]]
    assert entries["withheld"] == []
    consents = json.loads(archive.read("consents.json"))["consents"]
    assert {c["id"] for c in consents} == {world.consent["id"], shared["id"]}
    [version] = json.loads(archive.read("plan-versions.json"))["versions"]
    section = next(s for s in version["plan"]["sections"] if s["key"] == "important_to_me")
    assert [e["id"] for e in section["pinned_entries"]] == [choice["id"]]

    page = archive.read("index.html").decode()
    assert not re.search(r"<script|javascript:|\son\w+\s*=", page, re.IGNORECASE)
    # Written to the child, never about them by name.
    assert '<html lang="en">' in page and "<title>What you told us</title>" in page
    assert "<h1>What you told us</h1>" in page and "Robin" not in page
    assert "&lt;script&gt;" in page  # the child's words, shown as words
    assert "&lt;b&gt;matter&lt;/b&gt;" in page
    for name in set(archive.namelist()) - {"index.html"}:
        assert f'href="{quote(name)}"' in page

    obl = json.loads(archive.read("symbols.obl"))
    validate_obl(obl)
    [log] = obl["sessions"]
    assert log["id"] == session["id"]
    buttons = [(e["button_id"], e.get("ext_childvoice_mat_scale_value"))
               for e in log["events"] if e["type"] == "button"]
    assert buttons == [("happy", None), ("calm", None), ("happy", "like"),
                       ("worried", "not sure")]
    [utterance] = [e for e in log["events"] if e["type"] == "utterance"]
    assert utterance["text"] == "I feel happy I feel calm"
    assert "Robin" not in json.dumps(obl)

    # Exporting is recorded in the child's audit trail.
    trail = world.manager.get(f"/children/{world.child_id}/audit").json()["items"]
    assert "child.export" in [e["action"] for e in trail]


def test_only_the_team_manager_exports(world: World) -> None:
    assert_problem(world.worker.get(f"/children/{world.child_id}/export"), 403)
    for api in (world.other_manager, world.colleague, world.admin):
        assert_problem(api.get(f"/children/{world.child_id}/export"), 404)


def test_items_with_other_people_are_listed_but_withheld_until_cleared(
        world: World, shared: dict) -> None:
    session = world.open_session()
    tablet = world.capture(session)
    secret_words = "my brother took my tablet"
    withheld = tablet.post(f"/sessions/{session['id']}/entries", json=text_entry(
        secret_words, other_people=["older brother"])).json()
    assert withheld["other_people"] is True and withheld["other_people_who"] == ["older brother"]
    later = tablet.post(f"/sessions/{session['id']}/entries",
                        json=symbols_entry(world.board, ["sad"])).json()
    # The worker notices a parent's voice in the background of the second one.
    assert_problem(tablet.put(f"/entries/{later['id']}/other-people",
                              json={"other_people": True}), 403)
    r = world.worker.put(f"/entries/{later['id']}/other-people", json={"other_people": True})
    assert r.status_code == 200 and r.json()["other_people"] is True

    archive = export(world)
    entries = json.loads(archive.read("entries.json"))
    assert entries["entries"] == []
    assert {(w["id"], w["reason"]) for w in entries["withheld"]} == {
        (withheld["id"], "other_people_not_cleared"), (later["id"], "other_people_not_cleared")}
    everything = b"".join(archive.read(n) for n in archive.namelist()).decode()
    assert secret_words not in everything and "older brother" not in everything
    assert "Things we kept back" in archive.read("index.html").decode()
    assert json.loads(archive.read("symbols.obl"))["sessions"] == []

    # A worker clears one for the family; it is then in, the other stays withheld.
    assert_problem(world.manager.post(f"/entries/{withheld['id']}/family-clearance",
                                      json={"reason": "x"}), 403)
    r = world.worker.post(f"/entries/{withheld['id']}/family-clearance",
                          json={"reason": "Brother's parent agreed; nothing identifying."})
    assert r.status_code == 200 and r.json()["family_cleared_at"]
    entries = json.loads(export(world).read("entries.json"))
    assert [e["id"] for e in entries["entries"]] == [withheld["id"]]
    assert [w["id"] for w in entries["withheld"]] == [later["id"]]

    # Changing who is in it takes the clearance back.
    world.worker.put(f"/entries/{withheld['id']}/other-people",
                     json={"other_people": ["older brother", "a neighbour"]})
    entries = json.loads(export(world).read("entries.json"))
    assert entries["entries"] == []
    assert_problem(world.worker.post(f"/entries/{withheld['id']}/other-people",
                                     json={}), 405)


def test_withdrawn_share_family_leaves_the_export_not_the_record(
        world: World, shared: dict) -> None:
    session = world.open_session()
    entry = world.capture(session).post(f"/sessions/{session['id']}/entries",
                                        json=symbols_entry(world.board, ["worried"])).json()
    assert [e["id"] for e in json.loads(export(world).read("entries.json"))["entries"]] == \
        [entry["id"]]

    # Robin does not want the family to see any more.
    world.worker.post(f"/consents/{shared['id']}/withdraw",
                      json={"reason": "Robin asked that home does not see it."})
    archive = export(world)
    entries = json.loads(archive.read("entries.json"))
    assert entries["entries"] == [] and entries["withheld"] == []
    assert "worried" not in archive.read("index.html").decode()
    # Still in the statutory record.
    items = world.worker.get(f"/children/{world.child_id}/entries").json()["items"]
    assert [e["id"] for e in items] == [entry["id"]]


def _retention(settings, capsys, flag: str) -> str:  # noqa: ANN001
    assert cli.main(["retention", flag], settings=settings) == 0
    return capsys.readouterr().out


def test_retention_dry_run_and_apply(world: World, app, settings, capsys,
                                     monkeypatch) -> None:  # noqa: ANN001
    from app.services import background

    monkeypatch.setattr(settings, "webhook_url", "http://127.0.0.1:9/nothing-listens-here")
    monkeypatch.setattr(settings, "webhook_secret", "s")
    monkeypatch.setattr(settings, "webhook_max_attempts", 1)
    r = world.admin.post("/boards", json={
        "name": "Safe", "grid": {"rows": 1, "columns": 1, "order": [["hurt"]]},
        "buttons": [{"id": "hurt", "label": "hurt", "ext_childvoice_safeguarding": True}]})
    board = r.json()
    session = world.worker.post(f"/children/{world.child_id}/sessions",
                                json={"setting": "home", "board_ids": [board["id"]]}).json()
    world.capture(session).post(f"/sessions/{session['id']}/entries",
                                json=symbols_entry(board, ["hurt"]))
    assert background.run_once(app.state.engine, settings)["failed"] == 1
    world.client.post("/api/v1/auth/token", data={"username": "x@test.example.org",
                                                  "password": "wrong password"})
    world.worker.post("/auth/logout")

    out = _retention(settings, capsys, "--dry-run")
    assert "webhook_delivery: would remove 0 older than 90 days" in out
    assert "photo: would remove 0 older than 730 days" in out

    clock.set(datetime.now(timezone.utc) + timedelta(days=91))
    events_before = audit.verify(app.state.engine).checked
    out = _retention(settings, capsys, "--dry-run")
    assert "webhook_delivery: would remove 1 " in out
    assert "sign_in: would remove 2 " in out  # the account and the address counters
    assert "staff_session: would remove" in out
    with app.state.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM webhook_deliveries")).scalar() == 1

    out = _retention(settings, capsys, "--apply")
    assert "webhook_delivery: removed 1 " in out and "recorded as retention run" in out
    with app.state.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM webhook_deliveries")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM sign_in_throttles")).scalar() == 0
        assert conn.execute(text(
            "SELECT count(*) FROM staff_sessions WHERE revoked_at IS NOT NULL")).scalar() == 0
        [summary] = conn.execute(text("SELECT summary FROM retention_runs")).all()
    recorded = summary[0] if isinstance(summary[0], dict) else json.loads(summary[0])
    assert recorded["webhook_delivery"]["removed"] == 1 and recorded["webhook_delivery"]["ids"]
    # Audit events stay, and the chain is whole, with the run recorded on it.
    report = audit.verify(app.state.engine)
    assert report.ok and report.checked == events_before + 1
    # The alert itself (a child's record) is untouched.
    world.sign_in_again()
    assert len(world.worker.get("/alerts").json()["items"]) == 1


def test_entries_that_raised_an_alert_never_reach_the_export(world: World,
                                                            shared: dict) -> None:
    board = world.admin.post("/boards", json={
        "name": "Safe", "grid": {"rows": 1, "columns": 2, "order": [["hurt", "happy"]]},
        "buttons": [{"id": "hurt", "label": "hurt", "ext_childvoice_safeguarding": True},
                    {"id": "happy", "label": "happy"}]}).json()
    session = world.worker.post(f"/children/{world.child_id}/sessions",
                                json={"setting": "home", "board_ids": [board["id"]]}).json()
    tablet = world.capture(session)
    # Both under a consent that covers sharing with the family; one raises an alert.
    r = tablet.post(f"/sessions/{session['id']}/entries",
                    json=symbols_entry(board, ["happy", "hurt"]))
    assert r.status_code == 201 and r.json()["consent_id"] == shared["id"]
    happy = tablet.post(f"/sessions/{session['id']}/entries",
                        json=symbols_entry(board, ["happy"])).json()
    assert len(world.manager.get("/alerts").json()["items"]) == 1

    archive = export(world)
    entries = json.loads(archive.read("entries.json"))
    assert [e["id"] for e in entries["entries"]] == [happy["id"]]
    assert entries["withheld"] == []
    everything = b"".join(archive.read(n) for n in archive.namelist()).decode()
    assert "hurt" not in everything and "alert" not in everything.lower()
