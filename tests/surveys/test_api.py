"""The survey endpoints of the JSON API: start, state, pages, back, finish, result, errors."""
from __future__ import annotations

import sqlalchemy as sa

from surveys.models import SurveyAnswer

from .conftest import FULL
from .test_services import MOT, SDL

BASE = "/api/v1/survey-sessions"


def start(testapp, **body):
    res = testapp.post_json(BASE, body, status=201)
    return res.json["token"], res.json


def post_page(testapp, token, state, answers, status=200, revision=None):
    return testapp.post_json(
        f"{BASE}/{token}/pages/{state['page']['name']}",
        {"revision": state["revision"] if revision is None else revision,
         "answers": answers}, status=status)


def test_the_api_is_in_the_openapi_document(testapp, surveys_demo):
    doc = testapp.get("/api/v1/openapi.json").json
    for path in ("/survey-sessions", "/survey-sessions/{token}",
                 "/survey-sessions/{token}/pages/{page}", "/survey-sessions/{token}/back",
                 "/survey-sessions/{token}/finish", "/survey-sessions/{token}/result"):
        assert path in doc["paths"], path


def test_full_path_through_the_api_in_english(testapp, surveys_demo):
    token, state = start(testapp, locale="en")
    assert state["page"]["name"] == "intro" and state["page_count"] == 7
    assert state["survey"]["title"].startswith("Residents")
    state = post_page(testapp, token, state, {}).json
    questions = {q["name"]: q for q in state["page"]["questions"]}
    assert questions["age_band"]["required"] is True
    assert questions["age_band"]["choices"][-1] == {"name": "70+", "label": "70 or older"}
    state = post_page(testapp, token, state, FULL["background"]).json
    state = post_page(testapp, token, state, FULL["needs"]).json
    assert state["page"]["name"] == "participation"
    # an API client may send a follow-up together with the answer that reveals it
    state = post_page(testapp, token, state, {
        "community_training": "yes", "training_times": 3, "training_last": "2026-01",
        "elder_education": "never",
        **{f"sat_{n}": "3" for n in ("content", "teacher", "time", "place", "overall")}}
    ).json
    assert state["page"]["name"] == "why_learn"
    assert state["answers"]["training_times"] == 3
    state = post_page(testapp, token, state, {k: int(v) for k, v in MOT.items()}).json
    state = post_page(testapp, token, state, SDL).json
    state = post_page(testapp, token, state, {"suggestions": None}).json
    assert state["complete"] is True and state["page"] is None
    testapp.get(f"{BASE}/{token}/result", status=409)
    done = testapp.post_json(f"{BASE}/{token}/finish", {}, status=200).json
    assert done["status"] == "finished"
    assert done["scales"]["motivation"]["method"] == "grm"
    assert done["scales"]["satisfaction"]["sum"] == 15
    again = testapp.post_json(f"{BASE}/{token}/finish", {}, status=200).json
    assert again == done
    result = testapp.get(f"{BASE}/{token}/result").json
    assert result["scales"] == done["scales"]


def test_state_and_resend_and_stale_revision(testapp, surveys_demo, dbsession):
    token, state = start(testapp)
    intro = state
    state = post_page(testapp, token, state, {}).json
    assert testapp.get(f"{BASE}/{token}").json == state  # the same state on resume
    background = state
    after = post_page(testapp, token, background, FULL["background"]).json
    resent = post_page(testapp, token, background, FULL["background"]).json
    assert resent == after
    count = dbsession.scalar(sa.select(sa.func.count(SurveyAnswer.id)))
    assert count == len(FULL["background"])
    stale = post_page(testapp, token, background, dict(FULL["background"], sex="male"),
                      status=409).json
    assert stale["error"] == "stale_revision" and stale["state"]["page"]["name"] == "needs"
    assert stale["state"]["answers"]["sex"] == "female"
    assert set(stale) >= {"error", "message", "details"}
    post_page(testapp, token, intro, {"x": 1}, status=409)


def test_invalid_answers_are_422_with_each_field(testapp, surveys_demo, dbsession):
    token, state = start(testapp)
    state = post_page(testapp, token, state, {}).json
    res = post_page(testapp, token, state, {"age_band": "200", "street": "x" * 40},
                    status=422).json
    names = {d["name"] for d in res["details"]}
    assert names == {"age_band", "street", "sex", "district", "occupation", "education"}
    assert res["error"] == "invalid_answers" and res["state"]["page"]["name"] == "background"
    res = post_page(testapp, token, state, {"not_here": "1"}, status=422).json
    assert res["error"] == "unknown_answers"
    assert dbsession.scalar(sa.select(sa.func.count(SurveyAnswer.id))) == 0
    res = testapp.post_json(f"{BASE}/{token}/finish", {}, status=422).json
    assert "age_band" in {d["name"] for d in res["details"]}


