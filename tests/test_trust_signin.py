"""Staff account safety: lock-out with back-off, refresh and revocation, password policy,
security headers."""

import re
from datetime import datetime, timedelta, timezone

from fastapi.testclient import TestClient

from app.core.clock import clock
from app.main import create_app
from tests.support import PASSWORD, Api, World, assert_problem, sign_in

TOKEN = "/api/v1/auth/token"


def _try(client: TestClient, email: str, password: str):  # noqa: ANN201
    return client.post(TOKEN, data={"username": email, "password": password})


def test_lock_out_after_repeated_failures_with_back_off(world: World, client: TestClient,
                                                        app, settings) -> None:  # noqa: ANN001
    email = "worker@test.example.org"
    start = datetime.now(timezone.utc)
    clock.set(start)
    for _ in range(settings.signin_account_max_failures):
        assert_problem(_try(client, email, "not the password at all"), 401)

    # Locked now: even the right password is refused, with how long to wait.
    problem = assert_problem(_try(client, email, PASSWORD), 429)
    assert problem["type"].endswith("/sign-in-locked")
    r = _try(client, email, PASSWORD)
    assert 0 < int(r.headers["Retry-After"]) <= settings.signin_lockout_minutes * 60 + 1

    # The count lives in the database: another API process refuses too.
    other_process = create_app(settings)
    try:
        assert_problem(_try(TestClient(other_process), email, PASSWORD), 429)
    finally:
        other_process.state.engine.dispose()

    # After the lock, one more failure locks for twice as long (back-off).
    clock.set(start + timedelta(minutes=settings.signin_lockout_minutes, seconds=1))
    assert_problem(_try(client, email, "still wrong, sorry"), 401)
    wait = int(_try(client, email, PASSWORD).headers["Retry-After"])
    assert settings.signin_lockout_minutes * 60 < wait <= 2 * settings.signin_lockout_minutes * 60 + 1

    # Once it has passed, the right password works and the count starts again.
    clock.set(start + timedelta(minutes=4 * settings.signin_lockout_minutes))
    assert _try(client, email, PASSWORD).status_code == 200
    assert_problem(_try(client, email, "wrong again"), 401)
    assert _try(client, email, PASSWORD).status_code == 200


def test_unknown_accounts_lock_the_same_way(world: World, client: TestClient,
                                            settings) -> None:  # noqa: ANN001
    for _ in range(settings.signin_account_max_failures):
        assert_problem(_try(client, "nobody@test.example.org", "whatever it is"), 401)
    assert_problem(_try(client, "nobody@test.example.org", "whatever it is"), 429)


def test_one_address_never_locks_out_every_account_behind_it(world: World, app,
                                                              settings) -> None:  # noqa: ANN001
    """A council's staff share one NAT address: failures count per account from that
    address and per account, never per address alone."""
    council_nat = TestClient(app, client=("203.0.113.9", 40000))
    elsewhere = TestClient(app, client=("198.51.100.7", 40000))
    for i in range(settings.signin_account_any_address_max_failures + 5):
        # A different account each time, so no single account locks.
        assert_problem(_try(council_nat, f"guess{i}@test.example.org", "password guess"), 401)
    assert _try(council_nat, "worker@test.example.org", PASSWORD).status_code == 200

    # One account's failures from the NAT lock that address out of that account only.
    for _ in range(settings.signin_account_max_failures):
        assert_problem(_try(council_nat, "colleague@test.example.org", "wrong guess"), 401)
    assert_problem(_try(council_nat, "colleague@test.example.org", PASSWORD), 429)
    assert _try(council_nat, "manager@test.example.org", PASSWORD).status_code == 200
    assert _try(elsewhere, "colleague@test.example.org", PASSWORD).status_code == 200

    # From enough addresses, the account itself locks, wherever the next try comes from.
    for i in range(settings.signin_account_any_address_max_failures):
        spot = TestClient(app, client=(f"192.0.2.{i + 1}", 40000))
        _try(spot, "manager@test.example.org", "wrong guess")
    assert_problem(_try(elsewhere, "manager@test.example.org", PASSWORD), 429)


