"""Importing boards from other AAC apps: every sample file, tolerant of what real files do,
per-board skip reasons, and no fetching of anything a file points at."""

import io
import json
import socket

import pytest
from PIL import Image

from tests.boards_support import (import_bytes, make_zip, manifest, sample, simple_board)
from tests.support import World, assert_problem


def _import(world: World, name: str) -> dict:
    r = import_bytes(world.admin, sample(name), name)
    assert r.status_code == 201, r.text
    return r.json()


def _boards(world: World, result: dict) -> dict[str, dict]:
    return {b["name"]: world.worker.get(f"/boards/{b['id']}").json()
            for b in result["imported"]}


# name -> {board name: (buttons, images with stored bytes, images by reference, sounds)}
EXPECTED = {
    "foreign.obf": {"Foreign Words": (4, 0, 3, 0)},
    "inline_images.obf": {"Inline Images Board": (2, 2, 0, 0)},
    "simple_from_links.obf": {"Simple Board": (2, 0, 0, 0)},
    "links.obz": {"Simple Board": (2, 0, 0, 0), "Simple Board 2": (2, 0, 0, 0),
                  "Simple Board 3": (2, 0, 0, 0)},
    "path_images.obz": {"Path Images Board": (2, 2, 0, 0), "Linked Board": (2, 0, 0, 0)},
    "lots_of_stuff.obz": {"Lots of Stuff Board": (6, 1, 2, 2),
                          "URL Images Board": (3, 0, 2, 0),
                          "Inline Images Board": (2, 2, 0, 0),
                          "Path Images and Sounds Board": (2, 2, 0, 1),
                          "Linked Board": (5, 1, 2, 3)},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_imports_with_its_boards_buttons_and_images(world: World, name: str) -> None:
    result = _import(world, name)
    assert result["skipped"] == []
    assert all(b["version"] == 1 for b in result["imported"])
    boards = _boards(world, result)
    seen = {}
    for board_name, board in boards.items():
        stored = [i for i in board["images"] if i.get("ext_childvoice_asset")]
        referenced = [i for i in board["images"] if not i.get("ext_childvoice_asset")]
        seen[board_name] = (len(board["buttons"]), len(stored), len(referenced),
                            len(board["sounds"]))
        # Ids are strings everywhere; every image and sound has a licence.
        assert all(isinstance(b["id"], str) for b in board["buttons"])
        assert all(isinstance(c, str) for row in board["grid"]["order"] for c in row if c)
        assert all(i["license"]["type"] for i in board["images"] + board["sounds"])
        for image in stored:  # stored bytes are served, as the type sniffed from them
            r = world.worker.get(image["ext_childvoice_url"].removeprefix("/api/v1"))
            assert r.status_code == 200 and r.headers["content-type"] == image["content_type"]
    assert seen == EXPECTED[name]


def test_numeric_ids_colours_and_extensions(world: World) -> None:
    foreign = _boards(world, _import(world, "foreign.obf"))["Foreign Words"]
    first = foreign["buttons"][0]
    assert first["id"] == "0" and first["image_id"] == "0"
    assert first["label"] == "हेर्नुहोस्" and foreign["buttons"][2]["label"] == "صرخة"
    # Hex colours (not allowed by the spec, found in real files) become rgb().
    assert first["border_color"] == "rgb(68, 68, 68)"
    assert first["background_color"] == "rgb(255, 255, 50)"
    assert foreign["grid"]["order"][0][:3] == ["0", "1", "2"]
    assert foreign["images"][0]["content_type"] == "image/svg+xml"

    lots = _boards(world, _import(world, "lots_of_stuff.obz"))
    root = lots["Lots of Stuff Board"]
    buttons = {b["id"]: b for b in root["buttons"]}
    assert buttons["b1"]["border_color"] == "rgb(255, 0, 0)"  # was "rgb( 255, 0,  0) "
    assert buttons["b2"]["background_color"] == "rgb(200, 200, 200)"
    assert buttons["b3"]["border_color"] == "rgba(255, 0, 0, 0.2)"
    # Unknown fields and ext_* are kept; so are actions and hidden buttons.
    assert root["ext_speaker_url"] == "http://www.example.com/mylink"
    assert root["description_html"].startswith("This is an .obf file")
    assert root["license"]["author_name"] == "Brian Whitmer"
    assert buttons["b3"]["action"] == "+less" and buttons["b4"]["action"] == ":clear"
    assert buttons["b5"]["hidden"] is True
    assert buttons["b5"]["ext_speaker_should_be_hidden_in_preview"] is True
    inline = lots["Inline Images Board"]
    assert inline["ext_speaker_settings"]["board_color"] == "green"
    assert inline["buttons"][0]["ext_speaker_best"] is True
    # "ext_load_board" is an extension, not a link: kept as it was.
    url_board = lots["URL Images Board"]
    assert url_board["buttons"][2]["ext_load_board"] == {"path": "boards/path_images.obf"}
    assert url_board["buttons"][2].get("load_board") is None
    # A button naming an image the board does not have (i9 vs i99) keeps no reference.
    assert "image_id" not in buttons["b1"] or buttons["b1"]["image_id"] is None
    assert buttons["b1"]["sound_id"] == "sss2"


def test_images_data_path_url_and_symbol(world: World) -> None:
    lots = _boards(world, _import(world, "lots_of_stuff.obz"))
    images = {i["id"]: i for i in lots["Lots of Stuff Board"]["images"]}
    # data: URI -> checked and stored; its licence kept.
    assert images["i99"]["ext_childvoice_asset"] and "data" not in images["i99"]
    assert images["i99"]["license"]["type"] == "public domain"
    assert images["i99"]["license"]["source_url"].startswith("https://openclipart.org/")
    # url -> a reference, never fetched; no licence -> private, all rights reserved.
    assert images["i119"]["url"].startswith("https://openclipart.org/")
    assert not images["i119"].get("ext_childvoice_asset")
    assert images["i119"]["license"] == {"type": "private, all rights reserved",
                                         "ext_childvoice_assumed": True,
                                         "copyright_notice_url": None, "source_url": None,
                                         "author_name": None, "author_url": None}
    assert images["i119"]["ext_speaker_freshness"] == "some"
    # symbol -> kept as a reference without pixels.
    assert images["i429"]["symbol"] == {"set": "mypics", "filename": "hat.ico"}
    assert not images["i429"].get("ext_childvoice_asset")
    # path in the zip -> stored; the url beside it stays as a reference.
    path_board = lots["Path Images and Sounds Board"]
    sad = next(i for i in path_board["images"] if i["id"] == "11")
    assert sad["ext_childvoice_asset"] and sad["url"].startswith("https://openclipart.org")
    assert "path" not in sad
    png = world.worker.get(sad["ext_childvoice_url"].removeprefix("/api/v1"))
    picture = Image.open(io.BytesIO(png.content))
    assert picture.format == "PNG" and picture.size == (sad["width"], sad["height"])
    assert not picture.info.get("exif") and not getattr(picture, "text", {})
    # Sounds: data: and path stored, url kept.
    sounds = {s["id"]: s for s in lots["Linked Board"]["sounds"]}
    assert sounds["s1"]["ext_childvoice_asset"] and sounds["s3"]["ext_childvoice_asset"]
    assert sounds["s2"]["url"].startswith("http://soundbible.com")
    assert not sounds["s2"].get("ext_childvoice_asset")
    assert sounds["s2"]["license"]["author_name"] == "PD Ezwa"
    r = world.worker.get(sounds["s3"]["ext_childvoice_url"].removeprefix("/api/v1"))
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"


def test_links_resolve_to_the_imported_boards_and_every_board_is_imported(world: World) -> None:
    result = _import(world, "lots_of_stuff.obz")
    ids = {b["source_id"]: b["id"] for b in result["imported"]}
    # Boards the root never reaches are imported too.
    assert set(ids) == {"lots_of_stuff", "url_images", "inline_images",
                        "path_images_and_sounds", "link"}
    root = world.worker.get(f"/boards/{ids['lots_of_stuff']}").json()
    links = {b["id"]: b.get("load_board") for b in root["buttons"]}
    assert links["b1"]["id"] == ids["url_images"] and links["b1"]["path"] is None
    assert links["b6"]["id"] == ids["inline_images"]
    # A remote link keeps its URLs as references (never fetched) and names no board.
    assert links["b2"]["id"] is None and links["b2"]["url"] == "http://www.example.com/load_board"
    assert links["b2"]["data_url"].startswith("http://www.example.com/download/")

    links_result = _import(world, "links.obz")
    simple = {b["source_id"]: b["id"] for b in links_result["imported"]}
    board = world.worker.get(f"/boards/{simple['simple']}").json()
    assert [b["load_board"]["id"] for b in board["buttons"]] == [simple["simple2"],
                                                                 simple["simple3"]]
    # A lone .obf cannot carry the boards it links to: the button stays, the link goes.
    lone = _boards(world, _import(world, "simple_from_links.obf"))["Simple Board"]
    assert [b.get("load_board") for b in lone["buttons"]] == [None, None]


def test_import_never_fetches_what_a_file_points_at(world: World,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the server tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    for name in ("foreign.obf", "lots_of_stuff.obz"):
        assert import_bytes(world.admin, sample(name), name).status_code == 201


def test_one_broken_board_does_not_fail_the_package(world: World) -> None:
    package = make_zip({
        "manifest.json": manifest({"good": "boards/good.obf", "broken": "boards/broken.obf",
                                   "empty": "boards/empty.obf", "gone": "boards/gone.obf",
                                   "picture": "boards/picture.obf"},
                                  root="boards/good.obf"),
        "boards/good.obf": simple_board("good", ["yes", "no"]),
        "boards/broken.obf": "{ this is not json",
        "boards/empty.obf": simple_board("empty", []) | {"buttons": []},
        "boards/picture.obf": simple_board("picture", ["cat"]) | {
            "images": [{"id": "1", "path": "images/cat.png"}]},
        "boards/stray.obf": simple_board("stray", ["not in the manifest"]),
    })
    r = import_bytes(world.admin, package)
    assert r.status_code == 201, r.text
    body = r.json()
    assert sorted(b["source_id"] for b in body["imported"]) == ["good", "stray"]
    reasons = {s["source_id"]: s["reason"] for s in body["skipped"]}
    assert set(reasons) == {"broken", "empty", "gone", "picture"}
    assert "not valid JSON" in reasons["broken"]
    assert "no buttons" in reasons["empty"]
    assert "boards/gone.obf is not in the package" in reasons["gone"]
    assert "images/cat.png is not in the package" in reasons["picture"]


def test_tolerates_odd_grids_and_refuses_what_cannot_be_laid_out(world: World) -> None:
    board = simple_board("odd", ["a", "b", "c"])
    board["grid"] = {"rows": "1", "columns": 2, "order": [[0, 1], [2, 99]]}  # numbers, extra row
    no_grid = simple_board("nogrid", ["a", "b", "c", "d", "e"])
    del no_grid["grid"]
    huge = simple_board("huge", [f"word {i}" for i in range(13)])
    huge["grid"] = {"rows": 13, "columns": 2, "order": [[str(i), None] for i in range(13)]}
    r = import_bytes(world.admin, make_zip({
        "manifest.json": manifest({"odd": "odd.obf", "nogrid": "nogrid.obf",
                                   "huge": "huge.obf"}),
        "odd.obf": board, "nogrid.obf": no_grid, "huge.obf": huge}))
    assert r.status_code == 201, r.text
    ids = {b["source_id"]: b["id"] for b in r.json()["imported"]}
    odd = world.worker.get(f"/boards/{ids['odd']}").json()["grid"]
    assert odd == {"rows": 2, "columns": 2, "order": [["0", "1"], ["2", None]]}
    laid = world.worker.get(f"/boards/{ids['nogrid']}").json()["grid"]
    assert laid["rows"] * laid["columns"] >= 5
    assert r.json()["skipped"] == [{"source_id": "huge", "reason": "its grid is 13 rows x 1 "
                                    "columns; boards here are at most 12 x 12"}]


def test_a_file_that_is_not_a_board(world: World) -> None:
    assert_problem(import_bytes(world.admin, b"\x00\x01 not a board", "x.obf"), 415)
    problem = assert_problem(import_bytes(world.admin, json.dumps({"name": "no buttons"})
                                          .encode(), "x.obf"), 422)
    assert problem["skipped"][0]["reason"] == "it has no buttons"
    r = world.admin.post("/boards/import", json={"file": "nope"})
    assert_problem(r, 415)
    r = world.admin.post("/boards/import", files={"other": ("x.obf", b"{}")})
    assert_problem(r, 422)


def test_only_admins_import_into_the_library(world: World) -> None:
    session = world.open_session()
    tablet = world.capture(session)
    assert_problem(import_bytes(tablet, sample("foreign.obf"), "foreign.obf"), 403)
    assert_problem(import_bytes(world.anonymous, sample("foreign.obf"), "foreign.obf"), 401)
    for staff in (world.worker, world.manager):
        assert_problem(import_bytes(staff, sample("foreign.obf"), "foreign.obf"), 403)
    assert world.worker.get("/boards", params={"name": "Foreign"}).json()["items"] == []
    assert import_bytes(world.admin, sample("foreign.obf"), "foreign.obf").status_code == 201


def test_garbage_in_every_field_is_a_skip_reason_not_a_crash(world: World) -> None:
    junk: list = [None, [], {}, {"a": [1]}, True, 1.5, "", "x" * 300, 10 ** 5000 // 10 ** 4990]
    boards = {}
    for i, value in enumerate(junk):
        board = simple_board(f"j{i}", ["a", "b"])
        board["buttons"][0] |= {"id": value, "image_id": value, "sound_id": value,
                                "label": value, "background_color": value,
                                "load_board": {"path": value, "id": value}}
        board["grid"]["order"][0][1] = value
        board["images"] = [{"id": value, "path": value, "license": {"type": value}}]
        board["name"] = value
        boards[f"j{i}.obf"] = board
    boards["deep.obf"] = "[" * 100_000 + "]" * 100_000
    boards["bigint.obf"] = '{"buttons": [{"id": ' + "9" * 5000 + "}]}"
    members = {"manifest.json": manifest({k: k for k in boards})} | boards
    r = import_bytes(world.admin, make_zip(members))
    assert r.status_code in (201, 422), r.text
    body = r.json()
    listed = body.get("imported", []) + body.get("skipped", [])
    assert len(listed) == len(boards)
