"""monitoring baseline: the version table only; aggregate tables arrive with monitoring/

Revision ID: m0001_base
Revises: 
Create Date: 2026-11-29 02:01:11.567248
"""


revision = 'm0001_base'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: this revision only starts the monitoring database's version history."""


def downgrade() -> None:
    """Nothing to undo."""
