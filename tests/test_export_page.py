"""The family's export, readable: its page shows the pictures the child chose and their
photos, plays their recordings from the folder (the playback copy, not the WebM), names
files in words, speaks to the child, reads at phone width and passes axe-core; and the
manager is told what was left out and why, so "Nothing was kept back" is only said when
it is true."""

from __future__ import annotations

import io
import uuid
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.browser import (DESKTOP, PHONE, assert_accessible, assert_fits, browser,  # noqa: F401
                           images_loaded, live_url, new_page, screenshot)
from tests.plan_support import PlanWorld, build
from tests.support import World, consent_body, symbols_entry


@pytest.fixture
def plan(world: World, app) -> PlanWorld:  # noqa: ANN001
    plan = build(world, app)
    tablet = world.capture(plan.session)
    now = datetime.now(timezone.utc).isoformat()
    # One that raised an alert (a marked symbol), one with a sibling in it (not cleared).
    r = tablet.post(f"/sessions/{plan.session['id']}/entries",
                    json=symbols_entry(plan.boards["feelings"], ["hurt"], captured_at=now))
    assert r.status_code == 201, r.text
    plan.entries["alerted"] = r.json()
    r = tablet.post(f"/sessions/{plan.session['id']}/entries", json={
        "kind": "text", "client_id": str(uuid.uuid4()), "captured_at": now,
        "source": "child_direct", "text": "My brother shouted.",
        "other_people": ["older brother"]})
    assert r.status_code == 201, r.text
    plan.entries["sibling"] = r.json()
    return plan


def _export(world: World) -> tuple[zipfile.ZipFile, dict]:
    r = world.manager.get(f"/children/{world.child_id}/export")
    assert r.status_code == 200, r.text
    return zipfile.ZipFile(io.BytesIO(r.content)), dict(r.headers)


def test_files_are_named_in_words_and_recordings_are_the_playback_copy(plan: PlanWorld) -> None:
    archive, _ = _export(plan.world)
    names = set(archive.namelist())
    day = plan.entries["photo"]["captured_at"][:10]
    assert f"media/{day} photo 1.jpg" in names
    assert f"media/{day} recording 1.m4a" in names
    recording = archive.read(f"media/{day} recording 1.m4a")
    assert recording[4:8] == b"ftyp"  # an MP4 container (AAC), not the WebM as sent
    assert not [n for n in names if n.endswith(".webm")]
    for picture in ("happy.png", "calm.png", "music.png", "Nan.png", "like.png"):
        assert f"pictures/{picture}" in names, picture
    page = archive.read("index.html").decode()
    assert "You said" in page and "We noticed" in page and "Your mum told us" in page
    assert "Robin" not in page and "tired" not in page
    assert "hurt" not in page and "alert" not in page.lower()
    assert "My brother shouted." not in page and "Other people appear" in page
    assert "Nothing was kept back" not in page
    assert "Some other things are not in this folder." in page


def test_the_manager_is_told_what_was_left_out_and_why(plan: PlanWorld) -> None:
    world = plan.world
    _, headers = _export(world)
    assert headers["link"] == f'</api/v1/children/{world.child_id}/export/left-out>; ' \
        'rel="describedby"'
    r = world.manager.get(f"/children/{world.child_id}/export/left-out")
    assert r.status_code == 200, r.text
    body = r.json()
    reasons = {item["entry_id"]: item["reason"] for item in body["left_out"]}
    assert reasons == {plan.entries["alerted"]["id"]: "safeguarding_alert",
                       plan.entries["sibling"]["id"]: "other_people_not_cleared",
                       plan.entries["withdrawn"]["id"]: "no_share_family_consent"}
    assert int(headers["x-left-out"]) == len(reasons)
    assert all(item["explanation"] for item in body["left_out"])
    assert "hurt" not in r.text and "brother" not in r.text  # what, not the words
    # The manager's own: not the worker's, not another team's.
    assert world.worker.get(f"/children/{world.child_id}/export/left-out").status_code == 403
    assert world.other_manager.get(
        f"/children/{world.child_id}/export/left-out").status_code == 404
    trail = world.manager.get(f"/children/{world.child_id}/audit",
                              params={"limit": 200}).json()["items"]
    assert "child.export.left_out" in [e["action"] for e in trail]


def test_nothing_was_kept_back_only_when_true(world: World) -> None:
    world.worker.post(f"/consents/{world.consent['id']}/withdraw", json={"reason": "New one."})
    world.worker.post(f"/children/{world.child_id}/consents",
                      json=consent_body(["symbols", "plan", "share_family"]))
    session = world.open_session()
    r = world.capture(session).post(f"/sessions/{session['id']}/entries",
                                    json=symbols_entry(world.board, ["happy"]))
    assert r.status_code == 201, r.text
    archive, headers = _export(world)
    assert "Nothing was kept back." in archive.read("index.html").decode()
    assert headers["x-left-out"] == "0"
    assert world.manager.get(f"/children/{world.child_id}/export/left-out").json()[
        "left_out"] == []


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_the_export_page_in_chromium(browser, live_url: str, plan: PlanWorld,  # noqa: ANN001, F811
                                     viewport: dict, tmp_path: Path) -> None:
    archive, _ = _export(plan.world)
    archive.extractall(tmp_path)
    view = new_page(browser, live_url, viewport)
    try:
        view.goto((tmp_path / "index.html").as_uri())
        view.wait_for_load_state("networkidle")
        assert view.get_by_role("heading", level=1, name="What you told us").is_visible()
        text = view.locator("main").inner_text()
        assert "You said" in text and "tired" not in text
        assert view.locator("figure.symbol img").count() >= 6
        assert view.locator(".photo img").count() == 1
        assert images_loaded(view) == []
        view.evaluate("() => { const a = document.querySelector('audio'); a.preload = 'auto';"
                      " a.load(); }")
        view.wait_for_function("() => document.querySelector('audio').readyState >= 2",
                               timeout=15000)
        assert view.evaluate("() => document.querySelector('audio').duration") > 1
        assert_accessible(view)
        assert_fits(view)
        screenshot(view, f"export-{viewport['width']}")
        assert not view.third_party_requests
    finally:
        view.context.close()
