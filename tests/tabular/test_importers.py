"""Issue 16, finding 4, through each importer: the web upload routes (survey import,
campaign frame, population margins) answer a bomb with a 400 page naming the problem and
store nothing; the item bank (imported from the command line only, it has no upload
route) exits with the problem and stores nothing; the survey and item importers cap rows.
"""
from __future__ import annotations

import io

import openpyxl
import sqlalchemy as sa
from click.testing import CliRunner

from itembank.models import Item
from learningcity.cli import main
from monitoring.fieldwork.models import FrameUnit
from monitoring.results.models import PopulationMargin
from surveys.models import SurveyDefinition
from tests.conftest import write_ini

from . import bombs


def _form_with(page, action):
    for form in page.forms.values():
        if "action" in form.fields and form["action"].value == action:
            return form
    raise AssertionError(f"no form for {action}")


def test_survey_import_refuses_a_shared_strings_bomb(testapp, surveys_demo, staff, login,
                                                     dbsession):
    login("researcher")
    before = dbsession.scalar(sa.select(sa.func.count(SurveyDefinition.id)))
    form = testapp.get("/research/surveys?lang=en").forms["import-form"]
    form["file"] = ("form.xlsx", bombs.shared_strings())
    res = form.submit(status=400)
    assert "xl/sharedStrings.xml" in res.text and "unpacks 117 times its packed size" \
        in res.text and "a zip bomb?" in res.text
    assert dbsession.scalar(sa.select(sa.func.count(SurveyDefinition.id))) == before


def test_survey_importer_caps_rows_per_sheet():
    from surveys.xlsform import MAX_FORM_ROWS, read_xlsform

    book = openpyxl.Workbook()
    survey = book.active
    survey.title = "survey"
    survey.append(["type", "name", "label::zh", "label::en"])
    for i in range(MAX_FORM_ROWS + 1):
        survey.append(["text", f"q{i}", "问", "Q"])
    buffer = io.BytesIO()
    book.save(buffer)
    report = read_xlsform("form.xlsx", buffer.getvalue())
    assert not report.ok
    assert any("more than 5,000 data rows" in str(p.message) for p in report.problems)


def test_frame_upload_refuses_a_header_of_commas(testapp, login, staff, make_campaign,
                                                 dbsession):
    campaign = make_campaign("A")
    login("district_a")
    form = _form_with(testapp.get(f"/campaigns/{campaign.code}/frame?lang=en"), "frame")
    form["frame"] = ("hh.csv", bombs.csv_header())
    form["id_column"] = "id"
    form["stratum_columns"] = "id"
    res = form.submit(status=400)
    assert "row 1: the header has 2,000,001 columns; at most 1,000 are read" in res.text
    assert len(res.body) < 200_000  # no page listing two million columns
    assert dbsession.scalar(sa.select(sa.func.count(FrameUnit.id))) == 0


def test_frame_upload_refuses_a_declared_dimension_bomb_quickly(testapp, login, staff,
                                                                make_campaign, dbsession):
    """The 2 KB workbook of rows reaching XFD is read as its cells: no column 'hh_id'."""
    campaign = make_campaign("A")
    login("district_a")
    form = _form_with(testapp.get(f"/campaigns/{campaign.code}/frame?lang=en"), "frame")
    form["frame"] = ("hh.xlsx", bombs.declared_dimension())
    form["id_column"] = "hh_id"
    form["stratum_columns"] = "x"
    res = form.submit(status=400)
    assert "hh_id" in res.text and "the header has: id, x" in res.text
    assert dbsession.scalar(sa.select(sa.func.count(FrameUnit.id))) == 0


def test_margins_upload_refuses_a_workbook_of_many_members(testapp, staff, login, dbsession):
    login("admin")
    form = testapp.get("/admin/margins?lang=en").forms["upload"]
    form["name"] = "census"
    form["file"] = ("census.xlsx", bombs.many_members())
    res = form.submit(status=400)
    assert "The file was not stored" in res.text
    assert "the workbook has 50,005 parts (at most 1,000); is it really a table?" in res.text
    assert dbsession.scalar(sa.select(sa.func.count(PopulationMargin.id))) == 0


def test_margins_upload_refuses_a_long_cell(testapp, staff, login, dbsession):
    login("admin")
    form = testapp.get("/admin/margins?lang=en").forms["upload"]
    form["name"] = "census"
    form["file"] = ("census.xlsx", bombs.long_cell_xlsx())
    res = form.submit(status=400)
    assert "row 2, column" in res.text and "a cell longer than 32,767 characters" in res.text
    assert dbsession.scalar(sa.select(sa.func.count(PopulationMargin.id))) == 0


def test_item_bank_import_refuses_a_ratio_bomb_and_stores_nothing(dbsession, tmp_path,
                                                                  db_url):
    path = tmp_path / "items.xlsx"
    path.write_bytes(bombs.ratio())
    before = dbsession.scalar(sa.select(sa.func.count(Item.id)))
    result = CliRunner().invoke(main, ["itembank", "import", str(path), "--ini",
                                       write_ini(tmp_path, db_url)])
    assert result.exit_code == 1
    assert "items.xlsx: the workbook unpacks to 4,095 MB (at most 512 MB)" in result.output
    assert dbsession.scalar(sa.select(sa.func.count(Item.id))) == before


def test_item_importer_caps_rows():
    from itembank.importing import CSV_COLUMNS, MAX_ITEM_ROWS, ItemFileError, read_item_file

    data = (",".join(CSV_COLUMNS) + "\n" + "x\n" * (MAX_ITEM_ROWS + 1)).encode()
    try:
        read_item_file("items.csv", data)
    except ItemFileError as exc:
        assert "more than 20,000 data rows" in str(exc)
    else:
        raise AssertionError("20,001 rows were read")
