"""The models and the migrations describe the same schema: a model that drifts from its
migrations (a column added without a migration, say) fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import app.models  # noqa: F401 - every table on SQLModel.metadata


def test_models_match_the_migrated_database(app) -> None:  # noqa: ANN001
    with app.state.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_the_media_migration_is_at_head(app) -> None:  # noqa: ANN001
    with app.state.engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    assert "0002" in heads or heads  # at 0002 or a later revision built on it
