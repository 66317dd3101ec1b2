"""Test harness: the database is built once per run by the migrations, every test starts
from empty tables, and every test drives the app over HTTP as the tablet would.

Set CHILDVOICE_TEST_DATABASE_URL to run the same suite on PostgreSQL, and
CHILDVOICE_TEST_MEDIA_STORE=s3 to keep media in an S3 bucket served by a real S3 API server
(moto, started here on loopback) instead of the local disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import SQLModel

from app.core.clock import clock
from app.core.config import Settings
from app.core.db import make_engine
from app.core.migrations import upgrade_to_head
from app.main import create_app
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, MotoServer
from tests.support import World

TEST_MEDIA_STORE = os.environ.get("CHILDVOICE_TEST_MEDIA_STORE", "local")
assert TEST_MEDIA_STORE in ("local", "s3"), "CHILDVOICE_TEST_MEDIA_STORE is local or s3"


def is_postgres_run() -> bool:
    return (os.environ.get("CHILDVOICE_TEST_DATABASE_URL") or "").startswith("postgresql")


# The restore test dumps and restores a PostgreSQL database with pg_dump/pg_restore: it is
# not a test of anything on SQLite, so it is collected only on PostgreSQL runs (the
# PostgreSQL leg of .ci/run), rather than skipped.
collect_ignore = [] if is_postgres_run() else ["test_restore_postgres.py"]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


def media_store_settings(request: pytest.FixtureRequest) -> dict:
    """The settings of the store the run keeps media in (a fresh bucket for S3)."""
    if TEST_MEDIA_STORE != "s3":
        return {"media_store": "local"}
    server = request.getfixturevalue("s3_server")
    return {"media_store": "s3", "s3_bucket": server.new_bucket(), "s3_prefix": "cv/",
            "s3_endpoint_url": server.url, "s3_region": REGION,
            "s3_access_key_id": ACCESS_KEY, "s3_secret_access_key": SECRET_KEY}


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Settings:
    base = tmp_path_factory.mktemp("childvoice")
    url = os.environ.get("CHILDVOICE_TEST_DATABASE_URL") or f"sqlite:///{base / 'test.db'}"
    return Settings(data_dir=base / "data", media_root=base / "media", database_url=url,
                    secret_key="test-only-secret-key-not-for-production-use-000000",
                    # Cheap hashing: the tests sign in hundreds of times.
                    password_time_cost=1, password_memory_kib=8, password_parallelism=1,
                    # Tests drive the alert outbox themselves (services.background.run_once).
                    outbox_worker_enabled=False,
                    **media_store_settings(request),
                    _env_file=None)


@pytest.fixture(scope="session")
def migrated(settings: Settings) -> str:
    engine = make_engine(settings.resolved_database_url)
    with engine.begin() as connection:
        upgrade_to_head(connection)
    engine.dispose()
    return settings.resolved_database_url


@pytest.fixture(scope="session")
def app(settings: Settings, migrated: str):  # noqa: ANN201
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


def _empty_all_tables(engine) -> None:  # noqa: ANN001
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(autouse=True)
def _isolated(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    clock.set(None)
    if "app" in request.fixturenames:
        _empty_all_tables(request.getfixturevalue("app").state.engine)


@pytest.fixture
def client(app) -> TestClient:  # noqa: ANN001
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def world(client: TestClient, app) -> World:  # noqa: ANN001
    return World(client, app)
