"""Staff accounts and teams: sign-in with lock-out, sessions with refresh and revocation,
users and the password policy, teams, the unattended bootstrap admin."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.context import Actor, Context
from app.core.db import is_postgres
from app.core.errors import Conflict, Forbidden, Invalid, TooManyRequests, Unauthorized
from app.core.pagination import paginate
from app.core.security import (PasswordHashing, StaffTokens, hash_token, new_refresh_token,
                               password_problem)
from app.models.staff import (PasswordChange, RefreshToken, Role, SignInThrottle,
                              StaffSession, Team, TeamCreate, TeamOut, User, UserCreate,
                              UserOut)
from app.services import access, audit

WRONG_CREDENTIALS = "The email or password is not right."
INVALID_TOKEN = "The access token is invalid or has expired; sign in again."
INVALID_REFRESH = "The refresh token is invalid, used or expired; sign in again."


# --- throttling: lock-out with back-off, per account and per address ----------------------

def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _throttle_keys(settings: Settings, email: str, address: str | None) -> list[tuple[str, int]]:
    return [("account:" + _digest(email.strip().lower()), settings.signin_account_max_failures),
            ("address:" + _digest(address or "unknown"), settings.signin_address_max_failures)]


def _check_not_locked(db: Session, keys: list[tuple[str, int]], now: datetime) -> None:
    rows = db.exec(select(SignInThrottle).where(
        SignInThrottle.key.in_([k for k, _ in keys]))).all()
    waits = [(r.locked_until - now).total_seconds() for r in rows
             if r.locked_until is not None and r.locked_until > now]
    if waits:
        raise TooManyRequests("Too many failed sign-ins. Wait before trying again, or ask an "
                              "admin to check the account.", slug="sign-in-locked",
                              title="Sign-in locked for now", retry_after=int(max(waits)) + 1)


def _lock_for(settings: Settings, failures: int, threshold: int) -> timedelta | None:
    if failures < threshold:
        return None
    minutes = settings.signin_lockout_minutes * 2 ** min(failures - threshold, 20)
    return timedelta(minutes=min(minutes, settings.signin_lockout_max_minutes))


def _count_failure(db: Session, settings: Settings, key: str, threshold: int,
                   now: datetime) -> bool:
    """Count one failure against `key`; True if it now locks. The row is locked while it
    is changed (SQLite serialises writers), so concurrent failures all count."""
    window = timedelta(minutes=settings.signin_failure_window_minutes)
    for _ in range(2):
        stmt = select(SignInThrottle).where(SignInThrottle.key == key)
        if is_postgres(db.get_bind()):
            stmt = stmt.with_for_update()
        row = db.exec(stmt).first()
        if row is None:
            try:
                with db.begin_nested():
                    row = SignInThrottle(key=key, failures=0, first_failure_at=now,
                                         last_failure_at=now)
                    db.add(row)
            except IntegrityError:
                continue  # another request made it a moment ago: lock it and count
        # A quiet spell (no failure and no lock for a whole window) starts a fresh count.
        quiet_since = max(row.last_failure_at, row.locked_until or row.last_failure_at)
        if row.failures and quiet_since + window < now:
            row.failures, row.first_failure_at, row.locked_until = 0, now, None
        row.failures += 1
        row.last_failure_at = now
        lock = _lock_for(settings, row.failures, threshold)
        if lock:
            row.locked_until = now + lock
        db.add(row)
        db.flush()
        return lock is not None
    raise RuntimeError("sign-in throttle row could not be written")


def sign_in(ctx: Context, hashing: PasswordHashing, tokens: StaffTokens, settings: Settings,
            email: str, password: str) -> dict:
    """Check the password and start a sign-in session; refuse (429) while the account or
    the address is locked after repeated failures. The answer is the same whether or not
    the account exists."""
    db, now = ctx.db, utcnow()
    keys = _throttle_keys(settings, email, ctx.client_ip)
    _check_not_locked(db, keys, now)
    user = db.exec(select(User).where(User.email == email.strip().lower())).first()
    # Verify even when there is no such user, so the answer and its timing are the same.
    ok = hashing.verify(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        locked = [_count_failure(db, settings, key, limit, now) for key, limit in keys]
        if any(locked):
            audit.record(Context(db=db, actor=Actor(), client_ip=ctx.client_ip,
                                 user_agent=ctx.user_agent, request_id=ctx.request_id),
                         "auth.lockout", object_type="account",
                         object_id=user.id if user and locked[0] else None)
        db.commit()
        raise Unauthorized(WRONG_CREDENTIALS, slug="wrong-credentials",
                           title="Wrong email or password")
    db.exec(update(SignInThrottle).where(SignInThrottle.key == keys[0][0])
            .values(failures=0, locked_until=None))
    session = StaffSession(user_id=user.id, created_at=now,
                           expires_at=now + tokens.session_lifetime)
    db.add(session)
    db.flush()
    pair = _issue_pair(db, tokens, user, session, now)
    audit.record(Context(db=db, actor=Actor(user=user, staff_session=session),
                         client_ip=ctx.client_ip, user_agent=ctx.user_agent,
                         request_id=ctx.request_id),
                 "auth.sign_in", object_type="staff_session", object_id=session.id)
    db.commit()
    return pair


def _issue_pair(db: Session, tokens: StaffTokens, user: User, session: StaffSession,
                now: datetime) -> dict:
    refresh, refresh_hash = new_refresh_token()
    db.add(RefreshToken(session_id=session.id, token_hash=refresh_hash, issued_at=now,
                        expires_at=session.expires_at))
    return {"access_token": tokens.issue(user.id, session.id), "token_type": "bearer",
            "expires_in": int(tokens.lifetime.total_seconds()), "refresh_token": refresh,
            "refresh_expires_in": max(int((session.expires_at - now).total_seconds()), 0)}


def _session_usable(session: StaffSession | None, now: datetime) -> bool:
    return session is not None and session.revoked_at is None and session.expires_at > now


def refresh(ctx: Context, tokens: StaffTokens, refresh_token: str) -> dict:
    """Swap a refresh token (once) for a new pair. A refresh token used a second time
    means it was copied: the whole sign-in session is revoked."""
    db, now = ctx.db, utcnow()
    stored = db.exec(select(RefreshToken).where(
        RefreshToken.token_hash == hash_token(refresh_token))).first()
    if stored is None:
        raise Unauthorized(INVALID_REFRESH, slug="invalid-token")
    session = db.get(StaffSession, stored.session_id)
    user = db.get(User, session.user_id) if session else None
    # Claim it atomically: of two requests racing with one token, one wins.
    claimed = db.exec(update(RefreshToken).where(RefreshToken.id == stored.id,
                                                 RefreshToken.used_at.is_(None))
                      .values(used_at=now)).rowcount == 1
    if not claimed:
        if session is not None and session.revoked_at is None:
            session.revoked_at, session.revoked_reason = now, "refresh_reuse"
            db.add(session)
            audit.record(Context(db=db, actor=Actor(user=user, staff_session=session),
                                 client_ip=ctx.client_ip, user_agent=ctx.user_agent,
                                 request_id=ctx.request_id),
                         "auth.refresh_reuse", object_type="staff_session",
                         object_id=session.id)
        db.commit()
        raise Unauthorized(INVALID_REFRESH, slug="invalid-token")
    if stored.expires_at <= now or not _session_usable(session, now) or user is None or \
            not user.is_active:
        db.commit()
        raise Unauthorized(INVALID_REFRESH, slug="invalid-token")
    pair = _issue_pair(db, tokens, user, session, now)
    db.commit()
    return pair


def staff_from_token(db: Session, tokens: StaffTokens, token: str) -> Actor:
    """The signed-in user, if the token is valid and its sign-in session is not revoked
    (checked on every request, so sign-out takes effect at once)."""
    claims = tokens.read(token)
    if claims is None:
        raise Unauthorized(INVALID_TOKEN, slug="invalid-token")
    session = db.get(StaffSession, claims.session_id)
    user = db.get(User, claims.user_id)
    if user is None or not user.is_active or not _session_usable(session, utcnow()) or \
            session.user_id != user.id:
        raise Unauthorized(INVALID_TOKEN, slug="invalid-token")
    return Actor(user=user, staff_session=session)


def _revoke_sessions(db: Session, user_id: uuid.UUID, reason: str,
                     keep: uuid.UUID | None = None) -> int:
    stmt = update(StaffSession).where(StaffSession.user_id == user_id,
                                      StaffSession.revoked_at.is_(None))
    if keep is not None:
        stmt = stmt.where(StaffSession.id != keep)
    return db.exec(stmt.values(revoked_at=utcnow(), revoked_reason=reason)).rowcount


def logout(ctx: Context) -> None:
    """Sign out this sign-in: its access and refresh tokens stop working."""
    _require_signed_in(ctx)
    session = ctx.actor.staff_session
    session.revoked_at, session.revoked_reason = utcnow(), "logout"
    ctx.db.add(session)
    audit.record(ctx, "auth.logout", object_type="staff_session", object_id=session.id)
    ctx.db.commit()


def logout_all(ctx: Context) -> None:
    """Sign out everywhere: every sign-in of this user, on every device."""
    user = _require_signed_in(ctx)
    _revoke_sessions(ctx.db, user.id, "logout_all")
    audit.record(ctx, "auth.logout_all", object_type="user", object_id=user.id)
    ctx.db.commit()


def change_password(ctx: Context, hashing: PasswordHashing, settings: Settings,
                    data: PasswordChange) -> None:
    """Change one's own password; every other sign-in is signed out."""
    user = _require_signed_in(ctx)
    if not hashing.verify(user.password_hash, data.current_password):
        raise Forbidden("The current password is not right.", slug="wrong-password")
    problem = password_problem(data.new_password, min_length=settings.password_min_length,
                               email=user.email, full_name=user.full_name)
    if problem:
        raise Invalid(problem, field=["body", "new_password"])
    user.password_hash = hashing.hash(data.new_password)
    ctx.db.add(user)
    _revoke_sessions(ctx.db, user.id, "password_change", keep=ctx.actor.staff_session.id)
    audit.record(ctx, "auth.password_change", object_type="user", object_id=user.id)
    ctx.db.commit()


