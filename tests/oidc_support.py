"""A real OpenID Provider for the single sign-on tests (node-oidc-provider, in tests/oidc/),
and a browser's walk through its sign-in and consent pages with plain HTTP requests."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import requests

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "childvoice-test"
CLIENT_SECRET = "test-only-client-secret-not-for-production"
REDIRECT_URI = "http://testserver/api/v1/auth/oidc/callback"


class Provider:
    """`node provider.mjs` on a free loopback port; `users` is rewritten to change who is in
    which group (the provider reads it at every sign-in)."""

    def __init__(self, workdir: Path) -> None:
        self.config = workdir / "oidc-provider.json"
        self.users: dict[str, dict] = {}
        self.write()
        _install()
        self.process = subprocess.Popen(
            [shutil.which("node") or "node", str(OIDC_DIR / "provider.mjs"), str(self.config)],
            cwd=OIDC_DIR, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.issuer = self._wait_until_listening()

    def _wait_until_listening(self, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if ready:
                line = self.process.stdout.readline()
                if line.startswith("listening "):
                    return line.split()[1]
            if self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError("the test OpenID Provider (tests/oidc/provider.mjs) did not start")

    def write(self) -> None:
        self.config.write_text(json.dumps({
            "client": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                       "redirect_uris": [REDIRECT_URI]},
            "users": self.users}))

    def set_user(self, login: str, *, email: str, groups: list[str], name: str = "Test Person",
                 email_verified: bool = True) -> None:
        self.users[login] = {"email": email, "email_verified": email_verified, "name": name,
                             "groups": groups}
        self.write()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _install() -> None:
    """The provider's npm packages, from the lock file, when they are not there yet."""
    if (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed for the single sign-on tests (Node.js 18, 20 or 22)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, check=True,
                   env=os.environ | {"NODE_ENV": "development"}, timeout=600)


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attrs.get("action") or ""
        elif tag == "input" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""


def browse_provider(authorize_url: str, login: str) -> str:
    """Follow the provider's pages as a browser would (sign in as `login`, allow the
    service) until it sends the browser back to the service; answer that callback URL."""
    browser = requests.Session()
    response = browser.get(authorize_url, allow_redirects=False, timeout=10)
    for _ in range(20):
        if response.is_redirect:
            target = urljoin(response.url, response.headers["location"])
            if target.startswith(REDIRECT_URI):
                return target
            response = browser.get(target, allow_redirects=False, timeout=10)
            continue
        assert response.status_code == 200, response.text
        form = _Form()
        form.feed(response.text)
        assert form.action is not None, "the provider showed a page without a form"
        if "login" in form.fields:
            form.fields |= {"login": login, "password": "typed at the provider"}
        response = browser.post(urljoin(response.url, form.action), data=form.fields,
                                allow_redirects=False, timeout=10)
    raise AssertionError("the provider never sent the browser back")
