"""The board library is not everyone's to change: library boards are the admins', a worker
copies one into a child's personal boards to adapt it, a safeguarding mark comes off only
with an admin and a reason, every board write is audited, a board body carries only the
fields a board has, and an import never holds the database while it decodes pictures."""

from __future__ import annotations

from copy import deepcopy
import io
import threading
import uuid

import pytest
from PIL import Image
from sqlmodel import select

from app.core.db import new_session
from app.models.audit import AuditEvent
from app.models.board import BoardVersion
from app.services.boards.starter import install_starter
from app.services.media import photos
from tests.boards_support import import_bytes, make_zip, manifest, simple_board
from tests.support import World, assert_problem, feelings_board_body
from tests.sync_support import enroll

MARK = "ext_childvoice_safeguarding"


def _marked_board(name: str = "How I feel") -> dict:
    body = feelings_board_body(name)
    for button in body["buttons"]:
        if button["id"] in ("scared", "worried"):
            button[MARK] = True
    return body


def _events(app, action_prefix: str = "board.") -> list[AuditEvent]:  # noqa: ANN001
    with new_session(app.state.engine) as db:
        return list(db.exec(select(AuditEvent).where(AuditEvent.action.startswith(
            action_prefix)).order_by(AuditEvent.id)))


def _starter_feelings(app, world: World) -> dict:  # noqa: ANN001
    with new_session(app.state.engine) as db:
        install_starter(db, app.state.settings, app.state.media_store)
    for item in world.worker.get("/boards", params={"limit": 100}).json()["items"]:
        board = world.worker.get(f"/boards/{item['id']}").json()
        if board.get("ext_childvoice_starter") == "feelings":
            return board
    raise AssertionError("the starter feelings board is not in the library")


def _writable(board: dict) -> dict:
    """A board as read, made a body to write back: without the fields the server sets."""
    server = {"format", "id", "version", "latest_version", "owner_child_id", "created_at",
              "created_by", "origin", "source_id", "copy_of_board_id", "copy_of_version",
              "archived_at", "import_notes", "change_reason", "safeguarding_changes"}
    body = {k: deepcopy(v) for k, v in board.items() if k not in server}
    for kind in ("images", "sounds"):
        for item in body[kind]:
            item.pop("ext_childvoice_url", None)
    return body


def test_only_admins_change_library_boards(world: World, app) -> None:  # noqa: ANN001
    starter = _starter_feelings(app, world)
    assert any(b.get(MARK) for b in starter["buttons"])
    unmarked = _writable(starter)
    for button in unmarked["buttons"]:
        button.pop(MARK, None)
    for board, body in ((world.board, feelings_board_body("Mine now")), (starter, unmarked)):
        for caller in (world.worker, world.colleague, world.manager, world.other_worker):
            problem = assert_problem(caller.put(f"/boards/{board['id']}", json=body), 403)
            assert "copy" in problem["detail"]
        after = world.worker.get(f"/boards/{board['id']}").json()
        assert after["version"] == 1 and after["name"] == board["name"]
    # New library boards too are the admins' to add.
    assert_problem(world.worker.post("/boards", json=feelings_board_body("Extra")), 403)
    assert world.admin.put(f"/boards/{world.board['id']}",
                           json=feelings_board_body("How I feel today")).status_code == 200
    # A child's personal board stays its allocated worker's to change.
    copy = world.worker.post(f"/boards/{starter['id']}/copy",
                             json={"child_id": world.child_id}).json()
    renamed = _writable(copy) | {"name": "Robin's feelings"}
    r = world.worker.put(f"/boards/{copy['id']}", json=renamed)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    assert_problem(world.colleague.put(f"/boards/{copy['id']}", json=renamed), 404)
    assert_problem(world.manager.put(f"/boards/{copy['id']}", json=renamed), 403)


