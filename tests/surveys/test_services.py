"""Survey sessions in the database: versions, pages, resume, idempotence, skips, scores."""
from __future__ import annotations

import math

import numpy as np
import pytest
import sqlalchemy as sa

from surveys import services
from surveys.definition import DEFAULTS_DIR, SurveyError, default_survey
from surveys.models import SurveyAnswer, SurveyDefinition, SurveyScaleScore, SurveySession

from .conftest import FULL

MOT = {f"mot_{i:03d}": str(1 + i % 5) for i in range(1, 13)}
SDL = {f"sdl_{i:03d}": str(1 + (i * 2) % 5) for i in range(1, 13)}
SAT = ("content", "teacher", "time", "place", "overall")


def post(db, session, page, form):
    return services.save_page(db, session, page, form, session.revision)


def walk(db, session, answers_by_page):
    """Post each page the session shows with the answers given for it (blank otherwise)."""
    seen = []
    for _ in range(30):
        state = services.current_page(db, session)
        if state.page is None:
            return seen
        seen.append(state.page.name)
        post(db, session, state.page.name, answers_by_page.get(state.page.name, {}))
    raise AssertionError("the survey did not end")


def test_import_makes_versions_and_identical_import_changes_nothing(surveys_demo):
    db = surveys_demo
    first = services.published_survey(db, "learning_needs")
    assert first is not None and first.version == 1
    again = services.import_survey(db, DEFAULTS_DIR / "learning_needs.xlsx", "tester")
    assert not again.created and again.definition.id == first.id  # XLSX == JSON
    doc = (DEFAULTS_DIR / "learning_needs.json").read_text(encoding="utf-8")
    changed = doc.replace('"title": {"zh": "市民学习需求与参与情况调查"',
                          '"title": {"zh": "市民学习需求与参与情况调查（第二版）"', 1)
    assert changed != doc
    second = services.import_survey(db, changed.encode(), "tester", name="v2.json")
    assert second.created and second.definition.version == 2
    assert services.published_survey(db, "learning_needs").id == first.id  # not yet
    services.publish_version(db, second.definition, "tester")
    assert services.published_survey(db, "learning_needs").version == 2


def test_broken_import_lists_every_problem_and_stores_nothing(surveys_demo):
    db = surveys_demo
    before = db.scalar(sa.select(sa.func.count(SurveyDefinition.id)))
    doc = (DEFAULTS_DIR / "learning_needs.json").read_text(encoding="utf-8")
    broken = doc.replace("${community_training} = 'yes'", "${nowhere} = 'yes'").replace(
        '"type": "integer"', '"type": "integr"')
    with pytest.raises(SurveyError) as info:
        services.import_survey(db, broken.encode(), "tester", name="broken.json")
    text = str(info.value)
    assert "nowhere" in text and "integr" in text
    assert len(info.value.problems) >= 3
    assert db.scalar(sa.select(sa.func.count(SurveyDefinition.id))) == before


def test_sessions_keep_the_version_they_started_with(surveys_demo):
    db = surveys_demo
    session, _token = services.start_survey_session(db, "learning_needs")
    doc = (DEFAULTS_DIR / "learning_needs.json").read_text(encoding="utf-8")
    v2 = services.import_survey(db, doc.replace('"version": 1', '"version": 2', 1).encode(),
                                "tester", name="v2.json", publish=True)
    assert v2.created and v2.published
    newer, _ = services.start_survey_session(db, "learning_needs")
    assert session.definition_id != newer.definition_id == v2.definition.id
    assert services.current_page(db, session).survey.version == 1


def test_resume_keeps_earlier_answers_and_the_page(surveys_demo):
    db = surveys_demo
    session, token = services.start_survey_session(db)
    assert services.current_page(db, session).page.name == "intro"
    post(db, session, "intro", {})
    post(db, session, "background", FULL["background"])
    db.commit()
    db.expunge_all()
    resumed = services.find_survey_session(db, token)
    state = services.current_page(db, resumed)
    assert state.page.name == "needs" and (state.number, state.total) == (3, 7)
    assert state.answers["age_band"] == "60-69"
    assert state.answers["occupation_other"] == "志愿者"
    back = services.go_back(db, resumed, resumed.revision)
    assert back.page.name == "background" and back.answers["sex"] == "female"


