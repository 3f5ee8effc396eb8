"""``learningcity survey validate FILE [--json]``: every problem and warning with its sheet,
row and column, exit 1 on problems, and a JSON report for scripts (no database)."""
from __future__ import annotations

import json

import openpyxl
from click.testing import CliRunner

from learningcity.cli import main
from surveys.definition import DEFAULTS_DIR


def run(*args: str):
    return CliRunner().invoke(main, ["survey", "validate", *args])


def form(path, rows):
    book = openpyxl.Workbook()
    book.active.title = "survey"
    for row in rows:
        book.active.append(row)
    choices = book.create_sheet("choices")
    for row in (["list_name", "name", "label"], ["yn", "yes", "是"], ["yn", "no", "否"]):
        choices.append(row)
    book.save(path)
    return path


def test_a_good_form_passes_with_its_warnings(tmp_path):
    path = form(tmp_path / "good.xlsx", [["type", "name", "label", "appearance"],
                                         ["select_one yn", "ok", "好吗？", "autocomplete"],
                                         ["geopoint", "where", "哪里？"]])
    res = run(str(path))
    assert res.exit_code == 0, res.output
    assert "good.xlsx: ok, survey 'good'" in res.output
    assert "warning: survey row 2, question 'ok', appearance: appearance 'autocomplete'" in (
        res.output)
    assert "warning: survey row 3, question 'where', type:" in res.output
    doc = json.loads(run(str(path), "--json").output)
    assert doc["ok"] is True and doc["problems"] == []
    assert doc["survey"] == {"id": "good", "version": 1, "pages": 1, "questions": 1}
    where = next(w for w in doc["warnings"] if w["row"] == 3)
    assert (where["sheet"], where["column"], where["feature"]) == ("survey", "type",
                                                                   "geopoint")


def test_a_bad_form_lists_every_problem_and_exits_1(tmp_path):
    path = form(tmp_path / "bad.xlsx", [["type", "name", "label", "relevant"],
                                        ["select_one nolist", "a", "甲"],
                                        ["text", "b", "乙", "${nowhere} = 'x'"],
                                        ["geopoint", "c", "丙", "${b} = 'x'"],
                                        ["text", "d", "丁", "${c} = 'x'"]])
    res = run(str(path))
    assert res.exit_code == 1
    assert "problem: survey row 2, question 'a', type: unknown choice list 'nolist'" in (
        res.output)
    assert "problem: survey row 3, question 'b', relevant: ${nowhere}" in res.output
    assert "problem: survey row 4, question 'c', type:" in res.output
    assert "bad.xlsx: 3 problem(s)" in res.output
    out = run(str(path), "--json")
    assert out.exit_code == 1
    doc = json.loads(out.output)
    assert doc["ok"] is False and doc["survey"] is None and doc["file"] == "bad.xlsx"
    assert [(p["sheet"], p["row"], p["column"]) for p in doc["problems"]] == [
        ("survey", 2, "type"), ("survey", 3, "relevant"), ("survey", 4, "type")]
    assert doc["problems"][2]["feature"] == "geopoint"
    assert doc["problems"][0]["subject"] == "question 'a'"


def test_json_definitions_and_the_default_survey(tmp_path):
    res = run(str(DEFAULTS_DIR / "learning_needs.json"), "--json")
    doc = json.loads(res.output)
    assert res.exit_code == 0 and doc["ok"] and doc["warnings"] == []
    assert doc["survey"]["id"] == "learning_needs"
    broken = tmp_path / "b.json"
    broken.write_text('{"schema": "learningcity-survey/1", "id": "x", "version": 0}')
    doc = json.loads(run(str(broken), "--json").output)
    assert doc["ok"] is False
    assert {"where": "survey", "sheet": None, "row": None, "column": "version",
            "subject": None, "message": "0 must be a whole number >= 1",
            "feature": None} in doc["problems"]
