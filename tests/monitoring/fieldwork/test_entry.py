"""Residents entering with invitation codes: look-up, resume, refusals, throttling, window,
the session gate inside the test, and the redeem API."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from assessment.models import Answer, TestSession
from learningcity.models import AuditEvent, ThrottleCounter
from monitoring.fieldwork import entry
from monitoring.fieldwork.invitations import format_code
from monitoring.fieldwork.models import Campaign, Invitation
from tests.conftest import TEST_SECRET

from ..entry_support import ready_campaign

FULL_PREFILL = {"age_band": "60-69", "sex": "female", "occupation": "retired",
                "education": "senior", "street": "S01"}


@pytest.fixture
def codes(make_campaign: Any, monitoring_demo: Any) -> list[tuple[str, Invitation]]:
    campaign = make_campaign(survey_code=None)
    return ready_campaign(monitoring_demo, campaign, {
        "S01": (100.0, [FULL_PREFILL, {"age_band": "18-29", "sex": "nonsense"}]),
        "S02": (50.0, [{"age_band": "30-44"}])})


def _fresh(db: Any, model: Any, **where: Any) -> Any:
    db.expire_all()
    return db.scalar(sa.select(model).filter_by(**where))


def test_the_code_form_works_without_javascript(testapp: Any, codes: Any) -> None:
    page = testapp.get("/i")
    form = page.forms[0]
    assert form.method.lower() == "post" and "code" in form.fields
    assert "<script" not in page.text
    code = codes[0][0]
    form["code"] = code.lower().replace("-", " ")  # typed sloppily
    res = form.submit(status=303)
    assert res.location.endswith("/i/" + format_code(code))
    empty = testapp.get("/i").forms[0].submit(status=400)
    assert "code-input" in empty.text


def test_valid_code_asks_consent_then_starts_the_test_with_prefill(
        testapp: Any, codes: Any, monitoring_demo: Any) -> None:
    code, invitation = codes[0]
    welcome = testapp.get(f"/i/{code}", status=200)
    assert "Spring survey" in welcome.text
    assert _fresh(monitoring_demo, TestSession) is None  # a GET starts nothing
    form = welcome.forms[0]
    refused = form.submit(status=400)  # no consent ticked
    assert _fresh(monitoring_demo, TestSession) is None
    form = refused.forms[0]
    form["consent"] = "yes"
    res = form.submit(status=303)
    assert "/t/" in res.location
    session = _fresh(monitoring_demo, TestSession)
    assert session.campaign == invitation_campaign_code(monitoring_demo, invitation)
    assert session.invitation == invitation.public_id
    assert session.background["age_band"] == "60-69"
    assert session.background["district"] == "A"
    assert session.status == "testing"  # every background question the test asks was known
    inv = _fresh(monitoring_demo, Invitation, public_id=invitation.public_id)
    assert inv.status == "started" and inv.first_used_at is not None
    assert inv.test_session_id == session.id


def invitation_campaign_code(db: Any, invitation: Invitation) -> str:
    return db.scalar(sa.select(Campaign.code).where(Campaign.id == invitation.campaign_id))


def test_partial_prefill_keeps_the_background_form_with_valid_values_only(
        testapp: Any, codes: Any, monitoring_demo: Any) -> None:
    code, _inv = codes[1]  # age band known, sex invalid, occupation unknown
    form = testapp.get(f"/i/{code}").forms[0]
    form["consent"] = "yes"
    res = form.submit(status=303)
    session = _fresh(monitoring_demo, TestSession)
    assert session.status == "background"
    assert session.background == {"age_band": "18-29", "district": "A"}
    page = res.follow()
    assert 'value="18-29"' in page.text


def test_entering_the_same_code_again_resumes_at_the_same_place(
        testapp: Any, wsgi_app: Any, codes: Any, monitoring_demo: Any) -> None:
    import webtest

    code, _inv = codes[0]
    form = testapp.get(f"/i/{code}").forms[0]
    form["consent"] = "yes"
    first = form.submit(status=303).location
    token = first.rsplit("/", 1)[1]
    step = testapp.get(f"/api/v1/sessions/{token}").json
    for _ in range(3):
        item = step["item"]
        step = testapp.post_json(f"/api/v1/sessions/{token}/answers", {
            "position": item["position"], "version": item["version"], "choice": 1}).json
    other = webtest.TestApp(wsgi_app, extra_environ={"REMOTE_ADDR": "10.0.0.9"})
    again = other.get(f"/i/{code.lower()}", status=303)  # another phone, typed in lower case
    assert again.location == first
    assert other.get(f"/api/v1/sessions/{token}").json == step
    # consenting twice does not start a second session
    twice = other.post(f"/i/{code}", {"consent": "yes", "csrf_token": _csrf(other)},
                       status=303)
    assert twice.location == first
    assert monitoring_demo.scalar(sa.select(sa.func.count(TestSession.id))) == 1
    redeemed = other.post_json("/api/v1/invitations/redeem", {"code": code}).json
    assert redeemed["test_session"]["token"] == token
    assert redeemed["next"] == "test" and redeemed["status"] == "started"
    assert monitoring_demo.scalar(sa.select(sa.func.count(TestSession.id))) == 1


def test_tokens_are_derived_from_the_code_and_the_secret_only() -> None:
    a = entry.derived_token("s" * 40, "K7Q2-M9XD-4HT3P", "test")
    assert a == entry.derived_token("s" * 40, "k7q2 m9xd 4ht3p", "test")
    assert a != entry.derived_token("t" * 40, "K7Q2-M9XD-4HT3P", "test")
    assert a != entry.derived_token("s" * 40, "K7Q2-M9XD-4HT3P", "survey")
    assert len(a) >= 43


def test_wrong_and_void_codes_get_the_same_404_and_are_audited_without_the_code(
        testapp: Any, codes: Any, monitoring_demo: Any) -> None:
    void_code, void_inv = codes[2]
    inv = _fresh(monitoring_demo, Invitation, public_id=void_inv.public_id)
    inv.status = "void"
    monitoring_demo.commit()
    wrong = "ZZZZ-ZZZZ-ZZZZZ"
    unknown = testapp.get(f"/i/{wrong}", status=404)
    void = testapp.get(f"/i/{void_code}", status=404)
    strip = lambda text: text.replace(wrong, "").replace(void_code, "")  # noqa: E731
    assert strip(unknown.text) == strip(void.text)
    api = testapp.post_json("/api/v1/invitations/redeem", {"code": void_code}, status=404)
    assert api.json["error"] == "not_found"
    events = monitoring_demo.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "invitation_failed")).all()
    assert len(events) == 3
    for event in events:
        assert event.address == "127.0.0.1"
        blob = f"{event.target} {event.detail} {event.actor}".upper()
        assert "ZZZZ" not in blob and void_code.replace("-", "") not in blob.replace("-", "")
    assert _fresh(monitoring_demo, TestSession) is None


def test_a_code_not_found_keeps_what_was_typed(testapp: Any, codes: Any) -> None:
    """"Type the code again" brings back the typed code, so one wrong letter is one fix."""
    form = testapp.get("/i").forms[0]
    form["code"] = "zzzz zzzz zzzz9"
    page = form.submit().follow(status=404)
    again = page.click(href=r"/i\?code=").forms[0]
    assert again["code"].value == "ZZZZ-ZZZZ-ZZZZ9"


def test_many_wrong_codes_lock_the_address_out_even_for_a_valid_code(
        testapp: Any, wsgi_app: Any, codes: Any, monitoring_demo: Any) -> None:
    import webtest

    code, _inv = codes[0]
    for k in range(entry.THROTTLE_LIMIT):
        testapp.get(f"/i/WRONG{k:02d}", status=404)
    page = testapp.get(f"/i/{code}", status=429)
    wait = int(page.headers["Retry-After"])
    assert 0 < wait <= entry.CODE_POLICY.base_s + 1
    assert "code-input" not in page.text
    api = testapp.post_json("/api/v1/invitations/redeem", {"code": code, "consent": True},
                            status=429)
    assert api.json["error"] == "throttled" and "Retry-After" in api.headers
    assert _fresh(monitoring_demo, TestSession) is None
    other = webtest.TestApp(wsgi_app, extra_environ={"REMOTE_ADDR": "10.1.1.1"})
    other.get(f"/i/{code}", status=200)  # another address is not affected
    # once the wait is over the right code works again
    monitoring_demo.execute(sa.update(ThrottleCounter).values(
        next_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    monitoring_demo.commit()
    testapp.get(f"/i/{code}", status=200)


def test_code_delays_double_per_address_and_leak_away(monitoring_demo: Any) -> None:
    db = monitoring_demo
    now = dt.datetime(2027, 3, 1, 8, 0, tzinfo=dt.UTC)

    def refusal(address: str, at: dt.datetime) -> entry.EntryRefused:
        """What one wrong code at ``at`` gets (committed, as a request would be)."""
        with pytest.raises(entry.EntryRefused) as refused:
            entry.lookup(db, "WRONG", address, at, secret=TEST_SECRET)
        db.commit()
        return refused.value

    for k in range(entry.THROTTLE_LIMIT):
        assert refusal("1.2.3.4", now + dt.timedelta(seconds=k)).status == 404
    then = now + dt.timedelta(seconds=entry.THROTTLE_LIMIT - 1)
    refused = refusal("1.2.3.4", then)
    assert (refused.status, refused.retry_after) == (429, 1)
    assert refusal("5.6.7.8", then).status == 404  # another address is not affected
    # each further failure doubles the wait: 1 s, 2 s, 4 s
    for expected in (2, 4):
        then += dt.timedelta(seconds=expected // 2)
        assert refusal("1.2.3.4", then).status == 404
        refused = refusal("1.2.3.4", then)
        assert (refused.status, refused.retry_after) == (429, expected)
    # an hour of quiet forgives every failure (one a minute)
    later = then + dt.timedelta(hours=1)
    assert [refusal("1.2.3.4", later).status for _ in range(entry.THROTTLE_LIMIT)] \
        == [404] * entry.THROTTLE_LIMIT


def _set_window(db: Any, invitation: Invitation, opens: dt.datetime, closes: dt.datetime
                ) -> None:
    campaign = db.get(Campaign, invitation.campaign_id)
    campaign.opens_at, campaign.closes_at = opens, closes
    db.commit()


@pytest.mark.parametrize("when", ["before", "after", "closed"])
def test_outside_the_window_nothing_is_accepted(
        when: str, testapp: Any, codes: Any, monitoring_demo: Any) -> None:
    code, invitation = codes[0]
    now = dt.datetime.now(dt.UTC)
    if when == "before":
        _set_window(monitoring_demo, invitation, now + dt.timedelta(days=2),
                    now + dt.timedelta(days=9))
    elif when == "after":
        _set_window(monitoring_demo, invitation, now - dt.timedelta(days=9),
                    now - dt.timedelta(minutes=1))
    else:
        campaign = monitoring_demo.get(Campaign, invitation.campaign_id)
        campaign.status = "closed"
        monitoring_demo.commit()
    page = testapp.get(f"/i/{code}", status=409)
    assert "consent" not in page.text
    testapp.post(f"/i/{code}", {"consent": "yes", "csrf_token": _csrf(testapp)}, status=409)
    api = testapp.post_json("/api/v1/invitations/redeem", {"code": code, "consent": True},
                            status=409)
    expected = "not_yet_open" if when == "before" else "campaign_closed"
    assert api.json["error"] == expected
    assert {"opens_at", "closes_at"} <= set(api.json["details"][0])
    assert _fresh(monitoring_demo, TestSession) is None
    assert _fresh(monitoring_demo, Invitation, public_id=invitation.public_id).status == "issued"


def _csrf(testapp: Any) -> str:
    return testapp.get("/i").forms[0]["csrf_token"].value


def test_the_window_is_kept_in_beijing_time() -> None:
    from monitoring.fieldwork.window import parse_local

    campaign = Campaign(code="X", district_code="A", name="x", status="ready",
                        timezone="Asia/Shanghai",
                        opens_at=parse_local("2027-03-01 08:00"),
                        closes_at=parse_local("2027-03-31 23:59"))
    entry.check_window(campaign, dt.datetime(2027, 3, 31, 15, 58, tzinfo=dt.UTC))
    with pytest.raises(entry.EntryRefused) as refused:
        entry.check_window(campaign, dt.datetime(2027, 3, 31, 16, 0, tzinfo=dt.UTC))
    assert refused.value.code == "campaign_closed"
    with pytest.raises(entry.EntryRefused) as early:  # 07:59 Beijing = 23:59 UTC the day before
        entry.check_window(campaign, dt.datetime(2027, 2, 28, 23, 59, tzinfo=dt.UTC))
    assert early.value.code == "not_yet_open"
    entry.check_window(campaign, dt.datetime(2027, 3, 1, 0, 0, tzinfo=dt.UTC))


def test_a_session_whose_campaign_closed_accepts_no_answer(
        testapp: Any, codes: Any, monitoring_demo: Any) -> None:
    code, invitation = codes[0]
    started = testapp.post_json("/api/v1/invitations/redeem",
                                {"code": code, "consent": True, "locale": "en"}).json
    token = started["test_session"]["token"]
    step = testapp.get(f"/api/v1/sessions/{token}").json
    item = step["item"]
    campaign = monitoring_demo.get(Campaign, invitation.campaign_id)
    campaign.status = "closed"
    monitoring_demo.commit()
    body = {"position": item["position"], "version": item["version"], "choice": 1}
    res = testapp.post_json(f"/api/v1/sessions/{token}/answers", body, status=409)
    assert res.json["error"] == "campaign_closed"
    page = testapp.get(f"/t/{token}")
    form = page.forms[0]
    form["choice"] = "1"
    refused = form.submit(status=409)
    assert "不再接受作答" in refused.text  # the gate's message (zh_CN is the default)
    assert monitoring_demo.scalar(sa.select(sa.func.count(Answer.id))) == 0
    # reopened (window still open): answers are accepted again
    campaign = monitoring_demo.get(Campaign, invitation.campaign_id)
    campaign.status = "ready"
    monitoring_demo.commit()
    testapp.post_json(f"/api/v1/sessions/{token}/answers", body, status=200)
    assert monitoring_demo.scalar(sa.select(sa.func.count(Answer.id))) == 1


def test_background_post_is_gated_too(testapp: Any, codes: Any, monitoring_demo: Any) -> None:
    code, invitation = codes[1]
    token = testapp.post_json("/api/v1/invitations/redeem",
                              {"code": code, "consent": True}).json["test_session"]["token"]
    _set_window(monitoring_demo, invitation, dt.datetime.now(dt.UTC) - dt.timedelta(days=3),
                dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    res = testapp.post_json(f"/api/v1/sessions/{token}/background", {"sex": "male"},
                            status=409)
    assert res.json["error"] == "campaign_closed"
    assert "sex" not in _fresh(monitoring_demo, TestSession).background


def test_sessions_outside_campaigns_are_not_gated(testapp: Any, monitoring_demo: Any) -> None:
    res = testapp.post_json("/api/v1/sessions", {"consent": True, "background": {
        "age_band": "30-44", "district": "A", "occupation": "farmer", "education": "junior"}},
        status=201)
    item = res.json["item"]
    testapp.post_json(f"/api/v1/sessions/{res.json['token']}/answers", {
        "position": 1, "version": item["version"], "choice": 1}, status=200)
    assert entry.campaign_gate(monitoring_demo, None) is None
    assert entry.campaign_gate(monitoring_demo, "NO-SUCH") is None


def test_redeem_api_shapes(testapp: Any, codes: Any, monitoring_demo: Any) -> None:
    code, _invitation = codes[0]
    no_consent = testapp.post_json("/api/v1/invitations/redeem", {"code": code}, status=400)
    assert no_consent.json["error"] == "consent_required"
    bad = testapp.post_json("/api/v1/invitations/redeem", {"code": code, "extra": 1},
                            status=400)
    assert bad.json["error"] == "invalid_request"
    res = testapp.post_json("/api/v1/invitations/redeem",
                            {"code": code, "locale": "en", "consent": True}).json
    assert res["instruments"] == ["test"]
    assert res["campaign"]["district"] == "A" and res["campaign"]["closes_at"].endswith("Z")
    assert res["survey_session"] is None
    assert res["test_session"]["url"].endswith("/t/" + res["test_session"]["token"])
    assert res["status"] == "started" and res["next"] == "test"
    session = _fresh(monitoring_demo, TestSession)
    assert session.locale == "en"
    spec = testapp.get("/api/v1/openapi.json").json
    assert "/invitations/redeem" in spec["paths"]


def test_status_becomes_completed_when_every_instrument_is_finished(
        testapp: Any, codes: Any, monitoring_demo: Any) -> None:
    from ..entry_support import finish_test

    code, invitation = codes[0]
    token = testapp.post_json("/api/v1/invitations/redeem",
                              {"code": code, "consent": True}).json["test_session"]["token"]
    finish_test(testapp, token)
    campaign = monitoring_demo.get(Campaign, invitation.campaign_id)
    assert entry.refresh_statuses(monitoring_demo, campaign) == 1
    monitoring_demo.commit()
    inv = _fresh(monitoring_demo, Invitation, public_id=invitation.public_id)
    assert inv.status == "completed" and inv.completed_at is not None
    page = testapp.get(f"/i/{code}", status=200)
    assert f"/t/{token}/result" in page.text
    again = testapp.post_json("/api/v1/invitations/redeem", {"code": code}).json
    assert again["status"] == "completed" and again["next"] == "done"


def test_a_withdrawn_test_makes_a_completed_invitation_a_non_respondent_until_close(
        testapp: Any, codes: Any, monitoring_demo: Any) -> None:
    """A resident withdraws after finishing: the unit no longer counts as responding, so
    the weights and the respondent table cannot carry a respondent without answers."""
    from ..entry_support import finish_test

    code, invitation = codes[0]
    token = testapp.post_json("/api/v1/invitations/redeem",
                              {"code": code, "consent": True}).json["test_session"]["token"]
    finish_test(testapp, token)
    campaign = monitoring_demo.get(Campaign, invitation.campaign_id)
    entry.refresh_statuses(monitoring_demo, campaign)
    monitoring_demo.commit()
    assert _fresh(monitoring_demo, Invitation, public_id=invitation.public_id).status == \
        "completed"
    testapp.post_json(f"/api/v1/sessions/{token}/withdraw", {})
    campaign = monitoring_demo.get(Campaign, invitation.campaign_id)
    assert entry.refresh_statuses(monitoring_demo, campaign) == 1
    monitoring_demo.commit()
    inv = _fresh(monitoring_demo, Invitation, public_id=invitation.public_id)
    assert (inv.status, inv.completed_at) == ("started", None)
    assert entry.refresh_statuses(monitoring_demo, campaign) == 0  # settled


def test_after_the_test_the_same_code_leads_to_the_survey(
        testapp: Any, make_campaign: Any, monitoring_demo: Any) -> None:
    from surveys import demo_content
    from surveys.models import SurveySession

    from ..entry_support import finish_test

    demo_content.load(monitoring_demo)
    monitoring_demo.commit()
    campaign = make_campaign()  # test + the default survey
    code, invitation = ready_campaign(monitoring_demo, campaign, {
        "S01": (10.0, [dict(FULL_PREFILL)])})[0]
    token = testapp.post_json("/api/v1/invitations/redeem",
                              {"code": code, "consent": True}).json["test_session"]["token"]
    assert testapp.get(f"/i/{code}", status=303).location.endswith(f"/t/{token}")
    finish_test(testapp, token)
    to_survey = testapp.get(f"/i/{code}", status=303).location
    assert "/s/" in to_survey
    survey = _fresh(monitoring_demo, SurveySession)
    assert survey.campaign == campaign.code and survey.invitation == invitation.public_id
    assert testapp.get(f"/i/{code}", status=303).location == to_survey  # same session again
    assert monitoring_demo.scalar(sa.select(sa.func.count(SurveySession.id))) == 1
    testapp.get(to_survey, status=200)
    inv = _fresh(monitoring_demo, Invitation, public_id=invitation.public_id)
    assert inv.status == "started" and inv.survey_session_id == survey.id


def test_a_survey_session_whose_campaign_closed_accepts_no_answer(
        testapp: Any, make_campaign: Any, monitoring_demo: Any) -> None:
    """The same gate holds inside the survey: pages and API refuse, nothing is stored."""
    from surveys import demo_content, services
    from surveys.models import SurveyAnswer

    demo_content.load(monitoring_demo)
    campaign = make_campaign(test_instrument=None)  # survey only
    _session, token = services.start_survey_session(
        monitoring_demo, "learning_needs", campaign=campaign.code, invitation="INV-X")
    monitoring_demo.commit()
    state = testapp.get(f"/api/v1/survey-sessions/{token}").json
    campaign = monitoring_demo.get(Campaign, campaign.id)
    campaign.status = "closed"
    monitoring_demo.commit()
    before = monitoring_demo.scalar(sa.select(sa.func.count(SurveyAnswer.id)))
    page = state["page"]["name"]
    res = testapp.post_json(f"/api/v1/survey-sessions/{token}/pages/{page}",
                            {"answers": {}, "revision": state["revision"]}, status=409)
    assert res.json["error"] == "campaign_closed"
    form = testapp.get(f"/s/{token}").forms[0]
    refused = form.submit(status=409)
    assert "不再接受作答" in refused.text
    monitoring_demo.expire_all()
    assert monitoring_demo.scalar(sa.select(sa.func.count(SurveyAnswer.id))) == before


def test_progress_counts_a_test_finished_through_the_pages(
        testapp: Any, codes: Any, monitoring_demo: Any) -> None:
    """A resident who finishes without re-entering the code counts as completed."""
    from monitoring.fieldwork.progress import campaign_progress

    from ..entry_support import finish_test

    code, invitation = codes[0]
    token = testapp.post_json("/api/v1/invitations/redeem",
                              {"code": code, "consent": True}).json["test_session"]["token"]
    finish_test(testapp, token)
    assert _fresh(monitoring_demo, Invitation, id=invitation.id).status == "started"
    campaign = monitoring_demo.get(Campaign, invitation.campaign_id)
    report = campaign_progress(monitoring_demo, campaign)
    assert sum(row.completed for row in report.rows) == 1


def test_a_campaign_closed_early_says_when_it_closed(
        testapp: Any, codes: Any, monitoring_demo: Any) -> None:
    """Closed before its window ended: the resident is told the close time, never the
    window's end still to come."""
    from monitoring import closing
    from monitoring.fieldwork.window import local_text

    code, invitation = codes[0]
    campaign = monitoring_demo.get(Campaign, invitation.campaign_id)
    closing.close_campaign(monitoring_demo, campaign, "tester")
    monitoring_demo.commit()
    closed_at = campaign.closed_at.replace(tzinfo=dt.UTC) if campaign.closed_at.tzinfo is None \
        else campaign.closed_at
    assert closed_at < campaign.closes_at.replace(tzinfo=dt.UTC)
    with pytest.raises(entry.EntryRefused) as refused:
        entry.check_window(campaign)
    assert refused.value.code == "campaign_closed"
    assert refused.value.ended_at == closed_at
    assert local_text(closed_at) in refused.value.message
    assert local_text(campaign.closes_at) not in refused.value.message
    api = testapp.post_json("/api/v1/invitations/redeem", {"code": code, "consent": True},
                            status=409)
    details = api.json["details"][0]
    assert details["ended_at"] == entry._iso(closed_at)
    assert details["closes_at"] == entry._iso(campaign.closes_at)  # the window as planned
