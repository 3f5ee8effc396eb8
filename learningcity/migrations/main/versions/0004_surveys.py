"""surveys

Revision ID: 0004_surveys
Revises: 0003_assessment
Create Date: 2026-11-29 04:42:56.587881
"""
import sqlalchemy as sa
from alembic import op

import learningcity.db

revision = '0004_surveys'
down_revision = '0003_assessment'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('survey_definition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('document_version', sa.Integer(), nullable=False),
    sa.Column('title_zh', sa.String(length=300), nullable=False),
    sa.Column('title_en', sa.String(length=300), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('imported_by', sa.String(length=64), nullable=False),
    sa.Column('imported_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_definition')),
    sa.UniqueConstraint('code', 'version', name='one_per_version')
    )
    with op.batch_alter_table('survey_definition', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_definition_code'), ['code'], unique=False)

    op.create_table('survey_publication',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('definition_id', sa.Integer(), nullable=False),
    sa.Column('published_by', sa.String(length=64), nullable=False),
    sa.Column('published_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['definition_id'], ['survey_definition.id'], name=op.f('fk_survey_publication_definition_id_survey_definition')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_survey_publication'))
    )
    op.create_table('survey_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('definition_id', sa.Integer(), nullable=False),
    sa.Column('survey_code', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('campaign', sa.String(length=64), nullable=True),
    sa.Column('invitation', sa.String(length=64), nullable=True),
    sa.Column('test_session_id', sa.Integer(), nullable=True),
    sa.Column('test_token_sealed', sa.String(length=128), nullable=True),
    sa.Column('district', sa.String(length=32), nullable=True),
    sa.Column('page', sa.String(length=64), nullable=True),
    sa.Column('prefilled', sa.JSON(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('created_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', learningcity.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['definition_id'], ['survey_definition.id'], name=op.f('fk_survey_session_definition_id_survey_definition')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_survey_session_token_hash'))
    )
    with op.batch_alter_table('survey_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_session_campaign'), ['campaign'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_session_definition_id'), ['definition_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_session_district'), ['district'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_session_invitation'), ['invitation'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_session_survey_code'), ['survey_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_session_test_session_id'), ['test_session_id'], unique=False)

    op.create_table('survey_answer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('page', sa.String(length=64), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('answered_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['survey_session.id'], name=op.f('fk_survey_answer_session_id_survey_session'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_answer')),
    sa.UniqueConstraint('session_id', 'name', name='one_per_name')
    )
    with op.batch_alter_table('survey_answer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_answer_session_id'), ['session_id'], unique=False)

    op.create_table('survey_scale_score',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('scale', sa.String(length=64), nullable=False),
    sa.Column('n_items', sa.Integer(), nullable=False),
    sa.Column('n_answered', sa.Integer(), nullable=False),
    sa.Column('sum_score', sa.Double(), nullable=True),
    sa.Column('method', sa.String(length=8), nullable=True),
    sa.Column('theta', sa.Double(), nullable=True),
    sa.Column('se', sa.Double(), nullable=True),
    sa.Column('calibration_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['session_id'], ['survey_session.id'], name=op.f('fk_survey_scale_score_session_id_survey_session'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_scale_score')),
    sa.UniqueConstraint('session_id', 'scale', name='one_per_scale')
    )
    with op.batch_alter_table('survey_scale_score', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_scale_score_session_id'), ['session_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('survey_scale_score', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_scale_score_session_id'))

    op.drop_table('survey_scale_score')
    with op.batch_alter_table('survey_answer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_answer_session_id'))

    op.drop_table('survey_answer')
    with op.batch_alter_table('survey_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_session_test_session_id'))
        batch_op.drop_index(batch_op.f('ix_survey_session_survey_code'))
        batch_op.drop_index(batch_op.f('ix_survey_session_invitation'))
        batch_op.drop_index(batch_op.f('ix_survey_session_district'))
        batch_op.drop_index(batch_op.f('ix_survey_session_definition_id'))
        batch_op.drop_index(batch_op.f('ix_survey_session_campaign'))

    op.drop_table('survey_session')
    op.drop_table('survey_publication')
    with op.batch_alter_table('survey_definition', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_definition_code'))

    op.drop_table('survey_definition')