def test_a_worker_copies_a_library_board_into_a_childs_boards(world: World,
                                                              app) -> None:  # noqa: ANN001
    starter = _starter_feelings(app, world)
    r = world.worker.post(f"/boards/{starter['id']}/copy",
                          json={"child_id": world.child_id, "name": "Robin's feelings"})
    assert r.status_code == 201, r.text
    copy = r.json()
    assert copy["owner_child_id"] == world.child_id and copy["name"] == "Robin's feelings"
    assert copy["origin"] == "copy" and copy["copy_of_board_id"] == starter["id"]
    assert copy["copy_of_version"] == 1 and copy["id"] != starter["id"]
    # The same buttons, pictures and safeguarding marks as the library board.
    assert [(b["id"], b.get(MARK)) for b in copy["buttons"]] == \
        [(b["id"], b.get(MARK)) for b in starter["buttons"]]
    picture = copy["images"][0]["ext_childvoice_url"].removeprefix("/api/v1")
    assert world.worker.get(picture).status_code == 200
    assert [b["id"] for b in world.worker.get(f"/children/{world.child_id}/boards").json()] \
        == [copy["id"]]
    # The library board is as it was; the copy is offered in the child's sessions.
    assert world.worker.get("/boards", params={"source": "copy"}).json()["items"] == []
    session = world.worker.post(f"/children/{world.child_id}/sessions", json={
        "setting": "home", "board_ids": [copy["id"]]})
    assert session.status_code == 201, session.text
    # Access is checked for the child: others cannot copy for them, or see the copy.
    for caller, status in ((world.colleague, 404), (world.other_worker, 404),
                           (world.manager, 403), (world.admin, 404)):
        assert_problem(caller.post(f"/boards/{starter['id']}/copy",
                                   json={"child_id": world.child_id}), status)
    assert_problem(world.worker.post(f"/boards/{uuid.uuid4()}/copy",
                                     json={"child_id": world.child_id}), 404)
    trail = world.manager.get(f"/children/{world.child_id}/audit").json()["items"]
    assert "board.copy" in [e["action"] for e in trail]
    assert next(e for e in trail if e["action"] == "board.copy")["object_id"] == copy["id"]


def test_a_safeguarding_mark_comes_off_only_with_an_admin_and_a_reason(
        world: World, app) -> None:  # noqa: ANN001
    board = world.admin.post("/boards", json=_marked_board()).json()
    unmarked = _marked_board()
    for button in unmarked["buttons"]:
        if button["id"] == "scared":
            button.pop(MARK)
        if button["id"] == "worried":
            button[MARK] = "maybe"  # not `true`: it would raise no alert
    problem = assert_problem(world.admin.put(f"/boards/{board['id']}", json=unmarked), 422)
    assert problem["errors"][0]["loc"] == ["body", "change_reason"]
    assert "change_reason" in problem["detail"] and "scared" in problem["detail"]
    assert world.worker.get(f"/boards/{board['id']}").json()["version"] == 1
    reason = "Duplicate of the council's own worry board; marks kept there"
    r = world.admin.put(f"/boards/{board['id']}", json=unmarked | {"change_reason": reason})
    assert r.status_code == 200, r.text
    saved = r.json()
    assert saved["version"] == 2 and saved["change_reason"] == reason
    assert "change_reason" not in world.admin.get(f"/boards/{board['id']}/export.obf").json()
    assert sorted((c["button_id"], c["before"], c["after"])
                  for c in saved["safeguarding_changes"]) == [
        ("scared", True, None), ("worried", True, "maybe")]
    marks = [e for e in _events(app, "board.safeguarding_mark")]
    assert sorted((e.action, e.object_type, e.object_id) for e in marks) == [
        ("board.safeguarding_mark.change", "board_button", "worried"),
        ("board.safeguarding_mark.remove", "board_button", "scared")]
    assert all(e.child_id is None and e.actor_role == "admin" for e in marks)
    update = next(e for e in _events(app, "board.update"))
    assert update.object_id == board["id"] and update.request_id == marks[0].request_id
    # Adding a mark takes no reason; version 1 keeps its marks for the entries made on it.
    assert world.admin.put(f"/boards/{board['id']}", json=_marked_board()).status_code == 200
    first = world.worker.get(f"/boards/{board['id']}/versions/1").json()
    assert [b["id"] for b in first["buttons"] if b.get(MARK) is True] == ["scared", "worried"]