def test_reposting_a_page_is_harmless_and_a_stale_different_post_conflicts(surveys_demo):
    db = surveys_demo
    session, _ = services.start_survey_session(db)
    post(db, session, "intro", {})
    revision = session.revision
    services.save_page(db, session, "background", FULL["background"], revision)
    after = (session.page, session.revision, session.answer_dict())
    # the same post again (a double tap, a retry after a lost response)
    state = services.save_page(db, session, "background", FULL["background"], revision)
    assert (session.page, session.revision, session.answer_dict()) == after
    assert state.page.name == "needs"
    rows = db.scalar(sa.select(sa.func.count(SurveyAnswer.id)).where(
        SurveyAnswer.session_id == session.id))
    assert rows == len(FULL["background"])
    # the old page posted again with a different answer: conflict, nothing changed
    with pytest.raises(services.StaleRevision):
        services.save_page(db, session, "background",
                           dict(FULL["background"], sex="male"), revision)
    assert session.answer_dict()["sex"] == "female"


def test_invalid_page_stores_nothing_and_names_each_field(surveys_demo):
    db = surveys_demo
    session, _ = services.start_survey_session(db)
    post(db, session, "intro", {})
    with pytest.raises(services.PageInvalid) as info:
        post(db, session, "background", {"age_band": "200", "street": "x" * 31})
    errors = info.value.errors
    assert set(errors) >= {"age_band", "sex", "district", "occupation", "education", "street"}
    assert errors["sex"].zh == "请回答这道题。"
    assert info.value.values["street"] == "x" * 31
    assert session.answer_dict() == {} and session.page == "background"


def test_a_question_revealed_on_the_same_page_is_asked_before_moving_on(surveys_demo):
    db = surveys_demo
    session, _ = services.start_survey_session(db)
    walk_to = {"intro": {}, **FULL}
    for name in ("intro", "background", "needs"):
        post(db, session, name, walk_to[name])
    state = services.current_page(db, session)
    assert state.page.name == "participation"
    shown = [q.name for q in state.questions]
    assert shown == ["community_training", "elder_education"]  # 60-69: older-adult asked
    state = post(db, session, "participation", {"community_training": "yes",
                                                "elder_education": "never"})
    assert state.page.name == "participation"  # stays: follow-up questions appeared
    assert [q.name for q in state.questions] == ["community_training", "training_times",
                                                 "training_last", "elder_education",
                                                 "satisfaction"]
    with pytest.raises(services.PageInvalid) as info:
        post(db, session, "participation", {"community_training": "yes",
                                            "elder_education": "never"})
    assert set(info.value.errors) == {"training_times"}


def full_answers(trained: bool, age: str = "60-69"):
    participation = {"community_training": "yes" if trained else "no",
                     "elder_education": "sometimes"}
    if trained:
        participation.update({"training_times": "12", "training_last": "2026-05",
                              **{f"sat_{n}": "4" for n in SAT}})
    return {"intro": {}, "background": dict(FULL["background"], age_band=age),
            "needs": FULL["needs"], "participation": participation,
            "why_learn": MOT, "own_learning": SDL, "end": {"suggestions": "多开晚班"}}


def test_skip_path_clears_irrelevant_answers_on_finish(surveys_demo):
    db = surveys_demo
    survey = default_survey()
    sat = [i.name for i in survey.question("satisfaction").items]
    session, _ = services.start_survey_session(db)
    answers = full_answers(trained=True)
    answers["participation"].update({s: "4" for s in sat})
    post(db, session, "intro", {})
    post(db, session, "background", answers["background"])
    post(db, session, "needs", answers["needs"])
    post(db, session, "participation", {"community_training": "yes",
                                        "elder_education": "never"})
    post(db, session, "participation", answers["participation"])
    assert session.answer_dict()["training_times"] == 12
    # the resident goes back and changes the age band: older-adult education is skipped now
    for _ in range(3):  # why_learn -> participation -> needs -> background
        services.go_back(db, session, session.revision)
    post(db, session, "background", dict(answers["background"], age_band="30-44"))
    post(db, session, "needs", answers["needs"])
    state = services.current_page(db, session)
    assert "elder_education" not in [q.name for q in state.questions]
    post(db, session, "participation", {"community_training": "no"})
    assert walk(db, session, answers) == ["why_learn", "own_learning", "end"]
    services.finish(db, session)
    stored = session.answer_dict()
    for gone in ("training_times", "training_last", "elder_education", *sat):
        assert gone not in stored, gone
    assert stored["community_training"] == "no" and stored["age_band"] == "30-44"
    assert session.status == "finished" and session.finished_at is not None
    assert {s.scale for s in session.scores} == {"motivation", "self_directed"}


