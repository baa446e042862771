"""tenant go-live date and the kind of a leave row

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tenant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('live_from', sa.Date(), nullable=True))
    with op.batch_alter_table('leave', schema=None) as batch_op:
        # Rows written before this revision were all recorded as leave; a skipped week is told
        # apart from now on, so the export can say 跳过 instead of 请假.
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False,
                                      server_default='leave'))


def downgrade() -> None:
    with op.batch_alter_table('leave', schema=None) as batch_op:
        batch_op.drop_column('kind')
    with op.batch_alter_table('tenant', schema=None) as batch_op:
        batch_op.drop_column('live_from')
