"""inbox retries with backoff and dead letters; heartbeat; shared send window and duplicate-check memory

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failures', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('not_before', sa.DateTime(timezone=True), nullable=True))
    op.create_table('heartbeat',
    sa.Column('instance', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('beat_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('instance')
    )
    op.create_table('member_send',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('userid', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('member_send', schema=None) as batch_op:
        batch_op.create_index('ix_member_send_who', ['tenant', 'platform', 'userid', 'sent_at'], unique=False)
    op.create_table('sent_body',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('item', sa.BigInteger(), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sent_body', schema=None) as batch_op:
        batch_op.create_index('ix_sent_body_digest', ['tenant', 'digest'], unique=False)
        batch_op.create_index('ix_sent_body_at', ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sent_body', schema=None) as batch_op:
        batch_op.drop_index('ix_sent_body_at')
        batch_op.drop_index('ix_sent_body_digest')
    op.drop_table('sent_body')
    with op.batch_alter_table('member_send', schema=None) as batch_op:
        batch_op.drop_index('ix_member_send_who')
    op.drop_table('member_send')
    op.drop_table('heartbeat')
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.drop_column('not_before')
        batch_op.drop_column('failures')
