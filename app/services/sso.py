"""Staff single sign-on with the council's OpenID Provider: the authorization-code flow with
PKCE (Authlib), the ID token checked against the provider's published keys (joserfc:
signature, issuer, audience, expiry, nonce), the person matched by `sub` (or, the first
time, by a verified email) or provisioned, their role and team taken from a groups claim at
every sign-in. What follows is the service's own sign-in session, exactly as after a
password: the same tokens, revocation and deactivation.

Between the redirect and the callback, the state, nonce and PKCE verifier live in the
database (`OidcLogin`: any API process may receive the callback), bound to the browser that
started by a random cookie whose hash is stored with them, and used once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete
from sqlmodel import select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.context import Context
from app.core.errors import Forbidden, NotFound, Problem, Unauthorized
from app.core.security import PasswordHashing, StaffTokens, hash_token
from app.models.staff import OidcLogin, Role, Team, User
from app.services import audit, staff

CALLBACK_PATH = "/api/v1/auth/oidc/callback"
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                       "ES512", "EdDSA"]
LOGIN_REFUSED = "Single sign-on did not complete: {why} Start again from the sign-in page."


class ProviderUnavailable(Problem):
    status, slug, title = 502, "sso-provider-unavailable", "Sign-on provider unavailable"


@dataclass
class LoginStart:
    authorize_url: str
    browser_secret: str   # the cookie that binds the callback to this browser


class OidcClient:
    """The council's OpenID Provider as this service sees it. Its discovery document and
    signing keys are cached for the life of the process (they are the provider's public,
    slowly changing facts); keys are fetched again when a token names a key not yet seen,
    so a rotation at the provider needs no restart."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.issuer = (settings.oidc_issuer or "").rstrip("/")
        self.redirect_uri = settings.oidc_redirect_uri or \
            settings.public_base_url.rstrip("/") + CALLBACK_PATH
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.settings.oidc_issuer and self.settings.oidc_client_id)

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = requests.get(url, timeout=self.settings.oidc_http_timeout_seconds)
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError):
            raise ProviderUnavailable("The council's sign-on provider did not answer; try "
                                      "again in a moment, or sign in with a password if "
                                      "that is allowed here.") from None

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None:
                found = self._get_json(self.issuer + "/.well-known/openid-configuration")
                if found.get("issuer", "").rstrip("/") != self.issuer:
                    raise ProviderUnavailable("The sign-on provider's discovery document "
                                              "names another issuer; check oidc_issuer.")
                self._metadata = found
            return self._metadata

    def keys(self, refresh: bool = False) -> KeySet:
        with self._lock:
            cached = self._keys
        if cached is None or refresh:
            cached = KeySet.import_key_set(self._get_json(self.metadata()["jwks_uri"]))
            with self._lock:
                self._keys = cached
        return cached

    def _session(self, **kw: Any) -> OAuth2Session:
        return OAuth2Session(self.settings.oidc_client_id, self.settings.oidc_client_secret,
                             scope=self.settings.oidc_scopes, redirect_uri=self.redirect_uri,
                             code_challenge_method="S256",
                             token_endpoint_auth_method="client_secret_basic", **kw)

    def authorize_url(self, state: str, nonce: str, code_verifier: str) -> str:
        url, _ = self._session().create_authorization_url(
            self.metadata()["authorization_endpoint"], state=state, nonce=nonce,
            code_verifier=code_verifier)
        return url

    def exchange_code(self, code: str, code_verifier: str) -> dict[str, Any]:
        """The provider's token response for this authorization code."""
        try:
            return dict(self._session().fetch_token(
                self.metadata()["token_endpoint"], grant_type="authorization_code",
                code=code, code_verifier=code_verifier,
                timeout=self.settings.oidc_http_timeout_seconds))
        except OAuthError as exc:
            raise Unauthorized(LOGIN_REFUSED.format(
                why=f"the provider refused the code ({exc.error})."),
                slug="sso-refused", title="Sign-on refused") from None
        except requests.RequestException:
            raise ProviderUnavailable("The council's sign-on provider did not answer the "
                                      "token request; try again.") from None

    def id_token_claims(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, once its signature verifies against the provider's keys and
        it was issued by the provider, for this service, for this sign-in (nonce), and has
        not expired; 401 otherwise."""
        refused = Unauthorized(LOGIN_REFUSED.format(why="the identity token did not check "
                                                        "out."),
                               slug="sso-invalid-id-token", title="Identity token refused")
        try:
            try:
                token = jwt.decode(id_token, self.keys(), algorithms=ID_TOKEN_ALGORITHMS)
            except (ValueError, JoseError):
                # Perhaps the provider rotated its keys since we fetched them.
                token = jwt.decode(id_token, self.keys(refresh=True),
                                   algorithms=ID_TOKEN_ALGORITHMS)
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.settings.oidc_client_id},
                sub={"essential": True}, exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (ValueError, JoseError):
            raise refused from None
        claims = token.claims
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.settings.oidc_client_id:
            raise refused
        return claims


def _require_enabled(client: OidcClient) -> None:
    if not client.enabled:
        raise NotFound("Single sign-on is not set up on this service (CHILDVOICE_OIDC_ISSUER "
                       "and CHILDVOICE_OIDC_CLIENT_ID); sign in with your password.",
                       slug="sso-not-configured", title="Single sign-on not set up")


def begin_login(ctx: Context, client: OidcClient) -> LoginStart:
    """Where to send the browser, and the cookie to give it; the attempt is stored."""
    _require_enabled(client)
    now = utcnow()
    state, nonce, verifier, browser = (generate_token(43), generate_token(32),
                                       generate_token(64), generate_token(43))
    url = client.authorize_url(state, nonce, verifier)
    ctx.db.exec(delete(OidcLogin).where(OidcLogin.expires_at < now))
    ctx.db.add(OidcLogin(state_hash=hash_token(state), browser_hash=hash_token(browser),
                         nonce=nonce, code_verifier=verifier, created_at=now,
                         expires_at=now + timedelta(minutes=client.settings.oidc_login_minutes)))
    ctx.db.commit()
    return LoginStart(authorize_url=url, browser_secret=browser)


def _claim_login(ctx: Context, state: str, browser_secret: str | None) -> OidcLogin:
    """The stored attempt for this state, removed so it works once; it must have been
    started by this browser, and not too long ago."""
    login = ctx.db.exec(select(OidcLogin).where(
        OidcLogin.state_hash == hash_token(state))).first()
    if login is None or ctx.db.exec(delete(OidcLogin).where(
            OidcLogin.id == login.id)).rowcount != 1:
        raise Unauthorized(LOGIN_REFUSED.format(why="this sign-in link is unknown or was "
                                                    "used already."),
                           slug="sso-refused", title="Sign-on refused")
    ctx.db.commit()
    if browser_secret is None or hash_token(browser_secret) != login.browser_hash:
        raise Unauthorized(LOGIN_REFUSED.format(why="it was started in another browser (or "
                                                    "cookies are blocked)."),
                           slug="sso-refused", title="Sign-on refused")
    if login.expires_at <= utcnow():
        raise Unauthorized(LOGIN_REFUSED.format(why="it took too long."),
                           slug="sso-refused", title="Sign-on refused")
    return login


def _mapped(settings: Settings, claims: dict[str, Any]) -> tuple[Role, str | None]:
    """The role and team name the person's groups give them: the first entry of the
    mapping (in the order it is configured) whose group they are in."""
    groups = claims.get(settings.oidc_groups_claim) or []
    if isinstance(groups, str):
        groups = [groups]
    for group, target in settings.oidc_group_mapping.items():
        if group in groups:
            return Role(target["role"]), target.get("team")
    raise Forbidden("Your account at the council's identity provider is in none of the "
                    "groups that may use this service; ask your IT team to add you to the "
                    "right group.", slug="sso-no-mapped-group", title="Not in a mapped group")


def _team_id(ctx: Context, name: str | None):  # noqa: ANN202 - a UUID or None
    if not name:
        return None
    team = ctx.db.exec(select(Team).where(Team.name == name)).first()
    if team is None:
        team = Team(name=name)
        ctx.db.add(team)
        ctx.db.flush()
    return team.id


def _person(ctx: Context, hashing: PasswordHashing, claims: dict[str, Any], role: Role,
            team_id) -> User:  # noqa: ANN001 - a UUID or None
    """The user this `sub` belongs to: known by it, or (the first time) an existing account
    with the same verified email, linked; or a new account without a password."""
    subject = str(claims["sub"])
    user = ctx.db.exec(select(User).where(User.oidc_subject == subject)).first()
    email = claims.get("email")
    if user is None and email and claims.get("email_verified") is True:
        user = staff.user_by_email(ctx.db, email)
        if user is not None and user.oidc_subject not in (None, subject):
            user = None  # that email belongs to another person at the provider
        if user is not None:
            user.oidc_subject = subject
    if user is None:
        if not email:
            raise Forbidden("The identity provider sent no email address for you; ask your IT "
                            "team to release the email claim to this service.",
                            slug="sso-no-email", title="No email from the provider")
        name = str(claims.get("name") or email.split("@")[0])[:200]
        user = staff.add_user(ctx.db, hashing, email, name, role, team_id, None,
                              oidc_subject=subject)
        audit.record(ctx, "user.sso_provision", object_type="user", object_id=user.id)
        return user
    if (user.role, user.team_id) != (role.value, team_id):
        # The provider's groups decide: a move or a promotion there applies here now.
        user.role, user.team_id = role.value, team_id
        ctx.db.add(user)
        ctx.db.flush()
        audit.record(ctx, "user.sso_role_change", object_type="user", object_id=user.id)
    return user


def finish_login(ctx: Context, client: OidcClient, hashing: PasswordHashing,
                 tokens: StaffTokens, *, state: str | None, code: str | None,
                 error: str | None, browser_secret: str | None) -> dict:
    """The provider sent the browser back: check everything, then start the service's own
    sign-in session and answer its token pair."""
    _require_enabled(client)
    if error:
        raise Unauthorized(LOGIN_REFUSED.format(why=f"the provider answered '{error[:100]}'."),
                           slug="sso-refused", title="Sign-on refused")
    if not state or not code:
        raise Unauthorized(LOGIN_REFUSED.format(why="the provider's answer had no code or "
                                                    "state."),
                           slug="sso-refused", title="Sign-on refused")
    login = _claim_login(ctx, state, browser_secret)
    answer = client.exchange_code(code, login.code_verifier)
    if not answer.get("id_token"):
        raise Unauthorized(LOGIN_REFUSED.format(why="the provider sent no identity token."),
                           slug="sso-refused", title="Sign-on refused")
    claims = client.id_token_claims(answer["id_token"], login.nonce)
    role, team = _mapped(client.settings, claims)
    user = _person(ctx, hashing, claims, role, _team_id(ctx, team))
    staff.require_active(user)
    pair = staff.start_session(ctx, tokens, user, "auth.sso_sign_in")
    ctx.db.commit()
    return pair
