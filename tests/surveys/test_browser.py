"""A resident fills the default survey in headless Chromium on a phone-sized screen,
following a skip path (no training, under 60), without any JavaScript on the pages.

Served by waitress on a fresh SQLite database with the demo content, as
``pserve development.ini`` would. A screenshot of a rating-grid page: survey_page.png (see
tests/browser.py).
"""
from __future__ import annotations

import pytest

from tests.browser import SCREENSHOTS, axe_problems, fits, submit

VIEWPORT = {"width": 360, "height": 740}


def next_page(page):
    submit(page, "button[name=action][value=next]")


def test_resident_fills_the_survey_on_a_phone_following_a_skip_path(demo_server, browser):
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=2, locale="zh-CN",
                                  java_script_enabled=False)
    page = context.new_page()
    page.goto(demo_server + "/survey")
    submit(page, "form button[type=submit]")
    assert "第 1 页，共 7 页" in page.locator(".progress").inner_text()
    next_page(page)  # intro
    page.check("input[name=age_band][value='30-44']")
    page.check("input[name=sex][value=male]")
    page.check("input[name=district][value=D05]")
    page.fill("textarea[name=street]", "科技园街道")
    page.check("input[name=occupation][value=industrial_worker]")
    page.check("input[name=education][value=college]")
    next_page(page)
    # the link survives a closed tab: resume in a new context at the same page
    link = page.url
    context.close()
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", device_scale_factor=2,
                                  java_script_enabled=False)
    page = context.new_page()
    page.goto(link)
    assert page.locator("input[name=page]").input_value() == "needs"
    for value in ("smart_manufacturing", "industrial_internet"):
        page.check(f"input[name=topics][value={value}]")
    page.check("input[name=channels][value=online]")
    page.check("input[name=barriers][value=no_time]")
    page.check("input[name=times][value=weekday_evening]")
    next_page(page)
    # participation: under 60 -> no older-adult education question
    assert page.locator("input[name=elder_education]").count() == 0
    page.check("input[name=community_training][value=no]")
    next_page(page)
    # skip path: no follow-up questions and no satisfaction grid were shown
    assert page.locator("input[name=page]").input_value() == "why_learn"
    grid_items = page.locator(".grid-item")
    assert grid_items.count() == 12
    for i in range(12):
        page.locator(f"input[name=mot_{i + 1:03d}][value='{1 + i % 5}']").check()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "survey_page.png"), full_page=False)
    assert fits(page)
    next_page(page)
    for i in range(12):
        page.locator(f"input[name=sdl_{i + 1:03d}][value='4']").check()
    next_page(page)
    page.fill("textarea[name=suggestions]", "希望周末有工业互联网入门课")
    next_page(page)
    assert "/done" in page.url and "谢谢" in page.locator("main").inner_text()
    context.close()
    token = link.rsplit("/", 1)[-1]
    check_stored(demo_server, token)