def _require_signed_in(ctx: Context) -> User:
    if ctx.actor.user is None or ctx.actor.staff_session is None:
        raise Forbidden("Only a signed-in staff user can do this.")
    return ctx.actor.user


def add_user(db: Session, hashing: PasswordHashing, email: str, full_name: str, role: Role,
             team_id: uuid.UUID | None, password: str, min_password_length: int = 12) -> User:
    problem = password_problem(password, min_length=min_password_length, email=email,
                               full_name=full_name)
    if problem:
        raise Invalid(problem, field=["body", "password"])
    if role != Role.admin and team_id is None:
        raise Invalid("team_id is required for social workers and team managers",
                      field=["body", "team_id"])
    if team_id is not None and db.get(Team, team_id) is None:
        raise Invalid("team_id names no team", field=["body", "team_id"])
    user = User(email=email.strip().lower(), full_name=full_name, role=role.value,
                team_id=team_id, password_hash=hashing.hash(password))
    db.add(user)
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise Conflict("A user with this email already exists.") from None
    return user


def create_user(ctx: Context, hashing: PasswordHashing, data: UserCreate,
                min_password_length: int = 12) -> UserOut:
    access.require_admin(ctx.actor)
    user = add_user(ctx.db, hashing, data.email, data.full_name, data.role, data.team_id,
                    data.password, min_password_length)
    ctx.db.commit()
    return UserOut.model_validate(user)


