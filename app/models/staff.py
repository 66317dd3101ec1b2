"""Teams and staff users."""

import uuid
from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import ConfigDict, EmailStr, Field as PydField
from sqlmodel import Field, SQLModel

from app.models.common import ApiModel, SafeText, id_field, utc_field


class Role(str, Enum):
    social_worker = "social_worker"
    team_manager = "team_manager"
    admin = "admin"


class Team(SQLModel, table=True):
    __tablename__ = "teams"
    id: uuid.UUID = id_field()
    name: str = Field(max_length=200, unique=True)
    created_at: datetime = utc_field(default_now=True)


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: uuid.UUID = id_field()
    email: str = Field(max_length=320, unique=True, index=True)
    full_name: str = Field(max_length=200)
    role: str = Field(max_length=32)
    team_id: uuid.UUID | None = Field(default=None, foreign_key="teams.id", index=True)
    # "!" for an account that signs in only through the council's SSO (no password works).
    password_hash: str = Field(max_length=255)
    is_active: bool = Field(default=True)
    created_at: datetime = utc_field(default_now=True)
    # A leaver: nothing of theirs works (tokens, capture tokens, devices) until reactivated.
    deactivated_at: datetime | None = utc_field(nullable=True)
    deactivated_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    # Bumped by sign-out everywhere, a password change and deactivation: a capture token
    # works only while the generation it was issued under is the user's current one.
    capture_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # The council's identity provider's `sub` for this person (single sign-on).
    oidc_subject: str | None = Field(default=None, max_length=255, unique=True)


class TeamCreate(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Disabled Children's Team North"}]})
    name: SafeText = PydField(min_length=1, max_length=200)


class TeamOut(ApiModel):
    id: uuid.UUID
    name: str
    created_at: datetime


class UserCreate(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "email": "sam.worker@example.org", "full_name": "Sam Worker", "role": "social_worker",
        "team_id": "6f1c2d4e-0000-4000-8000-000000000001", "password": "a long passphrase"}]})
    email: EmailStr = PydField(max_length=320)
    full_name: SafeText = PydField(min_length=1, max_length=200)
    role: Role
    team_id: uuid.UUID | None = None
    password: str = PydField(min_length=1, max_length=256,
                             description="At least 12 characters, not a common password, "
                             "not built from the email or name (see the password policy).")


class UserOut(ApiModel):
    id: uuid.UUID
    email: str
    full_name: str
    role: Role
    team_id: uuid.UUID | None
    is_active: bool = PydField(description="False for a deactivated user (a leaver): they "
                               "cannot sign in and nothing of theirs works.")
    status: Literal["active", "deactivated"]
    deactivated_at: datetime | None = None
    locked_until: datetime | None = PydField(
        default=None, description="Set while sign-in is locked after repeated failures "
        "(an admin can unlock it).")
    created_at: datetime


class TeamMemberOut(ApiModel):
    """What a team manager sees of the people in their team, to allocate children."""

    id: uuid.UUID
    full_name: str
    role: Role
    status: Literal["active", "deactivated"]
    children_held: int = PydField(description="Children allocated to them now.")


class PasswordReset(SQLModel, table=True):
    """A one-time code an admin made for a user who forgot their password; only its hash
    is kept, it expires, and it works once."""

    __tablename__ = "password_resets"
    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    code_hash: str = Field(max_length=64, unique=True)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = utc_field(default_now=True)
    expires_at: datetime = utc_field()
    used_at: datetime | None = utc_field(nullable=True)


class PasswordResetOut(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "user_id": "6f1c2d4e-0000-4000-8000-000000000002", "code": "K7QF-2M9X-PL4D-8RWA",
        "expires_at": "2026-03-02T12:00:00+00:00"}]})
    user_id: uuid.UUID
    code: str = PydField(description="Shown only this once; pass it to the user, who "
                         "exchanges it at /auth/password-reset for a password of their own.")
    expires_at: datetime


class PasswordResetIn(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "email": "sam.worker@example.org", "code": "K7QF-2M9X-PL4D-8RWA",
        "new_password": "a new long passphrase"}]})
    email: str = PydField(min_length=1, max_length=320)
    code: str = PydField(min_length=1, max_length=100)
    new_password: str = PydField(min_length=1, max_length=256)


class OidcLogin(SQLModel, table=True):
    """One single sign-on attempt between the redirect to the provider and its callback:
    kept in the database (any API process may receive the callback), bound to the browser
    by a cookie, used once."""

    __tablename__ = "oidc_logins"
    id: uuid.UUID = id_field()
    state_hash: str = Field(max_length=64, unique=True)
    browser_hash: str = Field(max_length=64)
    nonce: str = Field(max_length=100)
    code_verifier: str = Field(max_length=128)
    created_at: datetime = utc_field(default_now=True)
    expires_at: datetime = utc_field(index=True)


class StaffSession(SQLModel, table=True):
    """One sign-in: every access and refresh token names it, and each request checks that
    it is not revoked (sign-out, sign-out everywhere, refresh-token reuse)."""

    __tablename__ = "staff_sessions"
    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    created_at: datetime = utc_field(default_now=True)
    expires_at: datetime = utc_field()
    revoked_at: datetime | None = utc_field(nullable=True)
    revoked_reason: str | None = Field(default=None, max_length=32)


class RefreshToken(SQLModel, table=True):
    """Refresh tokens rotate: each is used once. Only a hash is kept."""

    __tablename__ = "refresh_tokens"
    id: uuid.UUID = id_field()
    session_id: uuid.UUID = Field(foreign_key="staff_sessions.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    issued_at: datetime = utc_field(default_now=True)
    expires_at: datetime = utc_field()
    used_at: datetime | None = utc_field(nullable=True)


class SignInThrottle(SQLModel, table=True):
    """Failed sign-ins counted per account and per client address, in the database so
    every API process sees the same count. `key` is a hash: what was typed as an email
    (sometimes a password by mistake) is never stored."""

    __tablename__ = "sign_in_throttles"
    key: str = Field(primary_key=True, max_length=80)  # "account:<sha256>" | "address:<sha256>"
    failures: int = 0
    first_failure_at: datetime = utc_field()
    last_failure_at: datetime = utc_field()
    locked_until: datetime | None = utc_field(nullable=True)


class TokenOut(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "access_token": "eyJhbGciOi...", "token_type": "bearer", "expires_in": 900,
        "refresh_token": "cvr_...", "refresh_expires_in": 43200}]})
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str | None = PydField(default=None, description="Use once at "
                                         "/auth/refresh for a new pair.")
    refresh_expires_in: int | None = None


class RefreshIn(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"refresh_token": "cvr_3q2x…"}]})
    refresh_token: str = PydField(min_length=1, max_length=200)


class PasswordChange(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"current_password": "the old passphrase", "new_password": "a new long passphrase"}]})
    current_password: str = PydField(min_length=1, max_length=256)
    new_password: str = PydField(min_length=1, max_length=256)