def check_stored(server_url, token):
    """The answers are in the database of the served app (read through the API)."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{server_url}/api/v1/survey-sessions/{token}") as res:
        state = json.load(res)
    answers = state["answers"]
    assert state["status"] == "finished"
    assert answers["community_training"] == "no" and answers["district"] == "D05"
    assert answers["topics"] == ["smart_manufacturing", "industrial_internet"]
    assert answers["mot_001"] == "1" and answers["mot_002"] == "2" and answers["sdl_012"] == "4"
    assert not {"training_times", "elder_education", "sat_content"} & set(answers)
    with urllib.request.urlopen(f"{server_url}/api/v1/survey-sessions/{token}/result") as res:
        scales = json.load(res)["scales"]
    assert set(scales) == {"motivation", "self_directed"}
    assert scales["motivation"]["method"] == "grm" and scales["motivation"]["theta"] is not None


def test_survey_pages_have_no_serious_accessibility_violation(demo_server, browser):
    """axe-core (it needs JavaScript, so a second context) on the start page and the
    first survey pages: no serious or critical violation."""
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", bypass_csp=True)
    page = context.new_page()
    page.goto(demo_server + "/survey")
    problems = axe_problems(page)
    submit(page, "form button[type=submit]")
    for _page in range(2):
        problems += axe_problems(page)
        next_page(page)
    problems += axe_problems(page)  # the background page's error messages
    context.close()
    assert not problems, problems


# --- a cascading select and a repeat (issue 17), on an imported JSON definition --------

def _t(zh, en):
    return {"zh": zh, "en": en}


#: district, then street filtered by the chosen district (choices' extra column), and
#: one page per household member, as many as the household size answered before
HOUSEHOLD = {
    "schema": "learningcity-survey/1", "id": "household", "version": 1,
    "title": _t("家庭学习情况", "Household learning"),
    "choice_lists": {
        "district": [{"name": "d1", "label": _t("东湖区", "Donghu")},
                     {"name": "d2", "label": _t("西山区", "Xishan")}],
        "street": [{"name": "s11", "label": _t("湖滨街道", "Hubin"), "extra": {"district": "d1"}},
                   {"name": "s12", "label": _t("东园街道", "Dongyuan"),
                    "extra": {"district": "d1"}},
                   {"name": "s21", "label": _t("山前街道", "Shanqian"),
                    "extra": {"district": "d2"}},
                   {"name": "s22", "label": _t("西岭街道", "Xiling"),
                    "extra": {"district": "d2"}}]},
    "pages": [
        {"name": "home", "title": _t("您的住址", "Where you live"), "questions": [
            {"name": "district", "type": "single_choice", "choices": "district",
             "required": True, "label": _t("您住在哪个区？", "Which district?")},
            {"name": "street", "type": "single_choice", "choices": "street",
             "appearance": "minimal", "choice_filter": "district = ${district}",
             "required": True, "label": _t("哪个街道？", "Which street?")},
            {"name": "household_size", "type": "integer", "min": 1, "max": 6,
             "required": True,
             "label": _t("家里一共有几口人？", "How many people live in your home?")}]},
        {"name": "member", "title": _t("家庭成员", "Household member"),
         "repeat": {"count": "${household_size}", "max": 6}, "questions": [
             {"name": "member_name", "type": "text", "required": True,
              "label": _t("怎么称呼这位家庭成员？", "What do you call this person?")},
             {"name": "member_age", "type": "integer", "min": 0, "max": 120,
              "required": True, "label": _t("年龄", "Age")}]},
    ],
}


@pytest.fixture(scope="module")
def household_server(tmp_path_factory):
    """The app with the household survey imported and published."""
    import json

    from surveys import services
    from tests.browser import make_app, serving

    app = make_app(tmp_path_factory.mktemp("household"), demo_content=False)
    db = app.registry.dbsession_factory()
    services.import_survey(db, json.dumps(HOUSEHOLD).encode(), "tester",
                           name="household.json", publish=True)
    db.commit()
    db.close()
    with serving(app) as url:
        yield url


def test_cascading_street_and_household_repeat_on_a_phone_without_javascript(
        household_server, browser):
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=2, locale="zh-CN",
                                  java_script_enabled=False)
    page = context.new_page()
    page.goto(household_server + "/survey?survey=household")
    submit(page, "form button[type=submit]")
    assert page.locator("select[name=street]").count() == 0  # held back: no district yet
    page.check("input[name=district][value=d2]")
    page.fill("input[name=household_size]", "2")
    next_page(page)
    # the same page again, now with the streets of the chosen district only
    assert page.locator("input[name=page]").input_value() == "home"
    assert page.locator("input[name=district][value=d2]").is_checked()
    options = page.locator("select[name=street] option")
    assert [options.nth(i).get_attribute("value") for i in range(options.count())] == [
        "", "s21", "s22"]
    assert "西岭街道" in page.locator("select[name=street]").inner_text()
    assert "湖滨街道" not in page.locator("main").inner_text()
    page.select_option("select[name=street]", "s22")
    page.screenshot(path=str(SCREENSHOTS / "survey_cascading.png"), full_page=True)
    assert fits(page)
    next_page(page)
    # one page per member: "家庭成员 1/2", then 2/2
    assert page.locator("h1").inner_text() == "家庭成员 1/2"
    assert "第 2 页，共 3 页" in page.locator(".progress").inner_text()
    page.fill("textarea[name='member_name[1]']", "奶奶")
    page.fill("input[name='member_age[1]']", "72")
    next_page(page)
    assert page.locator("h1").inner_text() == "家庭成员 2/2"
    page.fill("textarea[name='member_name[2]']", "小明")
    page.fill("input[name='member_age[2]']", "200")  # out of range: said on the page
    next_page(page)
    assert "0 到 120" in page.locator("#q-member_age\\[2\\] .error").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "survey_repeat.png"), full_page=True)
    assert fits(page)
    # going back shows the first member with the answers given
    submit(page, "button[name=action][value=back]")
    assert page.locator("h1").inner_text() == "家庭成员 1/2"
    assert page.locator("input[name='member_age[1]']").input_value() == "72"
    next_page(page)
    assert page.locator("h1").inner_text() == "家庭成员 2/2"
    page.fill("textarea[name='member_name[2]']", "小明")  # that post was refused: not kept
    page.fill("input[name='member_age[2]']", "9")
    next_page(page)
    assert "/done" in page.url
    context.close()
    token = page.url.rsplit("/", 2)[-2]
    import json
    import urllib.request

    with urllib.request.urlopen(f"{household_server}/api/v1/survey-sessions/{token}") as res:
        state = json.load(res)
    assert state["status"] == "finished"
    assert state["answers"] == {"district": "d2", "street": "s22", "household_size": 2,
                                "member_name[1]": "奶奶", "member_age[1]": 72,
                                "member_name[2]": "小明", "member_age[2]": 9}
