"""Photos and recordings from the tablet: accepted, cleaned, stored once; hostile or broken
files refused with a problem document and nothing left behind."""

from __future__ import annotations

import asyncio
import io
import threading
import time
import uuid

import av
import httpx2
import pytest
from PIL import Image
from sqlmodel import select

from app.core.db import new_session
from app.models.media import MediaFile
from app.services.media import photos
from tests.media_support import (AUDIO_SAMPLES, SAMPLES, Snapshot, asgi_post, decoded_seconds,
                                 blob_bytes, form, make_tagged_audio, media_session,
                                 multipart, row_counts, sample, stored, upload)
from tests.support import World, assert_problem, symbols_entry

# Container metadata that says what a file is, not who or where: allowed to remain.
TECHNICAL_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "language",
                  "handler_name", "vendor_id", "duration"}


def _get(api, url: str, **kw):  # noqa: ANN001, ANN003, ANN202
    return api.get(url.removeprefix("/api/v1"), **kw)


def _stored_blob(app, media_id: str, role: str = "stored") -> bytes:  # noqa: ANN001
    with new_session(app.state.engine) as db:
        row = db.exec(select(MediaFile).where(MediaFile.media_id == uuid.UUID(media_id),
                                              MediaFile.role == role)).one()
    return blob_bytes(app, row.sha256)


def _assert_no_exif(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert not image.getexif(), "EXIF left in the stored copy"
    assert "exif" not in image.info or not image.info["exif"]
    assert not image.info.get("xmp") and not image.info.get("XML:com.adobe.xmp")
    for marker in (b"Exif", b"GPS", b"Apple", b"iPad", b"http://ns.adobe.com/xap"):
        assert marker not in data, marker
    return image


def _assert_upright(image: Image.Image) -> None:
    """The samples show a blue background, a brown block on the left, a yellow circle at
    the top: upright means portrait, brown at the left middle, blue in the top left."""
    image = image.convert("RGB")
    width, height = image.size
    assert width < height
    r, g, b = image.getpixel((int(width * 0.15), int(height * 0.5)))
    assert r > b and g > b and r < 140, "brown block not on the left"
    r, g, b = image.getpixel((int(width * 0.05), int(height * 0.03)))
    assert b > r and b > g, "top left is not the blue background"


# --- photos ------------------------------------------------------------------------------

def test_rotated_jpeg_with_gps_is_stored_upright_and_clean(world: World, app) -> None:  # noqa: ANN001
    session, tablet = media_session(world)
    r = upload(tablet, session["id"], sample("photo_gps_rotated.jpg"), filename="IMG_0001.JPG",
               fields=form("photo", caption="My bike", prompt="What do you like?",
                           topic="things", keep_taken_at="true"))
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["kind"] == "photo" and entry["consent_id"] == world.consent["id"]
    assert entry["prompt"] == "What do you like?" and entry["source"] == "child_direct"
    [m] = entry["media"]
    assert (m["width"], m["height"]) == (3024, 4032)
    assert m["content_type"] == "image/jpeg" and m["caption"] == "My bike"
    assert m["taken_at"] is not None  # kept as data when asked; the EXIF itself is not
    assert m["thumbnail_url"] and m["playback_url"] is None

    main = _get(tablet, m["url"])
    assert main.status_code == 200 and main.headers["content-type"] == "image/jpeg"
    assert len(main.content) == m["bytes"]
    image = _assert_no_exif(main.content)
    _assert_upright(image)
    thumb = _get(tablet, m["thumbnail_url"])
    assert thumb.status_code == 200
    small = _assert_no_exif(thumb.content)
    assert max(small.size) == 320
    _assert_upright(small)


def test_heic_gets_a_clean_copy_and_a_browser_rendition(world: World, app) -> None:  # noqa: ANN001
    session, tablet = media_session(world)
    r = upload(tablet, session["id"], sample("photo_ipad.heic"), filename="IMG_0002.HEIC",
               content_type="image/heic")
    assert r.status_code == 201, r.text
    [m] = r.json()["media"]
    assert m["content_type"] == "image/jpeg"  # what the main URL serves: the rendition
    main = _get(tablet, m["url"])
    assert main.headers["content-type"] == "image/jpeg"
    shown = _assert_no_exif(main.content)
    assert shown.format == "JPEG"
    _assert_upright(shown)
    assert _get(tablet, m["thumbnail_url"]).status_code == 200
    kept = _stored_blob(app, m["id"])  # the clean HEIC itself
    heic = _assert_no_exif(kept)
    assert heic.format == "HEIF" and heic.size == shown.size


def test_png_drawing_keeps_its_transparency(world: World) -> None:
    session, tablet = media_session(world)
    r = upload(tablet, session["id"], sample("drawing.png"))
    assert r.status_code == 201, r.text
    [m] = r.json()["media"]
    assert m["content_type"] == "image/png" and (m["width"], m["height"]) == (800, 600)
    image = Image.open(io.BytesIO(_get(tablet, m["url"]).content))
    assert image.mode == "RGBA" and image.getextrema()[3][0] < 255
    thumb = Image.open(io.BytesIO(_get(tablet, m["thumbnail_url"]).content))
    assert thumb.mode == "RGBA"


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "JPEG"])
def test_png_webp_and_jpeg_lose_exif_xmp_and_text(world: World, fmt: str) -> None:
    from PIL import PngImagePlugin
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Synthetic", "Phone", 3
    exif[0x8825] = {1: "N", 2: (50.0, 50.0, 11.76), 3: "W", 4: (0.0, 46.0, 45.12)}
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">synthetic-secret</x:xmpmeta>'
    image = Image.new("RGB", (64, 48), "blue")
    image.paste((200, 0, 0), (0, 0, 16, 16))  # a red corner, to see the rotation
    extra: dict = {"exif": exif, "xmp": xmp}
    if fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", "synthetic-secret")
        extra["pnginfo"] = text
    elif fmt == "JPEG":
        extra["comment"] = b"synthetic-secret"
    buffer = io.BytesIO()
    image.save(buffer, fmt, **extra)
    assert b"synthetic-secret" in buffer.getvalue()
    session, tablet = media_session(world)
    r = upload(tablet, session["id"], buffer.getvalue())
    assert r.status_code == 201, r.text
    [m] = r.json()["media"]
    for url in (m["url"], m["thumbnail_url"]):
        data = _get(tablet, url).content
        assert b"synthetic-secret" not in data and b"Phone" not in data
        shown = _assert_no_exif(data)
        assert not shown.text if hasattr(shown, "text") else True
    stored = Image.open(io.BytesIO(_get(tablet, m["url"]).content)).convert("RGB")
    assert stored.getpixel((60, 44))[0] > 150  # orientation 3 applied: red now bottom right


