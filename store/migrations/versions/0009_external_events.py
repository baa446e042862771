"""external events (one ingestion contract) and their effects: 留痕, 回款跟踪, 风险响应

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _s(n: int | None = None):  # type: ignore[no-untyped-def]
    return sqlmodel.sql.sqltypes.AutoString(length=n) if n else sqlmodel.sql.sqltypes.AutoString()


def upgrade() -> None:
    op.create_table('external_event',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', _s(40), nullable=False),
    sa.Column('source', _s(64), nullable=False),
    sa.Column('external_id', _s(255), nullable=False),
    sa.Column('type', _s(64), nullable=False),
    sa.Column('person', _s(255), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', _s(16), nullable=False),
    sa.Column('rule', _s(64), nullable=False),
    sa.Column('userid', _s(64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'source', 'external_id'),
    )
    with op.batch_alter_table('external_event', schema=None) as batch_op:
        batch_op.create_index('ix_external_event_state', ['tenant', 'state'], unique=False)
    op.create_table('trace_record',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', _s(40), nullable=False),
    sa.Column('userid', _s(64), nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('day', _s(10), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', _s(64), nullable=False),
    sa.Column('title', _s(), nullable=False),
    sa.Column('link', _s(), nullable=False),
    sa.Column('effect', _s(16), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'event_id', 'userid'),
    )
    with op.batch_alter_table('trace_record', schema=None) as batch_op:
        batch_op.create_index('ix_trace_record_who', ['tenant', 'userid', 'day'], unique=False)
    op.create_table('receivable',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', _s(40), nullable=False),
    sa.Column('ref', _s(255), nullable=False),
    sa.Column('owner', _s(64), nullable=False),
    sa.Column('customer', _s(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('due', sa.Date(), nullable=True),
    sa.Column('goal_code', _s(), nullable=False),
    sa.Column('title', _s(), nullable=False),
    sa.Column('status', _s(16), nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'ref'),
    )
    op.create_table('response_measure',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', _s(40), nullable=False),
    sa.Column('source', _s(64), nullable=False),
    sa.Column('task_ref', _s(255), nullable=False),
    sa.Column('instance', _s(255), nullable=False),
    sa.Column('userid', _s(64), nullable=False),
    sa.Column('rule', _s(64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('working_hours', sa.Float(), nullable=True),
    sa.Column('sla_hours', sa.Float(), nullable=False),
    sa.Column('on_time', sa.Boolean(), nullable=True),
    sa.Column('start_event_id', sa.BigInteger(), nullable=False),
    sa.Column('finish_event_id', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'source', 'task_ref'),
    )
    with op.batch_alter_table('response_measure', schema=None) as batch_op:
        batch_op.create_index('ix_response_measure_who', ['tenant', 'userid'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('response_measure', schema=None) as batch_op:
        batch_op.drop_index('ix_response_measure_who')
    op.drop_table('response_measure')
    op.drop_table('receivable')
    with op.batch_alter_table('trace_record', schema=None) as batch_op:
        batch_op.drop_index('ix_trace_record_who')
    op.drop_table('trace_record')
    with op.batch_alter_table('external_event', schema=None) as batch_op:
        batch_op.drop_index('ix_external_event_state')
    op.drop_table('external_event')
