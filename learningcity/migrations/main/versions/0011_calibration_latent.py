"""calibration.latent_mean, calibration.latent_sd: the calibrated latent distribution

A calibration's parameters hold only on the scale of the population they were
estimated on: θ ~ N(latent_mean, latent_sd²). Rasch and PCM calibrations fix the slopes
at 1 and estimate the SD (0.756 on LSAT6), so the live test's EAP prior must be read
from the calibration (PARAMS.csv ``latent_mean``/``latent_sd``), not assumed N(0, 1).
Calibrations stored before this revision were imported from files without the columns,
which mean N(0, 1): they get 0 and 1. Downgrading drops the columns.

Revision ID: 0011_calibration_latent
Revises: 0010_answer_key_length
Create Date: 2026-12-04 02:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011_calibration_latent'
down_revision = '0010_answer_key_length'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calibration', schema=None) as batch_op:
        batch_op.add_column(sa.Column('latent_mean', sa.Double(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('latent_sd', sa.Double(), server_default='1',
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('calibration', schema=None) as batch_op:
        batch_op.drop_column('latent_sd')
        batch_op.drop_column('latent_mean')
