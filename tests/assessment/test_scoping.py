"""Finding 1 of issue 16: a test session belongs to its campaign's district, never to a
self-reported answer; background answers outside their choices are refused."""
# ruff: noqa: F811 (the monitoring fixtures are imported by name and used as parameters)
from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from assessment import services
from assessment.models import TestSession
from tests.monitoring.conftest import make_campaign, monitoring_demo  # noqa: F401
from tests.monitoring.entry_support import ready_campaign


@pytest.fixture
def invitation_a(make_campaign: Any, monitoring_demo: Any) -> str:
    """A code of a district-A campaign whose invitation leaves the background form to the
    resident (only the age band is known)."""
    campaign = make_campaign(district="A", survey_code=None)
    [(code, _inv)] = ready_campaign(monitoring_demo, campaign,
                                    {"S01": (10.0, [{"age_band": "60-69"}])})
    return code


def _redeem(testapp: Any, code: str) -> str:
    res = testapp.post_json("/api/v1/invitations/redeem", {"code": code, "consent": True})
    return res.json["test_session"]["token"]


def test_a_claimed_district_is_refused_and_does_not_move_the_session(
        testapp: Any, invitation_a: str, monitoring_demo: Any, login: Any) -> None:
    token = _redeem(testapp, invitation_a)
    assert testapp.get(f"/api/v1/sessions/{token}").json["status"] == "background"
    res = testapp.post_json(f"/api/v1/sessions/{token}/background",
                            {"district": "B", "education": "senior"}, status=400)
    assert res.json["error"] == "invalid_background"
    assert [d["name"] for d in res.json["details"]] == ["district"]
    assert "district" in res.json["message"]
    monitoring_demo.expire_all()
    session = monitoring_demo.scalar(sa.select(TestSession))
    assert session.district_code == "A" and session.status == "background"
    assert session.background.get("education") is None  # nothing stored
    # the campaign's district is the one accepted
    ok = testapp.post_json(f"/api/v1/sessions/{token}/background",
                           {"district": "A", "education": "senior", "street": "S01"})
    assert ok.json["status"] == "testing"
    testapp.reset()
    login("district_b", status=303)
    assert f"/staff/sessions/{session.id}" not in testapp.get("/staff/sessions").text
    testapp.get(f"/staff/sessions/{session.id}", status=404)
    testapp.reset()
    login("district_a", status=303)
    assert f"/staff/sessions/{session.id}" in testapp.get("/staff/sessions").text
    testapp.get(f"/staff/sessions/{session.id}", status=200)


@pytest.mark.parametrize("answers, field", [
    ({"sex": "nonsense"}, "sex"),
    ({"age_band": "61"}, "age_band"),
    ({"occupation": "spy"}, "occupation"),
    ({"education": "phd"}, "education"),
    ({"district": "Z99"}, "district"),
    ({"street": "x" * 65}, "street"),
    ({"street": "line\nbreak"}, "street"),
])
def test_background_answers_outside_their_choices_are_400_naming_the_field(
        testapp: Any, monitoring_demo: Any, staff: Any, answers: dict, field: str) -> None:
    from itembank.models import Instrument

    instrument = monitoring_demo.scalar(sa.select(Instrument).where(Instrument.code == "LLA"))
    instrument.blueprint = {**instrument.blueprint, "background": [
        "age_band", "sex", "district", "street", "occupation", "education"]}
    monitoring_demo.commit()
    kept = ("education", "senior") if field != "education" else ("sex", "female")
    token = testapp.post_json("/api/v1/sessions", {"consent": True}, status=201).json["token"]
    res = testapp.post_json(f"/api/v1/sessions/{token}/background",
                            {kept[0]: kept[1], **answers}, status=400)
    assert [d["name"] for d in res.json["details"]] == [field]
    # the same at start
    res = testapp.post_json("/api/v1/sessions", {"consent": True, "background": answers},
                            status=400)
    assert res.json["details"][0]["name"] == field
    # the HTML form: the error beside the field, the answers kept
    form = testapp.get(f"/t/{token}").forms[0]
    page = testapp.post(f"/t/{token}/background",
                        {"csrf_token": form["csrf_token"].value, kept[0]: kept[1],
                         **answers}, status=400)
    assert f'id="error-{field}"' in page.text
    assert f'value="{kept[1]}" checked' in page.text
    if field == "street":
        assert answers["street"].replace("\n", "&#10;")[:20] in page.text or \
            answers["street"][:20] in page.text
    monitoring_demo.expire_all()
    assert monitoring_demo.scalar(sa.select(TestSession.status)) == "background"


def test_sessions_without_a_campaign_are_for_city_staff_only(
        testapp: Any, monitoring_demo: Any, login: Any) -> None:
    token = testapp.post_json("/api/v1/sessions", {"consent": True, "background": {
        "district": "A", "age_band": "60-69"}}, status=201).json["token"]
    session = monitoring_demo.scalar(sa.select(TestSession))
    assert session.district_code is None and session.background["district"] == "A"
    login("district_a", status=303)
    assert f"/staff/sessions/{session.id}" not in testapp.get("/staff/sessions").text
    testapp.get(f"/staff/sessions/{session.id}", status=404)
    testapp.reset()
    login("admin", status=303)
    assert str(session.id) in testapp.get(f"/staff/sessions?q={token}").text
    testapp.get(f"/staff/sessions/{session.id}", status=200)


def test_the_item_bank_copy_of_an_answer_keeps_no_street(
        testapp: Any, monitoring_demo: Any, staff: Any) -> None:
    from itembank.models import ItemResponse

    start = testapp.post_json("/api/v1/sessions", {"consent": True, "background": {
        "district": "A", "age_band": "60-69", "street": "S01"}}, status=201).json
    item = start["item"]
    testapp.post_json(f"/api/v1/sessions/{start['token']}/answers",
                      {"position": item["position"], "version": item["version"],
                       "choice": 1})
    groups = monitoring_demo.scalar(sa.select(ItemResponse.groups))
    assert groups == {"district": "A", "age_band": "60-69"}
    assert services.calibration_groups({"street": "S", "sex": "male"}) == {"sex": "male"}


def test_opening_a_session_is_audited_with_the_staff_actor(
        testapp: Any, invitation_a: str, monitoring_demo: Any, login: Any) -> None:
    from learningcity.models import AuditEvent

    token = _redeem(testapp, invitation_a)
    testapp.post_json(f"/api/v1/sessions/{token}/background",
                      {"district": "A", "education": "senior", "street": "和平街"})
    session_id = monitoring_demo.scalar(sa.select(TestSession.id))
    testapp.reset()
    login("district_b", status=303)
    testapp.get(f"/staff/sessions/{session_id}", status=404)  # refused: not audited as seen
    testapp.reset()
    login("district_a", status=303)
    testapp.get(f"/staff/sessions/{session_id}", status=200)
    monitoring_demo.expire_all()
    events = monitoring_demo.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "assessment.session_view")).all()
    assert [(e.actor, e.target) for e in events] == [
        ("district_a", f"test_session:{session_id}")]
    assert events[0].detail == {"answers": 0, "scope": "A"}
    assert "和平街" not in str(events[0].detail)
