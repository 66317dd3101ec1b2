"""Staff accounts and teams: sign-in with lock-out, sessions with refresh and revocation,
users and the password policy, an admin's care of accounts (leavers, lock-outs, one-time
reset codes), a manager's view of their team, teams, the unattended bootstrap admin."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.context import Actor, Context
from app.core.db import is_postgres
from app.core.errors import (Conflict, Forbidden, Invalid, NotFound, TooManyRequests,
                             Unauthorized)
from app.core.pagination import paginate
from app.core.security import (PasswordHashing, StaffTokens, hash_reset_code, hash_token,
                               new_refresh_token, new_reset_code, password_problem)
from app.models.child import Allocation
from app.models.staff import (PasswordChange, PasswordReset, PasswordResetIn,
                              PasswordResetOut, RefreshToken, Role, SignInThrottle,
                              StaffSession, Team, TeamCreate, TeamMemberOut, TeamOut, User,
                              UserCreate, UserOut)
from app.models.sync import Device
from app.services import access, audit

WRONG_CREDENTIALS = "The email or password is not right."
INVALID_TOKEN = "The access token is invalid or has expired; sign in again."
EXPIRED_TOKEN = ("The access token has expired: get a new one with your refresh token at "
                 "POST /api/v1/auth/refresh, or sign in again.")
DEACTIVATED = ("This account is deactivated, so it cannot sign in; an admin can reactivate "
               "it.")
# Stored in place of a password hash for accounts that sign in only through SSO: no
# password verifies against it.
NO_PASSWORD = "!"
INVALID_REFRESH = "The refresh token is invalid, used or expired; sign in again."


# --- throttling: lock-out with back-off, per account and per address+account -------------

def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _account_digest(email: str) -> str:
    return _digest(email.strip().lower())


def _throttle_keys(settings: Settings, email: str, address: str | None) -> list[tuple[str, int]]:
    """The counters one failure adds to: this account from this address (locks the address
    out of the account), and this account from anywhere (locks the account). Never the
    address alone: a council's staff share one NAT address."""
    account = _account_digest(email)
    return [("pair:" + account[:32] + ":" + _digest(address or "unknown")[:32],
             settings.signin_account_max_failures),
            ("account:" + account, settings.signin_account_any_address_max_failures)]


def _account_keys_clause(email: str):  # noqa: ANN202 - a SQL expression
    account = _account_digest(email)
    return (SignInThrottle.key == "account:" + account) | \
        SignInThrottle.key.startswith("pair:" + account[:32] + ":")


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
    """Check the password and start a sign-in session; refuse (429) while this address is
    locked out of the account, or the account is locked, after repeated failures. The
    answer is the same whether or not the account exists."""
    if not settings.local_passwords_enabled:
        raise Forbidden("Sign-in with a password is turned off here; sign in through the "
                        "council's single sign-on (GET /api/v1/auth/oidc/login).",
                        slug="local-passwords-off", title="Password sign-in is off")
    db, now = ctx.db, utcnow()
    keys = _throttle_keys(settings, email, ctx.client_ip)
    _check_not_locked(db, keys, now)
    user = db.exec(select(User).where(User.email == email.strip().lower())).first()
    # Verify even when there is no such user, so the answer and its timing are the same.
    ok = hashing.verify(user.password_hash if user else None, password)
    if not ok or user is None:
        _count_failures(ctx, settings, keys, user)
        db.commit()
        raise Unauthorized(WRONG_CREDENTIALS, slug="wrong-credentials",
                           title="Wrong email or password")
    _clear_failures(db, keys)
    require_active(user)
    pair = start_session(ctx, tokens, user, "auth.sign_in")
    db.commit()
    return pair


def _count_failures(ctx: Context, settings: Settings, keys: list[tuple[str, int]],
                    user: User | None) -> None:
    """One more failure on each counter; a lock-out is audited (against the account when
    it exists)."""
    now = utcnow()
    locked = [_count_failure(ctx.db, settings, key, limit, now) for key, limit in keys]
    if any(locked):
        audit.record(Context(db=ctx.db, actor=Actor(), client_ip=ctx.client_ip,
                             user_agent=ctx.user_agent, request_id=ctx.request_id),
                     "auth.lockout", object_type="account",
                     object_id=user.id if user else None)


def _clear_failures(db: Session, keys: list[tuple[str, int]]) -> None:
    """The right password from this address: its own failures are forgiven (the account's
    count from everywhere runs out on its own, so an attacker elsewhere gains nothing)."""
    db.exec(update(SignInThrottle).where(SignInThrottle.key == keys[0][0])
            .values(failures=0, locked_until=None))


