"""A monitor reads the indicator page in headless Chromium at 360 px: no sideways
scrolling of the page (wide tables scroll in their own box), the chart loads, the
links are large enough to tap.  The screenshot goes where the resident browser
test's go (``LC_SCREENSHOTS``, else a temporary folder)."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.browser import SCREENSHOTS, fits, make_app, serving, submit


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from learningcity.accounts import create_user
    from learningcity.models import District
    from monitoring.results.aggregate import compute_aggregates, write_aggregates
    from monitoring.results.indicators import catalogue
    from tests.conftest import PASSWORD
    from tests.monitoring.synthetic import respondents

    app = make_app(tmp_path_factory.mktemp("browser"), demo_content=False)
    session = app.registry.dbsession_factory()
    session.add_all([District(code="A", name_zh="甲区", name_en="District A"),
                     District(code="B", name_zh="乙区", name_en="District B")])
    session.flush()
    create_user(session, "monitor", PASSWORD, "monitor")
    for code, district, year in (("A-2025", "A", 2025), ("A-2026", "A", 2026),
                                 ("B-2026", "B", 2026)):
        data = respondents(seed=year, district=district, code=code,
                           closes=dt.datetime(year, 6, 30, tzinfo=dt.UTC))
        write_aggregates(session, data.campaign, compute_aggregates(data, catalogue()),
                         len(data.frame))
    session.commit()
    session.close()
    with serving(app) as url:
        yield url


def test_monitor_reads_indicators_at_360px(server, browser):
    from tests.conftest import PASSWORD

    context = browser.new_context(viewport={"width": 360, "height": 740},
                                  device_scale_factor=2, locale="zh-CN",
                                  java_script_enabled=False)
    page = context.new_page()
    page.goto(server + "/monitoring")
    assert "/login" in page.url  # anonymous: asked to log in first
    page.fill("input[name=username]", "monitor")
    page.fill("input[name=password]", PASSWORD)
    submit(page, "main button[type=submit]")
    page.goto(server + "/monitoring")
    assert page.locator("h1").inner_text() == "指标与目标对照"
    for path in ("/monitoring", "/monitoring/groups", "/monitoring/trends",
                 "/monitoring/districts"):
        page.goto(server + path)
        assert fits(page), path
        loaded = page.evaluate("Array.from(document.querySelectorAll('img.chart-img'))"
                               ".every(i => i.complete && i.naturalWidth > 0)")
        assert loaded, path
        if path == "/monitoring":
            page.screenshot(path=str(SCREENSHOTS / "monitoring-360.png"), full_page=True)
    heights = page.evaluate("Array.from(document.querySelectorAll('.dashboard-nav a, "
                            ".downloads a')).map(a => a.getBoundingClientRect().height)")
    assert heights and min(heights) >= 44
    context.close()
