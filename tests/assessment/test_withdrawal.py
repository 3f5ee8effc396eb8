"""Issue 16: a resident withdraws from their own test link (HTML without JavaScript, and
the API): answers deleted, background cleared, the session ended, audited, and the link
then says the data was withdrawn."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from assessment import services
from assessment.models import Answer, TestSession
from learningcity.models import AuditEvent
from tests.monitoring.entry_support import finish_test

BACKGROUND = {"age_band": "60-69", "district": "D01", "street": "和平街 12 号",
              "education": "senior"}


def _start(testapp: Any) -> tuple[str, dict]:
    res = testapp.post_json("/api/v1/sessions", {"consent": True, "background": BACKGROUND},
                            status=201)
    return res.json["token"], res.json


def _answer(testapp: Any, token: str, step: dict) -> dict:
    item = step["item"]
    return testapp.post_json(f"/api/v1/sessions/{token}/answers", {
        "position": item["position"], "version": item["version"], "choice": 1}).json


def test_withdraw_from_the_result_page_without_javascript(testapp: Any, demo: Any,
                                                          staff: Any) -> None:
    token, _step = _start(testapp)
    assert finish_test(testapp, token)["status"] == "finished"
    session_id = demo.scalar(sa.select(TestSession.id))
    assert demo.scalar(sa.select(sa.func.count(Answer.id))) > 0
    result = testapp.get(f"/t/{token}/result")
    link = result.html.find("a", href=f"/t/{token}/withdraw")
    assert link is not None and link.text == "撤回我的数据"
    confirm = testapp.get(link["href"])
    assert "<script" not in confirm.text
    assert "已经发布的群体结果" in confirm.text  # published aggregates stay
    res = confirm.forms[0].submit(status=303)  # a plain form post with the CSRF token
    page = res.follow()
    assert "您的数据已撤回" in page.text
    assert "Your data was withdrawn" in testapp.get(f"/t/{token}?lang=en").text
    english = testapp.get(f"/t/{token}/withdraw").follow()  # done: the withdrawn page
    assert "Your answers to this test and your background answers have been deleted" in \
        english.text
    demo.expire_all()
    session = demo.get(TestSession, session_id)
    assert session.status == "withdrawn" and session.background == {}
    assert session.score is None and session.theta is None and session.engine_state == {}
    assert demo.scalar(sa.select(sa.func.count(Answer.id))) == 0
    # the result is gone; the test cannot be resumed
    assert "/t/" in testapp.get(f"/t/{token}/result", status=303).location
    assert testapp.get(f"/api/v1/sessions/{token}").json["status"] == "withdrawn"
    testapp.get(f"/api/v1/sessions/{token}/result", status=409)
    event = demo.scalar(sa.select(AuditEvent).where(AuditEvent.action == "resident.withdraw"))
    assert event.actor == "resident" and event.target == f"test_session:{session_id}"
    assert set(event.detail) == {"kind", "answers_deleted", "bank_copies_deleted"}
    assert event.detail["answers_deleted"] > 0 and event.address == ""
    assert "和平街" not in str(event.detail) and "60-69" not in str(event.detail)


def test_withdraw_without_the_csrf_token_changes_nothing(testapp: Any, demo: Any) -> None:
    token, step = _start(testapp)
    _answer(testapp, token, step)
    res = testapp.post(f"/t/{token}/withdraw", {}, status="*")
    assert res.status_int in (400, 403)
    demo.expire_all()
    assert demo.scalar(sa.select(TestSession.status)) == "testing"
    assert demo.scalar(sa.select(sa.func.count(Answer.id))) == 1


def test_withdraw_during_the_test_through_the_api(testapp: Any, demo: Any,
                                                  monkeypatch: Any) -> None:
    forgotten: list[list[str]] = []

    def forget_respondents(db: Any, respondents: list[str], *, dry_run: bool = False) -> int:
        forgotten.append(list(respondents))
        return len(respondents)

    monkeypatch.setattr(services.bank, "forget_respondents", forget_respondents)
    token, step = _start(testapp)
    english = testapp.get(f"/t/{token}/withdraw?lang=en")
    assert "Group results that were already published" in english.text
    step = _answer(testapp, token, step)
    page = testapp.get(f"/t/{token}")  # an item page offers the withdrawal too
    assert f'href="/t/{token}/withdraw"' in page.text
    res = testapp.post_json(f"/api/v1/sessions/{token}/withdraw", {})
    assert res.json == {"status": "withdrawn", "answers_deleted": 1}
    session_id = demo.scalar(sa.select(TestSession.id))
    assert forgotten == [[f"t{session_id}"]]  # the item bank's copies of the answers
    again = testapp.post_json(f"/api/v1/sessions/{token}/withdraw", {})
    assert again.json == {"status": "withdrawn", "answers_deleted": 0}
    assert len(forgotten) == 1
    refused = testapp.post_json(f"/api/v1/sessions/{token}/answers", {
        "position": step["item"]["position"], "version": step["item"]["version"],
        "choice": 1}, status=409)
    assert refused.json["error"] == "not_testing"
    assert demo.scalar(sa.select(sa.func.count(Answer.id))) == 0
    assert demo.scalar(sa.select(sa.func.count(AuditEvent.id)).where(
        AuditEvent.action == "resident.withdraw")) == 1
    spec = testapp.get("/api/v1/openapi.json").json
    assert "post" in spec["paths"]["/sessions/{token}/withdraw"]


def test_withdraw_is_offered_on_the_background_form(testapp: Any, demo: Any) -> None:
    token = testapp.post_json("/api/v1/sessions", {"consent": True}, status=201).json["token"]
    page = testapp.get(f"/t/{token}")
    assert page.html.find("a", href=f"/t/{token}/withdraw") is not None
