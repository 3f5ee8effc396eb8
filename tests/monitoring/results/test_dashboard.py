"""Monitoring pages, charts, downloads and the aggregates API: rendering in both
languages, valid charts, downloads that parse and are logged, and district scoping."""
from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import sqlalchemy as sa

PAGES = ("/monitoring", "/monitoring/groups", "/monitoring/trends", "/monitoring/districts",
         "/monitoring/indicators")


def test_anonymous_is_sent_to_login_and_api_refuses(testapp: Any, aggregated: Any) -> None:
    for page in PAGES + ("/monitoring/export/overview.csv", "/monitoring/charts/overview.svg"):
        res = testapp.get(page, status=302)
        assert "/login" in res.headers["Location"], page
    res = testapp.get("/api/v1/monitoring/aggregates", status=403)
    assert res.json["error"] == "forbidden"


def test_researcher_is_not_allowed(testapp: Any, aggregated: Any, login: Any) -> None:
    login("researcher")
    testapp.get("/monitoring", status=403)
    testapp.get("/monitoring/export/overview.csv", status=403)
    testapp.get("/api/v1/monitoring/aggregates", status=403)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_pages_render_for_monitor(testapp: Any, aggregated: Any, login: Any,
                                  lang: str, dbsession: Any) -> None:
    login("monitor")
    res = testapp.get(f"/monitoring?lang={lang}")
    text = res.text
    assert ("Indicators against targets" in text) == (lang == "en")
    if lang == "zh-CN":
        assert "社区居民培训率" in text and "Community residents" not in text
    else:
        assert "Community residents' training rate" in text
    # one screen: both districts' newest campaigns, with target and judgement
    assert "A-2026" in text and "B-2026" in text and "A-2025" not in text
    assert ("甲区" in text and "乙区" in text) if lang == "zh-CN" else (
        "District A" in text and "District B" in text)
    assert "&gt;= 55%" in text or ">= 55%" in text
    if lang == "en":  # each district's indicator row carries its own judgement
        from monitoring.results.warehouse import Aggregate

        words = {"met": "met", "not_met": "not met", "undetermined": "not distinguishable"}
        body = text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
        html_rows = body.split("<tr")[1:]
        db_rows = dbsession.scalars(sa.select(Aggregate).where(
            Aggregate.kind == "indicator", Aggregate.dimension == "district",
            Aggregate.campaign.in_(["A-2026", "B-2026"]))).all()
        assert len(html_rows) == len(db_rows) == 6
        for r in db_rows:
            name = "District A" if r.district == "A" else "District B"
            label = html.unescape
            match = [h for h in html_rows if name in label(h) and r.label_en in label(h)]
            assert len(match) == 1, r.measure
            cells = match[0].split("<td")
            assert words.get(r.judgement, "not available") in cells[-1], r.measure
    assert 'src="/monitoring/charts/overview.svg' in text
    for page in PAGES[1:]:
        res = testapp.get(f"{page}?lang={lang}")
        assert res.status_int == 200 and "<table" in res.text, page


def test_groups_page_shows_chosen_measure_and_dimension(testapp: Any, aggregated: Any,
                                                        login: Any, dbsession: Any) -> None:
    from monitoring.results.warehouse import Aggregate

    login("monitor")
    res = testapp.get("/monitoring/groups", params={"campaign": "A-2026",
                                                    "measure": "ability_mean",
                                                    "dimension": "age_band", "lang": "en"})
    rows = dbsession.scalars(sa.select(Aggregate).where(
        Aggregate.campaign == "A-2026", Aggregate.measure == "ability_mean",
        Aggregate.dimension == "age_band")).all()
    assert rows
    for r in rows:
        assert r.group_value in res.text
        if r.estimate is not None:
            shown = f"{r.estimate:.1f}" if abs(r.estimate) >= 100 else f"{r.estimate:.2f}"
            assert shown in res.text
    testapp.get("/monitoring/groups", params={"dimension": "shoe_size"}, status=400)
    small = testapp.get("/monitoring/groups", params={
        "campaign": "A-2026", "measure": "community_training_rate", "dimension": "group",
        "lang": "en"})
    assert "suppressed: too few respondents" in small.text  # civil servants


