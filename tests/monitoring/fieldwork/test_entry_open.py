"""Open-enrolment campaigns: residents join through the public link up to stratum quotas,
their stratum taken from their answers, and keep a code to resume."""
from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from assessment.models import TestSession
from monitoring.fieldwork.models import Campaign, CampaignStratum, Invitation


@pytest.fixture
def open_campaign(drawn_campaign: Any, monitoring_demo: Any) -> Campaign:
    return drawn_campaign(mode="open")


def _join(testapp: Any, campaign: Campaign, answers: dict[str, str], status: int = 200
          ) -> Any:
    form = testapp.get(f"/join/{campaign.code}").forms[0]
    for name, value in answers.items():
        form[name] = value
    form["consent"] = "yes"
    return form.submit(status=status)


def test_the_join_page_asks_the_stratum_questions(testapp: Any, open_campaign: Campaign
                                                  ) -> None:
    page = testapp.get(f"/join/{open_campaign.code}")
    form = page.forms[0]
    assert {"street", "age_band", "consent"} <= set(form.fields)
    assert "<script" not in page.text
    assert 'value="60+"' in page.text and 'value="S03"' in page.text


def test_joining_enrols_into_the_answered_stratum_and_starts_the_test(
        testapp: Any, open_campaign: Campaign, monitoring_demo: Any) -> None:
    res = _join(testapp, open_campaign, {"street": "S02", "age_band": "60+"})
    code = res.html.select_one(".code-shown strong").text.strip()
    monitoring_demo.expire_all()
    inv = monitoring_demo.scalar(sa.select(Invitation))
    assert inv.stratum.startswith("S02") and "60+" in inv.stratum
    assert inv.pi is None and inv.status == "started"
    assert inv.prefill["street"] == "S02"
    session = monitoring_demo.scalar(sa.select(TestSession))
    assert session.invitation == inv.public_id and session.campaign == open_campaign.code
    link = res.html.select_one("a.button")["href"]
    assert "/t/" in link
    # the code shown resumes the same session
    again = testapp.get(f"/i/{code}", status=303)
    assert again.location.endswith(link)


def test_a_full_stratum_takes_no_more(testapp: Any, open_campaign: Campaign,
                                      monitoring_demo: Any) -> None:
    for s in monitoring_demo.scalars(sa.select(CampaignStratum)):
        if s.values.get("street") == "S01":
            s.quota = 0
    monitoring_demo.commit()
    page = _join(testapp, open_campaign, {"street": "S01", "age_band": "18-39"}, status=409)
    assert "code-shown" not in page.text and "consent" not in page.text
    assert monitoring_demo.scalar(sa.select(sa.func.count(Invitation.id))) == 0
    _join(testapp, open_campaign, {"street": "S02", "age_band": "18-39"}, status=200)


def test_missing_answers_or_consent_enrol_nobody(testapp: Any, open_campaign: Campaign,
                                                 monitoring_demo: Any) -> None:
    form = testapp.get(f"/join/{open_campaign.code}").forms[0]
    form["street"] = "S01"
    form["age_band"] = "18-39"
    form.submit(status=400)  # no consent
    testapp.post(f"/join/{open_campaign.code}",
                 {"csrf_token": form["csrf_token"].value, "consent": "yes",
                  "street": "S99"}, status=400)
    assert monitoring_demo.scalar(sa.select(sa.func.count(Invitation.id))) == 0


def test_closed_or_sample_campaigns_have_no_join_link(
        testapp: Any, open_campaign: Campaign, make_campaign: Any,
        monitoring_demo: Any) -> None:
    sample = make_campaign()
    testapp.get(f"/join/{sample.code}", status=404)
    testapp.get("/join/NOPE", status=404)
    campaign = monitoring_demo.get(Campaign, open_campaign.id)
    campaign.status = "closed"
    monitoring_demo.commit()
    testapp.get(f"/join/{open_campaign.code}", status=409)


def test_open_campaign_weights_carry_the_stratum_population(
        testapp: Any, open_campaign: Campaign, monitoring_demo: Any) -> None:
    from monitoring.results.weighting import compute_weights

    _join(testapp, open_campaign, {"street": "S02", "age_band": "60+"})
    _join(testapp, open_campaign, {"street": "S02", "age_band": "60+"})
    monitoring_demo.expire_all()
    invs = monitoring_demo.scalars(sa.select(Invitation)).all()
    invs[0].status = "completed"
    monitoring_demo.commit()
    campaign = monitoring_demo.get(Campaign, open_campaign.id)
    stratum = monitoring_demo.scalar(sa.select(CampaignStratum).where(
        CampaignStratum.stratum == invs[0].stratum))
    run = compute_weights(monitoring_demo, campaign, "tester")
    weights = {w.invitation_id: w for w in run.weights}
    assert weights[invs[0].id].w_design == pytest.approx(stratum.population / 2)
    assert weights[invs[0].id].weight == pytest.approx(stratum.population)
    assert weights[invs[1].id].weight == 0


def test_one_address_cannot_enrol_without_limit(testapp: Any, open_campaign: Campaign,
                                                monitoring_demo: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from monitoring.fieldwork import entry

    monkeypatch.setattr(entry, "ENROL_LIMIT", 2)
    for _ in range(2):
        _join(testapp, open_campaign, {"street": "S02", "age_band": "40-59"})
    page = _join(testapp, open_campaign, {"street": "S02", "age_band": "40-59"}, status=429)
    assert int(page.headers["Retry-After"]) > 0
    assert monitoring_demo.scalar(sa.select(sa.func.count(Invitation.id))) == 2
