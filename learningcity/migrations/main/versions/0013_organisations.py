"""learning organisations: register, evaluation standards, evaluations, evidence

Tables of monitoring/organisations/models.py: the register of organisations by kind and
district, the versioned evaluation standards (immutable rows), one evaluation per
organisation and year (self-assessment from a link, district review, city
confirmation) and its evidence files. Downgrading drops the four tables.

Revision ID: 0013_organisations
Revises: 0012_programme
Create Date: 2026-12-04 02:16:22.172223
"""
import sqlalchemy as sa
from alembic import op

import learningcity.db

revision = '0013_organisations'
down_revision = '0012_programme'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('evaluation_standard',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title_zh', sa.String(length=200), nullable=False),
    sa.Column('title_en', sa.String(length=200), nullable=False),
    sa.Column('threshold', sa.Double(), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('uploaded_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation_standard')),
    sa.UniqueConstraint('kind', 'year', 'version', name='kind_year_version')
    )
    op.create_table('organisation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('district_code', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('simulated', sa.Boolean(), nullable=False),
    sa.Column('created_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.CheckConstraint("kind IN ('party', 'government', 'enterprise', 'school', 'community', 'social')", name=op.f('ck_organisation_kind_known')),
    sa.ForeignKeyConstraint(['district_code'], ['district.code'], name=op.f('fk_organisation_district_code_district'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisation')),
    sa.UniqueConstraint('code', name=op.f('uq_organisation_code'))
    )
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisation_district_code'), ['district_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_organisation_kind'), ['kind'], unique=False)

    op.create_table('evaluation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('standard_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=True),
    sa.Column('token_expires_at', learningcity.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('self_levels', sa.JSON(), nullable=False),
    sa.Column('self_notes', sa.JSON(), nullable=False),
    sa.Column('submitted_at', learningcity.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('review_levels', sa.JSON(), nullable=False),
    sa.Column('review_comments', sa.JSON(), nullable=False),
    sa.Column('score', sa.Double(), nullable=True),
    sa.Column('recognised', sa.Boolean(), nullable=True),
    sa.Column('reviewed_at', learningcity.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reviewed_by', sa.String(length=64), nullable=True),
    sa.Column('confirmed_at', learningcity.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_by', sa.String(length=64), nullable=True),
    sa.Column('simulated', sa.Boolean(), nullable=False),
    sa.Column('created_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.CheckConstraint("status IN ('invited', 'draft', 'submitted', 'reviewed', 'confirmed')", name=op.f('ck_evaluation_status_known')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_evaluation_organisation_id_organisation'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['standard_id'], ['evaluation_standard.id'], name=op.f('fk_evaluation_standard_id_evaluation_standard'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation')),
    sa.UniqueConstraint('organisation_id', 'year', name='organisation_year'),
    sa.UniqueConstraint('token_hash', name=op.f('uq_evaluation_token_hash'))
    )
    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluation_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluation_standard_id'), ['standard_id'], unique=False)

    op.create_table('evaluation_evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evaluation_id', sa.Integer(), nullable=False),
    sa.Column('criterion', sa.String(length=32), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('media_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_at', learningcity.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['evaluation_id'], ['evaluation.id'], name=op.f('fk_evaluation_evidence_evaluation_id_evaluation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation_evidence'))
    )
    with op.batch_alter_table('evaluation_evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluation_evidence_evaluation_id'), ['evaluation_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('evaluation_evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluation_evidence_evaluation_id'))

    op.drop_table('evaluation_evidence')
    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluation_standard_id'))
        batch_op.drop_index(batch_op.f('ix_evaluation_organisation_id'))

    op.drop_table('evaluation')
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisation_kind'))
        batch_op.drop_index(batch_op.f('ix_organisation_district_code'))

    op.drop_table('organisation')
    op.drop_table('evaluation_standard')
