"""The yearly monitoring report: the page (every indicator with its verdict, district
staff scoped) and ``learningcity monitoring report`` (PDF with Chinese text and the CJK
font embedded; a year without data is a clear error)."""
from __future__ import annotations

import re
import zlib
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner

from learningcity.cli import main
from tests.conftest import write_ini


def test_report_page_has_every_indicator_and_verdict(testapp: Any, aggregated: Any,
                                                     login: Any, dbsession: Any) -> None:
    from monitoring.results.warehouse import Aggregate

    login("monitor")
    text = testapp.get("/monitoring/report", params={"year": 2026, "lang": "en"}).text
    rows = dbsession.scalars(sa.select(Aggregate).where(
        Aggregate.kind == "indicator", Aggregate.dimension == "district",
        Aggregate.campaign.in_(["A-2026", "B-2026"]))).all()
    assert rows
    words = {"met": "met", "not_met": "not met", "undetermined": "not distinguishable"}
    for r in rows:
        assert r.label_en in text, r.measure
        assert words.get(r.judgement, "not available") in text, r.measure
    assert "<svg" in text and "report.css" in text
    assert "Suppression rules" in text and "Design notes" in text
    assert "A-2025" not in text
    zh = testapp.get("/monitoring/report", params={"year": 2026, "lang": "zh-CN"}).text
    assert "社区居民培训率" in zh and "2026 年监测报告" in zh and "设计说明" in zh
    assert "隐藏规则" in zh and "Suppression rules" not in zh
    missing = testapp.get("/monitoring/report", params={"year": 1999, "lang": "en"},
                          status=404)
    assert "1999" in missing.text and "2026" in missing.text
    testapp.get("/monitoring/report", params={"year": "abc"}, status=400)


def test_report_page_is_scoped_for_district_staff(testapp: Any, aggregated: Any,
                                                  login: Any) -> None:
    login("district_a")
    text = testapp.get("/monitoring/report", params={"year": 2026}).text
    assert "A-2026" in text and "B-2026" not in text and "乙区" not in text


def _pdf_objects(body: bytes) -> bytes:
    """The PDF with its compressed streams (object streams included) inflated."""
    out = [body]
    for m in re.finditer(rb"stream\r?\n", body):
        try:
            out.append(zlib.decompressobj().decompress(body[m.end():]))
        except zlib.error:
            continue
    return b"\n".join(out)


def test_cli_writes_a_pdf_with_chinese_and_the_cjk_font(tmp_path: Any, db_url: str,
                                                         aggregated: Any) -> None:
    ini = write_ini(tmp_path, db_url)
    out = tmp_path / "REPORT.pdf"
    done = CliRunner().invoke(main, ["monitoring", "report", "--ini", ini, "--year", "2026",
                                     "--out", str(out)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    body = out.read_bytes()
    assert body.startswith(b"%PDF")
    from learningcity.fonts import cjk_font_path

    assert cjk_font_path() is not None
    objects = _pdf_objects(body)
    # the CJK font of the report's @font-face is embedded (a subset: /FontFile2 or 3)
    assert b"/FontFile" in objects
    assert re.search(rb"/FontName\s*/[A-Z]{6}\+ReportCJK", objects)
    # and its text is Chinese: the ToUnicode map holds 社 (U+793E) and 区 (U+533A)
    assert b"793e" in objects.lower() and b"533a" in objects.lower()
    html_out = tmp_path / "REPORT.html"
    done = CliRunner().invoke(main, ["monitoring", "report", "--ini", ini, "--year", "2026",
                                     "--out", str(html_out)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    text = html_out.read_text(encoding="utf-8")
    assert "社区居民培训率" in text and "@font-face" in text and "B-2026" in text


def test_cli_bad_year_is_a_clear_error(tmp_path: Any, db_url: str, aggregated: Any) -> None:
    ini = write_ini(tmp_path, db_url)
    done = CliRunner().invoke(main, ["monitoring", "report", "--ini", ini, "--year", "1999",
                                     "--out", str(tmp_path / "r.pdf")])
    assert done.exit_code == 1
    assert "1999" in done.output and not (tmp_path / "r.pdf").exists()


def test_report_draws_the_map_when_the_map_module_has_one(testapp: Any, aggregated: Any,
                                                          login: Any, monkeypatch: Any) -> None:
    from monitoring.results import districtmap

    calls: list[tuple[str, int, str | None]] = []

    def fake(db: Any, scope: Any, code: str, year: int, locale: str, **kw: Any) -> str:
        calls.append((code, year, scope.district))
        return '<svg xmlns="http://www.w3.org/2000/svg" id="m"><title>MAP-OF</title></svg>'

    monkeypatch.setattr(districtmap, "map_svg_for", fake, raising=False)
    login("district_a")
    text = testapp.get("/monitoring/report", params={"year": 2026}).text
    assert "MAP-OF" in text and calls and all(c[1:] == (2026, "A") for c in calls)
    monkeypatch.delattr(districtmap, "map_svg_for")
    text = testapp.get("/monitoring/report", params={"year": 2026}).text
    assert "MAP-OF" not in text and "A-2026" in text


def test_report_labels_simulated_data(testapp: Any, aggregated: Any, login: Any,
                                      dbsession: Any) -> None:
    from monitoring.results.dashboard import SIMULATED_MARK
    from monitoring.results.warehouse import MonitoringRun

    run = dbsession.scalar(sa.select(MonitoringRun).where(MonitoringRun.campaign == "A-2025"))
    run.campaign_name = f"{SIMULATED_MARK} demo"
    dbsession.commit()
    login("monitor")
    text = testapp.get("/monitoring/report", params={"year": 2025, "lang": "en"}).text
    assert "Simulated data" in text and "A-2025" in text
    text = testapp.get("/monitoring/report", params={"year": 2026, "lang": "en"}).text
    assert "Simulated data" not in text
