"""Monitoring downloads (CSV, XLSX, SPSS .sav): what R, pandas and SPSS read back."""
from __future__ import annotations

import csv
import io
from typing import Any

import pytest
import sqlalchemy as sa


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
    from monitoring.results import exports as E

    t = D.Table("x", "x", [D.Column("group", "g"), D.Column("n", "n", "int")],
                [{"group": "=HYPERLINK(\"http://x\")", "n": 40}])
    text = E.export(t, "csv").decode("utf-8-sig")
    assert "'=HYPERLINK" in text


def test_every_format_has_the_names_labels_and_exact_text(tmp_path: Any) -> None:
    """Through tabular's registry: the XLSX holds a formula-like label as that exact text
    (a string cell, never a formula), the SAV keeps variable labels and numbers, CSV and
    XLSX carry the labels as a second header row; an SPSS reserved word is never a name."""
    import openpyxl
    import pyreadstat

    from monitoring.results import dashboard as D
    from monitoring.results import exports as E

    evil = '=HYPERLINK("http://x")'
    t = D.Table("groups", "g", [D.Column("group", "群体", "group"), D.Column("n", "n", "int"),
                                D.Column("estimate", "估计值", "value"),
                                D.Column("and", "和", "number")],
                [{"group": evil, "n": 40, "estimate": 0.25, "and": None},
                 {"group": "farmer", "n": None, "estimate": None, "and": 1.5}])
    rows = list(csv.reader(io.StringIO(E.export(t, "csv").decode("utf-8-sig"))))
    assert rows == [["group", "n", "estimate", "and_x"], ["群体", "n", "估计值", "和"],
                    ["'" + evil, "40", "0.25", ""], ["farmer", "", "", "1.5"]]
    sheet = openpyxl.load_workbook(io.BytesIO(E.export(t, "xlsx"))).active
    assert sheet.title == "groups"
    cells = list(sheet.iter_rows(values_only=True))
    assert cells[:2] == [("group", "n", "estimate", "and_x"), ("群体", "n", "估计值", "和")]
    assert cells[2] == (evil, 40, 0.25, None) and sheet["A3"].data_type == "s"
    path = tmp_path / "t.sav"
    path.write_bytes(E.export(t, "sav"))
    frame, meta = pyreadstat.read_sav(str(path))
    assert meta.column_names == ["group", "n", "estimate", "and_x"]
    assert meta.column_names_to_labels == {"group": "群体", "n": "n", "estimate": "估计值",
                                           "and_x": "和"}
    assert frame["group"].tolist() == [evil, "farmer"] and frame["n"].iloc[0] == 40
