"""My plan as a page, written to the child: in Chromium with axe-core at phone and desktop
width (now, and a published version), with the pictures the child chose loaded, the
recording playable, nothing sideways, and nothing of the record that is not theirs to
read; and over HTTP: who may open it, what it says, and how it is audited."""

from __future__ import annotations

import pytest

from tests.browser import (DESKTOP, PHONE, assert_accessible, assert_fits, browser,  # noqa: F401
                           images_loaded, live_url, new_page, screenshot, sign_in_page)
from tests.plan_support import PlanWorld, build
from tests.support import World


@pytest.fixture
def plan(world: World, app) -> PlanWorld:  # noqa: ANN001
    return build(world, app)


def _check_what_a_person_would(view, plan: PlanWorld) -> None:  # noqa: ANN001
    text = view.locator("main").inner_text()
    # Addressed to the child, and who said what kept apart.
    assert "You said" in text and "We noticed" in text and "Your mum told us" in text
    assert "Someone helped you to say it." in text
    assert "Robin" not in text  # never the child's name in the third person
    # The symbols they chose, as pictures, label under each; the mat in its three columns.
    for label in ("happy", "calm", "Nan", "music", "tv", "cooking"):
        assert view.locator("figure.symbol figcaption", has_text=label).count() >= 1, label
    assert view.locator(".mat > section").count() == 3
    assert view.get_by_role("heading", name="You don't like these").count() == 1
    assert view.locator("figure.symbol img").count() >= 6
    assert images_loaded(view) == []
    # A consent that was withdrawn takes its entry out; the worker's note is not shown.
    assert "tired" not in text and "How do you feel at night?" not in text
    assert "WORKER-NOTE" not in view.content()
    # Credits for every symbol's licence.
    credits = view.locator(".credits").inner_text()
    assert "OpenMoji" in credits and "CC BY-SA 4.0" in credits and "happy" in credits


def _recording_plays(view) -> None:  # noqa: ANN001
    audio = view.locator("audio")
    assert audio.count() == 1
    assert view.evaluate("() => document.querySelector('audio').canPlayType("
                         "'audio/mp4; codecs=\"mp4a.40.2\"')") in ("probably", "maybe")
    view.evaluate("() => { const a = document.querySelector('audio'); a.preload = 'auto';"
                  " a.load(); }")
    view.wait_for_function("() => document.querySelector('audio').readyState >= 2",
                           timeout=15000)
    assert view.evaluate("() => document.querySelector('audio').duration") > 1
    assert view.evaluate("() => document.querySelector('audio').error") is None


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
@pytest.mark.parametrize("which", ["now", "version"])
def test_the_plan_page_in_chromium(browser, live_url: str, plan: PlanWorld,  # noqa: ANN001, F811
                                   viewport: dict, which: str) -> None:
    view = new_page(browser, live_url, viewport)
    try:
        sign_in_page(view, live_url, "worker@test.example.org")
        path = "plan.html" if which == "now" else "plan/versions/1.html"
        view.goto(f"{live_url}/api/v1/children/{plan.child_id}/{path}")
        view.wait_for_load_state("networkidle")
        assert view.get_by_role("heading", level=1, name="My plan").is_visible()
        if which == "version":
            assert "This is version 1 of your plan." in view.locator("main").inner_text()
        _check_what_a_person_would(view, plan)
        _recording_plays(view)
        assert_accessible(view)
        assert_fits(view)
        screenshot(view, f"plan-{which}-{viewport['width']}")
        assert not view.third_party_requests
    finally:
        view.context.close()


def test_the_page_reads_without_script(browser, live_url: str, plan: PlanWorld) -> None:  # noqa: ANN001, F811
    view = new_page(browser, live_url, PHONE, java_script_enabled=False)
    try:
        sign_in_page(view, live_url, "worker@test.example.org")
        view.goto(f"{live_url}/api/v1/children/{plan.child_id}/plan.html")
        assert "You said" in view.locator("main").inner_text()
        assert view.locator("script").count() == 0
        assert view.get_by_role("link", name="Get this plan as a PDF").count() == 1
    finally:
        view.context.close()


