"""Pages in a real browser: the app served by uvicorn on a free loopback port, Debian's
Chromium driven by Playwright, axe-core injected for WCAG 2.2 A/AA.

Use the fixtures in a test module with `from tests.browser import *  # noqa: F403` or by
name (`live_url`, `browser`, `page`), then:

    sign_in_page(page, live_url, world.worker_email)
    page.goto(f"{live_url}/api/v1/children/{world.child_id}/plan.html")
    assert_accessible(page)
    assert_fits(page)

Every request the page makes is checked: anything not on the loopback server fails the test
(pages make no third-party request).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn
from axe_playwright_python.sync_playwright import Axe

from tests.support import PASSWORD

CHROMIUM = os.environ.get("CHILDVOICE_TEST_CHROMIUM") or shutil.which("chromium") \
    or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
SCREENSHOTS = Path(os.environ.get("CHILDVOICE_TEST_SCREENSHOTS", "test-screenshots"))


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test process keeps its own
        pass


@pytest.fixture(scope="session")
def live_url(app) -> Iterator[str]:  # noqa: ANN001
    """The session's app (same database as the `client` fixture) on a real socket."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, lifespan="off", log_level="warning",
                                    access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


# Module scope, not session: Playwright's sync API keeps an event loop running in this
# thread while it is open, and tests elsewhere call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator:  # noqa: ANN201
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is needed for the page tests and is not at {CHROMIUM}: "
                    "install Debian's 'chromium' (.ci/run does it when it is missing).")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              headless=True)
        yield chromium
        chromium.close()


def new_page(browser, live_url: str, viewport: dict | None = None, **context_options):  # noqa: ANN001, ANN003, ANN201
    """A fresh browser context (no cookies) and page that may only talk to `live_url`."""
    context = browser.new_context(viewport=viewport or DESKTOP, base_url=live_url,
                                  **context_options)
    own = urlsplit(live_url).netloc
    strangers: list[str] = []

    def guard(route) -> None:  # noqa: ANN001
        url = urlsplit(route.request.url)
        if url.scheme in ("data", "blob") or url.netloc == own:
            route.continue_()
        else:
            strangers.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.third_party_requests = strangers  # type: ignore[attr-defined]
    return page


@pytest.fixture
def page(browser, live_url: str) -> Iterator:  # noqa: ANN001, ANN201
    page = new_page(browser, live_url)
    yield page
    strangers = page.third_party_requests
    page.context.close()
    assert not strangers, f"the page asked for third-party resources: {strangers}"


def sign_in_page(page, live_url: str, email: str, password: str = PASSWORD) -> None:  # noqa: ANN001
    """Sign the browser in through the sign-in form, as a person would."""
    page.goto(f"{live_url}/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


_axe = Axe()


def axe_violations(page) -> list[dict]:  # noqa: ANN001
    results = _axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS},
                                      "resultTypes": ["violations"]})
    return results.response["violations"]


def assert_accessible(page) -> None:  # noqa: ANN001
    """0 WCAG 2.2 A/AA violations, as axe-core finds them."""
    violations = axe_violations(page)
    assert not violations, "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(n["target"][0] if n.get("target") else "?" for n in v["nodes"][:5])
        for v in violations)


def assert_fits(page) -> None:  # noqa: ANN001
    """Nothing wider than the viewport: no sideways scrolling at phone width."""
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in a {widths[1]} px window"


def images_loaded(page) -> list[str]:  # noqa: ANN001
    """The src of every <img> that did not load (natural width 0)."""
    return page.evaluate(
        "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.currentSrc || i.src)")


def screenshot(page, name: str) -> Path:  # noqa: ANN001
    """Save a screenshot for a person to look at (not committed; see .gitignore)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
