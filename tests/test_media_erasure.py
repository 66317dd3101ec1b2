"""Media that must go: a manager erases a photo with a reason, retention removes media past
its period, and the family export carries the clean media files. Each leaves a tombstone in
the record and an audit event, and takes the bytes out of the media store."""

from __future__ import annotations

import io
import uuid
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlmodel import select

from app import cli
from app.core.clock import clock
from app.core.db import new_session
from app.models.media import MediaFile
from tests.media_support import blob_keys, form, sample, upload
from tests.support import World, assert_problem, consent_body


def _blobs(app) -> set[str]:  # noqa: ANN001
    return blob_keys(app)


def _keys_of(app, media_id: str) -> set[str]:  # noqa: ANN001
    """The blobs a media item's files name."""
    with new_session(app.state.engine) as db:
        return set(db.exec(select(MediaFile.sha256).where(
            MediaFile.media_id == uuid.UUID(media_id))))


@pytest.fixture
def photo_entry(world: World, app) -> dict:  # noqa: ANN001
    """A photo entry, with the blobs its media names in the store."""
    session = world.open_session()
    r = upload(world.capture(session), session["id"], sample("photo_gps_rotated.jpg"),
               fields=form("photo", caption="The swings"))
    assert r.status_code == 201, r.text
    keys = _keys_of(app, r.json()["media"][0]["id"])
    assert keys <= _blobs(app)
    return r.json() | {"blobs": keys}


def _audit_actions(app, object_id: str) -> list[str]:  # noqa: ANN001
    with app.state.engine.connect() as conn:
        return list(conn.execute(text("SELECT action FROM audit_events WHERE object_id = :o "
                                      "ORDER BY id"), {"o": object_id}).scalars())


def test_a_manager_erases_a_photo_and_a_tombstone_stays(world: World, app,  # noqa: ANN001
                                                        photo_entry: dict) -> None:
    media = photo_entry["media"][0]
    assert world.worker.get(media["url"].removeprefix("/api/v1")).status_code == 200
    assert "media.read.main" in _audit_actions(app, media["id"])  # reading it is audited
    assert len(photo_entry["blobs"]) == 2  # the clean copy and its thumbnail

    path = f"/media/{media['id']}/erase"
    body = {"reason": "A letter with the home address is readable in it."}
    assert_problem(world.worker.post(path, json=body), 403)  # the worker may not erase
    assert_problem(world.other_manager.post(path, json=body), 404)
    assert_problem(world.manager.post(path, json={"reason": ""}), 422)
    r = world.manager.post(path, json=body)
    assert r.status_code == 200, r.text
    entry = r.json()
    assert entry["id"] == photo_entry["id"] and entry["media"] == []
    [stone] = entry["media_erased"]
    assert stone["id"] == media["id"] and stone["erasure_cause"] == "manager"
    assert stone["erasure_reason"] == body["reason"] and stone["erased_at"]

    # The bytes are gone; every URL says so; the worker sees the tombstone on the entry.
    assert not photo_entry["blobs"] & _blobs(app)
    for url in (media["url"], media["thumbnail_url"]):
        assert_problem(world.worker.get(url.removeprefix("/api/v1")), 410)
    seen = world.worker.get(f"/entries/{photo_entry['id']}").json()
    assert seen["media"] == [] and seen["media_erased"][0]["id"] == media["id"]
    assert "media.erase" in _audit_actions(app, media["id"])
    assert_problem(world.manager.post(path, json=body), 409)


def test_erasing_one_copy_keeps_a_blob_another_entry_still_uses(world: World, app) -> None:  # noqa: ANN001
    session = world.open_session()
    tablet = world.capture(session)
    first = upload(tablet, session["id"], sample("drawing.png")).json()
    second = upload(tablet, session["id"], sample("drawing.png")).json()
    shared_blobs = _keys_of(app, first["media"][0]["id"])
    assert shared_blobs == _keys_of(app, second["media"][0]["id"]) != set()
    world.manager.post(f"/media/{first['media'][0]['id']}/erase", json={"reason": "duplicate"})
    assert shared_blobs <= _blobs(app)  # still named by the second upload
    assert world.worker.get(second["media"][0]["url"].removeprefix("/api/v1")).status_code == 200


