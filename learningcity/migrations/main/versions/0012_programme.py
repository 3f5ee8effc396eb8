"""the programme wing: indicator system, periods, reports, values, evidence; department role

The action plan's indicators (areas, indicators with baseline and target, data source,
responsible units, GNLC tags), the city departments that report, reporting periods, and
one report per period and unit (a district or a department) with its values and
evidence files (monitoring/programme/models.py). ``staff_user`` gains
``department_code`` and the ``department`` role (an account of it names its
department). The built-in indicators are seeded by ``monitoring.programme.catalogue
.ensure_builtin`` (idempotent; the app does it at start-up), not here. Downgrading
drops the tables and the column (department accounts must be removed first).

Revision ID: 0012_programme
Revises: 0011_calibration_latent
Create Date: 2026-12-04 02:30:00
"""
import sqlalchemy as sa
from alembic import op

import learningcity.db


revision = '0012_programme'
down_revision = '0011_calibration_latent'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('programme_area',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_programme_area'))
    )
    op.create_table('programme_department',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_programme_department'))
    )
    op.create_table('programme_period',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_programme_period')),
    sa.UniqueConstraint('code', name=op.f('uq_programme_period_code'))
    )
    op.create_table('programme_indicator',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('area_code', sa.String(length=32), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=False),
    sa.Column('direction', sa.String(length=2), nullable=False),
    sa.Column('baseline_year', sa.Integer(), nullable=True),
    sa.Column('baseline_value', sa.Double(), nullable=True),
    sa.Column('target', sa.Double(), nullable=True),
    sa.Column('target_year', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_code', sa.String(length=64), nullable=False),
    sa.Column('frequency', sa.String(length=16), nullable=False),
    sa.Column('responsible', sa.String(length=500), nullable=False),
    sa.Column('gnlc', sa.String(length=200), nullable=False),
    sa.Column('change_factor', sa.Double(), nullable=True),
    sa.Column('cumulative', sa.Boolean(), nullable=False),
    sa.Column('builtin', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.CheckConstraint("direction IN ('>', '>=', '<', '<=')", name=op.f('ck_programme_indicator_direction_known')),
    sa.CheckConstraint("kind IN ('count', 'share', 'ratio')", name=op.f('ck_programme_indicator_kind_known')),
    sa.CheckConstraint("source IN ('district', 'department', 'survey', 'frame', 'organisations')", name=op.f('ck_programme_indicator_source_known')),
    sa.ForeignKeyConstraint(['area_code'], ['programme_area.code'], name=op.f('fk_programme_indicator_area_code_programme_area'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_programme_indicator'))
    )
    with op.batch_alter_table('programme_indicator', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_programme_indicator_area_code'), ['area_code'], unique=False)

    op.create_table('programme_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('unit_kind', sa.String(length=16), nullable=False),
    sa.Column('unit_code', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('review_comment', sa.Text(), nullable=False),
    sa.Column('simulated', sa.Boolean(), nullable=False),
    sa.Column('updated_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('submitted_at', learningcity.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('accepted_at', learningcity.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('draft', 'submitted', 'returned', 'resubmitted', 'accepted')", name=op.f('ck_programme_report_state_known')),
    sa.CheckConstraint("unit_kind IN ('district', 'department')", name=op.f('ck_programme_report_unit_kind_known')),
    sa.ForeignKeyConstraint(['period_id'], ['programme_period.id'], name=op.f('fk_programme_report_period_id_programme_period'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_programme_report')),
    sa.UniqueConstraint('period_id', 'unit_kind', 'unit_code', name='uq_programme_report_unit')
    )
    with op.batch_alter_table('programme_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_programme_report_period_id'), ['period_id'], unique=False)

    op.create_table('programme_evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('uploaded_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['programme_report.id'], name=op.f('fk_programme_evidence_report_id_programme_report'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_programme_evidence'))
    )
    with op.batch_alter_table('programme_evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_programme_evidence_report_id'), ['report_id'], unique=False)

    op.create_table('programme_value',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('indicator_code', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Double(), nullable=True),
    sa.Column('denominator', sa.Double(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['indicator_code'], ['programme_indicator.code'], name=op.f('fk_programme_value_indicator_code_programme_indicator'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['report_id'], ['programme_report.id'], name=op.f('fk_programme_value_report_id_programme_report'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_programme_value')),
    sa.UniqueConstraint('report_id', 'indicator_code', name='uq_programme_value_indicator')
    )
    with op.batch_alter_table('programme_value', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_programme_value_report_id'), ['report_id'], unique=False)

    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('department_code', sa.String(length=32), nullable=True))
        batch_op.drop_constraint(op.f('ck_staff_user_role_known'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_staff_user_role_known'),
            "role IN ('admin', 'researcher', 'monitor', 'district', 'department')")
        batch_op.create_check_constraint(
            op.f('ck_staff_user_department_role_has_department'),
            "role <> 'department' OR department_code IS NOT NULL")



def downgrade() -> None:
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_staff_user_department_role_has_department'),
                                 type_='check')
        batch_op.drop_constraint(op.f('ck_staff_user_role_known'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_staff_user_role_known'),
            "role IN ('admin', 'researcher', 'monitor', 'district')")
        batch_op.drop_column('department_code')

    with op.batch_alter_table('programme_value', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_programme_value_report_id'))

    op.drop_table('programme_value')
    with op.batch_alter_table('programme_evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_programme_evidence_report_id'))

    op.drop_table('programme_evidence')
    with op.batch_alter_table('programme_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_programme_report_period_id'))

    op.drop_table('programme_report')
    with op.batch_alter_table('programme_indicator', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_programme_indicator_area_code'))

    op.drop_table('programme_indicator')
    op.drop_table('programme_period')
    op.drop_table('programme_department')
    op.drop_table('programme_area')
