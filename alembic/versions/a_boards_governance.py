"""board governance: who made or imported a board and from where, copies, archive, import
notes, re-import hashes, and the reasons for safeguarding-mark changes

Revision ID: a_boards
Revises: d_capture
Create Date: 2026-12-02 01:40:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'a_boards'
down_revision: Union[str, None] = 'd_capture'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('boards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin', sa.String(length=16), nullable=False,
                                      server_default='made'))
        batch_op.add_column(sa.Column('source_id', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('copy_of_board_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('copy_of_version', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('archived_by', sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f('ix_boards_source_id'), ['source_id'], unique=False)
        batch_op.create_foreign_key('fk_boards_copy_of_board_id_boards', 'boards',
                                    ['copy_of_board_id'], ['id'])
        batch_op.create_foreign_key('fk_boards_archived_by_users', 'users',
                                    ['archived_by'], ['id'])
    with op.batch_alter_table('boards', schema=None) as batch_op:
        batch_op.alter_column('origin', server_default=None)
    with op.batch_alter_table('board_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notes', sa.JSON(), nullable=False,
                                      server_default='[]'))
        batch_op.add_column(sa.Column('change_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('safeguarding_changes', sa.JSON(), nullable=False,
                                      server_default='[]'))
    with op.batch_alter_table('board_versions', schema=None) as batch_op:
        batch_op.alter_column('notes', server_default=None)
        batch_op.alter_column('safeguarding_changes', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('board_versions', schema=None) as batch_op:
        batch_op.drop_column('safeguarding_changes')
        batch_op.drop_column('change_reason')
        batch_op.drop_column('notes')
    with op.batch_alter_table('boards', schema=None) as batch_op:
        batch_op.drop_constraint('fk_boards_archived_by_users', type_='foreignkey')
        batch_op.drop_constraint('fk_boards_copy_of_board_id_boards', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_boards_source_id'))
        batch_op.drop_column('archived_by')
        batch_op.drop_column('archived_at')
        batch_op.drop_column('copy_of_version')
        batch_op.drop_column('copy_of_board_id')
        batch_op.drop_column('source_id')
        batch_op.drop_column('origin')
