"""Population margins: the importer lists every problem and stores nothing; the admin page
and the command line."""
from __future__ import annotations

import io
from typing import Any

import pytest
import sqlalchemy as sa

from monitoring.results.margins import MarginError, upload_margin
from monitoring.results.models import PopulationCell, PopulationMargin

GOOD = ("district,age_band,sex,population\n"
        "A,18-29,female,1200\nA,18-29,male,1100\nA,60-69,female,800\nB,18-29,female,\"2,500\"\n")
BAD = ("District,age_band,sex,population,colour\n"
       "A,18-29,female,1200,x\n"        # row 2: only the unknown column (header problem)
       "Z9,18-29,female,10,x\n")


def test_a_good_file_is_stored_and_active(staff: Any, dbsession: Any) -> None:
    margin = upload_margin(dbsession, "m.csv", GOOD.encode(), name="census 2025",
                           user="admin", reference_year=2025)
    dbsession.commit()
    assert margin.variables == ["district", "age_band", "sex"]
    assert margin.active and margin.reference_year == 2025
    cells = {tuple(c.values[v] for v in margin.variables): c.population for c in margin.cells}
    assert cells[("B", "18-29", "female")] == 2500.0
    assert sum(cells.values()) == 5600.0


def test_header_problems_are_listed_together(staff: Any, dbsession: Any) -> None:
    with pytest.raises(MarginError) as refused:
        upload_margin(dbsession, "m.csv", BAD.encode(), name="x", user="admin")
    text = str(refused.value)
    assert "column 'colour'" in text and "unknown column" in text
    assert dbsession.scalar(sa.select(sa.func.count(PopulationMargin.id))) == 0


def test_every_row_problem_is_listed_with_row_and_column(staff: Any, dbsession: Any) -> None:
    data = ("district,age_band,sex,population\n"
            "A,18-29,female,100\n"      # 2 ok
            "Q,18-29,female,100\n"      # 3 unknown district
            "A,17-19,female,100\n"      # 4 unknown age band
            "A,18-29,other,100\n"       # 5 unknown sex
            "A,18-29,female,50\n"       # 6 duplicate of row 2
            "A,30-44,male,many\n"       # 7 not a number
            "A,45-59,male,-3\n"         # 8 negative
            "A,45-59,female,\n")        # 9 empty count
    with pytest.raises(MarginError) as refused:
        upload_margin(dbsession, "pop.csv", data.encode(), name="x", user="admin")
    problems = [str(p) for p in refused.value.problems]
    expected = ["row 3, column 'district': unknown district code 'Q'",
                "row 4, column 'age_band': unknown age_band code '17-19'",
                "row 5, column 'sex': unknown sex code 'other'",
                "row 6: duplicate cell",
                "row 7, column 'population': 'many' is not a number",
                "row 8, column 'population': '-3' is not a non-negative count",
                "row 9, column 'population': empty"]
    for want in expected:
        assert any(p.startswith(want) for p in problems), (want, problems)
    assert len(problems) == len(expected)
    assert "pop.csv: row 3" in str(refused.value)
    assert dbsession.scalar(sa.select(sa.func.count(PopulationCell.id))) == 0


def test_xlsx_files_are_read(staff: Any, dbsession: Any) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    for row in [["age_band", "sex", "population"], ["18-29", "female", 10],
                ["18-29", "male", 12.0]]:
        ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    margin = upload_margin(dbsession, "m.xlsx", buffer.getvalue(), name="x", user="admin")
    assert margin.variables == ["age_band", "sex"] and len(margin.cells) == 2


def test_command_line_upload_and_list(staff: Any, dbsession: Any, db_url: str,
                                      tmp_path: Any) -> None:
    from click.testing import CliRunner

    from learningcity.cli import main
    from tests.conftest import write_ini

    ini = write_ini(tmp_path, db_url)
    good = tmp_path / "good.csv"
    good.write_text(GOOD, encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("district,age_band,sex,population\nA,18-29,female,x\n", encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(main, ["margins", "upload", str(bad), "--name", "b", "--ini", ini])
    assert res.exit_code != 0
    assert "bad.csv: row 2, column 'population'" in res.output
    res = runner.invoke(main, ["margins", "upload", str(good), "--name", "census",
                               "--year", "2025", "--ini", ini])
    assert res.exit_code == 0, res.output
    assert "4 cells" in res.output and "5,600" in res.output
    listing = runner.invoke(main, ["margins", "list", "--ini", ini])
    assert "census" in listing.output and "active" in listing.output
    dbsession.expire_all()
    assert dbsession.scalar(sa.select(sa.func.count(PopulationMargin.id))) == 1


def test_admin_page_uploads_and_lists_problems(testapp: Any, staff: Any, login: Any,
                                               dbsession: Any) -> None:
    login("admin")
    page = testapp.get("/admin/margins?lang=en")  # the where-part is translated (zh: 第 2 行)
    form = page.forms["upload"]
    form["name"] = "census"
    form["file"] = ("bad.csv", b"district,age_band,sex,population\nQ,18-29,female,1\n")
    refused = form.submit(status=400)
    assert "row 2, column" in refused.text and "unknown district code" in refused.text
    assert dbsession.scalar(sa.select(sa.func.count(PopulationMargin.id))) == 0
    form = refused.forms["upload"]
    form["file"] = ("good.csv", GOOD.encode())
    form.submit(status=303)
    listing = testapp.get("/admin/margins")
    assert "census" in listing.text and "5,600" in listing.text
    # the flash is stored as text, translated and its ${name} filled in when flashed
    # (a message kept as its msgid lost the mapping: "stored: ${name}")
    assert "Population margin stored: census" in listing.text
    assert "${name}" not in listing.text
    margin_id = dbsession.scalar(sa.select(PopulationMargin.id))
    off = listing.forms[f"margin-{margin_id}"]
    off.submit("action", value="deactivate", status=303)
    dbsession.expire_all()
    assert dbsession.get(PopulationMargin, margin_id).active is False


@pytest.mark.parametrize("user", ["monitor", "district_a", "researcher"])
def test_only_admins_see_the_margins_page(user: str, testapp: Any, staff: Any, login: Any
                                          ) -> None:
    assert "/login" in testapp.get("/admin/margins", status=302).location  # anonymous
    login(user)
    testapp.get("/admin/margins", status=403)


def test_margin_problems_are_tabulars_with_file_and_sheet(staff: Any, dbsession: Any) -> None:
    """A MarginError is tabular's TableError (as a FrameError is): file, sheet, row, column."""
    from openpyxl import Workbook

    from tabular.reading import TableError

    wb = Workbook()
    ws = wb.active
    ws.title = "census"
    for row in [["age_band", "sex", "population"], ["18-29", "female", -1]]:
        ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    with pytest.raises(MarginError) as refused:
        upload_margin(dbsession, "m.xlsx", buffer.getvalue(), name="x", user="admin")
    assert isinstance(refused.value, TableError)
    [problem] = refused.value.problems
    assert (problem.file, problem.sheet, problem.row, problem.column) == (
        "m.xlsx", "census", 2, "population")
    assert str(refused.value) == ("m.xlsx: sheet 'census', row 2, column 'population': "
                                  "'-1' is not a non-negative count")
