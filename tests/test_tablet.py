"""The reference tablet app, end to end in Chromium at a tablet's size with touch and a fake
camera and microphone: a whole visit online, the same visit with no signal, child mode
sealed off from the record, accessibility and keyboard use, and screenshots of child mode
for a person to look at."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from app.core.db import new_session
from app.services.boards.starter import install_starter
from tests.browser import (CHROMIUM, CHROMIUM_ARGS, assert_accessible, live_url,  # noqa: F401
                           screenshot)
from tests.support import PASSWORD, World

TABLET = {"width": 1024, "height": 768}
FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
              "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def tablet_browser() -> Iterator:  # noqa: ANN201
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS + FAKE_MEDIA)
        yield browser
        browser.close()


@pytest.fixture
def starter(app, world: World) -> World:  # noqa: ANN001
    with new_session(app.state.engine) as db:
        install_starter(db, app.state.settings, app.state.media_store)
    return world


def _tablet(browser, live_url: str, viewport: dict | None = None):  # noqa: ANN001, ANN202
    context = browser.new_context(viewport=viewport or TABLET, has_touch=True,
                                  base_url=live_url,
                                  permissions=["camera", "microphone"])
    own = live_url.split("//", 1)[1]
    strangers: list[str] = []

    def guard(route) -> None:  # noqa: ANN001
        url = route.request.url
        if url.startswith(("data:", "blob:")) or url.split("//", 1)[-1].startswith(own):
            route.continue_()
        else:
            strangers.append(url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.strangers = strangers  # type: ignore[attr-defined]
    return page


def _until(page, predicate: str, timeout: float = 20.0) -> None:  # noqa: ANN001
    """Poll a JS predicate (page.wait_for_function evaluates strings, which the app's CSP
    rightly forbids)."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"never true: {predicate}")
        page.wait_for_timeout(100)


