"""Retention runs: what `childvoice retention --apply` removed, and when."""

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import SQLModel

from app.models.common import id_field, json_field, utc_field


class RetentionRun(SQLModel, table=True):
    __tablename__ = "retention_runs"
    id: uuid.UUID = id_field()
    ran_at: datetime = utc_field(default_now=True)
    applied: bool = False
    # {"kind": {"days": n, "cutoff": iso, "removed": count, "ids": [...first 1000...]}}
    summary: dict[str, Any] = json_field()
