"""No input gives a 500: every integer fits both databases, text never carries NUL, times
are sane, header byte counts are ASCII digits, and bodies are bounded while they are read
(issue 9). Each answer is a 4xx problem naming what to fix, and nothing is stored."""

from __future__ import annotations

import base64
import io
import json
import uuid
from datetime import date, timedelta

import pytest
from PIL import Image
from sqlmodel import func, select

from app.core.db import new_session
from app.models import AuditEvent, Board, Child, Consent, VoiceEntry
from tests.media_support import asgi_post, media_session, sample, upload
from tests.support import World, assert_problem, feelings_board_body, symbols_entry
from tests.sync_support import Tus, enroll

NUL = "Ro\x00bin"
TOO_BIG = 2**31  # one past PostgreSQL's INTEGER


def _counts(app) -> dict:  # noqa: ANN001
    with new_session(app.state.engine) as db:
        return {m.__name__: db.exec(select(func.count()).select_from(m)).one()
                for m in (Board, Child, Consent, VoiceEntry)}


def _locs(problem: dict) -> set[str]:
    return {str(part) for e in problem.get("errors", []) for part in e["loc"]}


def _refused(response, field: str, status: int = 422) -> dict:  # noqa: ANN001
    problem = assert_problem(response, status)
    assert field in _locs(problem) or field in problem["detail"], problem
    return problem


# --- text with NUL ---------------------------------------------------------------------

def test_nul_in_any_text_is_refused_by_name(world: World, app) -> None:  # noqa: ANN001
    before = _counts(app)
    child = {"preferred_name": "Lee", "date_of_birth": "2015-04-02", "team_id": world.team_id}
    _refused(world.worker.post("/children", json=child | {"preferred_name": NUL}),
             "preferred_name")
    _refused(world.worker.post("/children", json=child | {"communication": {"notes": NUL}}),
             "notes")
    _refused(world.worker.patch(f"/children/{world.child_id}", json={"preferred_name": NUL}),
             "preferred_name")
    _refused(world.worker.put(f"/children/{world.child_id}/plan/sections/about_me",
                              json={"text": NUL}), "text")
    _refused(world.worker.post(f"/children/{world.child_id}/sessions", json={
        "setting": "home", "purpose": NUL, "board_ids": [world.board["id"]]}), "purpose")
    _refused(world.worker.post("/devices", json={"name": NUL}), "name")
    _refused(world.admin.post("/teams", json={"name": NUL}), "name")
    _refused(world.anonymous.post("/auth/token", data={"username": NUL, "password": "x"}),
             "username")
    _refused(world.worker.post(f"/children/{world.child_id}/consents", json={
        "given_by": "child", "scopes": ["symbols"], "method": "symbols",
        "child_assent": "agreed", "notes": NUL}), "notes")
    _refused(world.worker.get(f"/children/{world.child_id}/entries", params={"topic": NUL}),
             "topic")
    board = feelings_board_body()
    board["buttons"][0]["label"] = NUL
    _refused(world.admin.post("/boards", json=board), "label")
    # Open Board Format fields the service does not know are kept as sent: NUL-free too.
    board = feelings_board_body()
    board["buttons"][0]["ext_app_note"] = {"deep": [NUL]}
    _refused(world.admin.post("/boards", json=board), "ext_app_note")
    assert _counts(app) == before


def test_nul_in_an_entry_is_refused_and_nothing_stored(world: World, app) -> None:  # noqa: ANN001
    session = world.open_session()
    tablet = world.capture(session)
    path = f"/sessions/{session['id']}/entries"
    before = _counts(app)
    for field in ("prompt", "topic"):
        _refused(tablet.post(path, json=symbols_entry(world.board, ["happy"]) | {field: NUL}),
                 field)
    _refused(tablet.post(path, json=symbols_entry(world.board, ["hap\x00py"])), "button_ids")
    _refused(world.worker.post(path, json={
        "kind": "observation", "client_id": str(uuid.uuid4()),
        "captured_at": symbols_entry(world.board, [])["captured_at"],
        "source": "adult_interpretation", "text": NUL}), "text")
    assert _counts(app) == before


# --- integers that do not fit ------------------------------------------------------------