def test_the_childs_board_preferences_shape_it(browser, live_url: str,  # noqa: ANN001, F811
                                              plan: PlanWorld) -> None:
    world = plan.world
    r = world.worker.patch(f"/children/{world.child_id}", json={
        "board_preferences": {"symbol_size": "extra_large", "labels_shown": False}})
    assert r.status_code == 200, r.text
    view = new_page(browser, live_url, DESKTOP)
    try:
        sign_in_page(view, live_url, "worker@test.example.org")
        view.goto(f"{live_url}/api/v1/children/{plan.child_id}/plan.html")
        view.wait_for_load_state("networkidle")
        width = view.evaluate("() => document.querySelector('figure.symbol img')"
                              ".getBoundingClientRect().width")
        assert width == 180
        caption = view.locator("figure.symbol figcaption").first
        assert not caption.is_visible() or caption.bounding_box()["width"] <= 1
        assert_accessible(view)  # the labels still name the pictures for a screen reader
    finally:
        view.context.close()


# --- over HTTP ---------------------------------------------------------------------------

def test_accept_html_on_the_plans_own_url_answers_the_page(plan: PlanWorld) -> None:
    world = plan.world
    page_ = world.worker.get(f"/children/{plan.child_id}/plan", headers={"Accept": "text/html"})
    assert page_.status_code == 200 and page_.headers["content-type"].startswith("text/html")
    assert "You said" in page_.text
    assert "script-src" in page_.headers["content-security-policy"]
    data = world.worker.get(f"/children/{plan.child_id}/plan")
    assert data.headers["content-type"] == "application/json"
    version = world.worker.get(f"/children/{plan.child_id}/plan/versions/1",
                               headers={"Accept": "text/html,application/xhtml+xml"})
    assert version.status_code == 200 and "version 1 of your plan" in version.text
    assert world.worker.get(f"/children/{plan.child_id}/plan/versions/1").json()["version"] == 1


def test_who_may_open_the_page(plan: PlanWorld, client) -> None:  # noqa: ANN001
    world = plan.world
    assert world.manager.get(f"/children/{plan.child_id}/plan.html").status_code == 200
    unseen = world.other_worker.get(f"/children/{plan.child_id}/plan.html")
    assert unseen.status_code == 404 and unseen.headers["content-type"].startswith("text/html")
    assert "Robin" not in unseen.text
    signed_out = client.get(f"/api/v1/children/{plan.child_id}/plan.html",
                            follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/signin?next=")
    missing = world.worker.get(f"/children/{plan.child_id}/plan/versions/9.html")
    assert missing.status_code == 404


def test_opening_the_page_is_audited(plan: PlanWorld) -> None:
    world = plan.world
    world.worker.get(f"/children/{plan.child_id}/plan.html")
    world.worker.get(f"/children/{plan.child_id}/plan/versions/1.html")
    trail = world.manager.get(f"/children/{plan.child_id}/audit",
                              params={"limit": 200}).json()["items"]
    actions = [e["action"] for e in trail if e["actor_id"] == world.worker.user_id]
    assert "plan.page" in actions and "plan.version.page" in actions


def test_a_parents_report_is_introduced_by_who_they_are(world: World, app) -> None:  # noqa: ANN001
    plan = build(world, app)
    assert "Your mum told us" in world.worker.get(f"/children/{plan.child_id}/plan.html").text
    # A report made under a consent with no relationship we have words for.
    consent = world.worker.get(f"/children/{plan.child_id}/consents").json()["items"]
    mothers = next(c for c in consent if c["relationship"] == "mother")
    world.worker.post(f"/consents/{mothers['id']}/withdraw", json={"reason": "Changed."})
    r = world.worker.post(f"/children/{plan.child_id}/consents", json={
        "given_by": "parent_or_carer", "giver_name": "Test Relative",
        "relationship": "family friend", "scopes": ["symbols", "plan"], "method": "written",
        "child_assent": "agreed", "valid_from": mothers["valid_from"]})
    assert r.status_code == 201, r.text
    r = world.worker.post(f"/sessions/{plan.session['id']}/entries", json={
        "kind": "text", "client_id": "00000000-0000-4000-8000-00000000f00d",
        "captured_at": mothers["valid_from"], "source": "parent_or_carer_report",
        "text": "Likes the bus."})
    assert r.status_code == 201, r.text
    text = world.worker.get(f"/children/{plan.child_id}/plan.html").text
    assert "Your family told us" in text and "Likes the bus." in text
    assert "Your mum told us" not in text