def test_finish_scores_sum_and_irt_against_the_scales_module(surveys_demo):
    from itembank.demo_content import DEMO_DIR
    from scoring.io import read_params
    from surveys.scales import scale, score_scale

    db = surveys_demo
    session, _ = services.start_survey_session(db)
    answers = full_answers(trained=True)
    post(db, session, "intro", {})
    post(db, session, "background", answers["background"])
    post(db, session, "needs", answers["needs"])
    post(db, session, "participation", {"community_training": "yes",
                                        "elder_education": "sometimes"})
    assert walk(db, session, answers) == ["participation", "why_learn", "own_learning", "end"]
    state = services.finish(db, session)
    assert state.status == "finished"
    again = services.finish(db, session)  # finishing twice is harmless
    assert again.status == "finished"
    assert db.scalar(sa.select(sa.func.count(SurveyScaleScore.id))) == 3
    survey = default_survey()
    params = read_params(DEMO_DIR / "calibration_lms.csv")
    scores = {s.scale: s for s in session.scores}
    for grid, given in (("motivation", MOT), ("self_directed", SDL)):
        block = scale(survey, grid)
        reference = score_scale(block, [given], "grm", params)
        got = scores[grid]
        assert got.method == "grm" and got.n_answered == 12
        assert got.sum_score == pytest.approx(float(reference.sum[0]), abs=1e-9)
        assert got.theta == pytest.approx(float(reference.theta[0]), abs=1e-6)
        assert got.se == pytest.approx(float(reference.se[0]), abs=1e-6)
        # reverse keys counted as mirror values (independent check of the sum)
        expected = sum(6 - int(given[i.name]) if i.reverse else int(given[i.name])
                       for i in block.items)
        assert got.sum_score == expected
    sat = scores["satisfaction"]
    assert sat.sum_score == 20 and sat.method == "sum" and sat.theta is None
    assert not math.isnan(scores["motivation"].theta)
    assert np.isfinite(scores["self_directed"].se)


def test_finish_refuses_missing_required_answers(surveys_demo):
    db = surveys_demo
    session, _ = services.start_survey_session(db)
    post(db, session, "intro", {})
    with pytest.raises(services.PageInvalid) as info:
        services.finish(db, session)
    assert "age_band" in info.value.errors
    assert session.status == "started" and session.page == "background"


def test_prefill_stores_answers_and_skips_a_fully_answered_page(surveys_demo):
    db = surveys_demo
    background = dict(FULL["background"], occupation="retired")
    del background["occupation_other"]
    session, _ = services.start_survey_session(
        db, prefill={**background, "not_a_question": "x", "sex": "unknown"},
        campaign="C1", invitation="INV1", district="D03")
    # sex "unknown" is not a choice: ignored, so the background page is still shown
    assert set(session.prefilled) == set(background) - {"sex"}
    assert session.district == "D03"
    post(db, session, "intro", {})
    assert session.page == "background"
    session2, _ = services.start_survey_session(db, prefill=background)
    assert session2.district is None  # no campaign: an answered district scopes nothing
    post(db, session2, "intro", {})
    assert session2.page == "needs"  # the background page was skipped
    assert services.current_page(db, session2).total == 6
    assert session2.answer_dict()["age_band"] == "60-69"


def test_campaign_responses_for_monitoring(surveys_demo):
    db = surveys_demo
    session, _ = services.start_survey_session(db, campaign="C9", invitation="inv-1")
    answers = full_answers(trained=False, age="45-59")
    walk(db, session, answers)
    services.finish(db, session)
    other, _ = services.start_survey_session(db, campaign="C9", invitation="inv-2")  # open
    rows = services.campaign_responses(db, "C9")
    assert len(rows) == 1
    row = rows[0]
    assert row["invitation"] == "inv-1" and row["version"] == 1
    assert row["answers"]["community_training"] == "no"
    assert "elder_education" not in row["answers"]
    assert set(row["scales"]) == {"motivation", "self_directed"}
    assert row["scales"]["motivation"]["method"] == "grm"
    assert services.campaign_responses(db, "nope") == []
    assert other.status == "started"


