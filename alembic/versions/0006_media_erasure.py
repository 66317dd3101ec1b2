"""media erasure: a media row becomes a tombstone when its files are erased

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-26 07:05:59.476895
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0006'
down_revision: Union[str, None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('erased_by', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('erasure_cause', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('erasure_reason', sa.String(length=2000), nullable=True))
        batch_op.create_foreign_key('fk_media_erased_by_users', 'users', ['erased_by'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.drop_constraint('fk_media_erased_by_users', type_='foreignkey')
        batch_op.drop_column('erasure_reason')
        batch_op.drop_column('erasure_cause')
        batch_op.drop_column('erased_by')
        batch_op.drop_column('erased_at')