def test_retention_removes_media_past_its_period(world: World, app, settings, capsys,  # noqa: ANN001
                                                photo_entry: dict) -> None:
    media_id = photo_entry["media"][0]["id"]
    assert cli.main(["retention", "--dry-run"], settings=settings) == 0
    assert "photo: would remove 0 older than 730 days" in capsys.readouterr().out

    clock.set(datetime.now(timezone.utc) + timedelta(days=731))
    assert cli.main(["retention", "--dry-run"], settings=settings) == 0
    assert "photo: would remove 1 older than 730 days" in capsys.readouterr().out
    assert photo_entry["blobs"] <= _blobs(app)  # a dry run removes nothing

    assert cli.main(["retention", "--apply"], settings=settings) == 0
    assert "photo: removed 1 older than 730 days" in capsys.readouterr().out
    assert not photo_entry["blobs"] & _blobs(app)
    clock.set(None)
    world.sign_in_again()  # the run also removed the long-expired sign-ins
    entry = world.worker.get(f"/entries/{photo_entry['id']}").json()
    assert entry["media"] == []
    assert entry["media_erased"][0]["erasure_cause"] == "retention"
    assert "retention.remove" in _audit_actions(app, media_id)


def test_the_family_export_carries_the_clean_media(world: World, app) -> None:  # noqa: ANN001
    world.worker.post(f"/consents/{world.consent['id']}/withdraw", json={"reason": "replaced"})
    world.worker.post(f"/children/{world.child_id}/consents",
                      json=consent_body(["symbols", "photo", "plan", "share_family"]))
    session = world.open_session()
    entry = upload(world.capture(session), session["id"], sample("photo_gps_rotated.jpg")).json()
    media = entry["media"][0]

    r = world.manager.get(f"/children/{world.child_id}/export")
    assert r.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    name = f"media/{entry['id']}-{media['id']}.jpg"
    assert name in archive.namelist()
    data = archive.read(name)
    served = world.worker.get(media["url"].removeprefix("/api/v1")).content
    assert data == served and b"Exif" not in data[:4096]
    assert name in archive.read("index.html").decode()


def _personal_board_with(world: World, data: bytes) -> dict:
    r = world.worker.post(f"/children/{world.child_id}/board-photos",
                          files={"file": ("nan.jpg", data, "image/jpeg")})
    assert r.status_code == 201, r.text
    image = r.json()["image"] | {"id": "nan-photo"}
    r = world.worker.post(f"/children/{world.child_id}/boards", json={
        "name": "My people", "locale": "en",
        "grid": {"rows": 1, "columns": 1, "order": [["nan"]]},
        "buttons": [{"id": "nan", "label": "Nan", "image_id": "nan-photo"}],
        "images": [image]})
    assert r.status_code == 201, r.text
    return r.json()


def test_erasing_a_photo_reaches_its_copy_on_the_childs_own_boards(world: World,  # noqa: ANN001
                                                                   app) -> None:
    """The worker made a personal-board picture from the same photo: the same bytes. The
    erasure takes those too, and says so."""
    data = sample("photo_gps_rotated.jpg")
    board = _personal_board_with(world, data)
    picture_url = board["images"][0]["ext_childvoice_url"].removeprefix("/api/v1")
    assert world.worker.get(picture_url).status_code == 200
    session = world.open_session()
    entry = upload(world.capture(session), session["id"], data).json()
    media = entry["media"][0]
    assert media["sha256"] == board["images"][0]["ext_childvoice_asset"]

    r = world.manager.post(f"/media/{media['id']}/erase", json={"reason": "A visitor's face."})
    assert r.status_code == 200, r.text
    erasure = r.json()["erasure"]
    assert erasure["media_id"] == media["id"] and erasure["copies_remaining"] == []
    [copy] = erasure["copies_erased"]
    assert copy["kind"] == "board_photo" and copy["board_ids"] == [board["id"]]
    assert media["sha256"] not in blob_keys(app)  # no copy of the bytes is left
    assert_problem(world.worker.get(picture_url), 404)
    assert world.worker.get(f"/boards/{board['id']}").status_code == 200  # the board stays
    assert world.worker.get(f"/boards/{board['id']}/export.obf").status_code == 200
    assert "board.photo.erase" in _audit_actions(app, media["sha256"])
    # The photo is no longer one the child's boards may use.
    r = world.worker.post(f"/children/{world.child_id}/boards", json={
        "name": "Again", "locale": "en", "grid": {"rows": 1, "columns": 1, "order": [["x"]]},
        "buttons": [{"id": "x", "label": "Nan", "image_id": "i"}],
        "images": [board["images"][0] | {"id": "i"}]})
    assert_problem(r, 422)


def test_the_erasure_names_the_copies_it_leaves_and_why(world: World, app) -> None:  # noqa: ANN001
    session = world.open_session()
    tablet = world.capture(session)
    first = upload(tablet, session["id"], sample("drawing.png")).json()
    second = upload(tablet, session["id"], sample("drawing.png")).json()
    r = world.manager.post(f"/media/{first['media'][0]['id']}/erase",
                           json={"reason": "duplicate"})
    assert r.status_code == 200, r.text
    [left] = r.json()["erasure"]["copies_remaining"]
    assert left["kind"] == "entry_media" and left["entry_id"] == second["id"]
    assert left["media_id"] == second["media"][0]["id"] and "erased too" in left["detail"]
