"""answer keys of up to 80 characters

A name may have 64 characters and a repeat up to 1000 instances, so an instance key
(``name[1000]``, ``q_other[1000]``) reaches 76 characters: ``survey_answer.name``,
``survey_answer.page`` and ``survey_session.page`` widen from 64 to 80 characters
(``surveys.definition.MAX_KEY``; validation refuses a survey whose keys would not fit).
Downgrading narrows them again and fails on PostgreSQL while a longer key is stored.

On SQLite the batch mode rebuilds ``survey_session``; the migration environment runs
with foreign keys off (``learningcity/migrations/envcommon.py``), so its answers and
scale scores stay.

Revision ID: 0010_answer_key_length
Revises: 0009_submission_instance
Create Date: 2026-12-03 18:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010_answer_key_length'
down_revision = '0009_submission_instance'
branch_labels = None
depends_on = None

COLUMNS = (('survey_answer', 'name', False), ('survey_answer', 'page', False),
           ('survey_session', 'page', True))


def _resize(old: int, new: int) -> None:
    for table in ('survey_session', 'survey_answer'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for t, column, nullable in COLUMNS:
                if t == table:
                    batch_op.alter_column(column, existing_type=sa.String(length=old),
                                          type_=sa.String(length=new),
                                          existing_nullable=nullable)


def upgrade() -> None:
    _resize(64, 80)


def downgrade() -> None:
    _resize(80, 64)
