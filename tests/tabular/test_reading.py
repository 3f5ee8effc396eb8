"""The one table reader: real CSV files in each encoding, real XLSX workbooks, bad input."""
from __future__ import annotations

import datetime as dt
import io
import re
import time
import zipfile

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tabular.reading import (
    Problem,
    Problems,
    Row,
    TableError,
    read_header,
    read_sheets,
    read_table,
)

ROWS = [["编号", "街道", "人数"], ["H1", "东湖街道", "12"], ["H2", "西山街道", "7"]]


def csv_bytes(rows, encoding="utf-8", sep=",") -> bytes:
    buffer = io.StringIO()
    import csv

    csv.writer(buffer, delimiter=sep).writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(sheets: dict[str, list[list]]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        ws = book.create_sheet(name)
        for row in rows:
            ws.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def refused(data: bytes, filename: str, **kwargs) -> TableError:
    with pytest.raises(TableError) as caught:
        read_table(data, filename, **kwargs)
    return caught.value


# ------------------------------------------------------------------ CSV


@pytest.mark.parametrize(("encoding", "name"), [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"),
                                                ("gbk", "gbk")])
def test_csv_in_each_encoding(encoding, name):
    table = read_table(csv_bytes(ROWS, encoding), "f.csv")
    assert table.encoding == name and table.sheet is None
    assert table.header == ["编号", "街道", "人数"]
    assert table.rows == [Row(2, ("H1", "东湖街道", "12")), Row(3, ("H2", "西山街道", "7"))]
    assert table.column("街道") == ["东湖街道", "西山街道"]
    assert list(table.records())[1] == (3, {"编号": "H2", "街道": "西山街道", "人数": "7"})
    assert len(table.sha256) == 64


def test_gbk_refused_when_only_utf8_is_allowed():
    error = refused(csv_bytes(ROWS, "gbk"), "items.csv", encodings=("utf-8",))
    assert "not UTF-8" in str(error) and "save the file as UTF-8" in str(error)
    assert error.problems[0].row == 1 and error.problems[0].file == "items.csv"


def test_bytes_that_are_no_text():
    error = refused(b"\xff\xfe\x00\x81\xff" * 10, "x.csv")
    assert "neither UTF-8 nor GBK" in str(error) and str(error).startswith("x.csv")


def test_header_is_stripped_and_semicolons_or_tabs_are_found():
    for sep in (";", "\t"):
        table = read_table(csv_bytes([[" a ", "b "], ["1", "2"]], sep=sep), "s.csv")
        assert table.header == ["a", "b"] and table.rows[0].values == ("1", "2")


def test_rows_keep_their_numbers_as_in_the_file():
    text = 'a,b\n1,"two\nlines"\n\n  ,  \n3,4\n'
    table = read_table(text.encode(), "n.csv")
    assert [r.number for r in table.rows] == [2, 5]  # a quoted newline stays one row
    assert table.rows[0].values == ("1", "two\nlines")


def test_short_rows_are_padded_and_long_ones_refused():
    table = read_table(b"a,b,c\n1\n2,3,4,,\n", "p.csv")
    assert table.rows == [Row(2, ("1", "", "")), Row(3, ("2", "3", "4"))]
    error = refused(b"a,b\n1,2,3\n4\n", "r.csv")
    assert [(p.row, p.message) for p in error.problems] == [
        (2, "3 values but the header has 2 columns")]
    strict = refused(b"a,b\n1,2,3\n4\n", "r.csv", strict_width=True)
    assert [p.row for p in strict.problems] == [2, 3]


def test_every_header_and_row_problem_at_once():
    error = refused(b"id,id,,b\n1,2,3,4,5\n6,7,8,9\n1,2,3,4,5\n", "bad.csv",
                    required=["id", "zone"])
    found = [(p.row, p.column, p.message) for p in error.problems]
    assert found == [
        (1, "id", "column name appears twice in the header"),
        (1, "#3", "empty column name in the header"),
        (1, "zone", "column not found; the header has: id, id, b"),
        (2, None, "5 values but the header has 4 columns"),
        (4, None, "5 values but the header has 4 columns")]
    text = str(error)
    assert "bad.csv: row 1, column 'zone': column not found" in text
    assert "bad.csv: row 4: 5 values" in text


def test_limits_rows_and_bytes():
    many = "x\n" + "1\n" * 30
    error = refused(many.encode(), "m.csv", max_rows=20)
    assert any("more than 20 data rows" in p.message for p in error.problems)
    assert len(read_table(many.encode(), "m.csv", max_rows=None).rows) == 30
    error = refused(b"x\n" + b"1\n" * 100, "big.csv", max_bytes=50)
    assert "larger than 50 bytes" in str(error)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "the file is empty"),
    (b"\n\n  \n", "no header row"),
    (b"a,b\n1,\x002\n", "NUL character"),
    (b"a\n\"" + b"x" * 200_000 + b"\"\n", "row 2: a cell longer than 32,767 characters"),
])
def test_unreadable_csv(data, message):
    error = refused(data, "bad.csv")
    assert message in str(error) and "bad.csv" in str(error)