def _sign_in(page, email: str = "worker@test.example.org") -> None:  # noqa: ANN001
    page.goto("/tablet/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="My children").wait_for()
    # The service worker is in control before anything is done offline.
    _until(page, "() => Boolean(navigator.serviceWorker && navigator.serviceWorker.controller)")


def _start_visit(page, purpose: str = "How do you feel about school?",  # noqa: ANN001
                 boards: tuple[str, ...] = ("How I feel", "Things I do")) -> None:
    page.get_by_role("button", name="Open Robin").click()
    page.get_by_role("button", name="Start a visit").click()
    page.get_by_label("What you will ask (the purpose)").fill(purpose)
    for box in page.get_by_role("checkbox").all():
        box.uncheck()
    for name in boards:
        # The starter library's board (installed after the test world's own, picture-less
        # "How I feel").
        page.get_by_role("checkbox", name=name, exact=True).last.check()
    page.get_by_role("button", name="Start the visit").click()
    page.get_by_role("heading", name="Visit with Robin").wait_for()


def _enter_child_mode(page, pin: str = "2468") -> None:  # noqa: ANN001
    page.get_by_label("A PIN to leave child mode (4 to 8 digits)").fill(pin)
    page.get_by_role("button", name="Hand the tablet to the child").click()
    page.get_by_role("button", name="Grown-ups").wait_for()


def _leave_child_mode(page, pin: str = "2468") -> None:  # noqa: ANN001
    page.get_by_role("button", name="Grown-ups").click()
    page.get_by_label("The worker's PIN").fill(pin)
    page.get_by_role("button", name="Leave child mode").click()
    page.get_by_role("heading", name="Visit with Robin").wait_for()


def _child_does_everything(page) -> None:  # noqa: ANN001
    # The symbols are the pictures the child knows, loaded from the tablet's cache.
    _until(page, "() => Array.from(document.querySelectorAll('button.symbol img'))"
                 ".some(i => i.complete && i.naturalWidth > 0)")
    # Three symbols, then send.
    for label in ("happy", "calm", "worried"):
        page.locator("button.symbol", has_text=label).first.click()
    expect(page.locator(".strip .chosen")).to_have_count(3)
    page.get_by_role("button", name="Send", exact=True).click()
    page.get_by_text("Sent.", exact=True).wait_for()
    # A mat: sort three options by tapping.
    page.get_by_role("button", name="Sort").click()
    buttons = page.locator(".mat-options button.symbol")
    for column in ("I like", "Not sure", "I don't like"):
        buttons.first.click()
        page.get_by_role("button", name=f"{column}: put it here").click()
    page.get_by_role("button", name="Send", exact=True).click()
    page.get_by_text("Sent.", exact=True).wait_for()
    # Three seconds of sound from the fake microphone.
    page.get_by_role("button", name="Sound").click()
    page.get_by_role("button", name="Record a sound").click()
    page.wait_for_timeout(3000)
    page.get_by_role("button", name="Stop").click()
    page.get_by_role("button", name="Keep it").click()
    page.get_by_text("Kept.", exact=True).wait_for()
    # A photo from the fake camera.
    page.get_by_role("button", name="Photo").click()
    page.get_by_role("button", name="Open the camera").click()
    _until(page, "() => Boolean(document.querySelector('video') && "
                 "document.querySelector('video').videoWidth > 0)")
    page.get_by_role("button", name="Take the photo").click()
    page.get_by_role("button", name="Keep it").click()
    page.get_by_text("Kept.", exact=True).wait_for()


def _worker_finishes(page) -> None:  # noqa: ANN001
    page.get_by_label("What you noticed (a sign, a look, a sound)").fill(
        "Smiled and rocked when school came up")
    page.get_by_role("button", name="Add the observation").click()
    page.get_by_text("Observation kept.").wait_for()
    page.get_by_role("button", name="End the visit").click()
    page.get_by_role("heading", name="My children").wait_for()


def _send_now(page) -> None:  # noqa: ANN001
    page.get_by_role("button", name="What this tablet still owes").click()
    page.get_by_role("button", name="Send now").click()
    page.locator("main").get_by_text("Everything is sent.").wait_for(timeout=60_000)


def _entries(world: World) -> list[dict]:
    r = world.worker.get(f"/children/{world.child_id}/entries?limit=200")
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _assert_visit_arrived_once(world: World) -> None:
    entries = _entries(world)
    kinds = sorted(e["kind"] for e in entries)
    assert kinds == ["audio", "mat", "observation", "photo", "symbols"], kinds
    symbols = next(e for e in entries if e["kind"] == "symbols")
    assert [c["label"] for c in symbols["choices"]] == ["happy", "calm", "worried"]
    mat = next(e for e in entries if e["kind"] == "mat")
    assert sorted(p["scale_value"] for p in mat["placements"]) == ["don't like", "like",
                                                                    "not sure"]
    plan = world.worker.get(f"/children/{world.child_id}/plan?latest=50").json()
    assert len({e["id"] for e in plan["latest_voice"]}) == len(plan["latest_voice"]) == 5
    audio = next(e for e in entries if e["kind"] == "audio")
    [recording] = audio["media"]
    played = world.worker.get(recording["playback_url"].removeprefix("/api/v1"))
    assert played.status_code == 200 and played.headers["content-type"].startswith("audio/")
    assert recording["duration_s"] >= 2  # three seconds recorded; containers round
    photo = next(e for e in entries if e["kind"] == "photo")
    [picture] = photo["media"]
    got = world.worker.get(picture["url"].removeprefix("/api/v1"))
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert b"Exif" not in got.content[:4096]  # the photo is clean
    assert picture["width"] > 0 and picture["height"] > 0


def test_a_whole_visit_online(tablet_browser, live_url: str, starter: World) -> None:  # noqa: ANN001, F811
    page = _tablet(tablet_browser, live_url)
    try:
        _sign_in(page)
        assert page.get_by_text("How I say yes").first.is_visible()
        _start_visit(page)
        _enter_child_mode(page)
        _child_does_everything(page)
        _leave_child_mode(page)
        expect(page.locator("#said-so-far li")).to_have_count(4)
        _worker_finishes(page)
        _send_now(page)
        assert not page.strangers
    finally:
        page.context.close()
    _assert_visit_arrived_once(starter)


def test_the_same_visit_offline_then_back_online(tablet_browser, live_url: str,  # noqa: ANN001, F811
                                                 starter: World) -> None:
    page = _tablet(tablet_browser, live_url)
    try:
        _sign_in(page)
        page.context.set_offline(True)
        page.reload()  # the app shell comes from the service worker
        page.get_by_role("heading", name="My children").wait_for()
        _start_visit(page)
        _enter_child_mode(page)
        _child_does_everything(page)
        _leave_child_mode(page)
        _worker_finishes(page)
        assert _entries(starter) == []  # nothing reached the server while offline
        queue = page.evaluate("""async () => {
            const db = await new Promise((ok, ko) => { const r = indexedDB.open('childvoice-tablet');
              r.onsuccess = () => ok(r.result); r.onerror = ko; });
            return await new Promise((ok) => { const q = db.transaction('queue').objectStore('queue').getAll();
              q.onsuccess = () => ok(q.result); });
        }""")
        assert {i["type"] for i in queue} >= {"session", "entry", "session_end"}
        page.context.set_offline(False)
        page.reload()  # back online, a reload in the middle of sending loses nothing
        page.get_by_role("heading", name="My children").wait_for()
        _send_now(page)
        device = page.evaluate("""async () => {
            const db = await new Promise((ok) => { const r = indexedDB.open('childvoice-tablet'); r.onsuccess = () => ok(r.result); });
            return await new Promise((ok) => { const q = db.transaction('kv').objectStore('kv').get('device'); q.onsuccess = () => ok(q.result); });
        }""")
    finally:
        page.context.close()
    _assert_visit_arrived_once(starter)
    # A second tablet sending the same queue changes nothing.
    second = starter.worker.post("/devices", json={"name": "second tablet"}).json()
    items = [{k: v for k, v in item.items() if k != "seq"} for item in queue]
    r = starter.worker.post("/sync", headers={"X-Device-Key": second["device_key"]},
                            json={"device_id": second["id"], "items": items})
    assert r.status_code == 200, r.text
    assert {res["status"] for res in r.json()["results"]} == {"duplicate"}
    assert device["id"] != second["id"]
    _assert_visit_arrived_once(starter)


def test_child_mode_cannot_reach_the_record(tablet_browser, live_url: str,  # noqa: ANN001, F811
                                            starter: World) -> None:
    page = _tablet(tablet_browser, live_url)
    try:
        _sign_in(page)
        _start_visit(page)
        _enter_child_mode(page)
        calls: list[str] = []
        page.on("request", lambda request: calls.append(request.url)
                if "/api/" in request.url and request.headers.get("authorization") else None)
        _child_does_everything(page)
        # Nothing of the record on screen: no name, no consents, no notes, no links.
        text = page.locator("main").inner_text()
        assert "Robin" not in text and "Consent" not in text
        assert page.locator("main a").count() == 0
        # Leaving needs the PIN.
        page.get_by_role("button", name="Grown-ups").click()
        page.get_by_label("The worker's PIN").fill("0000")
        page.get_by_role("button", name="Leave child mode").click()
        page.get_by_text("That is not the PIN.").wait_for()
        page.get_by_role("button", name="Back to the child").click()
        # A reload stays in child mode.
        page.reload()
        page.get_by_role("button", name="Grown-ups").wait_for()
        assert "Robin" not in page.locator("main").inner_text()
        assert not calls, calls
        _leave_child_mode(page)
    finally:
        page.context.close()


@pytest.mark.parametrize("viewport", [TABLET, {"width": 768, "height": 1024}],
                         ids=["1024x768", "768x1024"])
def test_accessible_in_both_modes_and_screenshots(tablet_browser, live_url: str,  # noqa: ANN001, F811
                                                  starter: World, viewport: dict) -> None:
    page = _tablet(tablet_browser, live_url, viewport)
    try:
        page.goto("/tablet/")
        page.get_by_role("heading", name="Sign in").wait_for()
        assert_accessible(page)
        _sign_in(page)
        assert_accessible(page)
        _start_visit(page)
        assert_accessible(page)
        _enter_child_mode(page)
        assert_accessible(page)
        name = f"tablet-child-mode-{viewport['width']}x{viewport['height']}"
        assert screenshot(page, name).stat().st_size > 0
        page.get_by_role("button", name="Sort").click()
        assert_accessible(page)
        screenshot(page, name + "-sort")
        # Targets are at least 2 cm (about 76 CSS px).
        sizes = page.evaluate("() => Array.from(document.querySelectorAll('button.symbol'))"
                              ".map(b => Math.min(b.offsetWidth, b.offsetHeight))")
        assert sizes and min(sizes) >= 75, sizes
    finally:
        page.context.close()


def test_keyboard_only_board_and_mat(tablet_browser, live_url: str, starter: World) -> None:  # noqa: ANN001, F811
    page = _tablet(tablet_browser, live_url)
    try:
        _sign_in(page)
        _start_visit(page, boards=("How I feel",))
        _enter_child_mode(page)

        def press_on(label: str) -> None:
            # Switch access: Tab moves the focus, Enter or Space presses.
            for _ in range(60):
                focused = page.evaluate("() => document.activeElement && "
                                        "(document.activeElement.getAttribute('aria-label') || "
                                        "document.activeElement.textContent.trim())")
                if focused == label:
                    page.keyboard.press("Enter")
                    return
                page.keyboard.press("Tab")
            raise AssertionError(f"could not reach {label!r} with Tab")

        press_on("happy")
        press_on("Send")
        page.get_by_text("Sent.", exact=True).wait_for()
        press_on("Sort")
        press_on("sad")
        press_on("I don't like: put it here")
        press_on("Send")
        page.get_by_text("Sent.", exact=True).wait_for()
        _leave_child_mode(page)
        _worker_finishes(page)
        _send_now(page)
    finally:
        page.context.close()
    kinds = sorted(e["kind"] for e in _entries(starter))
    assert kinds == ["mat", "observation", "symbols"]


def test_installable_manifest_and_strict_policy(client) -> None:  # noqa: ANN001
    manifest = client.get("/tablet/manifest.webmanifest")
    assert manifest.status_code == 200
    body = json.loads(manifest.text)
    assert body["start_url"] == "/tablet/" and body["display"] == "fullscreen"
    assert {icon["sizes"] for icon in body["icons"]} == {"192x192", "512x512"}
    for icon in body["icons"]:
        assert client.get(icon["src"]).status_code == 200
    page = client.get("/tablet/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in page.text  # no inline script at all
    assert "camera=(self)" in page.headers["permissions-policy"]
    assert "camera=()" in client.get("/signin").headers["permissions-policy"]
    assert client.get("/tablet/sw.js").headers["content-type"].startswith("text/javascript")


def test_a_consent_recorded_offline_lets_the_visit_through(tablet_browser, live_url: str,  # noqa: ANN001, F811
                                                           starter: World) -> None:
    r = starter.worker.post("/children", json={
        "preferred_name": "Sky", "date_of_birth": "2016-05-06", "team_id": starter.team_id,
        "communication": {"methods": ["symbols"], "yes_signal": "nods"}})
    assert r.status_code == 201, r.text
    sky = r.json()
    page = _tablet(tablet_browser, live_url)
    try:
        _sign_in(page)
        page.context.set_offline(True)
        page.get_by_role("button", name="Open Sky").click()
        page.get_by_text("No consent is recorded").wait_for()
        page.get_by_role("button", name="Record a consent").click()
        page.get_by_label("Their name").fill("A. Carer")
        page.get_by_label("Relationship to the child").fill("foster carer")
        page.get_by_role("button", name="Record the consent").click()
        page.get_by_text("recorded on this tablet, not sent yet").wait_for()
        page.get_by_role("button", name="Start a visit").click()
        page.get_by_label("What you will ask (the purpose)").fill("How was your week?")
        for box in page.get_by_role("checkbox").all():
            box.uncheck()
        page.get_by_role("checkbox", name="How I feel", exact=True).last.check()
        page.get_by_role("button", name="Start the visit").click()
        _enter_child_mode(page)
        page.locator("button.symbol", has_text="calm").first.click()
        expect(page.locator(".strip .chosen")).to_have_count(1)
        page.get_by_role("button", name="Send", exact=True).click()
        page.get_by_text("Sent.", exact=True).wait_for()
        page.get_by_role("button", name="Grown-ups").click()
        page.get_by_label("The worker's PIN").fill("2468")
        page.get_by_role("button", name="Leave child mode").click()
        page.get_by_role("button", name="End the visit").click()
        page.get_by_role("heading", name="My children").wait_for()
        page.context.set_offline(False)
        _send_now(page)
    finally:
        page.context.close()
    consents = starter.worker.get(f"/children/{sky['id']}/consents").json()["items"]
    assert [c["relationship"] for c in consents] == ["foster carer"]
    entries = starter.worker.get(f"/children/{sky['id']}/entries").json()["items"]
    assert [e["kind"] for e in entries] == ["symbols"]
    assert entries[0]["consent_id"] == consents[0]["id"]
