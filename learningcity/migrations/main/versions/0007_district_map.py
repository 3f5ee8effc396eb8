"""district boundaries for the district map (monitoring/results/districtmap.py)

Revision ID: 0007_district_map
Revises: 0003_assessment
Create Date: 2026-12-03 09:00:00
"""
import sqlalchemy as sa
from alembic import op

import learningcity.db

revision = '0007_district_map'
down_revision = '0003_assessment'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('district_boundaries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('geojson', sa.Text(), nullable=False),
    sa.Column('updated_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_district_boundaries'))
    )


def downgrade() -> None:
    op.drop_table('district_boundaries')
