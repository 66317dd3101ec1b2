"""The front page and the interactive docs work without internet (issue 12): their assets
come from the service itself, the policy allows scripts from 'self' only, and in Chromium,
with every request off the loopback server refused, the operations are listed and
Authorize signs in."""

from __future__ import annotations

import re

from tests.browser import assert_accessible, browser, live_url, page  # noqa: F401
from tests.support import PASSWORD, World

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


def test_front_page_says_what_this_is_and_links_the_docs(client) -> None:  # noqa: ANN001
    r = client.get("/", headers={"Accept": "text/html"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "non-verbal children" in r.text
    for href in ('href="/docs"', 'href="/redoc"', 'href="/healthz"', 'href="/openapi.json"'):
        assert href in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert client.get("/healthz").json() == {"status": "ok"}


def test_docs_pages_need_nothing_from_elsewhere(client) -> None:  # noqa: ANN001
    for path in ("/docs", "/redoc"):
        r = client.get(path)
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
        assert script_src.split() == ["script-src", "'self'"], csp
        assert "http" not in csp and "cdn" not in r.text
        assert not _INLINE_SCRIPT.search(r.text), "an inline script"
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', r.text):
            got = client.get(asset)
            assert got.status_code == 200 and len(got.content) > 0, asset
    # FastAPI's own CDN pages and their inline OAuth redirect are gone.
    assert client.get("/docs/oauth2-redirect").status_code == 404


def test_swagger_lists_operations_and_authorize_signs_in(world: World, page,  # noqa: ANN001, F811
                                                         live_url: str) -> None:  # noqa: F811
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_url}/docs")
    page.get_by_text("Add a child; a social worker who adds one holds them").first \
        .wait_for(timeout=30000)
    assert page.locator(".opblock").count() >= 60

    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".dialog-ux")
    dialog.locator("input#oauth_username").fill("worker@test.example.org")
    dialog.locator("input#oauth_password").fill(PASSWORD)
    dialog.get_by_role("button", name="Apply given OAuth2 credentials").click()
    dialog.locator("button", has_text="Logout").first.wait_for(timeout=15000)
    dialog.locator("button", has_text="Close").first.click()

    # Signed in: "Who am I" answers the worker.
    operation = page.locator("#operations-staff-me_api_v1_users_me_get")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".live-responses-table")
    answer.get_by_text("worker@test.example.org").first.wait_for(timeout=15000)
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_redoc_lists_operations(page, live_url: str) -> None:  # noqa: ANN001, F811
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_url}/redoc")
    page.get_by_role("heading", name="Is the service up").wait_for(timeout=30000)
    body = page.inner_text("body")
    for tag in ("children", "consent", "capture", "my plan", "offline sync"):
        assert f"\n{tag}\n" in body
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_front_page_is_accessible(page, live_url: str) -> None:  # noqa: ANN001, F811
    page.goto(f"{live_url}/")
    page.get_by_role("link", name="API documentation").wait_for()
    assert_accessible(page)
