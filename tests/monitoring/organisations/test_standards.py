"""Evaluation standards from XLSX: checks naming sheet, row and column; versions; scores."""
from __future__ import annotations

from typing import Any

import pytest

from learningcity import audit
from monitoring.organisations import standards
from tests.monitoring.organisations.conftest import ACTOR, standard_sheets, workbook


def _where(data: bytes) -> set[tuple]:
    with pytest.raises(standards.StandardError) as caught:
        standards.parse_standard(data, "s.xlsx")
    return {(p.sheet, p.row, p.column) for p in caught.value.problems}


def test_the_template_is_a_valid_standard() -> None:
    parsed = standards.parse_standard(standards.example_workbook(), "template.xlsx")
    assert (parsed["kind"], parsed["year"], parsed["threshold"]) == ("community", 2025, 75)
    assert [c["weight"] for c in parsed["criteria"]] == [0.2, 0.2, 0.3, 0.2, 0.1]
    assert [lv["points"] for lv in parsed["criteria"][0]["levels"]] == [4, 3, 2, 0]


def test_weights_may_add_up_to_one() -> None:
    sheets = standard_sheets()
    for row in sheets["criteria"]:
        row["weight"] = row["weight"] / 100
    parsed = standards.parse_standard(workbook(**sheets), "s.xlsx")
    assert sum(c["weight"] for c in parsed["criteria"]) == pytest.approx(1)


def test_weights_not_adding_up_are_refused() -> None:
    sheets = standard_sheets()
    sheets["criteria"][0]["weight"] = 25  # 105
    with pytest.raises(standards.StandardError, match="add up to 105; they must add up to "
                                                      "100 or to 1"):
        standards.parse_standard(workbook(**sheets), "s.xlsx")


def test_every_problem_names_its_sheet_row_and_column() -> None:
    sheets = standard_sheets()
    sheets["standard"][0]["value"] = "club"            # kind, row 2
    sheets["standard"][4]["value"] = "150"             # threshold, row 6
    sheets["criteria"][1]["weight"] = "heavy"          # row 3
    sheets["criteria"][2]["name_zh"] = ""              # row 4
    sheets["levels"][0]["points"] = "-1"               # row 2
    sheets["levels"][1]["criterion"] = "nowhere"       # row 3
    sheets["levels"][2]["level"] = "A"                 # row 4: A appears twice
    assert _where(workbook(**sheets)) == {
        ("standard", 2, "value"), ("standard", 6, "value"), ("criteria", 3, "weight"),
        ("criteria", 4, "name_zh"), ("levels", 2, "points"), ("levels", 3, "criterion"),
        ("levels", 4, "level")}


def test_a_criterion_needs_two_levels_and_sheets_are_required() -> None:
    sheets = standard_sheets()
    sheets["levels"] = [r for r in sheets["levels"]
                        if r["criterion"] != "results" or r["level"] == "A"]
    with pytest.raises(standards.StandardError, match="'results' needs at least two levels"):
        standards.parse_standard(workbook(**sheets), "s.xlsx")
    no_levels = standard_sheets()
    del no_levels["levels"]
    assert _where(workbook(**no_levels)) == {(None, None, None)}
    broken = standard_sheets(criteria=[{"code": "x", "name_zh": "x"}])
    assert _where(workbook(**broken)) == {("criteria", 1, "weight")}


def test_versions_never_change(dbsession: Any, staff: Any) -> None:
    first = standards.upload_standard(dbsession, "a.xlsx", standards.example_workbook(),
                                      actor=ACTOR)
    sheets = standard_sheets()
    sheets["standard"][4]["value"] = 80
    second = standards.upload_standard(dbsession, "b.xlsx", workbook(**sheets), actor=ACTOR)
    assert (first.version, second.version) == (1, 2)
    assert first.threshold == 75 and second.threshold == 80
    assert standards.current_standard(dbsession, "community", 2025).id == second.id
    assert audit.count_events(dbsession, "standard.upload") == 2


def test_weighted_score_by_hand(dbsession: Any, staff: Any) -> None:
    standard = standards.upload_standard(dbsession, "a.xlsx", standards.example_workbook(),
                                         actor=ACTOR)
    # 100 * (0.2*4/4 + 0.2*3/4 + 0.3*3/4 + 0.2*2/4 + 0.1*0/4) = 20 + 15 + 22.5 + 10 + 0
    levels = {"organisation": "A", "facilities": "B", "activities": "B",
              "participation": "C", "results": "D"}
    assert standards.weighted_score(standard, levels) == pytest.approx(67.5)
    assert not standards.is_recognised(standard, 67.5)
    assert standards.is_recognised(standard, 75.0)


def test_the_upload_page_refuses_a_bad_workbook(dbsession: Any, staff: Any,
                                                client: Any) -> None:
    import webtest

    app = client("monitor")
    form = app.get("/organisations/standards").forms["upload"]
    sheets = standard_sheets()
    sheets["criteria"][0]["weight"] = 50
    form["file"] = webtest.Upload("s.xlsx", workbook(**sheets))
    res = form.submit(status=400)
    assert "130" in res.text and res.html.find(role="alert") is not None
    assert standards.list_standards(dbsession) == []
    template = app.get("/organisations/standards/template.xlsx")
    assert standards.parse_standard(template.body, "t.xlsx")["kind"] == "community"
    # district staff read the standards but do not upload them
    district = client("district_a")
    assert district.get("/organisations/standards").html.find(id="upload") is None
