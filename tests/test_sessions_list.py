"""A child's sessions can be listed and read back: newest first, with who ran them, where,
why, the boards pinned and what was captured; access-checked and audited like the rest.
A session offers at least one board, each once."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.support import World, assert_problem, symbols_entry
from tests.sync_support import Tablet, enroll


def _actions(world: World) -> list[str]:
    r = world.manager.get(f"/children/{world.child_id}/audit", params={"limit": 200})
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()["items"]]


def _visit(world: World) -> tuple[dict, dict]:
    """An online session with two symbols entries (one retracted) and an observation, then
    a newer offline one with one text entry."""
    online = world.open_session()
    child = world.capture(online)
    first = child.post(f"/sessions/{online['id']}/entries",
                       json=symbols_entry(world.board, ["happy"]))
    assert first.status_code == 201, first.text
    assert child.post(f"/sessions/{online['id']}/entries",
                      json=symbols_entry(world.board, ["sad"])).status_code == 201
    assert world.worker.post(f"/sessions/{online['id']}/entries", json={
        "kind": "observation", "client_id": str(uuid.uuid4()), "source": "adult_interpretation",
        "captured_at": datetime.now(timezone.utc).isoformat(),
        "text": "Smiled at the swing"}).status_code == 201
    tablet = Tablet(world.worker, enroll(world.worker))
    r = tablet.send([{"type": "retract", "client_id": str(uuid.uuid4()),
                      "entry_client_id": first.json()["client_id"],
                      "retracted_at": datetime.now(timezone.utc).isoformat()}])
    assert r.json()["results"][0]["status"] == "created", r.text
    assert world.worker.post(f"/sessions/{online['id']}/end").status_code == 200

    later = datetime.now(timezone.utc) + timedelta(seconds=1)
    offline = {"type": "session", "client_id": str(uuid.uuid4()), "child_id": world.child_id,
               "setting": "school", "purpose": "Playtime", "board_ids": [world.board["id"]],
               "started_at": later.isoformat()}
    text = {"type": "entry", "session_client_id": offline["client_id"], "kind": "text",
            "client_id": str(uuid.uuid4()), "captured_at": later.isoformat(),
            "source": "child_direct", "text": "I like the slide"}
    r = tablet.send([offline, text])
    assert [x["status"] for x in r.json()["results"]] == ["created", "created"], r.text
    return online, r.json()["results"][0]["session"]


def test_a_childs_sessions_newest_first_with_boards_and_counts(world: World) -> None:
    online, offline = _visit(world)
    r = world.worker.get(f"/children/{world.child_id}/sessions")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [s["id"] for s in items] == [offline["id"], online["id"]]
    newer, older = items
    assert newer["status"] == "open" and newer["setting"] == "school"
    assert newer["purpose"] == "Playtime" and newer["client_id"] == offline["client_id"]
    assert newer["entry_counts"] == {"total": 1, "by_status": {"active": 1},
                                     "by_kind": {"text": 1}, "by_source": {"child_direct": 1}}
    assert older["status"] == "ended" and older["ended_at"]
    assert older["worker_id"] == world.worker.user_id and older["worker_name"] == "Worker"
    assert older["boards"] == [{"board_id": world.board["id"],
                                "version": world.board["version"], "name": "How I feel",
                                "linked_from": None}]
    counts = older["entry_counts"]
    assert counts["total"] == 3
    assert counts["by_status"] == {"active": 2, "retracted": 1}
    assert counts["by_kind"] == {"symbols": 2, "observation": 1}
    assert counts["by_source"] == {"child_direct": 2, "adult_interpretation": 1}
    assert "capture_token" not in newer

    first = world.worker.get(f"/children/{world.child_id}/sessions", params={"limit": 1}).json()
    assert [s["id"] for s in first["items"]] == [offline["id"]] and first["next_cursor"]
    rest = world.worker.get(f"/children/{world.child_id}/sessions",
                            params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [s["id"] for s in rest["items"]] == [online["id"]] and rest["next_cursor"] is None
    assert "session.list" in _actions(world)


def test_a_session_is_read_back(world: World) -> None:
    online, _ = _visit(world)
    r = world.manager.get(f"/sessions/{online['id']}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == online["id"] and body["status"] == "ended"
    assert body["capture_token"] is None
    assert body["worker_name"] == "Worker" and body["purpose"] == "feelings"
    assert [b["id"] for b in body["boards"]] == [world.board["id"]]
    assert body["boards"][0]["buttons"]  # the pinned version, as the child saw it
    assert body["entry_counts"]["total"] == 3
    assert "session.read" in _actions(world)


def test_only_those_who_may_see_the_child_list_or_read_its_sessions(world: World) -> None:
    session = world.open_session()
    for api in (world.other_worker, world.other_manager, world.colleague):
        assert_problem(api.get(f"/children/{world.child_id}/sessions"), 404)
        assert_problem(api.get(f"/sessions/{session['id']}"), 404)
    assert_problem(world.admin.get(f"/sessions/{session['id']}"), 404)
    assert world.manager.get(f"/children/{world.child_id}/sessions").status_code == 200
    child_mode = world.capture(session)
    assert_problem(child_mode.get(f"/sessions/{session['id']}"), 403)
    assert_problem(child_mode.get(f"/children/{world.child_id}/sessions"), 403)
    assert_problem(world.worker.get(f"/sessions/{uuid.uuid4()}"), 404)


@pytest.mark.parametrize("board_ids, why", [([], "at least"), (None, "board_ids"),
                                            ("twice", "twice")])
def test_a_session_offers_at_least_one_board_each_once(world: World, board_ids, why) -> None:  # noqa: ANN001
    body = {"setting": "home"}
    if board_ids == "twice":
        body["board_ids"] = [world.board["id"], world.board["id"]]
    elif board_ids is not None:
        body["board_ids"] = board_ids
    problem = assert_problem(world.worker.post(f"/children/{world.child_id}/sessions",
                                               json=body), 422)
    assert why in problem["detail"] or why in str(problem["errors"])
    tablet = Tablet(world.worker, enroll(world.worker))
    item = {"type": "session", "client_id": str(uuid.uuid4()), "child_id": world.child_id,
            "setting": "home", "started_at": datetime.now(timezone.utc).isoformat()} | \
        ({"board_ids": body["board_ids"]} if "board_ids" in body else {})
    result = tablet.send([item]).json()["results"][0]
    assert result["status"] == "rejected" and result["problem"]["status"] == 422
    assert world.worker.get(f"/children/{world.child_id}/sessions").json()["items"] == []
