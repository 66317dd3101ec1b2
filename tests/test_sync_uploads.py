"""Resumable uploads (tus 1.0): a photo or recording survives a dropped connection, a bad
chunk, an expiry and a termination, and a finished upload becomes a media entry through the
same checks as the direct upload."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import func, select

from app import cli
from app.core.db import new_session
from app.models.upload import Upload
from tests.media_support import sample, settings_env, upload_parts
from tests.support import World
from tests.sync_support import Tablet, Tus, enroll, mat_board, recorded_visit


@pytest.fixture
def tablet(world: World) -> Tablet:
    return Tablet(world.worker, enroll(world.worker))


@pytest.fixture
def offline_session(world: World, tablet: Tablet) -> dict:
    items = recorded_visit(world, [world.board, mat_board(world)], entries=2)
    results = tablet.send(items).json()["results"]
    assert {r["status"] for r in results} == {"created"}
    return items[0]


def _bytes_of(app, url: str) -> set[str]:  # noqa: ANN001
    """The parts the store keeps for an upload."""
    return upload_parts(app, url)


def _age(app, url: str, hours: float) -> None:  # noqa: ANN001
    """Move an upload's expiry into the past (the staff token cannot follow the clock)."""
    from sqlalchemy import update
    with new_session(app.state.engine) as db:
        db.exec(update(Upload).where(Upload.id == uuid.UUID(url.rsplit("/", 1)[-1]))
                .values(expires_at=datetime.now(timezone.utc) - timedelta(hours=hours)))
        db.commit()


def test_discovery(world: World) -> None:
    r = world.client.options("/api/v1/uploads/")
    assert r.status_code == 204
    assert r.headers["tus-version"] == "1.0.0" and r.headers["tus-resumable"] == "1.0.0"
    assert set(r.headers["tus-extension"].split(",")) == {"creation", "checksum",
                                                           "expiration", "termination"}
    assert r.headers["tus-checksum-algorithm"] == "sha1,sha256"
    assert int(r.headers["tus-max-size"]) > 0