def test_back_and_errors(testapp, surveys_demo):
    token, state = start(testapp)
    testapp.post_json(f"{BASE}/{token}/back", {}, status=409)  # first page
    state = post_page(testapp, token, state, {}).json
    back = testapp.post_json(f"{BASE}/{token}/back", {"revision": state["revision"]}).json
    assert back["page"]["name"] == "intro"
    twice = testapp.post_json(f"{BASE}/{token}/back", {"revision": state["revision"]}).json
    assert twice["page"]["name"] == "intro" and twice["revision"] == back["revision"]
    missing = testapp.get(f"{BASE}/{'x' * 32}", status=404).json
    assert missing["error"] == "unknown_session"
    bad = testapp.post_json(f"{BASE}/{token}/pages/background", {"answers": {}}, status=400)
    assert bad.json["error"] == "invalid_request"
    unknown = testapp.post_json(BASE, {"survey": "nope"}, status=404).json
    assert unknown["error"] == "unknown_survey"
    page404 = testapp.post_json(f"{BASE}/{token}/pages/nowhere",
                                {"revision": 0, "answers": {}}, status=404).json
    assert page404["error"] == "unknown_page"


def test_start_after_an_ability_test_session_prefills_and_is_idempotent(testapp,
                                                                        surveys_demo,
                                                                        dbsession):
    from assessment import services as test_services

    test_token, test = test_services.start_session(
        dbsession, "LLA", consent=True, campaign="C3", invitation="inv-3",
        background={"age_band": "45-59", "sex": "female", "district": "D04",
                    "occupation": "farmer", "education": "junior", "street": "东街"})
    dbsession.commit()
    first = testapp.post_json(BASE, {"test_session_token": test_token, "locale": "en"},
                              status=201).json
    again = testapp.post_json(BASE, {"test_session_token": test_token}, status=200).json
    assert first["token"] == again["token"]
    # every background answer known: the background page is skipped
    state = post_page(testapp, first["token"], first, {}).json
    assert state["page"]["name"] == "needs" and state["page_count"] == 6
    assert state["answers"]["occupation"] == "farmer" and state["answers"]["district"] == "D04"
    from surveys.models import SurveySession

    session = dbsession.scalar(sa.select(SurveySession))
    assert (session.campaign, session.invitation, session.test_session_id) == (
        "C3", "inv-3", test.id)
    testapp.post_json(BASE, {"test_session_token": "y" * 32}, status=404)


def test_repeat_instances_and_filtered_choices_through_the_api(testapp, surveys_demo):
    import json

    from surveys import services

    from .test_browser import HOUSEHOLD

    services.import_survey(surveys_demo, json.dumps(HOUSEHOLD).encode(), "tester",
                           name="household.json", publish=True)
    surveys_demo.commit()
    token, state = start(testapp, survey="household", locale="en")
    assert [q["name"] for q in state["page"]["questions"]] == ["district", "household_size"]
    state = post_page(testapp, token, state, {"district": "d1", "household_size": 1}).json
    street = state["page"]["questions"][1]
    assert street["widget"] == "select" and [c["name"] for c in street["choices"]] == [
        "s11", "s12"]
    res = post_page(testapp, token, state, {"district": "d1", "street": "s21",
                                            "household_size": 1}, status=422).json
    assert res["details"] == [{"name": "street", "message": "Please choose from the options.",
                               "message_zh": "请从选项中选择。"}]
    state = post_page(testapp, token, res["state"], {"district": "d1", "street": "s12",
                                                     "household_size": 1}).json
    page = state["page"]
    assert (page["name"], page["title"], page["instance"], page["instances"]) == (
        "member[1]", "Household member 1/1", 1, 1)
    assert [q["name"] for q in page["questions"]] == ["member_name[1]", "member_age[1]"]
    testapp.post_json(f"{BASE}/{token}/pages/member%5B1%5D", {
        "revision": state["revision"], "answers": {"member_name[1]": "Li",
                                                   "member_age[1]": 30}}, status=200)
    done = testapp.post_json(f"{BASE}/{token}/finish", {}, status=200).json
    assert done["status"] == "finished"
    answers = testapp.get(f"{BASE}/{token}").json["answers"]
    assert answers == {"district": "d1", "street": "s12", "household_size": 1,
                       "member_name[1]": "Li", "member_age[1]": 30}
