"""Boards out: .obf and .obz exports pass the OBF rules, import -> export -> import gives the
same boards for every sample, licences travel with every image, and attribution lists them."""

import io
import json
import zipfile

import pytest

from tests.boards_support import (board_view, import_bytes, obf_rule_breaks, obz_rule_breaks,
                                  sample)
from tests.support import World, assert_problem

SAMPLE_NAMES = ["foreign.obf", "inline_images.obf", "links.obz", "lots_of_stuff.obz",
                "path_images.obz", "simple_from_links.obf"]


def _import(world: World, data: bytes, name: str) -> list[dict]:
    r = import_bytes(world.admin, data, name)
    assert r.status_code == 201, r.text
    assert r.json()["skipped"] == []
    return r.json()["imported"]


def _linked_names(world: World, board_id: str, seen: set | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    if board_id in seen:
        return set()
    seen.add(board_id)
    board = world.worker.get(f"/boards/{board_id}").json()
    names = {board["name"]}
    for button in board["buttons"]:
        target = (button.get("load_board") or {}).get("id")
        if target:
            names |= _linked_names(world, target, seen)
    return names


def _archive_library(world: World) -> None:
    """Out of the way, so that importing an export makes new boards to compare with the
    old (an import of boards already in the library answers those)."""
    for board in world.admin.get("/boards", params={"limit": 200}).json()["items"]:
        assert world.admin.post(f"/boards/{board['id']}/archive").status_code == 200


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_round_trip_through_obz(world: World, name: str) -> None:
    for board in _import(world, sample(name), name):
        r = world.worker.get(f"/boards/{board['id']}/export.obz")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        assert obz_rule_breaks(r.content) == []
        _archive_library(world)
        again = _import(world, r.content, "export.obz")
        # The package holds the board and every board it links to, once each.
        assert {b["name"] for b in again} == _linked_names(world, board["id"])
        assert len(again) == len(_linked_names(world, board["id"]))
        assert board_view(world.worker, again[0]["id"]) == board_view(world.worker, board["id"])


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_round_trip_through_obf(world: World, name: str) -> None:
    for board in _import(world, sample(name), name):
        r = world.worker.get(f"/boards/{board['id']}/export.obf")
        assert r.status_code == 200, r.text
        exported = r.json()
        assert obf_rule_breaks(exported) == []
        assert exported["id"] == board["id"]
        again = _import(world, r.content, "export.obf")
        view, original = board_view(world.worker, again[0]["id"]), board_view(world.worker,
                                                                               board["id"])
        # A lone .obf carries no other boards, so a link keeps only its URLs.
        for v in (view, original):
            v["buttons"] = [b[:8] + (None,) + b[9:] for b in v["buttons"]]
        assert view == original


def test_export_carries_bytes_licences_and_links(world: World) -> None:
    imported = {b["source_id"]: b["id"] for b in _import(world, sample("lots_of_stuff.obz"),
                                                         "lots_of_stuff.obz")}
    r = world.worker.get(f"/boards/{imported['lots_of_stuff']}/export.obz")
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    man = json.loads(zf.read("manifest.json"))
    assert man["root"] == f"boards/{imported['lots_of_stuff']}.obf"
    # The root and the boards it links to; not the package's unreachable ones.
    assert set(man["paths"]["boards"].values()) == {
        f"boards/{imported[k]}.obf" for k in ("lots_of_stuff", "url_images", "inline_images")}
    root = json.loads(zf.read(man["root"]))
    link = next(b for b in root["buttons"] if b["id"] == "b1")["load_board"]
    assert link == {"id": imported["url_images"],
                    "path": f"boards/{imported['url_images']}.obf"}
    image = next(i for i in root["images"] if i["id"] == "i99")
    assert image["path"] in man["paths"]["images"].values()
    assert zf.read(image["path"]).startswith(b"\x89PNG")
    assert image["license"]["type"] == "public domain"
    assert next(i for i in root["images"] if i["id"] == "i119")["license"]["type"] == \
        "private, all rights reserved"
    assert all("ext_childvoice_asset" not in i for i in root["images"])
    sound = next(s for s in root["sounds"] if s["id"] == "sss1")
    assert sound["content_type"] == "audio/mpeg" and b"\xff\xfb" in zf.read(sound["path"])[:64]
    # The same picture on two boards is one file in the package.
    assert len(set(man["paths"]["images"].values())) == len(
        {n for n in zf.namelist() if n.startswith("images/")})

    obf = world.worker.get(f"/boards/{imported['inline_images']}/export.obf").json()
    assert all(i["data"].startswith("data:image/png;base64,") for i in obf["images"])
    assert "attachment" in world.worker.get(
        f"/boards/{imported['inline_images']}/export.obf").headers["content-disposition"]


def test_attribution_lists_what_a_document_must_show(world: World) -> None:
    foreign = _import(world, sample("foreign.obf"), "foreign.obf")[0]
    body = world.worker.get(f"/boards/{foreign['id']}/attribution").json()
    assert body["name"] == "Foreign Words" and body["version"] == 1
    by_type = {i["license"]["type"]: i for i in body["items"]}
    assert set(by_type) == {"CC BY-SA", "CC BY-NC"}
    assert by_type["CC BY-SA"]["images"] == ["0", "2"]
    assert by_type["CC BY-SA"]["requires_attribution"] is True
    assert "Paxtoncrafts Charitable Trust" in by_type["CC BY-SA"]["text"]
    assert "http://creativecommons.org/licenses/by-sa/2.0/uk" in by_type["CC BY-SA"]["text"]
    assert by_type["CC BY-NC"]["images"] == ["1"] and "Sclera" in by_type["CC BY-NC"]["text"]

    lots = {b["source_id"]: b["id"] for b in _import(world, sample("lots_of_stuff.obz"),
                                                     "lots_of_stuff.obz")}
    items = world.worker.get(f"/boards/{lots['lots_of_stuff']}/attribution").json()["items"]
    board_item = next(i for i in items if i["board"])
    assert board_item["license"]["type"] == "CC-By" and "Brian Whitmer" in board_item["text"]
    public = [i for i in items if i["license"]["type"] == "public domain"]
    assert [(i["images"], i["sounds"]) for i in public] == [(["i99"], []), ([], ["sss2"])]
    assert not any(i["requires_attribution"] for i in public)
    assert "PD Ezwa" in public[1]["text"] and public[1]["text"].startswith("Sound sss2")
    assumed = next(i for i in items if i["assumed"])
    assert assumed["images"] == ["i119", "i429"] and assumed["sounds"] == ["sss1"]
    assert "private, all rights reserved" in assumed["text"]
    assert_problem(world.worker.get("/boards/00000000-0000-4000-8000-000000000000/attribution"),
                   404)


def test_edits_keep_imported_bytes_and_cannot_borrow_others(world: World) -> None:
    imported = _import(world, sample("inline_images.obf"), "inline_images.obf")[0]
    board = world.admin.get(f"/boards/{imported['id']}").json()
    body = {k: board[k] for k in ("name", "locale", "grid", "buttons", "images", "sounds")}
    body["name"] = "Inline, renamed"
    r = world.admin.put(f"/boards/{imported['id']}", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["images"][0]["ext_childvoice_asset"] == \
        board["images"][0]["ext_childvoice_asset"]
    assert world.worker.get(r.json()["images"][0]["ext_childvoice_url"]
                            .removeprefix("/api/v1")).status_code == 200
    # Another board may not name those bytes: an asset key is not a pass to a picture.
    body["name"] = "Borrowed"
    assert_problem(world.admin.post("/boards", json=body), 422)


def test_a_session_serves_its_boards_pictures_and_nothing_else(world: World) -> None:
    imported = _import(world, sample("inline_images.obf"), "inline_images.obf")[0]
    other = _import(world, sample("path_images.obz"), "path_images.obz")[0]
    r = world.worker.post(f"/children/{world.child_id}/sessions", json={
        "setting": "home", "board_ids": [imported["id"]]})
    assert r.status_code == 201, r.text
    session = r.json()
    tablet = world.capture(session)
    boards = tablet.get(f"/sessions/{session['id']}/boards").json()["boards"]
    url = boards[0]["images"][0]["ext_childvoice_url"]
    assert tablet.get(url.removeprefix("/api/v1")).status_code == 200
    other_board = world.worker.get(f"/boards/{other['id']}").json()
    other_url = other_board["images"][0]["ext_childvoice_url"].removeprefix("/api/v1")
    assert_problem(tablet.get(other_url), 404)
    assert_problem(tablet.get(f"/boards/{imported['id']}/export.obz"), 403)
    assert tablet.get(f"/boards/{imported['id']}/attribution").status_code == 200
    assert_problem(tablet.get(f"/boards/{other['id']}/attribution"), 404)
    assert_problem(world.worker.get(url.removeprefix("/api/v1").replace("/images/99",
                                                                         "/images/nope")), 404)
