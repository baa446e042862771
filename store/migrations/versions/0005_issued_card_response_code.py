"""issued cards keep WeCom's response code: the code message/send returned and the task_id of that copy

A card closed without a press (the old witness's invitation) is updated with the code WeCom
returned when it was sent. It used to be found by scanning the recipient's outbox rows for
`|rc:` in platform_ref; it now lives on the card it belongs to. The upgrade copies the codes
already on outbox rows to their cards (a code lasts 72 hours, so only recent ones matter);
the downgrade drops the columns (the outbox rows still carry what they carried).

Revision ID: 0005
Revises: 0004
"""
import json

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('issued_card', schema=None) as batch_op:
        batch_op.add_column(sa.Column('response_code', sqlmodel.sql.sqltypes.AutoString(), server_default='',
                                      nullable=False))
        batch_op.add_column(sa.Column('response_task_id', sqlmodel.sql.sqltypes.AutoString(), server_default='',
                                      nullable=False))
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT tenant, userid, payload, platform_ref FROM outbox "
        "WHERE platform = 'wecom' AND status = 'sent' AND platform_ref LIKE '%|rc:%' ORDER BY id")).all()
    for tenant, userid, payload, ref in rows:  # in send order: a later copy's code wins
        card = (json.loads(payload) if isinstance(payload, str) else payload or {}).get('card') or {}
        code, _, task_id = ref.split('|rc:', 1)[1].partition('|task:')
        if card.get('id') and code:
            bind.execute(sa.text(
                "UPDATE issued_card SET response_code = :code, response_task_id = :task "
                "WHERE tenant = :tenant AND id = :card AND userid = :userid"),
                {'code': code, 'task': task_id, 'tenant': tenant, 'card': card['id'], 'userid': userid})


def downgrade() -> None:
    with op.batch_alter_table('issued_card', schema=None) as batch_op:
        batch_op.drop_column('response_task_id')
        batch_op.drop_column('response_code')
