"""A resident takes the demo test in headless Chromium on a phone-sized screen.

The app is served by waitress on a free loopback port, on a fresh SQLite database
with the demo content loaded, exactly as ``pserve development.ini`` would. The
screenshots of an item page and of the result page go to a temporary folder, or to the
folder ``LC_SCREENSHOTS`` names (see tests/browser.py).
"""
from __future__ import annotations

from tests.browser import SCREENSHOTS, axe_problems, fits, submit


def test_resident_takes_the_demo_test_from_start_to_result(demo_server, browser):
    context = browser.new_context(viewport={"width": 360, "height": 740},
                                  device_scale_factor=2, locale="zh-CN", bypass_csp=True)
    page = context.new_page()
    page.goto(demo_server + "/")
    problems = axe_problems(page)
    submit(page, "a.button[href$=\"/test\"]")  # take the test
    page.check("input[name=consent]")
    submit(page, "button[type=submit]")
    # background questions
    page.check("input[name=age_band][value='60-69']")
    page.check("input[name=occupation][value=retired]")
    submit(page, "button[type=submit]")
    answered = 0
    link = page.url
    while "/result" not in page.url:
        assert page.locator("legend.stem").inner_text().strip()
        if answered == 2:
            problems += axe_problems(page)
            page.screenshot(path=str(SCREENSHOTS / "item-360.png"), full_page=True)
            # the tab dies: a new browser context resumes from the same link
            context.close()
            context = browser.new_context(viewport={"width": 360, "height": 740},
                                          locale="zh-CN")
            page = context.new_page()
            page.goto(link)
            assert f"{answered + 1}" in page.locator(".progress").inner_text()
        options = page.locator("input[name=choice]")
        assert options.count() >= 2
        options.nth(answered % options.count()).check()
        submit(page, "button[type=submit]")
        answered += 1
        assert answered <= 40, "the test did not stop"
    assert 15 <= answered <= 27  # min/max items of the demo blueprint (+ 2 pilot items)
    text = page.locator("main").inner_text()
    assert "分以内" in text and "道题" in text  # precision and length sentences
    page.screenshot(path=str(SCREENSHOTS / "result-360.png"), full_page=True)
    problems += axe_problems(page)
    assert not problems, problems  # axe-core: no serious or critical violation
    # nothing overflows a 360 px screen
    assert fits(page)
    context.close()
