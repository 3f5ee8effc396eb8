"""The survey on phone pages, without JavaScript (WebTest): full paths, skips, errors,
resume, languages, and the link from the ability-test result."""
from __future__ import annotations

import re

import sqlalchemy as sa
import webtest

from surveys import services
from surveys.models import SurveyAnswer, SurveySession

from .conftest import FULL
from .test_services import MOT, SDL


def fill(form, values):
    """Set a WebTest form's fields from a dict (lists tick checkboxes)."""
    for name, value in values.items():
        if isinstance(value, list):
            for field in form.fields.get(name, []):
                field.checked = field._value in value
        else:
            form[name] = value
    return form


def page_name(res):
    return res.forms[0]["page"].value if res.forms and "page" in res.forms[0].fields else None


def start(testapp, lang="zh-CN"):
    res = testapp.get(f"/survey?lang={lang}")
    res = res.forms[0].submit().follow()
    token = res.request.path.rsplit("/", 1)[-1]
    return token, res


def submit(res, values=None):
    form = fill(res.forms[0], values or {})
    out = form.submit("action", value="next")
    return out.follow() if out.status_int == 303 else out


def test_full_path_in_chinese_and_answers_stored(testapp, surveys_demo, dbsession):
    token, res = start(testapp)
    assert "第 1 页，共 7 页" in res.text and page_name(res) == "intro"
    res = submit(res)
    assert page_name(res) == "background" and "（必答）" in res.text
    res = submit(res, FULL["background"])
    assert page_name(res) == "needs"
    res = submit(res, FULL["needs"])
    assert page_name(res) == "participation"
    assert "training_times" not in res.forms[0].fields  # not asked yet
    res = submit(res, {"community_training": "yes", "elder_education": "regular"})
    assert page_name(res) == "participation" and "training_times" in res.forms[0].fields
    assert "sat_content" in res.forms[0].fields
    res = submit(res, {"training_times": "１２", "training_last": "2026-03",
                       **{f"sat_{n}": "5" for n in ("content", "teacher", "time", "place",
                                                    "overall")}})
    assert page_name(res) == "why_learn"
    res = submit(res, MOT)
    res = submit(res, SDL)
    assert page_name(res) == "end" and "提交" in res.text
    res = submit(res, {"suggestions": "希望多开晚上的课"})
    assert res.request.path == f"/s/{token}/done" and "谢谢" in res.text
    session = dbsession.scalar(sa.select(SurveySession))
    answers = session.answer_dict()
    assert session.status == "finished"
    assert answers["training_times"] == 12 and answers["topics"] == ["health", "smart_devices"]
    assert answers["suggestions"] == "希望多开晚上的课"
    assert {s.scale for s in session.scores} == {"satisfaction", "motivation",
                                                  "self_directed"}


def test_follow_up_questions_on_the_same_page_are_announced(testapp, surveys_demo):
    """Next that adds questions to the page says why the page came back."""
    _token, res = start(testapp)
    res = submit(submit(submit(res), FULL["background"]), FULL["needs"])
    assert page_name(res) == "participation"
    assert "增加了下面的问题" not in res.text
    res = submit(res, {"community_training": "yes", "elder_education": "regular"})
    assert page_name(res) == "participation"
    assert "根据您的回答，增加了下面的问题" in res.text
    res = fill(res.forms[0], {"community_training": "yes"}).submit("action", value="next",
                                                                   status=400)
    assert "增加了下面的问题" not in res.text  # answers missing: the errors say why


def test_skip_path_in_english_never_shows_the_skipped_questions(testapp, surveys_demo,
                                                                dbsession):
    _token, res = start(testapp, "en")
    assert "Page 1 of 7" in res.text
    res = submit(res)
    res = submit(res, dict(FULL["background"], age_band="30-44"))
    res = submit(res, FULL["needs"])
    fields = res.forms[0].fields
    assert "elder_education" not in fields and "community_training" in fields
    res = submit(res, {"community_training": "no"})
    assert page_name(res) == "why_learn"  # no follow-up, no satisfaction grid
    res = submit(res, MOT)
    res = submit(res, SDL)
    res = submit(res)
    assert "Thank you" in res.text
    stored = dbsession.scalars(sa.select(SurveyAnswer.name)).all()
    assert not {"elder_education", "training_times", "sat_content"} & set(stored)


