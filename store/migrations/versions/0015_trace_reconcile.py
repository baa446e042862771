"""回款跟踪 payments: the contract number people name a tracking row by, and how much has come in

Revision ID: 0015
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('receivable', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contract_no', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('paid_cents', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_receivable_contract', ['tenant', 'contract_no'], unique=False)
    # A row marked paid before payments were counted had all of its amount in.
    op.execute("UPDATE receivable SET paid_cents = amount_cents WHERE status = 'paid'")


def downgrade() -> None:
    with op.batch_alter_table('receivable', schema=None) as batch_op:
        batch_op.drop_index('ix_receivable_contract')
        batch_op.drop_column('paid_at')
        batch_op.drop_column('paid_cents')
        batch_op.drop_column('contract_no')
