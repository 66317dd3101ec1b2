"""Keyset pagination: lists answer {items, next_cursor}; cursors are opaque to clients."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any, Callable, TypeVar

from sqlalchemy import and_, or_
from sqlmodel import Session
from sqlmodel.sql.expression import SelectOfScalar

from app.core.errors import Invalid
from app.models.common import sane_utc

T = TypeVar("T")


def _encode(when: datetime, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{when.isoformat()}|{row_id}".encode()).decode()


def _decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        when, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        parsed = datetime.fromisoformat(when)
        if parsed.tzinfo is None:
            raise ValueError
        return sane_utc(parsed), uuid.UUID(row_id)
    except ValueError:
        raise Invalid("cursor is not one this server gave out; start again without it",
                      field=["query", "cursor"]) from None


def paginate(db: Session, stmt: SelectOfScalar, *, sort_col: Any, id_col: Any, limit: int,
             cursor: str | None, descending: bool = False,
             shape: Callable[[Any], T] = lambda row: row) -> dict[str, Any]:
    """Run `stmt` one page at a time, ordered by (sort_col, id_col)."""
    if cursor:
        when, row_id = _decode(cursor)
        if descending:
            stmt = stmt.where(or_(sort_col < when, and_(sort_col == when, id_col < row_id)))
        else:
            stmt = stmt.where(or_(sort_col > when, and_(sort_col == when, id_col > row_id)))
    order = (sort_col.desc(), id_col.desc()) if descending else (sort_col.asc(), id_col.asc())
    rows = list(db.exec(stmt.order_by(*order).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = _encode(getattr(last, sort_col.key), getattr(last, id_col.key))
    return {"items": [shape(r) for r in rows], "next_cursor": next_cursor}