def test_validation_errors_keep_the_input_and_name_each_field(testapp, surveys_demo,
                                                              dbsession):
    token, res = start(testapp, "en")
    res = submit(res)
    bad = {"age_band": "60-69", "street": "x" * 31, "occupation": "other",
           "occupation_other": "volunteer"}
    out = fill(res.forms[0], bad).submit("action", value="next", status=400)
    assert "Please check the answers marked below." in out.text
    assert out.text.count("Please answer this question.") == 3  # sex, district, education
    assert out.forms[0]["street"].value == "x" * 31
    assert out.forms[0]["occupation_other"].value == "volunteer"
    assert out.forms[0]["age_band"].value == "60-69"
    assert dbsession.scalar(sa.select(sa.func.count(SurveyAnswer.id))) == 0
    zh = testapp.get(f"/s/{token}?lang=zh-CN")
    out = fill(zh.forms[0], bad).submit("action", value="next", status=400)
    assert "请回答这道题。" in out.text


def test_resume_from_the_link_on_another_device_and_back_button(testapp, surveys_demo,
                                                                wsgi_app):
    token, res = start(testapp)
    res = submit(res)
    res = submit(res, FULL["background"])
    other = webtest.TestApp(wsgi_app)  # another phone: no cookies
    resumed = other.get(f"/s/{token}")
    assert page_name(resumed) == "needs" and "第 3 页" in resumed.text
    back = resumed.forms[0].submit("action", value="back").follow()
    assert page_name(back) == "background"
    assert back.forms[0]["sex"].value == "female"
    assert back.forms[0]["street"].value == FULL["background"]["street"]


def test_double_submit_and_a_stale_page_are_harmless(testapp, surveys_demo, dbsession):
    _token, res = start(testapp)
    res = submit(res)
    form = fill(res.forms[0], FULL["background"])
    first = form.submit("action", value="next")
    second = form.submit("action", value="next")  # a double tap: same page, same revision
    assert first.status_int == second.status_int == 303
    assert page_name(second.follow()) == "needs"
    count = dbsession.scalar(sa.select(sa.func.count(SurveyAnswer.id)))
    assert count == len(FULL["background"])
    form["sex"] = "male"  # the old page, changed, from the browser history
    stale = form.submit("action", value="next")
    assert stale.status_int == 303 and "moved=1" in stale.location
    assert dbsession.scalar(sa.select(SurveyAnswer.value).where(
        SurveyAnswer.name == "sex")) == "female"
    assert "另一个窗口" in stale.follow().text


def test_a_post_without_csrf_token_is_refused(testapp, surveys_demo, dbsession):
    token, _res = start(testapp)
    testapp.post(f"/s/{token}", {"page": "intro", "revision": "0"}, status=400)
    assert dbsession.scalar(sa.select(SurveySession.page)) == "intro"


def test_unknown_link_is_a_friendly_404(testapp, surveys_demo):
    res = testapp.get("/s/" + "x" * 32, status=404)
    assert "链接无效" in res.text or "not valid" in res.text


def test_home_links_to_the_survey(testapp, surveys_demo):
    res = testapp.get("/?lang=en")
    assert "/survey" in res.text


def test_after_the_ability_test_the_result_page_offers_the_survey(testapp, surveys_demo,
                                                                 dbsession):
    from assessment import services as test_services

    token, session = test_services.start_session(
        dbsession, "LLA", consent=True, campaign="C7", invitation="inv-7", district="D02",
        background={"age_band": "70+", "district": "D02", "occupation": "retired",
                    "education": "primary", "sex": "male"})
    step = test_services.current_step(dbsession, session)
    while step.status == "testing":
        step = test_services.submit_answer(dbsession, session, position=step.position,
                                           version_id=step.item["version"], choice=1)
    dbsession.commit()
    result = testapp.get(f"/t/{token}/result")
    form = next(f for f in result.forms.values()
                if f.action.endswith("/survey/after-test"))
    page = form.submit().follow()
    survey_path = page.request.path
    assert page_name(page) == "intro"
    page = submit(page)
    # background fully known from the test except the optional street: still shown, prefilled
    assert page_name(page) == "background"
    assert page.forms[0]["age_band"].value == "70+"
    again = testapp.get(f"/t/{token}/result")  # now a link to the same survey session
    assert survey_path in again.text
    twice = form.submit().follow()  # the old start form again: the same session
    assert twice.request.path == survey_path
    survey_session = dbsession.scalar(sa.select(SurveySession))
    dbsession.refresh(survey_session)
    assert (survey_session.campaign, survey_session.invitation) == ("C7", "inv-7")
    assert survey_session.test_session_id == session.id
    assert survey_session.district == "D02"  # the test's campaign district, not an answer
    assert dbsession.scalar(sa.select(sa.func.count(SurveySession.id))) == 1
    # finish the survey: the thank-you page links back to the test result
    page = submit(page, {"sex": "male", "district": "D02"})
    page = submit(page, FULL["needs"])
    page = submit(page, {"community_training": "no", "elder_education": "never"})
    page = submit(page, MOT)
    page = submit(page, SDL)
    done = submit(page)
    assert f"/t/{token}/result" in done.text
    assert services.find_survey_session(dbsession, survey_path.rsplit("/", 1)[-1])
    assert re.search(r"谢谢", done.text)