def test_access_tokens_are_short_lived_and_refresh_rotates(world: World, client: TestClient,
                                                           settings) -> None:  # noqa: ANN001
    start = datetime.now(timezone.utc)
    clock.set(start)
    pair = _try(client, "worker@test.example.org", PASSWORD).json()
    assert pair["expires_in"] == settings.access_token_minutes * 60
    api = Api(client, pair["access_token"])
    assert api.get("/users/me").status_code == 200

    clock.set(start + timedelta(minutes=settings.access_token_minutes, seconds=1))
    assert_problem(api.get("/users/me"), 401)
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert fresh["refresh_token"] != pair["refresh_token"]
    api = Api(client, fresh["access_token"])
    assert api.get("/users/me").status_code == 200

    # A refresh token works once; used again it is treated as stolen and the whole
    # sign-in is revoked, including the access token issued from it.
    assert_problem(client.post("/api/v1/auth/refresh",
                               json={"refresh_token": pair["refresh_token"]}), 401)
    assert_problem(api.get("/users/me"), 401)
    assert_problem(client.post("/api/v1/auth/refresh",
                               json={"refresh_token": fresh["refresh_token"]}), 401)

    # No refresh beyond the sign-in's lifetime.
    signed_in_at = clock.now()
    pair = _try(client, "worker@test.example.org", PASSWORD).json()
    clock.set(signed_in_at + timedelta(hours=settings.staff_session_hours, seconds=1))
    assert_problem(client.post("/api/v1/auth/refresh",
                               json={"refresh_token": pair["refresh_token"]}), 401)


def test_revoked_tokens_are_refused(world: World, client: TestClient) -> None:
    email = "worker@test.example.org"
    laptop = _try(client, email, PASSWORD).json()
    tablet = _try(client, email, PASSWORD).json()
    laptop_api, tablet_api = Api(client, laptop["access_token"]), Api(client, tablet["access_token"])

    # Sign out on the laptop: its tokens stop at once, the tablet's still work.
    assert laptop_api.post("/auth/logout").status_code == 204
    assert_problem(laptop_api.get(f"/children/{world.child_id}"), 401)
    assert_problem(client.post("/api/v1/auth/refresh",
                               json={"refresh_token": laptop["refresh_token"]}), 401)
    assert tablet_api.get(f"/children/{world.child_id}").status_code == 200

    # Sign out everywhere from the tablet: every sign-in of the worker stops.
    assert tablet_api.post("/auth/logout-all").status_code == 204
    assert_problem(tablet_api.get(f"/children/{world.child_id}"), 401)
    assert_problem(world.worker.get(f"/children/{world.child_id}"), 401)
    assert_problem(client.post("/api/v1/auth/refresh",
                               json={"refresh_token": tablet["refresh_token"]}), 401)
    # Others are not affected, and the worker can sign in again.
    assert world.manager.get(f"/children/{world.child_id}").status_code == 200
    assert sign_in(client, email).get(f"/children/{world.child_id}").status_code == 200

    # A forged or mangled token is refused.
    assert_problem(Api(client, laptop["access_token"][:-4] + "AAAA").get("/users/me"), 401)


def test_password_policy(world: World, client: TestClient) -> None:
    def create(password: str, email: str = "new.person@test.example.org"):  # noqa: ANN202
        return world.admin.post("/users", json={
            "email": email, "full_name": "New Person", "role": "social_worker",
            "team_id": world.team_id, "password": password})

    for weak in ["short1", "password1234", "aaaaaaaaaaaaaaaa", "new.person2024"]:
        problem = assert_problem(create(weak), 422)
        assert problem["errors"][0]["loc"] == ["body", "password"]
    assert create("a long and unusual passphrase").status_code == 201

    # Changing one's password applies the policy and signs out the other sign-ins.
    other = sign_in(client, "worker@test.example.org")
    assert_problem(world.worker.post("/users/me/password", json={
        "current_password": PASSWORD, "new_password": "qwertyuiop123"}), 422)
    assert_problem(world.worker.post("/users/me/password", json={
        "current_password": "not it", "new_password": "another long passphrase"}), 403)
    r = world.worker.post("/users/me/password", json={
        "current_password": PASSWORD, "new_password": "another long passphrase"})
    assert r.status_code == 204, r.text
    assert world.worker.get("/users/me").status_code == 200
    assert_problem(other.get("/users/me"), 401)
    assert sign_in(client, "worker@test.example.org", "another long passphrase")


def test_security_headers_on_every_response(world: World, client: TestClient) -> None:
    for r in [client.get("/healthz"), world.worker.get(f"/children/{world.child_id}"),
              world.anonymous.get("/children"), client.get("/nowhere"),
              client.get("/openapi.json")]:
        assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["Strict-Transport-Security"].startswith("max-age=")
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["Cache-Control"] == "no-store"

    # The docs still work, with scripts from the service itself only (no inline script,
    # no CDN; see tests/test_docs_pages.py for them in a browser).
    r = client.get("/docs")
    assert r.status_code == 200
    csp = r.headers["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", csp).group(1)
    assert script_src.strip() == "'self'"
    assert not re.findall(r"<script>(.*?)</script>", r.text, re.DOTALL)
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert int(r.headers["Content-Length"]) == len(r.content)
    assert client.get("/redoc").status_code == 200
