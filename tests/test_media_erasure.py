"""Media that must go: a manager erases a photo with a reason, retention removes media past
its period, and the family export carries the clean media files. Each leaves a tombstone in
the record and an audit event, and takes the bytes out of the media store."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from sqlalchemy import text

from app import cli
from app.core.clock import clock
from tests.media_support import files_under, form, sample, upload
from tests.support import World, assert_problem, consent_body


def _blobs(app) -> set[str]:  # noqa: ANN001
    return {p for p in files_under(app.state.settings.media_root) if p.startswith("objects")}


@pytest.fixture
def photo_entry(world: World, app) -> dict:  # noqa: ANN001
    """A photo entry, with the blobs its upload added to the store (the media root is
    shared by the whole run, so tests look at what they added)."""
    session = world.open_session()
    before = _blobs(app)
    r = upload(world.capture(session), session["id"], sample("photo_gps_rotated.jpg"),
               fields=form("photo", caption="The swings"))
    assert r.status_code == 201, r.text
    return r.json() | {"blobs": _blobs(app) - before}


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
    before = _blobs(app)
    first = upload(tablet, session["id"], sample("drawing.png")).json()
    second = upload(tablet, session["id"], sample("drawing.png")).json()
    shared_blobs = _blobs(app) - before
    assert shared_blobs
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
    name = f"media/{entry['captured_at'][:10]} photo 1.jpg"  # named in words
    assert name in archive.namelist()
    data = archive.read(name)
    served = world.worker.get(media["url"].removeprefix("/api/v1")).content
    assert data == served and b"Exif" not in data[:4096]
    assert quote(name) in archive.read("index.html").decode()
