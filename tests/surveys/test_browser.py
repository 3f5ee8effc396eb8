"""A resident fills the default survey in headless Chromium on a phone-sized screen,
following a skip path (no training, under 60), without any JavaScript on the pages.

Served by waitress on a fresh SQLite database with the demo content, as
``pserve development.ini`` would. A screenshot of a rating-grid page: survey_page.png (see
tests/browser.py).
"""
from __future__ import annotations

from tests.browser import SCREENSHOTS, axe_problems, fits

VIEWPORT = {"width": 360, "height": 740}


def next_page(page):
    page.click("button[name=action][value=next]")


def test_resident_fills_the_survey_on_a_phone_following_a_skip_path(demo_server, browser):
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=2, locale="zh-CN",
                                  java_script_enabled=False)
    page = context.new_page()
    page.goto(demo_server + "/survey")
    page.click("form button[type=submit]")
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
    page.click("form button[type=submit]")
    for _page in range(2):
        problems += axe_problems(page)
        next_page(page)
    problems += axe_problems(page)  # the background page's error messages
    context.close()
    assert not problems, problems
