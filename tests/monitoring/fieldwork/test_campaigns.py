"""Campaigns: codes, the window in Asia/Shanghai stored as UTC, edits, scoping, closing."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from learningcity.models import AuditEvent
from monitoring import closing
from monitoring.fieldwork import campaigns as svc
from monitoring.fieldwork import draw, window
from monitoring.fieldwork.models import Campaign

from ..conftest import ACTOR


def test_window_stored_utc_from_shanghai(make_campaign, monitoring_demo) -> None:
    campaign = make_campaign(opens_at="2027-03-01T09:00", closes_at="2027-03-31 18:30")
    monitoring_demo.expire_all()
    stored = monitoring_demo.get(Campaign, campaign.id)
    assert stored.opens_at == dt.datetime(2027, 3, 1, 1, 0, tzinfo=dt.UTC)
    assert stored.closes_at == dt.datetime(2027, 3, 31, 10, 30, tzinfo=dt.UTC)
    assert window.local_text(stored.opens_at) == "2027-03-01 09:00"
    assert window.local_input(stored.closes_at) == "2027-03-31T18:30"
    assert window.window_state(stored, dt.datetime(2027, 3, 1, 0, 59, tzinfo=dt.UTC)) == \
        "not_yet_open"
    assert window.window_state(stored, dt.datetime(2027, 3, 1, 1, 0, tzinfo=dt.UTC)) == "open"
    assert window.window_state(stored, dt.datetime(2027, 3, 31, 10, 30, tzinfo=dt.UTC)) == "ended"


def test_codes_per_district_and_month(make_campaign) -> None:
    a1, a2, b1 = make_campaign(), make_campaign(), make_campaign(district="B")
    month = window.to_local(dt.datetime.now(dt.UTC)).strftime("%Y%m")
    assert (a1.code, a2.code, b1.code) == (f"A-{month}-1", f"A-{month}-2", f"B-{month}-1")


def test_every_problem_listed(monitoring_demo, staff) -> None:
    with pytest.raises(svc.CampaignError) as caught:
        svc.create_campaign(monitoring_demo, district_code="Z", user=ACTOR, name="",
                            test_instrument="NOPE", survey_code="", mode="random",
                            opens_at="2027-03-02 10:00", closes_at="yesterday")
    text = str(caught.value)
    for part in ("district:", "name: required", "test_instrument: 'NOPE'", "mode: 'random'",
                 "closes_at: 'yesterday'"):
        assert part in text
    with pytest.raises(svc.CampaignError, match="close after it opens"):
        svc.create_campaign(monitoring_demo, district_code="A", user=ACTOR, name="x",
                            test_instrument="LLA", opens_at="2027-03-02 10:00",
                            closes_at="2027-03-02 10:00")
    assert monitoring_demo.scalar(sa.select(sa.func.count(Campaign.id))) == 0


def test_edit_rules(drawn_campaign, monitoring_demo) -> None:
    campaign = drawn_campaign()
    svc.update_campaign(monitoring_demo, campaign, user=ACTOR, name="Renamed",
                        closes_at="2099-01-01 00:00")
    assert campaign.name == "Renamed"
    with pytest.raises(svc.CampaignError, match="mode: cannot change after"):
        svc.update_campaign(monitoring_demo, campaign, user=ACTOR, mode="open")
    with pytest.raises(svc.CampaignError, match="survey_code: cannot change after"):
        svc.update_campaign(monitoring_demo, campaign, user=ACTOR, survey_code="")


def test_visible_campaigns_scoped(make_campaign, monitoring_demo, staff) -> None:
    a, b = make_campaign(), make_campaign(district="B")
    assert [c.code for c in svc.visible_campaigns(monitoring_demo, staff["district_a"])] == \
        [a.code]
    assert {c.code for c in svc.visible_campaigns(monitoring_demo, staff["admin"])} == \
        {a.code, b.code}
    assert {c.code for c in svc.visible_campaigns(monitoring_demo, staff["monitor"])} == \
        {a.code, b.code}
    assert svc.visible_campaigns(monitoring_demo, staff["researcher"]) == []


def test_close_freezes_everything(drawn_campaign, monitoring_demo) -> None:
    from monitoring.fieldwork import frames
    from monitoring.fieldwork.invitations import InvitationError, issue_invitations

    db = monitoring_demo
    campaign = drawn_campaign(n=6)
    assert window.accepting_responses(campaign)
    outcome = closing.close_campaign(db, campaign, ACTOR)
    db.commit()
    assert campaign.status == "closed" and campaign.closed_by == ACTOR
    assert campaign.closed_at is not None
    assert set(outcome.steps) == {"weights", "aggregates"}
    assert not window.accepting_responses(campaign)
    with pytest.raises(svc.CampaignError, match="closed"):
        svc.update_campaign(db, campaign, user=ACTOR, name="again")
    with pytest.raises(draw.DesignError, match="closed"):
        draw.draw_sample(db, campaign, ACTOR)
    with pytest.raises(draw.DesignError):
        draw.set_design(db, campaign, ACTOR, n=3)
    with pytest.raises(ValueError):
        frames.import_frame(db, campaign, "x.csv", b"a,b\n1,2\n",
                            frames.FrameSpec("unit", "a", ["b"]), ACTOR)
    with pytest.raises(InvitationError):
        issue_invitations(db, campaign, ACTOR)
    with pytest.raises(svc.CampaignError, match="already closed"):
        closing.close_campaign(db, campaign, ACTOR)
    actions = set(db.scalars(sa.select(AuditEvent.action).where(
        AuditEvent.target == campaign.code)))
    assert {"campaign.close", "campaign.close_steps"} <= actions


def test_close_hook_failure_keeps_close(drawn_campaign, monitoring_demo, monkeypatch) -> None:
    calls = []

    def compute_weights(db, campaign, user, **_options):
        calls.append((campaign.code, user))
        raise ValueError("no respondents")

    monkeypatch.setattr(closing, "compute_weights", compute_weights)
    campaign = drawn_campaign(n=3)
    outcome = closing.close_campaign(monitoring_demo, campaign, ACTOR)
    monitoring_demo.commit()
    assert calls == [(campaign.code, ACTOR)]
    assert outcome.steps["weights"] == "error: no respondents"
    assert outcome.steps["aggregates"] == "skipped: no weights"
    monitoring_demo.expire_all()
    assert monitoring_demo.get(Campaign, campaign.id).status == "closed"


def test_close_reads_each_source_once(make_campaign, monitoring_demo, monkeypatch) -> None:
    """Closing reads the sessions, answers, responses and definitions once and refreshes
    the invitation statuses once, for the weights and the aggregates together."""
    from assessment import sessions as test_sessions
    from monitoring.fieldwork import entry
    from monitoring.results import respondents, weighting
    from surveys import services as survey_services

    calls: dict[str, int] = {}

    def counted(module, name):
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return real(*args, **kwargs)
        monkeypatch.setattr(module, name, wrapper)

    for module, name in [(test_sessions, "finished_sessions"), (test_sessions, "finished_answers"),
                         (test_sessions, "finished_invitations"),
                         (survey_services, "finished_invitations"),
                         (respondents, "campaign_responses"), (respondents, "response_surveys"),
                         (entry, "refresh_statuses"), (closing, "refresh_statuses"),
                         (respondents, "refresh_statuses"), (weighting, "refresh_statuses")]:
        counted(module, name)
    from monitoring.fieldwork.models import Invitation

    from ..entry_support import ready_campaign

    campaign = make_campaign(survey_code=None)
    people = [{"age_band": band, "sex": sex} for band in ("18-29", "60-69")
              for sex in ("female", "male")] * 3
    ready_campaign(monitoring_demo, campaign, {"S01": (200.0, people)})
    for inv in monitoring_demo.scalars(sa.select(Invitation).where(
            Invitation.campaign_id == campaign.id)):
        inv.status = "completed"
    monitoring_demo.flush()
    outcome = closing.close_campaign(monitoring_demo, campaign, ACTOR, monitoring_demo)
    assert outcome.steps == {"weights": "ok", "aggregates": "ok"}
    assert calls.get("finished_sessions", 0) <= 1 and calls.get("campaign_responses", 0) <= 1
    assert calls.get("finished_answers", 0) <= 1 and calls.get("response_surveys", 0) <= 1
    assert calls.get("finished_invitations", 0) == 0
    assert calls.get("refresh_statuses", 0) == 1
