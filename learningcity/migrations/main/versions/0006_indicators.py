"""indicator definitions saved by admins (monitoring/indicator_models.py)

Revision ID: 0006_indicators
Revises: 0003_assessment
Create Date: 2026-11-29 05:00:00
"""
import sqlalchemy as sa
from alembic import op

import learningcity.db

revision = '0006_indicators'
down_revision = '0003_assessment'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('indicator_definition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('expression', sa.Text(), nullable=False),
    sa.Column('population', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('target', sa.Double(), nullable=True),
    sa.Column('direction', sa.String(length=2), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('updated_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.CheckConstraint("direction IN ('>', '>=', '<', '<=')",
                       name=op.f('ck_indicator_definition_direction_known')),
    sa.CheckConstraint("kind IN ('person', 'frame')",
                       name=op.f('ck_indicator_definition_kind_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_indicator_definition')),
    sa.UniqueConstraint('code', name=op.f('uq_indicator_definition_code'))
    )


def downgrade() -> None:
    op.drop_table('indicator_definition')
