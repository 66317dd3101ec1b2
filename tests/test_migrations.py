"""The schema comes only from the migrations: the suite's database is built by
`alembic upgrade head`, and the models may not drift from it."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlmodel import SQLModel

from app.core.migrations import alembic_config


def test_database_is_at_the_latest_migration(app) -> None:  # noqa: ANN001
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with app.state.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head
        assert set(SQLModel.metadata.tables) <= set(inspect(conn).get_table_names())


def test_models_match_the_migrations(app) -> None:  # noqa: ANN001
    with app.state.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], f"models differ from the migrations; add a migration: {diff}"
