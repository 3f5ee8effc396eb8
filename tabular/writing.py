"""One export-writer registry: a pandas DataFrame as CSV, XLSX or SPSS ``.sav`` bytes.

:data:`WRITERS` maps a format name to its :class:`Writer` (the function, the file
extension and the media type for a download); :func:`write_table` is the one call::

    data = write_table("sav", frame, variable_labels={"age": "年龄"},
                       value_labels={"sex": {1: "男", 2: "女"}})

The rules every export follows:

* CSV: UTF-8 with a byte-order mark (so Excel reads Chinese), ``\\r\\n`` line ends; text
  cells go through the formula guard (:func:`tabular.guard.guard_cell`); numbers are
  written as numbers (whole floats without ``.0``, others with every decimal), dates as
  ISO text, missing values (None, NaN, NaT) as empty cells.
* XLSX: text cells are typed as strings (:func:`tabular.guard.mark_text_cells`), so a
  cell is never a formula and the text stays exact; characters XML cannot hold are
  dropped; dates get a date format; bold header, frozen below the header.
* SAV: numbers as SPSS numerics whose print format keeps their decimals (``F8.0`` for
  whole numbers, ``F10.4`` for four decimals...), text as strings, dates as dates;
  variable labels (255 bytes at most, cut between characters), value labels (120 bytes),
  measurement levels (``scale`` for numbers, ``nominal`` for text and labelled codes)
  unless given; ``missing_values`` declares user-missing codes and ``string_widths``
  the storage width of text columns (so every wave of a file has the same widths).

Labels: ``variable_labels`` maps a column to its label (CSV and XLSX write them as a
second header row with ``label_row=True``; SAV stores them); ``value_labels`` maps a
column to ``{code: label}`` (SAV only; CSV and XLSX hold the codes).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .guard import guard_cell, mark_text_cells

__all__ = ["FORMATS", "WRITERS", "ExportOptions", "Sheet", "Writer", "csv_cell", "extension",
           "media_type", "spss_names", "write_csv", "write_sav", "write_table",
           "write_workbook", "write_xlsx"]

SPSS_RESERVED = {"ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO",
                 "WITH"}
SPSS_NAME_BYTES = 64
SPSS_LABEL_BYTES = 255
SPSS_VALUE_LABEL_BYTES = 120
SPSS_FILE_LABEL_BYTES = 64
#: SPSS F format: at most 40 characters wide, 16 decimals
SPSS_MAX_WIDTH = 40
SPSS_MAX_DECIMALS = 16
#: SPSS string variables hold at most 32767 bytes
SPSS_MAX_STRING = 32767
_SPSS_NAME = re.compile(r"[A-Za-z@][A-Za-z0-9_.$#@]*")
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
XLSX_MAX_SHEET_NAME = 31


@dataclass(frozen=True)
class ExportOptions:
    """What a writer may use besides the frame (each format takes what it can hold)."""

    variable_labels: Mapping[str, str] | None = None
    value_labels: Mapping[str, Mapping[Any, str]] | None = None
    sheet_name: str = "data"
    label_row: bool = False
    file_label: str = ""
    measures: Mapping[str, str] | None = None
    formats: Mapping[str, str] | None = None
    column_widths: Mapping[str, float] | None = None
    freeze_panes: str | None = None
    #: SAV: user-missing values per column (at most three discrete values, as SPSS
    #: allows; strings of at most 8 bytes)
    missing_values: Mapping[str, Sequence[Any]] | None = None
    #: SAV: storage width in bytes of text columns (a value longer than this widens the
    #: column rather than being cut)
    string_widths: Mapping[str, int] | None = None


@dataclass(frozen=True)
class Writer:
    """One export format: how to write it and how a download names it."""

    name: str
    extension: str
    media_type: str
    write: Callable[[pd.DataFrame, ExportOptions], bytes]


@dataclass(frozen=True)
class Sheet:
    """One sheet of a workbook made by :func:`write_workbook`."""

    name: str
    frame: pd.DataFrame
    variable_labels: Mapping[str, str] | None = None
    label_row: bool = False
    column_widths: Mapping[str, float] | None = None
    freeze_panes: str | None = None
    #: text cells wrap and sit at the top (long labels stay readable)
    wrap_text: bool = False


# ------------------------------------------------------------------ cells


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    if isinstance(value, np.datetime64):
        return bool(np.isnat(value))
    return False


def _plain(value: Any) -> Any:
    """A numpy or pandas scalar as the Python value it stands for (None when missing)."""
    if _missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


def csv_cell(value: Any) -> str:
    """One value as CSV text: numbers as numbers, text guarded, missing as empty."""
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return guard_cell(str(value))


def _labels(frame: pd.DataFrame, options: ExportOptions) -> list[str]:
    given = options.variable_labels or {}
    return [str(given.get(c, c)) for c in frame.columns]


# ------------------------------------------------------------------ CSV


def write_csv(frame: pd.DataFrame, options: ExportOptions = ExportOptions()) -> bytes:
    """The frame as CSV, UTF-8 with BOM, formula-guarded (see the module docstring)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([csv_cell(str(c)) for c in frame.columns])
    if options.label_row:
        writer.writerow([csv_cell(label) for label in _labels(frame, options)])
    for row in frame.itertuples(index=False, name=None):
        writer.writerow([csv_cell(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


# ------------------------------------------------------------------ XLSX


def _xlsx_value(value: Any) -> Any:
    value = _plain(value)
    if isinstance(value, str):
        return _ILLEGAL_XML.sub("", value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)  # Excel has no time zones: the wall time
    if isinstance(value, dt.time) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    return value


def _sheet_title(name: str) -> str:
    title = re.sub(r"[\[\]:*?/\\]", "_", name).strip("'")[:XLSX_MAX_SHEET_NAME]
    return title or "data"


def _fill(book: Any, sheet: Sheet) -> None:
    # start-up: openpyxl costs about 0.22 s to import and only XLSX exports need it
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    ws = book.create_sheet(_sheet_title(sheet.name))
    frame = sheet.frame
    columns = [str(c) for c in frame.columns]
    widths = sheet.column_widths or {}
    for j, name in enumerate(columns, start=1):
        if name in widths:
            ws.column_dimensions[get_column_letter(j)].width = widths[name]
    heads = [columns]
    if sheet.label_row:
        given = sheet.variable_labels or {}
        heads.append([str(given.get(c, c)) for c in frame.columns])
    header_rows = len(heads)
    ws.freeze_panes = sheet.freeze_panes or f"A{header_rows + 1}"
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top") if sheet.wrap_text else None
    for k, values in enumerate(heads):
        cells = [WriteOnlyCell(ws, _xlsx_value(v)) for v in values]
        if k == 0:
            for cell in cells:
                cell.font = bold
        mark_text_cells([cells])
        ws.append(cells)
    for row in frame.itertuples(index=False, name=None):
        cells = []
        for value in row:
            cell = WriteOnlyCell(ws, _xlsx_value(value))
            if isinstance(cell.value, dt.datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
            elif isinstance(cell.value, dt.date):
                cell.number_format = "yyyy-mm-dd"
            elif wrap is not None and isinstance(cell.value, str):
                cell.alignment = wrap
            cells.append(cell)
        mark_text_cells([cells])
        ws.append(cells)


def write_workbook(sheets: Sequence[Sheet]) -> bytes:
    """Several frames as the sheets of one XLSX workbook (text never a formula)."""
    from openpyxl import Workbook  # ~0.22 s to import (python -X importtime); CSV-only
    # callers skip it

    if not sheets:
        raise ValueError("a workbook needs at least one sheet")
    book = Workbook(write_only=True)
    for sheet in sheets:
        _fill(book, sheet)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def write_xlsx(frame: pd.DataFrame, options: ExportOptions = ExportOptions()) -> bytes:
    """The frame as a one-sheet XLSX workbook."""
    return write_workbook([Sheet(options.sheet_name, frame, options.variable_labels,
                                 options.label_row, options.column_widths,
                                 options.freeze_panes)])


# ------------------------------------------------------------------ SAV


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, cut between characters (SPSS label limits)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def spss_names(keys: Iterable[str]) -> list[str]:
    """Legal, unique SPSS variable names for ``keys`` (same order): letters, digits and
    ``_``, a letter first, at most 64 bytes, no reserved word, unique ignoring case."""
    out: list[str] = []
    taken: set[str] = set()
    for key in keys:
        base = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", str(key))).strip("_")
        if not base or not base[0].isalpha():
            base = "v_" + base if base else "v"
        base = base[:SPSS_NAME_BYTES].rstrip("_")
        if base.upper() in SPSS_RESERVED:
            base += "_x"
        name, n = base, 1
        while name.lower() in taken:
            n += 1
            suffix = f"_{n}"
            name = base[:SPSS_NAME_BYTES - len(suffix)] + suffix
        taken.add(name.lower())
        out.append(name)
    return out


def _check_names(columns: Sequence[Any]) -> None:
    seen: set[str] = set()
    for name in columns:
        text = str(name)
        if (not _SPSS_NAME.fullmatch(text) or len(text.encode("utf-8")) > SPSS_NAME_BYTES
                or text.upper() in SPSS_RESERVED):
            raise ValueError(f"column {text!r} is not a legal SPSS variable name "
                             "(see tabular.writing.spss_names)")
        if text.lower() in seen:
            raise ValueError(f"column {text!r} appears twice (SPSS ignores case)")
        seen.add(text.lower())


def _decimals(value: float) -> int:
    """Decimals needed to show a float exactly as Python prints it."""
    text = repr(value)
    if "e" in text or "E" in text:
        mantissa, _, exponent = text.lower().partition("e")
        digits = len(mantissa.partition(".")[2].rstrip("0"))
        return max(0, digits - int(exponent))
    return len(text.partition(".")[2].rstrip("0"))


def _number_format(values: np.ndarray) -> str:
    """``F{width}.{decimals}`` wide enough for the column's values and decimals."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "F8.0"
    decimals = min(SPSS_MAX_DECIMALS, max(_decimals(float(v)) for v in np.unique(finite)))
    biggest = float(np.max(np.abs(finite)))
    int_digits = len(str(int(biggest))) if biggest >= 1 else 1
    sign = 1 if float(np.min(finite)) < 0 else 0
    width = int_digits + sign + (decimals + 1 if decimals else 0)
    if width > SPSS_MAX_WIDTH:
        decimals = max(0, decimals - (width - SPSS_MAX_WIDTH))
        width = min(SPSS_MAX_WIDTH, int_digits + sign + (decimals + 1 if decimals else 0))
    return f"F{max(width, 8)}.{decimals}"


def _kind(series: pd.Series) -> str:
    """How a column is stored in SPSS: ``number``, ``date``, ``datetime`` or ``text``."""
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(
            series.dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    present = [v for v in (_plain(v) for v in series) if v is not None]
    if not present:
        return "text"
    if all(isinstance(v, int | float) for v in present):
        return "number"
    if all(isinstance(v, dt.datetime) for v in present):
        return "datetime"
    if all(isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in present):
        return "date"
    return "text"


def _padded(texts: list[str], width: int) -> list[str]:
    """Texts whose longest UTF-8 form is at least ``width`` bytes: the first value gets
    trailing spaces. SPSS pads every string with spaces to its width and readers strip
    them, so the values read back unchanged; the column is stored as ``A{width}``."""
    width = min(SPSS_MAX_STRING, int(width))
    longest = max((len(t.encode("utf-8")) for t in texts), default=0)
    if not texts or longest >= width:
        return texts
    first = texts[0]
    return [first + " " * (width - len(first.encode("utf-8"))), *texts[1:]]


def write_sav(frame: pd.DataFrame, options: ExportOptions = ExportOptions()) -> bytes:
    """The frame as an SPSS ``.sav`` file with labels, formats and measurement levels.

    Column names must be legal SPSS names (:func:`spss_names` makes them); ValueError
    otherwise."""
    import pyreadstat  # ~0.19 s to import (python -X importtime); only .sav exports pay

    _check_names(list(frame.columns))
    value_labels = {str(k): v for k, v in (options.value_labels or {}).items()}
    given_formats = dict(options.formats or {})
    given_measures = dict(options.measures or {})
    string_widths = {str(k): v for k, v in (options.string_widths or {}).items()}
    data: dict[str, Any] = {}
    formats: dict[str, str] = {}
    measures: dict[str, str] = {}
    widths: dict[str, int] = {}
    for column in frame.columns:
        name = str(column)
        series = frame[column]
        kind = _kind(series)
        if kind == "number":
            values = np.array([np.nan if v is None else float(v)
                               for v in (_plain(v) for v in series)], dtype="float64")
            data[name] = values
            formats[name] = _number_format(values)
            measures[name] = "nominal" if name in value_labels else "scale"
            widths[name] = min(SPSS_MAX_WIDTH, max(8, len(name)))
        elif kind == "date":
            data[name] = pd.Series([_plain(v) for v in series], dtype="object")
            measures[name] = "scale"
            widths[name] = max(10, len(name))
        elif kind == "datetime":
            stamps = pd.to_datetime(pd.Series([_plain(v) for v in series], dtype="object"))
            if getattr(stamps.dt, "tz", None) is not None:
                stamps = stamps.dt.tz_localize(None)
            data[name] = stamps
            measures[name] = "scale"
            widths[name] = max(20, len(name))
        else:
            texts = ["" if v is None else str(v) for v in (_plain(v) for v in series)]
            longest = max((len(t) for t in texts), default=0)
            if name in string_widths:
                texts = _padded(texts, string_widths[name])
            data[name] = pd.Series(texts, dtype="object")
            measures[name] = "nominal"
            widths[name] = min(SPSS_MAX_WIDTH, max(8, len(name), longest))
    formats.update(given_formats)
    measures.update(given_measures)
    out = pd.DataFrame(data, columns=[str(c) for c in frame.columns])
    labels = options.variable_labels or {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.sav"
        pyreadstat.write_sav(
            out, str(path), file_label=_cut(options.file_label, SPSS_FILE_LABEL_BYTES),
            column_labels={str(c): _cut(str(labels[c]), SPSS_LABEL_BYTES)
                           for c in frame.columns if labels.get(c)},
            variable_value_labels={c: {code: _cut(str(text), SPSS_VALUE_LABEL_BYTES)
                                       for code, text in mapping.items()}
                                   for c, mapping in value_labels.items() if c in data},
            missing_ranges={str(c): list(v) for c, v in (options.missing_values or {}).items()
                            if str(c) in data and v} or None,
            variable_measure=measures, variable_format=formats,
            variable_display_width=widths, row_compress=True)
        return path.read_bytes()


# ------------------------------------------------------------------ registry


WRITERS: dict[str, Writer] = {
    "csv": Writer("csv", ".csv", "text/csv; charset=utf-8", write_csv),
    "xlsx": Writer("xlsx", ".xlsx",
                   "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                   write_xlsx),
    "sav": Writer("sav", ".sav", "application/x-spss-sav", write_sav),
}
FORMATS = tuple(WRITERS)


def _writer(fmt: str) -> Writer:
    try:
        return WRITERS[fmt]
    except KeyError:
        raise ValueError(f"format {fmt!r}: use one of {', '.join(FORMATS)}") from None


def media_type(fmt: str) -> str:
    """The media type of a download in ``fmt`` (``text/csv; charset=utf-8``...)."""
    return _writer(fmt).media_type


def extension(fmt: str) -> str:
    """The file extension of ``fmt``, with its dot (``.csv``...)."""
    return _writer(fmt).extension


def write_table(fmt: str, frame: pd.DataFrame, *,
                variable_labels: Mapping[str, str] | None = None,
                value_labels: Mapping[str, Mapping[Any, str]] | None = None,
                sheet_name: str = "data", label_row: bool = False, file_label: str = "",
                measures: Mapping[str, str] | None = None,
                formats: Mapping[str, str] | None = None,
                column_widths: Mapping[str, float] | None = None,
                freeze_panes: str | None = None,
                missing_values: Mapping[str, Sequence[Any]] | None = None,
                string_widths: Mapping[str, int] | None = None) -> bytes:
    """The frame as ``fmt`` (``csv``, ``xlsx`` or ``sav``) bytes; see the module docstring.

    ``measures`` and ``formats`` (SAV) override the measurement level and print format
    of columns, ``missing_values`` (SAV) declares user-missing codes and
    ``string_widths`` (SAV) the storage width of text columns in bytes;
    ``column_widths`` and ``freeze_panes`` (XLSX) the sheet's looks.
    """
    writer = _writer(fmt)
    return writer.write(frame, ExportOptions(
        variable_labels=variable_labels, value_labels=value_labels, sheet_name=sheet_name,
        label_row=label_row, file_label=file_label, measures=measures, formats=formats,
        column_widths=column_widths, freeze_panes=freeze_panes,
        missing_values=missing_values, string_widths=string_widths))
