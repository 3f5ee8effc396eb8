"""monitoring programme_progress: progress of the action plan's indicators (aggregates)

City totals and district contributions per indicator and period, the share of the target
reached and the verdict (monitoring/programme/progress.py); no person-level rows.

Revision ID: m0003_programme
Revises: m0002_aggregates
Create Date: 2026-12-04 02:30:00
"""
import sqlalchemy as sa
from alembic import op

import learningcity.db


revision = 'm0003_programme'
down_revision = 'm0002_aggregates'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('programme_progress',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('indicator', sa.String(length=64), nullable=False),
    sa.Column('label_zh', sa.String(length=200), nullable=False),
    sa.Column('label_en', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('district', sa.String(length=32), nullable=False),
    sa.Column('value', sa.Double(), nullable=True),
    sa.Column('numerator', sa.Double(), nullable=True),
    sa.Column('denominator', sa.Double(), nullable=True),
    sa.Column('target', sa.Double(), nullable=True),
    sa.Column('direction', sa.String(length=2), nullable=False),
    sa.Column('target_year', sa.Integer(), nullable=True),
    sa.Column('reached', sa.Double(), nullable=True),
    sa.Column('expected', sa.Double(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('simulated', sa.Boolean(), nullable=False),
    sa.Column('computed_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_programme_progress')),
    sa.UniqueConstraint('indicator', 'period', 'district', name='uq_programme_progress_cell')
    )
    with op.batch_alter_table('programme_progress', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_programme_progress_district'), ['district'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('programme_progress', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_programme_progress_district'))

    op.drop_table('programme_progress')
