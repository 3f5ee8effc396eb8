"""One table reader for every importer: CSV (UTF-8, UTF-8 with BOM or GBK) and XLSX.

:func:`read_table` turns the bytes of an uploaded or given file into a :class:`Table`:
a stripped text header and the data rows as text, each with its 1-based row number as
a spreadsheet shows it (the header is row 1). Nothing is interpreted beyond that:
importers check their own columns and values and report every bad row at once with
:meth:`Table.problems` (a :class:`Problems` collector), all or nothing.

Every refusal is one error type, :class:`TableError`, whose problems name the file,
sheet, row and column (:class:`FileRefused`, a subclass, when a cap refuses the whole
file at once). Limits keep hostile files cheap (docs/uploads.md lists each): at most
``max_bytes`` of input and ``max_rows`` data rows, and the caps of :class:`Limits`:
columns, cell and column-name length, a time budget, and for an XLSX the archive's
members, unpacked size, ratio and the size of each part, checked from the zip's central
directory before anything is inflated. An XLSX is streamed by this module (expat over a
bounded inflating stream), not loaded by openpyxl: its declared dimension is never read
and no row is padded, so a 2 KB workbook declaring ``A1:XFD200001`` costs milliseconds.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import posixpath
import struct
import time
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.parsers import expat

from .guard import unguard_cell
from .messages import (  # noqa: F401 (SHOWN_*: re-exported, callers read them here)
    SHOWN_CHARS,
    SHOWN_NAMES,
    english,
    megabytes,
    names_text,
    shown_name,
)

__all__ = ["LIMITS", "MAX_BYTES", "MAX_COLUMNS", "MAX_ROWS", "OFFLINE_LIMITS", "FileRefused",
           "Limits", "Problem", "Problems", "Row", "Table", "TableError", "is_xlsx",
           "read_header", "read_sheets", "read_table"]

MAX_ROWS = 200_000
MAX_BYTES = 50 * 1024 * 1024
MAX_COLUMNS = 1_000
#: problems named one by one in ``str(TableError)``; beyond that a count
SHOWN_PROBLEMS = 50
#: characters of one problem's message in its text (the rest cut, "..." shown)
MESSAGE_CHARS = 300
#: problems kept by a :class:`Problems` collector (the count goes on)
KEPT_PROBLEMS = 500
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
    column (None when not tied to one), and what: the English ``message`` and, for the
    problems this module finds, its stable ``code`` and ``params`` (see
    :mod:`tabular.messages`) so a page can say it in its reader's language. Equality and
    hashing look at the first five fields only."""

    file: str
    sheet: str | None
    row: int | None
    column: str | None
    message: str
    code: str | None = field(default=None, compare=False)
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def coded(cls, file: str, sheet: str | None, row: int | None, column: str | None,
              code: str, /, **params: Any) -> Problem:
        """A problem of ``code`` (:data:`tabular.messages.TEMPLATES`), its English text
        built from the template and ``params``."""
        return cls(file, sheet, row, column, english(code, params), code, params)

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
        message = self.message
        if isinstance(message, str) and len(message) > MESSAGE_CHARS:
            message = message[:MESSAGE_CHARS] + "..."  # a cell quoted whole could be 32 KB
        return f"{where}: {message}" if where else message

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


class FileRefused(TableError):
    """The whole file is refused at once (a cap of :class:`Limits` or the time budget):
    no further row, cell or sheet is read."""

    @classmethod
    def at(cls, file: str, message: str, sheet: str | None = None, row: int | None = None,
           column: str | None = None) -> FileRefused:
        return cls([Problem(file, sheet, row, column, message)])

    @classmethod
    def coded(cls, file: str, code: str, sheet: str | None = None, row: int | None = None,
              column: str | None = None, /, **params: Any) -> FileRefused:
        """The file refused for one problem of ``code`` (see :meth:`Problem.coded`)."""
        return cls([Problem.coded(file, sheet, row, column, code, **params)])


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

    def add_coded(self, row: int | None, column: str | None, code: str, /,
                  **params: Any) -> None:
        """Note one problem of ``code`` (see :meth:`Problem.coded`)."""
        self.append(Problem.coded(self.file, self.sheet, row, column, code, **params))

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


# ------------------------------------------------------------------ limits


@dataclass(frozen=True)
class Limits:
    """What one file may cost besides its size and rows (``max_bytes``, ``max_rows``).

    The defaults fit the biggest real table an importer takes (a 200,000-row frame) and
    keep a hostile file under a few seconds and a few hundred MB; a caller may pass
    tighter ones (``dataclasses.replace(LIMITS, seconds=5)``). docs/uploads.md says why.
    """

    #: columns of a header (and cells of a row) read
    max_columns: int = MAX_COLUMNS
    #: characters of one cell (Excel's own limit)
    max_cell_chars: int = 32_767
    #: characters of one column name
    max_header_chars: int = 200
    #: seconds of parsing before a file is refused (checked inside the row loops)
    seconds: float = 20.0
    #: members of an XLSX archive (a real workbook has tens)
    max_members: int = 1_000
    #: the declared unpacked size of all members together
    max_unpacked: int = 512 * 1024 * 1024
    #: unpacked / packed size of any member over 1 MB unpacked
    max_ratio: int = 100
    #: unpacked size of one worksheet's XML
    max_sheet_xml: int = 256 * 1024 * 1024
    #: unpacked size of the shared-strings table, and how many strings it may hold
    max_shared_strings_xml: int = 64 * 1024 * 1024
    max_shared_strings: int = 1_000_000
    #: unpacked size of any other part read (workbook, relationships, styles)
    max_part_xml: int = 8 * 1024 * 1024


