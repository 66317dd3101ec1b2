"""audit: one hash chain per child with a locked head row each, signed checkpoints, and
leases for background jobs

The single chain written so far becomes the `legacy` chain: its events keep their hashes
(verified the old way, in id order), take their id as their seq, and its head is recorded
so the first checkpoint signs it.

Revision ID: f_audit
Revises: e2_reports
Create Date: 2026-12-02 01:20:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'f_audit'
down_revision: Union[str, None] = 'e2_reports'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
    op.execute("UPDATE audit_events SET chain = 'legacy', seq = id")
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.alter_column('chain', existing_type=sa.String(length=40), nullable=False)
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint('uq_audit_events_chain_seq', ['chain', 'seq'])

    op.create_table('audit_chain_heads',
    sa.Column('chain', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('checkpointed_seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('chain')
    )
    op.execute("INSERT INTO audit_chain_heads (chain, seq, hash, checkpointed_seq) "
               "SELECT 'legacy', id, hash, 0 FROM audit_events "
               "WHERE id = (SELECT max(id) FROM audit_events)")

    op.create_table('audit_checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )

    op.create_table('job_leases',
    sa.Column('job', sa.String(length=40), nullable=False),
    sa.Column('holder', sa.String(length=80), nullable=True),
    sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('job')
    )


def downgrade() -> None:
    # Audit events are never removed: the old shape cannot hold per-child chains.
    if op.get_bind().execute(sa.text(
            "SELECT count(*) FROM audit_events WHERE chain <> 'legacy'")).scalar():
        raise RuntimeError("audit events were written on per-child chains; the schema "
                           "before f_audit cannot hold them, so it is not restored")
    op.drop_table('job_leases')
    op.drop_table('audit_checkpoints')
    op.drop_table('audit_chain_heads')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint('uq_audit_events_chain_seq', type_='unique')
        batch_op.drop_column('seq')
        batch_op.drop_column('chain')
