"""Database engine and sessions.

SQLite is the embedded default. Every request that touches a child's data also writes an
audit event, so almost every transaction writes: SQLite transactions therefore start with
BEGIN IMMEDIATE, which takes the write lock up front and waits (busy_timeout) instead of
failing when two requests race to upgrade a read lock.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import QueuePool
from sqlmodel import Session, create_engine


def make_engine(url: str, *, pre_ping: bool = False, recycle_seconds: int = 1800) -> Engine:
    """`pre_ping` tests every connection as it leaves the pool (a round trip per checkout);
    off by default: connections are instead replaced after `recycle_seconds`, before a
    server or firewall idle timeout can cut them, and one found dead is dropped with the
    whole pool (SQLAlchemy's disconnect handling), failing only the request that met it."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One connection per process: SQLite has one writer at a time anyway, and waiting
        # for the pool (a queue) is far cheaper than SQLite's sleep-and-retry busy handler
        # when many threads race for the write lock. Other processes still wait on the
        # file lock (busy_timeout), so this assumes nothing about how many processes run.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               poolclass=QueuePool, pool_size=1, max_overflow=0,
                               pool_timeout=120)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=pre_ping,
                         pool_recycle=recycle_seconds)


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
