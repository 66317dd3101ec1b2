"""Staff single sign-on against a real OpenID Provider (node-oidc-provider on loopback):
the whole authorization-code flow with PKCE, groups mapped to roles and teams at every
sign-in, and every way a sign-in must be refused."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey

from app.main import create_app
from app.services import sso
from tests.oidc_support import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Provider, browse_provider
from tests.support import PASSWORD, Api, World, assert_problem

LOGIN = "/api/v1/auth/oidc/login"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    running = Provider(tmp_path_factory.mktemp("oidc"))
    yield running
    running.stop()


@pytest.fixture
def sso_app(app, settings, provider: Provider):  # noqa: ANN001, ANN201
    """The service with single sign-on set up (the same database as `app`)."""
    application = create_app(settings.model_copy(update={
        "oidc_issuer": provider.issuer, "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET, "oidc_redirect_uri": REDIRECT_URI,
        "oidc_scopes": "openid email profile groups",
        "oidc_group_mapping": {
            "cv-north-managers": {"role": "team_manager", "team": "Team North"},
            "cv-north-workers": {"role": "social_worker", "team": "Team North"},
            "cv-admins": {"role": "admin"}}}))
    yield application
    application.state.engine.dispose()


def _start(client: TestClient) -> str:
    r = client.get(LOGIN, follow_redirects=False)
    assert r.status_code == 302, r.text
    assert r.headers["location"].startswith(client.app.state.settings.oidc_issuer)
    assert "code_challenge_method=S256" in r.headers["location"]
    return r.headers["location"]


def _callback(client: TestClient, url: str):  # noqa: ANN201
    return client.get(url.removeprefix("http://testserver"))


def sso_sign_in(client: TestClient, login: str):  # noqa: ANN201
    return _callback(client, browse_provider(_start(client), login))


def test_sign_in_through_the_councils_provider(world: World, sso_app,
                                               provider: Provider) -> None:  # noqa: ANN001
    provider.set_user("newcomer", email="Newcomer@test.example.org",
                      groups=["staff", "cv-north-workers"], name="New Comer")
    client = TestClient(sso_app)
    r = sso_sign_in(client, "newcomer")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    tokens = r.json()
    assert tokens["token_type"] == "bearer" and tokens["refresh_token"]

    # The service's own sign-in: the same tokens as a password gives.
    me = Api(client, tokens["access_token"]).get("/users/me").json()
    assert me | {"id": None, "created_at": None} == {
        "id": None, "email": "newcomer@test.example.org", "full_name": "New Comer",
        "role": "social_worker", "team_id": world.team_id, "is_active": True,
        "status": "active", "deactivated_at": None, "locked_until": None, "created_at": None}
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200, r.text
    newcomer = Api(client, r.json()["access_token"])
    assert newcomer.get("/children").status_code == 200
    assert newcomer.post("/auth/logout").status_code == 204
    assert_problem(newcomer.get("/users/me"), 401)
    # Provisioned without a password: only the SSO signs them in.
    assert_problem(client.post("/api/v1/auth/token", data={
        "username": "newcomer@test.example.org", "password": PASSWORD}), 401)

    # An existing account with the same (verified) email is the same person, linked.
    provider.set_user("w-123", email="worker@test.example.org", groups=["cv-north-workers"])
    tokens = sso_sign_in(client, "w-123").json()
    assert Api(client, tokens["access_token"]).get("/users/me").json()["id"] \
        == world.worker.user_id
    # The sign-in link works once.
    url = browse_provider(_start(client), "w-123")
    assert _callback(client, url).status_code == 200
    assert_problem(_callback(client, url), 401)


def test_a_callback_from_another_browser_is_refused(world: World, sso_app,
                                                   provider: Provider) -> None:  # noqa: ANN001
    provider.set_user("w-123", email="worker@test.example.org", groups=["cv-north-workers"])
    started_here = TestClient(sso_app)
    url = browse_provider(_start(started_here), "w-123")
    problem = assert_problem(_callback(TestClient(sso_app), url), 401)
    assert "another browser" in problem["detail"]


def test_someone_in_no_mapped_group_is_refused(world: World, sso_app, provider: Provider,
                                               app) -> None:  # noqa: ANN001
    provider.set_user("visitor", email="visitor@test.example.org", groups=["finance"])
    problem = assert_problem(sso_sign_in(TestClient(sso_app), "visitor"), 403)
    assert problem["type"].endswith("/sso-no-mapped-group")
    emails = {u["email"] for u in world.admin.get("/users").json()["items"]}
    assert "visitor@test.example.org" not in emails


def test_a_changed_group_changes_the_role_at_the_next_sign_in(world: World, sso_app,
                                                              provider: Provider) -> None:  # noqa: ANN001
    provider.set_user("riley", email="riley@test.example.org", groups=["cv-north-workers"])
    client = TestClient(sso_app)
    first = Api(client, sso_sign_in(client, "riley").json()["access_token"])
    assert first.get("/users/me").json()["role"] == "social_worker"
    assert_problem(first.get(f"/children/{world.child_id}/audit"), 404)

    provider.set_user("riley", email="riley@test.example.org",
                      groups=["cv-north-managers", "cv-north-workers"])
    second = Api(client, sso_sign_in(client, "riley").json()["access_token"])
    me = second.get("/users/me").json()
    assert me["role"] == "team_manager" and me["team_id"] == world.team_id
    assert second.get(f"/children/{world.child_id}/audit").status_code == 200

    provider.set_user("riley", email="riley@test.example.org", groups=[])
    assert_problem(sso_sign_in(client, "riley"), 403)


def test_a_deactivated_user_cannot_sign_in_through_the_provider(
        world: World, sso_app, provider: Provider) -> None:  # noqa: ANN001
    provider.set_user("w-123", email="worker@test.example.org", groups=["cv-north-workers"])
    assert world.admin.post(f"/users/{world.worker.user_id}/deactivate").status_code == 200
    problem = assert_problem(sso_sign_in(TestClient(sso_app), "w-123"), 403)
    assert "deactivated" in problem["detail"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(id_token: str) -> dict:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.mark.parametrize("forgery", ["changed claims", "own key", "no signature",
                                     "other nonce"])
def test_a_tampered_id_token_is_refused(world: World, sso_app, provider: Provider,
                                        monkeypatch: pytest.MonkeyPatch, forgery: str) -> None:
    """The provider's real answer, altered on its way in: the callback refuses it."""
    provider.set_user("w-123", email="worker@test.example.org", groups=["cv-north-workers"])
    real_exchange = sso.OidcClient.exchange_code

    def tampered(self: sso.OidcClient, code: str, code_verifier: str) -> dict:
        answer = real_exchange(self, code, code_verifier)
        header, _, signature = answer["id_token"].split(".")
        claims = _claims(answer["id_token"])
        if forgery == "changed claims":  # promote oneself, keep the provider's signature
            claims["groups"] = ["cv-admins"]
            answer["id_token"] = ".".join([header, _b64(json.dumps(claims).encode()),
                                           signature])
        elif forgery == "own key":  # a well-formed token signed by someone else's key
            kid = json.loads(base64.urlsafe_b64decode(header + "=="))["kid"]
            answer["id_token"] = jwt.encode({"alg": "RS256", "kid": kid}, claims | {
                "groups": ["cv-admins"]}, RSAKey.generate_key(2048, parameters={"kid": kid}))
        elif forgery == "no signature":
            answer["id_token"] = ".".join([_b64(b'{"alg":"none"}'),
                                           _b64(json.dumps(claims).encode()), ""])
        else:  # a genuine token, replayed from another sign-in
            answer["id_token"] = seen[0]
        return answer

    client = TestClient(sso_app)
    seen: list[str] = []
    if forgery == "other nonce":
        def recording(self: sso.OidcClient, code: str, code_verifier: str) -> dict:
            answer = real_exchange(self, code, code_verifier)
            seen.append(answer["id_token"])
            return answer
        monkeypatch.setattr(sso.OidcClient, "exchange_code", recording)
        assert sso_sign_in(client, "w-123").status_code == 200
    monkeypatch.setattr(sso.OidcClient, "exchange_code", tampered)
    problem = assert_problem(sso_sign_in(client, "w-123"), 401)
    assert problem["type"].endswith("/sso-invalid-id-token")


def test_without_sso_set_up_the_login_says_so(world: World, client: TestClient) -> None:
    problem = assert_problem(client.get(LOGIN, follow_redirects=False), 404)
    assert "not set up" in problem["detail"]
