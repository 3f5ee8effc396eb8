"""Monitoring pages, charts, downloads and the aggregates API: rendering in both
languages, valid charts, downloads that parse and are logged, and district scoping."""
from __future__ import annotations

import csv
import datetime as dt
import html
import io
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import sqlalchemy as sa

from monitoring.results import aggregate as A
from tests.monitoring.synthetic import respondents


def _campaigns() -> dict[str, Any]:
    return {
        "A-2025": respondents(seed=1, district="A", code="A-2025", participation=0.4,
                              closes=dt.datetime(2025, 6, 30, tzinfo=dt.UTC)),
        "A-2026": respondents(seed=2, district="A", code="A-2026", participation=0.6,
                              closes=dt.datetime(2026, 6, 30, tzinfo=dt.UTC)),
        "B-2026": respondents(seed=3, district="B", code="B-2026", participation=0.5,
                              closes=dt.datetime(2026, 6, 30, tzinfo=dt.UTC)),
    }


@pytest.fixture(scope="module")
def computed() -> dict[str, Any]:
    """The three campaigns' aggregate rows, computed once (the statistics are tested in
    test_aggregate.py; here they only feed the pages)."""
    from monitoring.results.indicators import catalogue

    return {code: (data, A.compute_aggregates(data, catalogue()))
            for code, data in _campaigns().items()}


@pytest.fixture
def aggregated(dbsession: Any, staff: Any, computed: dict[str, Any]) -> dict[str, Any]:
    """Campaigns A-2025 and A-2026 (district A) and B-2026 (district B) in the
    monitoring database."""
    for data, rows in computed.values():
        A.write_aggregates(dbsession, data.campaign, rows, len(data.frame))
    dbsession.commit()
    return {code: data for code, (data, _rows) in computed.items()}


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


@pytest.mark.parametrize("table", ["overview", "groups", "trends", "districts"])
def test_charts_are_valid_svg_and_png(testapp: Any, aggregated: Any, login: Any,
                                      table: str) -> None:
    login("monitor")
    svg = testapp.get(f"/monitoring/charts/{table}.svg")
    assert ET.fromstring(svg.body).tag == "{http://www.w3.org/2000/svg}svg"
    png = testapp.get(f"/monitoring/charts/{table}.png")
    assert png.content_type == "image/png" and png.body[:8] == b"\x89PNG\r\n\x1a\n"
    testapp.get(f"/monitoring/charts/{table}.gif", status=404)


def test_downloads_parse_and_are_logged(testapp: Any, aggregated: Any, login: Any,
                                        dbsession: Any, tmp_path: Any) -> None:
    import openpyxl
    import pyreadstat

    from learningcity.models import AuditEvent

    login("monitor")
    params = {"campaign": "A-2026", "measure": "community_training_rate",
              "dimension": "group"}
    res = testapp.get("/monitoring/export/groups.csv", params=params)
    assert res.body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(res.body.decode("utf-8-sig"))))
    header, labels, data = rows[0], rows[1], rows[2:]
    assert header[:4] == ["group", "district", "district_name", "n"] and "estimate" in header
    assert labels[:3] == ["群体", "区县", "区县名称"]  # variable labels in the page's language
    by_group = {r[0]: dict(zip(header, r, strict=True)) for r in data}
    assert {r["district"] for r in by_group.values()} == {"A"}
    assert {r["district_name"] for r in by_group.values()} == {"甲区"}  # name beside code
    assert by_group["civil_servant"]["estimate"] == "" and by_group["civil_servant"][
        "suppressed"] == "1"
    assert 0 < float(by_group["farmer"]["estimate"]) < 1
    xlsx = testapp.get("/monitoring/export/groups.xlsx", params=params)
    book = openpyxl.load_workbook(io.BytesIO(xlsx.body))
    sheet = list(book.active.iter_rows(values_only=True))
    assert list(sheet[0][:4]) == ["group", "district", "district_name", "n"]
    assert len(sheet) == len(rows) and {r[2] for r in sheet[2:]} == {"甲区"}
    sav = testapp.get("/monitoring/export/groups.sav", params=params)
    path = tmp_path / "t.sav"
    path.write_bytes(sav.body)
    frame, meta = pyreadstat.read_sav(str(path))
    assert len(frame) == len(data) and "estimate" in frame.columns
    assert set(frame["district_name"]) == {"甲区"}
    assert meta.column_names_to_labels["estimate"] in ("估计值", "Estimate")
    farmer = frame[frame["group"] == "farmer"]["estimate"].iloc[0]
    assert farmer == pytest.approx(float(by_group["farmer"]["estimate"]), rel=1e-9)
    en = testapp.get("/monitoring/export/groups.csv", params={**params, "lang": "en"})
    en_rows = list(csv.reader(io.StringIO(en.body.decode("utf-8-sig"))))
    assert en_rows[1][:3] == ["Group", "District", "District name"]
    assert {r[2] for r in en_rows[2:]} == {"District A"}
    events = dbsession.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "monitoring.download").order_by(AuditEvent.id)).all()
    assert [e.target for e in events] == ["groups.csv", "groups.xlsx", "groups.sav",
                                          "groups.csv"]
    assert {e.actor for e in events} == {"monitor"}
    assert events[0].detail["params"]["measure"] == "community_training_rate"
    assert all(e.at is not None for e in events)


