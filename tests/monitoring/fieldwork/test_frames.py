"""Frame import: encodings, XLSX, every problem listed with row and column, all or nothing."""
from __future__ import annotations

import io
from typing import Any

import pytest
import sqlalchemy as sa

from monitoring.fieldwork import frames
from monitoring.fieldwork.models import CampaignStratum, FrameUnit, FrameUpload

from ..conftest import ACTOR, cluster_rows, to_csv, unit_rows

UNIT = frames.FrameSpec("unit", "hh_id", ["street", "age_band"])
CLUSTER = frames.FrameSpec("cluster", "community", ["area"], "population")


def _counts(db: Any, campaign: Any) -> tuple[int, int, int]:
    return tuple(db.scalar(sa.select(sa.func.count()).select_from(t).where(
        t.campaign_id == campaign.id)) for t in (FrameUnit, CampaignStratum, FrameUpload))


def test_unit_frame_stored_with_strata(make_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = make_campaign()
    rows = unit_rows()
    upload = frames.import_frame(db, campaign, "hh.csv", to_csv(rows, bom=True), UNIT, ACTOR)
    db.commit()
    assert upload.n_rows == len(rows)
    assert upload.columns == ["hh_id", "street", "age_band", "sex"]
    units = db.scalars(sa.select(FrameUnit).where(FrameUnit.campaign_id == campaign.id)
                       .order_by(FrameUnit.row_number)).all()
    assert [u.unit_key for u in units] == [r["hh_id"] for r in rows]
    assert units[0].row_number == 2  # header is row 1
    assert units[0].attributes == rows[0]
    expected: dict[str, int] = {}
    for r in rows:
        key = f"{r['street']} / {r['age_band']}"
        expected[key] = expected.get(key, 0) + 1
    strata = {s.stratum: s for s in campaign.strata}
    assert {k: s.frame_rows for k, s in strata.items()} == expected
    assert {k: s.population for k, s in strata.items()} == {k: float(v)
                                                             for k, v in expected.items()}
    assert strata["S01 / 60+"].values == {"street": "S01", "age_band": "60+"}


def test_cluster_frame_population_is_sum_of_sizes(make_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = make_campaign()
    rows = cluster_rows()
    frames.import_frame(db, campaign, "c.csv", to_csv(rows), CLUSTER, ACTOR)
    strata = {s.stratum: s for s in campaign.strata}
    for area in ("urban", "rural"):
        want = sum(float(r["population"]) for r in rows if r["area"] == area)
        assert strata[area].population == want
        assert strata[area].frame_rows == sum(r["area"] == area for r in rows)
    unit = db.scalar(sa.select(FrameUnit).where(FrameUnit.campaign_id == campaign.id,
                                                FrameUnit.unit_key == "U00"))
    assert unit.size == 1200.0 and unit.psu == "U00"


def test_gbk_csv_from_excel(make_campaign, monitoring_demo) -> None:
    campaign = make_campaign()
    rows = [{"编号": f"H{i}", "街道": "东湖街道" if i % 2 else "西山街道", "年龄段": "60+"}
            for i in range(6)]
    data = to_csv(rows, encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    frames.import_frame(monitoring_demo, campaign, "gbk.csv", data,
                        frames.FrameSpec("unit", "编号", ["街道", "年龄段"]), ACTOR)
    assert sorted(s.stratum for s in campaign.strata) == ["东湖街道 / 60+", "西山街道 / 60+"]


def test_xlsx_frame(make_campaign, monitoring_demo) -> None:
    from openpyxl import Workbook

    campaign = make_campaign()
    wb = Workbook()
    ws = wb.active
    ws.append(["community", "area", "population"])
    ws.append(["C1", "urban", 1500])
    ws.append(["C2", "rural", 320.0])
    buffer = io.BytesIO()
    wb.save(buffer)
    frames.import_frame(monitoring_demo, campaign, "f.xlsx", buffer.getvalue(), CLUSTER, ACTOR)
    assert {s.stratum: s.population for s in campaign.strata} == {"urban": 1500.0,
                                                                  "rural": 320.0}


def test_every_problem_listed_and_nothing_changed(make_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = make_campaign()
    good = cluster_rows()
    frames.import_frame(db, campaign, "good.csv", to_csv(good), CLUSTER, ACTOR)
    db.commit()
    before = _counts(db, campaign)
    bad = [dict(r) for r in good]
    bad[1]["community"] = bad[0]["community"]   # duplicate id, row 3
    bad[2]["area"] = ""                          # empty stratum, row 4
    bad[3]["population"] = "many"                # non-numeric, row 5
    bad[4]["population"] = "0"                   # non-positive, row 6
    bad[5]["population"] = "-3"                  # non-positive, row 7
    bad[6]["community"] = ""                     # empty id, row 8
    with pytest.raises(frames.FrameError) as caught:
        frames.import_frame(db, campaign, "bad.csv", to_csv(bad), CLUSTER, ACTOR)
    found = {(p.row, p.column) for p in caught.value.problems}
    assert found == {(3, "community"), (4, "area"), (5, "population"), (6, "population"),
                     (7, "population"), (8, "community")}
    assert "row 3" in str(caught.value) and "bad.csv" in str(caught.value)
    db.rollback()
    assert _counts(db, campaign) == before


def test_missing_columns_listed(make_campaign, monitoring_demo) -> None:
    campaign = make_campaign()
    spec = frames.FrameSpec("cluster", "code", ["area", "zone"], "people")
    with pytest.raises(frames.FrameError) as caught:
        frames.import_frame(monitoring_demo, campaign, "c.csv", to_csv(cluster_rows()), spec,
                            ACTOR)
    missing = sorted(p.column for p in caught.value.problems)
    assert missing == ["code", "people", "zone"]
    assert _counts(monitoring_demo, campaign) == (0, 0, 0)


def test_too_many_rows(make_campaign, monitoring_demo) -> None:
    campaign = make_campaign()
    with pytest.raises(frames.FrameError) as caught:
        frames.import_frame(monitoring_demo, campaign, "u.csv", to_csv(unit_rows()), UNIT,
                            ACTOR, max_rows=20)
    assert any("more than 20" in p.message for p in caught.value.problems)
    assert _counts(monitoring_demo, campaign) == (0, 0, 0)


def test_not_text_refused(make_campaign, monitoring_demo) -> None:
    campaign = make_campaign()
    with pytest.raises(frames.FrameError, match="neither UTF-8 nor GBK"):
        frames.import_frame(monitoring_demo, campaign, "x.csv", b"\xff\xfe\x00\x81\xff" * 10,
                            UNIT, ACTOR)


def test_reupload_replaces_before_draw_refused_after(drawn_campaign, make_campaign,
                                                     monitoring_demo) -> None:
    db = monitoring_demo
    campaign = make_campaign()
    frames.import_frame(db, campaign, "u.csv", to_csv(unit_rows()), UNIT, ACTOR)
    frames.import_frame(db, campaign, "c.csv", to_csv(cluster_rows()), CLUSTER, ACTOR)
    db.commit()
    assert _counts(db, campaign)[:2] == (len(cluster_rows()), 2)
    assert campaign.design["frame"]["kind"] == "cluster"

    drawn = drawn_campaign()
    before = _counts(db, drawn)
    with pytest.raises(ValueError, match="after the draw"):
        frames.import_frame(db, drawn, "c.csv", to_csv(cluster_rows()), CLUSTER, ACTOR)
    assert _counts(db, drawn) == before


def test_rows_stored_in_chunks_with_progress(make_campaign, monitoring_demo,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Bulk path (executemany on SQLite, COPY on PostgreSQL): every row, every value,
    in order, progress reported per chunk."""
    db = monitoring_demo
    monkeypatch.setattr(frames, "INSERT_CHUNK", 7)
    rows = unit_rows()
    rows[0]["street"] = "南京路"
    rows[1]["sex"] = "a\\N b"  # a backslash (COPY's escape character)
    campaign = make_campaign()
    steps: list[int] = []
    frames.import_frame(db, campaign, "u.csv", to_csv(rows),
                        frames.FrameSpec("unit", "hh_id", ["street", "age_band"]), ACTOR,
                        progress=steps.append)
    db.commit()
    assert sum(steps) == len(rows) and max(steps) == 7 and len(steps) == -(-len(rows) // 7)
    stored = db.execute(sa.select(FrameUnit.row_number, FrameUnit.unit_key,
                                  FrameUnit.attributes, FrameUnit.selected, FrameUnit.size,
                                  FrameUnit.psu).order_by(FrameUnit.row_number)).all()
    assert [s.unit_key for s in stored] == [r["hh_id"] for r in rows]
    assert [s.row_number for s in stored] == list(range(2, len(rows) + 2))
    assert stored[0].attributes["street"] == "南京路"
    assert stored[1].attributes["sex"] == "a\\N b"
    assert all(s.selected is False and s.size is None and s.psu is None for s in stored)


def test_problems_are_tabulars_naming_file_sheet_row_and_column(make_campaign,
                                                                monitoring_demo) -> None:
    """One error type: a FrameError is tabular's TableError; in a workbook each problem
    names the sheet too, and ragged rows are reported by the one reader."""
    from openpyxl import Workbook

    from tabular.reading import Problem, TableError

    campaign = make_campaign()
    wb = Workbook()
    ws = wb.active
    ws.title = "frame"
    ws.append(["community", "area", "population"])
    ws.append(["C1", "", 10])
    ws.append(["C2", "urban", "lots"])
    buffer = io.BytesIO()
    wb.save(buffer)
    with pytest.raises(frames.FrameError) as caught:
        frames.import_frame(monitoring_demo, campaign, "f.xlsx", buffer.getvalue(), CLUSTER,
                            ACTOR)
    assert isinstance(caught.value, TableError)
    assert caught.value.problems == [
        Problem("f.xlsx", "frame", 2, "area", "empty stratum value"),
        Problem("f.xlsx", "frame", 3, "population", "population count 'lots' is not a number")]
    assert "f.xlsx: sheet 'frame', row 3, column 'population'" in str(caught.value)
    ragged = b"hh_id,street,age_band\r\nH1,S01,60+,extra\r\nH2,S02,60+\r\n"
    with pytest.raises(frames.FrameError) as caught:
        frames.import_frame(monitoring_demo, campaign, "r.csv", ragged, UNIT, ACTOR)
    assert [(p.file, p.row) for p in caught.value.problems] == [("r.csv", 2)]
    assert _counts(monitoring_demo, campaign) == (0, 0, 0)


def test_preview_columns_reads_only_the_header() -> None:
    assert frames.preview_columns("p.csv", "\ufeff编号,街道\r\n1,2\r\n".encode()) == [
        "编号", "街道"]
    with pytest.raises(frames.FrameError, match="the file is empty"):
        frames.preview_columns("p.csv", b"")
