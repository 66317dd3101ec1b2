"""Passwords (argon2id) and their policy, staff access tokens (short-lived JWT naming a
revocable sign-in session), refresh tokens and capture tokens (opaque, stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from app.core.clock import utcnow
from app.core.config import Settings

CAPTURE_TOKEN_PREFIX = "cvc_"
REFRESH_TOKEN_PREFIX = "cvr_"
DEVICE_KEY_PREFIX = "cvd_"
JWT_ALGORITHM = "HS256"

# A short list of the most common long passwords and patterns; the policy also refuses
# passwords built from the account's own email or name. (NCSC guidance: length and a
# deny-list, no composition rules.)
COMMON_PASSWORDS = frozenset({
    "password1234", "password12345", "password123456", "passwordpassword", "123456789012",
    "1234567890123", "12345678901234", "qwertyuiopasdf", "qwertyuiop123", "qwerty123456",
    "iloveyou1234", "letmein12345", "welcome12345", "welcome123456", "administrator",
    "changeme1234", "trustno1trustno1", "abcdefghijkl", "abc123abc123", "football1234",
    "monkey123456", "sunshine1234", "princess1234", "childvoice123", "childvoice1234",
    "socialworker", "socialworker1", "passw0rd1234", "p@ssw0rd1234", "p@ssword1234",
})


def password_problem(password: str, *, min_length: int, email: str | None = None,
                     full_name: str | None = None) -> str | None:
    """Why `password` is not acceptable, or None. Minimum policy: long enough, not a
    common password, not one repeated character or sequence, not built from the
    account's email or name."""
    if len(password) < min_length:
        return f"The password must have at least {min_length} characters."
    if len(password) > 256:
        return "The password must have at most 256 characters."
    folded = password.casefold()
    if folded in COMMON_PASSWORDS or len(set(folded)) < 4:
        return "This password is too common or too easy to guess; choose a longer phrase."
    words = []
    if email:
        words.append(email.split("@")[0].casefold())
    if full_name:
        words += [w.casefold() for w in full_name.split() if len(w) >= 4]
    squashed = "".join(ch for ch in folded if ch.isalnum())
    for word in words:
        word = "".join(ch for ch in word if ch.isalnum())
        if len(word) >= 4 and word in squashed and len(squashed) - len(word) < min_length:
            return "The password must not be built from your email or name."
    return None


class PasswordHashing:
    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(time_cost=settings.password_time_cost,
                                      memory_cost=settings.password_memory_kib,
                                      parallelism=settings.password_parallelism,
                                      type=Type.ID)
        # Verified against when the email is unknown, so both paths cost the same.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches; an unknown account (None) or one with no password (an
        SSO-only account) costs the same hashing and never matches."""
        usable = password_hash is not None and password_hash.startswith("$argon2")
        try:
            return self._hasher.verify(password_hash if usable else self._dummy, password) \
                and usable
        except (VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True)
class StaffClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at: datetime


class StaffTokens:
    def __init__(self, settings: Settings) -> None:
        self._key = settings.resolved_secret_key()
        self.lifetime = timedelta(minutes=settings.access_token_minutes)
        self.session_lifetime = timedelta(hours=settings.staff_session_hours)

    def issue(self, user_id: uuid.UUID, session_id: uuid.UUID) -> str:
        now = utcnow()
        return jwt.encode({"sub": str(user_id), "sid": str(session_id), "typ": "access",
                           "iat": now, "exp": now + self.lifetime,
                           "jti": secrets.token_hex(8)},
                          self._key, algorithm=JWT_ALGORITHM)

    def read(self, token: str) -> StaffClaims | None:
        """The claims of a genuine access token (expired or not: the caller says which), or
        None for anything else."""
        try:
            # Times are checked against our clock (movable in tests), not PyJWT's.
            claims = jwt.decode(token, self._key, algorithms=[JWT_ALGORITHM],
                                options={"require": ["sub", "sid", "exp", "typ"],
                                         "verify_exp": False, "verify_iat": False,
                                         "verify_nbf": False})
        except jwt.PyJWTError:
            return None
        expires = datetime.fromtimestamp(claims["exp"], tz=timezone.utc)
        if claims.get("typ") != "access":
            return None
        try:
            return StaffClaims(uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"]), expires)
        except (ValueError, TypeError, AttributeError):
            return None


def new_refresh_token() -> tuple[str, str]:
    """A fresh refresh token and the hash that is stored in its place."""
    token = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_reset_code() -> tuple[str, str]:
    """A one-time password reset code an admin reads out or passes on (unambiguous letters
    and digits in groups of four, 80 bits) and the hash that is stored in its place."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(16))
    code = "-".join(raw[i:i + 4] for i in range(0, 16, 4))
    return code, hash_reset_code(code)


def hash_reset_code(code: str) -> str:
    # Typed by a person: ignore case, spaces and dashes.
    return hash_token("".join(ch for ch in code.upper() if ch.isalnum()))


def new_capture_token() -> tuple[str, str]:
    """A fresh capture token and the hash that is stored in its place."""
    token = CAPTURE_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_capture_token(token)


def hash_capture_token(token: str) -> str:
    return hash_token(token)


def is_capture_token(token: str) -> bool:
    return token.startswith(CAPTURE_TOKEN_PREFIX)


def new_device_key() -> tuple[str, str]:
    """A fresh device key and the hash that is stored in its place."""
    key = DEVICE_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_device_key(key)


def hash_device_key(key: str) -> str:
    # A 256-bit random secret needs no slow hash; SHA-256 keeps a database read from using it.
    return hashlib.sha256(key.encode()).hexdigest()


def device_key_matches(key: str | None, key_hash: str) -> bool:
    return key is not None and secrets.compare_digest(hash_device_key(key), key_hash)