def test_unguard_undoes_our_export_guard():
    data = b"a,b\n'=SUM(A1),'-x\n-1.5,'plain\n"
    table = read_table(data, "g.csv", unguard=True)
    assert table.rows[0].values == ("=SUM(A1)", "-x")
    assert table.rows[1].values == ("-1.5", "'plain")
    assert read_table(data, "g.csv").rows[0].values == ("'=SUM(A1)", "'-x")


def test_read_header_only():
    assert read_header(csv_bytes(ROWS) + b"bad,row,with,too,many\n", "h.csv") == [
        "编号", "街道", "人数"]
    assert read_header(xlsx_bytes({"s": ROWS}), "h.xlsx") == ["编号", "街道", "人数"]


def test_frame_of_text_indexed_by_row_number():
    frame = read_table(csv_bytes(ROWS), "f.csv").frame()
    assert list(frame.columns) == ROWS[0] and list(frame.index) == [2, 3]
    assert frame.loc[3, "人数"] == "7"


# ------------------------------------------------------------------ XLSX


def test_xlsx_values_as_text():
    rows = [["id", " when ", "n", "x", "ok", "empty"],
            ["a", dt.date(2024, 5, 1), 3, 2.5, True, None],
            [None, None, None, None, None, None],
            ["b", dt.datetime(2024, 5, 1, 8, 30), 4.0, -0.125, False, ""]]
    table = read_table(xlsx_bytes({"Frame": rows}), "f.xlsx")
    assert table.encoding == "xlsx" and table.sheet == "Frame"
    assert table.header == ["id", "when", "n", "x", "ok", "empty"]
    assert table.rows == [Row(2, ("a", "2024-05-01", "3", "2.5", "true", "")),
                          Row(4, ("b", "2024-05-01 08:30:00", "4", "-0.125", "false", ""))]


def test_xlsx_named_sheet_and_first_sheet():
    data = xlsx_bytes({"notes": [["x"], ["1"]], "Survey ": [["type", "name"], ["text", "q"]]})
    assert read_table(data, "w.xlsx").sheet == "notes"
    table = read_table(data, "w.xlsx", sheet="survey")
    assert table.sheet == "Survey " and table.rows == [Row(2, ("text", "q"))]
    error = refused(data, "w.xlsx", sheet="choices")
    assert error.problems[0].sheet == "choices"
    assert "no sheet 'choices'" in str(error) and "'notes'" in str(error)


def test_xlsx_problems_name_file_sheet_row_and_column():
    data = xlsx_bytes({"margins": [["sex", "sex", "population"], ["f", "f", 1, "extra"]]})
    error = refused(data, "m.xlsx", required=["age_band"])
    text = str(error)
    assert "m.xlsx: sheet 'margins', row 1, column 'sex': column name appears twice" in text
    assert "m.xlsx: sheet 'margins', row 1, column 'age_band': column not found" in text
    table = read_table(data, "m.xlsx", check_header=False)
    assert table.rows[0].values == ("f", "f", "1")  # cells past the header are not read
    problems = table.problems()
    problems.add(2, "population", "too small")
    with pytest.raises(TableError, match=r"m\.xlsx: sheet 'margins', row 2, column "
                                         r"'population': too small"):
        problems.raise_if_any()


@pytest.mark.parametrize(("data", "name", "message"), [
    (b"not a zip", "junk.xlsx", "not a readable XLSX workbook"),
    (b"PK\x03\x04garbage", "junk.bin", "not a readable XLSX workbook"),
    (b"\xd0\xcf\x11\xe0" + b"\x00" * 100, "old.xls", "old .xls workbook"),
])
def test_unreadable_workbooks(data, name, message):
    assert message in str(refused(data, name))


def test_empty_sheet_has_no_header():
    error = refused(xlsx_bytes({"s": []}), "e.xlsx")
    assert str(error) == "e.xlsx: sheet 's', row 1: no header row"


def _patch_sheet(data: bytes, change) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                content = change(content)
            target.writestr(info, content)
    return out.getvalue()


