"""Issue 16: a resident withdraws from their own survey link (HTML without JavaScript, and
the API): every answer deleted, the session ended, audited, and the link then says so.
Also: survey answers outside their choices are refused (the survey's part of finding 1)."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from learningcity.models import AuditEvent
from surveys import services
from surveys.models import SurveyAnswer, SurveyScaleScore, SurveySession

from .conftest import FULL
from .test_api import BASE, post_page, start
from .test_services import full_answers, walk


def test_withdraw_a_finished_survey_from_its_done_page(testapp: Any, surveys_demo: Any
                                                       ) -> None:
    db = surveys_demo
    session, token = services.start_survey_session(db, campaign="CA", invitation="INV1",
                                                   district="D01")
    walk(db, session, full_answers(trained=True))
    services.finish(db, session)
    db.commit()
    assert db.scalar(sa.select(sa.func.count(SurveyAnswer.id))) > 5
    assert db.scalar(sa.select(sa.func.count(SurveyScaleScore.id))) > 0
    done = testapp.get(f"/s/{token}/done")
    link = done.html.find("a", href=f"/s/{token}/withdraw")
    assert link is not None and link.text == "撤回我的问卷回答"
    confirm = testapp.get(link["href"])
    assert "<script" not in confirm.text and "已经发布的群体结果" in confirm.text
    page = confirm.forms[0].submit(status=303).follow()
    assert "您的数据已撤回" in page.text
    db.expire_all()
    row = db.get(SurveySession, session.id)
    assert row.status == "withdrawn" and row.test_session_id is None
    assert row.campaign == "CA"  # fieldwork counts the invitation as withdrawn
    assert db.scalar(sa.select(sa.func.count(SurveyAnswer.id))) == 0
    assert db.scalar(sa.select(sa.func.count(SurveyScaleScore.id))) == 0
    assert services.responses_for_export(db, "learning_needs")[3] == []  # not exported
    event = db.scalar(sa.select(AuditEvent).where(AuditEvent.action == "resident.withdraw"))
    assert event.actor == "resident" and event.target == f"survey_session:{session.id}"
    assert event.detail["kind"] == "survey" and event.detail["answers_deleted"] > 5
    assert "志愿者" not in str(event.detail)
    assert "/s/" in testapp.get(f"/s/{token}/done", status=303).location
    assert "Your data was withdrawn" in testapp.get(f"/s/{token}?lang=en").text


def test_withdraw_during_the_survey_through_the_api(testapp: Any, surveys_demo: Any) -> None:
    token, state = start(testapp)
    page = testapp.get(f"/s/{token}")
    assert f'href="/s/{token}/withdraw"' in page.text
    state = post_page(testapp, token, state, {}).json
    post_page(testapp, token, state, FULL["background"])
    res = testapp.post_json(f"{BASE}/{token}/withdraw", {})
    assert res.json["status"] == "withdrawn" and res.json["answers_deleted"] >= 6
    again = testapp.post_json(f"{BASE}/{token}/withdraw", {})
    assert again.json == {"status": "withdrawn", "answers_deleted": 0}
    assert testapp.get(f"{BASE}/{token}").json["status"] == "withdrawn"
    surveys_demo.expire_all()
    assert surveys_demo.scalar(sa.select(sa.func.count(SurveyAnswer.id))) == 0
    assert "/survey-sessions/{token}/withdraw" in testapp.get("/api/v1/openapi.json").json[
        "paths"]


def test_survey_answers_outside_their_choices_are_refused(testapp: Any,
                                                           surveys_demo: Any) -> None:
    token, state = start(testapp)
    state = post_page(testapp, token, state, {}).json
    for field, bad in (("district", "Z99"), ("age_band", "61"), ("sex", "nonsense")):
        res = post_page(testapp, token, state, {**FULL["background"], field: bad},
                        status=422)
        assert [d["name"] for d in res.json["details"]] == [field]
    surveys_demo.expire_all()
    assert surveys_demo.scalar(sa.select(sa.func.count(SurveyAnswer.id))) == 0
