"""Survey definitions read from XLSForm workbooks as field teams write them (ODK, Kobo, Ona).

The reader takes what ``pyxform`` takes: the sheets ``survey``, ``choices`` and ``settings``
(``.xlsx``, or ``.xls`` through ``xlrd``), the column aliases (``list name``, ``bind::*``,
``label:English``, ``label::中文 (zh)``, a bare ``label`` in the form's default language),
the type aliases (``select one from``, ``begin group``, ``imei``...), questions outside
groups, nested groups and repeats.  The layout and what becomes of each XLSForm feature
are documented in ``surveys/README.md`` ("The XLSForm workbook").

Why our own reader and not ``pyxform.xls2json``: pyxform stops at the first error, and a
field team needs every problem at once with its sheet, row, column and question; it also
drops the row numbers we need for that, and it is a test dependency only.  The aliases
below follow ``pyxform.aliases`` and its question-type dictionary (a test checks that
every pyxform type is either read or listed in :data:`OUT_OF_SCOPE`).

What the pages cannot deliver (:data:`OUT_OF_SCOPE`: geopoints, media capture, external
choice files...) is refused with one problem naming sheet, row, column and the feature,
or, when the question can be skipped safely (not required and referred to by no
expression), left out with a warning naming its row.  Nothing is dropped silently:
ignored columns, appearances and sheets are warnings.
"""
from __future__ import annotations

import datetime as dt
import html
import io
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import xlrd

from tabular.reading import Problem as TableProblem
from tabular.reading import TableError, read_sheets

from .definition import (
    NAME_RE,
    OTHER,
    OTHER_SUFFIX,
    BankItem,
    Choice,
    Page,
    Problem,
    Question,
    RatingItem,
    Repeat,
    Survey,
    SurveyReport,
    Text,
    apply_bank,
    check,
)

__all__ = ["OUT_OF_SCOPE", "SURVEY_COLUMNS", "FeatureProblem", "read_xlsform"]

# the columns of the project's own older layout, which xlsform_export still writes
SURVEY_COLUMNS = ("type", "name", "label::zh", "label::en", "hint::zh", "hint::en",
                  "required", "relevant", "constraint", "constraint_message::zh",
                  "constraint_message::en", "parameters", "item_code", "reverse")
CHOICES_COLUMNS = ("list_name", "name", "label::zh", "label::en")
SETTINGS_COLUMNS = ("form_id", "version", "title::zh", "title::en")
#: data rows read per sheet (a real questionnaire has a few hundred; docs/uploads.md)
MAX_FORM_ROWS = 5_000

#: XLSForm features the pages cannot deliver: feature -> why (the corpus test uses it)
OUT_OF_SCOPE: dict[str, str] = {
    "geopoint": "a location needs the phone's GPS, which a plain web page cannot read",
    "geotrace": "a traced line needs GPS",
    "geoshape": "a traced area needs GPS",
    "media capture": "photos, audio, video, files and signatures are not collected",
    "barcode": "a barcode needs the camera",
    "media column": "pictures, audio and video beside labels are not shown",
    "select from file": "choices from an external file are not available",
    "rank": "ranking widgets are not offered",
    "trigger": "trigger (acknowledge-only) buttons are not offered",
    "external data": "xml-external/csv-external instances are not available",
    "osm": "OpenStreetMap questions need ODK Collect",
    "hidden": "hidden is an old pyxform type with no value; use calculate",
    "meta": "this device property (username, phone number, audit...) is not recorded",
    "nested repeat": "a repeat inside a repeat is not delivered",
    "loop": "'begin loop over' is an old pyxform block; use a repeat",
    "entities": "ODK entities (datasets shared between forms) are not kept",
    "duplicate name": "XLSForm allows one name in different groups, but here every "
                      "question, group and repeat name is used once (answers are keyed by it)",
    "function": "this function has no equivalent on the pages",
}
#: expression functions that stay out of scope (reported as feature "function")
OUT_OF_SCOPE_FUNCTIONS = ("pulldata", "instance", "indexed-repeat", "position", "once",
                          "random", "randomize", "uuid", "area", "distance", "digest",
                          "jr:itext", "geofence", "base64-decode", "extract-signed")

TRUE = {"yes", "true", "1", "y", "是", "true()"}
FALSE = {"no", "false", "0", "n", "否", "", "false()"}

# type aliases (after pyxform's question-type dictionary)
_TYPES = {
    **dict.fromkeys(("text", "string", "add text prompt", "q string", "phone number"), "text"),
    **dict.fromkeys(("integer", "int", "q int", "add integer prompt", "percentage",
                     "number of days in last month", "number of days in last six months",
                     "number of days in last year"), "integer"),
    **dict.fromkeys(("decimal", "q decimal", "add decimal prompt"), "decimal"),
    **dict.fromkeys(("date", "q date", "add date prompt"), "date"),
    "time": "time",
    **dict.fromkeys(("datetime", "date time", "q date time", "add date time prompt",
                     "add datetime prompt", "q datetime"), "datetime"),
    **dict.fromkeys(("note", "q note", "add note prompt"), "note"),
    **dict.fromkeys(("calculate", "q calculate", "add calculate prompt"), "calculate"),
    "range": "range",
    **dict.fromkeys(("acknowledge", "q acknowledge", "add acknowledge prompt"),
                    "acknowledge"),
    **dict.fromkeys(("start", "start time", "get start time"), "start"),
    **dict.fromkeys(("end", "end time", "get end time"), "end"),
    **dict.fromkeys(("today", "get today"), "today"),
    **dict.fromkeys(("deviceid", "device id", "get device id", "imei", "uri:deviceid"),
                    "deviceid"),
    "month": "month",  # the project's older layout (warned)
}
_FEATURE_TYPES = {
    **dict.fromkeys(("geopoint", "gps", "location", "q geopoint", "q location",
                     "add location prompt", "start-geopoint", "background-geopoint"),
                    "geopoint"),
    **dict.fromkeys(("geotrace", "q geotrace"), "geotrace"),
    **dict.fromkeys(("geoshape", "q geoshape"), "geoshape"),
    **dict.fromkeys(("photo", "image", "q picture", "q image", "add image prompt",
                     "add photo prompt", "audio", "q audio", "add audio prompt", "video",
                     "q video", "add video prompt", "file", "add file prompt",
                     "background-audio", "signature"), "media capture"),
    **dict.fromkeys(("barcode", "q barcode", "add barcode prompt"), "barcode"),
    "trigger": "trigger",
    **dict.fromkeys(("xml-external", "csv-external"), "external data"),
    "osm": "osm",
    "hidden": "hidden",
    **dict.fromkeys(("username", "uri:username", "phonenumber", "uri:phonenumber",
                     "get phone number", "email", "uri:email", "simserial",
                     "uri:simserial", "sim id", "get sim id", "subscriberid",
                     "uri:subscriberid", "subscriber id", "get subscriber id", "audit"),
                    "meta"),
}
_SELECT_RE = re.compile(
    r"(?P<cmd>select_one_from_file|select_multiple_from_file|select one from file|"
    r"select multiple from file|select_one_external|select one external|"
    r"add select one prompt using|add select multiple prompt using|"
    r"select all that apply from|select multiple from|select one from|select one using|"
    r"select multiple using|select_one|select_multiple|select one|select all that apply|"
    r"select multiple|select1|q select1|q select|rank)\s+(?P<list>\S+)"
    r"(?:\s+(?P<other>or_other|or specify other|or other))?", re.IGNORECASE)