def test_a_personal_copy_keeps_its_safeguarding_marks(world: World,
                                                      app) -> None:  # noqa: ANN001
    library = world.admin.post("/boards", json=_marked_board()).json()
    copy = world.worker.post(f"/boards/{library['id']}/copy",
                             json={"child_id": world.child_id}).json()
    for change in ("unmark", "drop the button"):
        body = _writable(copy) | {"change_reason": "Robin never uses it"}
        if change == "unmark":
            next(b for b in body["buttons"] if b["id"] == "scared").pop(MARK)
        else:
            body["buttons"] = [b for b in body["buttons"] if b["id"] != "scared"]
            body["grid"]["order"] = [[c if c != "scared" else None for c in row]
                                     for row in body["grid"]["order"]]
        problem = assert_problem(world.worker.put(f"/boards/{copy['id']}", json=body), 403)
        assert "admin" in problem["detail"] and "scared" in problem["detail"]
    assert world.worker.get(f"/boards/{copy['id']}").json()["version"] == 1
    # A worker may add a mark to the child's own board, and relabel a marked button.
    body = _writable(copy)
    for button in body["buttons"]:
        if button["id"] == "sad":
            button[MARK] = True
        if button["id"] == "scared":
            button["label"] = "frightened"
    r = world.worker.put(f"/boards/{copy['id']}", json=body)
    assert r.status_code == 200, r.text
    assert {b["id"] for b in r.json()["buttons"] if b.get(MARK) is True} == {
        "sad", "scared", "worried"}
    # The personal board's trail names the board, never its buttons (they may name people).
    assert not [e for e in _events(app, "board.safeguarding_mark") if e.child_id is not None]


def test_every_board_create_change_import_and_archive_is_audited(world: World,
                                                                 app) -> None:  # noqa: ANN001
    board = world.admin.post("/boards", json=feelings_board_body("Weekend")).json()
    world.admin.put(f"/boards/{board['id']}", json=feelings_board_body("Weekends"))
    imported = import_bytes(world.admin, make_zip({
        "manifest.json": manifest({"a": "a.obf"}), "a.obf": simple_board("a", ["yes", "no"])}))
    assert imported.status_code == 201, imported.text
    imported_id = imported.json()["imported"][0]["id"]
    world.admin.post(f"/boards/{board['id']}/archive")
    world.admin.post(f"/boards/{board['id']}/restore")
    events = [(e.action, e.object_type, e.object_id, e.child_id, e.actor_id)
              for e in _events(app) if e.object_id in (board["id"], imported_id)]
    admin = uuid.UUID(world.admin.user_id)
    assert events == [("board.create", "board", board["id"], None, admin),
                      ("board.update", "board", board["id"], None, admin),
                      ("board.import", "board", imported_id, None, admin),
                      ("board.archive", "board", board["id"], None, admin),
                      ("board.restore", "board", board["id"], None, admin)]
    # A personal board's writes are in its child's trail.
    copy = world.worker.post(f"/boards/{board['id']}/copy",
                             json={"child_id": world.child_id}).json()
    world.worker.put(f"/boards/{copy['id']}", json=feelings_board_body("Robin's weekends"))
    trail = [e["action"] for e in world.manager.get(
        f"/children/{world.child_id}/audit").json()["items"] if e["object_id"] == copy["id"]]
    assert trail == ["board.update", "board.copy"]


@pytest.mark.parametrize("field", ["id", "version", "latest_version", "created_at",
                                   "owner_child_id", "format", "colour_scheme"])