def require_active(user: User) -> None:
    """Said only to someone who proved who they are (the right password, or the SSO)."""
    if not user.is_active:
        raise Forbidden(DEACTIVATED, slug="user-deactivated", title="Account deactivated")


def start_session(ctx: Context, tokens: StaffTokens, user: User, action: str) -> dict:
    """A new sign-in session for `user` (checked already), with its token pair; audited as
    `action`. The caller commits."""
    now = utcnow()
    session = StaffSession(user_id=user.id, created_at=now,
                           expires_at=now + tokens.session_lifetime)
    ctx.db.add(session)
    ctx.db.flush()
    pair = _issue_pair(ctx.db, tokens, user, session, now)
    audit.record(Context(db=ctx.db, actor=Actor(user=user, staff_session=session),
                         client_ip=ctx.client_ip, user_agent=ctx.user_agent,
                         request_id=ctx.request_id),
                 action, object_type="staff_session", object_id=session.id)
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
    if claims.expires_at <= utcnow():
        raise Unauthorized(EXPIRED_TOKEN, slug="token-expired", title="Access token expired")
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


def _end_capture_tokens(db: Session, user_id: uuid.UUID) -> None:
    """Every capture token this user issued stops working at once (see
    access.capture_token_usable): one counter, however many sessions are open."""
    db.exec(update(User).where(User.id == user_id)
            .values(capture_generation=User.capture_generation + 1))


def logout(ctx: Context) -> None:
    """Sign out this sign-in: its access and refresh tokens stop working."""
    _require_signed_in(ctx)
    session = ctx.actor.staff_session
    session.revoked_at, session.revoked_reason = utcnow(), "logout"
    ctx.db.add(session)
    audit.record(ctx, "auth.logout", object_type="staff_session", object_id=session.id)
    ctx.db.commit()


def logout_all(ctx: Context) -> None:
    """Sign out everywhere: every sign-in of this user, on every device, and every capture
    token they issued."""
    user = _require_signed_in(ctx)
    _revoke_sessions(ctx.db, user.id, "logout_all")
    _end_capture_tokens(ctx.db, user.id)
    audit.record(ctx, "auth.logout_all", object_type="user", object_id=user.id)
    ctx.db.commit()


def change_password(ctx: Context, hashing: PasswordHashing, settings: Settings,
                    data: PasswordChange) -> None:
    """Change one's own password; every other sign-in and every capture token the user
    issued stop working. Wrong current passwords count like failed sign-ins (a stolen
    access token must not become a way to guess the password)."""
    user = _require_signed_in(ctx)
    keys = _throttle_keys(settings, user.email, ctx.client_ip)
    _check_not_locked(ctx.db, keys, utcnow())
    if not hashing.verify(user.password_hash, data.current_password):
        _count_failures(ctx, settings, keys, user)
        ctx.db.commit()
        raise Forbidden("The current password is not right.", slug="wrong-password")
    _set_password(ctx, hashing, settings, user, data.new_password)
    _clear_failures(ctx.db, keys)
    _revoke_sessions(ctx.db, user.id, "password_change", keep=ctx.actor.staff_session.id)
    audit.record(ctx, "auth.password_change", object_type="user", object_id=user.id)
    ctx.db.commit()


def _set_password(ctx: Context, hashing: PasswordHashing, settings: Settings, user: User,
                  new_password: str) -> None:
    problem = password_problem(new_password, min_length=settings.password_min_length,
                               email=user.email, full_name=user.full_name)
    if problem:
        raise Invalid(problem, field=["body", "new_password"])
    user.password_hash = hashing.hash(new_password)
    ctx.db.add(user)
    ctx.db.flush()
    _end_capture_tokens(ctx.db, user.id)


def _require_signed_in(ctx: Context) -> User:
    if ctx.actor.user is None or ctx.actor.staff_session is None:
        raise Forbidden("Only a signed-in staff user can do this.")
    return ctx.actor.user


def add_user(db: Session, hashing: PasswordHashing, email: str, full_name: str, role: Role,
             team_id: uuid.UUID | None, password: str | None, min_password_length: int = 12,
             oidc_subject: str | None = None) -> User:
    """A new staff user; `password` None for one who signs in only through SSO."""
    if password is not None:
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
                team_id=team_id, oidc_subject=oidc_subject,
                password_hash=hashing.hash(password) if password is not None else NO_PASSWORD)
    db.add(user)
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise Conflict("A user with this email already exists.") from None
    return user