_BLOCK_RE = re.compile(r"(?P<edge>begin|end)[ _](?P<kind>group|repeat|loop|lgroup|"
                       r"looped group|rating)(?:\s+(?:over\s+)?(?P<arg>\S+))?",
                       re.IGNORECASE)

# column aliases (after pyxform.aliases.survey_header / list_header)
_ALIASES = {"relevance": "relevant", "caption": "label", "constraining_message":
            "constraint_message", "jr:constraintmsg": "constraint_message",
            "requiredmsg": "required_message",
            "jr:requiredmsg": "required_message", "calculate": "calculation",
            "readonly": "read_only", "count": "repeat_count", "jr:count": "repeat_count",
            "command": "type", "tag": "name", "value": "name", "list name": "list_name",
            "list-name": "list_name", "set_form_title": "form_title", "title": "form_title",
            "set_form_id": "form_id", "id_string": "form_id"}
_TRANSLATED = {"label", "hint", "guidance_hint", "constraint_message", "required_message",
               "image", "big-image", "audio", "video"}
_MEDIA = {"image", "big-image", "audio", "video"}
_SURVEY_KEYS = {"type", "name", "label", "hint", "guidance_hint", "required",
                "required_message", "relevant", "constraint", "constraint_message",
                "calculation", "default", "read_only", "appearance", "choice_filter",
                "parameters", "repeat_count", "repeat_max", "rating_scale", "item_code",
                "reverse", *_MEDIA}
_SETTINGS_READ = {"form_title", "form_id", "version", "default_language"}
_LANGUAGE_NAMES = {
    "english": "en", "chinese": "zh", "中文": "zh", "汉语": "zh", "简体中文": "zh",
    "french": "fr", "français": "fr", "francais": "fr", "spanish": "es", "español": "es",
    "swahili": "sw", "kiswahili": "sw", "arabic": "ar", "portuguese": "pt",
    "português": "pt", "russian": "ru", "german": "de", "hindi": "hi", "nepali": "ne",
    "bengali": "bn", "bangla": "bn", "amharic": "am", "hausa": "ha", "indonesian": "id",
    "vietnamese": "vi", "thai": "th", "japanese": "ja", "korean": "ko", "burmese": "my",
    "somali": "so", "urdu": "ur", "turkish": "tr", "italian": "it", "dutch": "nl",
    "tigrinya": "ti", "pashto": "ps", "dari": "prs", "luganda": "lg", "kinyarwanda": "rw",
}
_KEPT_APPEARANCES = {"likert", "minimal", "multiline", "month-year", "year", "compact",
                     "quick"}
_DROPPED_APPEARANCES = {"label", "list-nolabel"}
_CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_REF_RE = re.compile(r"\$\{\s*([^}\s]+)\s*\}")
_CALL_RE = re.compile(r"(?<![\w$.\-:])([A-Za-z_][\w.\-]*(?::[\w.\-]+)?)\s*\(")
_STRING_RE = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUM = r"-?[0-9]+(?:\.[0-9]+)?"
_BOUNDS = (re.compile(rf"\. >= (?P<min>{_NUM}) and \. <= (?P<max>{_NUM})"
                      r"(?: and \((?P<rest>.+)\))?"),
           re.compile(rf"\. >= (?P<min>{_NUM})(?: and \((?P<rest>.+)\))?"),
           re.compile(rf"\. <= (?P<max>{_NUM})(?: and \((?P<rest>.+)\))?"))
_EXPRESSION_COLUMNS = ("relevant", "constraint", "calculation", "choice_filter",
                       "repeat_count", "required", "default")
_ACKNOWLEDGE_LIST = "_acknowledge"
_XLS_MAGIC = b"\xd0\xcf\x11\xe0"


@dataclass(frozen=True)
class FeatureProblem(Problem):
    """A problem or warning about an XLSForm feature of :data:`OUT_OF_SCOPE`."""

    feature: str = field(default="", compare=False)


@dataclass(frozen=True)
class FileProblem(Problem):
    """A problem of reading the workbook itself (tabular's), placed as the survey report
    places its own, with tabular's problem kept in ``table`` so a page can say it in the
    reader's language (``learningcity.filemessages.file_problem_text``)."""

    table: TableProblem | None = field(default=None, compare=False)


# ------------------------------------------------------------------ sheets


@dataclass
class _Sheet:
    """One sheet as text: its header cells and its non-blank rows (sheet row numbers)."""

    name: str
    header: list[str]
    rows: list[tuple[int, list[str]]]


@dataclass
class _Row:
    """One data row by canonical column: plain values and texts by language code."""

    number: int
    values: dict[str, str] = field(default_factory=dict)
    texts: dict[str, dict[str, str]] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)  # choices: the filter columns

    def get(self, key: str) -> str:
        return self.values.get(key, "")


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _xls_sheets(data: bytes, filename: str) -> tuple[dict[str, _Sheet], list[str]]:
    """The sheets of an old binary ``.xls`` workbook (``xlrd``)."""
    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
    except Exception as exc:  # xlrd raises many kinds (XLRDError, struct.error...) on junk
        raise TableError([TableProblem(filename, None, None, None,
                                       f"not a readable .xls workbook ({exc})")]) from None
    out: dict[str, _Sheet] = {}
    names = list(book.sheet_names())
    try:
        for name in names:
            key = name.strip().lower()
            if key not in ("survey", "choices", "settings") or key in out:
                continue
            sheet = book.sheet_by_name(name)
            if sheet.nrows > MAX_FORM_ROWS + 1:
                raise TableError([TableProblem(filename, key, None, None,
                                               f"more than {MAX_FORM_ROWS} rows")])
            rows = []
            for r in range(sheet.nrows):
                cells = [_xls_cell(c, book.datemode, xlrd) for c in sheet.row(r)]
                if any(c.strip() for c in cells):
                    rows.append((r + 1, cells))
            header = rows.pop(0)[1] if rows and rows[0][0] == 1 else []
            out[key] = _Sheet(key, header, rows)
    except TableError:
        raise
    except Exception as exc:  # a corrupt sheet record
        raise TableError([TableProblem(filename, None, None, None,
                                       f"not a readable .xls workbook ({exc})")]) from None
    finally:
        book.release_resources()
    return out, names


def _xls_cell(cell: Any, datemode: int, xlrd: Any) -> str:
    if cell.ctype == xlrd.XL_CELL_TEXT:
        return str(cell.value)
    if cell.ctype == xlrd.XL_CELL_NUMBER:
        return _number_text(float(cell.value))
    if cell.ctype == xlrd.XL_CELL_DATE:
        when = xlrd.xldate_as_datetime(cell.value, datemode)
        if cell.value < 1:
            return when.strftime("%H:%M:%S")
        return when.date().isoformat() if when.time() == dt.time() else when.isoformat()
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return "TRUE" if cell.value else "FALSE"
    return ""