def test_expired_after_idle_days_keeps_answers(surveys_demo):
    import datetime as dt

    db = surveys_demo
    session, token = services.start_survey_session(db)
    post(db, session, "intro", {})
    post(db, session, "background", FULL["background"])
    session.updated_at = session.updated_at - dt.timedelta(days=90)
    db.flush()
    found = services.find_survey_session(db, token, idle_days=60)
    assert found.status == "expired" and found.answer_dict()["sex"] == "female"
    with pytest.raises(services.DeliveryError):
        post(db, found, "needs", FULL["needs"])
    assert db.scalar(sa.select(SurveySession.status)) == "expired"


def test_demo_loader_is_idempotent_and_keeps_a_later_publication(surveys_demo):
    from surveys import demo_content

    db = surveys_demo
    demo_content.load(db)  # a second start
    assert db.scalar(sa.select(sa.func.count(SurveyDefinition.id))) == 1
    doc = (DEFAULTS_DIR / "learning_needs.json").read_text(encoding="utf-8")
    services.import_survey(db, doc.replace('"version": 1', '"version": 2', 1).encode(),
                           "researcher", name="v2.json", publish=True)
    demo_content.load(db)  # the shipped version does not take over again
    assert services.published_survey(db, "learning_needs").version == 2
    assert db.scalar(sa.select(sa.func.count(SurveyDefinition.id))) == 2


# --- XLSForm additions: meta, calculate, read-only, a repeat the resident extends ------

def _t(zh, en):
    return {"zh": zh, "en": en}


FAMILY = {
    "schema": "learningcity-survey/1", "id": "family", "version": 1,
    "title": _t("家庭", "Family"), "choice_lists": {},
    "pages": [
        {"name": "intro", "title": _t("开始", "Start"), "questions": [
            *({"name": n, "type": n, "label": _t(n, n)}
              for n in ("start", "end", "today", "deviceid")),
            {"name": "region", "type": "text", "read_only": True, "default": "东湖区",
             "label": _t("所在区", "District")},
            {"name": "adults", "type": "integer", "required": True, "min": 1, "max": 9,
             "label": _t("几位成年人？", "How many adults?")}]},
        {"name": "kids", "title": _t("孩子", "Child"), "repeat": {"max": 3}, "questions": [
            {"name": "kid_name", "type": "text", "required": True,
             "label": _t("孩子的称呼", "Child's name")}]},
        {"name": "summary", "title": _t("最后", "Last"), "questions": [
            {"name": "total", "type": "calculate", "calculation": "${adults} + 1",
             "label": _t("合计", "Total")},
            {"name": "comment", "type": "text", "label": _t("还有什么？", "Anything else?")}]},
    ],
}


def family_session(db, **kw):
    import json

    services.import_survey(db, json.dumps(FAMILY).encode(), "tester", name="family.json",
                           publish=True)
    return services.start_survey_session(db, "family", **kw)


def test_meta_is_recorded_and_never_shown_and_read_only_is_kept(surveys_demo):
    db = surveys_demo
    session, token = family_session(db)
    answers = session.answer_dict()
    assert answers["deviceid"] == services.device_id(token)
    assert answers["deviceid"].startswith("learningcity:") and len(answers["deviceid"]) == 29
    assert token not in answers["deviceid"] and session.token_hash[:16] not in answers[
        "deviceid"]
    assert answers["today"] == answers["start"][:10] and answers["start"].endswith("+08:00")
    assert "end" not in answers
    state = services.current_page(db, session)
    assert [q.name for q in state.questions] == ["region", "adults"]
    with pytest.raises(services.DeliveryError):  # read-only: not posted
        post(db, session, "intro", {"adults": 2, "region": "别处"})