def _locks(db: Session, users: list[User]) -> dict[uuid.UUID, datetime]:
    """When each of these users' sign-in stays locked, for those locked now (account-wide
    or from some address)."""
    if not users:
        return {}
    now = utcnow()
    by_digest = {_account_digest(u.email): u.id for u in users}
    rows = db.exec(select(SignInThrottle).where(SignInThrottle.locked_until > now)).all()
    locks: dict[uuid.UUID, datetime] = {}
    for row in rows:
        kind, _, rest = row.key.partition(":")
        prefix = rest if kind == "account" else rest.split(":")[0]
        user_id = next((uid for d, uid in by_digest.items() if d.startswith(prefix)), None) \
            if prefix else None
        if user_id is not None:
            locks[user_id] = max(locks.get(user_id, row.locked_until), row.locked_until)
    return locks


def user_out(user: User, locked_until: datetime | None = None) -> UserOut:
    return UserOut(id=user.id, email=user.email, full_name=user.full_name, role=user.role,
                   team_id=user.team_id, is_active=user.is_active,
                   status="active" if user.is_active else "deactivated",
                   deactivated_at=user.deactivated_at, locked_until=locked_until,
                   created_at=user.created_at)


def create_user(ctx: Context, hashing: PasswordHashing, data: UserCreate,
                min_password_length: int = 12) -> UserOut:
    access.require_admin(ctx.actor)
    user = add_user(ctx.db, hashing, data.email, data.full_name, data.role, data.team_id,
                    data.password, min_password_length)
    audit.record(ctx, "user.create", object_type="user", object_id=user.id)
    ctx.db.commit()
    return user_out(user)


def list_users(ctx: Context, limit: int, cursor: str | None) -> dict:
    access.require_admin(ctx.actor)
    page = paginate(ctx.db, select(User), sort_col=User.created_at, id_col=User.id,
                    limit=limit, cursor=cursor)
    locks = _locks(ctx.db, page["items"])
    page["items"] = [user_out(u, locks.get(u.id)) for u in page["items"]]
    return page


def get_user(ctx: Context, user_id: uuid.UUID) -> UserOut:
    access.require_admin(ctx.actor)
    user = _user(ctx.db, user_id)
    return user_out(user, _locks(ctx.db, [user]).get(user.id))


def _user(db: Session, user_id: uuid.UUID) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound("No user with this id.")
    return user


def team_members(ctx: Context, limit: int, cursor: str | None) -> dict:
    """The people of the caller's own team with how many children each holds now: what a
    team manager needs to allocate."""
    manager = access.require_team_manager(ctx.actor)
    page = paginate(ctx.db, select(User).where(User.team_id == manager.team_id),
                    sort_col=User.created_at, id_col=User.id, limit=limit, cursor=cursor)
    ids = [u.id for u in page["items"]]
    held = dict(ctx.db.exec(select(Allocation.user_id, func.count())
                            .where(Allocation.user_id.in_(ids), Allocation.ended_at.is_(None))
                            .group_by(Allocation.user_id)).all()) if ids else {}
    page["items"] = [TeamMemberOut(id=u.id, full_name=u.full_name, role=u.role,
                                   status="active" if u.is_active else "deactivated",
                                   children_held=held.get(u.id, 0)) for u in page["items"]]
    return page


# --- an admin's care of accounts: leavers, lock-outs, forgotten passwords -----------------

def deactivate(db: Session, user: User, by: User | None) -> bool:
    """A leaver: every sign-in, refresh token, capture token and enrolled device of theirs
    stops working at once; what they recorded stays theirs. False if already deactivated.
    Neither audits nor commits."""
    if not user.is_active:
        return False
    now = utcnow()
    user.is_active, user.deactivated_at, user.deactivated_by = False, now, by.id if by else None
    db.add(user)
    db.flush()
    _revoke_sessions(db, user.id, "deactivated")
    _end_capture_tokens(db, user.id)
    db.exec(update(Device).where(Device.user_id == user.id, Device.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=by.id if by else None,
                    revoked_reason="The worker's account was deactivated."))
    return True


def reactivate(db: Session, user: User) -> bool:
    """Back from leave: they may sign in again (their old sign-ins, capture tokens and
    devices stay ended). False if already active. Neither audits nor commits."""
    if user.is_active:
        return False
    user.is_active, user.deactivated_at, user.deactivated_by = True, None, None
    db.add(user)
    return True