def _xlsx_sheet_names(data: bytes) -> list[str]:
    """The sheet names of an xlsx (for the warning about sheets that are not read)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            info = book.getinfo("xl/workbook.xml")
            if info.file_size > 2_000_000:
                return []
            text = book.read(info).decode("utf-8", "replace")
    except (zipfile.BadZipFile, KeyError, OSError):
        return []
    return [html.unescape(n) for n in re.findall(r"<(?:\w+:)?sheet\b[^>]*?\bname=\"([^\"]*)\"",
                                                text)]


def _read_workbook(data: bytes, filename: str) -> tuple[dict[str, _Sheet], list[str]]:
    """The survey, choices and settings sheets (those present) and every sheet's name."""
    if data[:4] == _XLS_MAGIC or filename.lower().endswith(".xls"):
        return _xls_sheets(data, filename)
    tables = read_sheets(data, filename, ("survey", "choices", "settings"),
                         check_header=False, max_rows=MAX_FORM_ROWS)
    sheets = {name: _Sheet(name, list(t.header), [(r.number, list(r.values)) for r in t.rows])
              for name, t in tables.items()}
    return sheets, _xlsx_sheet_names(data)


# ------------------------------------------------------------------ columns


def language_code(text: str) -> str | None:
    """The code of a language as XLSForm columns name it: ``English (en)`` -> en,
    ``中文 (zh)`` -> zh, ``Chinese (zh-TW)`` -> zh-TW, ``english``/``EN`` -> en; None when
    unknown."""
    text = " ".join(text.split())
    m = re.fullmatch(r"(?:.*?)\s*\(\s*([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*)\s*\)", text)
    if m:
        parts = m.group(1).split("-")
        tags = [parts[0].lower()] + [p.upper() if len(p) == 2 else p.title() if len(p) == 4
                                     else p for p in parts[1:]]
        return "-".join(tags)
    low = text.lower()
    if low in _LANGUAGE_NAMES:
        return _LANGUAGE_NAMES[low]
    if re.fullmatch(r"[a-z]{2,3}", low):
        return low
    return None


def _split_header(header: str) -> tuple[str, str | None]:
    """``(column, language as written or None)`` of a header, aliases resolved."""
    text = " ".join(header.split())
    if "::" in text:
        base, _, lang = text.partition("::")
    elif ":" in text and text.split(":", 1)[0].strip().lower() in (*_TRANSLATED, "bind",
                                                                   "media", "control",
                                                                   "body", "instance"):
        base, _, lang = text.partition(":")
    else:
        base, lang = text, ""
    base = base.strip().lower()
    if base in ("bind", "control", "body"):
        attr, _, lang = lang.partition("::")
        base = attr.strip().lower()
    elif base == "media":
        kind, _, lang = lang.partition("::")
        base = kind.strip().lower()
    base = _ALIASES.get(base, base)
    return base, lang.strip() or None


@dataclass
class _Columns:
    """A sheet's header read: canonical column per position, and where each came from."""

    keys: list[tuple[str, str | None] | None]  # (column, language code or "" = default)
    headers: dict[tuple[str, str | None], str]  # (column, code) -> header as written


# ------------------------------------------------------------------ the builder


@dataclass
class _Node:
    """A survey row (a question) or a block (group, repeat, rating) with its rows."""

    kind: str  # "question", "group", "repeat", "rating" (older begin_rating), "loop"
    row: _Row
    words: str = ""  # the type cell
    children: list[_Node] = field(default_factory=list)
    end_row: int | None = None


@dataclass
class _Built:
    """A question made from a row, with what the locator and field names need."""

    question: Question
    row: int
    bounds_column: str | None = None
    item_rows: tuple[int, ...] = ()


@dataclass
class _PagePart:
    """A page being assembled: its questions, and the row it was opened on."""

    name: str
    title: Text
    relevant: str | None
    row: int
    questions: list[_Built] = field(default_factory=list)
    repeat: Repeat | None = None


def _and(*parts: str | None) -> str | None:
    kept = [p for p in parts if p]
    if len(kept) <= 1:
        return kept[0] if kept else None
    return " and ".join(f"({p})" for p in kept)


def _cjk(text: str) -> bool:
    return bool(_CJK_RE.search(text))