def test_integers_past_what_the_databases_hold_are_422(world: World, app) -> None:  # noqa: ANN001
    session = world.open_session()
    tablet = world.capture(session)
    before = _counts(app)
    _refused(tablet.post(f"/sessions/{session['id']}/entries",
                         json=symbols_entry(world.board, ["happy"], board_version=TOO_BIG)),
             "board_version")
    board = world.board["id"]
    _refused(world.worker.get(f"/boards/{board}/versions/{TOO_BIG}"), "version")
    _refused(world.worker.get(f"/boards/{board}/versions/{TOO_BIG}/images/x"), "version")
    _refused(world.worker.get(f"/boards/{board}/export.obf", params={"version": TOO_BIG}),
             "version")
    _refused(world.worker.get(f"/children/{world.child_id}/plan/versions/{TOO_BIG}"),
             "version")
    _refused(world.worker.get(f"/children/{world.child_id}/plan/versions/{10**30}"),
             "version")
    assert _counts(app) == before


def test_cursors_that_decode_to_impossible_values_are_422(world: World) -> None:
    def cursor(raw: str) -> str:
        return base64.urlsafe_b64encode(raw.encode()).decode()

    device = enroll(world.worker)
    key = {"X-Device-Key": device["device_key"]}
    _refused(world.worker.get("/sync/state", params={
        "device_id": device["id"], "cursor": cursor(f"r{2**63}")}, headers=key), "cursor")
    far = f"9999-12-31T23:59:59-12:00|{uuid.uuid4()}"
    _refused(world.worker.get("/children", params={"cursor": cursor(far)}), "cursor")
    _refused(world.worker.get("/alerts", params={"cursor": cursor(f"1|{far}")}), "cursor")


# --- times out of range ----------------------------------------------------------------

@pytest.mark.parametrize("when", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+01:00",
                                  "1970-01-01T00:00:00Z", "2150-01-01T00:00:00Z"])
def test_times_outside_a_sane_range_are_422(world: World, app, when: str) -> None:  # noqa: ANN001
    session = world.open_session()
    tablet = world.capture(session)
    before = _counts(app)
    problem = _refused(tablet.post(f"/sessions/{session['id']}/entries",
                                   json=symbols_entry(world.board, ["happy"], captured_at=when)),
                       "captured_at")
    assert "2000-01-01" in problem["detail"]
    _refused(world.worker.get(f"/children/{world.child_id}/entries", params={"since": when}),
             "since")
    _refused(world.worker.post(f"/children/{world.child_id}/consents", json={
        "given_by": "child", "scopes": ["symbols"], "method": "symbols",
        "child_assent": "agreed", "valid_until": when}), "valid_until")
    assert _counts(app) == before


@pytest.mark.parametrize("born, words", [
    (date.today() + timedelta(days=3), "future"),
    (date.today().replace(year=date.today().year - 26), "25 years"),
])
def test_an_implausible_date_of_birth_is_refused(world: World, app, born: date,  # noqa: ANN001
                                                 words: str) -> None:
    before = _counts(app)
    problem = _refused(world.worker.post("/children", json={
        "preferred_name": "Lee", "date_of_birth": born.isoformat(), "team_id": world.team_id}),
        "date_of_birth")
    assert words in problem["detail"]
    _refused(world.worker.patch(f"/children/{world.child_id}",
                                json={"date_of_birth": born.isoformat()}), "date_of_birth")
    assert world.worker.get(f"/children/{world.child_id}").json()["date_of_birth"] == \
        "2015-04-02"
    assert _counts(app) == before


# --- headers and multipart -------------------------------------------------------------

# Headers travel as latin-1: '²' is one byte there, and str.isdigit() says it is a digit.
@pytest.mark.parametrize("value", ["²", "¹0", "+5", "-1", "1e3", "9" * 30])
def test_tus_byte_counts_are_ascii_digits(world: World, client, value: str) -> None:  # noqa: ANN001
    device = enroll(world.worker)
    session = world.open_session()
    tus = Tus(client, world.worker.token, device)
    meta = Tus.meta("photo", session_id=session["id"])
    problem = assert_problem(client.post("/api/v1/uploads/", headers=tus.headers | {
        "Upload-Length": value.encode("latin-1"), "Upload-Metadata": ",".join(
            f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())}), 400)
    assert "Upload-Length" in problem["detail"]
    url = tus.create(10, meta)
    r = client.patch(url, content=b"0123456789", headers=tus.headers | {
        "Upload-Offset": value.encode("latin-1"), "Content-Type": "application/offset+octet-stream"})
    assert "Upload-Offset" in assert_problem(r, 400)["detail"]


