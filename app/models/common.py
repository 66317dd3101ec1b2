"""Column types and schema helpers shared by every aggregate."""

import math
import uuid
from datetime import date, datetime, timezone
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field as PydField
from sqlalchemy import JSON, DateTime
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field

from app.core.clock import utcnow


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC in, timezone-aware UTC out, on SQLite (which has no zones) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a timezone")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# --- bounds every input shares (what both SQLite and PostgreSQL can hold) -------------

# PostgreSQL's INTEGER and BIGINT; SQLite holds both.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

# A whole number that fits an INTEGER column (versions, counts, ids of receipts).
DbInt = Annotated[int, PydField(ge=0, le=INT32_MAX)]
# A version number: 1, 2, … as the server gave it out.
Version = Annotated[int, PydField(ge=1, le=INT32_MAX)]

NUL_MESSAGE = "must not contain a NUL character (\\u0000)"


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


# Text as both databases store it: PostgreSQL refuses NUL in text. Every string a client
# sends is this type (the pattern tells the OpenAPI reader too).
SafeText = Annotated[str, AfterValidator(_no_nul),
                     PydField(json_schema_extra={"pattern": "^[^\\u0000]*$"})]


def check_free_json(value: Any, where: str = "value") -> None:
    """Free-form JSON a model keeps as sent (Open Board Format `ext_*` fields): no NUL in
    any string and no infinite or NaN number, so both databases can store it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError(f"{where} {NUL_MESSAGE}")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"{where} must be a finite number")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


# Times a client may send: after the service's earliest records could be and well before
# any clock overflows (a year 9999 time with an offset does not fit in UTC).
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)


def sane_utc(value: datetime) -> datetime:
    try:
        utc = value.astimezone(timezone.utc)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError("must be a time between 2000-01-01 and 2099-12-31 (UTC)")
    return utc


# A client's time, which must carry its offset and be sane; kept and answered in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(sane_utc)]


def sane_date(value: date) -> date:
    if not date(1900, 1, 1) <= value < date(2100, 1, 1):
        raise ValueError("must be a date between 1900-01-01 and 2099-12-31")
    return value


def id_field() -> Any:
    return Field(default_factory=uuid.uuid4, primary_key=True)


def utc_field(*, nullable: bool = False, index: bool = False, default_now: bool = False) -> Any:
    if default_now:
        return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=nullable, index=index)
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def json_field(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_type=JSON, nullable=False)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """Every list answers this shape; pass `next_cursor` back as `cursor` for the next page."""

    items: list[T]
    next_cursor: str | None = None


class ApiModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
