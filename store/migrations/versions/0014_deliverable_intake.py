"""deliverable intake: images and files sent in chat on their way to a check; the reason of a PMO's override

Revision ID: 0014
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('deliverable_intake',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('userid', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('file_type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('event', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('check_id', sa.Integer(), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('deliverable_intake', schema=None) as batch_op:
        batch_op.create_index('ix_deliverable_intake_status', ['status', 'claimed_until'], unique=False)
        batch_op.create_index('ix_deliverable_intake_person', ['tenant', 'userid', 'created_at'], unique=False)
    with op.batch_alter_table('deliverable_check', schema=None) as batch_op:
        batch_op.add_column(sa.Column('override_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                                      server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('deliverable_check', schema=None) as batch_op:
        batch_op.drop_column('override_reason')
    with op.batch_alter_table('deliverable_intake', schema=None) as batch_op:
        batch_op.drop_index('ix_deliverable_intake_person')
        batch_op.drop_index('ix_deliverable_intake_status')
    op.drop_table('deliverable_intake')
