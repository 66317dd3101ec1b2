"""Serving media: Range for seeking, caching headers, and exactly who may fetch each URL."""

from __future__ import annotations

import pytest

from tests.media_support import media_session, sample, upload
from tests.support import Api, World, assert_problem


@pytest.fixture
def recorded(world: World) -> dict:
    """A session with one photo and one recording in it, and the callers to try."""
    session, tablet = media_session(world)
    photo = upload(tablet, session["id"], sample("photo_ipad.heic")).json()["media"][0]
    clip = upload(tablet, session["id"], sample("voice.wav"), kind="audio").json()["media"][0]
    other_session = world.capture(world.open_session())
    ended = world.open_session()
    ended_tablet = world.capture(ended)
    world.worker.post(f"/sessions/{ended['id']}/end")
    return {"session": session, "tablet": tablet, "photo": photo, "clip": clip,
            "other_session": other_session, "ended_tablet": ended_tablet}


def _get(api: Api, url: str, **kw):  # noqa: ANN003, ANN202
    return api.get(url.removeprefix("/api/v1"), **kw)


def test_a_media_response_carries_safe_headers(world: World, recorded: dict) -> None:
    clip = recorded["clip"]
    r = _get(world.worker, clip["url"])
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/wav"
    assert r.headers["etag"] == f'"{clip["sha256"]}"'
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"].startswith("private")
    assert "no-store" not in r.headers["cache-control"]
    assert r.headers["accept-ranges"] == "bytes"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("inline") and "Robin" not in disposition
    assert world.child["preferred_name"] not in disposition
    assert int(r.headers["content-length"]) == len(r.content) == clip["bytes"]


def test_range_requests(world: World, recorded: dict) -> None:
    clip = recorded["clip"]
    whole = _get(world.worker, clip["url"]).content
    size = len(whole)

    r = _get(world.worker, clip["url"], headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.content == whole[:100]
    assert r.headers["content-range"] == f"bytes 0-99/{size}"
    assert r.headers["content-length"] == "100"

    r = _get(world.worker, clip["url"], headers={"Range": "bytes=100-"})
    assert r.status_code == 206 and r.content == whole[100:]
    assert r.headers["content-range"] == f"bytes 100-{size - 1}/{size}"

    r = _get(world.worker, clip["url"], headers={"Range": "bytes=-100"})
    assert r.status_code == 206 and r.content == whole[-100:]
    assert r.headers["content-range"] == f"bytes {size - 100}-{size - 1}/{size}"

    r = _get(world.worker, clip["url"], headers={"Range": f"bytes={size - 10}-{size + 500}"})
    assert r.status_code == 206 and r.content == whole[-10:]

    for unsatisfiable in (f"bytes={size}-", f"bytes={size + 100}-{size + 200}", "bytes=-0"):
        r = _get(world.worker, clip["url"], headers={"Range": unsatisfiable})
        assert_problem(r, 416)
        assert r.headers["content-range"] == f"bytes */{size}"

    # Several ranges, or one we cannot read: the whole file (RFC 9110 lets us ignore it).
    for ignored in ("bytes=0-1,5-6", "lines=1-2", "bytes=9-3"):
        r = _get(world.worker, clip["url"], headers={"Range": ignored})
        assert r.status_code == 200 and r.content == whole

    # If-Range with another version's tag: the whole file, not a piece of the wrong one.
    r = _get(world.worker, clip["url"], headers={"Range": "bytes=0-9", "If-Range": '"x"'})
    assert r.status_code == 200 and len(r.content) == size
    r = _get(world.worker, clip["url"],
             headers={"Range": "bytes=0-9", "If-Range": f'"{clip["sha256"]}"'})
    assert r.status_code == 206 and r.content == whole[:10]

    # The playback copy seeks too (iOS asks for bytes=0-1 first).
    r = _get(world.worker, clip["playback_url"], headers={"Range": "bytes=0-1"})
    assert r.status_code == 206 and len(r.content) == 2


def test_a_cached_copy_is_revalidated(world: World, recorded: dict) -> None:
    photo = recorded["photo"]
    r = _get(world.worker, photo["url"], headers={"If-None-Match": f'"{photo["sha256"]}"'})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["etag"] == f'"{photo["sha256"]}"'
    r = _get(world.worker, photo["url"], headers={"If-None-Match": '"something-else"'})
    assert r.status_code == 200


def test_each_kind_has_only_its_own_urls(world: World, recorded: dict) -> None:
    photo, clip = recorded["photo"], recorded["clip"]
    assert photo["playback_url"] is None and clip["thumbnail_url"] is None
    assert_problem(_get(world.worker, photo["url"] + "/playback"), 404)
    assert_problem(_get(world.worker, clip["url"] + "/thumbnail"), 404)
    assert_problem(world.worker.get("/media/00000000-0000-4000-8000-000000000000"), 404)


ROLES = {
    # role: expected status for every media URL of this child's session
    "worker": 200,          # allocated
    "colleague": 404,       # another worker of the same team
    "manager": 200,         # manager of the child's team
    "other_manager": 404,   # manager of another team
    "other_worker": 404,    # worker of another team
    "admin": 404,           # no child content unless allocated
    "tablet": 200,          # this session's capture token
    "other_session": 404,   # another session's capture token (same child)
    "ended_tablet": 401,    # the token of a session that has ended
    "anonymous": 401,       # no token
}


@pytest.mark.parametrize("role,expected", ROLES.items())
def test_who_may_fetch_each_media_url(world: World, recorded: dict, role: str,
                                      expected: int) -> None:
    caller = recorded.get(role) or getattr(world, role)
    urls = [recorded["photo"]["url"], recorded["photo"]["thumbnail_url"],
            recorded["clip"]["url"], recorded["clip"]["playback_url"]]
    for url in urls:
        r = _get(caller, url)
        if expected == 200:
            assert r.status_code == 200, (url, r.text)
            assert r.content
        else:
            body = assert_problem(r, expected)
            assert "Robin" not in body["detail"]


def test_a_new_worker_sees_media_captured_before_them(world: World, recorded: dict) -> None:
    r = world.manager.post(f"/children/{world.child_id}/allocations",
                           json={"user_id": world.colleague.user_id})
    assert r.status_code == 201, r.text
    assert _get(world.colleague, recorded["photo"]["url"]).status_code == 200
    assert_problem(_get(world.worker, recorded["photo"]["url"]), 404)


def test_each_fetch_is_audited(world: World, recorded: dict, app) -> None:  # noqa: ANN001
    from sqlalchemy import text
    _get(world.worker, recorded["clip"]["playback_url"], headers={"Range": "bytes=0-9"})
    with app.state.engine.connect() as conn:
        actions = [row[0] for row in conn.execute(text(
            "SELECT action FROM audit_events ORDER BY id DESC LIMIT 1"))]
    assert actions == ["media.read.playback"]
