"""contributions with their verifier, and the reward amounts managers entered for payroll

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('contribution',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('contributor_userid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('verifier_userid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('department', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('amount', sa.Float(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('links', sa.JSON(), nullable=False),
    sa.Column('month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decline_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('contribution', schema=None) as batch_op:
        batch_op.create_index('ix_contribution_month', ['tenant', 'month', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_contribution_tenant'), ['tenant'], unique=False)
    op.create_table('contribution_reward',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('userid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('by_userid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'userid', 'month')
    )
    with op.batch_alter_table('contribution_reward', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contribution_reward_tenant'), ['tenant'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('contribution_reward', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contribution_reward_tenant'))
    op.drop_table('contribution_reward')
    with op.batch_alter_table('contribution', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contribution_tenant'))
        batch_op.drop_index('ix_contribution_month')
    op.drop_table('contribution')
