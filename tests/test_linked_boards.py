"""Entries on any board reachable by links (`load_board`) from the boards offered: the
linked boards are pinned when the session opens, listed with the session's boards so the
tablet can open them offline, and child mode can read their pictures."""

import uuid
from datetime import datetime, timedelta, timezone

from tests.boards_support import import_bytes, sample
from tests.support import World, assert_problem, symbols_entry
from tests.sync_support import Tablet, enroll


def _library(world: World) -> dict[str, dict]:
    """lots_of_stuff.obz: its root links to four boards, one of them on to a fifth."""
    r = import_bytes(world.admin, sample("lots_of_stuff.obz"), "lots_of_stuff.obz")
    assert r.status_code == 201, r.text
    return {b["source_id"]: world.admin.get(f"/boards/{b['id']}").json()
            for b in r.json()["imported"]}


def _reachable(boards: dict[str, dict], root: str) -> set[str]:
    by_id = {b["id"]: b for b in boards.values()}
    seen, queue = {boards[root]["id"]}, [boards[root]["id"]]
    while queue:
        for button in by_id[queue.pop()]["buttons"]:
            target = (button.get("load_board") or {}).get("id")
            if target in by_id and target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def test_linked_boards_are_pinned_listed_and_take_entries(world: World) -> None:
    boards = _library(world)
    root = boards["lots_of_stuff"]
    reachable = _reachable(boards, "lots_of_stuff")
    assert len(reachable) > 2
    r = world.worker.post(f"/children/{world.child_id}/sessions",
                          json={"setting": "home", "board_ids": [root["id"]]})
    assert r.status_code == 201, r.text
    session = r.json()
    child = world.capture(session)

    listed = child.get(f"/sessions/{session['id']}/boards").json()["boards"]
    assert listed[0]["id"] == root["id"] and listed[0]["linked_from"] is None
    assert {b["id"] for b in listed} == reachable
    assert {b["linked_from"] for b in listed[1:]} == {root["id"]}

    inline = boards["inline_images"]
    pinned = next(b for b in listed if b["id"] == inline["id"])
    image = next(i for i in pinned["images"] if i.get("ext_childvoice_url"))
    assert child.get(image["ext_childvoice_url"].removeprefix("/api/v1")).status_code == 200

    # An entry on a linked board is the child's words like any other.
    r = child.post(f"/sessions/{session['id']}/entries", json=symbols_entry(
        inline, [inline["buttons"][0]["id"]]))
    assert r.status_code == 201, r.text
    assert r.json()["board_id"] == inline["id"]

    # Pinned when the session opened: a later version of a linked board is not offered.
    body = {k: inline[k] for k in ("name", "locale", "grid", "buttons", "images", "sounds")
            if k in inline}
    assert world.admin.put(f"/boards/{inline['id']}", json=body).status_code == 200
    again = child.get(f"/sessions/{session['id']}/boards").json()["boards"]
    assert next(b for b in again if b["id"] == inline["id"])["version"] == 1

    listed_sessions = world.worker.get(f"/children/{world.child_id}/sessions").json()["items"]
    refs = listed_sessions[0]["boards"]
    assert refs[0]["linked_from"] is None and len(refs) == len(reachable)


def test_a_board_not_reachable_stays_refused(world: World) -> None:
    boards = _library(world)
    session = world.open_session()   # offers only the feelings board
    inline = boards["inline_images"]
    problem = assert_problem(world.capture(session).post(
        f"/sessions/{session['id']}/entries",
        json=symbols_entry(inline, [inline["buttons"][0]["id"]])), 422)
    assert "board_id" in str(problem["errors"][0]["loc"])


def test_a_session_started_offline_pins_linked_boards_too(world: World) -> None:
    boards = _library(world)
    root, inline = boards["lots_of_stuff"], boards["inline_images"]
    tablet = Tablet(world.worker, enroll(world.worker))
    at = datetime.now(timezone.utc) - timedelta(minutes=10)
    session = {"type": "session", "client_id": str(uuid.uuid4()), "child_id": world.child_id,
               "setting": "home", "board_ids": [root["id"]], "started_at": at.isoformat()}
    entry = {"type": "entry", "session_client_id": session["client_id"]} | symbols_entry(
        inline, [inline["buttons"][0]["id"]], captured_at=(at + timedelta(minutes=1))
        .isoformat())
    results = tablet.send([session, entry]).json()["results"]
    assert [x["status"] for x in results] == ["created", "created"], results
    assert inline["id"] in {b["id"] for b in results[0]["session"]["boards"]}
