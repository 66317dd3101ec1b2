"""capture: entries taken back with a reason, and corrections that supersede an entry

Revision ID: d_capture
Revises: 0005
Create Date: 2026-12-02 01:30:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'd_capture'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('voice_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retraction_reason', sa.String(length=2000),
                                      nullable=True))
        batch_op.add_column(sa.Column('supersedes', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('superseded_by', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('superseded_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('correction_reason', sa.String(length=2000),
                                      nullable=True))
        batch_op.create_unique_constraint('uq_voice_entries_supersedes', ['supersedes'])
        batch_op.create_foreign_key('fk_voice_entries_supersedes', 'voice_entries',
                                    ['supersedes'], ['id'])
        batch_op.create_foreign_key('fk_voice_entries_superseded_by', 'voice_entries',
                                    ['superseded_by'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('voice_entries', schema=None) as batch_op:
        batch_op.drop_constraint('fk_voice_entries_superseded_by', type_='foreignkey')
        batch_op.drop_constraint('fk_voice_entries_supersedes', type_='foreignkey')
        batch_op.drop_constraint('uq_voice_entries_supersedes', type_='unique')
        batch_op.drop_column('correction_reason')
        batch_op.drop_column('superseded_at')
        batch_op.drop_column('superseded_by')
        batch_op.drop_column('supersedes')
        batch_op.drop_column('retraction_reason')