def test_an_expired_link_says_so_and_keeps_the_answers(testapp, surveys_demo, dbsession):
    import datetime as dt

    _token, res = start(testapp, "en")
    res = submit(res)
    form = fill(res.forms[0], FULL["background"])
    session = dbsession.scalar(sa.select(SurveySession))
    session.updated_at = session.updated_at - dt.timedelta(days=365)
    dbsession.commit()
    out = form.submit("action", value="next").follow()
    assert "This survey link has expired" in out.text
    assert dbsession.scalar(sa.select(sa.func.count(SurveyAnswer.id))) == 0
    dbsession.expire_all()
    assert dbsession.scalar(sa.select(SurveySession.status)) == "expired"


WIDGETS = {
    "schema": "learningcity-survey/1", "id": "widgets", "version": 1,
    "title": {"zh": "控件", "en": "Widgets"},
    "choice_lists": {"agree": [{"name": str(i), "label": {"zh": f"{i}分", "en": f"{i}"}}
                               for i in range(1, 6)]},
    "pages": [{"name": "p", "title": {"zh": "一页", "en": "One page"}, "questions": [
        {"name": n, "type": t, "label": {"zh": n, "en": n}, **extra}
        for n, t, extra in (
            ("mood", "single_choice", {"choices": "agree", "appearance": "likert"}),
            ("pick", "single_choice", {"choices": "agree", "appearance": "minimal",
                                       "default": "3"}),
            ("story", "text", {"appearance": "multiline"}),
            ("at", "time", {"default": "08:30"}),
            ("when", "datetime", {}),
            ("fixed", "text", {"read_only": True, "default": "东湖区"}),
            ("calc", "calculate", {"calculation": "1 + 1"}),
            ("seen", "today", {}))]}],
}


def test_new_widgets_render_without_javascript_and_post(testapp, surveys_demo, dbsession):
    import json

    services.import_survey(dbsession, json.dumps(WIDGETS).encode(), "tester",
                           name="widgets.json", publish=True)
    dbsession.commit()
    res = testapp.get("/survey?survey=widgets&lang=zh-CN").forms[0].submit().follow()
    html = res.html
    assert len(html.select(".scale.row input[type=radio][name=mood]")) == 5  # likert
    assert html.select_one("select[name=pick] option[selected]")["value"] == "3"  # default
    assert html.select_one("textarea[name=story]")["rows"] == "6"
    assert html.select_one("input[type=time][name=at]")["value"] == "08:30"
    assert html.select_one("input[type=datetime-local][name=when]") is not None
    assert html.select_one(".read-only .value").text == "东湖区"
    assert not html.select("[name=fixed], [name=calc], [name=seen]")  # never posted
    form = res.forms[0]
    form["mood"] = "4"
    form["when"] = "2026-05-01T09:15"
    out = form.submit("action", value="next")
    assert out.location.endswith("/done")  # the only page: answered and sent
    token = res.request.path.rsplit("/", 1)[-1]
    session = dbsession.scalar(sa.select(SurveySession).where(
        SurveySession.token_hash == services.hash_token(token)))
    answers = session.answer_dict()
    assert {k: answers[k] for k in ("mood", "pick", "at", "when", "calc")} == {
        "mood": "4", "pick": "3", "at": "08:30", "when": "2026-05-01T09:15", "calc": 2}
    assert len(answers["seen"]) == 10 and "story" not in answers


def test_range_widgets_and_a_missing_translation_falls_back():
    from surveys.definition import Choice, Page, Question, Survey, Text
    from surveys.presenting import question_view, widget

    short = Question("r", "range", Text("打分", ""), minimum=0, maximum=10, step=1)
    long_ = Question("r2", "range", Text("", "Score"), minimum=0, maximum=100, step=5)
    survey = Survey("s", 1, Text("问卷", "Survey"), {"l": (Choice("a", Text("甲", "")),)},
                    (Page("p", Text("页", "Page"), (short, long_, Question(
                        "c", "single_choice", Text("选", "Pick"), choices="l"))),))
    assert (widget(short), widget(long_)) == ("range", "number")
    view = question_view(survey, short, {"r": 4}, "en")
    assert view["values"] == [str(i) for i in range(11)] and view["value"] == 4
    assert view["label"] == "打分"  # no English text: the Chinese one
    assert question_view(survey, long_, {}, "zh")["label"] == "Score"
    assert "values" not in question_view(survey, long_, {}, "zh")
    assert question_view(survey, survey.pages[0].questions[2], {}, "en")["choices"] == [
        {"name": "a", "label": "甲"}]
