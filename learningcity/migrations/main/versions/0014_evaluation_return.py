"""evaluation: returned for changes (status, the district's comment, when and by whom)

A district may send a submitted self-assessment back to the organisation with a comment
(status ``returned``); the organisation changes it through its link and submits again.
Existing rows keep their status and get an empty comment. Downgrading puts returned
evaluations back to ``submitted`` and drops the columns.

Revision ID: 0014_evaluation_return
Revises: 0013_organisations
Create Date: 2026-12-04 21:30:00
"""
import sqlalchemy as sa
from alembic import op

import learningcity.db

revision = '0014_evaluation_return'
down_revision = '0013_organisations'
branch_labels = None
depends_on = None

OLD = "status IN ('invited', 'draft', 'submitted', 'reviewed', 'confirmed')"
NEW = "status IN ('invited', 'draft', 'submitted', 'returned', 'reviewed', 'confirmed')"


def upgrade() -> None:
    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('return_comment', sa.Text(), server_default='',
                                      nullable=False))
        batch_op.add_column(sa.Column('returned_at',
                                      learningcity.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('returned_by', sa.String(length=64), nullable=True))
        batch_op.drop_constraint(batch_op.f('ck_evaluation_status_known'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_evaluation_status_known'), NEW)


def downgrade() -> None:
    op.execute("UPDATE evaluation SET status = 'submitted' WHERE status = 'returned'")
    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_evaluation_status_known'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_evaluation_status_known'), OLD)
        batch_op.drop_column('returned_by')
        batch_op.drop_column('returned_at')
        batch_op.drop_column('return_comment')