def test_a_repeat_without_count_asks_to_add_another_and_going_back_shortens_it(
        surveys_demo):
    db = surveys_demo
    session, _token = family_session(db)
    state = post(db, session, "intro", {"adults": 2})
    assert (state.step, state.instance, state.add_another) == ("kids[1]", 1, "kids[0]")
    assert [q.name for q in state.questions] == ["kid_name"]
    with pytest.raises(services.PageInvalid) as info:
        post(db, session, "kids[1]", {"kid_name[1]": "大宝"})
    assert set(info.value.errors) == {"kids[0]"}  # "add another?" must be answered
    state = post(db, session, "kids[1]", {"kid_name[1]": "大宝", "kids[0]": "yes"})
    assert (state.step, state.number, state.total) == ("kids[2]", 3, 4)
    state = post(db, session, "kids[2]", {"kid_name[2]": "二宝", "kids[0]": "yes"})
    assert state.step == "kids[3]" and state.add_another is None  # the maximum: 3
    state = post(db, session, "kids[3]", {"kid_name[3]": "三宝"})
    assert state.step == "summary" and state.total == 5
    services.go_back(db, session)
    state = services.go_back(db, session)
    assert state.step == "kids[2]"
    state = post(db, session, "kids[2]", {"kid_name[2]": "二宝", "kids[0]": "no"})
    assert state.step == "summary" and state.total == 4
    assert session.answer_dict()["total"] == 3  # calculated, stored like an answer
    post(db, session, "summary", {"comment": ""})
    services.finish(db, session)
    answers = session.answer_dict()
    assert {k: v for k, v in answers.items() if k not in ("start", "end", "today",
                                                          "deviceid")} == {
        "region": "东湖区", "adults": 2, "kids[0]": 2, "kid_name[1]": "大宝",
        "kid_name[2]": "二宝", "total": 3}
    assert answers["end"] >= answers["start"]
    pages = {a.name: a.page for a in session.answers}
    assert pages["kid_name[2]"] == "kids[2]" and pages["total"] == "summary"


def test_changing_the_district_clears_a_street_of_the_old_district(surveys_demo):
    import json

    from .test_browser import HOUSEHOLD

    db = surveys_demo
    services.import_survey(db, json.dumps(HOUSEHOLD).encode(), "tester",
                           name="household.json", publish=True)
    session, _token = services.start_survey_session(db, "household")
    state = post(db, session, "home", {"district": "d1", "household_size": 1})
    assert [c.name for c in state.choices["street"]] == ["s11", "s12"]
    post(db, session, "home", {"district": "d1", "street": "s12", "household_size": 1})
    services.go_back(db, session)
    state = post(db, session, "home", {"district": "d2", "street": "s12",
                                       "household_size": 1})
    assert state.step == "home" and "street" not in session.answer_dict()  # asked again
    assert [c.name for c in state.choices["street"]] == ["s21", "s22"]
    state = post(db, session, "home", {"district": "d2", "street": "s21",
                                       "household_size": 1})
    assert state.step == "member[1]" and session.answer_dict()["street"] == "s21"


def _family_finished(db, kids):
    session, _token = family_session(db)
    post(db, session, "intro", {"adults": 2})
    for i, name in enumerate(kids, 1):
        form = {f"kid_name[{i}]": name}
        if i < 3:
            form["kids[0]"] = "yes" if i < len(kids) else "no"
        post(db, session, f"kids[{i}]", form)
    post(db, session, "summary", {"comment": ""})
    services.finish(db, session)
    return session


def test_csv_zip_export_has_the_main_table_and_one_row_per_repeat_instance(surveys_demo):
    import csv
    import io
    import zipfile

    db = surveys_demo
    _family_finished(db, ["大宝", "二宝"])
    _family_finished(db, ["小明"])
    data, n = services.export_file(db, "family", "csv.zip")
    assert n == 2
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert sorted(archive.namelist()) == ["family.csv", "family_codebook.csv",
                                          "family_kids.csv"]

    def rows(name):
        return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8-sig"))))

    main = rows("family.csv")
    assert len(main) == 2 and not any("kid_name" in c for c in main[0])
    long = rows("family_kids.csv")
    assert sorted(r["kid_name"] for r in long) == ["二宝", "大宝", "小明"]
    with pytest.raises(ValueError, match="unknown labels"):
        services.export_file(db, "family", "sav.zip", labels="fr")
    sav = zipfile.ZipFile(io.BytesIO(services.export_file(db, "family", "sav.zip",
                                                          labels="en")[0]))
    assert sorted(sav.namelist()) == ["family.sav", "family_codebook.csv", "family_kids.sav"]
