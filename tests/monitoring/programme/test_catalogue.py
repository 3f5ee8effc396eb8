"""The indicator system: the plan's fourteen targets built in (idempotent), today's
survey indicators listed beside them, admins' definitions from the page and an XLSX
(all or nothing, problems by sheet, row and column)."""
from __future__ import annotations

import io
from typing import Any

import pytest
import sqlalchemy as sa

from monitoring.programme import catalogue
from monitoring.programme.models import ProgrammeIndicator
from tabular.reading import TableError

PLAN = {"online_courses": 300, "experimental_streets": 15, "experimental_projects": 50,
        "digital_communities": 30, "community_bases": 30, "workers_points": 30,
        "learning_alliances": 3, "learning_stars": 60, "brand_projects": 60,
        "community_learning_groups": 500, "learning_teams": 1000,
        "older_adult_share": 0.26, "residents_training_rate": 0.55,
        "learning_type_communities": 0.80}


def _count(db: Any) -> int:
    return db.scalar(sa.select(sa.func.count()).select_from(ProgrammeIndicator))


def test_the_plans_fourteen_targets_are_built_in_once(dbsession: Any) -> None:
    catalogue.ensure_builtin(dbsession)
    catalogue.ensure_builtin(dbsession)
    specs = {s.code: s for s in catalogue.list_indicators(dbsession)}
    assert {c: s.target for c, s in specs.items()} == PLAN
    assert _count(dbsession) == 14
    assert specs["older_adult_share"].direction == ">"
    assert specs["learning_type_communities"].source == "organisations"
    assert specs["older_adult_share"].source_code == "older_adult_education"
    assert all(s.target_year == 2025 and s.builtin for s in specs.values())
    # a built-in changed in the database is restored
    dbsession.get(ProgrammeIndicator, "learning_stars").target = 1
    catalogue.ensure_builtin(dbsession)
    assert dbsession.get(ProgrammeIndicator, "learning_stars").target == 60


def test_survey_indicators_are_listed_from_the_results_catalogue(dbsession: Any) -> None:
    codes = [i.code for i in catalogue.survey_indicators(dbsession)]
    assert {"older_adult_education", "community_training_rate"} <= set(codes)
    survey = [s for s in catalogue.list_indicators(dbsession) if s.source == "survey"]
    assert {s.source_code for s in survey} <= set(codes)


GOOD = {"code": "reading_rooms", "area_code": "community", "name_zh": "社区阅览室",
        "name_en": "Community reading rooms", "kind": "count", "source": "district",
        "target": "40", "target_year": "2025", "responsible": "districts",
        "gnlc": "2.2", "change_factor": "3", "cumulative": "yes"}


def test_an_admin_adds_an_indicator_and_bad_fields_are_named(dbsession: Any,
                                                              staff: Any) -> None:
    spec = catalogue.save_indicator(dbsession, GOOD, "admin")
    assert spec.target == 40 and spec.cumulative and not spec.builtin
    with pytest.raises(catalogue.CatalogueError) as info:
        catalogue.save_indicator(dbsession, {**GOOD, "code": "x2", "kind": "share",
                                             "target": "180%", "gnlc": "9.9",
                                             "source": "department", "responsible": ""},
                                 "admin")
    text = " | ".join(info.value.problems)
    assert "target: a share is between 0 and 1" in text
    assert "gnlc: not a GNLC Key Feature: 9.9" in text
    assert "responsible: a department-reported indicator" in text
    with pytest.raises(catalogue.CatalogueError, match="built-in"):
        catalogue.save_indicator(dbsession, {**GOOD, "code": "learning_stars"}, "admin")
    assert _count(dbsession) == 15


def _xlsx(rows: list[dict[str, Any]], sheet: str = "indicators") -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    ws = book.active
    ws.title = sheet
    ws.append(list(catalogue.FIELDS))
    for row in rows:
        ws.append([row.get(f, "") for f in catalogue.FIELDS])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def test_xlsx_import_is_all_or_nothing_naming_sheet_row_and_column(dbsession: Any) -> None:
    catalogue.ensure_builtin(dbsession)
    second = {**GOOD, "code": "night_schools", "kind": "ratio", "target": "abc"}
    with pytest.raises(TableError) as info:
        catalogue.import_xlsx(dbsession, _xlsx([GOOD, second]), "new.xlsx", "admin")
    [problem] = info.value.problems
    assert (problem.sheet, problem.row, problem.column) == ("indicators", 3, "target")
    assert "'abc' is not a number" in str(info.value)
    assert _count(dbsession) == 14  # the good first row was not stored either
    specs = catalogue.import_xlsx(dbsession, _xlsx([GOOD, {**second, "target": "2.5"}]),
                                  "new.xlsx", "admin")
    assert [s.code for s in specs] == ["reading_rooms", "night_schools"]
    assert _count(dbsession) == 16


def test_the_page_imports_and_refuses_with_the_place(testapp: Any, staff: Any,
                                                     login: Any, dbsession: Any) -> None:
    login("admin")
    page = testapp.get("/programme/system")
    assert "online_courses" in page.text and "older_adult_education" in page.text
    form = page.forms["indicator-import"]
    form["file"] = ("bad.xlsx", _xlsx([{**GOOD, "kind": "lots"}]))
    res = form.submit(status=400)
    assert "lots" not in res.text or "kind" in res.text
    assert "第 2 行" in res.text or "row 2" in res.text
    dbsession.expire_all()
    assert dbsession.get(ProgrammeIndicator, "reading_rooms") is None
    form = testapp.get("/programme/system").forms["indicator-import"]
    form["file"] = ("good.xlsx", _xlsx([GOOD]))
    form.submit(status=303)
    dbsession.expire_all()
    assert dbsession.get(ProgrammeIndicator, "reading_rooms") is not None


def test_only_admins_add_indicators(testapp: Any, staff: Any, login: Any) -> None:
    login("monitor")
    page = testapp.get("/programme/system")
    assert "indicator-form" not in page.text
    testapp.post("/programme/system", {**GOOD, "csrf_token": _csrf(page)}, status=403)


def _csrf(page: Any) -> str:
    return page.html.find("input", {"name": "csrf_token"})["value"]
