"""survey sessions imported from ODK Central / KoboToolbox submission exports

Adds ``survey_session.source`` (``page`` for every existing session, ``odk`` or ``kobo``
for imported ones) and ``survey_session.instance_id`` (the submission's instance ID),
unique per survey code (``uq_survey_session_instance``) so that importing the same
export again adds nothing (surveys/submissions.py). Existing sessions have no instance
ID (NULLs never collide on SQLite or PostgreSQL).

Revision ID: 0009_submission_instance
Revises: 0008_session_district (the last revision that altered survey_session)
Create Date: 2026-12-03 17:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009_submission_instance'
down_revision = '0008_session_district'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('survey_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=8), server_default='page',
                                      nullable=False))
        batch_op.add_column(sa.Column('instance_id', sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint('uq_survey_session_instance',
                                          ['survey_code', 'instance_id'])


def downgrade() -> None:
    with op.batch_alter_table('survey_session', schema=None) as batch_op:
        batch_op.drop_constraint('uq_survey_session_instance', type_='unique')
        batch_op.drop_column('instance_id')
        batch_op.drop_column('source')
