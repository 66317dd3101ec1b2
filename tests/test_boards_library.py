"""The board library stays tidy: a re-import adds nothing it already has (a changed board
becomes a new version), admins archive and restore boards, the list filters and says who
made each board, and an import says what it fixed up."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

from tests.boards_support import import_bytes, make_zip, manifest, sample, simple_board
from tests.support import World, assert_problem, feelings_board_body
from tests.sync_support import Tablet, enroll


def _package(boards: dict[str, dict]) -> bytes:
    return make_zip({"manifest.json": manifest({k: f"boards/{k}.obf" for k in boards})} |
                    {f"boards/{k}.obf": b for k, b in boards.items()})


def _linked() -> dict[str, dict]:
    root = simple_board("root", ["more", "stop"])
    root["buttons"][0]["load_board"] = {"path": "boards/more.obf"}
    return {"root": root, "more": simple_board("more", ["yes", "no"])}


def test_importing_the_same_package_again_adds_nothing(world: World) -> None:
    first = import_bytes(world.admin, sample("links.obz"), "links.obz")
    assert first.status_code == 201, first.text
    ids = {b["source_id"]: b["id"] for b in first.json()["imported"]}
    library = world.admin.get("/boards").json()["items"]
    again = import_bytes(world.admin, sample("links.obz"), "links.obz")
    assert again.status_code == 200, again.text
    assert again.json()["imported"] == []
    assert {b["source_id"]: b["id"] for b in again.json()["already_imported"]} == ids
    assert all(b["version"] == 1 for b in again.json()["already_imported"])
    assert world.admin.get("/boards").json()["items"] == library


def test_a_changed_board_becomes_a_new_version_of_the_one_imported_before(
        world: World) -> None:
    boards = _linked()
    first = import_bytes(world.admin, _package(boards)).json()["imported"]
    ids = {b["source_id"]: b["id"] for b in first}
    boards["more"]["buttons"].append({"id": "2", "label": "maybe"})
    boards["more"]["grid"] = {"rows": 1, "columns": 3, "order": [["0", "1", "2"]]}
    r = import_bytes(world.admin, _package(boards))
    assert r.status_code == 201, r.text
    body = r.json()
    assert [(b["source_id"], b["id"], b["version"], b["previous_version"])
            for b in body["imported"]] == [("more", ids["more"], 2, 1)]
    assert [(b["source_id"], b["id"]) for b in body["already_imported"]] == [
        ("root", ids["root"])]
    more = world.worker.get(f"/boards/{ids['more']}").json()
    assert [b["label"] for b in more["buttons"]] == ["yes", "no", "maybe"]
    assert world.worker.get(f"/boards/{ids['more']}/versions/1").json()["buttons"][-1][
        "label"] == "no"
    # The root still links to the same board, so it needs no new version.
    root = world.worker.get(f"/boards/{ids['root']}").json()
    assert root["version"] == 1 and root["buttons"][0]["load_board"]["id"] == ids["more"]
    assert len(world.admin.get("/boards").json()["items"]) == 3  # world's board + 2
    # A board with the same id in another file, under another name, is another board.
    other = simple_board("more", ["red", "blue"]) | {"name": "Colours"}
    r = import_bytes(world.admin, json.dumps(other).encode(), "colours.obf")
    assert r.status_code == 201 and r.json()["imported"][0]["id"] not in ids.values()


def test_a_re_import_never_takes_a_safeguarding_mark_off(world: World) -> None:
    board = simple_board("feel", ["ok", "hurt"])
    board["buttons"][1]["ext_childvoice_safeguarding"] = True
    first = import_bytes(world.admin, json.dumps(board).encode(), "feel.obf").json()
    del board["buttons"][1]["ext_childvoice_safeguarding"]
    problem = assert_problem(import_bytes(world.admin, json.dumps(board).encode(), "feel.obf"),
                             422)
    assert "safeguarding" in problem["skipped"][0]["reason"]
    assert "change_reason" in problem["skipped"][0]["reason"]
    kept = world.worker.get(f"/boards/{first['imported'][0]['id']}").json()
    assert kept["version"] == 1 and kept["buttons"][1]["ext_childvoice_safeguarding"] is True


def test_admins_archive_and_restore_library_boards(world: World) -> None:
    board = world.board
    old_session = world.open_session()
    for caller in (world.worker, world.manager):
        assert_problem(caller.post(f"/boards/{board['id']}/archive"), 403)
    r = world.admin.post(f"/boards/{board['id']}/archive")
    assert r.status_code == 200, r.text
    assert r.json()["archived_at"]
    # Kept: its versions still read, and the session that offered it still does.
    assert world.worker.get(f"/boards/{board['id']}/versions/1").status_code == 200
    tablet = world.capture(old_session)
    assert tablet.get(f"/sessions/{old_session['id']}/boards").status_code == 200
    assert world.client.delete(f"/api/v1/boards/{board['id']}", headers={
        "Authorization": f"Bearer {world.admin.token}"}).status_code == 405
    # Not offered: not in the library list, not on tablets, not for a new session.
    assert world.worker.get("/boards").json()["items"] == []
    archived = world.worker.get("/boards", params={"archived": "true"}).json()["items"]
    assert [b["id"] for b in archived] == [board["id"]]
    assert archived[0]["archived_by"] == world.admin.user_id
    device = enroll(world.worker)
    tablet_boards = world.worker.get(f"/devices/{device['id']}/boards",
                                     headers={"X-Device-Key": device["device_key"]})
    assert tablet_boards.status_code == 200 and tablet_boards.json()["library"] == []
    problem = assert_problem(world.worker.post(f"/children/{world.child_id}/sessions", json={
        "setting": "home", "board_ids": [board["id"]]}), 422)
    assert problem["type"].endswith("/board-archived") and "archived" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "board_ids", 0]
    assert_problem(world.worker.post(f"/boards/{board['id']}/copy",
                                     json={"child_id": world.child_id}), 422)
    # Restored: offered again.
    r = world.admin.post(f"/boards/{board['id']}/restore")
    assert r.status_code == 200 and r.json()["archived_at"] is None
    assert [b["id"] for b in world.worker.get("/boards").json()["items"]] == [board["id"]]
    world.open_session()


def test_the_library_filters_and_says_who_made_each_board(world: World) -> None:
    food = world.admin.post("/boards", json=feelings_board_body("Food I like")).json()
    imported = import_bytes(world.admin, sample("foreign.obf"), "foreign.obf").json()[
        "imported"][0]
    world.admin.post(f"/boards/{food['id']}/archive")

    def names(**params: str) -> list[str]:
        r = world.worker.get("/boards", params=params)
        assert r.status_code == 200, r.text
        return [b["name"] for b in r.json()["items"]]

    assert names() == ["How I feel", imported["name"]]
    assert names(archived="true") == ["Food I like"]
    assert names(name="FOOD", archived="true") == ["Food I like"]
    assert names(name="feel") == ["How I feel"]
    assert names(name="%") == []  # a name, not a pattern
    assert names(source="imported") == [imported["name"]]
    assert names(source="made") == ["How I feel"]
    assert names(source_id="foreign") == [imported["name"]]
    assert names(owner=world.admin.user_id) == ["How I feel", imported["name"]]
    assert names(owner=world.worker.user_id) == []
    assert_problem(world.worker.get("/boards", params={"source": "stolen"}), 422)
    item = world.worker.get("/boards", params={"source": "imported"}).json()["items"][0]
    assert item["created_by"] == world.admin.user_id and item["created_by_name"] == "Admin"
    assert item["created_at"] and item["origin"] == "imported"
    assert item["source_id"] == "foreign" and item["archived_at"] is None


def test_an_import_names_every_fix_up_it_made(world: World) -> None:
    board = simple_board("fixed", ["a", "b"])
    board["grid"]["order"] = [["0", "ghost"]]
    board["buttons"][0] |= {"background_color": "not a colour", "image_id": "nowhere"}
    board["buttons"][1]["load_board"] = {"path": "boards/elsewhere.obf"}
    board["images"] = [{"id": "pic", "path": "images/pic.png",
                        "url": "https://example.org/pic.png"}]
    board["version"] = 3
    package = make_zip({"manifest.json": manifest({"fixed": "boards/fixed.obf"}),
                        "boards/fixed.obf": board, "images/pic.png": b"not a picture"})
    r = import_bytes(world.admin, package)
    assert r.status_code == 201, r.text
    notes = r.json()["imported"][0]["notes"]
    expected = ["grid cell [0][1] named button 'ghost'", "background_color 'not a colour'",
                "named image 'nowhere'", "linked to a board that is not in this import",
                "image 'pic': its bytes were left out", "field 'version' was left out"]
    for words in expected:
        assert any(words in note for note in notes), (words, notes)
    # The board itself keeps them, for whoever looks at it later.
    stored = world.worker.get(f"/boards/{r.json()['imported'][0]['id']}").json()
    assert stored["import_notes"] == notes
    assert stored["grid"]["order"] == [["0", None]]
    clean = import_bytes(world.admin, json.dumps(simple_board("clean", ["x"])).encode(),
                         "clean.obf")
    assert clean.json()["imported"][0]["notes"] == []


def test_a_session_recorded_offline_before_the_board_was_archived_still_lands(
        world: World) -> None:
    device = enroll(world.worker)
    tablet = Tablet(world.worker, device)
    started = datetime.now(timezone.utc) - timedelta(hours=2)
    assert world.admin.post(f"/boards/{world.board['id']}/archive").status_code == 200

    def session_item(at: datetime) -> dict:
        return {"type": "session", "client_id": str(uuid.uuid4()), "child_id": world.child_id,
                "setting": "home", "board_ids": [world.board["id"]],
                "started_at": at.isoformat()}

    r = tablet.send([session_item(started), session_item(datetime.now(timezone.utc))])
    assert r.status_code == 200, r.text
    before, after = r.json()["results"]
    assert before["status"] == "created", before
    assert after["status"] == "rejected" and "archived" in after["problem"]["detail"], after
