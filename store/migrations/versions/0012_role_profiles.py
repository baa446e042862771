"""role capability profiles (岗位画像) with their evidence, and the JD text they are compared with

Revision ID: 0012
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_STR = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table('role_profile',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', _STR(length=40), nullable=False),
    sa.Column('department', _STR(), nullable=False),
    sa.Column('role', _STR(), nullable=False),
    sa.Column('state', _STR(), nullable=False),
    sa.Column('first_week', _STR(), nullable=False),
    sa.Column('last_week', _STR(), nullable=False),
    sa.Column('qualified', sa.Integer(), nullable=False),
    sa.Column('top', sa.Integer(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('markdown', sa.Text(), nullable=False),
    sa.Column('built_by', _STR(), nullable=False),
    sa.Column('built_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', _STR(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_note', _STR(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('role_profile', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_profile_tenant'), ['tenant'], unique=False)
    op.create_table('role_jd',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', _STR(length=40), nullable=False),
    sa.Column('department', _STR(), nullable=False),
    sa.Column('role', _STR(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'department', 'role')
    )
    with op.batch_alter_table('role_jd', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_jd_tenant'), ['tenant'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('role_jd', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_jd_tenant'))
    op.drop_table('role_jd')
    with op.batch_alter_table('role_profile', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_profile_tenant'))
    op.drop_table('role_profile')
