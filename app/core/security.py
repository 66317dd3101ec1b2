"""Passwords (argon2id), staff access tokens (JWT) and capture tokens (opaque, hashed)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from app.core.clock import utcnow
from app.core.config import Settings

CAPTURE_TOKEN_PREFIX = "cvc_"
DEVICE_KEY_PREFIX = "cvd_"
JWT_ALGORITHM = "HS256"


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
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and \
                password_hash is not None
        except (VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True)
class StaffClaims:
    user_id: uuid.UUID
    expires_at: datetime


class StaffTokens:
    def __init__(self, settings: Settings) -> None:
        self._key = settings.resolved_secret_key()
        self.lifetime = timedelta(minutes=settings.access_token_minutes)

    def issue(self, user_id: uuid.UUID) -> str:
        now = utcnow()
        return jwt.encode({"sub": str(user_id), "typ": "access", "iat": now,
                           "exp": now + self.lifetime, "jti": secrets.token_hex(8)},
                          self._key, algorithm=JWT_ALGORITHM)

    def read(self, token: str) -> StaffClaims | None:
        try:
            claims = jwt.decode(token, self._key, algorithms=[JWT_ALGORITHM],
                                options={"require": ["sub", "exp", "typ"], "verify_exp": False})
        except jwt.PyJWTError:
            return None
        # Expiry is checked against our clock (movable in tests), not PyJWT's.
        expires = datetime.fromtimestamp(claims["exp"], tz=utcnow().tzinfo)
        if claims.get("typ") != "access" or expires <= utcnow():
            return None
        try:
            return StaffClaims(uuid.UUID(claims["sub"]), expires)
        except ValueError:
            return None


def new_capture_token() -> tuple[str, str]:
    """A fresh capture token and the hash that is stored in its place."""
    token = CAPTURE_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_capture_token(token)


def hash_capture_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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
