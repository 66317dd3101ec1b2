"""Boards offline: a session's boards and a device's boards come whole, with an ETag, and
an unchanged set costs a 304."""

import uuid

from app.core.db import new_session
from app.models.board import BoardWrite
from app.services.boards.library import add_board
from tests.support import World, assert_problem, feelings_board_body
from tests.sync_support import Tablet, enroll


def test_session_boards_answer_304_while_unchanged(world: World) -> None:
    session = world.open_session()
    tablet = world.capture(session)
    path = f"/sessions/{session['id']}/boards"
    first = tablet.get(path)
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert tag.startswith('"') and first.headers["cache-control"] == "private, no-cache"
    body = first.json()
    assert body["boards"][0]["buttons"] and body["board_preferences"]["symbol_size"]
    again = tablet.get(path, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    assert tablet.get(path, headers={"If-None-Match": f'W/{tag}, "other"'}).status_code == 304
    assert tablet.get(path, headers={"If-None-Match": '"stale"'}).status_code == 200
    # A new version of the board leaves what this session offers pinned, and says a newer
    # version exists.
    assert world.admin.put(f"/boards/{world.board['id']}",
                           json=feelings_board_body("How I feel now")).status_code == 200
    newer = tablet.get(path, headers={"If-None-Match": tag})
    assert newer.status_code == 200 and newer.headers["etag"] != tag
    board = newer.json()["boards"][0]
    assert (board["version"], board["latest_version"], board["name"]) == (1, 2, "How I feel")
    tag = newer.headers["etag"]
    assert tablet.get(path, headers={"If-None-Match": tag}).status_code == 304
    # The child's board preferences change it too.
    assert world.worker.patch(f"/children/{world.child_id}", json={
        "board_preferences": {"symbol_size": "extra_large"}}).status_code == 200
    changed = tablet.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert changed.json()["board_preferences"]["symbol_size"] == "extra_large"
    assert_problem(world.other_worker.get(path), 404)


def test_device_boards_carry_everything_for_each_held_child(world: World, app) -> None:  # noqa: ANN001
    device = enroll(world.worker)
    tablet = Tablet(world.worker, device)
    # A personal board (no API makes these yet; built here as the world's furniture).
    with new_session(app.state.engine) as db:
        personal, _ = add_board(db, BoardWrite.model_validate(feelings_board_body("My people")),
                                None, owner_child_id=uuid.UUID(world.child_id))
        db.commit()
    path = f"/devices/{device['id']}/boards"
    first = world.worker.get(path, headers=tablet.headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [c["child_id"] for c in body["children"]] == [world.child_id]
    assert body["children"][0]["board_preferences"]["symbol_size"] == "large"
    assert [b["id"] for b in body["children"][0]["boards"]] == [str(personal.id)]
    assert [b["id"] for b in body["library"]] == [world.board["id"]]
    assert body["library"][0]["buttons"] and body["library"][0]["grid"]
    tag = first.headers["etag"]
    assert world.worker.get(path, headers=tablet.headers | {"If-None-Match": tag}) \
        .status_code == 304
    # A new library version changes the set.
    assert world.admin.put(f"/boards/{world.board['id']}",
                           json=feelings_board_body("How I feel now")).status_code == 200
    second = world.worker.get(path, headers=tablet.headers | {"If-None-Match": tag})
    assert second.status_code == 200 and second.json()["library"][0]["version"] == 2
    assert second.json()["library"][0]["name"] == "How I feel now"
    assert second.headers["etag"] != tag
    # The device key is required, and only the device's worker may use it.
    assert_problem(world.worker.get(path), 401)
    assert_problem(world.colleague.get(path, headers=tablet.headers), 403)
    # A child moved to someone else leaves the tablet's set.
    assert world.manager.post(f"/children/{world.child_id}/allocations",
                              json={"user_id": world.colleague.user_id}).status_code == 201
    assert world.worker.get(path, headers=tablet.headers).json()["children"] == []
