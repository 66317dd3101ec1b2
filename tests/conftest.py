"""Test harness: the database is built once per run by the migrations, every test starts
from empty tables, and every test drives the app over HTTP as the tablet would.

Set CHILDVOICE_TEST_DATABASE_URL to run the same suite on PostgreSQL.
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
from tests.support import World


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    base = tmp_path_factory.mktemp("childvoice")
    url = os.environ.get("CHILDVOICE_TEST_DATABASE_URL") or f"sqlite:///{base / 'test.db'}"
    return Settings(data_dir=base / "data", media_root=base / "media", database_url=url,
                    secret_key="test-only-secret-key-not-for-production-use-000000",
                    # Cheap hashing: the tests sign in hundreds of times.
                    password_time_cost=1, password_memory_kib=8, password_parallelism=1,
                    # Tests drive the background work themselves (services.background).
                    background="worker", retention_interval_hours=0,
                    audit_signing_key="dGVzdC1vbmx5LWF1ZGl0LWtleS1ub3QtZm9yLXVzZSE=",
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
