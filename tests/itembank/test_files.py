"""Item files through tabular: its reader, its error type, its export writers."""
from __future__ import annotations

import io

import openpyxl
import pytest
from click.testing import CliRunner

from itembank.importing import CSV_COLUMNS, ItemFileError, read_item_file, spec_to_row
from itembank.services import ImportRejected, import_items
from learningcity import audit
from learningcity.cli import main
from tabular.reading import Problem, TableError
from tests.conftest import write_ini

from .test_importing import good_row


def csv_bytes(rows: list[list[str]]) -> bytes:
    return "\r\n".join(",".join(row) for row in rows).encode("utf-8")


def test_a_refused_file_is_tabulars_error_naming_every_row():
    header = list(CSV_COLUMNS)
    row = [good_row()[c] for c in header]
    data = csv_bytes([header, row, row + ["extra"], [], row + ["x", "y"]])
    with pytest.raises(ItemFileError) as caught:
        read_item_file("items.csv", data)
    assert isinstance(caught.value, TableError)
    assert [(p.file, p.row) for p in caught.value.problems] == [("items.csv", 3),
                                                                ("items.csv", 5)]
    with pytest.raises(ItemFileError, match=r"items\.txt: unknown item file type '\.txt'"):
        read_item_file("items.txt", data)
    with pytest.raises(ItemFileError, match=r"items\.json: not valid JSON \(line 1"):
        read_item_file("items.json", b"[{")


def test_row_problems_are_tabular_problems_with_file_and_sheet(dbsession, bank):
    book = openpyxl.Workbook()
    book.active.title = "题库"
    book.active.append([*CSV_COLUMNS, "colour", "code"])
    book.active.append([good_row("NEW-9", domain="astrology")[c] for c in CSV_COLUMNS]
                       + ["red", "NEW-9"])
    buffer = io.BytesIO()
    book.save(buffer)
    report = read_item_file("items.xlsx", buffer.getvalue())
    assert report.problems == [
        Problem("items.xlsx", "题库", 1, "colour", "unknown column"),
        Problem("items.xlsx", "题库", 1, "code", "column appears twice in the header")]
    with pytest.raises(ImportRejected) as caught:
        import_items(dbsession, report, "tests")
    error = caught.value
    assert isinstance(error, TableError) and error.problems == report.problems
    assert error.problems[-1] == Problem("items.xlsx", "题库", 2, "domain",
                                         "unknown domain 'astrology'; known: digital, "
                                         "health_science, information, motivation, "
                                         "numeracy, reading, self_directed")
    assert str(error).splitlines()[0] == "items.xlsx: 3 problem(s); nothing was imported"
    assert "  row 2, domain: unknown domain 'astrology'" in str(error)


def test_export_goes_through_the_registry_and_imports_are_audited(dbsession, bank,
                                                                   tmp_path, db_url):
    ini = write_ini(tmp_path, db_url)
    runner = CliRunner()
    before = audit.count_events(dbsession, "itembank.import")
    out = tmp_path / "items.xlsx"
    result = runner.invoke(main, ["itembank", "export", "--out", str(out), "--ini", ini])
    assert result.exit_code == 0, result.output
    sheet = openpyxl.load_workbook(out)["items"]
    assert [c.value for c in sheet[1]] == list(CSV_COLUMNS)
    assert sheet["A1"].font.bold and sheet.freeze_panes == "A2"  # the registry's workbook
    csv_out = tmp_path / "items.csv"
    result = runner.invoke(main, ["itembank", "export", "--out", str(csv_out), "--ini", ini])
    assert result.exit_code == 0 and csv_out.read_bytes().startswith(b"\xef\xbb\xbfcode,")
    result = runner.invoke(main, ["itembank", "import", str(csv_out), "--ini", ini])
    assert result.exit_code == 0, result.output
    dbsession.expire_all()
    assert audit.count_events(dbsession, "itembank.import", target="items.csv") == 1
    assert audit.count_events(dbsession, "itembank.import") == before + 1


def test_dif_file_problems_name_each_row(tmp_path):
    import click

    from itembank.cli import _dif_classes

    path = tmp_path / "DIF.csv"
    path.write_text("item_id,ets_class\nQ1,A\nQ2,D\n'=Q3,b\nQ4,E\n", encoding="utf-8")
    with pytest.raises(click.ClickException) as caught:
        _dif_classes(str(path), ["Q1", "Q2", "=Q3", "Q4"])
    assert caught.value.message.splitlines() == [
        "DIF.csv: row 3, column 'ets_class': 'D' is not A, B or C",
        "DIF.csv: row 5, column 'ets_class': 'E' is not A, B or C"]
    path.write_text("item_id,ets_class\nQ1,A\n'=Q3,b\n", encoding="utf-8")
    assert _dif_classes(str(path), ["=Q3", "Q1", "Q9"]) == ["B", "A", ""]


def test_an_exported_row_reads_back_as_its_spec(tmp_path):
    report = read_item_file("items.csv", csv_bytes([list(CSV_COLUMNS), [
        good_row(stem_zh="'=SUM(A1)")[c] for c in CSV_COLUMNS]]))
    assert report.ok, report.summary()
    assert report.items[0].stem_zh == "=SUM(A1)"
    assert spec_to_row(report.items[0])["stem_zh"] == "=SUM(A1)"
