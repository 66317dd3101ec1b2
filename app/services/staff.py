"""Staff accounts and teams: sign-in, users, teams, the unattended bootstrap admin."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from app.core.context import Actor, Context
from app.core.errors import Conflict, Forbidden, Invalid, Unauthorized
from app.core.pagination import paginate
from app.core.security import PasswordHashing, StaffTokens
from app.models.staff import Role, Team, TeamCreate, TeamOut, User, UserCreate, UserOut

WRONG_CREDENTIALS = "The email or password is not right."


def sign_in(db: Session, hashing: PasswordHashing, tokens: StaffTokens, email: str,
            password: str) -> dict:
    user = db.exec(select(User).where(User.email == email.strip().lower())).first()
    # Verify even when there is no such user, so the answer and its timing are the same.
    ok = hashing.verify(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        raise Unauthorized(WRONG_CREDENTIALS, slug="wrong-credentials",
                           title="Wrong email or password")
    return {"access_token": tokens.issue(user.id), "token_type": "bearer",
            "expires_in": int(tokens.lifetime.total_seconds())}


def staff_from_token(db: Session, tokens: StaffTokens, token: str) -> User:
    claims = tokens.read(token)
    user = db.get(User, claims.user_id) if claims else None
    if user is None or not user.is_active:
        raise Unauthorized("The access token is invalid or has expired; sign in again.",
                           slug="invalid-token")
    return user


def _require_admin(actor: Actor) -> User:
    if actor.user is None or actor.user.role != Role.admin:
        raise Forbidden("Only an admin can manage users and teams.")
    return actor.user


def add_user(db: Session, hashing: PasswordHashing, email: str, full_name: str, role: Role,
             team_id: uuid.UUID | None, password: str) -> User:
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


def create_user(ctx: Context, hashing: PasswordHashing, data: UserCreate) -> UserOut:
    _require_admin(ctx.actor)
    user = add_user(ctx.db, hashing, data.email, data.full_name, data.role, data.team_id,
                    data.password)
    ctx.db.commit()
    return UserOut.model_validate(user)


def list_users(ctx: Context, limit: int, cursor: str | None) -> dict:
    _require_admin(ctx.actor)
    return paginate(ctx.db, select(User), sort_col=User.created_at, id_col=User.id,
                    limit=limit, cursor=cursor, shape=UserOut.model_validate)


def create_team(ctx: Context, data: TeamCreate) -> TeamOut:
    _require_admin(ctx.actor)
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
    """Create the first admin for an unattended install; only when there are no users."""
    if not email or not password:
        return False
    if db.exec(select(func.count()).select_from(User)).one() > 0:
        return False
    add_user(db, hashing, email, "Administrator", Role.admin, None, password)
    db.commit()
    return True