def unique_png() -> bytes:
    """A small PNG no other test uploads (the media store is shared across tests)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), tuple(uuid.uuid4().bytes[:3])).save(buffer, "PNG")
    return buffer.getvalue()


def test_nul_in_tus_metadata_is_refused(world: World, client) -> None:  # noqa: ANN001
    device = enroll(world.worker)
    session = world.open_session()
    tus = Tus(client, world.worker.token, device)
    for field in ("filename", "prompt"):
        r = tus.create_raw(10, Tus.meta("photo", session_id=session["id"], **{field: NUL}))
        assert field in assert_problem(r, 400)["detail"]


def test_a_range_in_other_digits_is_ignored(world: World) -> None:
    session, tablet = media_session(world)
    entry = upload(tablet, session["id"], unique_png()).json()
    url = entry["media"][0]["url"].removeprefix("/api/v1")
    r = world.worker.get(url, headers={"Range": "bytes=²-".encode("latin-1")})
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_repeated_multipart_field_counts_towards_the_limit(world: World, app) -> None:  # noqa: ANN001
    session, tablet = media_session(world)
    before = _counts(app)
    boundary = "cvboundary5678"
    parts = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="caption"\r\n\r\n'
                     f'x\r\n'.encode() for _ in range(500))
    body = parts + f"--{boundary}--\r\n".encode()
    r = tablet.post(f"/sessions/{session['id']}/media", content=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert "Too many form fields" in assert_problem(r, 422)["detail"]
    assert _counts(app) == before


# --- body size ---------------------------------------------------------------------------

def _entry_body(world: World, padding: int) -> bytes:
    return json.dumps(symbols_entry(world.board, ["happy"]) | {"pad": "x" * padding}).encode()


def test_a_json_body_past_the_limit_is_413_before_parsing(world: World, app) -> None:  # noqa: ANN001
    limit = app.state.settings.body_max_bytes
    session = world.open_session()
    r = world.worker.post(f"/sessions/{session['id']}/entries",
                          content=_entry_body(world, limit),
                          headers={"Content-Type": "application/json"})
    assert assert_problem(r, 413)["limit_bytes"] == limit
    # Without a Content-Length (chunked), reading stops once the limit is passed.
    chunks = [b"[" + b" " * (1024 * 1024 - 1)] * (limit // (1024 * 1024) + 20)
    sent, consumed = asgi_post(app, f"/api/v1/sessions/{session['id']}/entries",
                               world.worker.token, chunks, "application/json")
    assert sent[0]["status"] == 413
    assert consumed <= limit // (1024 * 1024) + 1 < len(chunks)
    # A form body (sign-in) has the same limit.
    r = world.anonymous.post("/auth/token", data={"username": "x" * limit, "password": "y"})
    assert_problem(r, 413)


def test_a_sync_batch_has_its_own_larger_limit(world: World, app) -> None:  # noqa: ANN001
    settings = app.state.settings
    assert settings.sync_body_max_bytes > settings.body_max_bytes
    device = enroll(world.worker)
    headers = {"X-Device-Key": device["device_key"], "Content-Type": "application/json"}
    big = json.dumps({"device_id": device["id"], "items": [],
                      "pad": " " * settings.body_max_bytes}).encode()
    # Past the ordinary limit, within the batch's: read and checked (an unknown field).
    assert_problem(world.worker.post("/sync", content=big, headers=headers), 422)
    bigger = b" " * settings.sync_body_max_bytes + big
    assert_problem(world.worker.post("/sync", content=bigger, headers=headers), 413)


def test_an_unauthenticated_body_is_never_read(world: World, app) -> None:  # noqa: ANN001
    # 200 MB that a client without a token starts sending: the answer comes before any of
    # it is read, so the server holds none of it.
    chunks = [b"x" * (1024 * 1024)] * 200
    for path in (f"/api/v1/children/{world.child_id}/consents", "/api/v1/sync",
                 "/api/v1/children", f"/api/v1/sessions/{uuid.uuid4()}/media"):
        sent, consumed = asgi_post(app, path, None, chunks, "application/json",
                                   headers={"Content-Length": str(200 * 1024 * 1024)})
        assert sent[0]["status"] == 401, path
        assert consumed == 0, path
        problem = json.loads(sent[1]["body"])
        assert problem["status"] == 401 and "Sign in" in problem["detail"]
    # Sign-in itself needs no token: its body is read (and bounded).
    r = world.anonymous.post("/auth/token", data={"username": "nobody@example.org",
                                                  "password": "wrong"})
    assert_problem(r, 401)


# --- small things a user tripped over (issue 12) ---------------------------------------

@pytest.mark.parametrize("name, sent_as, words", [
    ("voice_ipad.m4a", "photo", "This is a recording: send it with kind=audio."),
    ("voice.wav", "photo", "This is a recording: send it with kind=audio."),
    ("drawing.png", "audio", "This is a photo: send it with kind=photo."),
])
def test_the_wrong_kind_says_which_kind_it_is(world: World, app, name: str,  # noqa: ANN001
                                              sent_as: str, words: str) -> None:
    session, tablet = media_session(world)
    before = _counts(app)
    problem = assert_problem(upload(tablet, session["id"], sample(name), kind=sent_as), 422)
    assert problem["detail"] == words and "kind" in _locs(problem)
    assert _counts(app) == before


def test_audio_answers_its_sample_rate_and_media_answers_head(world: World) -> None:
    session, tablet = media_session(world)
    entry = upload(tablet, session["id"], sample("voice.wav"), kind="audio").json()
    [clip] = entry["media"]
    assert clip["sample_rate"] in (8000, 16000, 22050, 24000, 44100, 48000)
    for url in (clip["url"], clip["playback_url"]):
        path = url.removeprefix("/api/v1")
        got, head = world.worker.get(path), world.worker.request("HEAD", path)
        assert head.status_code == 200 and head.content == b""
        for name in ("content-type", "content-length", "etag", "accept-ranges"):
            assert head.headers[name] == got.headers[name]
        part = world.worker.request("HEAD", path, headers={"Range": "bytes=0-9"})
        assert part.status_code == 206 and part.headers["content-range"].startswith("bytes 0-9/")
    problem = assert_problem(world.worker.get(clip["url"].removeprefix("/api/v1") +
                                              "/thumbnail"), 404)
    assert problem["detail"] == "This media has no thumbnail: only photos have one."


def test_alerts_name_the_child_and_entries_say_they_raised_one(world: World) -> None:
    board = world.admin.post("/boards", json={
        "name": "Safe", "grid": {"rows": 1, "columns": 2, "order": [["hurt", "happy"]]},
        "buttons": [{"id": "hurt", "label": "hurt", "ext_childvoice_safeguarding": True},
                    {"id": "happy", "label": "happy"}]}).json()
    session = world.worker.post(f"/children/{world.child_id}/sessions", json={
        "setting": "home", "board_ids": [board["id"]]}).json()
    tablet = world.capture(session)
    path = f"/sessions/{session['id']}/entries"
    hurt = tablet.post(path, json=symbols_entry(board, ["hurt"]))
    assert hurt.status_code == 201 and hurt.json()["raised_alert"] is None  # child mode
    happy = world.worker.post(path, json=symbols_entry(board, ["happy"]))
    assert happy.json()["raised_alert"] is False
    [alert] = world.worker.get("/alerts").json()["items"]
    assert alert["preferred_name"] == "Robin"
    assert world.manager.get(f"/alerts/{alert['id']}").json()["preferred_name"] == "Robin"
    shown = {e["id"]: e["raised_alert"]
             for e in world.worker.get(f"/children/{world.child_id}/entries").json()["items"]}
    assert shown == {hurt.json()["id"]: True, happy.json()["id"]: False}
    assert world.worker.get(f"/entries/{hurt.json()['id']}").json()["raised_alert"] is True