def test_csv_cells_are_formula_guarded() -> None:
    from monitoring.results import dashboard as D

    t = D.Table("x", "x", [D.Column("group", "g"), D.Column("n", "n", "int")],
                [{"group": "=HYPERLINK(\"http://x\")", "n": 40}])
    text = D.export(t, "csv").decode("utf-8-sig")
    assert "'=HYPERLINK" in text


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
        body = testapp.get(f"/monitoring/export/{table}.csv").body.decode("utf-8-sig")
        assert "B-2026" not in body and ",B," not in body, table
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


def test_every_format_has_the_names_labels_and_exact_text(tmp_path: Any) -> None:
    """Through tabular's registry: the XLSX holds a formula-like label as that exact text
    (a string cell, never a formula), the SAV keeps variable labels and numbers, CSV and
    XLSX carry the labels as a second header row; an SPSS reserved word is never a name."""
    import openpyxl
    import pyreadstat

    from monitoring.results import dashboard as D

    evil = '=HYPERLINK("http://x")'
    t = D.Table("groups", "g", [D.Column("group", "群体", "group"), D.Column("n", "n", "int"),
                                D.Column("estimate", "估计值", "value"),
                                D.Column("and", "和", "number")],
                [{"group": evil, "n": 40, "estimate": 0.25, "and": None},
                 {"group": "farmer", "n": None, "estimate": None, "and": 1.5}])
    rows = list(csv.reader(io.StringIO(D.export(t, "csv").decode("utf-8-sig"))))
    assert rows == [["group", "n", "estimate", "and_x"], ["群体", "n", "估计值", "和"],
                    ["'" + evil, "40", "0.25", ""], ["farmer", "", "", "1.5"]]
    sheet = openpyxl.load_workbook(io.BytesIO(D.export(t, "xlsx"))).active
    assert sheet.title == "groups"
    cells = list(sheet.iter_rows(values_only=True))
    assert cells[:2] == [("group", "n", "estimate", "and_x"), ("群体", "n", "估计值", "和")]
    assert cells[2] == (evil, 40, 0.25, None) and sheet["A3"].data_type == "s"
    path = tmp_path / "t.sav"
    path.write_bytes(D.export(t, "sav"))
    frame, meta = pyreadstat.read_sav(str(path))
    assert meta.column_names == ["group", "n", "estimate", "and_x"]
    assert meta.column_names_to_labels == {"group": "群体", "n": "n", "estimate": "估计值",
                                           "and_x": "和"}
    assert frame["group"].tolist() == [evil, "farmer"] and frame["n"].iloc[0] == 40
