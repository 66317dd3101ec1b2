"""Teams and staff users."""

import uuid
from datetime import datetime
from enum import Enum

from pydantic import ConfigDict, EmailStr, Field as PydField
from sqlmodel import Field, SQLModel

from app.models.common import ApiModel, id_field, utc_field


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
    password_hash: str = Field(max_length=255)
    is_active: bool = Field(default=True)
    created_at: datetime = utc_field(default_now=True)


class TeamCreate(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Disabled Children's Team North"}]})
    name: str = PydField(min_length=1, max_length=200)


class TeamOut(ApiModel):
    id: uuid.UUID
    name: str
    created_at: datetime


class UserCreate(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "email": "sam.worker@example.org", "full_name": "Sam Worker", "role": "social_worker",
        "team_id": "6f1c2d4e-0000-4000-8000-000000000001", "password": "a long passphrase"}]})
    email: EmailStr = PydField(max_length=320)
    full_name: str = PydField(min_length=1, max_length=200)
    role: Role
    team_id: uuid.UUID | None = None
    password: str = PydField(min_length=12, max_length=256,
                             description="At least 12 characters.")


class UserOut(ApiModel):
    id: uuid.UUID
    email: str
    full_name: str
    role: Role
    team_id: uuid.UUID | None
    is_active: bool
    created_at: datetime


class TokenOut(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "access_token": "eyJhbGciOi...", "token_type": "bearer", "expires_in": 3600}]})
    access_token: str
    token_type: str = "bearer"
    expires_in: int
