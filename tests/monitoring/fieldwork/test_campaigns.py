"""Campaigns: codes, the window in Asia/Shanghai stored as UTC, edits, scoping, closing."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from learningcity.i18n import translator
from learningcity.models import AuditEvent
from monitoring import closing
from monitoring.fieldwork import campaigns as svc
from monitoring.fieldwork import draw, window
from monitoring.fieldwork.models import Campaign
from tests.conftest import TEST_SECRET

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
        issue_invitations(db, campaign, ACTOR, secret=TEST_SECRET)
    with pytest.raises(svc.CampaignError, match="already closed"):
        closing.close_campaign(db, campaign, ACTOR)
    actions = set(db.scalars(sa.select(AuditEvent.action).where(
        AuditEvent.target == campaign.code)))
    assert {"campaign.close", "campaign.close_steps"} <= actions


def _completes(db, campaign, empty: str | None = None) -> None:
    """Ready ``campaign`` with 4 invitations in S01 (and in ``empty``), S01's completed."""
    from monitoring.fieldwork.models import Invitation

    from ..entry_support import ready_campaign

    people = [{"age_band": band, "sex": sex} for band in ("18-29", "60-69")
              for sex in ("female", "male")]
    strata = {"S01": (200.0, people)} | ({empty: (100.0, people)} if empty else {})
    ready_campaign(db, campaign, strata)
    for inv in db.scalars(sa.select(Invitation).where(Invitation.campaign_id == campaign.id)):
        inv.status = "started" if inv.stratum == empty else "completed"
    db.flush()


def test_close_without_invitations_says_so(drawn_campaign, monitoring_demo) -> None:
    outcome = closing.close_campaign(monitoring_demo, drawn_campaign(n=3), ACTOR)
    assert outcome.steps == {"weights": "failed", "aggregates": "skipped"}
    assert outcome.step("weights").messages == [closing.NO_INVITATIONS]


def test_close_zero_completes_fails_weights(drawn_campaign, monitoring_demo) -> None:
    from monitoring.fieldwork.invitations import issue_invitations

    campaign = drawn_campaign(n=3)
    assert len(issue_invitations(monitoring_demo, campaign, ACTOR, secret=TEST_SECRET)) == 3
    outcome = closing.close_campaign(monitoring_demo, campaign, ACTOR, monitoring_demo)
    assert outcome.steps == {"weights": "failed", "aggregates": "skipped"}
    assert outcome.failed
    assert outcome.step("weights").messages == [closing.NO_COMPLETES]
    assert outcome.step("aggregates").messages == [closing.AGGREGATES_SKIPPED]
    shown = closing.translated_steps(outcome, translator("zh-CN", ("monitoring",)))
    assert shown[0]["word"] == "失败" and shown[1]["word"] == "未进行"
    assert shown[0]["messages"] == ["没有受访者完成答题：没有权重，也没有结果。"]
    # the audit trail keeps each step's outcome, message ids and mappings
    detail = monitoring_demo.scalar(sa.select(AuditEvent.detail).where(
        AuditEvent.action == "campaign.close_steps", AuditEvent.target == campaign.code))
    assert detail["weights"] == {"outcome": "failed",
                                 "messages": [{"msgid": str(closing.NO_COMPLETES),
                                               "mapping": {}}]}


def test_close_hook_failure_keeps_close(make_campaign, monitoring_demo, monkeypatch) -> None:
    calls = []

    def compute_weights(db, campaign, user, **_options):
        calls.append((campaign.code, user))
        raise ValueError("stratum 'S02' has no respondents")

    monkeypatch.setattr(closing, "compute_weights", compute_weights)
    campaign = make_campaign(survey_code=None)
    _completes(monitoring_demo, campaign, empty="S02")
    outcome = closing.close_campaign(monitoring_demo, campaign, ACTOR)
    monitoring_demo.commit()
    assert calls == [(campaign.code, ACTOR)]
    assert outcome.steps == {"weights": "failed", "aggregates": "skipped"}
    en = closing.translated_steps(outcome, translator("en", ("monitoring",)))
    assert en[0]["messages"] == [
        "4 of 8 invitations completed; 4 started without finishing.",
        "Stratum S02 has no respondents.",
        "Not computed: stratum 'S02' has no respondents"]
    zh = closing.translated_steps(outcome, translator("zh-CN", ("monitoring",)))
    assert zh[0]["messages"][1] == "层 S02 没有受访者。"
    monitoring_demo.expire_all()
    assert monitoring_demo.get(Campaign, campaign.id).status == "closed"


def test_close_warns_of_empty_stratum_and_withheld(make_campaign, monitoring_demo) -> None:
    campaign = make_campaign(survey_code=None)
    _completes(monitoring_demo, campaign, empty="S02")
    outcome = closing.close_campaign(monitoring_demo, campaign, ACTOR, monitoring_demo)
    assert not outcome.failed
    weights = outcome.step("weights")
    assert weights.outcome == "warning"
    assert closing.EMPTY_STRATUM in weights.messages
    said = dict(zip(weights.messages, [m.mapping for m in weights.messages]))
    assert said[closing.EMPTY_STRATUM] == {"stratum": "S02", "donor": "S01"}
    assert closing.NO_MARGIN in weights.messages  # the test database has no margin
    aggregates = outcome.step("aggregates")
    assert aggregates.messages[0] == closing.AGGREGATES_DONE
    assert aggregates.messages[0].mapping["n"] == 4
    # 4 respondents: results withheld, said with their share (not a warning: it is how
    # small cells are published)
    assert aggregates.outcome == "ok" and aggregates.messages[1] == closing.WITHHELD
    mapping = aggregates.messages[1].mapping
    assert 0.5 < mapping["withheld"] / mapping["rows"] <= 1
    assert mapping["share"] == f"{100 * mapping['withheld'] / mapping['rows']:.0f}%"


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
    # no population margin here: the weights are uncalibrated, which is a warning
    assert outcome.steps["weights"] == "warning" and not outcome.failed
    assert outcome.step("weights").messages[-2:] == [closing.NO_MARGIN,
                                                     closing.WEIGHTS_DONE]
    assert calls.get("finished_sessions", 0) <= 1 and calls.get("campaign_responses", 0) <= 1
    assert calls.get("finished_answers", 0) <= 1 and calls.get("response_surveys", 0) <= 1
    assert calls.get("finished_invitations", 0) == 0
    assert calls.get("refresh_statuses", 0) == 1
