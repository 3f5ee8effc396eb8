"""throttle counters kept in the database (learningcity.throttle)

Revision ID: 0008_throttle
Revises: 0007_district_map
Create Date: 2026-12-03 13:45:00
"""
import sqlalchemy as sa
from alembic import op

import learningcity.db

revision = '0008_throttle'
down_revision = '0007_district_map'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('throttle_counter',
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key', name=op.f('pk_throttle_counter'))
    )
    with op.batch_alter_table('throttle_counter', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_throttle_counter_last_at'), ['last_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('throttle_counter', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_throttle_counter_last_at'))
    op.drop_table('throttle_counter')
