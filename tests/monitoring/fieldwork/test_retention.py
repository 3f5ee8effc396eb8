"""monitoring.fieldwork.retention.purge: the retention contract for sampling frames.

Contact columns of closed campaigns past ``monitoring.contact_retention_days``; every
frame attribute and invitation prefill past ``assessment.retention_years``. Idempotent,
dry run counts what a real run would do and changes nothing, does not commit.
"""
from __future__ import annotations

import datetime as dt
from importlib.metadata import entry_points

import sqlalchemy as sa

from monitoring import closing
from monitoring.fieldwork import draw, frames, invitations, retention
from monitoring.fieldwork.frames import FrameSpec
from monitoring.fieldwork.models import Campaign, FrameUnit, Invitation
from tests.conftest import TEST_SECRET

from ..conftest import ACTOR, to_csv, unit_rows

SETTINGS = {"monitoring.contact_retention_days": "10", "assessment.retention_years": "3"}


def _closed(db, make_campaign, *, days: int = 10):
    """A closed campaign whose frame has a contact column, 8 invitations with prefill."""
    campaign = make_campaign()
    rows = unit_rows(streets=2, per_cell=2)
    for k, row in enumerate(rows):
        row["phone"] = f"1370013{k:04d}"
    spec = FrameSpec("unit", "hh_id", ["street", "age_band"], contact_columns=["phone"])
    frames.import_frame(db, campaign, "hh.csv", to_csv(rows), spec, ACTOR)
    draw.set_design(db, campaign, ACTOR, n=8)
    draw.draw_sample(db, campaign, ACTOR, seed=11)
    invitations.issue_invitations(db, campaign, ACTOR, secret=TEST_SECRET)
    closing.close_campaign(db, campaign, ACTOR, contact_retention_days=days)
    db.commit()
    return campaign


def _snapshot(db, campaign):
    units = db.execute(sa.select(FrameUnit.id, FrameUnit.attributes).where(
        FrameUnit.campaign_id == campaign.id).order_by(FrameUnit.id)).all()
    prefills = db.execute(sa.select(Invitation.id, Invitation.prefill).where(
        Invitation.campaign_id == campaign.id).order_by(Invitation.id)).all()
    return [tuple(r) for r in units], [tuple(r) for r in prefills]


def test_the_entry_point_is_this_purge() -> None:
    found = {ep.name: ep for ep in entry_points(group="learningcity.retention")}
    assert found["monitoring_fieldwork"].load() is retention.purge


def test_contacts_purged_after_the_days_dry_run_first(make_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = _closed(db, make_campaign)
    n_units = db.scalar(sa.select(sa.func.count(FrameUnit.id)).where(
        FrameUnit.campaign_id == campaign.id))
    early = campaign.closed_at + dt.timedelta(days=9, hours=23)
    assert retention.purge(db, now=early, settings=SETTINGS, dry_run=False) == {
        "frame_contact_columns_purged": 0, "frame_attributes_purged": 0,
        "invitations_cleared": 0}
    due = campaign.closed_at + dt.timedelta(days=10)
    before = _snapshot(db, campaign)
    dry = retention.purge(db, now=due, settings=SETTINGS, dry_run=True)
    db.commit()
    assert dry["frame_contact_columns_purged"] == n_units > 0
    db.expire_all()
    assert _snapshot(db, campaign) == before  # a dry run changes nothing
    real = retention.purge(db, now=due, settings=SETTINGS, dry_run=False)
    assert real == dry
    db.commit()
    db.expire_all()
    units, prefills = _snapshot(db, campaign)
    assert not any("phone" in attrs for _id, attrs in units)
    assert all({"hh_id", "street", "age_band", "sex"} == set(attrs) for _id, attrs in units)
    assert prefills == before[1]  # prefill stays until the retention years
    # idempotent: a second run (dry or real) finds nothing
    assert retention.purge(db, now=due, settings=SETTINGS, dry_run=True) == {
        k: 0 for k in real}
    assert retention.purge(db, now=due, settings=SETTINGS, dry_run=False) == {
        k: 0 for k in real}


def test_attributes_and_prefill_cleared_after_the_retention_years(
        make_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = _closed(db, make_campaign, days=0)  # contacts gone at the close
    assert not any("phone" in a for _i, a in _snapshot(db, campaign)[0])
    n_units = len(_snapshot(db, campaign)[0])
    n_invitations = len(_snapshot(db, campaign)[1])
    # an invitation answered: its link to the survey session leads from the frame unit
    # to the answers, so it goes too
    first = db.scalars(sa.select(Invitation).where(
        Invitation.campaign_id == campaign.id).order_by(Invitation.id)).first()
    first.survey_session_id = 424242
    db.commit()
    not_yet = retention.years_ago(campaign.closed_at, -3) - dt.timedelta(seconds=1)
    assert retention.purge(db, now=not_yet, settings=SETTINGS, dry_run=False)[
        "frame_attributes_purged"] == 0
    due = retention.years_ago(campaign.closed_at, -3)
    dry = retention.purge(db, now=due, settings=SETTINGS, dry_run=True)
    real = retention.purge(db, now=due, settings=SETTINGS, dry_run=False)
    db.commit()
    assert dry == real == {"frame_contact_columns_purged": 0,
                           "frame_attributes_purged": n_units,
                           "invitations_cleared": n_invitations}
    db.expire_all()
    units, prefills = _snapshot(db, campaign)
    assert all(attrs == {} for _i, attrs in units)
    assert all(prefill == {} for _i, prefill in prefills)
    assert db.scalar(sa.select(sa.func.count(Invitation.id)).where(
        Invitation.campaign_id == campaign.id,
        sa.or_(Invitation.test_session_id.is_not(None),
               Invitation.survey_session_id.is_not(None)))) == 0
    # the design facts the published results rest on stay
    assert db.scalar(sa.select(sa.func.count(FrameUnit.id)).where(
        FrameUnit.campaign_id == campaign.id, FrameUnit.selected.is_(True))) == 8
    assert retention.purge(db, now=due, settings=SETTINGS, dry_run=False) == {
        k: 0 for k in real}


def test_open_and_draft_campaigns_are_left_alone(make_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = make_campaign()
    rows = unit_rows(streets=1, per_cell=2)
    for row in rows:
        row["phone"] = "13700000000"
    frames.import_frame(db, campaign, "hh.csv", to_csv(rows),
                        FrameSpec("unit", "hh_id", ["street"], contact_columns=["phone"]),
                        ACTOR)
    db.commit()
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=5000)
    assert set(retention.purge(db, now=far, settings=SETTINGS, dry_run=False).values()) == {0}
    assert all("phone" in a for _i, a in _snapshot(db, campaign)[0])
    assert db.get(Campaign, campaign.id).status == "draft"


def test_settings_are_checked() -> None:
    import pytest

    assert retention.contact_retention_days({}) == 0
    assert retention.retention_years({}) == 3
    with pytest.raises(ValueError, match=r"monitoring\.contact_retention_days"):
        retention.contact_retention_days({"monitoring.contact_retention_days": "soon"})
    with pytest.raises(ValueError, match="at least 1"):
        retention.retention_years({"assessment.retention_years": "0"})
    assert retention.years_ago(dt.datetime(2028, 2, 29, tzinfo=dt.UTC), 3) == \
        dt.datetime(2025, 2, 28, tzinfo=dt.UTC)
