"""answer keys of up to 80 characters

A name may have 64 characters and a repeat up to 1000 instances, so an instance key
(``name[1000]``, ``q_other[1000]``) reaches 76 characters: ``survey_answer.name``,
``survey_answer.page`` and ``survey_session.page`` widen from 64 to 80 characters
(``surveys.definition.MAX_KEY``; validation refuses a survey whose keys would not fit).
Downgrading narrows them again and fails on PostgreSQL while a longer key is stored.

On SQLite the batch mode rebuilds ``survey_session``; with foreign keys on (as
``learningcity.db`` connects), dropping the old table deletes every row of its
``ON DELETE CASCADE`` children, so ``survey_answer`` and ``survey_scale_score`` are
copied aside first and put back after.

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


#: tables whose rows a rebuild of survey_session cascades away on SQLite
CHILDREN = ('survey_answer', 'survey_scale_score')


def _resize(old: int, new: int) -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == 'sqlite'
    if sqlite:
        for child in CHILDREN:
            op.execute(f'CREATE TEMP TABLE keep_{child} AS SELECT * FROM {child}')
    for table in ('survey_session', 'survey_answer'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for t, column, nullable in COLUMNS:
                if t == table:
                    batch_op.alter_column(column, existing_type=sa.String(length=old),
                                          type_=sa.String(length=new),
                                          existing_nullable=nullable)
    if sqlite:
        for child in CHILDREN:
            names = ', '.join(c['name'] for c in sa.inspect(bind).get_columns(child))
            op.execute(f'DELETE FROM {child}')
            op.execute(f'INSERT INTO {child} ({names}) SELECT {names} FROM keep_{child}')
            op.execute(f'DROP TABLE keep_{child}')


def upgrade() -> None:
    _resize(64, 80)


def downgrade() -> None:
    _resize(80, 64)