def test_a_board_body_with_fields_a_board_does_not_have_is_refused(
        world: World, app, field: str) -> None:  # noqa: ANN001
    values = {"id": str(uuid.uuid4()), "version": 7, "latest_version": 7,
              "created_at": "2026-01-01T00:00:00Z", "owner_child_id": world.child_id,
              "format": "open-board-0.1", "colour_scheme": "dark"}
    body = feelings_board_body("Sneaky") | {field: values[field]}
    before = world.admin.get("/boards").json()["items"]
    for caller, method, path in (
            (world.admin, "post", "/boards"),
            (world.admin, "put", f"/boards/{world.board['id']}"),
            (world.worker, "post", f"/children/{world.child_id}/boards")):
        problem = assert_problem(getattr(caller, method)(path, json=body), 422)
        assert field in problem["detail"], problem
    assert world.admin.get("/boards").json()["items"] == before
    assert world.worker.get(f"/children/{world.child_id}/boards").json() == []
    assert world.worker.get(f"/boards/{world.board['id']}").json()["version"] == 1
    # Every tablet still reads its boards.
    device = enroll(world.worker)
    r = world.worker.get(f"/devices/{device['id']}/boards",
                         headers={"X-Device-Key": device["device_key"]})
    assert r.status_code == 200, r.text
    assert [b["name"] for b in r.json()["library"]] == ["How I feel"]


def test_extension_fields_are_kept_and_old_bad_versions_still_read(world: World,
                                                                   app) -> None:  # noqa: ANN001
    body = feelings_board_body("With extensions") | {
        "ext_council_theme": {"contrast": "high"}, "description_html": "<p>Feelings</p>"}
    body["buttons"][0]["ext_council_sign"] = "makaton:happy"
    r = world.admin.post("/boards", json=body)
    assert r.status_code == 201, r.text
    board = world.worker.get(f"/boards/{r.json()['id']}").json()
    assert board["ext_council_theme"] == {"contrast": "high"}
    assert board["buttons"][0]["ext_council_sign"] == "makaton:happy"
    # A version stored before such bodies were refused reads, on its own and on tablets.
    with new_session(app.state.engine) as db:
        version = db.exec(select(BoardVersion).where(
            BoardVersion.board_id == uuid.UUID(world.board["id"]))).one()
        version.content = version.content | {"id": "x", "version": 99, "created_at": "soon",
                                              "owner_child_id": str(uuid.uuid4())}
        db.add(version)
        db.commit()
    r = world.worker.get(f"/boards/{world.board['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == world.board["id"] and r.json()["version"] == 1
    exported = world.worker.get(f"/boards/{world.board['id']}/export.obf").json()
    assert exported["id"] == world.board["id"] and "version" not in exported
    device = enroll(world.worker)
    r = world.worker.get(f"/devices/{device['id']}/boards",
                         headers={"X-Device-Key": device["device_key"]})
    assert r.status_code == 200, r.text


def _png(seed: int, size: int = 600) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((size, size), 40 + seed).convert("RGB").save(out, "PNG")
    return out.getvalue()


def test_an_import_decodes_its_pictures_before_it_takes_a_connection(
        world: World, app, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """While the import decodes its pictures no database connection is held (SQLite has
    one): another request that reads the database answers before the import ends."""
    boards = {f"b{i}.obf": simple_board(f"b{i}", ["picture"]) | {
        "images": [{"id": "1", "path": f"images/{i}.png"}]} for i in range(3)}
    for board in boards.values():
        board["buttons"][0]["image_id"] = "1"
    package = make_zip({"manifest.json": manifest({k: k for k in boards})} | boards |
                       {f"images/{i}.png": _png(i) for i in range(3)})
    real = photos.check_and_clean_photo
    calls: list[int] = []
    held: list[int] = []
    decoding, release = threading.Event(), threading.Event()
    order: list[str] = []

    def watched(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        held.append(app.state.engine.pool.checkedout())
        if len(calls) == 3:  # the last picture: two are cleaned already
            decoding.set()
            release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(photos, "check_and_clean_photo", watched)
    result: dict = {}

    def run_import() -> None:
        result["response"] = import_bytes(world.admin, package)
        order.append("import")

    importer = threading.Thread(target=run_import)
    importer.start()
    try:
        assert decoding.wait(60), "the import never reached its last picture"
        assert app.state.engine.pool.checkedout() == 0, \
            "the import holds a database connection while it decodes pictures"
        me = world.worker.get("/users/me")
        order.append("users/me")
    finally:
        release.set()
        importer.join(60)
    assert me.status_code == 200 and me.json()["id"] == world.worker.user_id
    assert order == ["users/me", "import"]
    assert held == [0, 0, 0]
    assert result["response"].status_code == 201, result["response"].text
    assert len(result["response"].json()["imported"]) == 3
