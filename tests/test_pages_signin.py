"""Signing a browser in for the pages, in Chromium: the form is accessible at phone and
desktop width, a wrong password says so, a right one sets the page cookie and goes back to
where the worker was heading, and never to another site."""

from __future__ import annotations

import pytest

from tests.browser import (DESKTOP, PHONE, assert_accessible, assert_fits, browser,  # noqa: F401
                           live_url, new_page, page, sign_in_page)
from tests.support import World


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_sign_in_form_is_accessible(browser, live_url: str, viewport: dict) -> None:  # noqa: ANN001, F811
    view = new_page(browser, live_url, viewport)
    try:
        view.goto(f"{live_url}/signin")
        assert view.get_by_role("heading", name="Sign in").is_visible()
        assert_accessible(view)
        assert_fits(view)
        assert not view.third_party_requests
    finally:
        view.context.close()


def test_wrong_password_is_said_on_the_page(page, live_url: str, world: World) -> None:  # noqa: ANN001, F811
    sign_in_page(page, live_url, "worker@test.example.org", "not the password")
    assert page.get_by_role("alert").inner_text().strip()
    assert not [c for c in page.context.cookies() if c["name"] == "childvoice_page"]
    assert_accessible(page)


def test_sign_in_sets_an_http_only_cookie_and_returns_to_next(page, live_url: str,  # noqa: ANN001, F811
                                                             world: World) -> None:
    page.goto(f"{live_url}/signin?next=/signin%3Fnext%3D/here")
    page.get_by_label("Email").fill("worker@test.example.org")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert page.url.endswith("/signin?next=/here")
    cookie = next(c for c in page.context.cookies() if c["name"] == "childvoice_page")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_next_never_leaves_the_service(client) -> None:  # noqa: ANN001
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        r = client.get("/signin", params={"next": target})
        assert r.status_code == 200
        assert 'name="next" value="/"' in r.text
        assert "evil" not in r.text


def test_pages_get_their_own_policy(client) -> None:  # noqa: ANN001
    r = client.get("/signin")
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "camera=()" in r.headers["permissions-policy"]
    api = client.get("/healthz")
    assert api.headers["content-security-policy"].startswith("default-src 'none'")
