"""Personal boards: built from photos of the child's own people and places, cleaned like
every upload (no EXIF, no location), seen only by those who may see the child, audited,
and never in the library."""

import io

import pytest
from PIL import Image

from tests.support import Api, World, assert_problem, consent_body


def _photo_with_exif() -> bytes:
    picture = Image.new("RGB", (64, 48), (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"            # Make
    exif[0x0110] = "Phone 15"              # Model
    exif[0x0131] = "camera app 1.0"        # Software
    exif[0x0112] = 6                       # Orientation: turn 90 degrees to stand upright
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (51.0, 30.0, 0.0)  # latitude
    gps[3], gps[4] = "W", (0.0, 7.0, 0.0)    # longitude
    out = io.BytesIO()
    picture.save(out, "JPEG", exif=exif, comment=b"taken at nan's house")
    return out.getvalue()


def _upload(api: Api, child_id: str, data: bytes, name: str = "nan.jpg"):  # noqa: ANN201
    return api.post(f"/children/{child_id}/board-photos", files={"file": (name, data,
                                                                           "image/jpeg")})


def _board_body(image: dict, name: str = "My people") -> dict:
    return {"name": name, "locale": "en",
            "grid": {"rows": 1, "columns": 2, "order": [["nan", "dog"]]},
            "buttons": [{"id": "nan", "label": "Nan", "image_id": "nan-photo"},
                        {"id": "dog", "label": "Biscuit"}],
            "images": [image | {"id": "nan-photo"}]}


@pytest.fixture
def personal(world: World) -> dict:
    source = _photo_with_exif()
    assert Image.open(io.BytesIO(source)).getexif().get(0x010F) == "PhoneMaker"
    r = _upload(world.worker, world.child_id, source)
    assert r.status_code == 201, r.text
    photo = r.json()
    r = world.worker.post(f"/children/{world.child_id}/boards", json=_board_body(photo["image"]))
    assert r.status_code == 201, r.text
    return r.json()


def test_a_personal_boards_photo_has_no_exif(world: World, personal: dict) -> None:
    image = personal["images"][0]
    assert image["license"]["type"] == "private, all rights reserved"
    r = world.worker.get(image["ext_childvoice_url"].removeprefix("/api/v1"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    picture = Image.open(io.BytesIO(r.content))
    assert dict(picture.getexif()) == {}
    assert "exif" not in picture.info and "comment" not in picture.info
    assert b"PhoneMaker" not in r.content and b"nan's house" not in r.content
    assert picture.size == (48, 64)  # stood upright as the camera meant, then forgotten
    assert (image["width"], image["height"]) == (48, 64)
    # The export carries the clean bytes too.
    exported = world.worker.get(f"/boards/{personal['id']}/export.obf").json()
    assert b"PhoneMaker" not in exported["images"][0]["data"].encode()


def test_only_those_who_may_see_the_child_read_the_board(world: World, personal: dict) -> None:
    path = f"/boards/{personal['id']}"
    image = personal["images"][0]["ext_childvoice_url"].removeprefix("/api/v1")
    for allowed in (world.worker, world.manager):
        assert allowed.get(path).status_code == 200
        assert allowed.get(image).status_code == 200
        assert allowed.get(f"{path}/export.obz").status_code == 200
        assert allowed.get(f"{path}/attribution").status_code == 200
        assert [b["id"] for b in allowed.get(f"/children/{world.child_id}/boards").json()] \
            == [personal["id"]]
    for refused in (world.colleague, world.other_worker, world.other_manager, world.admin):
        for url in (path, image, f"{path}/export.obz", f"{path}/export.obf",
                    f"{path}/attribution", f"/children/{world.child_id}/boards"):
            assert_problem(refused.get(url), 404)
        assert_problem(refused.put(path, json=_board_body(personal["images"][0])), 404)
    assert_problem(world.anonymous.get(path), 401)
    # Never in the library, whoever looks.
    for api in (world.worker, world.manager, world.admin):
        assert personal["id"] not in {b["id"] for b in api.get("/boards").json()["items"]}
    # Only the allocated worker adds photos and boards; the manager may look, not change.
    assert_problem(_upload(world.manager, world.child_id, _photo_with_exif()), 403)
    assert_problem(world.manager.post(f"/children/{world.child_id}/boards",
                                      json=_board_body(personal["images"][0])), 403)
    assert_problem(_upload(world.colleague, world.child_id, _photo_with_exif()), 404)


def test_in_a_session_the_tablet_sees_it_and_reads_are_audited(world: World,
                                                               personal: dict) -> None:
    r = world.worker.post(f"/children/{world.child_id}/sessions", json={
        "setting": "home", "board_ids": [personal["id"]]})
    assert r.status_code == 201, r.text
    session = r.json()
    tablet = world.capture(session)
    board = tablet.get(f"/sessions/{session['id']}/boards").json()["boards"][0]
    assert board["id"] == personal["id"]
    assert tablet.get(board["images"][0]["ext_childvoice_url"].removeprefix("/api/v1")) \
        .status_code == 200
    # Another child's session cannot open it.
    other = world.worker.post("/children", json={
        "preferred_name": "Sky", "date_of_birth": "2014-05-06", "team_id": world.team_id}).json()
    world.worker.post(f"/children/{other['id']}/consents", json=consent_body())
    assert_problem(world.worker.post(f"/children/{other['id']}/sessions", json={
        "setting": "home", "board_ids": [personal["id"]]}), 422)
    elsewhere = world.open_session(child_id=other["id"])
    assert_problem(world.capture(elsewhere).get(
        board["images"][0]["ext_childvoice_url"].removeprefix("/api/v1")), 404)

    world.worker.get(f"/boards/{personal['id']}")
    trail = world.manager.get(f"/children/{world.child_id}/audit",
                              params={"limit": 200}).json()["items"]
    actions = {e["action"] for e in trail}
    assert {"board.photo.upload", "board.create", "board.read", "board.image.read"} <= actions


def test_a_board_may_only_show_its_own_childs_photos(world: World, personal: dict) -> None:
    other = world.worker.post("/children", json={
        "preferred_name": "Sky", "date_of_birth": "2014-05-06", "team_id": world.team_id}).json()
    body = _board_body(personal["images"][0], "Borrowed people")
    problem = assert_problem(world.worker.post(f"/children/{other['id']}/boards", json=body), 422)
    assert "ext_childvoice_asset" in problem["detail"]
    assert_problem(world.admin.post("/boards", json=body), 422)
    # Its own child's board may be edited, keeping the photo.
    body["name"] = "My people (new)"
    r = world.worker.put(f"/boards/{personal['id']}", json=body)
    assert r.status_code == 200 and r.json()["version"] == 2


def test_a_photo_that_is_not_a_photo(world: World) -> None:
    # The media path's own answers: 415 for what is not an accepted photo, 422 for damage.
    problem = assert_problem(_upload(world.worker, world.child_id, b"GIF89a not really"), 415)
    assert problem["type"].endswith("/unsupported-photo")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    assert "SVG" in assert_problem(_upload(world.worker, world.child_id, svg, "x.svg"),
                                   415)["detail"]
    cut = _photo_with_exif()[:300]
    assert_problem(_upload(world.worker, world.child_id, cut), 422)
    assert world.worker.get(f"/children/{world.child_id}/boards").json() == []
