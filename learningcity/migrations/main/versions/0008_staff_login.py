"""staff_login: one row per staff login, revoked on logout, password or role change

Revision ID: 0008_staff_login
Revises: 0007_district_map
Create Date: 2026-12-03 13:30:00
"""
import sqlalchemy as sa
from alembic import op

import learningcity.db

revision = '0008_staff_login'
down_revision = '0007_district_map'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_login',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', learningcity.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], name=op.f('fk_staff_login_user_id_staff_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_login'))
    )
    with op.batch_alter_table('staff_login', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_login_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('staff_login', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_login_user_id'))
    op.drop_table('staff_login')
