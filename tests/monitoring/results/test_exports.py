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
    header, data = rows[0], rows[1:]  # one header row: the labels are in the codebook
    assert header[:4] == ["group", "district", "district_name", "n"] and "estimate" in header
    book = testapp.get("/monitoring/export/groups.codebook", params=params)
    assert book.content_disposition.endswith('monitoring-groups-codebook.csv"')
    entries = list(csv.reader(io.StringIO(book.body.decode("utf-8-sig"))))
    assert entries[0] == ["variable", "label", "type", "value", "value_label"]
    labels = {r[0]: r[1] for r in entries[1:] if not r[3]}
    assert [labels[k] for k in header[:3]] == ["群体", "区县", "区县名称"]  # page language
    assert ["district", "", "", "A", "甲区"] in entries
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
    assert len(sheet) == len(rows) and {r[2] for r in sheet[1:]} == {"甲区"}
    assert book.sheetnames == ["groups", "codebook"]
    n_at = sheet[0].index("n")
    assert all(isinstance(r[n_at], int) for r in sheet[1:])
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
    assert en_rows[0] == header
    assert {r[2] for r in en_rows[1:]} == {"District A"}
    en_book = testapp.get("/monitoring/export/groups.codebook",
                          params={**params, "lang": "en"}).body.decode("utf-8-sig")
    assert "Group,code" in en_book and "District A" in en_book
    events = dbsession.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "monitoring.download").order_by(AuditEvent.id)).all()
    assert [e.target for e in events] == ["groups.csv", "groups.codebook", "groups.xlsx",
                                          "groups.sav", "groups.csv", "groups.codebook"]
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
    XLSX have one header row and the labels in a codebook; an SPSS reserved word is never
    a name."""
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
    assert rows == [["group", "n", "estimate", "and_x"],
                    ["'" + evil, "40", "0.25", ""], ["farmer", "", "", "1.5"]]
    book = list(csv.reader(io.StringIO(E.export(t, "codebook").decode("utf-8-sig"))))
    assert [r[:3] for r in book if not r[3]] == [
        ["group", "群体", "code"], ["n", "n", "integer"], ["estimate", "估计值", "number"],
        ["and_x", "和", "number"]]
    assert ["group", "", "", "'" + evil, "'" + evil] in book  # unknown codes: guarded
    workbook = openpyxl.load_workbook(io.BytesIO(E.export(t, "xlsx")))
    sheet = workbook.active
    assert sheet.title == "groups" and workbook.sheetnames == ["groups", "codebook"]
    cells = list(sheet.iter_rows(values_only=True))
    assert cells[0] == ("group", "n", "estimate", "and_x")
    assert cells[1] == (evil, 40, 0.25, None) and sheet["A2"].data_type == "s"
    coded = list(workbook["codebook"].iter_rows())
    assert all(c.data_type != "f" for row in coded for c in row)
    assert any(row[3].value == evil and row[3].data_type == "s" for row in coded)
    path = tmp_path / "t.sav"
    path.write_bytes(E.export(t, "sav"))
    frame, meta = pyreadstat.read_sav(str(path))
    assert meta.column_names == ["group", "n", "estimate", "and_x"]
    assert meta.column_names_to_labels == {"group": "群体", "n": "n", "estimate": "估计值",
                                           "and_x": "和"}
    assert frame["group"].tolist() == [evil, "farmer"] and frame["n"].iloc[0] == 40
    assert meta.original_variable_types == {"group": "A120", "n": "F8.0",
                                            "estimate": "F10.4", "and_x": "F10.4"}
    assert meta.variable_measure == {"group": "nominal", "n": "scale", "estimate": "scale",
                                     "and_x": "scale"}
    assert meta.variable_value_labels["group"]["farmer"] == "Farmers"  # str(): the msgid
    assert meta.variable_value_labels["group"][evil] == evil
