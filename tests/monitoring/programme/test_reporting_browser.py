"""A district officer reports one period in headless Chromium, at 1280 px (a desk)
and at 360 px (a phone; the pages are also loaded there without JavaScript): the
reports list, the period's form (a value changed beyond the factor is refused until a
comment says why), a draft saved, an evidence PDF attached, the report submitted; then
the progress pages.

At each width nothing scrolls sideways (tables scroll in their own box), chart images
load, axe-core finds no serious or critical violation, and the demo is labelled
simulated. Screenshots go to ``LC_SCREENSHOTS``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser import SCREENSHOTS, axe_problems, fits, make_app, serving

#: the account per width: D01's 2025 report is the demo's draft; D02's is returned
OFFICERS = {1280: ("district_d01", "D01"), 360: ("district_d02", "D02")}


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any) -> Any:
    from learningcity.accounts import create_user
    from monitoring.programme import demo, reporting
    from tests.conftest import PASSWORD

    app = make_app(tmp_path_factory.mktemp("programme"))
    session = app.registry.dbsession_factory()
    demo.load(session, session, force=True)
    report = reporting.get_report(session, reporting.ensure_period(session, 2025),
                                  reporting.Unit("district", "D02"))
    report.state, report.review_comment = "returned", "请核对学习之星人数并附证明材料"
    for username, district in OFFICERS.values():
        create_user(session, username, PASSWORD, "district", district)
    session.commit()
    session.close()
    with serving(app) as url:
        yield url


def _login(page: Any, url: str, username: str) -> None:
    from tests.conftest import PASSWORD

    page.goto(url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state("load")
    assert "/login" not in page.url


def _check(page: Any, width: int, name: str, problems: dict[str, list[str]]) -> None:
    assert fits(page, width), (page.url, width)
    assert page.evaluate("Array.from(document.querySelectorAll('img')).every("
                         "i => i.complete && i.naturalWidth > 0)"), (page.url, width)
    page.screenshot(path=str(SCREENSHOTS / f"programme-{name}-{width}.png"), full_page=True)
    found = axe_problems(page)
    if found:
        problems[name] = found


@pytest.mark.parametrize("width", [1280, 360])
@pytest.mark.installed_sources  # as deployed: the organisations wing provides its share
def test_a_district_officer_reports_one_period(server: str, browser: Any, width: int,
                                               tmp_path: Path) -> None:
    phone = width == 360
    username, district = OFFICERS[width]
    context = browser.new_context(viewport={"width": width, "height": 740 if phone else 900},
                                  device_scale_factor=2 if phone else 1, locale="zh-CN",
                                  bypass_csp=True)
    page = context.new_page()
    _login(page, server, username)
    problems: dict[str, list[str]] = {}

    page.goto(server + "/programme/reports")
    assert "模拟" in page.locator("main").inner_text()
    _check(page, width, "reports", problems)
    link = f"/programme/reports/2025/district/{district}"
    assert page.locator(f"a[href='{link}']").count() >= 1  # the table (and overdue list)
    page.goto(server + link)
    if phone:
        assert "请核对学习之星人数" in page.locator("#review-comment").inner_text()
    _check(page, width, "report", problems)

    # ten times last period's learning stars without a comment: refused, nothing saved
    before = page.input_value("input[name=value__learning_stars]")
    page.fill("input[name=value__learning_stars]", "500")
    page.click("button[value=save]")
    page.wait_for_load_state("load")
    alert = page.locator("#report-problems").inner_text()
    assert "学习之星" in alert and "说明" in alert and "3 倍" in alert, alert
    _check(page, width, "report-refused", problems)
    page.fill("textarea[name=comment__learning_stars]", "本年开展全区评选，人数大幅增加")
    for name in page.evaluate("Array.from(document.querySelectorAll('textarea')).filter("
                              "t => !t.value && t.name.startsWith('comment__'))"
                              ".map(t => t.name)"):
        # the simulated figures may also change a small count beyond the factor
        page.fill(f"textarea[name={name}]", "已核实")
    page.click("button[value=save]")
    page.wait_for_load_state("load")
    assert "草稿已保存" in page.locator("main").inner_text()
    assert page.input_value("input[name=value__learning_stars]") == "500" != before

    evidence = tmp_path / "评选名单.pdf"
    evidence.write_bytes(b"%PDF-1.4\n% learning stars list\n")
    page.set_input_files("#evidence-form input[type=file]", str(evidence))
    page.click("#evidence-form button[type=submit]")
    page.wait_for_load_state("load")
    assert "评选名单.pdf" in page.locator(".report-files").inner_text()

    page.click("button[value=submit]")
    page.wait_for_load_state("load")
    state = page.locator("#report-state").inner_text()
    assert state == ("已重新提交" if phone else "已提交"), state
    assert page.locator("button[value=save]").count() == 0  # read-only now
    _check(page, width, "report-submitted", problems)

    for name, path in (("progress", "/programme?year=2024"),
                       ("indicator", "/programme/indicators/learning_stars"
                                     "?year=2024")):
        response = page.goto(server + path)
        assert response is not None and response.status == 200, path
        assert "模拟" in page.locator("main").inner_text()
        _check(page, width, name, problems)
    assert problems == {}
    context.close()
    if phone:  # the same pages without JavaScript still fit a phone
        bare = browser.new_context(viewport={"width": width, "height": 740},
                                   locale="zh-CN", java_script_enabled=False)
        page = bare.new_page()
        _login(page, server, username)
        for path in ("/programme/reports", link, "/programme?year=2024"):
            response = page.goto(server + path)
            assert response is not None and response.status == 200, path
            assert fits(page, width), path
        page.screenshot(path=str(SCREENSHOTS / "programme-progress-360-nojs.png"),
                        full_page=True)
        bare.close()
