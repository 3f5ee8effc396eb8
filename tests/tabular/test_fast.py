"""tabular.reading.read_frame: read_table's result and errors as a DataFrame, split by
pandas' C parser when the file is a plain CSV."""
from __future__ import annotations

import io

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tabular import reading
from tabular.reading import TableError, read_frame, read_table


def same_as_read_table(data: bytes, name: str = "f.csv", **options) -> pd.DataFrame | None:
    """read_frame's answer, after checking it is read_table's (frame, or error)."""
    try:
        table = read_table(data, name, **options)
    except TableError as exc:
        with pytest.raises(TableError) as caught:
            read_frame(data, name, **options)
        assert str(caught.value) == str(exc)
        assert caught.value.problems == exc.problems and caught.value.total == exc.total
        return None
    frame = read_frame(data, name, **options)
    pd.testing.assert_frame_equal(frame, table.frame())
    assert frame.attrs == {"filename": name, "sheet": table.sheet,
                           "encoding": table.encoding, "header_row": table.header_row}
    return frame


def fast(data: bytes, name: str = "f.csv", **options) -> pd.DataFrame | None:
    """The pandas path alone (None: it hands the file to read_table)."""
    defaults = dict(max_rows=reading.MAX_ROWS, required=(), max_bytes=reading.MAX_BYTES,
                    encodings=reading.ENCODINGS, unguard=False, check_header=True,
                    strict_width=False)
    return reading._fast_frame(data, name, **(defaults | options))


def test_a_plain_csv_is_split_by_pandas_with_the_files_row_numbers():
    data = "\n\n区县,人数, w \r\n东湖, 12 ,1.5\r\n\r\n,,\r\n西山,7,2\r\n".encode()
    frame = same_as_read_table(data)
    assert frame is not None and fast(data) is not None
    assert list(frame.columns) == ["区县", "人数", "w"]
    assert list(frame.index) == [4, 7] and frame.index.name == "row"
    assert frame.loc[4].tolist() == ["东湖", "12", "1.5"]
    assert frame.attrs["header_row"] == 3


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_each_encoding_takes_the_fast_path(encoding):
    data = "编号;街道\nH1;东湖街道\nH2;西山街道\n".encode(encoding)
    frame = same_as_read_table(data)
    assert fast(data) is not None
    assert frame.attrs["encoding"] == encoding
    assert frame["街道"].tolist() == ["东湖街道", "西山街道"]


@pytest.mark.parametrize("data", [
    b'a,b\n"x,y",1\n',               # a quoted cell: csv's own rules
    b"a,b\n1,2\r3,4\n",              # a lone carriage return
    b"a,b\n1,2,3\n",                 # a long row
    b"a,b\n1\n",                     # a short row (padded, like read_table)
    b"a,a\n1,2\n",                   # a repeated column name
    b"a,b\n1,\x002\n",               # NUL
    b"\xff\xfe,\x00\n",              # not text
    b"a,b\n",                        # no data rows
    b"\n" * 30 + b"a,b\n1,2\n",      # the header past the first 20 lines
])
def test_anything_unusual_goes_through_read_table(data):
    assert fast(data) is None
    same_as_read_table(data)
    same_as_read_table(data, strict_width=True, unguard=True, check_header=False)


def test_errors_are_read_tables_naming_file_row_and_column():
    data = b"id,w\n1,2\n3\n4,5,6\n"
    with pytest.raises(TableError) as caught:
        read_frame(data, "ragged.csv", strict_width=True)
    assert [(p.file, p.row, p.column) for p in caught.value.problems] == [
        ("ragged.csv", 3, None), ("ragged.csv", 4, None)]
    with pytest.raises(TableError, match=r"big.csv: row 1, column 'x': column not found"):
        read_frame(b"id,w\n1,2\n", "big.csv", required=["x"])
    with pytest.raises(TableError, match="more than 1 data rows"):
        read_frame(b"id\n1\n2\n", "big.csv", max_rows=1)


def test_a_path_is_read_and_a_missing_file_named(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b\n'=x,2\n")
    frame = read_frame(path, unguard=True)
    assert frame.attrs["filename"] == str(path) and frame["a"].tolist() == ["=x"]
    with pytest.raises(TableError, match=r"nope\.csv: file not found"):
        read_frame(tmp_path / "nope.csv", "nope.csv")
    with pytest.raises(TableError, match="the file is larger than 4 bytes"):
        read_frame(path, "d.csv", max_bytes=4)


def test_xlsx_is_read_by_read_table():
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["id", "n"])
    book.active.append(["a", 1])
    buffer = io.BytesIO()
    book.save(buffer)
    frame = same_as_read_table(buffer.getvalue(), "f.xlsx")
    assert frame["n"].tolist() == ["1"] and frame.attrs["encoding"] == "xlsx"


# every character that matters to either parser: separators, quotes, line ends, spaces
# str.strip() removes, the formula guard, NUL, CJK and GBK-less text
ODD = ['"', "\r", "\x00", "\ufeff"]
PLAIN = [",", ";", "\t", " ", "\n", "\r\n", "'", "=", "-", "a", "b", "1", "中", "\u3000", "\xa0",
         "\x1c", "\x0b", "\x0c", "\x85", "\u2028", "\u2009", "\u205f", "é", "“"]
OPTIONS = st.fixed_dictionaries({
    "strict_width": st.booleans(), "unguard": st.booleans(), "check_header": st.booleans(),
    "max_rows": st.sampled_from([None, None, 1, 3]),
    "required": st.sampled_from([(), (), ("a",)]),
    "encodings": st.sampled_from([("utf-8", "gbk"), ("utf-8",)])})


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(PLAIN + ODD), max_size=60).map("".join),
       st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]), OPTIONS)
def test_any_text_reads_as_read_table_reads_it(text, encoding, options):
    same_as_read_table(text.encode(encoding), **options)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(PLAIN), max_size=80).map("".join), OPTIONS)
def test_any_text_without_quotes_reads_as_read_table_reads_it(text, options):
    same_as_read_table(text.encode(), **options)


CELL = st.sampled_from(["", " ", "1", "x", "'=a", "中", " 2 ", "\u3000", "a b", "-3"])


@st.composite
def tables(draw):
    """A header and rows of about its width (some short, some long, some blank)."""
    width = draw(st.integers(1, 4))
    header = draw(st.lists(st.sampled_from(["a", "b", "c", "中", "'=h", " d ", ""]),
                           min_size=width, max_size=width, unique=True))
    rows = [header]
    for _ in range(draw(st.integers(0, 8))):
        size = draw(st.sampled_from([width] * 6 + [0, width - 1, width + 1]))
        rows.append(draw(st.lists(CELL, min_size=size, max_size=size)))
    return rows


@settings(max_examples=1000, deadline=None)
@given(tables(), st.sampled_from([",", ";", "\t"]), st.sampled_from(["\n", "\r\n"]),
       st.booleans(), OPTIONS)
def test_any_table_reads_as_read_table_reads_it(rows, sep, end, last_end, options):
    """Tables without quotes, which pandas splits: cells, blank and ragged rows."""
    text = end.join(sep.join(row) for row in rows) + (end if last_end else "")
    same_as_read_table(text.encode(), **options)