def test_an_upload_in_three_checked_chunks_becomes_an_audio_entry(
        world: World, tablet: Tablet, offline_session: dict, app) -> None:  # noqa: ANN001
    data = sample("voice_ipad.m4a")
    tus = Tus(world.client, world.worker.token, tablet.device)
    meta = tus.meta("audio", session_client_id=offline_session["client_id"])
    url = tus.create(len(data), meta)
    third = len(data) // 3
    for start, algo in ((0, "sha1"), (third, "sha256"), (2 * third, "sha1")):
        end = len(data) if start == 2 * third else start + third
        r = tus.patch(url, start, data[start:end], algo)
        assert r.status_code == 204, r.text
        assert int(r.headers["upload-offset"]) == end
    entry_id = r.headers["x-entry-id"]
    entry = world.worker.get(f"/entries/{entry_id}").json()
    assert entry["kind"] == "audio" and entry["client_id"] == meta["client_id"]
    assert entry["media"][0]["upload_sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["session_id"] == tablet_session_id(world, offline_session)
    # Done: HEAD says so, a resent last PATCH (empty) answers the same entry, no bytes left.
    assert tus.head(url).headers["x-entry-id"] == entry_id
    again = tus.patch(url, len(data), b"", None)
    assert again.status_code == 204 and again.headers["x-entry-id"] == entry_id
    assert _bytes_of(app, url) == set()
    assert tablet.held() >= {meta["client_id"]}


def tablet_session_id(world: World, session_item: dict) -> str:
    entries = world.worker.get(f"/children/{world.child_id}/entries").json()["items"]
    return next(e["session_id"] for e in entries)


def test_a_wrong_checksum_is_refused_and_the_offset_stays(
        world: World, tablet: Tablet, offline_session: dict, app) -> None:  # noqa: ANN001
    data = sample("photo_gps_rotated.jpg")
    tus = Tus(world.client, world.worker.token, tablet.device)
    url = tus.create(len(data), tus.meta("photo", session_client_id=offline_session["client_id"]))
    assert tus.patch(url, 0, data[:1000], "sha256").status_code == 204
    bad = tus.patch(url, 1000, data[1000:5000], "sha1", digest_of=b"something else")
    assert bad.status_code == 460, bad.text
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["type"].endswith("checksum-mismatch")
    assert tus.head(url).headers["upload-offset"] == "1000"
    # Only the accepted chunk is stored.
    upload_hex = uuid.UUID(url.rsplit("/", 1)[-1]).hex
    [part] = upload_parts(app, url)
    assert len(b"".join(app.state.media_store.read_part(upload_hex, part))) == 1000
    assert tus.patch(url, 1000, data[1000:], "sha1").status_code == 204
    unknown = tus.patch(url, len(data), b"", None, algorithm_header="md5 AAAA")
    assert unknown.status_code == 400


def test_offsets_and_headers_are_checked(world: World, tablet: Tablet,
                                         offline_session: dict) -> None:
    data = sample("voice.mp3")
    tus = Tus(world.client, world.worker.token, tablet.device)
    url = tus.create(len(data), tus.meta("audio", session_client_id=offline_session["client_id"]))
    conflict = tus.patch(url, 10, data[10:20], None)
    assert conflict.status_code == 409 and conflict.headers["upload-offset"] == "0"
    no_tus = world.client.head(url, headers=tus.headers | {"Tus-Resumable": "0.2.2"})
    assert no_tus.status_code == 412 and no_tus.headers["tus-version"] == "1.0.0"
    wrong_type = world.client.patch(url, content=b"x", headers=tus.headers | {
        "Upload-Offset": "0", "Content-Type": "application/json"})
    assert wrong_type.status_code == 415
    too_much = tus.patch(url, 0, data + b"extra", None)
    assert too_much.status_code == 413
    assert tus.head(url).headers["upload-offset"] == "0"
    # Another device (or no device) does not see it.
    other = Tus(world.client, world.worker.token, enroll(world.worker, "other tablet"))
    assert other.head(url).status_code == 404
    assert world.client.head(url, headers={"Tus-Resumable": "1.0.0",
                                           "Authorization": f"Bearer {world.worker.token}"}
                             ).status_code == 401


def test_creation_checks_the_media_fields_and_the_session(world: World, tablet: Tablet,
                                                          offline_session: dict) -> None:
    tus = Tus(world.client, world.worker.token, tablet.device)
    good = tus.meta("photo", session_client_id=offline_session["client_id"])
    for meta, status in (({k: v for k, v in good.items() if k != "client_id"}, 422),
                         (good | {"kind": "video"}, 422),
                         (good | {"session_client_id": str(uuid.uuid4())}, 409),
                         (good | {"session_id": str(uuid.uuid4())}, 422)):
        r = tus.create_raw(1000, meta)
        assert r.status_code == status, (meta, r.text)
        assert r.headers["tus-resumable"] == "1.0.0"
    too_big = tus.create_raw(10**12, good)
    assert too_big.status_code == 413
    broken = world.client.post("/api/v1/uploads/", headers=tus.headers | {
        "Upload-Length": "10", "Upload-Metadata": "kind !!notbase64"})
    assert broken.status_code == 400
    # A child the worker no longer holds: not found, like everywhere else.
    assert world.manager.post(f"/children/{world.child_id}/allocations",
                              json={"user_id": world.colleague.user_id}).status_code == 201
    assert tus.create_raw(1000, good).status_code == 404


def test_an_expired_upload_answers_404_and_its_bytes_are_gone(
        world: World, tablet: Tablet, offline_session: dict, app) -> None:  # noqa: ANN001
    data = sample("voice.wav")
    tus = Tus(world.client, world.worker.token, tablet.device)
    url = tus.create(len(data), tus.meta("audio", session_client_id=offline_session["client_id"]))
    assert tus.patch(url, 0, data[:100_000], "sha1").status_code == 204
    assert _bytes_of(app, url)
    _age(app, url, 0.1)
    patch = tus.patch(url, 100_000, data[100_000:], None)
    assert patch.status_code == 404 and patch.json()["type"].endswith("upload-expired")
    assert _bytes_of(app, url) == set()
    assert tus.head(url).status_code == 404
    # Another one, expired and never asked for again: the cleanup removes its bytes.
    url2 = tus.create(len(data), tus.meta("audio", session_client_id=offline_session["client_id"]))
    assert tus.patch(url2, 0, data[:5000], None).status_code == 204
    assert tablet.state()["incomplete_uploads"][0]["upload_url"] == url2
    _age(app, url2, 0.1)
    from app.services.media import uploads
    assert uploads.cleanup(app.state.engine, app.state.settings)["expired"] == 1
    assert _bytes_of(app, url2) == set()
    assert tablet.state()["incomplete_uploads"] == []
    assert tus.head(url2).status_code == 404


def test_termination_removes_the_bytes(world: World, tablet: Tablet, offline_session: dict,
                                       app) -> None:  # noqa: ANN001
    data = sample("voice.mp3")
    tus = Tus(world.client, world.worker.token, tablet.device)
    url = tus.create(len(data), tus.meta("audio", session_client_id=offline_session["client_id"]))
    assert tus.patch(url, 0, data[:1000], None).status_code == 204
    r = world.client.delete(url, headers=tus.headers)
    assert r.status_code == 204 and r.headers["tus-resumable"] == "1.0.0"
    assert _bytes_of(app, url) == set()
    assert tus.head(url).status_code == 404


def test_a_finished_upload_goes_through_the_direct_uploads_checks(
        world: World, tablet: Tablet, offline_session: dict, app) -> None:  # noqa: ANN001
    tus = Tus(world.client, world.worker.token, tablet.device)
    fake = sample("not_an_image.jpg")
    url = tus.create(len(fake), tus.meta("photo", session_client_id=offline_session["client_id"]))
    refused = tus.patch(url, 0, fake, "sha256")
    assert refused.status_code in (415, 422), refused.text
    problem = refused.json()
    # Asked again, the same answer; the bytes are gone and no entry was made.
    again = tus.patch(url, len(fake), b"", None)
    assert again.status_code == refused.status_code and again.json()["type"] == problem["type"]
    assert _bytes_of(app, url) == set()
    # Consent: a recording when no consent covers audio.
    world.worker.post(f"/consents/{world.consent['id']}/withdraw", json={"reason": "synthetic"})
    world.worker.post(f"/children/{world.child_id}/consents",
                      json={"given_by": "child", "scopes": ["symbols", "plan"],
                            "method": "symbols", "child_assent": "agreed",
                            "valid_from": "2020-01-01T00:00:00Z"})
    voice = sample("voice.mp3")
    url = tus.create(len(voice), tus.meta("audio", session_client_id=offline_session["client_id"]))
    no_consent = tus.patch(url, 0, voice, None)
    assert no_consent.status_code == 403 and no_consent.json()["type"].endswith("consent-required")
    with new_session(app.state.engine) as db:
        assert db.exec(select(func.count()).select_from(Upload)
                       .where(Upload.entry_id.is_not(None))).one() == 0


def test_two_uploads_of_the_same_photo_store_one_entry(world: World, tablet: Tablet,
                                                       offline_session: dict) -> None:
    data = sample("photo_ipad.heic")
    tus = Tus(world.client, world.worker.token, tablet.device)
    meta = tus.meta("photo", session_client_id=offline_session["client_id"])
    first, second = tus.create(len(data), meta), tus.create(len(data), meta)
    a = tus.patch(first, 0, data, "sha1")
    b = tus.patch(second, 0, data, "sha1")
    assert a.status_code == b.status_code == 204, (a.text, b.text)
    assert a.headers["x-entry-id"] == b.headers["x-entry-id"]


def test_the_cleanup_command(world: World, tablet: Tablet, offline_session: dict, app,
                             monkeypatch, capsys) -> None:  # noqa: ANN001
    from app.core.config import get_settings
    from app.services.media import uploads
    from app.storage import staging_dir
    settings_env(monkeypatch, app.state.settings)
    # Chunks of an upload the database does not know, put there by a PATCH whose server
    # was killed (and whose row went with a restore or retention since).
    stray = uuid.uuid4().hex
    source = staging_dir(app.state.settings.media_root) / "part-dead"
    source.write_bytes(b"left by a crash")
    app.state.media_store.put_part(stray, "chunk-0000000000000000-dead", source)
    monkeypatch.setattr(uploads, "PART_GRACE_SECONDS", -3600)  # as if written long ago
    try:
        assert cli.main(["cleanup"]) == 0
    finally:
        get_settings.cache_clear()
    assert "uploads" in capsys.readouterr().out
    assert app.state.media_store.parts(stray) == []


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()
