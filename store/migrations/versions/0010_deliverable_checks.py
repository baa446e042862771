"""deliverable checks of tasks: the light, the values read and where they came from

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('deliverable_check',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('by_userid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('template', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('method', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('problem', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('light', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('override_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('override_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('deliverable_check', schema=None) as batch_op:
        batch_op.create_index('ix_deliverable_check_task', ['tenant', 'task_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deliverable_check', schema=None) as batch_op:
        batch_op.drop_index('ix_deliverable_check_task')
    op.drop_table('deliverable_check')
