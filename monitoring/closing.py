"""Closing a campaign: freeze it, then compute its weights and its aggregates.

The step that joins the two wings: fieldwork (the campaign is frozen: no edits, draws,
invitations or answers) and results (weights, then the monitoring database). A failing
step is reported and never undoes the close.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from learningcity import audit
from learningcity.db import utcnow
from monitoring.fieldwork.campaigns import CampaignError
from monitoring.fieldwork.entry import refresh_statuses
from monitoring.fieldwork.models import Campaign
from monitoring.results.aggregate import aggregate_campaign
from monitoring.results.respondents import CampaignSources, campaign_sources
from monitoring.results.weighting import compute_weights

log = logging.getLogger(__name__)


@dataclass
class CloseOutcome:
    """What closing did: the hook results, in order (``ok``, ``skipped`` or an error)."""

    campaign: str
    steps: dict[str, str] = field(default_factory=dict)


def _hook(db: Session, name: str, call: Any, outcome: CloseOutcome) -> None:
    """Run another module's step in a savepoint: its failure never undoes the close."""
    try:
        with db.begin_nested():
            call()
        outcome.steps[name] = "ok"
    except Exception as exc:  # reported to the user; the close stands
        log.warning("close %s: %s failed: %s", outcome.campaign, name, exc)
        outcome.steps[name] = f"error: {exc}"


def close_campaign(db: Session, campaign: Campaign, user: str,
                   monitoring_db: Session | None = None) -> CloseOutcome:
    """Freeze the campaign (no edits, draws, invitations or answers), then compute its
    weights (:func:`~monitoring.results.weighting.compute_weights`) and aggregates
    (:func:`~monitoring.results.aggregate.aggregate_campaign`)."""
    if campaign.status == "closed":
        raise CampaignError(f"campaign {campaign.code} is already closed")
    campaign.status = "closed"
    campaign.closed_at = utcnow()
    campaign.closed_by = user
    audit.record(db, actor=user, action="campaign.close", target=campaign.code, detail={})
    db.flush()
    outcome = CloseOutcome(campaign=campaign.code)

    read: dict[str, CampaignSources] = {}

    def weights() -> None:
        # the campaign is frozen now: its sessions and responses are read once, here,
        # and serve the invitation statuses, the weights and the aggregates
        read["sources"] = campaign_sources(db, campaign)
        refresh_statuses(db, campaign, read["sources"].finished())
        compute_weights(db, campaign, user, sources=read["sources"])

    def aggregates() -> None:
        if monitoring_db is None:
            raise RuntimeError("no monitoring database session")
        aggregate_campaign(db, monitoring_db, campaign.code, sources=read["sources"])

    _hook(db, "weights", weights, outcome)
    if outcome.steps["weights"] == "ok":
        _hook(db, "aggregates", aggregates, outcome)
    else:
        outcome.steps["aggregates"] = "skipped: no weights"
    audit.record(db, actor=user, action="campaign.close_steps", target=campaign.code,
                     detail=dict(outcome.steps))
    db.flush()
    return outcome
