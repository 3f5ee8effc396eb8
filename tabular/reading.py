"""One table reader for every importer: CSV (UTF-8, UTF-8 with BOM or GBK) and XLSX.

:func:`read_table` turns the bytes of an uploaded or given file into a :class:`Table`:
a stripped text header and the data rows as text, each with its 1-based row number as
a spreadsheet shows it (the header is row 1). Nothing is interpreted beyond that:
importers check their own columns and values and report every bad row at once with
:meth:`Table.problems` (a :class:`Problems` collector), all or nothing.

Every refusal is one error type, :class:`TableError`, whose problems name the file,
sheet, row and column. Limits keep hostile files cheap: at most ``max_bytes`` of input,
``max_rows`` data rows and :data:`MAX_COLUMNS` columns; an XLSX sheet is read in
read-only mode for values only, its declared dimensions are ignored, a row stops at
the header's width and trailing empty rows are skipped, so a 1.5 KB workbook declaring
``A1:XFD200001`` costs milliseconds.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .guard import unguard_cell

__all__ = ["MAX_BYTES", "MAX_COLUMNS", "MAX_ROWS", "Problem", "Problems", "Row", "Table",
           "TableError", "is_xlsx", "read_header", "read_sheets", "read_table"]

MAX_ROWS = 200_000
MAX_BYTES = 50 * 1024 * 1024
MAX_COLUMNS = 1_000
#: problems named one by one in ``str(TableError)``; beyond that a count
SHOWN_PROBLEMS = 50
#: problems kept by a :class:`Problems` collector (the count goes on)
KEPT_PROBLEMS = 500
#: an XLSX sheet's XML may be at most this big unpacked (a zip bomb stops here)
MAX_SHEET_XML = 1024 * 1024 * 1024
#: blank rows read past the last data row before a sheet counts as ended
MAX_BLANK_RUN = 10_000
ENCODINGS = ("utf-8", "gbk")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # an old binary .xls workbook


# ------------------------------------------------------------------ problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file: which file, sheet, row (1-based, as in the file) and
    column (None when not tied to one), and what."""

    file: str
    sheet: str | None
    row: int | None
    column: str | None
    message: str

    def where(self) -> str:
        """``sheet 'survey', row 3, column 'name'`` (the parts that are known)."""
        parts = []
        if self.sheet:
            parts.append(f"sheet {self.sheet!r}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.message}" if where else self.message

    def full(self) -> str:
        """The problem with its file name first: ``pop.csv: row 3, column 'sex': ...``."""
        return f"{self.file}: {self}"


class TableError(ValueError):
    """A file was refused; ``problems`` lists every reason (``total`` counts those not kept).

    ``str()`` names file, sheet, row and column of each problem, one per line, the first
    :data:`SHOWN_PROBLEMS` of them and then how many more there are.
    """

    def __init__(self, problems: Sequence[Problem], total: int | None = None) -> None:
        self.problems = list(problems)
        self.total = max(total if total is not None else 0, len(self.problems))
        self.filename = self.problems[0].file if self.problems else ""
        super().__init__(self._text())

    def _text(self) -> str:
        lines = [p.full() for p in self.problems[:SHOWN_PROBLEMS]]
        more = self.total - len(lines)
        if more:
            lines.append(f"{self.filename}: ... and {more} more problems")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._text()


class Problems:
    """Collects the problems of one file (and sheet) so an importer can check every row,
    report all at once, and store nothing when any was found::

        problems = table.problems()
        for row in table.rows:
            if not row.values[0]:
                problems.add(row.number, "id", "empty id")
        problems.raise_if_any()
    """

    def __init__(self, file: str, sheet: str | None = None, *,
                 limit: int = KEPT_PROBLEMS) -> None:
        self.file = file
        self.sheet = sheet
        self.limit = limit
        self.kept: list[Problem] = []
        self.total = 0

    def add(self, row: int | None, column: str | None, message: str) -> None:
        """Note one problem (kept up to ``limit``, counted always)."""
        self.append(Problem(self.file, self.sheet, row, column, message))

    def append(self, problem: Problem) -> None:
        self.total += 1
        if len(self.kept) < self.limit:
            self.kept.append(problem)

    def extend(self, problems: Sequence[Problem]) -> None:
        for problem in problems:
            self.append(problem)

    def merge(self, other: Problems | TableError) -> None:
        """Take over another collector's or error's problems, and their count."""
        kept = other.kept if isinstance(other, Problems) else other.problems
        self.extend(kept)
        self.total += other.total - len(kept)

    def __len__(self) -> int:
        return self.total

    def __bool__(self) -> bool:
        return self.total > 0

    def error(self) -> TableError:
        return TableError(self.kept, self.total)

    def raise_if_any(self) -> None:
        """Raise :class:`TableError` with every problem noted so far, if there is one."""
        if self.total:
            raise self.error()


# ------------------------------------------------------------------ tables


@dataclass(frozen=True)
class Row:
    """A data row: its number in the file (header = row 1) and its cells as stripped text,
    exactly as many as the header has columns (short rows padded with "")."""

    number: int
    values: tuple[str, ...]


@dataclass
class Table:
    """A file read as text: where it came from, its header and its non-blank data rows.

    ``encoding`` is ``utf-8``, ``utf-8-sig``, ``gbk`` or ``xlsx``; ``sha256`` is the
    digest of the bytes read (for an audit trail).
    """

    filename: str
    sheet: str | None
    header: list[str]
    rows: list[Row]
    encoding: str = "utf-8"
    sha256: str = ""
    header_row: int = 1

    def index(self, column: str) -> int:
        """Position of a column in the header (ValueError when absent)."""
        return self.header.index(column)

    def column(self, name: str) -> list[str]:
        """One column's cells, in row order."""
        j = self.index(name)
        return [row.values[j] for row in self.rows]

    def records(self) -> Iterator[tuple[int, dict[str, str]]]:
        """``(row number, {column: cell})`` per data row (named columns only)."""
        named = [(j, name) for j, name in enumerate(self.header) if name]
        for row in self.rows:
            yield row.number, {name: row.values[j] for j, name in named}

    def problems(self, *, limit: int = KEPT_PROBLEMS) -> Problems:
        """A collector for this file's row problems (file and sheet filled in)."""
        return Problems(self.filename, self.sheet, limit=limit)

    def frame(self) -> Any:
        """The rows as a pandas DataFrame of text, indexed by row number."""
        import pandas as pd  # ~0.2 s to import (python -X importtime); only callers that
        # want a frame pay for it

        return pd.DataFrame([row.values for row in self.rows], columns=list(self.header),
                            index=pd.Index([row.number for row in self.rows], name="row"),
                            dtype=object)


# ------------------------------------------------------------------ reading


def read_table(data: bytes, filename: str, *, sheet: str | None = None,
               max_rows: int | None = MAX_ROWS, required: Sequence[str] = (),
               max_bytes: int = MAX_BYTES, encodings: Sequence[str] = ENCODINGS,
               unguard: bool = False, check_header: bool = True,
               strict_width: bool = False) -> Table:
    """Read a CSV or XLSX file (told apart by its first bytes, then its name) as text.

    ``sheet``: the XLSX sheet to read (case and spaces ignored); the first one when None.
    ``max_rows``: more data rows than this are refused (None: no limit).
    ``required``: columns the header must have. ``encodings``: what a CSV may be in,
    among ``utf-8`` (a BOM is always allowed) and ``gbk`` (read as GB18030, its superset).
    ``unguard``: undo the formula guard of our CSV exports (``'=x`` -> ``=x``).
    ``check_header``: empty or repeated column names are problems. ``strict_width``: a
    CSV row with fewer cells than the header is a problem (otherwise padded); more
    non-empty cells than the header always are.
    Raises :class:`TableError` naming file, sheet, row and column of every problem.
    """
    table, problems = _read(data, filename, sheet=sheet, max_rows=max_rows,
                            max_bytes=max_bytes, encodings=encodings, unguard=unguard,
                            strict_width=strict_width)
    _check_header(table, problems, required, check_header)
    return table


def read_header(data: bytes, filename: str, *, sheet: str | None = None,
                max_bytes: int = MAX_BYTES, encodings: Sequence[str] = ENCODINGS
                ) -> list[str]:
    """Only the header of a file, e.g. to offer its columns in a form (rows not checked)."""
    return _read(data, filename, sheet=sheet, max_rows=0, max_bytes=max_bytes,
                 encodings=encodings, unguard=False, strict_width=False,
                 header_only=True)[0].header


def read_sheets(data: bytes, filename: str, sheets: Sequence[str], *,
                max_rows: int | None = MAX_ROWS, max_bytes: int = MAX_BYTES,
                check_header: bool = True) -> dict[str, Table]:
    """Several sheets of one XLSX workbook, opened once: ``{name: Table}`` for each of
    ``sheets`` the workbook has (matched ignoring case and spaces); absent ones are left
    out, so the caller decides which are required. An empty sheet is a table with no
    header and no rows. Raises :class:`TableError` with the problems of every sheet."""
    _check_size(data, filename, max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    book = _open_workbook(data, filename)
    out: dict[str, Table] = {}
    problems = Problems(filename)
    try:
        for name in sheets:
            ws = _find_sheet(book, name)
            if ws is None:
                continue
            try:
                table, found = _sheet_table(ws, filename, max_rows, empty_ok=True)
                table.sha256 = digest
                _check_header(table, found, (), check_header)
            except TableError as exc:
                problems.merge(exc)
                continue
            out[name] = table
    finally:
        book.close()
    problems.raise_if_any()
    return out


def _check_size(data: bytes, filename: str, max_bytes: int) -> None:
    if not data:
        raise TableError([Problem(filename, None, None, None, "the file is empty")])
    if len(data) > max_bytes:
        raise TableError([Problem(filename, None, None, None, "the file is larger than "
                                  f"{_megabytes(max_bytes)}")])


def _megabytes(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n:,} bytes"


def is_xlsx(data: bytes, filename: str) -> bool:
    """A workbook by its first bytes (a zip), or by its name."""
    return data[:4] == _ZIP_MAGIC or filename.lower().endswith(XLSX_SUFFIXES)


def _read(data: bytes, filename: str, *, sheet: str | None, max_rows: int | None,
          max_bytes: int, encodings: Sequence[str], unguard: bool, strict_width: bool,
          header_only: bool = False) -> tuple[Table, Problems]:
    """The table and the problems of its rows (fatal ones are raised at once)."""
    _check_size(data, filename, max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    if data[:4] == _OLE_MAGIC or filename.lower().endswith(".xls"):
        raise TableError([Problem(filename, None, None, None, "an old .xls workbook: save "
                                  "it as .xlsx or as 'CSV UTF-8'")])
    if is_xlsx(data, filename):
        book = _open_workbook(data, filename)
        try:
            if sheet is None:
                if not book.worksheets:
                    raise TableError([Problem(filename, None, None, None,
                                              "the workbook has no worksheet")])
                ws = book.worksheets[0]
            else:
                ws = _find_sheet(book, sheet)
                if ws is None:
                    names = ", ".join(repr(w.title) for w in book.worksheets)
                    raise TableError([Problem(filename, sheet, None, None,
                                              f"the workbook has no sheet {sheet!r} "
                                              f"(it has {names or 'none'})")])
            table, problems = _sheet_table(ws, filename, 0 if header_only else max_rows,
                                           header_only=header_only)
        finally:
            book.close()
        table.sha256 = digest
        return table, problems
    text, encoding = _decode(data, filename, encodings)
    table, problems = _csv_table(text, filename, max_rows, unguard, strict_width,
                                 header_only)
    table.encoding, table.sha256 = encoding, digest
    return table, problems


# -- CSV


def _decode(data: bytes, filename: str, encodings: Sequence[str]) -> tuple[str, str]:
    """Text and encoding: UTF-8 (a BOM is always accepted), else GBK when allowed."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise _not_text(data[3:], filename, exc, ("utf-8",)) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        first = exc
    if "gbk" in encodings or "gb18030" in encodings:
        try:
            return data.decode("gb18030"), "gbk"
        except UnicodeDecodeError:
            pass
    raise _not_text(data, filename, first, encodings) from None


def _not_text(data: bytes, filename: str, exc: UnicodeDecodeError,
              encodings: Sequence[str]) -> TableError:
    line = data[:exc.start].count(b"\n") + 1
    if "gbk" in encodings or "gb18030" in encodings:
        message = ("the file is neither UTF-8 nor GBK text; save it as 'CSV UTF-8' or as "
                   ".xlsx")
    else:
        bad = data[exc.start:exc.start + 1].hex()
        message = f"not UTF-8 text (byte 0x{bad}); save the file as UTF-8"
    return TableError([Problem(filename, None, line, None, message)])


def _delimiter(text: str) -> str:
    """The separator of the header line: the most frequent of comma, semicolon, tab."""
    first = next((line for line in text.split("\n", 20) if line.strip()), "")
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_table(text: str, filename: str, max_rows: int | None, unguard: bool,
               strict_width: bool, header_only: bool) -> tuple[Table, Problems]:
    if "\x00" in text:  # no database text column can hold it, and no real table has it
        line = text[:text.index("\x00")].count("\n") + 1
        raise TableError([Problem(filename, None, line, None, "the file contains a NUL "
                                  "character (is it really a CSV file?)")])
    fix = unguard_cell if unguard else (lambda cell: cell)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    problems = Problems(filename)
    header: list[str] = []
    header_row = 0
    rows: list[Row] = []
    number = 0  # the record's row number, as a spreadsheet shows the file
    try:
        for cells in reader:
            number += 1
            if not header_row:
                if not any(c.strip() for c in cells):
                    continue  # blank lines before the header
                header_row = number
                header = [fix(c.strip()) for c in cells]
                while header and not header[-1]:
                    header.pop()
                if header_only:
                    break
                if len(header) > MAX_COLUMNS:
                    problems.add(header_row, None, f"more than {MAX_COLUMNS:,} columns")
                    break
                continue
            values = [fix(c.strip()) for c in cells]
            if not any(values):
                continue
            width = len(header)
            if (len(values) > width and any(values[width:])) or (
                    strict_width and len(values) < width):
                problems.add(number, None, f"{len(values)} values but the header has "
                                           f"{width} columns")
            if max_rows is not None and len(rows) >= max_rows:
                problems.add(None, None, f"more than {max_rows:,} data rows; split the file")
                break
            rows.append(Row(number, _fit(values, width)))
    except csv.Error as exc:  # e.g. a field over the csv module's limit
        problems.add(number + 1, None, f"unreadable CSV ({exc})")
    if not header_row:
        problems.add(1, None, "no header row")
        problems.raise_if_any()
    return Table(filename, None, header, rows, header_row=header_row), problems


def _fit(values: list[str], width: int) -> tuple[str, ...]:
    if len(values) >= width:
        return tuple(values[:width])
    return tuple(values) + ("",) * (width - len(values))


# -- XLSX


def _open_workbook(data: bytes, filename: str) -> Any:
    from openpyxl import load_workbook  # ~0.22 s to import (python -X importtime); CSV
    # readers skip it

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        if any(info.file_size > MAX_SHEET_XML for info in archive.infolist()):
            raise TableError([Problem(filename, None, None, None, "the workbook unpacks to "
                                      "more than 1 GB; is it really a table?")])
        return load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except TableError:
        raise
    except Exception as exc:  # BadZipFile, InvalidFileException, KeyError, XML errors...
        raise TableError([Problem(filename, None, None, None,
                                  f"not a readable XLSX workbook ({exc})")]) from None


def _find_sheet(book: Any, name: str) -> Any:
    wanted = name.strip().lower()
    return next((ws for ws in book.worksheets if ws.title.strip().lower() == wanted), None)


def _cell(value: Any) -> str:
    """A cell value as text: whole numbers without ``.0``, dates as ISO text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()


def _sheet_table(ws: Any, filename: str, max_rows: int | None,
                 header_only: bool = False, empty_ok: bool = False) -> tuple[Table, Problems]:
    """Read one sheet row by row; the declared dimensions are never trusted."""
    title = ws.title
    problems = Problems(filename, title)
    ws.reset_dimensions()  # a sheet may declare A1:XFD1048576 for a few cells
    header: list[str] = []
    header_row = 0
    rows: list[Row] = []
    blank_run = 0
    try:
        # rows before the header are read whole (their width is their own cells')
        for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
            cells = [_cell(v) for v in values[:MAX_COLUMNS + 1]]
            if any(cells):
                header_row = number
                header = cells
                break
            if number > MAX_BLANK_RUN:
                break
        while header and not header[-1]:
            header.pop()
        if len(header) > MAX_COLUMNS:
            problems.add(header_row, None, f"more than {MAX_COLUMNS:,} columns")
            problems.raise_if_any()
        if header_row and not header_only:
            width = len(header)
            it = ws.iter_rows(min_row=header_row + 1, max_col=width, values_only=True)
            for number, values in enumerate(it, start=header_row + 1):
                cells = tuple(_cell(v) for v in values)
                if not any(cells):
                    blank_run += 1
                    if blank_run > MAX_BLANK_RUN:
                        break  # only blank rows follow in any real table
                    continue
                blank_run = 0
                if max_rows is not None and len(rows) >= max_rows:
                    problems.add(None, None, f"more than {max_rows:,} data rows; split the "
                                             "file")
                    break
                rows.append(Row(number, _fit(list(cells), width)))
    except TableError:
        raise
    except Exception as exc:  # a corrupt sheet part (XML errors, bad cell types...)
        problems.add(None, None, f"not a readable XLSX workbook ({exc})")
    if not header_row and not empty_ok:
        problems.add(1, None, "no header row")
        problems.raise_if_any()
    return Table(filename, title, header, rows, encoding="xlsx",
                 header_row=header_row or 1), problems


# -- header


def _check_header(table: Table, rows: Problems, required: Sequence[str],
                  check_header: bool) -> None:
    """Check the header and raise its problems and the rows' together (header first)."""
    problems = table.problems()
    line = table.header_row
    if check_header:
        seen: set[str] = set()
        for i, name in enumerate(table.header, start=1):
            if not name:
                problems.add(line, f"#{i}", "empty column name in the header")
            elif name in seen:
                problems.add(line, name, "column name appears twice in the header")
            seen.add(name)
    for name in required:
        if name not in table.header:
            shown = ", ".join(h for h in table.header if h)
            problems.add(line, name, f"column not found; the header has: {shown}")
    problems.merge(rows)
    problems.raise_if_any()


# ------------------------------------------------------------------ frames (big files)

__all__ += ["read_frame"]

#: the characters ``str.strip()`` removes besides line ends, as bytes (ASCII) and as the
#: starts of their UTF-8 forms (U+0085, U+00A0, U+1680, U+2000..U+205F, U+3000): a file
#: holding none of them has no cell to strip
_ASCII_SPACES = b" \t\x0b\x0c\x1c\x1d\x1e\x1f"
_WIDE_SPACES = (b"\xc2\x85", b"\xc2\xa0", b"\xe1\x9a\x80", b"\xe2\x80", b"\xe2\x81\x9f",
                b"\xe3\x80\x80")
#: the separator and the header are looked for in the first lines only (as _delimiter)
_HEAD_LINES = 20


def read_frame(data: bytes | str | os.PathLike[str], filename: str | None = None, *,
               sheet: str | None = None, max_rows: int | None = MAX_ROWS,
               required: Sequence[str] = (), max_bytes: int = MAX_BYTES,
               encodings: Sequence[str] = ENCODINGS, unguard: bool = False,
               check_header: bool = True, strict_width: bool = False) -> Any:
    """:func:`read_table` as a pandas DataFrame of text, fast enough for a million rows.

    ``data`` is the file's bytes or its path (``filename`` defaults to the path). The
    result equals ``read_table(...).frame()``: one object column of stripped text per
    header column, indexed by each row's number in the file (index name ``row``), blank
    rows left out; ``frame.attrs`` holds ``filename``, ``sheet``, ``encoding`` and
    ``header_row``. A plain CSV (no double quote, no NUL, no carriage return outside a
    line end, the header among the first 20 lines) is split by pandas' C parser, which is
    several times faster than Python's csv module and keeps one object per repeated cell;
    any other file, and any file pandas refuses or a check doubts, is read by
    :func:`read_table` itself, so the cells and every :class:`TableError` (file, row,
    column) are exactly its own. XLSX always is. Arguments as for :func:`read_table`.
    """
    if isinstance(data, bytes):
        name = filename if filename is not None else "data"
    else:
        name = filename if filename is not None else os.fspath(data)
        data = _file_bytes(data, name, max_bytes)
    options: dict[str, Any] = dict(max_rows=max_rows, required=required, max_bytes=max_bytes,
                                   encodings=encodings, unguard=unguard,
                                   check_header=check_header, strict_width=strict_width)
    frame = None
    if 0 < len(data) <= max_bytes and not is_xlsx(data, name) and data[:4] != _OLE_MAGIC \
            and not name.lower().endswith(".xls"):
        frame = _fast_frame(data, name, **options)
    if frame is None:
        table = read_table(data, name, sheet=sheet, **options)
        frame = table.frame()
        frame.attrs.update(filename=name, sheet=table.sheet, encoding=table.encoding,
                           header_row=table.header_row)
    return frame


def _file_bytes(path: str | os.PathLike[str], name: str, max_bytes: int) -> bytes:
    """A file's bytes; a missing, unreadable or too big file is a :class:`TableError`."""
    try:
        if os.path.getsize(path) > max_bytes:
            raise TableError([Problem(name, None, None, None, "the file is larger than "
                                      f"{_megabytes(max_bytes)}")])
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise TableError([Problem(name, None, None, None, "file not found")]) from None
    except OSError as exc:
        raise TableError([Problem(name, None, None, None, "cannot read the file "
                                  f"({exc.strerror or exc})")]) from None


def _fast_frame(data: bytes, name: str, *, max_rows: int | None, required: Sequence[str],
                max_bytes: int, encodings: Sequence[str], unguard: bool,
                check_header: bool, strict_width: bool) -> Any:
    """The CSV as :func:`read_frame` returns it, split by pandas, or None when the file is
    not plainly a clean table (then :func:`read_table` reads it and names its problems).

    Without a double quote each line is one record and each cell the text between two
    separators, as Python's csv module splits it, so the checks of :func:`_csv_table`
    can be made on whole columns: the header's rules, no row longer than the header
    (pandas refuses one), none shorter with ``strict_width`` (separators counted), the
    row count, blank rows left out.
    """
    # start-up cost: pandas (numpy with it) takes ~0.2 s to import (python -X importtime);
    # only frame readers pay
    import numpy as np
    import pandas as pd

    body, encoding = _utf8_body(data, encodings)
    if body is None or b'"' in body or b"\x00" in body \
            or body.count(b"\r") != body.count(b"\r\n"):
        return None
    head = _head(body, unguard)
    if head is None:
        return None
    delimiter, header, header_row, start = head
    width = len(header)
    try:
        _check_header(Table(name, None, header, [], header_row=header_row), Problems(name),
                      required, check_header)
    except TableError:
        return None
    if width > MAX_COLUMNS:
        return None
    region = body[start:]
    if region.startswith(b"\xef\xbb\xbf"):
        return None  # pandas would drop a byte-order mark there
    lines = region.count(b"\n") + (not region.endswith(b"\n"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a ParserWarning means pandas guessed
            parsed = pd.read_csv(io.BytesIO(region), sep=delimiter, header=None,
                                 dtype=object, keep_default_na=False, na_filter=False,
                                 skip_blank_lines=False, quoting=csv.QUOTE_NONE,
                                 index_col=False, engine="c", encoding="utf-8")
    except Exception:  # a row longer than the first (ParserError), no rows, anything else
        return None
    if parsed.shape != (lines, width):
        return None
    columns = [parsed[j].to_numpy(dtype=object) for j in range(width)]
    del parsed
    if any(space in region for space in _ASCII_SPACES) or (
            not region.isascii() and any(space in region for space in _WIDE_SPACES)):
        columns = [np.array([cell.strip() for cell in cells], dtype=object)
                   for cells in columns]
    if unguard and b"'" in region:
        columns = [np.array([unguard_cell(cell) for cell in cells], dtype=object)
                   for cells in columns]
    blank = np.ones(lines, dtype=bool)
    for cells in columns:
        blank &= cells == ""
    sep = delimiter.encode()
    if strict_width and region.count(sep) != (width - 1) * lines:
        fields = np.array([line.count(sep) + 1 for line in region.split(b"\n")[:lines]])
        if ((fields < width) & ~blank).any():
            return None  # short rows: read_table names each one
    kept = int(lines - blank.sum())
    if kept == 0 or (max_rows is not None and kept > max_rows):
        return None
    numbers = np.arange(header_row + 1, header_row + 1 + lines, dtype=np.int64)
    if kept < lines:
        columns = [cells[~blank] for cells in columns]
        numbers = numbers[~blank]
    frame = pd.DataFrame(dict(enumerate(columns)), index=pd.Index(numbers, name="row"),
                         dtype=object, copy=False)
    frame.columns = list(header)
    frame.attrs.update(filename=name, sheet=None, encoding=encoding, header_row=header_row)
    return frame


def _utf8_body(data: bytes, encodings: Sequence[str]) -> tuple[bytes | None, str]:
    """The file as UTF-8 bytes without a BOM, and the encoding :func:`_decode` names; None
    when :func:`_decode` would refuse the file."""
    bom = data.startswith(b"\xef\xbb\xbf")
    body = data[3:] if bom else data
    encoding = "utf-8-sig" if bom else "utf-8"
    if body.isascii():
        return body, encoding
    try:
        body.decode("utf-8")
        return body, encoding
    except UnicodeDecodeError:
        if bom or not ("gbk" in encodings or "gb18030" in encodings):
            return None, encoding
    try:
        return data.decode("gb18030").encode("utf-8"), "gbk"
    except UnicodeDecodeError:
        return None, encoding


def _head(body: bytes, unguard: bool) -> tuple[str, list[str], int, int] | None:
    """Separator, header (as :func:`_csv_table` makes it), the header's line number and
    where the data start, from the first lines; None when they do not hold the header."""
    ends: list[int] = []
    at = -1
    while len(ends) < _HEAD_LINES:
        at = body.find(b"\n", at + 1)
        if at < 0:
            break
        ends.append(at)
    head = body[:ends[-1] if len(ends) == _HEAD_LINES else len(body)].decode("utf-8")
    lines = head.split("\n")
    if not any(line.strip() for line in lines):
        return None  # the separator would be looked for further on
    delimiter = _delimiter(head)
    fix = unguard_cell if unguard else (lambda cell: cell)
    for number, line in enumerate(lines, start=1):
        cells = [cell.strip() for cell in line.removesuffix("\r").split(delimiter)]
        if any(cells):
            header = [fix(cell) for cell in cells]
            while header and not header[-1]:
                header.pop()
            if number > len(ends):
                return delimiter, header, number, len(body)  # a header and no data
            return delimiter, header, number, ends[number - 1] + 1
    return None