LIMITS = Limits()
#: for command-line tools reading a researcher's own files (responses, parameters, group
#: statistics): ten minutes of parsing, every other cap as :data:`LIMITS`
OFFLINE_LIMITS = Limits(seconds=600.0)
#: a member smaller than this unpacked is never refused for its ratio
RATIO_FLOOR = 1024 * 1024
# SHOWN_NAMES, SHOWN_CHARS: tabular.messages (names and characters a message quotes)


class _Clock:
    """The time budget of one file: :meth:`check` raises once it is spent."""

    def __init__(self, filename: str, seconds: float) -> None:
        self.filename = filename
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def check(self, sheet: str | None = None, row: int | None = None) -> None:
        if time.monotonic() > self.deadline:
            raise FileRefused.coded(self.filename, "time_budget", sheet, row,
                                    seconds=float(self.seconds))


_shown = shown_name
_names = names_text


# ------------------------------------------------------------------ reading


def read_table(data: bytes, filename: str, *, sheet: str | None = None,
               max_rows: int | None = MAX_ROWS, required: Sequence[str] = (),
               max_bytes: int = MAX_BYTES, encodings: Sequence[str] = ENCODINGS,
               unguard: bool = False, check_header: bool = True,
               strict_width: bool = False, limits: Limits = LIMITS) -> Table:
    """Read a CSV or XLSX file (told apart by its first bytes, then its name) as text.

    ``sheet``: the XLSX sheet to read (case and spaces ignored); the first one when None.
    ``max_rows``: more data rows than this are refused (None: no limit).
    ``required``: columns the header must have. ``encodings``: what a CSV may be in,
    among ``utf-8`` (a BOM is always allowed) and ``gbk`` (read as GB18030, its superset).
    ``unguard``: undo the formula guard of our CSV exports (``'=x`` -> ``=x``).
    ``check_header``: empty or repeated column names are problems. ``strict_width``: a
    CSV row with fewer cells than the header is a problem (otherwise padded); more
    non-empty cells than the header always are. ``limits``: columns, cell and name
    length, the time budget and the XLSX archive caps (:class:`Limits`).
    Raises :class:`TableError` naming file, sheet, row and column of every problem.
    """
    table, problems = _read(data, filename, sheet=sheet, max_rows=max_rows,
                            max_bytes=max_bytes, encodings=encodings, unguard=unguard,
                            strict_width=strict_width, limits=limits)
    _check_header(table, problems, required, check_header)
    return table


def read_header(data: bytes, filename: str, *, sheet: str | None = None,
                max_bytes: int = MAX_BYTES, encodings: Sequence[str] = ENCODINGS,
                limits: Limits = LIMITS) -> list[str]:
    """Only the header of a file, e.g. to offer its columns in a form (rows not checked)."""
    return _read(data, filename, sheet=sheet, max_rows=0, max_bytes=max_bytes,
                 encodings=encodings, unguard=False, strict_width=False,
                 header_only=True, limits=limits)[0].header


