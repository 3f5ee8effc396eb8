"""test sessions scoped by the campaign's district; retention marks on sessions

``test_session.district_code`` (the campaign's district, set when a session starts from
an invitation) replaces the resident's own ``background["district"]`` for staff scoping.
Existing sessions with a campaign take the campaign's district; others stay null (city
staff only). Survey sessions get the same rule: their ``district`` becomes the
campaign's (null without a campaign), no longer an answer. ``purged_at`` marks sessions
the retention purge has de-identified (so a second run finds nothing).

Revision ID: 0008_session_district
Revises: 0007_district_map
Create Date: 2026-12-03 13:40:00
"""
import sqlalchemy as sa
from alembic import op

import learningcity.db

revision = '0008_session_district'
down_revision = '0007_district_map'
branch_labels = None
# the backfill reads campaign (0005) and survey_session (0004)
depends_on = ('0004_surveys', '0005_campaigns')


def upgrade() -> None:
    with op.batch_alter_table('test_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('district_code', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('purged_at', learningcity.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index(batch_op.f('ix_test_session_district_code'), ['district_code'],
                              unique=False)
    with op.batch_alter_table('survey_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purged_at', learningcity.db.UTCDateTime(timezone=True),
                                      nullable=True))
    # one correlated UPDATE each, the same SQL on SQLite and PostgreSQL
    op.execute("UPDATE test_session SET district_code = (SELECT campaign.district_code "
               "FROM campaign WHERE campaign.code = test_session.campaign) "
               "WHERE test_session.campaign IS NOT NULL")
    op.execute("UPDATE survey_session SET district = (SELECT campaign.district_code "
               "FROM campaign WHERE campaign.code = survey_session.campaign)")


def downgrade() -> None:
    with op.batch_alter_table('survey_session', schema=None) as batch_op:
        batch_op.drop_column('purged_at')
    with op.batch_alter_table('test_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_test_session_district_code'))
        batch_op.drop_column('purged_at')
        batch_op.drop_column('district_code')
