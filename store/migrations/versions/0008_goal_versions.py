"""goal changes with approval and effective-dated goal versions

The adjustment log gains the cause's event day, the decision and the effective day; rows
already there were written by goal imports, which needed no approval, so they are approved
as of the day they were written. The import used to log a goal's initial creation as an
adjustment: that first `new` row of each goal is removed. Every goal gets one version that
holds since it was set up.

Revision ID: 0008
Revises: 0007
"""
from datetime import timezone
from zoneinfo import ZoneInfo

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_STR = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table('goal', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due', sa.Date(), nullable=True))
    with op.batch_alter_table('goaladjustment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('status', _STR(), server_default='approved', nullable=False))
        batch_op.add_column(sa.Column('approver_userid', _STR(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('decided_by', _STR(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('decision_note', _STR(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('effective_from', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('detail', sa.JSON(), server_default='{}', nullable=False))
    op.create_table('goalversion',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', _STR(length=40), nullable=False),
    sa.Column('goal_code', _STR(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('title', _STR(), nullable=False),
    sa.Column('parent_code', _STR(), nullable=True),
    sa.Column('department', _STR(), nullable=False),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.Column('due', sa.Date(), nullable=True),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('status', _STR(), nullable=False),
    sa.Column('change_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('goalversion', schema=None) as batch_op:
        batch_op.create_index('ix_goalversion_goal', ['tenant', 'goal_code', 'valid_from'], unique=False)
    _migrate_data()


def _migrate_data() -> None:
    bind = op.get_bind()
    zones = {key: ZoneInfo(tz or 'Asia/Shanghai') for key, tz in bind.execute(sa.text('SELECT key, timezone FROM tenant'))}
    adj = sa.table('goaladjustment', sa.column('id', sa.Integer), sa.column('tenant', sa.String),
                   sa.column('goal_code', sa.String), sa.column('by_userid', sa.String), sa.column('at', sa.DateTime),
                   sa.column('field_name', sa.String), sa.column('decided_by', sa.String),
                   sa.column('decided_at', sa.DateTime(timezone=True)), sa.column('effective_from', sa.Date))
    first: dict[tuple[str, str], tuple[int, str]] = {}
    for row in bind.execute(sa.select(adj.c.id, adj.c.tenant, adj.c.goal_code, adj.c.by_userid, adj.c.at,
                                      adj.c.field_name).order_by(adj.c.id)).all():
        key = (row.tenant, row.goal_code)
        if key not in first:
            first[key] = (row.id, row.field_name)
        at = row.at if row.at.tzinfo else row.at.replace(tzinfo=timezone.utc)
        day = at.astimezone(zones.get(row.tenant, ZoneInfo('Asia/Shanghai'))).date()
        bind.execute(adj.update().where(adj.c.id == row.id).values(
            decided_by=row.by_userid, decided_at=at, effective_from=day))
    initial = [i for i, name in first.values() if name == 'new']
    if initial:
        bind.execute(adj.delete().where(adj.c.id.in_(initial)))
    bind.execute(sa.text(
        'INSERT INTO goalversion (tenant, goal_code, valid_from, valid_to, title, parent_code, department, weight, '
        'due, level, status, change_id) '
        'SELECT tenant, code, NULL, NULL, title, parent_code, department, weight, NULL, level, status, NULL FROM goal'))


def downgrade() -> None:
    with op.batch_alter_table('goalversion', schema=None) as batch_op:
        batch_op.drop_index('ix_goalversion_goal')
    op.drop_table('goalversion')
    with op.batch_alter_table('goaladjustment', schema=None) as batch_op:
        for name in ('detail', 'effective_from', 'decision_note', 'decided_at', 'decided_by', 'approver_userid',
                     'status', 'event_date'):
            batch_op.drop_column(name)
    with op.batch_alter_table('goal', schema=None) as batch_op:
        batch_op.drop_column('due')