class _Reader:
    """Turns the sheets into a Survey, collecting every problem and warning with its place."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.default_language: str | None = None
        self.rows: dict[tuple, str] = {}  # location key -> "survey row 5"
        self.fields: dict[tuple, dict[str, str]] = {}  # location key -> field -> header
        self.headers: dict[str, dict[tuple[str, str | None], str]] = {}
        self.names_used: set[str] = set()
        self.referenced: set[str] = set()
        self.dropped: list[Problem] = []  # the warnings of questions left out
        self.renamed_rows: set[str] = set()  # rows refused for a name used twice
        self.form_title = Text("", "")

    # -- reporting
    def add(self, where: str, subject: str, column: str, message: str,
            feature: str | None = None) -> None:
        cls = FeatureProblem if feature else Problem
        args = (where, subject, column, message) + ((feature,) if feature else ())
        self.problems.append(cls(*args))

    def warn(self, where: str, subject: str, column: str, message: str,
             feature: str | None = None) -> None:
        args = (where, subject, column, message) + ((feature,) if feature else ())
        self.warnings.append((FeatureProblem if feature else Problem)(*args))

    def header(self, sheet: str, column: str, lang: str | None = None) -> str:
        """The column as the workbook writes it (for messages), else its canonical name."""
        heads = self.headers.get(sheet, {})
        if lang is not None:
            return heads.get((column, lang)) or heads.get((column, "")) or f"{column}::{lang}"
        return heads.get((column, None)) or column

    # -- columns and rows
    def columns(self, sheet: _Sheet, known: set[str] | None) -> _Columns:
        """Canonical columns of a sheet; ``known`` None = any column is kept (choices)."""
        keys: list[tuple[str, str | None] | None] = []
        heads: dict[tuple[str, str | None], str] = {}
        where = f"{sheet.name} row 1"
        for raw in sheet.header:
            if not raw.strip():
                keys.append(None)
                continue
            base, lang_text = _split_header(raw)
            shown = " ".join(raw.split())
            lang: str | None = None
            if base in _TRANSLATED and sheet.name != "settings":
                if lang_text is None:
                    lang = ""
                else:
                    lang = language_code(lang_text)
                    if lang is None:
                        self.warn(where, "", shown, f"unknown language {lang_text!r}: write "
                                  f"it with its code, e.g. '{base}::{lang_text} (xx)'; the "
                                  "column is not read")
                        keys.append(None)
                        continue
            elif lang_text is not None and base not in ("form_title",):
                self.warn(where, "", shown, "this column has no languages; it is not read")
                keys.append(None)
                continue
            if base == "form_title" and lang_text is not None:  # title::zh (older layout)
                code = language_code(lang_text)
                base, lang = f"form_title_{code or lang_text}", None
                self.warn(where, "", shown, "older layout: write the title in form_title "
                          "and other languages in form_title_en (pyxform refuses "
                          "title::...)")
            key = (base, lang)
            if key in heads:
                self.add(where, "", shown, f"the column appears twice (also "
                         f"{heads[key]!r})")
                keys.append(None)
                continue
            if known is not None and base not in known and not (
                    sheet.name == "settings" and base.startswith("form_title_")):
                self.warn(where, "", shown, "not a column this reader uses; it is ignored")
                keys.append(None)
                continue
            if base in _MEDIA or base == "guidance_hint":
                what = "media column" if base in _MEDIA else None
                j = len(keys)
                kept = [n for n, cells in sheet.rows if j < len(cells) and cells[j].strip()]
                if kept:
                    rows = ", ".join(map(str, kept[:5])) + (" ..." if len(kept) > 5 else "")
                    message = ("pictures, audio and video are not shown; the column is "
                               "ignored" if what else "guidance hints are not shown; the "
                               "column is ignored")
                    self.warn(where, "", shown, f"{message} (rows {rows})", what)
                keys.append(("_media", None) if what else None)
                continue
            heads[key] = shown
            keys.append(key)
        self.headers[sheet.name] = heads
        return _Columns(keys, heads)

    def read_rows(self, sheet: _Sheet, cols: _Columns, extra_ok: bool = False) -> list[_Row]:
        out = []
        for number, cells in sheet.rows:
            row = _Row(number)
            for j, key in enumerate(cols.keys):
                if key is None or j >= len(cells):
                    continue
                value = cells[j].strip()
                if not value:
                    continue
                base, lang = key
                if lang is None:
                    if extra_ok and base not in ("list_name", "name", "_media"):
                        row.extra[base] = value
                    else:
                        row.values[base] = value
                else:
                    code = lang or self.default_language or ("zh" if _cjk(value) else "en")
                    texts = row.texts.setdefault(base, {})
                    if lang or code not in texts:  # a language column wins over bare
                        texts[code] = value
            out.append(row)
        return out

    def text(self, row: _Row, base: str) -> Text | None:
        texts = row.texts.get(base)
        if not texts:
            return None
        more = [(c, t) for c, t in texts.items() if c not in ("zh", "en")]
        more.sort(key=lambda ct: ct[0] != self.default_language)
        return Text(texts.get("zh", ""), texts.get("en", ""), tuple(more))

    def flag(self, row: _Row, column: str, where: str, subject: str) -> bool:
        value = row.get(column)
        if value.lower() in TRUE:
            return True
        if value.lower() not in FALSE:
            self.add(where, subject, self.header("survey", column),
                     f"{value!r} is not yes/no")
        return False

    # -- settings
    def settings(self, sheet: _Sheet | None, stem: str) -> tuple[str, int, str | None, Text]:
        row = _Row(0)
        if sheet is not None:
            cols = self.columns(sheet, None)
            rows = self.read_rows(sheet, cols)
            if rows:
                row = rows[0]
                for extra in rows[1:]:
                    self.warn(f"settings row {extra.number}", "", "", "only the first "
                              "settings row is read; this row is ignored")
            ignored = [self.header("settings", k) for k in row.values
                       if k not in _SETTINGS_READ and not k.startswith("form_title_")]
            if ignored:
                self.warn(f"settings row {row.number}", "", ", ".join(ignored),
                          "settings this reader does not use are ignored")
        where = f"settings row {row.number}" if row.number else "settings"
        self.rows[("survey",)] = where
        language = row.get("default_language")
        if language:
            self.default_language = language_code(language)
            if self.default_language is None:
                self.warn(where, "", "default_language", f"unknown language {language!r}; "
                          "texts without a language are read as zh when they hold Chinese "
                          "characters, else as en")
        form_id = row.get("form_id")
        if not form_id:
            form_id = _as_name(stem)
            self.warn(where, "", "form_id", f"no form_id: the survey id is {form_id!r} "
                      "(from the file name)")
        elif not NAME_RE.fullmatch(form_id):
            fixed = _as_name(form_id)
            self.warn(where, "", "form_id", f"{form_id!r} is not a name (letters, digits, "
                      f"_ - .); the survey id is {fixed!r}")
            form_id = fixed
        version_text = row.get("version")
        version, form_version = 1, None
        if version_text:
            if re.fullmatch(r"[0-9]+", version_text) and 1 <= int(version_text) < 2 ** 31:
                version = int(version_text)
            else:
                form_version = version_text
        texts: dict[str, str] = {}
        main = row.get("form_title")
        if main:
            texts[self.default_language or ("zh" if _cjk(main) else "en")] = main
        for key, value in row.values.items():
            if key.startswith("form_title_") and value:
                code = language_code(key[len("form_title_"):])
                if code is None:
                    self.warn(where, "", key, "unknown language code; ignored")
                else:
                    texts.setdefault(code, value)
        if not texts:
            texts["en"] = form_id
            self.warn(where, "", "form_title", f"no form_title: the title is {form_id!r}")
        title = Text(texts.get("zh", ""), texts.get("en", ""),
                     tuple((c, t) for c, t in texts.items() if c not in ("zh", "en")))
        self.form_title = title
        self.fields[("survey",)] = {"id": "form_id", "title::zh": "form_title",
                                    "title::en": "form_title_en", "title": "form_title"}
        return form_id, version, form_version, title

    # -- choices
    def choices(self, sheet: _Sheet | None) -> dict[str, list[tuple[Choice, int]]]:
        lists: dict[str, list[tuple[Choice, int]]] = {}
        if sheet is None:
            return lists
        cols = self.columns(sheet, None)
        for row in self.read_rows(sheet, cols, extra_ok=True):
            where = f"choices row {row.number}"
            name = row.get("list_name")
            if not name:
                self.add(where, "", self.header("choices", "list_name"), "missing")
                continue
            label = self.text(row, "label")
            if label is None and row.get("name"):
                self.warn(where, f"list {name!r}", self.header("choices", "label", ""),
                          f"no label: the choice is shown as its name {row.get('name')!r}")
                label = Text("", row.get("name"))
            lists.setdefault(name, []).append((Choice(row.get("name"), label or Text("", ""),
                                                      tuple(row.extra.items())), row.number))
        return lists

    # -- survey rows into blocks
    def blocks(self, sheet: _Sheet) -> list[_Node]:
        cols = self.columns(sheet, _SURVEY_KEYS)
        if ("type", None) not in cols.headers:
            self.add("survey row 1", "", "type", "missing: the survey sheet needs a type "
                     "column")
            return []
        top: list[_Node] = []
        stack: list[_Node] = []
        for row in self.read_rows(sheet, cols):
            where = f"survey row {row.number}"
            words = " ".join(row.get("type").split())
            if not words:
                if row.get("name") or row.texts.get("label"):
                    self.add(where, "", "type", "missing")
                else:
                    self.warn(where, "", "", "a row without type is ignored")
                continue
            siblings = stack[-1].children if stack else top
            block = _BLOCK_RE.fullmatch(words)
            if block is not None:
                kind = {"lgroup": "repeat", "looped group": "repeat"}.get(
                    block["kind"].lower(), block["kind"].lower())
                if block["edge"].lower() == "begin":
                    node = _Node(kind, row, words)
                    siblings.append(node)
                    stack.append(node)
                    continue
                if not any(n.kind == kind for n in stack):
                    self.add(where, "", "type", f"{words!r} without begin {kind}")
                    continue
                while stack[-1].kind != kind:  # close what was left open inside it
                    opened = stack.pop()
                    self.add(where, "", "type", f"{words!r} closes {opened.kind} "
                             f"{opened.row.get('name')!r} (survey row {opened.row.number}), "
                             f"which has no end {opened.kind}")
                stack.pop().end_row = row.number
                continue
            siblings.append(_Node("question", row, words))
        for node in stack:
            self.add(f"survey row {node.row.number}", f"{_role(node)} "
                     f"{node.row.get('name')!r}", "type", f"the {node.kind} is not closed "
                     f"with end {node.kind}")
        return top

    # -- out-of-scope features and what refers to what
    def scan_references(self, nodes: Iterable[_Node]) -> None:
        for node in nodes:
            for column in _EXPRESSION_COLUMNS:
                self.referenced.update(_REF_RE.findall(node.row.get(column)))
            self.scan_references(node.children)

    def feature(self, node: _Node, column: str, feature: str, what: str) -> bool:
        """Report an out-of-scope feature of a row: a warning when the question can be
        left out, else a problem.  Returns True when the row is left out."""
        row, name = node.row, node.row.get("name")
        where, subject = f"survey row {row.number}", f"question {name!r}" if name else ""
        required = row.get("required").lower() not in FALSE
        if name and name in self.referenced:
            self.add(where, subject, column, f"{what} ({OUT_OF_SCOPE[feature]}); it cannot "
                     f"be left out because an expression refers to ${{{name}}}", feature)
            return False
        if required and node.kind == "question":
            self.add(where, subject, column, f"{what} ({OUT_OF_SCOPE[feature]}); it cannot "
                     "be left out because it is required", feature)
            return False
        self.warn(where, subject, column, f"{what} ({OUT_OF_SCOPE[feature]}); the question "
                  "is left out", feature)
        self.dropped.append(self.warnings[-1])
        return True

    def function_feature(self, node: _Node) -> tuple[str, str] | None:
        for column in _EXPRESSION_COLUMNS:
            text = _STRING_RE.sub("''", node.row.get(column))
            for name in _CALL_RE.findall(text):
                if name.lower() in OUT_OF_SCOPE_FUNCTIONS:
                    return column, f"{name}()"
        return None

    # -- blocks into pages
    def pages(self, nodes: list[_Node], lists: dict[str, list[tuple[Choice, int]]]
              ) -> list[_PagePart]:
        self.lists = lists
        first: dict[str, int] = {}
        for node in _walk(nodes):
            name = node.row.get("name")
            if not name or node.kind == "loop":
                continue
            self.names_used.add(name)
            if name in first:
                where = f"survey row {node.row.number}"
                self.renamed_rows.add(where)
                self.add(where, f"{_role(node)} {name!r}", "name", f"{name!r} is also the "
                         f"name of survey row {first[name]} ({OUT_OF_SCOPE['duplicate name']})"
                         "; rename one of them", "duplicate name")
            first.setdefault(name, node.row.number)
        pages: list[_PagePart] = []
        for node in nodes:
            if node.kind == "question":  # a page of its own, titled by its label
                for b in self.flatten([node], None, in_repeat=False):
                    if isinstance(b, _Built):
                        pages.append(_PagePart(self.page_name(b.question.name),
                                               b.question.label, None, b.row, [b]))
                continue
            before = len(self.dropped)
            for part in self.outer_block(node):
                if not part.questions and len(self.dropped) > before:
                    self.warn(f"survey row {part.row}", f"page {part.name!r}", "type",
                              "every question of this group is left out, so the page is "
                              "too")
                    continue
                pages.append(part)
        return pages

    def page_name(self, name: str) -> str:
        for candidate in (f"p_{name}", f"{name}_page", *(f"p_{name}_{i}" for i in range(2, 99))):
            if candidate not in self.names_used:
                self.names_used.add(candidate)
                return candidate
        return f"p_{name}"

    def title(self, node: _Node) -> Text:
        label = self.text(node.row, "label")
        if label is not None:
            return label
        name = node.row.get("name")
        self.warn(f"survey row {node.row.number}", f"{_role(node)} {name!r}",
                  self.header("survey", "label", ""), f"no label: the page title is its "
                  f"name {name!r}")
        return Text("", name)

    def outer_block(self, node: _Node) -> list[_PagePart]:
        """The pages of a top-level group or repeat (a group is split around repeats)."""
        row = node.row
        name = row.get("name")
        where = f"survey row {row.number}"
        if node.kind == "loop":
            self.add(where, f"group {name!r}", "type", f"{node.words!r}: "
                     f"{OUT_OF_SCOPE['loop']}", "loop")
            return []
        if node.kind == "rating" or (node.kind == "group" and row.get("rating_scale")):
            built = self.flatten([node], None, in_repeat=False)
            return [_PagePart(self.page_name(name), b.question.label, None, b.row, [b])
                    for b in built if isinstance(b, _Built)]
        if node.kind == "repeat":
            return [p for p in self.flatten([node], None, in_repeat=False)
                    if isinstance(p, _PagePart)]
        self.group_appearance(node)
        title = self.title(node)
        parts: list[_PagePart] = []
        current = _PagePart(name, title, row.get("relevant") or None, row.number)
        for item in self.flatten(node.children, None, in_repeat=False):
            if isinstance(item, _PagePart):
                item.relevant = _and(row.get("relevant"), item.relevant)
                if current.questions:
                    parts.append(current)
                    self.warn(where, f"group {name!r}", "type", f"the group is split "
                              f"around repeat {item.name!r}: the questions after it are "
                              "on a page of their own")
                    current = _PagePart(self.page_name(name), title,
                                        row.get("relevant") or None, item.row)
                parts.append(item)
            else:
                current.questions.append(item)
        if current.questions or not parts:
            parts.append(current)
        return parts

    def group_appearance(self, node: _Node) -> None:
        """Warn about what a group or repeat row carries that a page does not use."""
        used = {"type", "name", "relevant", "appearance", "rating_scale", "required",
                "repeat_count", "repeat_max"}
        if not node.row.get("rating_scale"):
            used -= {"required"}
        if node.kind != "repeat":
            used -= {"repeat_count", "repeat_max"}
        for column in node.row.values:
            if column not in used and not column.startswith("_"):
                self.warn(f"survey row {node.row.number}", f"{node.kind} "
                          f"{node.row.get('name')!r}", self.header("survey", column),
                          f"not used on a {node.kind} row; ignored")
        words = node.row.get("appearance").split()
        other = [w for w in words if w != "field-list"]
        if other:
            self.warn(f"survey row {node.row.number}", f"group {node.row.get('name')!r}",
                      "appearance", f"appearance {' '.join(other)!r} is ignored: the "
                      "group's questions are shown on one page")

    def flatten(self, nodes: list[_Node], relevant: str | None, in_repeat: bool
                ) -> list[_Built | _PagePart]:
        """Questions of a block in order; inner groups become a note and their
        questions (relevance AND-ed), a repeat becomes a page part of its own."""
        out: list[_Built | _PagePart] = []
        i = 0
        while i < len(nodes):
            node = nodes[i]
            row, name = node.row, node.row.get("name")
            where = f"survey row {row.number}"
            if node.kind == "loop":
                self.add(where, f"group {name!r}", "type", f"{node.words!r}: "
                         f"{OUT_OF_SCOPE['loop']}", "loop")
            elif node.kind == "repeat":
                if in_repeat:
                    self.add(where, f"repeat {name!r}", "type", "a repeat inside a repeat "
                             f"({OUT_OF_SCOPE['nested repeat']})", "nested repeat")
                    # its questions stay (the form is refused) so the rest is still checked
                    out.extend(b for b in self.flatten(node.children, relevant, True)
                               if isinstance(b, _Built))
                else:
                    out.append(self.repeat(node, relevant))
            elif node.kind == "rating":
                self.warn(where, f"question {name!r}", "type", "older layout: write a "
                          "rating grid as begin_group with appearance field-list and "
                          "rating_scale = LIST, its items as select_one LIST rows with "
                          "appearance likert (pyxform refuses begin_rating)")
                grid = self.rating_old(node, relevant)
                if grid is not None:
                    out.append(grid)
            elif node.kind == "group" and row.get("rating_scale"):
                grid = self.rating(node, relevant)
                if grid is not None:
                    out.append(grid)
            elif node.kind == "group":
                self.group_appearance(node)
                inner = _and(relevant, row.get("relevant"))
                label = self.text(row, "label")
                if label is not None and name:
                    out.append(_Built(Question(name, "note", label,
                                               hint=self.text(row, "hint"), relevant=inner),
                                      row.number))
                out.extend(self.flatten(node.children, inner, in_repeat))
            else:
                built = self.question(node, relevant)
                if built is not None:
                    nxt = nodes[i + 1] if i + 1 < len(nodes) else None
                    if nxt is not None and self.is_other_text(built.question, nxt):
                        built = replace(built, question=replace(built.question, other=True))
                        i += 1
                    out.append(built)
            i += 1
        return out

    def is_other_text(self, q: Question, node: _Node) -> bool:
        """``Q`` + a text row ``Q_other`` relevant on ``selected(${Q}, 'other')``."""
        if q.type not in ("single_choice", "multiple_choice") or node.kind != "question":
            return False
        row = node.row
        if row.get("name") != q.name + OTHER_SUFFIX or row.get("type").lower() not in (
                "text", "string"):
            return False
        pattern = rf"selected\(\s*\$\{{{re.escape(q.name)}\}}\s*,\s*'{OTHER}'\s*\)"
        if not re.fullmatch(pattern, row.get("relevant")):
            return False
        return OTHER in [c.name for c, _ in self.lists.get(q.choices or "", [])]

    def repeat(self, node: _Node, relevant: str | None) -> _PagePart:
        row, name = node.row, node.row.get("name")
        where = f"survey row {row.number}"
        maximum = Repeat.maximum
        if row.get("repeat_max"):
            try:
                maximum = int(row.get("repeat_max"))
            except ValueError:
                self.add(where, f"repeat {name!r}", "repeat_max",
                         f"{row.get('repeat_max')!r} is not a whole number")
        count = row.get("repeat_count") or None
        if count is not None and re.fullmatch(r"[0-9]+\.0+", count):
            count = count.split(".")[0]
        self.group_appearance(node)
        part = _PagePart(name, self.title(node), _and(relevant, row.get("relevant")),
                         row.number, repeat=Repeat(count, maximum))
        for item in self.flatten(node.children, None, in_repeat=True):
            if isinstance(item, _Built):
                part.questions.append(item)
        return part

    def rating(self, node: _Node, relevant: str | None) -> _Built | None:
        """A field-list group with ``rating_scale``: a rating grid of its likert rows."""
        row, name = node.row, node.row.get("name")
        where, subject = f"survey row {row.number}", f"question {name!r}"
        scale = row.get("rating_scale")
        items, rows, required = [], [], []
        for child in node.children:
            crow = child.row
            cwhere = f"survey row {crow.number}"
            m = _SELECT_RE.fullmatch(child.words) if child.kind == "question" else None
            if m is None or m["cmd"].lower() not in ("select_one", "select one") \
                    or m["list"] != scale:
                self.add(cwhere, f"item {crow.get('name')!r}", "type", f"the rows of "
                         f"rating grid {name!r} must be 'select_one {scale}'")
                continue
            for column in ("relevant", "constraint", "calculation", "choice_filter",
                           "default"):
                if crow.get(column):
                    self.add(cwhere, f"item {crow.get('name')!r}", column, "a rating "
                             "item cannot have its own " + column)
            required.append(self.flag(crow, "required", cwhere, f"item {crow.get('name')!r}"))
            items.append(RatingItem(crow.get("name"), self.text(crow, "label") or Text("", ""),
                                    crow.get("item_code") or None,
                                    self.flag(crow, "reverse", cwhere,
                                              f"item {crow.get('name')!r}")))
            rows.append(crow.number)
        if required and any(required) and not all(required):
            self.warn(where, subject, "required", "only some items are required: the grid "
                      "is required only when every item is")
        if self.flag(row, "required", where, subject):
            required = [True]  # a grid row saying required (hand-written) covers its items
        self.group_appearance(node)
        q = Question(name, "rating_grid", self.text(row, "label") or Text("", ""),
                     hint=self.text(row, "hint"), required=bool(required) and all(required),
                     relevant=_and(relevant, row.get("relevant")), choices=scale,
                     items=tuple(items))
        return _Built(q, row.number, item_rows=tuple(rows))

    def rating_old(self, node: _Node, relevant: str | None) -> _Built | None:
        row, name = node.row, node.row.get("name")
        where, subject = f"survey row {row.number}", f"question {name!r}"
        m = _BLOCK_RE.fullmatch(node.words)
        scale = m["arg"] if m else None
        if not scale:
            self.add(where, subject, "type", "write begin_rating LIST_NAME")
        items, rows = [], []
        for child in node.children:
            crow = child.row
            if child.words.lower() != "rating":
                self.add(f"survey row {crow.number}", f"question {crow.get('name')!r}",
                         "type", f"only rating rows can be inside rating grid {name!r}")
                continue
            items.append(RatingItem(crow.get("name"), self.text(crow, "label") or Text("", ""),
                                    crow.get("item_code") or None,
                                    self.flag(crow, "reverse", f"survey row {crow.number}",
                                              f"item {crow.get('name')!r}")))
            rows.append(crow.number)
        q = Question(name, "rating_grid", self.text(row, "label") or Text("", ""),
                     hint=self.text(row, "hint"),
                     required=self.flag(row, "required", where, subject),
                     relevant=_and(relevant, row.get("relevant")), choices=scale,
                     items=tuple(items))
        return _Built(q, row.number, item_rows=tuple(rows))

    def question(self, node: _Node, relevant: str | None) -> _Built | None:
        row, words = node.row, node.words
        name = row.get("name")
        where, subject = f"survey row {row.number}", f"question {name!r}" if name else ""
        low = words.lower()
        if low == "rating":
            self.add(where, subject, "type", "a rating row must be inside begin_rating ... "
                     "end_rating")
            return None
        choices, other, qtype = None, False, None
        m = _SELECT_RE.fullmatch(words)
        if m is not None:
            cmd = m["cmd"].lower()
            stand_in = None
            if "file" in cmd or "external" in cmd:
                stand_in = "select from file"
            elif cmd == "rank":
                stand_in = "rank"
            if stand_in is not None:
                if self.feature(node, "type", stand_in, f"{words!r}"):
                    return None
                return self.stand_in(node)
            multiple = "multiple" in cmd or "all that apply" in cmd or cmd == "q select"
            qtype = "multiple_choice" if multiple else "single_choice"
            choices = m["list"]
            other = m["other"] is not None
            if other:
                self.or_other(choices, where, subject)
        elif low in _FEATURE_TYPES or low.startswith("osm "):
            feature = _FEATURE_TYPES.get(low, "osm")
            if self.feature(node, "type", feature, f"type {words!r}"):
                return None
            return self.stand_in(node)
        elif low in _TYPES:
            qtype = _TYPES[low]
        elif re.fullmatch(r"select[ _](one|multiple)", low):
            self.add(where, subject, "type", f"write {words} LIST_NAME (the choice list)")
            return None
        else:
            self.add(where, subject, "type", f"unknown type {words!r}")
            return None
        fn = self.function_feature(node)
        if fn is not None:
            column, what = fn
            if self.feature(node, self.header("survey", column), "function", f"{what} in "
                            f"{column}"):
                return None
            row = replace(row, values={**row.values, column: "''" if column == "calculation"
                                       else ""})
        if qtype == "acknowledge":
            qtype, choices = "single_choice", _ACKNOWLEDGE_LIST
            self.lists.setdefault(_ACKNOWLEDGE_LIST, [(Choice("OK", Text("确认", "OK")),
                                                       row.number)])
            self.warn(where, subject, "type", "acknowledge is read as a single choice with "
                      "the one choice 'OK' (确认), which is what ODK stores")
        if qtype == "month":
            self.warn(where, subject, "type", "older layout: write a month as type date "
                      "with appearance month-year")
        appearance = self.appearance(row, where, subject)
        if qtype == "date" and appearance and "month-year" in appearance.split():
            qtype = "month"
            appearance = " ".join(w for w in appearance.split() if w != "month-year") or None
        constraint = row.get("constraint") or None
        minimum = maximum = step = None
        bounds_column = None
        if qtype == "range":
            minimum, maximum, step = self.range_parameters(row, where, subject)
            bounds_column = "parameters"
        elif row.get("parameters"):
            if qtype in ("integer", "decimal") and "min" in row.get("parameters").lower():
                minimum, maximum = self.old_parameters(row, where, subject)
                bounds_column = "parameters"
            else:
                self.warn(where, subject, "parameters", "parameters are ignored on a "
                          f"{words} question")
        if qtype in ("integer", "decimal") and constraint and bounds_column is None:
            found = _bounds(constraint)
            if found is not None and (found[2] is not None or not row.texts.get(
                    "constraint_message")):
                minimum, maximum, constraint = found
                bounds_column = "constraint"
        required_text = row.get("required")
        required = False
        if required_text.lower() in TRUE:
            required = True
        elif required_text.lower() not in FALSE:
            message = (f"{required_text!r}: required as an expression cannot be delivered; "
                       "write yes or no (and use relevant to skip the question)"
                       if re.search(r"[${}()=<>]", required_text)
                       else f"{required_text!r} is not yes/no")
            self.add(where, subject, self.header("survey", "required"), message)
        read_only = False
        if row.get("read_only"):
            read_only = self.flag(row, "read_only", where, subject)
        calculation = row.get("calculation") or None
        if calculation is not None and qtype != "calculate":
            self.add(where, subject, self.header("survey", "calculation"), f"a calculation "
                     f"on a {words} question cannot be delivered; use a calculate row")
            calculation = None
        default = row.get("default") or None
        if default is not None and qtype == "time" and re.fullmatch(r"0?\.[0-9]+", default):
            seconds = round(float(default) * 86400)
            default = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        for column in ("item_code", "reverse"):
            if row.get(column):
                self.warn(where, subject, column, "only rating items have " + column)
        label = self.text(row, "label")
        if label is None and row.get("_media") and qtype not in (
                "calculate", "start", "end", "today", "deviceid"):
            if self.feature(node, self.header("survey", "label", ""), "media column",
                            "the label is only a picture, sound or video"):
                return None
            label = Text("", name)
        if label is None and qtype in ("calculate", "start", "end", "today", "deviceid"):
            label = Text("", "")
        q = Question(
            name=name, type=qtype, label=label or Text("", ""), hint=self.text(row, "hint"),
            required=required, relevant=_and(relevant, row.get("relevant")),
            constraint=constraint, constraint_message=self.text(row, "constraint_message"),
            choices=choices, other=other, minimum=minimum, maximum=maximum, step=step,
            appearance=appearance, choice_filter=row.get("choice_filter") or None,
            default=default, read_only=read_only, calculation=calculation,
            required_message=self.text(row, "required_message"))
        return _Built(q, row.number, bounds_column)

    def stand_in(self, node: _Node) -> _Built:
        """A text question in place of a refused one, so the rest of the form is still
        checked (references to it stay valid); the form is refused anyway."""
        q = Question(node.row.get("name"), "text",
                     self.text(node.row, "label") or Text("", node.row.get("name")))
        return _Built(q, node.row.number)

    def or_other(self, list_name: str, where: str, subject: str) -> None:
        choices = self.lists.get(list_name)
        if choices is not None and OTHER not in [c.name for c, _ in choices]:
            choices.append((Choice(OTHER, Text("其他", "Other")), choices[-1][1]))
            self.warn(where, subject, "type", f"or_other: the choice {OTHER!r} (其他/Other) "
                      f"is added to list {list_name!r}")

    def appearance(self, row: _Row, where: str, subject: str) -> str | None:
        kept = []
        for word in row.get("appearance").split():
            if word in _KEPT_APPEARANCES:
                kept.append(word)
            elif word in _DROPPED_APPEARANCES:
                self.warn(where, subject, "appearance", f"appearance {word!r} is dropped: "
                          "each question shows its own label and choices")
            else:
                self.warn(where, subject, "appearance", f"appearance {word!r} is ignored: "
                          "the pages show the standard widget")
        return " ".join(kept) or None

    def range_parameters(self, row: _Row, where: str, subject: str
                         ) -> tuple[int | float, int | float, int | float]:
        values: dict[str, int | float] = {"start": 1, "end": 10, "step": 1}
        for key, value in self.parameter_pairs(row, where, subject):
            if key not in values:
                self.add(where, subject, "parameters", f"{key!r}: a range takes start, end "
                         "and step")
            elif value is not None:
                values[key] = value
        return values["start"], values["end"], values["step"]

    def old_parameters(self, row: _Row, where: str, subject: str
                       ) -> tuple[int | float | None, int | float | None]:
        self.warn(where, subject, "parameters", "older layout: write the range as the "
                  "constraint '. >= MIN and . <= MAX' (pyxform ignores min= max=)")
        bounds: dict[str, int | float] = {}
        for key, value in self.parameter_pairs(row, where, subject):
            if key not in ("min", "max"):
                self.add(where, subject, "parameters", f"{key!r}: use min=NUMBER and/or "
                         "max=NUMBER")
            elif value is not None:
                bounds[key] = value
        return bounds.get("min"), bounds.get("max")

    def parameter_pairs(self, row: _Row, where: str, subject: str
                        ) -> list[tuple[str, int | float | None]]:
        out: list[tuple[str, int | float | None]] = []
        for part in re.split(r"[\s;,]+", row.get("parameters")):
            if not part:
                continue
            key, _, value = part.partition("=")
            key = key.strip().lower()
            number = _number(value)
            if number is None:
                self.add(where, subject, "parameters", f"{key}={value!r} is not a number")
            out.append((key, number))
        return out


def _role(node: _Node) -> str:
    return {"question": "question", "rating": "question"}.get(node.kind, node.kind)


def _walk(nodes: Iterable[_Node]) -> Iterable[_Node]:
    for node in nodes:
        yield node
        yield from _walk(node.children)


def _number(text: str) -> int | float | None:
    text = text.strip()
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", text):
        return None
    return float(text) if "." in text else int(text)


def _bounds(constraint: str) -> tuple[int | float | None, int | float | None,
                                      str | None] | None:
    """min, max and the rest of a constraint written ``. >= MIN and . <= MAX[ and (X)]``."""
    for pattern in _BOUNDS:
        m = pattern.fullmatch(constraint)
        if m:
            groups = m.groupdict()
            low = _number(groups["min"]) if groups.get("min") else None
            high = _number(groups["max"]) if groups.get("max") else None
            return low, high, groups.get("rest")
    return None


def _as_name(text: str) -> str:
    """A file stem or form id made into a valid name (letters, digits, _ - .)."""
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", text.strip()).strip("_") or "form"
    if not re.match(r"[A-Za-z_]", name):
        name = "form_" + name
    return name[:64]


# ------------------------------------------------------------------ reading


def read_xlsform(path: str | Path, data: bytes | None = None,
                 bank: Mapping[str, BankItem] | None = None) -> SurveyReport:
    """Read and check an XLSForm workbook (``.xlsx`` or ``.xls``).

    The report lists every problem (a workbook with any gives no survey) and every
    warning, each with its sheet, row (header = row 1), column and question.  With
    ``bank`` (see :func:`surveys.definition.read_bank`), rating items may leave their
    labels empty and give only ``item_code``; coded items are checked against the bank.
    """
    survey, report, where = _read(path, data, bank)
    if survey is None:
        return report
    problems, warnings = check(survey, where, strict_texts=False)
    renamed = where.reader.renamed_rows
    empty = not survey.pages and bool(report.problems)  # already said why
    report.problems += [p for p in problems if not (p.where in renamed and p.field == "name")
                        and not (empty and p.field == "pages")]
    report.warnings += warnings
    report.problems.sort(key=_sheet_order)
    report.warnings.sort(key=_sheet_order)
    if not report.problems:
        report.survey = survey
    return report


def _read(path: str | Path, data: bytes | None, bank: Mapping[str, BankItem] | None
          ) -> tuple[Survey | None, SurveyReport, Any]:
    """The survey as read (before validation), its report so far and its locator."""
    path = Path(path)
    try:
        raw = data if data is not None else path.read_bytes()
    except OSError as exc:
        return None, SurveyReport(path.name, problems=[Problem(path.name, "", "", str(exc))]), None
    try:
        sheets, names = _read_workbook(raw, path.name)
    except TableError as exc:
        return None, SurveyReport(path.name, problems=[_table_problem(p)
                                                       for p in exc.problems]), None
    r = _Reader(path.name)
    for name in names:
        key = name.strip().lower()
        if key in ("survey", "choices", "settings"):
            continue
        feature = "entities" if key == "entities" else None
        message = (f"sheet {name!r} is not read" + (f" ({OUT_OF_SCOPE['entities']})"
                                                    if feature else ""))
        r.warn(name, "", "", message, feature)
    form_id, version, form_version, title = r.settings(sheets.get("settings"), path.stem)
    lists = r.choices(sheets.get("choices"))
    pages: list[_PagePart] = []
    if sheets.get("survey") is None:
        r.add("survey", "", "", "the workbook has no 'survey' sheet")
    else:
        nodes = r.blocks(sheets["survey"])
        r.scan_references(nodes)
        pages = r.pages(nodes, lists)
    if not pages and r.dropped:
        first = r.dropped[0]
        r.add(first.where, first.subject, first.field, "nothing is left to ask once the "
              "questions the pages cannot deliver are left out", first.feature)
    survey = Survey(form_id, version, title,
                    {name: tuple(c for c, _ in items) for name, items in lists.items()},
                    tuple(Page(p.name, p.title, tuple(b.question for b in p.questions),
                               p.relevant, p.repeat) for p in pages),
                    form_version)
    for name, items in lists.items():
        r.rows[("list", name)] = f"choices row {items[0][1]}"
        for ci, (_, number) in enumerate(items):
            r.rows[("choice", name, ci)] = f"choices row {number}"
    for pi, p in enumerate(pages):
        r.rows[("page", pi)] = f"survey row {p.row}"
        r.fields[("page", pi)] = {"title": "label", "repeat.count": "repeat_count",
                                  "repeat.max": "repeat_max"}
        for qi, b in enumerate(p.questions):
            key = ("question", pi, qi)
            r.rows[key] = f"survey row {b.row}"
            r.fields[key] = {"choices": "type", **({"min": b.bounds_column,
                                                    "max": b.bounds_column}
                                                   if b.bounds_column else {})}
            for ii, number in enumerate(b.item_rows):
                r.rows[("item", pi, qi, ii)] = f"survey row {number}"

    def where(key: tuple) -> str:
        if key in r.rows:
            return r.rows[key]
        if key[0] in ("list", "choice"):
            return "choices"
        return "settings" if key[0] == "survey" else "survey"

    report = SurveyReport(path.name, problems=r.problems, warnings=r.warnings)
    if bank is not None:
        survey, bank_problems = apply_bank(survey, bank, where)
        report.problems += bank_problems
    return survey, report, _Locator(where, r)


class _Locator:
    """The validator's locator, which also names the workbook's column for a field."""

    def __init__(self, where: Any, reader: _Reader) -> None:
        self.where, self.reader = where, reader

    def __call__(self, key: tuple) -> str:
        return self.where(key)

    def column(self, key: tuple, fld: str) -> str:
        return _column_of(self.reader, key, fld)


def _column_of(r: _Reader, key: tuple, fld: str) -> str:
    """The workbook column behind a validator field (``label::zh`` -> ``label::中文 (zh)``)."""
    sheet = {"survey": "settings", "list": "choices", "choice": "choices"}.get(key[0],
                                                                                "survey")
    mapped = r.fields.get(key, {}).get(fld)
    if mapped:
        return r.header(sheet, mapped)
    base, sep, lang = fld.partition("::")
    if sep:
        if key[0] == "survey":
            return "form_title" if lang == (r.default_language or "zh") else \
                f"form_title_{lang}"
        base = "label" if base == "title" else base
        return r.header(sheet, base, lang)
    return r.header(sheet, fld)


def _table_problem(p: TableProblem) -> Problem:
    """A problem of reading the workbook, placed as the survey report places its own."""
    sheet = (p.sheet or "").strip().lower()
    where = " ".join(part for part in (sheet, f"row {p.row}" if p.row else "") if part)
    return FileProblem(where or p.file, "", p.column or "", p.message, p)


def _sheet_order(p: Problem) -> tuple[int, int]:
    m = re.match(r"(\w+)(?: row (\d+))?", p.where)
    sheet = {"settings": 0, "survey": 1, "choices": 2}.get(m.group(1) if m else "", 3)
    return sheet, int(m.group(2)) if m and m.group(2) else 0