def test_trends_page_orders_campaigns_and_charts(testapp: Any, aggregated: Any,
                                                 login: Any) -> None:
    login("monitor")
    res = testapp.get("/monitoring/trends", params={"measure": "community_training_rate",
                                                    "lang": "en"})
    assert res.text.index("A-2025") < res.text.index("A-2026")
    svg = testapp.get("/monitoring/charts/trends.svg",
                      params={"measure": "community_training_rate"})
    assert svg.content_type == "image/svg+xml"
    root = ET.fromstring(svg.body)
    assert root.tag.endswith("svg")


def test_trends_chart_is_a_panel_per_district_by_year_with_the_target_line(
        testapp: Any, aggregated: Any, login: Any, dbsession: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each district's estimate and interval by campaign year, the 2025 target labelled,
    on a 0-100 % axis (the chart function's own axis tests are in test_charts.py)."""
    from monitoring.results import charts
    from monitoring.results.warehouse import Aggregate

    drawn: dict[str, Any] = {}
    real = charts.year_trend_chart

    def spy(panels: Any, years: Any, axis: str, *args: Any, **kw: Any) -> bytes:
        drawn.update(panels=panels, years=years, axis=axis, args=args)
        return real(panels, years, axis, *args, **kw)

    monkeypatch.setattr(charts, "year_trend_chart", spy)
    login("monitor")
    svg = testapp.get("/monitoring/charts/trends.svg",
                      params={"measure": "community_training_rate"})
    assert ET.fromstring(svg.body).tag.endswith("svg")
    rows = dbsession.scalars(sa.select(Aggregate).where(
        Aggregate.measure == "community_training_rate",
        Aggregate.dimension == "district")).all()
    assert [p["title"] for p in drawn["panels"]] == ["甲区", "乙区"]
    assert drawn["axis"] == "share" and drawn["years"] == [2025, 2026]
    points = {(p["title"], y): (e, lo, hi) for p in drawn["panels"]
              for y, e, lo, hi in p["points"]}
    assert len(points) == len(rows) == 3
    for r in rows:
        year = 2025 if r.campaign.endswith("2025") else 2026
        name = "甲区" if r.district == "A" else "乙区"
        assert points[(name, year)] == (r.estimate, r.ci_low, r.ci_high)
    target, label = drawn["args"][:2]
    assert target == pytest.approx(0.55) and label == "2025 年目标 55 %"


def test_districts_without_data_get_a_row_saying_so(testapp: Any, aggregated: Any,
                                                     login: Any, dbsession: Any) -> None:
    from learningcity.models import District

    dbsession.add(District(code="C", name_zh="丙区", name_en="District C"))
    dbsession.commit()
    login("monitor")
    text = testapp.get("/monitoring/districts").text
    body = text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = body.split("<tr")[1:]
    assert len(rows) == 3
    assert "丙区" in rows[2] and "暂无数据" in rows[2]
    assert "暂无数据" not in rows[0] + rows[1]
    csv_body = testapp.get("/monitoring/export/districts.csv").body.decode("utf-8-sig")
    assert len(csv_body.strip().splitlines()) == 4  # header and A, B, C
    login("district_a")
    text = testapp.get("/monitoring/districts").text
    assert "丙区" not in text and "暂无数据" not in text


@pytest.mark.parametrize("table", ["overview", "groups", "trends", "districts"])
def test_charts_are_valid_svg_and_png(testapp: Any, aggregated: Any, login: Any,
                                      table: str) -> None:
    login("monitor")
    svg = testapp.get(f"/monitoring/charts/{table}.svg")
    assert ET.fromstring(svg.body).tag == "{http://www.w3.org/2000/svg}svg"
    png = testapp.get(f"/monitoring/charts/{table}.png")
    assert png.content_type == "image/png" and png.body[:8] == b"\x89PNG\r\n\x1a\n"
    testapp.get(f"/monitoring/charts/{table}.gif", status=404)


def test_district_staff_see_only_their_district(testapp: Any, aggregated: Any,
                                                login: Any) -> None:
    login("district_a")
    for page in ("/monitoring", "/monitoring/trends?measure=community_training_rate",
                 "/monitoring/districts", "/monitoring/groups?dimension=district"):
        text = testapp.get(page).text
        assert "B-2026" not in text and "乙区" not in text, page
    # another district's campaign does not exist for them
    testapp.get("/monitoring/groups?campaign=B-2026", status=404)
    testapp.get("/monitoring/export/groups.csv?campaign=B-2026", status=404)
    testapp.get("/monitoring/charts/groups.svg?campaign=B-2026", status=404)
    text = testapp.get("/monitoring").text
    assert "A-2026" in text
    api = testapp.get("/api/v1/monitoring/aggregates").json["items"]
    assert api and {i["district"] for i in api} == {"A"}
    assert not testapp.get("/api/v1/monitoring/aggregates",
                           params={"campaign": "B-2026"}).json["items"]
    for table in ("overview", "groups", "trends", "districts"):
        for fmt in ("csv", "codebook"):
            body = testapp.get(f"/monitoring/export/{table}.{fmt}").body.decode("utf-8-sig")
            assert "B-2026" not in body and ",B," not in body, (table, fmt)
    body = testapp.get("/monitoring/export/overview.csv").body.decode("utf-8-sig")
    assert "A-2026" in body


def test_monitor_api_filters_and_validates(testapp: Any, aggregated: Any, login: Any) -> None:
    login("monitor")
    items = testapp.get("/api/v1/monitoring/aggregates", params={
        "campaign": "B-2026", "measure": "community_training_rate",
        "dimension": "group"}).json["items"]
    assert items and all(i["campaign"] == "B-2026" and i["dimension"] == "group"
                         for i in items)
    hidden = [i for i in items if i["suppressed"]]
    assert hidden and all(i["estimate"] is None and i["ci_low"] is None for i in hidden)
    both = testapp.get("/api/v1/monitoring/aggregates", params={"dimension": "all"}).json
    assert {i["district"] for i in both["items"]} == {"A", "B"} and not both["truncated"]
    bad = testapp.get("/api/v1/monitoring/aggregates", params={"dimension": "x"}, status=400)
    assert bad.json["error"] == "invalid_request"


def test_admin_edits_indicator_definitions(testapp: Any, staff: Any, login: Any,
                                           dbsession: Any) -> None:
    from monitoring.results.indicators import IndicatorDefinition

    login("admin")
    page = testapp.get("/monitoring/indicators?lang=en")
    form = page.forms["indicator-form"]
    form["code"] = "arts_interest"
    form["name_zh"] = "艺术兴趣"
    form["name_en"] = "Interest in arts"
    form["expression"] = "selected(${topics}, 'nope') and ${missing_q} = 1"
    form["target"] = "30%"
    bad = form.submit(status=400)
    assert "missing_q" in bad.text and "nope" in bad.text
    assert dbsession.scalar(sa.select(sa.func.count(IndicatorDefinition.id))) == 0
    form = bad.forms["indicator-form"]
    form["expression"] = "selected(${topics}, 'arts')"
    form.submit(status=303)
    row = dbsession.scalar(sa.select(IndicatorDefinition))
    assert row.code == "arts_interest" and row.target == pytest.approx(0.30)
    assert "arts_interest" in testapp.get("/monitoring/indicators").text


def test_monitor_cannot_edit_indicators(testapp: Any, staff: Any, login: Any) -> None:
    login("monitor")
    page = testapp.get("/monitoring/indicators")
    assert "<form method=\"post\" action=\"/monitoring/indicators\"" not in page.text
    token = page.forms[0]["csrf_token"].value if page.forms else ""
    testapp.post("/monitoring/indicators", {"csrf_token": token, "code": "x1"}, status=403)


def test_staff_home_links_to_monitoring(testapp: Any, staff: Any, login: Any) -> None:
    login("district_a")
    assert "/monitoring" in testapp.get("/staff/").text


def test_charts_draw_chinese_with_a_cjk_font() -> None:
    """No missing-glyph warning: district and indicator names in Chinese are drawn."""
    import warnings

    from monitoring.results import charts

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = charts.interval_chart([{"title": "社区居民培训率", "share": True,
                                      "target": 0.55, "items": [("甲区", 0.6, 0.5, 0.7),
                                                                ("乙区", None, None, None)]}],
                                    "png")
        svg = charts.trend_chart({"甲区": [("A-2025", 0.5, 0.4, 0.6), ("A-2026", 0.6, 0.5,
                                                                          0.7)]},
                                 "老年人经常参加老年教育的比例", True, 0.26, "svg")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in svg
