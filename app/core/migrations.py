"""Running Alembic from the app: the only way the schema changes."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

# Two deploy steps (or two `serve`s) migrating at once take turns: the second waits for
# the first's transaction, then finds the schema at head and does nothing. PostgreSQL runs
# the whole upgrade in that one transaction (DDL is transactional there); SQLite's
# BEGIN IMMEDIATE (core/db.py) already makes the second writer wait.
_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('childvoice:migrate'))"

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["configure_logging"] = False
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_to_head(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text(_MIGRATION_LOCK))
    command.upgrade(alembic_config(connection), "head")
