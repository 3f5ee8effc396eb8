"""Issue 16, finding 4: each upload bomb is refused (or, for a lying dimension, read as the
few cells it holds) within 5 s and 300 MB.

Each bomb is built in the test (tests/tabular/bombs.py) and read in a fresh Python child
so that its peak resident memory (VmHWM, the interpreter and imports included: about 40
MB, 80 MB with pandas) and its time are its own. Those two bounds are the issue's
done-when figures, deliberately generous (the refusals take 0.1-1 s and 40-150 MB on the
shared 2-core machine, docs/uploads.md); they are not micro-timings. The rest of this
file checks, in process, each cap and its message.
"""
from __future__ import annotations

import dataclasses
import io
import zipfile

import pytest

from tabular.reading import (
    LIMITS,
    FileRefused,
    Limits,
    TableError,
    read_frame,
    read_header,
    read_sheets,
    read_table,
)

from . import bombs

SECONDS = 5.0
PEAK = 300 * 1024 * 1024

#: bomb -> (reader, words the refusal must contain)
REFUSALS = {
    "shared_strings": ("read_table", "'xl/sharedStrings.xml' unpacks 117 times"),
    "ratio": ("read_table", "unpacks to 4,095 MB (at most 512 MB)"),
    "lying_size": ("read_table", "Bad CRC-32 for file 'xl/worksheets/sheet1.xml'"),
    "many_members": ("read_table", "has 50,005 parts (at most 1,000)"),
    "csv_header": ("read_table", "row 1: the header has 2,000,001 columns"),
    "csv_header/frame": ("read_frame", "row 1: the header has 2,000,001 columns"),
    "csv_rows": ("read_table", "more than 200,000 data rows"),
    "csv_rows/frame": ("read_frame", "more than 200,000 data rows"),
    "long_cell": ("read_table", "row 2: a cell longer than 32,767 characters"),
    "long_cell/frame": ("read_frame", "row 2: a cell longer than 32,767 characters"),
    "long_cell_xlsx": ("read_table", "sheet 's', row 2, column 'A': a cell longer than "
                                     "32,767 characters"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bomb_is_refused_within_5_s_and_300_mb(case, tmp_path):
    build, name = bombs.BOMBS[case.split("/")[0]]
    reader, words = REFUSALS[case]
    got = bombs.measure(build(), name, reader=reader, timeout=60, tmp=str(tmp_path))
    assert got["outcome"] == "refused", got
    assert words in got["error"] and got["error"].startswith(name), got["error"]
    assert got["seconds"] < SECONDS, got
    assert 0 < got["peak"] < PEAK, got


def test_declared_dimension_is_read_as_its_cells_within_5_s_and_300_mb(tmp_path):
    """A 2 KB workbook declaring A1:XFD200001, its 9,000 rows before the header each
    reaching column XFD: the dimension is ignored and no row is padded (3.25 s before)."""
    data = bombs.declared_dimension()
    assert len(data) < 3000
    got = bombs.measure(data, "dimension.xlsx", timeout=60, tmp=str(tmp_path))
    assert got["outcome"] == "read", got
    assert got["seconds"] < SECONDS and 0 < got["peak"] < PEAK, got
    table = read_table(data, "dimension.xlsx")
    assert table.header == ["id", "x"] and table.header_row == 9001
    assert [(r.number, r.values) for r in table.rows] == [(9002, ("a", "1"))]


# ------------------------------------------------------------------ each cap, in process

def small_xlsx(rows: str, **extra) -> bytes:
    return bombs.zip_bytes(bombs.xlsx_members(bombs.sheet_xml(rows), **extra))


def header_row(*names: str, row: int = 1) -> str:
    cells = "".join(bombs.inline(chr(65 + j), row, n) for j, n in enumerate(names))
    return f'<row r="{row}">{cells}</row>'


def refusal(call, *args, **kwargs) -> TableError:
    with pytest.raises(TableError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_lying_member_size_stops_at_the_declared_size():
    """A sheet whose header says 2 KB but inflates to 1 GB is read through a bounded
    stream: it stops at 2 KB and the CRC refuses it, nothing is inflated further."""
    error = refusal(read_table, bombs.lying_size(), "lying.xlsx")
    assert "Bad CRC-32" in str(error)


def test_archive_caps_come_from_the_central_directory():
    data = small_xlsx(header_row("id"), extra=[bombs.Member(f"m{i}", b"") for i in range(6)])
    assert read_table(data, "ok.xlsx").header == ["id"]
    tight = dataclasses.replace(LIMITS, max_members=8)
    error = refusal(read_table, data, "m.xlsx", limits=tight)
    assert isinstance(error, FileRefused)
    assert str(error) == "m.xlsx: the workbook has 11 parts (at most 8); is it really a table?"
    # a lying end record (it claims 1 member) does not hide the directory's 11
    lying = bombs.zip_bytes(bombs.xlsx_members(bombs.sheet_xml(header_row("id")), extra=[
        bombs.Member(f"m{i}", b"") for i in range(6)]), declared_count=1)
    assert "has 11 parts" in str(refusal(read_table, lying, "m.xlsx", limits=tight))
    sheet = refusal(read_table, data, "s.xlsx",
                    limits=dataclasses.replace(LIMITS, max_sheet_xml=100))
    assert "the part 'xl/worksheets/sheet1.xml' unpacks to" in str(sheet)


def test_shared_strings_size_and_count_are_capped():
    strings = (f'<sst xmlns="{bombs.MAIN}"><si><t>id</t></si><si><t>b</t></si>'
               '<si><r><t>c</t></r><rPh><t>phonetic</t></rPh></si></sst>').encode()
    rows = ('<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
            '<row r="2"><c r="A2" t="s"><v>2</v></c></row>')
    data = small_xlsx(rows, shared=strings)
    assert [r.values for r in read_table(data, "s.xlsx").rows] == [("c",)]
    count = refusal(read_table, data, "s.xlsx",
                    limits=dataclasses.replace(LIMITS, max_shared_strings=2))
    assert str(count) == "s.xlsx: the shared-strings table holds more than 2 strings"
    size = refusal(read_table, data, "s.xlsx",
                   limits=dataclasses.replace(LIMITS, max_shared_strings_xml=50))
    assert "the part 'xl/sharedStrings.xml' unpacks to" in str(size)
    long = refusal(read_table, data, "s.xlsx",
                   limits=dataclasses.replace(LIMITS, max_cell_chars=1))
    assert "shared string 0 is longer than 1 characters" in str(long)


def test_a_value_past_the_column_cap_is_refused_but_far_empty_cells_are_not():
    far_empty = header_row("id") + '<row r="2"><c r="A2" t="inlineStr"><is><t>a</t></is>' \
        '</c><c r="XFD2" s="1"/></row>'
    table = read_table(small_xlsx(far_empty), "f.xlsx")
    assert [r.values for r in table.rows] == [("a",)]
    far_value = header_row("id") + f'<row r="2">{bombs.inline("ALM", 2, "x")}</row>'
    error = refusal(read_table, small_xlsx(far_value), "f.xlsx")
    assert str(error) == "f.xlsx: sheet 's', row 2: a value in column ALM, past the 1,000 " \
                         "columns read"
    wide = refusal(read_table, small_xlsx(header_row("a", "b", "c")), "w.xlsx",
                   limits=dataclasses.replace(LIMITS, max_columns=2))
    assert "a value in column C, past the 2 columns read" in str(wide)


def test_header_caps_for_csv_and_xlsx():
    tight = dataclasses.replace(LIMITS, max_columns=3, max_header_chars=5)
    assert str(refusal(read_table, b"a,b,c,d\n1,2,3,4\n", "h.csv", limits=tight)) == \
        "h.csv: row 1: the header has 4 columns; at most 3 are read"
    error = refusal(read_table, b"id,abcdefgh\n1,2\n", "h.csv", limits=tight)
    assert str(error) == ("h.csv: row 1, column '#2': a column name longer than 5 "
                          "characters ('abcdefgh')")
    error = refusal(read_table, small_xlsx(header_row("id", "abcdefgh")), "h.xlsx",
                    limits=tight)
    assert "sheet 's', row 1, column '#2': a column name longer than 5" in str(error)
    # the form's column preview is capped too (a 2 MB header of commas)
    assert "the header has 2,000,001 columns" in str(refusal(read_header,
                                                             bombs.csv_header(), "h.csv"))


def test_header_problems_are_few_and_short():
    """Missing-column messages name at most 20 columns, each cut to 40 characters; a
    problem's text is cut to 300 characters."""
    names = [f"{'x' * 60}{j}" for j in range(100)]
    data = (",".join(names) + "\n" + ",".join("1" * 100) + "\n").encode()
    error = refusal(read_table, data, "h.csv", required=["id"])
    message = error.problems[0].message
    assert message.count("x" * 40 + "...") == 20 and message.endswith("and 80 more")
    assert len(str(error)) < 1000


def test_cell_cap_for_csv_names_row_and_column():
    error = refusal(read_table, b"id,note\n1,abcdef\n", "c.csv",
                    limits=dataclasses.replace(LIMITS, max_cell_chars=5))
    assert str(error) == "c.csv: row 2, column 'note': a cell longer than 5 characters"
    frame = refusal(read_frame, b"id,note\n1,abcdef\n", "c.csv",
                    limits=dataclasses.replace(LIMITS, max_cell_chars=5))
    assert str(frame) == str(error)


@pytest.mark.parametrize("data, name", [
    (b"id\n" + b"1\n" * 3000, "t.csv"),
    (small_xlsx(header_row("id") + "".join(f'<row r="{i}">{bombs.inline("A", i, "v")}</row>'
                                           for i in range(2, 50))), "t.xlsx"),
])
def test_time_budget_stops_reading_with_a_clear_error(data, name):
    """A spent budget (negative here, so no clock is involved) stops the row loop."""
    spent = dataclasses.replace(LIMITS, seconds=-1.0)
    error = refusal(read_table, data, name, limits=spent)
    assert isinstance(error, FileRefused)
    assert "reading stopped after -1 s: the file is too big or too complex" in str(error)
    if name.endswith(".csv"):
        assert error.problems[0].row == 1024  # checked every 1,024 rows


def test_read_sheets_stops_at_a_whole_file_refusal():
    data = small_xlsx(header_row("id"), extra=[bombs.Member(f"m{i}", b"") for i in range(6)])
    error = refusal(read_sheets, data, "f.xlsx", ["s"],
                    limits=dataclasses.replace(LIMITS, max_members=3))
    assert "parts (at most 3)" in str(error)


def test_a_dtd_is_refused_so_no_entity_is_expanded():
    laughs = ('<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">'
              '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
              f'<worksheet xmlns="{bombs.MAIN}"><sheetData><row r="1"><c r="A1" '
              't="inlineStr"><is><t>&b;</t></is></c></row></sheetData></worksheet>')
    data = bombs.zip_bytes(bombs.xlsx_members(laughs.encode()))
    error = refusal(read_table, data, "dtd.xlsx")
    assert "not a readable XLSX workbook" in str(error) and "document type" in str(error)


def test_a_huge_tag_is_refused_while_it_is_still_arriving():
    """expat holds an unfinished tag whole: one longer than 1 MB stops the file (its text
    would be counted against the cell cap, its attributes would not)."""
    sheet = bombs.sheet_xml(header_row("id") + f'<row r="2" x="{"y" * 2_000_000}"/>')
    error = refusal(read_table, bombs.zip_bytes(bombs.xlsx_members(sheet)), "tag.xlsx",
                    limits=dataclasses.replace(LIMITS, max_ratio=100_000))
    assert str(error) == ("tag.xlsx: sheet 's': the part 'xl/worksheets/sheet1.xml' holds "
                          "an XML tag longer than 1 MB")


def test_limits_defaults_are_documented():
    """docs/uploads.md lists every cap with its default."""
    import pathlib

    doc = (pathlib.Path(__file__).parents[2] / "docs" / "uploads.md").read_text("utf-8")
    for field in dataclasses.fields(Limits):
        assert f"`{field.name}`" in doc, field.name


def test_real_workbooks_still_read():
    """openpyxl's own files (shared strings, styles, dates) read as before."""
    import datetime as dt

    import openpyxl

    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["id", "when", "n"])
    ws.append(["a", dt.datetime(2024, 5, 1), 1.5])
    ws.append(["b", dt.datetime(2024, 5, 1, 8, 30), 2.0])
    buffer = io.BytesIO()
    book.save(buffer)
    assert zipfile.ZipFile(io.BytesIO(buffer.getvalue())).getinfo("xl/styles.xml")
    table = read_table(buffer.getvalue(), "real.xlsx")
    assert [r.values for r in table.rows] == [("a", "2024-05-01", "1.5"),
                                              ("b", "2024-05-01 08:30:00", "2")]
