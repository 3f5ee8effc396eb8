"""monitoring aggregates: monitoring_run and monitoring_aggregate (monitoring/warehouse.py)

Revision ID: m0002_aggregates
Revises: m0001_base
Create Date: 2026-11-29 05:00:00
"""
import sqlalchemy as sa
from alembic import op

import learningcity.db

revision = 'm0002_aggregates'
down_revision = 'm0001_base'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('monitoring_aggregate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign', sa.String(length=64), nullable=False),
    sa.Column('measure', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('label_zh', sa.String(length=200), nullable=False),
    sa.Column('label_en', sa.String(length=200), nullable=False),
    sa.Column('dimension', sa.String(length=32), nullable=False),
    sa.Column('group_value', sa.String(length=120), nullable=False),
    sa.Column('district', sa.String(length=32), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('estimate', sa.Double(), nullable=True),
    sa.Column('se', sa.Double(), nullable=True),
    sa.Column('ci_low', sa.Double(), nullable=True),
    sa.Column('ci_high', sa.Double(), nullable=True),
    sa.Column('deff', sa.Double(), nullable=True),
    sa.Column('suppressed', sa.Boolean(), nullable=False),
    sa.Column('suppression_reason', sa.String(length=16), nullable=True),
    sa.Column('method', sa.String(length=64), nullable=False),
    sa.Column('target', sa.Double(), nullable=True),
    sa.Column('direction', sa.String(length=2), nullable=True),
    sa.Column('judgement', sa.String(length=16), nullable=True),
    sa.Column('computed_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('suppressed = false OR (estimate IS NULL AND se IS NULL AND ci_low IS NULL '
                       'AND ci_high IS NULL)',
                       name=op.f('ck_monitoring_aggregate_suppressed_hidden')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitoring_aggregate')),
    sa.UniqueConstraint('campaign', 'measure', 'dimension', 'group_value', 'district',
                        name='uq_monitoring_aggregate_cell')
    )
    op.create_index(op.f('ix_monitoring_aggregate_district'), 'monitoring_aggregate',
                    ['district'], unique=False)
    op.create_index('ix_monitoring_aggregate_lookup', 'monitoring_aggregate',
                    ['campaign', 'measure', 'dimension'], unique=False)
    op.create_table('monitoring_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign', sa.String(length=64), nullable=False),
    sa.Column('campaign_name', sa.String(length=200), nullable=False),
    sa.Column('district', sa.String(length=32), nullable=False),
    sa.Column('closes_at', learningcity.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('computed_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('computed_by', sa.String(length=64), nullable=False),
    sa.Column('n_respondents', sa.Integer(), nullable=False),
    sa.Column('n_rows', sa.Integer(), nullable=False),
    sa.Column('n_suppressed', sa.Integer(), nullable=False),
    sa.Column('min_n', sa.Integer(), nullable=False),
    sa.Column('max_rse', sa.Double(), nullable=True),
    sa.Column('design', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitoring_run')),
    sa.UniqueConstraint('campaign', name=op.f('uq_monitoring_run_campaign'))
    )
    op.create_index(op.f('ix_monitoring_run_district'), 'monitoring_run', ['district'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_monitoring_run_district'), table_name='monitoring_run')
    op.drop_table('monitoring_run')
    op.drop_index('ix_monitoring_aggregate_lookup', table_name='monitoring_aggregate')
    op.drop_index(op.f('ix_monitoring_aggregate_district'),
                  table_name='monitoring_aggregate')
    op.drop_table('monitoring_aggregate')