def list_users(ctx: Context, limit: int, cursor: str | None) -> dict:
    access.require_admin(ctx.actor)
    return paginate(ctx.db, select(User), sort_col=User.created_at, id_col=User.id,
                    limit=limit, cursor=cursor, shape=UserOut.model_validate)


def create_team(ctx: Context, data: TeamCreate) -> TeamOut:
    access.require_admin(ctx.actor)
    team = Team(name=data.name.strip())
    ctx.db.add(team)
    try:
        ctx.db.commit()
    except IntegrityError:
        ctx.db.rollback()
        raise Conflict("A team with this name already exists.") from None
    return TeamOut.model_validate(team)


def list_teams(ctx: Context, limit: int, cursor: str | None) -> dict:
    if ctx.actor.user is None:
        raise Forbidden("Staff only.")
    return paginate(ctx.db, select(Team), sort_col=Team.created_at, id_col=Team.id,
                    limit=limit, cursor=cursor, shape=TeamOut.model_validate)


def bootstrap_admin(db: Session, hashing: PasswordHashing, email: str | None,
                    password: str | None) -> bool:
    """Create the first admin for an unattended install; only when there are no users.

    Several server processes start at once (`serve --workers N`): whichever commits first
    makes the admin, and the others find it there (the email is unique), never an error
    that stops a process from starting."""
    if not email or not password:
        return False
    if db.exec(select(func.count()).select_from(User)).one() > 0:
        return False
    try:
        add_user(db, hashing, email, "Administrator", Role.admin, None, password)
        db.commit()
    except Conflict:
        db.rollback()
        return False
    return True