def test_a_multi_picture_jpeg_is_kept_as_its_first_picture(world: World) -> None:
    first, second = Image.new("RGB", (40, 30), "red"), Image.new("RGB", (40, 30), "blue")
    buffer = io.BytesIO()
    first.save(buffer, "MPO", save_all=True, append_images=[second])
    session, tablet = media_session(world)
    r = upload(tablet, session["id"], buffer.getvalue())
    assert r.status_code == 201, r.text
    [m] = r.json()["media"]
    assert m["content_type"] == "image/jpeg"
    shown = Image.open(io.BytesIO(_get(tablet, m["url"]).content))
    assert shown.format == "JPEG" and getattr(shown, "n_frames", 1) == 1
    assert shown.convert("RGB").getpixel((5, 5))[0] > 200


# --- audio -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", AUDIO_SAMPLES)
def test_every_tablet_recording_is_accepted_and_plays(world: World, name: str) -> None:
    session, tablet = media_session(world)
    r = upload(tablet, session["id"], sample(name), kind="audio", filename=name)
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["kind"] == "audio"
    [m] = entry["media"]
    assert m["duration_s"] == pytest.approx(6.0, abs=0.1)
    assert m["channels"] == 1 and m["codec"]
    assert m["thumbnail_url"] is None and m["playback_url"]
    playback = _get(tablet, m["playback_url"])
    assert playback.status_code == 200 and playback.headers["content-type"] == "audio/mp4"
    assert decoded_seconds(playback.content) == pytest.approx(6.0, abs=0.1)
    with av.open(io.BytesIO(playback.content)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    stored = _get(tablet, m["url"])
    assert stored.headers["content-type"] == m["content_type"]
    assert decoded_seconds(stored.content) == pytest.approx(6.0, abs=0.1)


@pytest.mark.parametrize("fmt,codec,served_type", [
    ("ipod", "aac", "audio/mp4"), ("webm", "libopus", "audio/webm"),
    ("ogg", "libopus", "audio/ogg"), ("mp3", "libmp3lame", "audio/mpeg"),
    ("wav", "pcm_s16le", "audio/wav")])
def test_recordings_lose_their_container_metadata(world: World, fmt: str, codec: str,
                                                  served_type: str) -> None:
    tagged = make_tagged_audio(fmt, codec)
    assert b"Synthetic Person" in tagged
    session, tablet = media_session(world)
    r = upload(tablet, session["id"], tagged, kind="audio")
    assert r.status_code == 201, r.text
    [m] = r.json()["media"]
    assert m["content_type"] == served_type
    for url in (m["url"], m["playback_url"]):
        data = _get(tablet, url).content
        for secret in (b"Synthetic", b"synthetic", b"+51.5000"):
            assert secret not in data
        with av.open(io.BytesIO(data)) as container:
            tags = {k.lower() for k in container.metadata} | \
                {k.lower() for s in container.streams for k in s.metadata}
            assert tags <= TECHNICAL_TAGS, tags


def _video(with_audio: bool) -> bytes:
    """A tiny MP4 holding a video stream, and a sound stream if asked."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        sound = out.add_stream("aac", rate=48000, layout="mono") if with_audio else None
        for i in range(5):
            frame = av.VideoFrame.from_image(Image.new("RGB", (32, 32), "green"))
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            silence = av.AudioFrame(format="fltp", layout="mono", samples=1024)
            silence.planes[0].update(bytes(4 * 1024))
            silence.sample_rate, silence.pts = 48000, 0
            for packet in list(sound.encode(silence)) + list(sound.encode(None)):
                out.mux(packet)
    return buffer.getvalue()


@pytest.mark.parametrize("with_audio,status,slug", [(False, 422, "no-audio-stream"),
                                                     (True, 415, "unsupported-audio")])
def test_video_is_not_a_recording(world: World, app, with_audio: bool, status: int,  # noqa: ANN001
                                  slug: str) -> None:
    session, tablet = media_session(world)
    before = Snapshot(app)
    body = assert_problem(upload(tablet, session["id"], _video(with_audio), kind="audio"),
                          status)
    assert body["type"].endswith(slug)
    before.assert_unchanged()


@pytest.mark.parametrize("name", ["voice_ipad.m4a", "voice_chrome.webm", "voice.wav"])
def test_a_recording_past_the_time_limit_is_refused(world: World, app, monkeypatch,  # noqa: ANN001
                                                    name: str) -> None:
    monkeypatch.setattr(app.state.settings, "media_audio_max_seconds", 3)
    session, tablet = media_session(world)
    before = Snapshot(app)
    body = assert_problem(upload(tablet, session["id"], sample(name), kind="audio"), 422)
    assert body["type"].endswith("audio-too-long") and body["max_seconds"] == 3
    before.assert_unchanged()


def test_draft_mode_thumbnail_for_thumbnail_only_callers(tmp_path) -> None:  # noqa: ANN001
    thumb = photos.draft_thumbnail(SAMPLES / "photo_gps_rotated.jpg", 320)
    assert thumb.size == (240, 320)  # EXIF orientation applied
    _assert_upright(thumb)


# --- refused, and nothing left behind -----------------------------------------------------

@pytest.mark.parametrize("name,kind,status,slug", [
    ("bomb.png", "photo", 422, "image-too-large"),
    ("truncated.jpg", "photo", 422, "unreadable-photo"),
    ("not_an_image.jpg", "photo", 415, "unsupported-photo"),
    ("scripted.svg", "photo", 415, "unsupported-photo"),
    ("not_audio.m4a", "audio", 415, "unsupported-audio"),
    # A photo sent as a recording, or the reverse, is told which kind it is (issue 12).
    ("photo_gps_rotated.jpg", "audio", 422, "wrong-kind"),
    ("voice_ipad.m4a", "photo", 422, "wrong-kind"),
])
def test_hostile_and_broken_files_are_refused_and_leave_nothing(
        world: World, app, name: str, kind: str, status: int, slug: str) -> None:  # noqa: ANN001
    session, tablet = media_session(world)
    before = Snapshot(app)
    r = upload(tablet, session["id"], sample(name), kind=kind, filename=name,
               content_type="image/jpeg")
    body = assert_problem(r, status)
    assert body["type"].endswith(slug)
    assert "JPEG" in body["detail"] or "MP4" in body["detail"] or status == 422
    before.assert_unchanged()


def test_a_bomb_is_refused_before_its_pixels_are_decoded(world: World, monkeypatch) -> None:  # noqa: ANN001
    decoded = []
    monkeypatch.setattr(Image.Image, "load",
                        lambda self: decoded.append(self.size) or None)  # would decode
    session, tablet = media_session(world)
    assert_problem(upload(tablet, session["id"], sample("bomb.png")), 422)
    assert decoded == []


@pytest.mark.parametrize("fmt,named", [("GIF", "GIF"), ("PNG", "Animated"),
                                       ("WEBP", "Animated")])
def test_gifs_and_animations_are_refused_naming_what_is_accepted(
        world: World, app, fmt: str, named: str) -> None:  # noqa: ANN001
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:])
    session, tablet = media_session(world)
    before = Snapshot(app)
    body = assert_problem(upload(tablet, session["id"], buffer.getvalue()), 415)
    assert named in body["detail"] and "JPEG, PNG, WebP or HEIC" in body["detail"]
    before.assert_unchanged()


def test_an_empty_file_is_refused(world: World, app) -> None:  # noqa: ANN001
    session, tablet = media_session(world)
    before = Snapshot(app)
    body = assert_problem(upload(tablet, session["id"], b""), 422)
    assert body["type"].endswith("empty-file")
    before.assert_unchanged()


@pytest.mark.parametrize("file_first", [False, True])
def test_one_byte_over_the_limit_is_413(world: World, app, monkeypatch,  # noqa: ANN001
                                        file_first: bool) -> None:
    data = sample("drawing.png")
    monkeypatch.setattr(app.state.settings, "media_photo_max_bytes", len(data) - 1)
    session, tablet = media_session(world)
    before = Snapshot(app)
    body, content_type = multipart(form("photo"), data, file_first=file_first)
    r = tablet.post(f"/sessions/{session['id']}/media", content=body,
                    headers={"Content-Type": content_type})
    problem = assert_problem(r, 413)
    assert problem["max_bytes"] == len(data) - 1
    before.assert_unchanged()
    # Exactly at the limit is fine.
    monkeypatch.setattr(app.state.settings, "media_photo_max_bytes", len(data))
    assert upload(tablet, session["id"], data).status_code == 201


def test_the_upload_is_stopped_as_soon_as_it_passes_the_limit(world: World, app,  # noqa: ANN001
                                                               monkeypatch) -> None:
    monkeypatch.setattr(app.state.settings, "media_audio_max_bytes", 100_000)
    session, tablet = media_session(world)
    before = Snapshot(app)
    head, content_type = multipart(form("audio"), None)
    prefix = head[: -len(b"--cvboundary1234--\r\n")] + (
        b'--cvboundary1234\r\nContent-Disposition: form-data; name="file"; '
        b'filename="a.wav"\r\n\r\n')
    chunks = [prefix] + [b"\0" * 10_000] * 1000  # 10 MB would follow
    sent, consumed = asgi_post(app, f"/api/v1/sessions/{session['id']}/media", tablet.token,
                               chunks, content_type)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    assert consumed <= 1 + 100_000 // 10_000 + 2  # read no further than the limit
    before.assert_unchanged()


def test_a_declared_length_past_every_limit_is_refused_before_reading(world: World, app,  # noqa: ANN001
                                                                       monkeypatch) -> None:
    monkeypatch.setattr(app.state.settings, "media_photo_max_bytes", 100)
    monkeypatch.setattr(app.state.settings, "media_audio_max_bytes", 100)
    session, tablet = media_session(world)
    body, content_type = multipart(form("photo"), b"\0" * 200_000)
    r = tablet.post(f"/sessions/{session['id']}/media", content=body,
                    headers={"Content-Type": content_type})
    assert_problem(r, 413)


def test_a_body_that_never_ends_is_stopped_whatever_its_parts(world: World, app,  # noqa: ANN001
                                                               monkeypatch) -> None:
    monkeypatch.setattr(app.state.settings, "media_photo_max_bytes", 10_000)
    monkeypatch.setattr(app.state.settings, "media_audio_max_bytes", 10_000)
    session, tablet = media_session(world)
    path = f"/api/v1/sessions/{session['id']}/media"
    body, content_type = multipart(form("photo"), b"tiny")
    for chunks, status in (
            ([b"not a part " * 1000] * 1000, 422),   # garbage where the first part goes
            ([body] + [b"epilogue " * 10_000] * 1000, 413)):  # endless bytes after the end
        sent, consumed = asgi_post(app, path, tablet.token, chunks, content_type)
        assert next(m for m in sent if m["type"] == "http.response.start")["status"] == status
        assert consumed < 10


def test_a_body_without_a_file_part_is_422(world: World, app) -> None:  # noqa: ANN001
    session, tablet = media_session(world)
    before = Snapshot(app)
    body, content_type = multipart(form("photo"), None)
    r = tablet.post(f"/sessions/{session['id']}/media", content=body,
                    headers={"Content-Type": content_type})
    problem = assert_problem(r, 422)
    assert problem["errors"][0]["loc"] == ["body", "file"]
    before.assert_unchanged()


def test_missing_fields_and_non_multipart_bodies_are_refused(world: World, app) -> None:  # noqa: ANN001
    session, tablet = media_session(world)
    before = Snapshot(app)
    r = tablet.post(f"/sessions/{session['id']}/media", data={"kind": "video"},
                    files={"file": ("a.png", sample("drawing.png"), "image/png")})
    problem = assert_problem(r, 422)
    locs = {tuple(e["loc"]) for e in problem["errors"]}
    assert {("body", "kind"), ("body", "client_id"), ("body", "captured_at")} <= locs
    assert_problem(tablet.post(f"/sessions/{session['id']}/media",
                               json={"kind": "photo"}), 415)
    before.assert_unchanged()


def test_a_connection_dropped_halfway_leaves_nothing(world: World, app) -> None:  # noqa: ANN001
    session, tablet = media_session(world)
    before = Snapshot(app)
    body, content_type = multipart(form("audio"), sample("voice.wav"))
    quarter = len(body) // 4
    sent, _ = asgi_post(app, f"/api/v1/sessions/{session['id']}/media", tablet.token,
                        [body[:quarter], body[quarter: 2 * quarter]], content_type,
                        disconnect=True)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert 400 <= start["status"] < 500
    assert b"upload-interrupted" in b"".join(m.get("body", b"") for m in sent)
    before.assert_unchanged()


def test_a_failure_while_storing_leaves_no_row_and_no_file(world: World, app,  # noqa: ANN001
                                                            monkeypatch) -> None:
    from app.services import audit

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("disk on fire")

    session, tablet = media_session(world)
    before = Snapshot(app)
    monkeypatch.setattr(audit, "record", broken)  # fails after the blobs were put
    assert_problem(upload(tablet, session["id"], sample("drawing.png")), 500)
    before.assert_unchanged()


# --- consent and who may upload -------------------------------------------------------------

def test_a_photo_needs_an_active_photo_consent(world: World, app) -> None:  # noqa: ANN001
    r = world.worker.post(f"/children/{world.child_id}/consents",
                          json={"given_by": "child", "scopes": ["symbols"],
                                "method": "symbols", "child_assent": "agreed"})
    assert r.status_code == 201
    world.worker.post(f"/consents/{world.consent['id']}/withdraw",
                      json={"reason": "No photos."})
    session, tablet = media_session(world)
    before = Snapshot(app)
    body = assert_problem(upload(tablet, session["id"], sample("drawing.png")), 403)
    assert body["missing_scope"] == "photo"
    body = assert_problem(upload(tablet, session["id"], sample("voice.mp3"), kind="audio"), 403)
    assert body["missing_scope"] == "audio"
    before.assert_unchanged()


def test_who_may_upload(world: World, app) -> None:  # noqa: ANN001
    session = world.open_session()
    sid = session["id"]
    assert upload(world.worker, sid, sample("drawing.png")).status_code == 201
    assert_problem(upload(world.manager, sid, sample("drawing.png")), 403)
    assert_problem(upload(world.colleague, sid, sample("drawing.png")), 404)
    assert_problem(upload(world.other_manager, sid, sample("drawing.png")), 404)
    assert_problem(upload(world.admin, sid, sample("drawing.png")), 404)
    assert_problem(upload(world.anonymous, sid, sample("drawing.png")), 401)
    other = world.capture(world.open_session())
    assert_problem(upload(other, sid, sample("drawing.png")), 403)
    tablet = world.capture(session)
    world.worker.post(f"/sessions/{sid}/end")
    assert_problem(upload(tablet, sid, sample("drawing.png")), 401)


# --- once only ----------------------------------------------------------------------------

def test_the_same_upload_again_answers_the_stored_entry(world: World, app) -> None:  # noqa: ANN001
    session, tablet = media_session(world)
    fields = form("audio", topic="home")
    first = upload(tablet, session["id"], sample("voice_ipad.m4a"), fields=fields)
    assert first.status_code == 201
    files = stored(app)
    again = upload(tablet, session["id"], sample("voice_ipad.m4a"), fields=fields)
    assert again.status_code == 200 and again.json() == first.json()
    assert stored(app) == files
    changed = upload(tablet, session["id"], sample("voice.mp3"), fields=fields)
    assert assert_problem(changed, 409)["type"].endswith("client-id-reused")


def test_a_plain_wav_is_kept_as_sent_and_one_with_chunks_is_rewritten(world: World) -> None:
    session, tablet = media_session(world)
    plain = sample("voice.wav")
    [m] = upload(tablet, session["id"], plain, kind="audio").json()["media"]
    assert m["sha256"] == m["upload_sha256"]  # nothing to remove: no second copy made
    assert _get(tablet, m["url"]).content == plain
    size = int.from_bytes(plain[4:8], "little")
    # A LIST/INFO chunk holding an empty comment (ICMT), as recorders add after the data.
    extra = b"LIST" + (12).to_bytes(4, "little") + b"INFO" + b"ICMT" + (0).to_bytes(4, "little")
    tagged = b"RIFF" + (size + len(extra)).to_bytes(4, "little") + plain[8:] + extra
    [m] = upload(tablet, session["id"], tagged, kind="audio").json()["media"]
    assert m["sha256"] != m["upload_sha256"]
    stored = _get(tablet, m["url"]).content
    assert b"LIST" not in stored and b"ICMT" not in stored
    assert decoded_seconds(stored) == pytest.approx(6.0, abs=0.1)


def test_the_same_bytes_under_two_client_ids_share_one_blob(world: World, app) -> None:  # noqa: ANN001
    session, tablet = media_session(world)
    a = upload(tablet, session["id"], sample("voice.wav"), kind="audio").json()
    files = stored(app)
    b = upload(tablet, session["id"], sample("voice.wav"), kind="audio").json()
    assert a["id"] != b["id"]
    assert a["media"][0]["sha256"] == b["media"][0]["sha256"]
    assert stored(app) == files


def test_ten_identical_uploads_at_once_store_one_entry_and_one_file(world: World,  # noqa: ANN001
                                                                     app) -> None:
    session, tablet = media_session(world)
    fields = form("photo")
    data = sample("drawing.png")
    before = Snapshot(app)

    async def run() -> list:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver",
                                      timeout=60) as client:
            return await asyncio.gather(*[
                client.post(f"/api/v1/sessions/{session['id']}/media", data=fields,
                            files={"file": ("d.png", data, "image/png")},
                            headers={"Authorization": f"Bearer {tablet.token}"})
                for _ in range(10)])

    responses = asyncio.run(run())
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 9 + [201], [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["id"] for r in responses}) == 1
    rows = before.rows
    after = row_counts(app)
    assert after["voice_entries"] == rows["voice_entries"] + 1
    assert after["media"] == rows["media"] + 1
    # Only the blobs that one media row names were added (each once, as content-addressed
    # paths are unique); no loser left a file, in the store or in the staging area.
    media_id = responses[0].json()["media"][0]["id"]
    with new_session(app.state.engine) as db:
        keys = {f.sha256 for f in db.exec(select(MediaFile).where(
            MediaFile.media_id == uuid.UUID(media_id)))}
    assert len(keys) == 2  # the stored PNG and its thumbnail
    named = {f"objects/{k}" for k in keys}
    new_files = stored(app) - before.files
    assert new_files <= named


def test_media_jobs_are_capped(world: World, app, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(app.state.media_jobs, "limit", 1)
    app.state.media_jobs._limiters.clear()
    running, peak = [0], [0]
    lock = threading.Lock()
    real = photos.check_and_clean_photo

    def slow(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(photos, "check_and_clean_photo", slow)
    session, tablet = media_session(world)

    async def run() -> list:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver",
                                      timeout=60) as client:
            return await asyncio.gather(*[
                client.post(f"/api/v1/sessions/{session['id']}/media", data=form("photo"),
                            files={"file": ("d.png", sample("drawing.png"), "image/png")},
                            headers={"Authorization": f"Bearer {tablet.token}"})
                for _ in range(4)])

    try:
        responses = asyncio.run(run())
    finally:
        app.state.media_jobs._limiters.clear()
    assert [r.status_code for r in responses] == [201] * 4
    assert peak[0] == 1


# --- media on entries and in the plan ---------------------------------------------------------

def test_media_attached_to_a_symbols_entry(world: World) -> None:
    session, tablet = media_session(world)
    r = tablet.post(f"/sessions/{session['id']}/entries",
                    json=symbols_entry(world.board, ["happy"]))
    symbols = r.json()
    r = upload(tablet, session["id"], sample("voice_chrome.webm"), kind="audio",
               fields=form("audio", entry_client_id=symbols["client_id"]))
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["id"] == symbols["id"] and entry["kind"] == "symbols"
    assert len(entry["media"]) == 1 and entry["media"][0]["kind"] == "audio"
    shown = world.worker.get(f"/entries/{symbols['id']}").json()
    assert shown["media"] == entry["media"]
    photo_entry = upload(tablet, session["id"], sample("drawing.png")).json()
    r = upload(tablet, session["id"], sample("drawing.png"),
               fields=form("photo", entry_client_id=photo_entry["client_id"]))
    assert_problem(r, 422)
    r = upload(tablet, session["id"], sample("drawing.png"),
               fields=form("photo", entry_client_id="00000000-0000-4000-8000-000000000000"))
    assert_problem(r, 422)


def test_media_shows_in_entries_and_the_plan_until_consent_is_withdrawn(world: World) -> None:
    session, tablet = media_session(world)
    photo = upload(tablet, session["id"], sample("drawing.png")).json()
    clip = upload(tablet, session["id"], sample("voice.mp3"), kind="audio").json()
    worker = world.worker

    plan = worker.get(f"/children/{world.child_id}/plan").json()
    latest = {e["id"]: e for e in plan["latest_voice"]}
    assert latest[photo["id"]]["media"][0]["thumbnail_url"]
    assert latest[clip["id"]]["media"][0]["playback_url"]
    listed = worker.get(f"/children/{world.child_id}/entries?kind=photo").json()["items"]
    assert listed[0]["media"][0]["id"] == photo["media"][0]["id"]
    r = worker.put(f"/children/{world.child_id}/plan/sections/about_me",
                   json={"text": "Things I like.", "pinned_entry_ids": [photo["id"]]})
    pinned = next(s for s in r.json()["sections"] if s["key"] == "about_me")
    assert pinned["pinned_entries"][0]["media"][0]["url"] == photo["media"][0]["url"]
    assert worker.post(f"/children/{world.child_id}/plan/versions").status_code == 201

    worker.post(f"/consents/{world.consent['id']}/withdraw", json={"reason": "Changed mind."})
    entry = worker.get(f"/entries/{photo['id']}").json()
    assert entry["media"] == [] and entry["media_withdrawn"] is True
    listed = worker.get(f"/children/{world.child_id}/entries").json()["items"]
    assert all(e["media"] == [] for e in listed)
    plan = worker.get(f"/children/{world.child_id}/plan").json()
    assert plan["latest_voice"] == []
    v1 = worker.get(f"/children/{world.child_id}/plan/versions/1").json()["plan"]
    assert all(e["media"] == [] for e in v1["latest_voice"])
    for m in (photo["media"][0], clip["media"][0]):
        assert assert_problem(_get(worker, m["url"]), 410)["type"].endswith("media-withdrawn")
    assert_problem(_get(tablet, photo["media"][0]["thumbnail_url"]), 410)
