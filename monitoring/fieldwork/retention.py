"""Retention of sampling frames: contact columns go at close, the rest after the years.

A frame keeps only the columns its campaign declared (:mod:`monitoring.fieldwork.frames`).
Two deadlines apply to what is kept, both counted from the campaign's close:

* **contact columns** (declared contact and identity columns: names, phone numbers,
  addresses for the field workers' list) are removed from ``frame_unit.attributes``
  when the campaign closes (``monitoring.contact_retention_days`` = 0, the default) or
  that many days after it;
* **every remaining frame attribute** (grouping and prefill columns) and the invitations'
  prefill (age band, sex, street offered to the resident) are cleared
  ``assessment.retention_years`` (default 3) after the close, the years the consent
  promises. The unit key, stratum, selection and inclusion probabilities stay: the
  weights and the published aggregates were computed from them.

:func:`purge` is this package's entry of the ``learningcity.retention`` group, run daily
by ``learningcity retention purge``; :func:`purge_contacts` is also called by the close
itself.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity.retention import retention_years as shared_years
from learningcity.retention import years_before
from learningcity.settings import whole_number
from monitoring.fieldwork.models import Campaign, FrameUnit, Invitation

CONTACT_DAYS_SETTING = "monitoring.contact_retention_days"


def contact_retention_days(settings: Mapping[str, Any]) -> int:
    """Days after the close that contact columns are kept (0: purged at the close)."""
    return whole_number(settings, CONTACT_DAYS_SETTING, 0, 0)


def retention_years(settings: Mapping[str, Any]) -> int:
    """Years after the close that the other frame attributes are kept."""
    return shared_years(settings)


#: kept under its old name for callers and tests
years_ago = years_before


def _frame(campaign: Campaign) -> dict[str, Any]:
    return dict((campaign.design or {}).get("frame") or {})


def _mark(campaign: Campaign, key: str, now: dt.datetime) -> None:
    design = dict(campaign.design or {})
    frame = dict(design.get("frame") or {})
    frame[key] = now.astimezone(dt.UTC).isoformat()
    design["frame"] = frame
    campaign.design = design


def contact_columns(campaign: Campaign) -> list[str]:
    """The campaign's declared contact and identity columns."""
    frame = _frame(campaign)
    return list(dict.fromkeys([*frame.get("contact_columns", []),
                               *frame.get("identity_columns", [])]))


def _strip_units(db: Session, campaign: Campaign, drop: set[str] | None, dry_run: bool
                 ) -> int:
    """Remove the ``drop`` columns (None: every column) from the campaign's frame units;
    the number of units that held any."""
    changed = []
    for unit_id, attributes in db.execute(
            sa.select(FrameUnit.id, FrameUnit.attributes)
            .where(FrameUnit.campaign_id == campaign.id)):
        attributes = attributes or {}
        kept = {} if drop is None else {k: v for k, v in attributes.items() if k not in drop}
        if kept != attributes:
            changed.append({"id": unit_id, "attributes": kept})
    if changed and not dry_run:
        db.execute(sa.update(FrameUnit), changed)  # ORM bulk update by primary key
    return len(changed)


def purge_contacts(db: Session, campaign: Campaign, *, now: dt.datetime,
                   dry_run: bool = False) -> int:
    """Remove the campaign's contact and identity columns from its frame; the number of
    frame units changed (0 on a second run). Does not commit."""
    columns = contact_columns(campaign)
    if not columns:
        return 0
    n = _strip_units(db, campaign, set(columns), dry_run)
    if not dry_run and not _frame(campaign).get("contacts_purged_at"):
        _mark(campaign, "contacts_purged_at", now)
    return n


def purge_attributes(db: Session, campaign: Campaign, *, now: dt.datetime,
                     dry_run: bool = False) -> tuple[int, int]:
    """Clear every frame attribute and every invitation prefill of the campaign, and the
    invitations' links to the test and survey sessions (which would otherwise lead from
    a frame unit's id to the de-identified answers); the numbers of frame units and of
    invitations changed. Does not commit."""
    units = _strip_units(db, campaign, None, dry_run)
    linked = [row.id for row in db.execute(
        sa.select(Invitation.id, Invitation.prefill, Invitation.test_session_id,
                  Invitation.survey_session_id)
        .where(Invitation.campaign_id == campaign.id))
        if row.prefill or row.test_session_id is not None
        or row.survey_session_id is not None]
    if linked and not dry_run:
        db.execute(sa.update(Invitation), [
            {"id": i, "prefill": {}, "test_session_id": None, "survey_session_id": None}
            for i in linked])
    if not dry_run and not _frame(campaign).get("attributes_purged_at"):
        _mark(campaign, "attributes_purged_at", now)
    return units, len(linked)


def purge(db: Session, *, now: dt.datetime, settings: Mapping[str, Any],
          dry_run: bool) -> dict[str, int]:
    """Delete this package's person-level frame data past its retention.

    Contact columns of campaigns closed ``monitoring.contact_retention_days`` ago or
    more; all frame attributes and invitation prefills of campaigns closed
    ``assessment.retention_years`` ago or more. Idempotent (a second run finds nothing),
    safe to run daily; with ``dry_run`` nothing changes and the counts are the same as a
    real run would give. Does not commit (the caller does).
    """
    days = contact_retention_days(settings)
    years = retention_years(settings)
    counts = {"frame_contact_columns_purged": 0, "frame_attributes_purged": 0,
              "invitations_cleared": 0}
    contact_before = now - dt.timedelta(days=days)
    years_cutoff = years_before(now, years)
    closed = db.scalars(sa.select(Campaign).where(
        Campaign.status == "closed", Campaign.closed_at.is_not(None),
        Campaign.closed_at <= max(contact_before, years_cutoff)).order_by(Campaign.id)).all()
    for campaign in closed:
        frame = _frame(campaign)
        if campaign.closed_at <= years_cutoff:
            if frame.get("attributes_purged_at"):
                continue  # done by an earlier run: nothing left
            units, invitations = purge_attributes(db, campaign, now=now, dry_run=dry_run)
            counts["frame_attributes_purged"] += units
            counts["invitations_cleared"] += invitations
        elif campaign.closed_at <= contact_before and not frame.get("contacts_purged_at"):
            counts["frame_contact_columns_purged"] += purge_contacts(
                db, campaign, now=now, dry_run=dry_run)
    if not dry_run:
        db.flush()
    return counts