def test_huge_declared_dimension_is_fast():
    """A small file declaring A1:XFD200001 costs milliseconds, not minutes."""
    data = _patch_sheet(xlsx_bytes({"s": [["id", "x"], ["a", 1], ["b", 2]]}), lambda xml: re.sub(
        rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:XFD200001"/>', xml))
    assert b"XFD200001" in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    assert len(data) < 6000
    start = time.perf_counter()
    table = read_table(data, "huge.xlsx")
    assert time.perf_counter() - start < 1.0
    assert table.header == ["id", "x"] and [r.values for r in table.rows] == [("a", "1"),
                                                                              ("b", "2")]


def test_trailing_blank_rows_and_far_cells_are_cheap():
    """200,000 styled empty rows reaching column XFD (a zip of a few hundred KB)."""
    empty = b"".join(b'<row r="%d"><c r="XFD%d" s="0"/></row>' % (i, i)
                     for i in range(4, 200_004))

    def change(xml: bytes) -> bytes:
        return xml.replace(b"</sheetData>", empty + b"</sheetData>")

    data = _patch_sheet(xlsx_bytes({"s": [["id", "x"], ["a", 1], ["b", 2]]}), change)
    # CPU time of this process (wall time counts other processes on a shared machine);
    start = time.process_time()
    table = read_table(data, "blank.xlsx")
    assert time.process_time() - start < 3.0
    assert len(table.rows) == 2 and table.header == ["id", "x"]


def test_read_sheets_opens_the_workbook_once():
    data = xlsx_bytes({"survey": [["type", "name"], ["text", "q1"]],
                       "Settings": [["form_id"], ["f"]]})
    tables = read_sheets(data, "form.xlsx", ["survey", "choices", "settings"])
    assert set(tables) == {"survey", "settings"}
    assert tables["settings"].sheet == "Settings"
    assert tables["survey"].rows == [Row(2, ("text", "q1"))]


# ------------------------------------------------------------------ problems


def test_problem_text_names_every_part():
    p = Problem("f.xlsx", "survey", 3, "name", "missing")
    assert str(p) == "sheet 'survey', row 3, column 'name': missing"
    assert p.full() == "f.xlsx: sheet 'survey', row 3, column 'name': missing"
    assert str(Problem("f.csv", None, None, None, "empty")) == "empty"


def test_problems_are_capped_with_a_count():
    problems = Problems("big.csv", limit=100)
    for row in range(2, 302):
        problems.add(row, "id", "empty id")
    assert len(problems) == 300 and len(problems.kept) == 100
    error = problems.error()
    lines = str(error).splitlines()
    assert len(lines) == 51 and lines[-1] == "big.csv: ... and 250 more problems"
    assert error.total == 300 and len(error.problems) == 100
    assert isinstance(error, ValueError)
    Problems("ok.csv").raise_if_any()  # nothing noted: nothing raised


# ------------------------------------------------------------------ properties

CELL = st.text(alphabet=st.characters(codec="gbk", exclude_characters="\x00\r\n"),
               max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4).flatmap(lambda w: st.tuples(
    st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=5), min_size=w, max_size=w,
             unique=True),
    st.lists(st.lists(CELL, min_size=w, max_size=w), max_size=8))),
    st.sampled_from(["utf-8", "utf-8-sig", "gbk"]))
def test_any_csv_reads_back_as_written(table, encoding):
    header, rows = table
    table_read = read_table(csv_bytes([header, *rows], encoding), "p.csv")
    want = [tuple(c.strip() for c in r) for r in rows if any(c.strip() for c in r)]
    assert table_read.header == header
    assert [r.values for r in table_read.rows] == want


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["x.csv", "x.xlsx", "x.txt"]))
def test_any_bytes_give_a_table_or_a_table_error(data, name):
    try:
        read_table(data, name)
    except TableError as exc:
        assert exc.problems and all(p.file == name for p in exc.problems)


def test_read_sheets_reports_every_sheet_and_keeps_empty_ones():
    data = xlsx_bytes({"survey": [["type", "type"], ["text", "q1"]], "choices": [],
                       "settings": [["form_id", None, "version"], ["f", "extra", 1]]})
    error = None
    try:
        read_sheets(data, "form.xlsx", ["survey", "choices", "settings"])
    except TableError as exc:
        error = exc
    assert error is not None
    assert [(p.sheet, p.row, p.column) for p in error.problems] == [
        ("survey", 1, "type"), ("settings", 1, "#2")]
    tables = read_sheets(data, "form.xlsx", ["survey", "choices"], check_header=False)
    assert tables["choices"].header == [] and tables["choices"].rows == []
    assert tables["survey"].header == ["type", "type"]


def test_read_sheets_of_an_unreadable_workbook():
    with pytest.raises(TableError, match="not a readable XLSX workbook"):
        read_sheets(b"not a zip", "form.xlsx", ["survey"])


def test_problems_merge_keeps_the_count():
    first = Problems("f.csv", limit=2)
    for row in range(2, 7):
        first.add(row, None, "bad")
    merged = Problems("f.csv")
    merged.add(1, "id", "column not found")
    merged.merge(first)
    assert len(merged) == 6 and len(merged.kept) == 3
    merged.merge(TableError([Problem("f.csv", None, 9, None, "worse")], total=4))
    assert len(merged) == 10 and merged.kept[-1].row == 9
