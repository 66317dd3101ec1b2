"""Database engine and sessions.

SQLite is the embedded default. Every request that touches a child's data also writes an
audit event, so almost every transaction writes: SQLite transactions therefore start with
BEGIN IMMEDIATE, which takes the write lock up front and waits (busy_timeout) instead of
failing when two requests race to upgrade a read lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import QueuePool
from sqlmodel import Session, create_engine

from app.storage.base import private_dir, private_file

if TYPE_CHECKING:
    from app.core.config import Settings


def make_engine(url: str, settings: "Settings | None" = None) -> Engine:
    """The engine for `url`; PostgreSQL's pool and timeouts come from `settings` (the
    defaults when none are given, as for one-off commands)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            # Owner-only, made before SQLite opens it: SQLite gives its -wal and -shm files
            # the database file's own permissions.
            database = Path(parsed.database)
            private_file(private_dir(database.parent) / database.name)
        # One connection per process: SQLite has one writer at a time anyway, and waiting
        # for the pool (a queue) is far cheaper than SQLite's sleep-and-retry busy handler
        # when many threads race for the write lock. Other processes still wait on the
        # file lock (busy_timeout), so this assumes nothing about how many processes run.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               poolclass=QueuePool, pool_size=1, max_overflow=0,
                               pool_timeout=120, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    if settings is None:
        from app.core.config import Settings
        settings = Settings(_env_file=None)
    options = []
    if settings.db_statement_timeout_ms:
        options.append(f"-c statement_timeout={settings.db_statement_timeout_ms}")
    if settings.db_lock_timeout_ms:
        options.append(f"-c lock_timeout={settings.db_lock_timeout_ms}")
    # hide_parameters: a database error never carries the values it was given (they may be
    # a child's words) into an exception message or a log.
    return create_engine(url, pool_size=settings.db_pool_size,
                         max_overflow=settings.db_max_overflow,
                         pool_timeout=settings.db_pool_timeout_seconds,
                         pool_recycle=settings.db_pool_recycle_seconds,
                         pool_pre_ping=settings.db_pool_pre_ping, hide_parameters=True,
                         connect_args={"options": " ".join(options)} if options else {})


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def new_session(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)
