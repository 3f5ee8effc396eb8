"""Fieldwork's side of :class:`surveys.submissions.InvitationDirectory`: how the
submissions importer finds a campaign and the invitation behind an invitation code an
enumerator typed in ODK Collect / KoboCollect, and marks it answered.

Offered through the entry point ``learningcity.invitation_directory`` so that surveys
never imports monitoring (the dependency points from fieldwork to surveys only).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from learningcity.db import utcnow
from surveys.submissions import CampaignInfo, InvitationInfo

from . import entry
from .campaigns import get_campaign
from .invitations import find_invitation
from .models import Campaign, Invitation

__all__ = ["FieldworkInvitations", "directory"]


class FieldworkInvitations:
    """Campaigns and invitations looked up with fieldwork's own service functions."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    @staticmethod
    def _info(c: Campaign) -> CampaignInfo:
        return CampaignInfo(c.code, c.district_code, c.survey_code, c.status)

    def campaign(self, db: Any, code: str) -> CampaignInfo | None:
        found = get_campaign(db, code)
        return None if found is None else self._info(found)

    def campaigns(self, db: Any, survey_code: str, district: str | None
                  ) -> list[CampaignInfo]:
        query = sa.select(Campaign).where(Campaign.survey_code == survey_code)
        if district is not None:
            query = query.where(Campaign.district_code == district)
        return [self._info(c) for c in db.scalars(query.order_by(Campaign.code))]

    def invitation(self, db: Any, campaign: str, code: str) -> InvitationInfo | None:
        found = find_invitation(db, code, self.secret)
        if found is None or db.get(Campaign, found.campaign_id).code != campaign:
            return None
        return InvitationInfo(found.public_id, dict(found.prefill or {}))

    def answered(self, db: Any, campaign: str, public_id: str, session_id: int) -> None:
        """Link the imported session to its invitation, as answering on the pages does."""
        found = db.scalar(sa.select(Invitation).where(Invitation.public_id == public_id))
        if found.survey_session_id is None:
            found.survey_session_id = session_id
        if found.status == "issued":
            found.status, found.first_used_at = "started", utcnow()
        entry.refresh_status(db, found)


def directory(settings: Mapping[str, Any]) -> FieldworkInvitations:
    """The directory of the app's settings (invitation codes are keyed by its secret)."""
    return FieldworkInvitations(settings["learningcity.secret"])
