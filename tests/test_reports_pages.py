"""The handover, the timeline and the voice report in Chromium with axe-core: 0 WCAG 2.2
A/AA violations at 390 px and 1280 px, nothing wider than a phone (wide tables scroll in
their own labelled region), no third-party request, and what a person would check."""

from __future__ import annotations

import pytest

from tests.browser import (DESKTOP, PHONE, assert_accessible, assert_fits, browser,  # noqa: F401
                           images_loaded, live_url, new_page, screenshot, sign_in_page)
from tests.reports_support import Visits
from tests.support import World

VIEWPORTS = pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])


@pytest.fixture
def record(world: World) -> dict:
    """A child with a few visits, another never heard, an overdue alert."""
    v = Visits(world)
    robin = world.child_id
    r = world.worker.patch(f"/children/{robin}", json={"communication": {
        "methods": ["makaton"], "yes_signal": "Smiles", "no_signal": "Turns away",
        "happy_signs": "Hums", "upset_signs": "Covers ears",
        "notes": "Give a long time to answer; count to ten in your head."}})
    assert r.status_code == 200, r.text
    v.add_child("Sky with a rather long preferred name for a narrow screen")
    v.at(0)
    first = v.visit(robin, purpose="school", setting="school")
    v.mat(first, [("school", "like"), ("park", "like"), ("swimming", "not sure")])
    v.symbols(first, ["happy", "sad"])
    v.end(first)
    v.at(7)
    second = v.visit(robin, purpose="how school is going now that the new class has started")
    v.mat(second, [("school", "don't like"), ("park", "like"), ("swimming", "like")])
    v.symbols(second, ["hurt"])
    v.observation(second, "Looked at the door often; calmer once outside in the garden.")
    v.end(second)
    r = world.worker.put(f"/children/{robin}/plan/sections/my_wishes_and_feelings",
                         json={"text": "I want to keep swimming on Fridays."})
    assert r.status_code == 200, r.text
    v.at(7.5)
    return {"child_id": robin}


def _open(browser, live_url: str, viewport: dict, email: str, path: str):  # noqa: ANN001, ANN202, F811
    view = new_page(browser, live_url, viewport)
    sign_in_page(view, live_url, email)
    response = view.goto(f"{live_url}{path}")
    assert response.status == 200, response.text()[:500]
    return view


def _check(view, name: str) -> None:  # noqa: ANN001
    assert_accessible(view)
    assert_fits(view)
    assert images_loaded(view) == []
    assert not view.third_party_requests, view.third_party_requests
    screenshot(view, name)


@VIEWPORTS
def test_handover_page(browser, live_url: str, world: World, record: dict,  # noqa: ANN001, F811
                       viewport: dict) -> None:
    view = _open(browser, live_url, viewport, "worker@test.example.org",
                 f"/api/v1/children/{record['child_id']}/handover.html")
    try:
        assert view.get_by_role("heading", name="Handover: Robin").is_visible()
        assert "Covers ears" in view.inner_text("main")
        changed = view.locator("ul.changes").inner_text()
        assert "school" in changed and "like" in changed and "don't like" in changed
        assert "I want to keep swimming on Fridays." in view.inner_text("main")
        assert view.get_by_role("heading", name="Open safeguarding alerts").is_visible()
        _check(view, f"handover-{viewport['width']}")
    finally:
        view.context.close()


@VIEWPORTS
def test_timeline_page(browser, live_url: str, world: World, record: dict,  # noqa: ANN001, F811
                       viewport: dict) -> None:
    view = _open(browser, live_url, viewport, "worker@test.example.org",
                 f"/api/v1/children/{record['child_id']}/timeline.html")
    try:
        school = view.get_by_role("table", name="school (the answer changed)")
        assert school.is_visible()
        assert [c.strip() for c in school.locator("tbody td:nth-child(2)").all_inner_texts()] \
            == ["like", "don't like"]
        _check(view, f"timeline-{viewport['width']}")
        # The filter works without script: only adult-focused visits (there are none).
        view.get_by_label("Only visits with none of the child's own voice").check()
        view.get_by_role("button", name="Show").click()
        view.wait_for_load_state()
        assert "adult_focused=true" in view.url
        assert "No visits match." in view.inner_text("main")
        assert_accessible(view)
    finally:
        view.context.close()


@VIEWPORTS
def test_voice_report_page(browser, live_url: str, world: World, record: dict,  # noqa: ANN001, F811
                           viewport: dict) -> None:
    view = _open(browser, live_url, viewport, "manager@test.example.org",
                 "/api/v1/reports/voice.html")
    try:
        rows = view.locator("#children-caption").locator("xpath=..").locator("tbody tr")
        first = rows.nth(0).inner_text()
        assert "Sky with a rather long" in first and "Never heard" in first
        assert "1 / 1" in rows.nth(1).inner_text()  # Robin: an open, overdue alert
        _check(view, f"voice-report-{viewport['width']}")
        # A number leads to what is behind it: Robin's visits, on the timeline page.
        rows.nth(1).get_by_role("link", name="2", exact=True).first.click()
        view.wait_for_load_state()
        assert "/timeline" in view.url
        assert view.get_by_role("heading", name="Timeline: Robin").is_visible()
        assert view.locator("article.visit").count() == 2
    finally:
        view.context.close()
