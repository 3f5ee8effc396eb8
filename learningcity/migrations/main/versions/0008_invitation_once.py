"""one live invitation per slot of a sampled unit (monitoring/fieldwork/invitations.py)

Adds ``invitation.slot`` (which of a unit's ``n_invitations`` an invitation is) and the
partial unique index ``uq_invitation_live_slot`` on (frame_unit_id, slot) over the
invitations that are not void, valid on SQLite and PostgreSQL. Existing invitations are
numbered per unit, used ones first, then unused, then void; where the race this closes
had already issued more live invitations than a unit needs, the surplus that was never
used is voided (its codes stop working; a used one is kept with a slot of its own).

Revision ID: 0008_invitation_once
Revises: 0007_district_map (needs 0005_campaigns' invitation table)
Create Date: 2026-12-03 14:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008_invitation_once'
down_revision = '0007_district_map'
branch_labels = None
depends_on = '0005_campaigns'

LIVE_WHERE = "status <> 'void'"


def _number_slots() -> None:
    """Slots per frame unit: live invitations 0, 1, ... up to the unit's n_invitations (an
    unused live one beyond that is voided), then the void ones after them."""
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT i.id, i.frame_unit_id, i.status, u.n_invitations FROM invitation i "
        "JOIN frame_unit u ON u.id = i.frame_unit_id ORDER BY i.frame_unit_id, "
        "CASE WHEN i.status = 'void' THEN 1 ELSE 0 END, "
        "CASE WHEN i.status = 'issued' THEN 1 ELSE 0 END, i.id")).all()
    next_slot: dict[int, int] = {}
    for inv_id, unit_id, status, wanted in rows:
        slot = next_slot.get(unit_id, 0)
        next_slot[unit_id] = slot + 1
        if status == 'issued' and slot >= max(int(wanted or 1), 1):
            status = 'void'  # a duplicate nobody used: the unit keeps its first ones
            conn.execute(sa.text("UPDATE invitation SET status = 'void' WHERE id = :id"),
                         {"id": inv_id})
        conn.execute(sa.text("UPDATE invitation SET slot = :slot WHERE id = :id"),
                     {"slot": slot, "id": inv_id})


def upgrade() -> None:
    with op.batch_alter_table('invitation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slot', sa.Integer(), server_default='0',
                                      nullable=False))
    _number_slots()
    with op.batch_alter_table('invitation', schema=None) as batch_op:
        batch_op.create_index('uq_invitation_live_slot', ['frame_unit_id', 'slot'],
                              unique=True, sqlite_where=sa.text(LIVE_WHERE),
                              postgresql_where=sa.text(LIVE_WHERE))


def downgrade() -> None:
    with op.batch_alter_table('invitation', schema=None) as batch_op:
        batch_op.drop_index('uq_invitation_live_slot')
        batch_op.drop_column('slot')
