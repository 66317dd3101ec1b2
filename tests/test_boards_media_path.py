"""Board pictures and sounds go through the same checks as uploaded media (the media
pipeline's own samples: a 1.6-gigapixel bomb, HTML named .jpg, a scripted SVG, a phone
photo with GPS), whether they come inline, in a package or as a personal board's photo;
and the media sweeper counts a board's bytes as in use."""

import base64
import io
import os
import time

from PIL import Image

from app.core.db import new_session
from app.services.media.records import sweep
from tests.boards_support import import_bytes, make_zip, manifest, simple_board
from tests.test_boards_personal import _photo_with_exif
from tests.media_support import sample as media_sample
from tests.support import World, assert_problem


def _picture_board(name: str, image: dict) -> dict:
    board = simple_board(name, ["picture"]) | {"images": [{"id": "1"} | image]}
    board["buttons"][0]["image_id"] = "1"
    return board


def test_bombs_and_non_images_inline_or_in_a_package_skip_their_board(world: World,
                                                                      app) -> None:  # noqa: ANN001
    before = set(app.state.media_store.keys())
    bomb, html, svg = (media_sample(n) for n in ("bomb.png", "not_an_image.jpg",
                                                 "scripted.svg"))
    boards = {
        "bomb-member": _picture_board("bomb-member", {"path": "images/bomb.png"}),
        "bomb-inline": _picture_board("bomb-inline", {
            "data": "data:image/png;base64," + base64.b64encode(bomb).decode()}),
        "html-member": _picture_board("html-member", {"path": "images/photo.jpg"}),
        "svg-member": _picture_board("svg-member", {"path": "images/drawing.svg"}),
        "wav-as-image": _picture_board("wav-as-image", {"path": "sounds/voice.mp3"}),
        "audio-member": simple_board("audio-member", ["hello"]) | {
            "sounds": [{"id": "s", "path": "images/photo.jpg"}]},
    }
    boards["audio-member"]["buttons"][0]["sound_id"] = "s"
    members = {f"boards/{k}.obf": v for k, v in boards.items()} | {
        "manifest.json": manifest({k: f"boards/{k}.obf" for k in boards}),
        "boards/fine.obf": _picture_board("fine", {"path": "images/drawing.png"}),
        "images/bomb.png": bomb, "images/photo.jpg": html, "images/drawing.svg": svg,
        "images/drawing.png": media_sample("drawing.png"),
        "sounds/voice.mp3": media_sample("voice.mp3")}
    r = import_bytes(world.admin, make_zip(members))
    assert r.status_code == 201, r.text
    assert [b["source_id"] for b in r.json()["imported"]] == ["fine"]
    reasons = {s["source_id"]: s["reason"] for s in r.json()["skipped"]}
    assert set(reasons) == set(boards)
    assert "too many pixels" in reasons["bomb-member"] and "refused before decoding" in \
        reasons["bomb-member"]
    assert "too many pixels" in reasons["bomb-inline"]
    assert "web pages" in reasons["html-member"]
    assert "SVG" in reasons["svg-member"]
    assert "not a photo" in reasons["wav-as-image"]
    assert "not a supported audio file" in reasons["audio-member"]
    # Only the one good picture reached the store.
    assert len(set(app.state.media_store.keys()) - before) == 1


def test_refused_bytes_with_a_url_keep_the_board_and_say_what_was_left_out(world: World) -> None:
    board = _picture_board("symbols", {"path": "images/mulberry.svg",
                                       "url": "https://example.org/symbols/cat.svg",
                                       "content_type": "image/svg"})
    r = import_bytes(world.admin, make_zip({"board.obf": board,
                                            "images/mulberry.svg": media_sample("scripted.svg")}))
    assert r.status_code == 201, r.text
    [imported] = r.json()["imported"]
    assert "SVG" in imported["notes"][0] and "url is kept" in imported["notes"][0]
    image = world.worker.get(f"/boards/{imported['id']}").json()["images"][0]
    assert image["url"] == "https://example.org/symbols/cat.svg"
    assert not image.get("ext_childvoice_asset")


def test_imported_photos_lose_their_metadata_and_stand_upright(world: World) -> None:
    board = _picture_board("camera", {"path": "images/photo.jpg"})
    # (Not the media tests' photo_gps_rotated.jpg: the store outlives each test, and
    # their erasure tests count the blobs an upload of it adds.)
    r = import_bytes(world.admin, make_zip({"board.obf": board,
                                            "images/photo.jpg": _photo_with_exif()}))
    assert r.status_code == 201, r.text
    image = world.worker.get(f"/boards/{r.json()['imported'][0]['id']}").json()["images"][0]
    data = world.worker.get(image["ext_childvoice_url"].removeprefix("/api/v1")).content
    picture = Image.open(io.BytesIO(data))
    assert dict(picture.getexif()) == {}
    assert picture.size == (48, 64) == (image["width"], image["height"])
    assert b"PhoneMaker" not in data and b"nan's house" not in data


def test_a_personal_photo_from_a_phone_is_stored_without_gps(world: World) -> None:
    r = world.worker.post(f"/children/{world.child_id}/board-photos", files={
        "file": ("IMG_0001.heic", media_sample("photo_ipad.heic"), "image/heic")})
    assert r.status_code == 201, r.text
    image = r.json()["image"]
    assert image["content_type"] == "image/jpeg"  # the rendition every browser shows
    board = world.worker.post(f"/children/{world.child_id}/boards", json={
        "name": "Home", "grid": {"rows": 1, "columns": 1, "order": [["home"]]},
        "buttons": [{"id": "home", "label": "home", "image_id": "p"}],
        "images": [image | {"id": "p"}]}).json()
    data = world.worker.get(board["images"][0]["ext_childvoice_url"]
                            .removeprefix("/api/v1")).content
    exif = Image.open(io.BytesIO(data)).getexif()
    assert dict(exif) == {} and not exif.get_ifd(0x8825)
    problem = assert_problem(world.worker.post(
        f"/children/{world.child_id}/board-photos",
        files={"file": ("bomb.png", media_sample("bomb.png"), "image/png")}), 422)
    assert problem["type"].endswith("/image-too-large")


def test_the_sweeper_keeps_bytes_a_board_names(world: World, app) -> None:  # noqa: ANN001
    r = import_bytes(world.admin, make_zip({"board.obf": _picture_board(
        "kept", {"path": "images/drawing.png"}), "images/drawing.png":
        media_sample("drawing.png")}))
    image = world.worker.get(f"/boards/{r.json()['imported'][0]['id']}").json()["images"][0]
    store = app.state.media_store
    key = image["ext_childvoice_asset"]
    day_ago = time.time() - 2 * 86400
    os.utime(store.path(key), (day_ago, day_ago))
    with new_session(app.state.engine) as db:
        assert sweep(db, store, app.state.settings.media_root)["blobs"] == 0
    assert store.exists(key)
    assert world.worker.get(image["ext_childvoice_url"].removeprefix("/api/v1")) \
        .status_code == 200
    os.utime(store.path(key))  # young again: later tests sweep a store that outlives rows
