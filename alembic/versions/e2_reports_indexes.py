"""reports: a visit's entries in order, and a child's visits newest first

Revision ID: e2_reports
Revises: a_boards
Create Date: 2026-12-02 01:30:00
"""
from typing import Sequence, Union

from alembic import op


revision: str = 'e2_reports'
down_revision: Union[str, None] = 'a_boards'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # The handover and the timeline read a few visits of a child, newest first, and the
    # first entries of each: both stay index range scans however long the record grows.
    op.create_index('ix_voice_entries_session_captured', 'voice_entries',
                    ['session_id', 'captured_at', 'id'], unique=False)
    op.create_index('ix_capture_sessions_child_started', 'capture_sessions',
                    ['child_id', 'started_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_capture_sessions_child_started', table_name='capture_sessions')
    op.drop_index('ix_voice_entries_session_captured', table_name='voice_entries')
