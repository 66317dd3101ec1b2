"""Boards keep the Open Board Format's shape; versions never change once written."""

from tests.support import World, assert_problem, feelings_board_body, symbols_entry


def test_board_versions_are_immutable_and_entries_keep_their_meaning(world: World) -> None:
    board = world.board
    assert board["format"] == "open-board-0.1" and board["version"] == 1
    session = world.open_session()
    tablet = world.capture(session)
    before = tablet.post(f"/sessions/{session['id']}/entries",
                         json=symbols_entry(board, ["happy"])).json()

    # The board is edited: "happy" now says something else, and a button is added.
    body = feelings_board_body()
    body["buttons"][0]["vocalization"] = "Brilliant!"
    body["buttons"].append({"id": "excited", "label": "excited"})
    body["grid"] = {"rows": 1, "columns": 7, "order": [[b["id"] for b in body["buttons"]]]}
    r = world.admin.put(f"/boards/{board['id']}", json=body)
    assert r.status_code == 200 and r.json()["version"] == 2
    assert world.worker.get(f"/boards/{board['id']}").json()["version"] == 2
    v1 = world.worker.get(f"/boards/{board['id']}/versions/1").json()
    assert v1["buttons"][0]["vocalization"] == "I feel happy" and len(v1["buttons"]) == 6
    assert v1["latest_version"] == 2
    assert_problem(world.worker.get(f"/boards/{board['id']}/versions/3"), 404)

    # What the child chose keeps its words; the open session still offers version 1.
    assert world.worker.get(f"/entries/{before['id']}").json()["choices"][0]["vocalization"] \
        == "I feel happy"
    assert tablet.get(f"/sessions/{session['id']}/boards").json()["boards"][0]["version"] == 1
    assert_problem(tablet.post(f"/sessions/{session['id']}/entries",
                               json=symbols_entry(board, ["excited"])), 422)
    # A new session offers version 2, where "excited" exists.
    newer = world.open_session()
    r = world.capture(newer).post(f"/sessions/{newer['id']}/entries",
                                  json=symbols_entry(board | {"version": 2}, ["excited"]))
    assert r.status_code == 201 and r.json()["board_version"] == 2


def test_obf_details_survive(world: World) -> None:
    body = feelings_board_body("Colours")
    body["buttons"][0] |= {"background_color": "rgb(255, 0, 0)", "image_id": "7",
                           "ext_childvoice_safeguarding": True}
    body["images"] = [{"id": 7, "url": "https://example.org/red.png", "content_type": "image/png",
                       "license": {"type": "CC0", "author_name": "Someone"}}]
    r = world.admin.post("/boards", json=body)
    assert r.status_code == 201, r.text
    board = world.worker.get(f"/boards/{r.json()['id']}").json()
    assert board["images"][0]["id"] == "7"  # numeric ids become strings
    assert board["buttons"][0]["ext_childvoice_safeguarding"] is True
    assert board["buttons"][0]["background_color"] == "rgb(255, 0, 0)"
    assert board["images"][0]["license"]["type"] == "CC0"


def test_library_lists_and_pages(world: World) -> None:
    for i in range(4):
        assert world.admin.post("/boards", json=feelings_board_body(f"Board {i}")).status_code == 201
    first = world.worker.get("/boards", params={"limit": 3}).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = world.worker.get("/boards", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    names = [b["name"] for b in first["items"] + rest["items"]]
    assert names == ["How I feel", "Board 0", "Board 1", "Board 2", "Board 3"]
    assert rest["next_cursor"] is None


def test_session_refuses_boards_that_do_not_exist(world: World) -> None:
    r = world.worker.post(f"/children/{world.child_id}/sessions", json={
        "setting": "home", "board_ids": [world.board["id"], "00000000-0000-4000-8000-000000000000"]})
    problem = assert_problem(r, 422)
    assert "board_ids" in str(problem["errors"][0]["loc"])
