"""Signed URLs: the plan page's pictures and recordings load without a bearer header, each
link serves only its own file, only for the viewer it was made for, only until it expires,
only while that viewer may still see the child; and each use is audited as theirs."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from app.core.clock import clock
from tests.plan_support import PlanWorld, build
from tests.support import World, assert_problem


@pytest.fixture
def plan(world: World, app) -> PlanWorld:  # noqa: ANN001
    return build(world, app)


def _links(plan: PlanWorld) -> list[str]:
    r = plan.world.worker.get(f"/children/{plan.child_id}/plan.html")
    assert r.status_code == 200, r.text
    return [html.unescape(u) for u in re.findall(r'src="(/api/v1/signed/[^"]+)"', r.text)]


def _link(plan: PlanWorld, part: str) -> str:
    return next(u for u in _links(plan) if part in u)


def _trail(world: World) -> list[dict]:
    return world.manager.get(f"/children/{world.child_id}/audit",
                             params={"limit": 200}).json()["items"]


def test_every_picture_and_recording_of_the_page_is_signed_and_loads(plan: PlanWorld,
                                                                    client) -> None:  # noqa: ANN001
    links = _links(plan)
    assert any(f"/media/{plan.photo_media_id}/thumbnail" in u for u in links)
    assert any(f"/media/{plan.audio_media_id}/playback" in u for u in links)
    assert any(f"/boards/{plan.personal_board['id']}/" in u for u in links)
    for url in links:  # no Authorization header, no cookie
        r = client.get(url)
        assert r.status_code == 200, (url, r.text)
        assert r.headers["content-type"].split(";")[0] in ("image/png", "image/jpeg",
                                                           "audio/mp4")


def test_the_recording_is_the_playback_copy_with_ranges(plan: PlanWorld, client) -> None:  # noqa: ANN001
    url = _link(plan, f"/media/{plan.audio_media_id}/playback")
    whole = client.get(url)
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/mp4"
    part = client.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    assert part.content == whole.content[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(whole.content)}"


def test_a_used_link_is_audited_as_the_viewers_read(plan: PlanWorld, client) -> None:  # noqa: ANN001
    world = plan.world
    before = len([e for e in _trail(world) if e["action"] == "media.read.playback"])
    assert client.get(_link(plan, "/playback")).status_code == 200
    assert client.get(_link(plan, f"/boards/{plan.personal_board['id']}/")).status_code == 200
    trail = _trail(world)
    reads = [e for e in trail if e["action"] == "media.read.playback"]
    assert len(reads) == before + 1
    assert reads[0]["actor_id"] == world.worker.user_id
    assert reads[0]["object_id"] == plan.audio_media_id
    board_reads = [e for e in trail if e["action"] == "board.image.read"]
    assert board_reads and board_reads[0]["actor_id"] == world.worker.user_id


def test_an_expired_link_is_refused(plan: PlanWorld, client, app) -> None:  # noqa: ANN001
    url = _link(plan, "/playback")
    lifetime = app.state.settings.signed_url_seconds
    clock.set(datetime.now(timezone.utc) + timedelta(seconds=lifetime + 5))
    body = assert_problem(client.get(url), 403)
    assert body["type"].endswith("/signed-url-expired")


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return f"{parts.path}?{urlencode(query)}"


def test_an_altered_link_is_refused(plan: PlanWorld, client) -> None:  # noqa: ANN001
    url = _link(plan, "/playback")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    flipped = query["signature"][:-2] + ("AA" if query["signature"][-2:] != "AA" else "BB")
    for altered in (_with(url, signature=flipped),
                    _with(url, expires=str(int(query["expires"]) + 3600)),
                    _with(url, viewer=plan.world.colleague.user_id)):
        body = assert_problem(client.get(altered), 403)
        assert body["type"].endswith("/signed-url-invalid")
    assert_problem(client.get(_with(url, signature="")), 422)


def test_a_link_serves_only_its_own_file(plan: PlanWorld, client) -> None:  # noqa: ANN001
    playback = _link(plan, "/playback")
    thumbnail = _link(plan, "/thumbnail")
    # The photo's signature on the recording's path, and another file of the same media.
    photo_query = urlsplit(thumbnail).query
    other_media = urlsplit(playback).path + "?" + photo_query
    assert_problem(client.get(other_media), 403)
    same_media_other_file = urlsplit(thumbnail).path.replace("/thumbnail", "/main") + "?" + \
        photo_query
    assert_problem(client.get(same_media_other_file), 403)
    board = _link(plan, f"/boards/{plan.personal_board['id']}/")
    assert_problem(client.get(urlsplit(board).path.replace("nan-photo", "other") + "?" +
                              urlsplit(board).query), 403)


def test_a_viewer_who_lost_the_child_cannot_use_their_links(plan: PlanWorld, client) -> None:  # noqa: ANN001
    world = plan.world
    playback, board = _link(plan, "/playback"), _link(plan, f"/boards/{plan.personal_board['id']}/")
    r = world.manager.post(f"/children/{world.child_id}/allocations",
                           json={"user_id": world.colleague.user_id})
    assert r.status_code == 201, r.text
    assert_problem(client.get(playback), 404)
    assert_problem(client.get(board), 404)


def test_a_withdrawn_media_link_stops_working(plan: PlanWorld, client) -> None:  # noqa: ANN001
    world = plan.world
    playback = _link(plan, "/playback")
    consents = world.worker.get(f"/children/{world.child_id}/consents").json()["items"]
    for c in consents:
        if c["status"] != "withdrawn":
            world.worker.post(f"/consents/{c['id']}/withdraw", json={"reason": "Asked to."})
    assert_problem(client.get(playback), 410)


def test_bearer_urls_still_work(plan: PlanWorld) -> None:
    r = plan.world.worker.get(f"/media/{plan.audio_media_id}/playback")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mp4"
