"""competencies: library with L1-L3 anchors, focus per department, self/manager assessments, calibration,
micro-courses and the success-case consent

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('case_consent',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('userid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('allowed', sa.Boolean(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'userid')
    )
    op.create_index(op.f('ix_case_consent_tenant'), 'case_consent', ['tenant'], unique=False)
    op.create_table('competency',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('l1', sa.Text(), nullable=False),
    sa.Column('l2', sa.Text(), nullable=False),
    sa.Column('l3', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'code')
    )
    op.create_index(op.f('ix_competency_tenant'), 'competency', ['tenant'], unique=False)
    op.create_table('competency_agreed',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('calibration_id', sa.Integer(), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('subject_userid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('by_userid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'period', 'subject_userid', 'code')
    )
    op.create_index(op.f('ix_competency_agreed_calibration_id'), 'competency_agreed', ['calibration_id'], unique=False)
    op.create_index(op.f('ix_competency_agreed_tenant'), 'competency_agreed', ['tenant'], unique=False)
    op.create_table('competency_assessment',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('subject_userid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('assessor_userid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('side', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('codes', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'period', 'subject_userid', 'side')
    )
    op.create_index(op.f('ix_competency_assessment_tenant'), 'competency_assessment', ['tenant'], unique=False)
    op.create_table('competency_calibration',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('subject_userid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('manager_userid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_on', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('hr_told_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('held_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'period', 'subject_userid')
    )
    op.create_index(op.f('ix_competency_calibration_tenant'), 'competency_calibration', ['tenant'], unique=False)
    op.create_table('competency_focus',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('department', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('codes', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'department')
    )
    op.create_index(op.f('ix_competency_focus_tenant'), 'competency_focus', ['tenant'], unique=False)
    op.create_table('competency_rating',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('assessment_id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('assessment_id', 'code')
    )
    op.create_index(op.f('ix_competency_rating_assessment_id'), 'competency_rating', ['assessment_id'], unique=False)
    op.create_index(op.f('ix_competency_rating_tenant'), 'competency_rating', ['tenant'], unique=False)
    op.create_table('learning_course',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('competency', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'competency', 'title')
    )
    op.create_index(op.f('ix_learning_course_tenant'), 'learning_course', ['tenant'], unique=False)
    op.create_table('learning_mark',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('userid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('course_id', sa.Integer(), nullable=False),
    sa.Column('mark', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'userid', 'course_id', 'mark')
    )
    op.create_index(op.f('ix_learning_mark_tenant'), 'learning_mark', ['tenant'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_learning_mark_tenant'), table_name='learning_mark')
    op.drop_table('learning_mark')
    op.drop_index(op.f('ix_learning_course_tenant'), table_name='learning_course')
    op.drop_table('learning_course')
    op.drop_index(op.f('ix_competency_rating_tenant'), table_name='competency_rating')
    op.drop_index(op.f('ix_competency_rating_assessment_id'), table_name='competency_rating')
    op.drop_table('competency_rating')
    op.drop_index(op.f('ix_competency_focus_tenant'), table_name='competency_focus')
    op.drop_table('competency_focus')
    op.drop_index(op.f('ix_competency_calibration_tenant'), table_name='competency_calibration')
    op.drop_table('competency_calibration')
    op.drop_index(op.f('ix_competency_assessment_tenant'), table_name='competency_assessment')
    op.drop_table('competency_assessment')
    op.drop_index(op.f('ix_competency_agreed_tenant'), table_name='competency_agreed')
    op.drop_index(op.f('ix_competency_agreed_calibration_id'), table_name='competency_agreed')
    op.drop_table('competency_agreed')
    op.drop_index(op.f('ix_competency_tenant'), table_name='competency')
    op.drop_table('competency')
    op.drop_index(op.f('ix_case_consent_tenant'), table_name='case_consent')
    op.drop_table('case_consent')