def unlock(db: Session, user: User) -> int:
    """Forget the failed sign-ins of this account (from every address). Neither audits nor
    commits."""
    return db.exec(delete(SignInThrottle).where(_account_keys_clause(user.email))).rowcount


def new_password_reset(db: Session, settings: Settings, user: User,
                       by: User | None) -> PasswordResetOut:
    """A one-time reset code for `user`, replacing any earlier one; only its hash is kept.
    Neither audits nor commits."""
    if not user.is_active:
        raise Conflict("This account is deactivated; reactivate it before resetting its "
                       "password.", slug="user-deactivated")
    now = utcnow()
    db.exec(delete(PasswordReset).where(PasswordReset.user_id == user.id))
    code, code_hash = new_reset_code()
    reset = PasswordReset(user_id=user.id, code_hash=code_hash, created_by=by.id if by else None,
                          created_at=now,
                          expires_at=now + timedelta(hours=settings.password_reset_hours))
    db.add(reset)
    db.flush()
    return PasswordResetOut(user_id=user.id, code=code, expires_at=reset.expires_at)


ACCOUNT_ACTIONS = ("deactivate", "reactivate", "unlock", "reset-password")


def account_action(ctx: Context, settings: Settings, user: User, action: str,
                   by: User | None) -> PasswordResetOut | None:
    """deactivate, reactivate, unlock or reset-password `user` (by an admin, or by the
    `childvoice users` command when `by` is None); audited. The caller commits."""
    answer = None
    if action == "deactivate":
        if by is not None and user.id == by.id:
            raise Conflict("You cannot deactivate your own account; ask another admin.",
                           slug="own-account")
        deactivate(ctx.db, user, by)
    elif action == "reactivate":
        reactivate(ctx.db, user)
    elif action == "unlock":
        unlock(ctx.db, user)
    elif action == "reset-password":
        answer = new_password_reset(ctx.db, settings, user, by)
    else:
        raise ValueError(action)
    audit.record(ctx, f"user.{action.replace('-', '_')}", object_type="user",
                 object_id=user.id)
    return answer


def admin_user_action(ctx: Context, settings: Settings, user_id: uuid.UUID,
                      action: str) -> UserOut | PasswordResetOut:
    admin = access.require_admin(ctx.actor)
    user = _user(ctx.db, user_id)
    answer = account_action(ctx, settings, user, action, admin)
    ctx.db.commit()
    return answer or user_out(user, _locks(ctx.db, [user]).get(user.id))


def user_by_email(db: Session, email: str) -> User | None:
    return db.exec(select(User).where(User.email == email.strip().lower())).first()


def reset_password(ctx: Context, hashing: PasswordHashing, settings: Settings,
                   data: PasswordResetIn) -> None:
    """Exchange an admin's one-time code for a password of one's own. Wrong codes count
    like failed sign-ins; the code works once; the account is unlocked and every earlier
    sign-in ends."""
    db, now = ctx.db, utcnow()
    keys = _throttle_keys(settings, data.email, ctx.client_ip)
    _check_not_locked(db, keys, now)
    user = db.exec(select(User).where(User.email == data.email.strip().lower())).first()
    reset = db.exec(select(PasswordReset).where(
        PasswordReset.code_hash == hash_reset_code(data.code))).first()
    if user is None or not user.is_active or reset is None or reset.user_id != user.id or \
            reset.used_at is not None or reset.expires_at <= now:
        _count_failures(ctx, settings, keys, user)
        db.commit()
        raise Unauthorized("The email or reset code is not right, or the code was used or "
                           "has expired; ask an admin for a new code.",
                           slug="invalid-reset-code", title="Reset code not accepted")
    _set_password(ctx, hashing, settings, user, data.new_password)
    # Claim it atomically: of two requests racing with one code, one wins.
    if db.exec(update(PasswordReset).where(PasswordReset.id == reset.id,
                                           PasswordReset.used_at.is_(None))
               .values(used_at=now)).rowcount != 1:
        db.rollback()
        raise Unauthorized("This reset code was used already; ask an admin for a new code.",
                           slug="invalid-reset-code", title="Reset code not accepted")
    unlock(db, user)
    _revoke_sessions(db, user.id, "password_reset")
    audit.record(Context(db=db, actor=Actor(user=user), client_ip=ctx.client_ip,
                         user_agent=ctx.user_agent, request_id=ctx.request_id),
                 "auth.password_reset", object_type="user", object_id=user.id)
    db.commit()


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
