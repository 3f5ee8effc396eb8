"""The register: add and edit (district-scoped), XLSX import all or nothing."""
from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from learningcity import audit
from monitoring.organisations import register
from monitoring.organisations.models import Organisation
from tabular.reading import TableError
from tests.monitoring.organisations.conftest import ACTOR, workbook


def _rows(db: Any) -> list[tuple]:
    return [tuple(r) for r in db.execute(sa.select(
        Organisation.code, Organisation.district_code, Organisation.kind,
        Organisation.name_zh, Organisation.name_en).order_by(Organisation.code))]


def test_import_adds_and_updates_by_code(dbsession: Any, register_ab: Any) -> None:
    data = workbook(organisations=[
        {"code": "A-C1", "district": "A", "kind": "社区（村）", "name_zh": "新名字",
         "name_en": "New name"},
        {"code": "A-G1", "district": "A", "kind": "government", "name_zh": "区教育局",
         "name_en": ""},
    ])
    result = register.import_register(dbsession, "reg.xlsx", data, actor=ACTOR)
    assert (result.added, result.updated) == (1, 1)
    rows = {r[0]: r for r in _rows(dbsession)}
    assert rows["A-C1"][3] == "新名字" and rows["A-G1"][2] == "government"
    assert audit.count_events(dbsession, "organisation.import") == 1


def test_a_bad_register_names_sheet_row_column_and_changes_nothing(
        dbsession: Any, register_ab: Any) -> None:
    before = _rows(dbsession)
    data = workbook(organisations=[
        {"code": "A-C1", "district": "A", "kind": "community", "name_zh": "改了",
         "name_en": ""},                                                      # row 2: fine
        {"code": "A-X1", "district": "Z", "kind": "community", "name_zh": "x",
         "name_en": ""},                                                      # row 3
        {"code": "A-X2", "district": "A", "kind": "club", "name_zh": "y", "name_en": ""},
        {"code": "bad code!", "district": "A", "kind": "school", "name_zh": "",
         "name_en": ""},                                                      # row 5
        {"code": "A-C1", "district": "A", "kind": "school", "name_zh": "z",
         "name_en": ""},                                                      # row 6
    ])
    with pytest.raises(TableError) as caught:
        register.import_register(dbsession, "reg.xlsx", data, actor=ACTOR)
    where = {(p.sheet, p.row, p.column) for p in caught.value.problems}
    assert where == {("organisations", 3, "district"), ("organisations", 4, "kind"),
                     ("organisations", 5, "code"), ("organisations", 5, "name_zh"),
                     ("organisations", 6, "code")}
    text = str(caught.value)
    assert "sheet 'organisations', row 3, column 'district': unknown district 'Z'" in text
    assert "appears again (first in row 2)" in text
    dbsession.rollback()
    assert _rows(dbsession) == before
    assert audit.count_events(dbsession, "organisation.import") == 0


def test_a_district_imports_only_its_own_rows(dbsession: Any, register_ab: Any) -> None:
    before = _rows(dbsession)
    data = workbook(organisations=[
        {"code": "B-C1", "district": "A", "kind": "community", "name_zh": "抢来的",
         "name_en": ""},
        {"code": "B-C9", "district": "B", "kind": "community", "name_zh": "b",
         "name_en": ""},
    ])
    with pytest.raises(TableError) as caught:
        register.import_register(dbsession, "reg.xlsx", data, actor=ACTOR, scope="A")
    assert {(p.row, p.column) for p in caught.value.problems} == {(2, "code"),
                                                                 (3, "district")}
    dbsession.rollback()
    assert _rows(dbsession) == before


def test_missing_sheet_and_missing_column(dbsession: Any, staff: Any) -> None:
    with pytest.raises(TableError, match="no sheet 'organisations'"):
        register.import_register(dbsession, "reg.xlsx", workbook(other=[{"a": 1}]),
                                 actor=ACTOR)
    with pytest.raises(TableError) as caught:
        register.import_register(dbsession, "reg.xlsx", workbook(organisations=[
            {"code": "x", "district": "A", "name_zh": "y"}]), actor=ACTOR)
    assert [(p.sheet, p.row, p.column) for p in caught.value.problems] == [
        ("organisations", 1, "kind")]


def test_the_import_page_lists_problems_and_stores_nothing(
        dbsession: Any, register_ab: Any, client: Any) -> None:
    import webtest

    app = client("district_a")
    page = app.get("/organisations")
    form = page.forms["import"]
    form["file"] = webtest.Upload("reg.xlsx", workbook(organisations=[
        {"code": "A-N1", "district": "A", "kind": "nope", "name_zh": "n", "name_en": ""}]))
    res = form.submit(status=400)
    assert "第 2 行" in res.text and "kind" in res.text
    dbsession.rollback()
    assert dbsession.scalar(sa.select(Organisation.id).where(
        Organisation.code == "A-N1")) is None


def test_add_and_edit_pages_are_district_scoped(dbsession: Any, register_ab: Any,
                                                client: Any) -> None:
    a, b = client("district_a"), client("district_b")
    form = a.get("/organisations/new").forms["organisation"]
    assert [o[0] for o in form["district"].options] == ["A"]
    form["code"], form["kind"], form["name_zh"] = "A-P1", "party", "党支部"
    res = form.submit(status=303)
    new_id = int(res.location.rstrip("/").rsplit("/", 1)[-1])
    assert a.get(f"/organisations/{new_id}").status_int == 200
    assert b.get(f"/organisations/{new_id}", status=404)
    assert b.get(f"/organisations/{new_id}/edit", status=404)
    listing = b.get("/organisations").text
    assert "A-P1" not in listing and "B-C1" in listing
    edit = a.get(f"/organisations/{new_id}/edit").forms["organisation"]
    edit["name_zh"] = ""
    assert edit.submit(status=400).html.find(role="alert") is not None
    dbsession.rollback()
    assert dbsession.get(Organisation, new_id).name_zh == "党支部"
    assert audit.count_events(dbsession, "organisation.add") == 7
    assert audit.count_events(dbsession, "organisation.edit") == 0