def read_sheets(data: bytes, filename: str, sheets: Sequence[str], *,
                max_rows: int | None = MAX_ROWS, max_bytes: int = MAX_BYTES,
                check_header: bool = True, limits: Limits = LIMITS) -> dict[str, Table]:
    """Several sheets of one XLSX workbook, opened once: ``{name: Table}`` for each of
    ``sheets`` the workbook has (matched ignoring case and spaces); absent ones are left
    out, so the caller decides which are required. An empty sheet is a table with no
    header and no rows. One time budget covers them all. Raises :class:`TableError`
    with the problems of every sheet."""
    _check_size(data, filename, max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    clock = _Clock(filename, limits.seconds)
    book = _Workbook(data, filename, limits, clock)
    out: dict[str, Table] = {}
    problems = Problems(filename)
    try:
        for name in sheets:
            found_sheet = book.find(name)
            if found_sheet is None:
                continue
            try:
                table, found = _sheet_table(book, found_sheet, max_rows, empty_ok=True)
                table.sha256 = digest
                _check_header(table, found, (), check_header)
            except FileRefused:
                raise
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
        raise TableError([Problem.coded(filename, None, None, None, "empty_file")])
    if len(data) > max_bytes:
        raise TableError([Problem.coded(filename, None, None, None, "too_large",
                                        limit_bytes=max_bytes)])


_megabytes = megabytes


def is_xlsx(data: bytes, filename: str) -> bool:
    """A workbook by its first bytes (a zip), or by its name."""
    return data[:4] == _ZIP_MAGIC or filename.lower().endswith(XLSX_SUFFIXES)


def _read(data: bytes, filename: str, *, sheet: str | None, max_rows: int | None,
          max_bytes: int, encodings: Sequence[str], unguard: bool, strict_width: bool,
          header_only: bool = False, limits: Limits = LIMITS) -> tuple[Table, Problems]:
    """The table and the problems of its rows (fatal ones are raised at once)."""
    _check_size(data, filename, max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    clock = _Clock(filename, limits.seconds)
    if data[:4] == _OLE_MAGIC or filename.lower().endswith(".xls"):
        raise TableError([Problem.coded(filename, None, None, None, "old_xls")])
    if is_xlsx(data, filename):
        book = _Workbook(data, filename, limits, clock)
        try:
            if sheet is None:
                if not book.sheets:
                    raise TableError([Problem.coded(filename, None, None, None,
                                                    "no_worksheet")])
                found = book.sheets[0]
            else:
                found = book.find(sheet)
                if found is None:
                    names = [repr(title) for title, _path in book.sheets]
                    raise TableError([Problem.coded(
                        filename, sheet, None, None, "no_sheet" if names else "no_sheet_none",
                        sheet=_shown(sheet), **({"sheets": names} if names else {}))])
            table, problems = _sheet_table(book, found, 0 if header_only else max_rows,
                                           header_only=header_only)
        finally:
            book.close()
        table.sha256 = digest
        return table, problems
    encoding = _decode(data, filename, encodings)[1]  # the text is not kept: the rows
    # are decoded again as they are read, so a 40 MB file never holds 160 MB of str
    table, problems = _csv_table(data, encoding, filename, max_rows, unguard,
                                 strict_width, header_only, limits, clock)
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
        return TableError([Problem.coded(filename, None, line, None, "not_text")])
    bad = data[exc.start:exc.start + 1].hex()
    return TableError([Problem.coded(filename, None, line, None, "not_utf8", byte=bad)])


def _delimiter(text: str) -> str:
    """The separator of the header line: the most frequent of comma, semicolon, tab."""
    first = next((line for line in text.split("\n", 20) if line.strip()), "")
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


#: the Python codec that reads each encoding :func:`_decode` names
_CODECS = {"utf-8-sig": "utf-8-sig", "utf-8": "utf-8", "gbk": "gb18030"}


def _csv_table(data: bytes, encoding: str, filename: str, max_rows: int | None,
               unguard: bool, strict_width: bool, header_only: bool,
               limits: Limits = LIMITS, clock: _Clock | None = None
               ) -> tuple[Table, Problems]:
    """The rows of a CSV already known to be text in ``encoding``, decoded as they are
    read (a NUL byte is a NUL character in both encodings)."""
    nul = data.find(b"\x00")
    if nul >= 0:  # no database text column can hold it, and no real table has it
        line = data[:nul].count(b"\n") + 1
        raise TableError([Problem.coded(filename, None, line, None, "nul")])
    clock = clock or _Clock(filename, limits.seconds)
    fix = unguard_cell if unguard else (lambda cell: cell)
    codec = _CODECS[encoding]
    end = -1
    for _ in range(21):  # the lines _delimiter looks at, at most 1 MB of them
        end = data.find(b"\n", end + 1, 1 << 20)
        if end < 0:
            break
    head = data[:end if end >= 0 else 1 << 20].decode(codec, errors="ignore")
    lines = io.TextIOWrapper(io.BytesIO(data), encoding=codec, newline="")
    reader = csv.reader(lines, delimiter=_delimiter(head))
    longest = limits.max_cell_chars
    problems = Problems(filename)
    header: list[str] = []
    header_row = 0
    rows: list[Row] = []
    number = 0  # the record's row number, as a spreadsheet shows the file
    try:
        for cells in reader:
            number += 1
            if not number % 1024:
                clock.check(None, number)
            if not header_row:
                if not any(c.strip() for c in cells):
                    continue  # blank lines before the header
                header_row = number
                header = [fix(c.strip()) for c in cells]
                while header and not header[-1]:
                    header.pop()
                _check_width(header, filename, None, header_row, limits)
                if header_only:
                    break
                continue
            if max(map(len, cells), default=0) > longest:
                j = next(j for j, c in enumerate(cells) if len(c) > longest)
                raise FileRefused.coded(filename, "cell_too_long", None, number,
                                        _column_name(header, j), limit=longest)
            width = len(header)
            # cells past the header are only looked at for a value (a row of a million
            # commas costs one join, not a million stripped strings)
            extra = len(cells) > width and bool("".join(cells[width:]).strip())
            values = [fix(c.strip()) for c in cells[:width]]
            if not extra and not any(values):
                continue
            if extra or (strict_width and len(cells) < width):
                problems.add_coded(number, None, "row_width", values=len(cells),
                                   columns=width)
            if max_rows is not None and len(rows) >= max_rows:
                problems.add_coded(None, None, "too_many_rows", limit=max_rows)
                break
            rows.append(Row(number, _fit(values, width)))
    except csv.Error as exc:  # e.g. a field over the csv module's limit (131,072)
        if "field larger than field limit" in str(exc):
            raise FileRefused.coded(filename, "cell_too_long", None, number + 1,
                                    limit=longest) from None
        problems.add_coded(number + 1, None, "bad_csv", detail=str(exc))
    if not header_row:
        problems.add_coded(1, None, "no_header")
        problems.raise_if_any()
    return Table(filename, None, header, rows, header_row=header_row), problems


def _column_name(header: Sequence[str], j: int) -> str:
    """A column for a problem: its header name (cut), else its position ``#7``."""
    return _shown(header[j]) if j < len(header) and header[j] else f"#{j + 1}"


def _check_width(header: list[str], filename: str, sheet: str | None, row: int,
                 limits: Limits) -> None:
    """Refuse a header wider than ``max_columns`` or with a name longer than
    ``max_header_chars`` (at once: nothing is built from such a header)."""
    if len(header) > limits.max_columns:
        raise FileRefused.coded(filename, "too_many_columns", sheet, row,
                                columns=len(header), limit=limits.max_columns)
    problems = Problems(filename, sheet, limit=SHOWN_PROBLEMS)
    for j, name in enumerate(header):
        if len(name) > limits.max_header_chars:
            problems.add_coded(row, f"#{j + 1}", "long_column_name",
                               limit=limits.max_header_chars, name=_shown(name))
    if problems:
        raise FileRefused(problems.kept, problems.total)


def _fit(values: list[str], width: int) -> tuple[str, ...]:
    if len(values) >= width:
        return tuple(values[:width])
    return tuple(values) + ("",) * (width - len(values))


# -- XLSX
#
# The workbook is read by this module, not by openpyxl's load_workbook: that parses the
# whole shared-strings table into a tree (a 3 MB file reached 1.8 GB), every part with
# no size check, and builds each row to its last cell (a row reaching column XFD is
# 16,384 cells) before a caller sees it. Here the archive's central directory is checked
# against the caps first (nothing is inflated), each part is inflated through a bounded
# stream (a member whose declared size lies stops at that size, and zipfile's CRC check
# refuses it), and expat streams each part in 64 KB chunks: a cell is kept only when it
# has a value within the first ``max_columns`` columns, its text is counted while it is
# read, and the time budget is checked after every chunk. openpyxl still gives the
# Excel rules: number formats that are dates, serial dates, ISO dates.

_SHEET = "/worksheet"
_STRINGS = "/sharedStrings"
_STYLES = "/styles"
_OFFICE = "/officeDocument"
_CHUNK = 64 * 1024
#: elements one cell may hold (its value, rich-text runs and their properties)
_CELL_ELEMENTS = 1_000
#: bytes of one unfinished XML tag (expat holds a tag whole until it ends; text is passed
#: on as it comes and counted against the cell cap)
_TOKEN = 1024 * 1024


def _refuse(filename: str, code: str, /, **params: Any) -> FileRefused:
    return FileRefused.coded(filename, code, **params)


def _unreadable(filename: str, detail: str, sheet: str | None = None, *,
                code: str = "unreadable_xlsx", **params: Any) -> TableError:
    """Not a readable workbook: ``detail`` (zipfile's or expat's own words), or a
    ``code`` of its own with ``params``."""
    if code == "unreadable_xlsx":
        params = {"detail": detail}
    return TableError([Problem.coded(filename, sheet, None, None, code, **params)])


def _end_record(data: bytes, filename: str) -> tuple[int, int]:
    """Members and central-directory size the archive declares at its end (zip64 too),
    read without parsing the directory itself."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if at < 0 or len(data) - at < 22:
        raise _unreadable(filename, "", code="not_zip")
    count, size = struct.unpack("<HI", data[at + 10:at + 16])
    if count == 0xFFFF or size == 0xFFFFFFFF:
        locator = at - 20
        if locator < 0 or data[locator:locator + 4] != b"PK\x06\x07":
            raise _unreadable(filename, "a damaged zip64 directory")
        (record,) = struct.unpack("<Q", data[locator + 8:locator + 16])
        if data[record:record + 4] != b"PK\x06\x06":
            raise _unreadable(filename, "a damaged zip64 directory")
        count, size = struct.unpack("<QQ", data[record + 32:record + 48])
    return count, size


def _check_archive(data: bytes, filename: str, limits: Limits) -> zipfile.ZipFile:
    """The archive, opened once its declared members, sizes and ratios are within the
    caps (a zip bomb is refused before anything is inflated)."""
    count, directory = _end_record(data, filename)
    # a directory entry is at least 46 bytes; a real one for a name of < 1 KB far less
    if count > limits.max_members or directory > limits.max_members * 1024:
        raise _refuse(filename, "zip_members", members=count, limit=limits.max_members)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise _unreadable(filename, str(exc),
                          code="not_zip" if str(exc) == "File is not a zip file"
                          else "unreadable_xlsx") from None
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise _refuse(filename, "zip_members", members=len(infos),
                      limit=limits.max_members)
    total = sum(info.file_size for info in infos)
    if total > limits.max_unpacked:
        raise _refuse(filename, "zip_unpacked", unpacked_bytes=total,
                      limit_bytes=limits.max_unpacked)
    for info in infos:
        if info.file_size > RATIO_FLOOR and \
                info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise _refuse(filename, "zip_ratio", part=_shown(info.filename),
                          ratio=info.file_size // max(info.compress_size, 1),
                          limit=limits.max_ratio)
    return archive


class _Workbook:
    """An XLSX archive, checked, with its worksheets' titles and parts; shared strings
    and date styles are read when the first sheet is."""

    def __init__(self, data: bytes, filename: str, limits: Limits, clock: _Clock) -> None:
        self.filename = filename
        self.limits = limits
        self.clock = clock
        # optional: only XLSX readers pay for openpyxl (~0.22 s to import, python -X
        # importtime); it gives Excel's date rules
        from openpyxl.utils import datetime as excel_dates

        self.dates_of = excel_dates
        self.archive = _check_archive(data, filename, limits)
        self.sheets: list[tuple[str, str]] = []
        self.strings_part: str | None = None
        self.styles_part: str | None = None
        self.epoch = excel_dates.WINDOWS_EPOCH
        self.shared: list[str] | None = None
        self.dates: set[int] = set()
        self.durations: set[int] = set()
        try:
            self._structure()
        except Exception:
            self.archive.close()
            raise

    def close(self) -> None:
        self.archive.close()

    def find(self, name: str) -> tuple[str, str] | None:
        """The sheet titled ``name``, case and surrounding spaces ignored."""
        wanted = name.strip().lower()
        return next((s for s in self.sheets if s[0].strip().lower() == wanted), None)

    # -- parts

    def _info(self, part: str, cap: int) -> zipfile.ZipInfo | None:
        try:
            info = self.archive.getinfo(part)
        except KeyError:
            return None
        if info.file_size > cap:
            raise _refuse(self.filename, "part_too_big", part=_shown(part),
                          size_bytes=info.file_size, limit_bytes=cap)
        return info

    def _chunks(self, info: zipfile.ZipInfo, cap: int) -> Iterator[bytes]:
        """The part inflated 64 KB at a time, never more than ``cap`` bytes whatever its
        header says (zipfile stops at the declared size and checks the CRC)."""
        read = 0
        try:
            with self.archive.open(info) as stream:
                while chunk := stream.read(_CHUNK):
                    read += len(chunk)
                    if read > cap:
                        raise _refuse(self.filename, "part_overflow",
                                      part=_shown(info.filename), limit_bytes=cap)
                    yield chunk
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
                RuntimeError) as exc:  # a bad CRC (a lying size), a bad stream, encryption
            raise _unreadable(self.filename, str(exc)) from None

    def _walk(self, part: str, start: Any, cap: int | None = None) -> bool:
        """Call ``start(local name, attributes, depth path)`` for each element of a small
        part; False when the part is absent."""
        cap = cap if cap is not None else self.limits.max_part_xml
        info = self._info(part, cap)
        if info is None:
            return False
        path: list[str] = []

        def opened(name: str, attrs: dict[str, str]) -> None:
            local = name.rpartition(" ")[2]
            start(local, attrs, path)
            path.append(local)

        parser = _parser(opened, lambda name: path.pop(), None)
        _feed(parser, self._chunks(info, cap), self.filename, part, self.clock)
        return True

    def _structure(self) -> None:
        root_rels: dict[str, tuple[str, str]] = {}
        self._walk("_rels/.rels", _relationships(root_rels, ""))
        book = next((target for kind, target in root_rels.values()
                     if kind.endswith(_OFFICE)), "xl/workbook.xml")
        folder = posixpath.dirname(book)
        rels: dict[str, tuple[str, str]] = {}
        self._walk(posixpath.join(folder, "_rels", posixpath.basename(book) + ".rels"),
                   _relationships(rels, folder))
        listed: list[tuple[str, str]] = []

        def workbook(local: str, attrs: dict[str, str], path: list[str]) -> None:
            if local == "workbookPr" and attrs.get("date1904", "").lower() in ("1", "true"):
                self.epoch = self.dates_of.CALENDAR_MAC_1904
            elif local == "sheet" and path[-1:] == ["sheets"]:
                rid = next((v for k, v in attrs.items() if k.endswith(" id")), "")
                listed.append((attrs.get("name", ""), rid))

        if not self._walk(book, workbook):
            raise _unreadable(self.filename, "", code="no_part", part="xl/workbook.xml")
        for title, rid in listed:
            kind, target = rels.get(rid, ("", ""))
            if kind.endswith(_SHEET):
                self.sheets.append((title, target))
        for kind, target in rels.values():
            if kind.endswith(_STRINGS):
                self.strings_part = target
            elif kind.endswith(_STYLES):
                self.styles_part = target
        if self.strings_part is None and "xl/sharedStrings.xml" in self.archive.NameToInfo:
            self.strings_part = "xl/sharedStrings.xml"

    def _styles(self) -> None:
        """Which cell styles show numbers as dates (and durations), as openpyxl says."""
        # optional: only XLSX readers pay for openpyxl
        from openpyxl.styles.numbers import (
            BUILTIN_FORMATS,
            is_date_format,
            is_timedelta_format,
        )

        custom: dict[int, str] = {}
        formats: list[int] = []

        def styles(local: str, attrs: dict[str, str], path: list[str]) -> None:
            if local == "numFmt" and path[-1:] == ["numFmts"]:
                custom[_int(attrs.get("numFmtId"))] = attrs.get("formatCode", "")
            elif local == "xf" and path[-1:] == ["cellXfs"]:
                formats.append(_int(attrs.get("numFmtId")))

        if self.styles_part:
            self._walk(self.styles_part, styles)
        for style, number in enumerate(formats):
            code = custom[number] if number in custom else BUILTIN_FORMATS.get(number)
            if is_date_format(code):
                self.dates.add(style)
            if is_timedelta_format(code):
                self.durations.add(style)

    def _strings(self) -> list[str]:
        """The shared-strings table, its size, count and each string's length capped."""
        limits, filename = self.limits, self.filename
        strings: list[str] = []
        if not self.strings_part:
            return strings
        info = self._info(self.strings_part, limits.max_shared_strings_xml)
        if info is None:
            return strings
        state = {"parts": None, "chars": 0, "collect": False, "phonetic": 0}
        longest = limits.max_cell_chars

        def start(name: str, attrs: dict[str, str]) -> None:
            local = name.rpartition(" ")[2]
            if local == "si":
                if len(strings) >= limits.max_shared_strings:
                    raise _refuse(filename, "shared_strings_count",
                                  limit=limits.max_shared_strings)
                state.update(parts=[], chars=0)
            elif local == "t" and state["parts"] is not None and not state["phonetic"]:
                state["collect"] = True
            elif local == "rPh":
                state["phonetic"] += 1

        def end(name: str) -> None:
            local = name.rpartition(" ")[2]
            if local == "si" and state["parts"] is not None:
                strings.append("".join(state["parts"]).replace("x005F_", ""))
                state["parts"] = None
            elif local == "t":
                state["collect"] = False
            elif local == "rPh":
                state["phonetic"] -= 1

        def text(data: str) -> None:
            if state["collect"]:
                state["chars"] += len(data)
                if state["chars"] > longest:
                    raise _refuse(filename, "shared_string_long", index=len(strings),
                                  limit=longest)
                state["parts"].append(data)

        parser = _parser(start, end, text)
        _feed(parser, self._chunks(info, limits.max_shared_strings_xml), filename,
              self.strings_part, self.clock)
        return strings

    def rows(self, sheet: tuple[str, str]) -> Iterator[tuple[int, dict[int, str]]]:
        """``(row number, {column: text})`` of each row element of a sheet, only cells
        with a value kept; a value past ``max_columns`` or a cell longer than
        ``max_cell_chars`` refuses the file."""
        if self.shared is None:
            self._styles()
            self.shared = self._strings()
        title, part = sheet
        info = self._info(part, self.limits.max_sheet_xml)
        if info is None:
            raise _unreadable(self.filename, "", title, code="no_part", part=part)
        reader = _SheetReader(self, title)
        parser = _parser(reader.start, reader.end, reader.text)
        for _chunk in _feed(parser, self._chunks(info, self.limits.max_sheet_xml),
                            self.filename, part, self.clock, title, reader, lazy=True):
            yield from reader.done
            reader.done.clear()
        yield from reader.done


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return -1


def _relationships(out: dict[str, tuple[str, str]], folder: str) -> Any:
    """A start handler filling ``{id: (type, part path)}`` from a relationships part."""
    def start(local: str, attrs: dict[str, str], path: list[str]) -> None:
        if local == "Relationship" and attrs.get("TargetMode") != "External":
            target = attrs.get("Target", "")
            target = target[1:] if target.startswith("/") else posixpath.join(folder, target)
            out[attrs.get("Id", "")] = (attrs.get("Type", ""), posixpath.normpath(target))
    return start


class _DTD(ValueError):
    """A part declares a document type (entities are never read)."""


def _no_dtd(*_args: Any) -> None:
    raise _DTD("a document type declaration (entities are not read)")


def _parser(start: Any, end: Any, text: Any) -> Any:
    """An expat parser with namespaces (``uri local`` names) that refuses any DTD, so
    no entity is ever expanded."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _no_dtd
    parser.EntityDeclHandler = _no_dtd
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    if text is not None:
        parser.CharacterDataHandler = text
    return parser


class _Done(Exception):
    """The sheet's data ended: nothing after ``sheetData`` is read."""


def _feed(parser: Any, chunks: Iterator[bytes], filename: str, part: str, clock: _Clock,
          sheet: str | None = None, reader: Any = None, lazy: bool = False) -> Any:
    """Feed a part to ``parser`` chunk by chunk, the time budget checked after each; with
    ``lazy`` a generator yielding after each chunk (a sheet's rows are taken then)."""
    def run() -> Iterator[None]:
        fed = 0
        try:
            for chunk in chunks:
                parser.Parse(chunk, False)
                fed += len(chunk)
                if fed - max(parser.CurrentByteIndex, 0) > _TOKEN:
                    raise FileRefused.coded(filename, "xml_tag", sheet, part=_shown(part),
                                            limit_bytes=_TOKEN)
                clock.check(sheet, reader.row if reader is not None else None)
                yield None
            parser.Parse(b"", True)
        except _Done:
            return
        except expat.ExpatError as exc:
            raise _unreadable(filename, "", sheet, code="xml_error", part=part,
                              error=expat.ErrorString(exc.code), line=exc.lineno) from None
        except _DTD:
            raise _unreadable(filename, "", sheet, code="xml_dtd", part=part) from None
        except ValueError as exc:  # a bad number: the handlers' refusals
            if isinstance(exc, TableError):
                raise
            raise _unreadable(filename, f"{part}: {exc}", sheet) from None
    if lazy:
        return run()
    for _ in run():
        pass
    return None


class _SheetReader:
    """expat handlers for one worksheet: finished rows collect in ``done``."""

    def __init__(self, book: _Workbook, title: str) -> None:
        self.book = book
        self.title = title
        self.filename = book.filename
        self.max_columns = book.limits.max_columns
        self.longest = book.limits.max_cell_chars
        self.done: list[tuple[int, dict[int, str]]] = []
        self.in_data = False
        self.row = 0
        self.column = 0
        self.cells: dict[int, str] | None = None
        self.cell: tuple[str, int, int] | None = None
        self.parts: list[str] = []
        self.chars = 0
        self.elements = 0
        self.collect = False
        self.inline = False
        self.phonetic = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = name.rpartition(" ")[2]
        if self.cell is not None:
            self.elements += 1
            if self.elements > _CELL_ELEMENTS:
                raise FileRefused.coded(self.filename, "cell_parts", self.title, self.row,
                                        _letter(self.cell[2]), limit=_CELL_ELEMENTS)
            if local == "v" or (local == "t" and self.inline and not self.phonetic):
                self.collect = True
            elif local == "is":
                self.inline = True
            elif local == "rPh":
                self.phonetic += 1
        elif local == "c" and self.cells is not None:
            ref = attrs.get("r")
            self.column = _column(ref, self) if ref else self.column + 1
            self.cell = (attrs.get("t", "n"), _int(attrs.get("s")), self.column)
            self.parts, self.chars, self.elements = [], 0, 0
            self.collect = self.inline = False
            self.phonetic = 0
        elif local == "row" and self.in_data:
            ref = attrs.get("r")
            if ref:
                try:
                    self.row = int(ref)
                except ValueError:
                    self.row = int(float(ref))
            else:
                self.row += 1
            self.column = 0
            self.cells = {}
        elif local == "sheetData":
            self.in_data = True

    def end(self, name: str) -> None:
        local = name.rpartition(" ")[2]
        if self.cell is not None:
            if local == "c":
                self._finish()
            elif local in ("v", "t"):
                self.collect = False
            elif local == "rPh":
                self.phonetic -= 1
        elif local == "row" and self.cells is not None:
            self.done.append((self.row, self.cells))
            self.cells = None
        elif local == "sheetData":
            raise _Done

    def text(self, data: str) -> None:
        if self.collect:
            self.chars += len(data)
            if self.chars > self.longest:
                assert self.cell is not None
                raise FileRefused.coded(self.filename, "cell_too_long", self.title,
                                        self.row, _letter(self.cell[2]), limit=self.longest)
            self.parts.append(data)

    def _finish(self) -> None:
        kind, style, column = self.cell  # type: ignore[misc]
        self.cell = None
        if not self.parts:
            return
        raw = "".join(self.parts)
        value: Any = raw
        try:
            if kind == "n":
                value = _number(raw)
                if style in self.book.dates:
                    try:
                        value = self.book.dates_of.from_excel(value, self.book.epoch,
                                           timedelta=style in self.book.durations)
                    except (OverflowError, ValueError):
                        value = "#VALUE!"
            elif kind == "s":
                value = self.book.shared[int(raw)]  # type: ignore[index]
            elif kind == "b":
                value = bool(int(raw))
            elif kind == "d":
                value = self.book.dates_of.from_ISO8601(raw)
        except (ValueError, IndexError, TypeError) as exc:
            raise TableError([Problem.coded(self.filename, self.title, self.row,
                                            _letter(column), "bad_cell_value",
                                            value=_shown(raw), detail=str(exc))]) from None
        cell = _cell(value)
        if not cell:
            return
        if column > self.max_columns:
            raise FileRefused.coded(self.filename, "column_past_cap", self.title, self.row,
                                    column=_letter(column), limit=self.max_columns)
        assert self.cells is not None
        self.cells[column] = cell


def _number(raw: str) -> int | float:
    """A cell's number as openpyxl reads it: int unless it has a point or exponent."""
    if "." in raw or "E" in raw or "e" in raw:
        return float(raw)
    return int(raw)


def _column(ref: str, reader: _SheetReader) -> int:
    """The column of a cell reference (``XFD12`` -> 16384)."""
    n = 0
    for i, ch in enumerate(ref):
        o = ord(ch)
        if 65 <= o <= 90:
            n = n * 26 + o - 64
        elif 97 <= o <= 122:
            n = n * 26 + o - 96
        else:
            if i == 0:
                break
            return n
        if i >= 3:
            break
    raise TableError([Problem.coded(reader.filename, reader.title, reader.row, None,
                                    "bad_cell_ref", ref=_shown(ref))])


def _letter(column: int) -> str:
    """The spreadsheet letters of a column (16384 -> ``XFD``)."""
    letters = ""
    while column > 0:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


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


def _sheet_table(book: _Workbook, sheet: tuple[str, str], max_rows: int | None,
                 header_only: bool = False, empty_ok: bool = False) -> tuple[Table, Problems]:
    """Read one sheet row by row as its cells come; the declared dimension is never read
    and rows are never padded beyond the header's width."""
    title = sheet[0]
    filename = book.filename
    problems = Problems(filename, title)
    header: list[str] = []
    header_row = 0
    width = 0
    last = 0
    rows: list[Row] = []
    for number, cells in book.rows(sheet):
        if not cells:
            continue
        if not header_row:
            if number > MAX_BLANK_RUN + 1:
                break  # only blank rows (and far ones) before it: not a table
            header_row = last = number
            width = max(cells)
            header = [cells.get(j, "") for j in range(1, width + 1)]
            _check_width(header, filename, title, header_row, book.limits)
            if header_only:
                break
            continue
        if number - last > MAX_BLANK_RUN + 1:
            break  # only blank rows follow in any real table
        last = number
        if all(j > width for j in cells):
            continue
        if max_rows is not None and len(rows) >= max_rows:
            problems.add_coded(None, None, "too_many_rows", limit=max_rows)
            break
        rows.append(Row(number, tuple(cells.get(j, "") for j in range(1, width + 1))))
    if not header_row and not empty_ok:
        problems.add_coded(1, None, "no_header")
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
                problems.add_coded(line, f"#{i}", "empty_column_name")
            elif name in seen:
                problems.add_coded(line, name, "duplicate_column")
            seen.add(name)
    for name in required:
        if name not in table.header:
            problems.add_coded(line, _shown(name), "column_not_found",
                               names=[h for h in table.header if h])
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
               check_header: bool = True, strict_width: bool = False,
               limits: Limits = LIMITS) -> Any:
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
                                   check_header=check_header, strict_width=strict_width,
                                   limits=limits)
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
            raise TableError([Problem.coded(name, None, None, None, "too_large",
                                            limit_bytes=max_bytes)])
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise TableError([Problem.coded(name, None, None, None, "file_not_found")]) from None
    except OSError as exc:
        raise TableError([Problem.coded(name, None, None, None, "cannot_read",
                                        detail=str(exc.strerror or exc))]) from None


def _fast_frame(data: bytes, name: str, *, max_rows: int | None, required: Sequence[str],
                max_bytes: int, encodings: Sequence[str], unguard: bool,
                check_header: bool, strict_width: bool, limits: Limits = LIMITS) -> Any:
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
        _check_width(header, name, None, header_row, limits)
        _check_header(Table(name, None, header, [], header_row=header_row), Problems(name),
                      required, check_header)
    except TableError:
        return None
    if max_rows is not None and body.count(b"\n", start) > max_rows:
        return None  # read_table stops at the first row too many (no copy made here)
    region = body[start:]
    if region.startswith(b"\xef\xbb\xbf"):
        return None  # pandas would drop a byte-order mark there
    lines = region.count(b"\n") + (not region.endswith(b"\n"))
    if len(region) > limits.max_cell_chars:
        ends = np.flatnonzero(np.frombuffer(region, dtype=np.uint8) == 10)
        bounds = np.concatenate(([-1], ends, [len(region)]))
        if int(np.diff(bounds).max()) - 1 > limits.max_cell_chars:
            return None  # a line (so maybe a cell) longer than the cap: read_table names it
        del ends, bounds
    clock = _Clock(name, limits.seconds)
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
    clock.check()
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
