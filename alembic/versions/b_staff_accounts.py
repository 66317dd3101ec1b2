"""staff accounts over a working life: deactivation, capture-token generations, password
reset codes, single sign-on subjects and login attempts

Revision ID: b_staff
Revises: f_audit
Create Date: 2026-12-02 01:40:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'b_staff'
down_revision: Union[str, None] = 'f_audit'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deactivated_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('deactivated_by', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('capture_generation', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('oidc_subject', sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint('uq_users_oidc_subject', ['oidc_subject'])
        batch_op.create_foreign_key('fk_users_deactivated_by', 'users', ['deactivated_by'],
                                    ['id'])
    with op.batch_alter_table('capture_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_issued_by', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('token_generation', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.create_foreign_key('fk_capture_sessions_token_issued_by', 'users',
                                    ['token_issued_by'], ['id'])
    op.create_table('password_resets',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code_hash')
    )
    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_password_resets_user_id'), ['user_id'],
                              unique=False)
    op.create_table('oidc_logins',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('browser_hash', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.String(length=100), nullable=False),
    sa.Column('code_verifier', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('state_hash')
    )
    with op.batch_alter_table('oidc_logins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_logins_expires_at'), ['expires_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('oidc_logins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_logins_expires_at'))
    op.drop_table('oidc_logins')
    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_password_resets_user_id'))
    op.drop_table('password_resets')
    with op.batch_alter_table('capture_sessions', schema=None) as batch_op:
        batch_op.drop_constraint('fk_capture_sessions_token_issued_by', type_='foreignkey')
        batch_op.drop_column('token_generation')
        batch_op.drop_column('token_issued_by')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint('fk_users_deactivated_by', type_='foreignkey')
        batch_op.drop_constraint('uq_users_oidc_subject', type_='unique')
        batch_op.drop_column('oidc_subject')
        batch_op.drop_column('capture_generation')
        batch_op.drop_column('deactivated_by')
        batch_op.drop_column('deactivated_at')
