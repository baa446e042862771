"""typed statuses: task statuses, edited-field names and feedback kinds stored as stable English values

Tasks stored their status as the Chinese label (待开始 / 进行中 / 阻塞 / 已完成), an edit's history
row named the field by its label (名称, 负责人 …) and feedback its polarity (认可 / 改进) and impact
(客户级 / 团队级 / 流程级) by theirs. All become the values of store.statuses (todo / doing /
blocked / done; title / owner / collaborators / deliverable; praise / improve; customer / team /
process); the labels live in the texts. Downgrade writes the labels back. The columns keep their type.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TASK_STATUS = {'待开始': 'todo', '进行中': 'doing', '阻塞': 'blocked', '已完成': 'done'}
EDITED_FIELD = {'名称': 'title', '负责人': 'owner', '协作人': 'collaborators', '交付物要求': 'deliverable'}
POLARITY = {'认可': 'praise', '改进': 'improve'}
IMPACT = {'客户级': 'customer', '团队级': 'team', '流程级': 'process'}

# (table, column, an extra condition, the mapping old → new)
_CHANGES = (
    ('task', 'status', None, TASK_STATUS),
    ('task_update', 'old_value', ('kind', 'status'), TASK_STATUS),
    ('task_update', 'new_value', ('kind', 'status'), TASK_STATUS),
    ('task_update', 'new_value', ('kind', 'created'), TASK_STATUS),
    ('task_update', 'note', ('kind', 'edit'), EDITED_FIELD),
    ('feedback', 'polarity', None, POLARITY),
    ('feedback', 'impact', None, IMPACT),
)


def _rewrite(forward: bool) -> None:
    for table, column, only, mapping in _CHANGES:
        tbl = sa.table(table, sa.column(column, sa.String), *([sa.column(only[0], sa.String)] if only else []))
        pairs = mapping.items() if forward else ((new, old) for old, new in mapping.items())
        for old, new in pairs:
            cond = tbl.c[column] == old
            if only:
                cond = sa.and_(cond, tbl.c[only[0]] == only[1])
            op.execute(tbl.update().where(cond).values({column: new}))


def upgrade() -> None:
    _rewrite(forward=True)


def downgrade() -> None:
    _rewrite(forward=False)
