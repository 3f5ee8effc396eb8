"""The period's XLSX template: download, fill, upload; a bad file is refused naming
sheet, row and column, and the report keeps its values."""
from __future__ import annotations

import io
from typing import Any

import sqlalchemy as sa
from openpyxl import load_workbook

from monitoring.programme import reporting
from monitoring.programme.models import ProgrammeValue
from tabular.reading import TableError
from tests.monitoring.programme.test_reporting import A_2024, _client


def _fill(template: bytes, values: dict[str, Any]) -> bytes:
    book = load_workbook(io.BytesIO(template))
    ws = book["report"]
    header = [c.value for c in ws[1]]
    for row in ws.iter_rows(min_row=2):
        code = row[header.index("code")].value
        for name, value in values.get(code, {}).items():
            row[header.index(name)].value = value
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _stored(db: Any) -> dict[str, tuple[Any, Any]]:
    db.expire_all()
    return {v.indicator_code: (v.value, v.denominator)
            for v in db.scalars(sa.select(ProgrammeValue))}


FILLED = {"experimental_streets": {"value": 1}, "experimental_projects": {"value": 2},
          "digital_communities": {"value": 3}, "community_bases": {"value": 4},
          "learning_stars": {"value": 5}, "brand_projects": {"value": 6},
          "community_learning_groups": {"value": 7}, "learning_teams": {"value": 8},
          "learning_type_communities": {"value": 30, "denominator": 40,
                                        "comment": "街道统计"}}


def test_the_template_round_trip_and_a_bad_file_changes_nothing(
        wsgi_app: Any, dbsession: Any, department: Any) -> None:
    a = _client(wsgi_app, "district_a", 21)
    template = a.get(A_2024 + "/template.xlsx")
    assert template.content_type.endswith("spreadsheetml.sheet")
    codes = [r[0].value for r in load_workbook(io.BytesIO(template.body))["report"]
             .iter_rows(min_row=2)]
    assert codes == list(FILLED)
    form = a.get(A_2024).forms["template-form"]
    form["file"] = ("filled.xlsx", _fill(template.body, FILLED))
    form.submit(status=303)
    before = _stored(dbsession)
    assert before["learning_stars"] == (5, None)
    assert before["learning_type_communities"] == (30, 40)

    # a bad file: text in a value (row 6: learning_stars), a share above its
    # denominator (row 10), an indicator the district does not report
    again = a.get(A_2024 + "/template.xlsx").body
    assert [r[4].value for r in load_workbook(io.BytesIO(again))["report"]
            .iter_rows(min_row=2)][4] == 5  # the template holds the stored values
    bad = _fill(again, {"learning_stars": {"value": "五"},
                        "learning_type_communities": {"value": 50},
                        "learning_teams": {"value": 800}})
    book = load_workbook(io.BytesIO(bad))
    book["report"].append(["online_courses", "", "count", "", 9, None, ""])
    buf = io.BytesIO()
    book.save(buf)
    form = a.get(A_2024).forms["template-form"]
    form["file"] = ("bad.xlsx", buf.getvalue())
    res = form.submit(status=400)
    assert _stored(dbsession) == before  # nothing changed, not even learning_teams
    report = reporting.get_report(dbsession, reporting.ensure_period(dbsession, 2024),
                                  reporting.Unit("district", "A"))
    try:
        reporting.upload_template(dbsession, report, buf.getvalue(), "bad.xlsx", "t")
    except TableError as exc:
        places = {(p.sheet, p.row, p.column) for p in exc.problems}
    else:
        raise AssertionError("the bad file was accepted")
    assert places == {("report", 6, "value"), ("report", 10, "value"),
                      ("report", 11, "code")}
    assert "report" in res.text and "6" in res.text and "value" in res.text
    assert _stored(dbsession) == before


def test_a_file_without_the_report_sheet_is_refused(dbsession: Any, department: Any
                                                    ) -> None:
    import pandas as pd

    from tabular.writing import Sheet, write_workbook

    report = reporting.get_report(dbsession, reporting.ensure_period(dbsession, 2024),
                                  reporting.Unit("district", "B"), create=True)
    data = write_workbook([Sheet("other", pd.DataFrame({"code": ["learning_stars"],
                                                        "value": [1]}))])
    try:
        reporting.upload_template(dbsession, report, data, "x.xlsx", "t")
    except TableError as exc:
        assert "report" in str(exc)
    else:
        raise AssertionError("accepted a workbook without the report sheet")
    assert report.values == []
