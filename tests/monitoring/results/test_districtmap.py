"""The district map: pure drawing (every feature, colours by verdict, no-data hatch,
aspect kept), the GeoJSON checks, and the page (upload errors, scoping)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from monitoring.results import districtmap as dm

SVG = "{http://www.w3.org/2000/svg}"


def _square(code: str, x: float, y: float, w: float = 1, h: float = 1) -> dict[str, Any]:
    ring = [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
    return {"type": "Feature", "properties": {"code": code},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def _collection(*features: dict[str, Any]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def test_every_feature_drawn_and_coloured_by_verdict() -> None:
    feats = dm.parse_geojson(_collection(_square("A", 0, 0), _square("B", 1, 0),
                                         _square("C", 2, 0), _square("D", 3, 0)))
    values = {"A": {"verdict": "met"}, "B": {"verdict": "not_met"},
              "C": {"verdict": "undetermined"}}
    svg = dm.render_map_svg(feats, values, title="T", legend={v: v for v in dm.VERDICTS})
    root = ET.fromstring(svg)
    paths = {p.get("data-district"): p for p in root.iter(SVG + "path")}
    assert set(paths) == {"A", "B", "C", "D"}
    assert paths["A"].get("fill") == dm.COLOURS["met"]
    assert paths["B"].get("fill") == dm.COLOURS["not_met"]
    assert paths["C"].get("fill") == dm.COLOURS["undetermined"]
    assert paths["D"].get("fill") == "url(#nodata-hatch)"
    assert root.find(f".//{SVG}pattern[@id='nodata-hatch']") is not None
    assert "style=" not in svg
    assert {r.get("data-legend") for r in root.iter(SVG + "rect") if r.get("data-legend")} \
        == set(dm.VERDICTS)


def test_projection_keeps_aspect() -> None:
    feats = dm.parse_geojson(_collection(_square("A", 0, 0, 2, 1)))  # near the equator
    shapes, height = dm.project(feats, width=420, margin=10)
    xs = [p[0] for p in shapes["A"][0][0]]
    ys = [p[1] for p in shapes["A"][0][0]]
    assert (max(xs) - min(xs)) == pytest.approx(2 * (max(ys) - min(ys)), rel=1e-3)
    assert max(xs) == pytest.approx(410) and height == pytest.approx(220, rel=1e-3)
    north = dm.parse_geojson(_collection(_square("A", 0, 59.5, 2, 1)))  # cos 60° = 0.5
    shapes, _h = dm.project(north, width=420, margin=10)
    xs = [p[0] for p in shapes["A"][0][0]]
    ys = [p[1] for p in shapes["A"][0][0]]
    assert (max(xs) - min(xs)) == pytest.approx(max(ys) - min(ys), rel=0.02)


@pytest.mark.parametrize("text, message", [
    ("not json", "not JSON"),
    ('{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
    (json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": None}]}), "feature 1: no district code"),
    (_collection(_square("A", 0, 0), _square("ZZ", 1, 0)), "feature 2: unknown district code 'ZZ'"),
])
def test_geojson_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(dm.MapError, match=message):
        dm.parse_geojson(text, {"A", "B"})


def test_demo_schematic_has_twelve_districts() -> None:
    feats = dm.parse_geojson(json.dumps(dm.demo_geojson()))
    assert [f.code for f in feats] == [f"D{i:02d}" for i in range(1, 13)]


# ------------------------------------------------------------------ the page


def _upload(testapp: Any, body: str, status: int = 303) -> Any:
    page = testapp.get("/monitoring/map?lang=en")
    form = page.forms["map-upload"]
    form["geojson"] = ("d.geojson", body.encode())
    return form.submit(status=status)


def test_admin_uploads_boundaries_and_map_is_drawn(testapp: Any, aggregated: Any,
                                                   login: Any) -> None:
    login("admin")
    page = testapp.get("/monitoring/map?lang=en")
    assert "No district boundaries yet" in page.text
    _upload(testapp, _collection(_square("A", 0, 0), _square("B", 1, 0)))
    page = testapp.get("/monitoring/map?lang=en&indicator=community_training_rate&year=2026")
    assert "<svg" in page.text and 'data-district="A"' in page.text \
        and 'data-district="B"' in page.text
    assert "District A" in page.text and "District B" in page.text
    drawn = [v for v in dm.VERDICTS[:3] if f'data-verdict="{v}"' in page.text]
    assert drawn, "districts with 2026 estimates are coloured by their verdict"
    assert "meets the target" in page.text and "95% interval" in page.text
    zh = testapp.get("/monitoring/map?lang=zh-CN")
    assert "甲区" in zh.text


@pytest.mark.parametrize("body, message", [
    ("{not json", "not JSON"),
    ('{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
    (json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "x"},
         "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}]}),
     "feature 1: no district code"),
    (_collection(_square("A", 0, 0), _square("Q9", 1, 0)), "feature 2: unknown district code"),
])
def test_upload_errors_change_nothing(testapp: Any, aggregated: Any, login: Any,
                                      body: str, message: str) -> None:
    login("admin")
    _upload(testapp, _collection(_square("A", 0, 0)))
    res = _upload(testapp, body, status=400)
    assert message in res.text
    page = testapp.get("/monitoring/map?lang=en")
    assert 'data-district="A"' in page.text and 'data-district="B"' not in page.text


def test_district_staff_see_own_district_and_cannot_upload(testapp: Any, aggregated: Any,
                                                           login: Any) -> None:
    login("admin")
    _upload(testapp, _collection(_square("A", 0, 0), _square("B", 1, 0)))
    testapp.reset()
    login("district_a")
    page = testapp.get("/monitoring/map?lang=en")
    assert 'data-district="A"' in page.text and 'data-district="B"' not in page.text
    assert "District B" not in page.text
    assert 'name="geojson"' not in page.text
    testapp.post("/monitoring/map", {"csrf_token": "x"}, status=403)


def test_map_svg_for_returns_none_without_boundaries(dbsession: Any, aggregated: Any) -> None:
    from monitoring.results.dashboard import Scope

    assert dm.map_svg_for(dbsession, Scope(None), "community_training_rate", 2026) is None
    dm.save_boundaries(dbsession, _collection(_square("A", 0, 0), _square("B", 1, 0)))
    svg = dm.map_svg_for(dbsession, Scope("B"), "community_training_rate", 2026, "en")
    assert svg and 'data-district="B"' in svg and 'data-district="A"' not in svg


def test_load_demo_keeps_known_codes_and_is_idempotent(dbsession: Any, staff: Any) -> None:
    from learningcity.districts import add_district

    add_district(dbsession, "D01", "一区", "District 1")
    add_district(dbsession, "D02", "二区", "District 2")
    dm.load_demo(dbsession)
    assert [f.code for f in dm.stored_features(dbsession)] == ["D01", "D02"]
    dm.load_demo(dbsession)
    assert len(dm.stored_features(dbsession)) == 2


def test_no_data_district_labelled_in_chinese(dbsession: Any, aggregated: Any) -> None:
    from monitoring.results.dashboard import Scope

    dm.save_boundaries(dbsession, _collection(_square("A", 0, 0), _square("B", 1, 0)))
    svg = dm.map_svg_for(dbsession, Scope(None), "community_training_rate", 1999, "zh-CN")
    assert svg and "无数据" in svg and svg.count('data-verdict="no_data"') == 2
