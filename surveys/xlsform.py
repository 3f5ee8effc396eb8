"""Survey definitions in an XLSForm-like workbook, so field staff can author in a spreadsheet.

The layout (documented with examples in ``surveys/README.md``) follows XLSForm:

* sheet ``survey``: ``type``, ``name``, ``label::zh``, ``label::en``, ``hint::zh``,
  ``hint::en``, ``required``, ``relevant``, ``constraint``,
  ``constraint_message::zh``, ``constraint_message::en``, ``parameters``
  (``min=1 max=200`` for numbers), ``item_code``, ``reverse``.  Types:
  ``begin_group``/``end_group`` (a page), ``select_one LIST``,
  ``select_multiple LIST`` (either may end in ``or_other``), ``integer``,
  ``decimal``, ``text``, ``date``, ``month``, ``note``, and a rating grid as
  ``begin_rating LIST`` ... ``rating`` rows ... ``end_rating``.
* sheet ``choices``: ``list_name``, ``name``, ``label::zh``, ``label::en``.
* sheet ``settings``: ``form_id``, ``version``, ``title::zh``, ``title::en`` (row 2).

Language columns may also be written the XLSForm way, ``label::Chinese (zh)``.
Every problem is reported at once with its sheet, row (header = row 1), the
question name and the column; a workbook with any problem gives no survey.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabular.reading import Problem as TableProblem
from tabular.reading import Table, TableError, read_sheets

from .definition import (
    BankItem,
    Choice,
    Page,
    Problem,
    Question,
    RatingItem,
    Survey,
    SurveyReport,
    Text,
    apply_bank,
    validate,
)

__all__ = ["SURVEY_COLUMNS", "read_xlsform"]

SURVEY_COLUMNS = ("type", "name", "label::zh", "label::en", "hint::zh", "hint::en",
                  "required", "relevant", "constraint", "constraint_message::zh",
                  "constraint_message::en", "parameters", "item_code", "reverse")
CHOICES_COLUMNS = ("list_name", "name", "label::zh", "label::en")
SETTINGS_COLUMNS = ("form_id", "version", "title::zh", "title::en")
#: data rows read per sheet (a real questionnaire has a few hundred; docs/uploads.md)
MAX_FORM_ROWS = 5_000
TRUE = {"yes", "true", "1", "y", "是", "true()"}
FALSE = {"no", "false", "0", "n", "否", "", "false()"}
_SIMPLE_TYPES = {"integer": "integer", "decimal": "decimal", "text": "text", "date": "date",
                 "month": "month", "note": "note"}
_SELECT_TYPES = {"select_one": "single_choice", "select_multiple": "multiple_choice"}
_LANG_RE = re.compile(r"^(label|hint|constraint_message|title)::\s*(.+)$", re.IGNORECASE)


@dataclass
class _Sheet:
    name: str
    header_problems: list[str] = field(default_factory=list)
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)


def _column(header: str) -> str:
    """Canonical column name: ``label::Chinese (zh)`` -> ``label::zh``."""
    text = header.strip()
    m = _LANG_RE.match(text)
    if not m:
        return text.lower()
    base, lang = m.group(1).lower(), m.group(2).strip().lower()
    inner = re.search(r"\(([a-z]{2})", lang)
    code = inner.group(1) if inner else lang[:2]
    return f"{base}::{code}" if code in ("zh", "en") else f"{base}::{lang}"


def _sheet(table: Table | None, name: str, columns: tuple[str, ...]) -> _Sheet | None:
    """A sheet's rows keyed by canonical column names, and the header's problems."""
    if table is None:
        return None
    out = _Sheet(name)
    header = [_column(h) if h else "" for h in table.header]
    for i, h in enumerate(header):
        if h and h in header[:i]:
            out.header_problems.append(f"column {h!r} appears twice")
        if h and h not in columns:
            hint = " (choice filters are not supported)" if h == "choice_filter" else ""
            if h in ("label", "hint", "constraint_message", "title"):
                hint = f" (write {h}::zh and {h}::en)"
            out.header_problems.append(f"unknown column {h!r}{hint}")
    for row in table.rows:
        out.rows.append((row.number, {h: row.values[i] for i, h in enumerate(header)
                                      if h in columns}))
    return out


class _Builder:
    """Turns sheet rows into a Survey, remembering each part's row for the report."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self.rows: dict[tuple, str] = {}

    def add(self, where: str, subject: str, column: str, message: str) -> None:
        self.problems.append(Problem(where, subject, column, message))

    def text(self, row: dict[str, str], base: str) -> Text | None:
        zh, en = row.get(f"{base}::zh", ""), row.get(f"{base}::en", "")
        return Text(zh, en) if zh or en else None

    def flag(self, row: dict[str, str], column: str, where: str, subject: str) -> bool:
        value = row.get(column, "").strip().lower()
        if value in TRUE:
            return True
        if value not in FALSE:
            self.add(where, subject, column, f"{row[column]!r} is not yes/no")
        return False

    def parameters(self, row: dict[str, str], where: str, subject: str
                   ) -> tuple[int | float | None, int | float | None]:
        bounds: dict[str, int | float] = {}
        for part in re.split(r"[\s;,]+", row.get("parameters", "").strip()):
            if not part:
                continue
            key, _, value = part.partition("=")
            key = key.strip().lower()
            if key not in ("min", "max") or not value:
                self.add(where, subject, "parameters",
                         f"{part!r}: use min=NUMBER and/or max=NUMBER")
                continue
            try:
                number = float(value)
            except ValueError:
                self.add(where, subject, "parameters", f"{key}={value!r} is not a number")
                continue
            bounds[key] = int(number) if number.is_integer() and "." not in value else number
        return bounds.get("min"), bounds.get("max")

    # -- sheets
    def settings(self, sheet: _Sheet | None) -> tuple[str, Any, Text]:
        if sheet is None:
            self.add("settings", "", "", "the workbook has no 'settings' sheet (form_id, "
                                         "version, title::zh, title::en)")
            return "", 0, Text("", "")
        for message in sheet.header_problems:
            self.add("settings row 1", "", "", message)
        if not sheet.rows:
            self.add("settings row 2", "", "", "missing: give form_id, version and titles")
            return "", 0, Text("", "")
        number, row = sheet.rows[0]
        self.rows[("survey",)] = f"settings row {number}"
        for extra, _ in sheet.rows[1:]:
            self.add(f"settings row {extra}", "", "", "only one settings row is read")
        version_text = row.get("version", "")
        try:
            version: Any = int(version_text)
        except ValueError:
            version = version_text
        return row.get("form_id", ""), version, self.text(row, "title") or Text("", "")

    def choices(self, sheet: _Sheet | None) -> dict[str, tuple[Choice, ...]]:
        lists: dict[str, list[Choice]] = {}
        if sheet is None:
            return {}
        for message in sheet.header_problems:
            self.add("choices row 1", "", "", message)
        for number, row in sheet.rows:
            name = row.get("list_name", "")
            where = f"choices row {number}"
            if not name:
                self.add(where, "", "list_name", "missing")
                continue
            lists.setdefault(name, [])
            self.rows.setdefault(("list", name), where)
            self.rows[("choice", name, len(lists[name]))] = where
            lists[name].append(Choice(row.get("name", ""),
                                      self.text(row, "label") or Text("", "")))
        return {k: tuple(v) for k, v in lists.items()}

    def survey_rows(self, sheet: _Sheet | None) -> list[Page]:
        if sheet is None:
            self.add("survey", "", "", "the workbook has no 'survey' sheet")
            return []
        for message in sheet.header_problems:
            self.add("survey row 1", "", "", message)
        pages: list[Page] = []
        page: dict[str, Any] | None = None
        grid: dict[str, Any] | None = None
        for number, row in sheet.rows:
            where = f"survey row {number}"
            words = row.get("type", "").replace("begin group", "begin_group").replace(
                "end group", "end_group").replace("begin rating", "begin_rating").replace(
                "end rating", "end_rating").split()
            kind = words[0].lower() if words else ""
            name = row.get("name", "")
            role = {"rating": "item", "begin_group": "page"}.get(kind, "question")
            subject = f"{role} {name!r}" if name else ""
            if kind == "begin_group":
                if page is not None:
                    self.add(where, subject, "type", f"pages cannot be nested: close page "
                                                     f"{page['name']!r} with end_group first")
                    continue
                self.unused(row, where, subject, kind, ("required", "constraint", "hint::zh",
                                                        "hint::en", "parameters", "item_code",
                                                        "reverse"))
                page = {"name": name, "title": self.text(row, "label") or Text("", ""),
                        "relevant": row.get("relevant") or None, "questions": [],
                        "where": where}
                self.rows[("page", len(pages))] = where
                continue
            if kind == "end_group":
                if grid is not None:
                    self.add(where, "", "type", f"rating grid {grid['name']!r} "
                                                f"({grid['where']}) is not closed with "
                                                "end_rating")
                    self.close_grid(grid, page)
                    grid = None
                if page is None:
                    self.add(where, "", "type", "end_group without begin_group")
                    continue
                pages.append(Page(page["name"], page["title"], tuple(page["questions"]),
                                  page["relevant"]))
                page = None
                continue
            if page is None:
                self.add(where, subject, "type", "every question must be on a page: put it "
                                                 "between begin_group and end_group")
                continue
            pkey = len(pages)
            if kind == "begin_rating":
                if grid is not None:
                    self.add(where, subject, "type", "rating grids cannot be nested")
                    continue
                self.unused(row, where, subject, kind, ("constraint", "parameters",
                                                        "item_code", "reverse"))
                grid = {"name": name, "where": where, "row": row, "items": [],
                        "choices": words[1] if len(words) > 1 else None}
                if len(words) != 2:
                    self.add(where, subject, "type", "write begin_rating LIST_NAME")
                self.rows[("question", pkey, len(page["questions"]))] = where
                continue
            if kind == "end_rating":
                if grid is None:
                    self.add(where, "", "type", "end_rating without begin_rating")
                    continue
                self.close_grid(grid, page)
                grid = None
                continue
            if kind == "rating":
                if grid is None:
                    self.add(where, subject, "type", "a rating row must be inside "
                                                     "begin_rating ... end_rating")
                    continue
                self.unused(row, where, subject, kind, ("required", "relevant", "constraint",
                                                        "hint::zh", "hint::en",
                                                        "parameters"))
                self.rows[("item", pkey, len(page["questions"]), len(grid["items"]))] = where
                grid["items"].append(RatingItem(
                    name, self.text(row, "label") or Text("", ""),
                    row.get("item_code") or None, self.flag(row, "reverse", where, subject)))
                continue
            if grid is not None:
                self.add(where, subject, "type", f"only rating rows can be inside rating "
                                                 f"grid {grid['name']!r}")
                continue
            question = self.question(row, words, where, subject)
            if question is not None:
                self.rows[("question", pkey, len(page["questions"]))] = where
                page["questions"].append(question)
        if grid is not None:
            self.add(grid["where"], "", "type",
                     f"rating grid {grid['name']!r} is not closed with end_rating")
            self.close_grid(grid, page)
        if page is not None:
            self.add(page["where"], f"page {page['name']!r}", "type",
                     "the page is not closed with end_group")
            pages.append(Page(page["name"], page["title"], tuple(page["questions"]),
                              page["relevant"]))
        return pages

    def close_grid(self, grid: dict[str, Any], page: dict[str, Any] | None) -> None:
        row, where = grid["row"], grid["where"]
        subject = f"question {grid['name']!r}"
        if page is not None:
            page["questions"].append(Question(
                name=grid["name"], type="rating_grid",
                label=self.text(row, "label") or Text("", ""), hint=self.text(row, "hint"),
                required=self.flag(row, "required", where, subject),
                relevant=row.get("relevant") or None, choices=grid["choices"],
                items=tuple(grid["items"])))

    def unused(self, row: dict[str, str], where: str, subject: str, kind: str,
               columns: tuple[str, ...]) -> None:
        for column in columns:
            if row.get(column, "").strip():
                self.add(where, subject, column, f"not used on a {kind} row")

    def question(self, row: dict[str, str], words: list[str], where: str,
                 subject: str) -> Question | None:
        kind = words[0].lower() if words else ""
        choices, other = None, False
        if kind in _SELECT_TYPES:
            qtype = _SELECT_TYPES[kind]
            rest = words[1:]
            if rest and rest[-1].lower() == "or_other":
                other, rest = True, rest[:-1]
            if len(rest) != 1:
                self.add(where, subject, "type", f"write {kind} LIST_NAME [or_other]")
            choices = rest[0] if rest else None
        elif kind in _SIMPLE_TYPES and len(words) == 1:
            qtype = _SIMPLE_TYPES[kind]
        else:
            self.add(where, subject, "type", f"unknown type {' '.join(words)!r}" if words
                     else "missing")
            return None
        self.unused(row, where, subject, kind, ("item_code", "reverse"))
        minimum, maximum = self.parameters(row, where, subject)
        return Question(
            name=row.get("name", ""), type=qtype,
            label=self.text(row, "label") or Text("", ""), hint=self.text(row, "hint"),
            required=self.flag(row, "required", where, subject),
            relevant=row.get("relevant") or None, constraint=row.get("constraint") or None,
            constraint_message=self.text(row, "constraint_message"), choices=choices,
            other=other, minimum=minimum, maximum=maximum)


def read_xlsform(path: str | Path, data: bytes | None = None,
                 bank: dict[str, BankItem] | None = None) -> SurveyReport:
    """Read and check an XLSForm-like workbook.

    With ``bank`` (see :func:`surveys.definition.read_bank`), rating rows may leave
    their labels empty and give only ``item_code``: the statement is taken from
    the item bank; coded items are checked against the bank either way.
    """
    path = Path(path)
    try:
        raw = data if data is not None else path.read_bytes()
    except OSError as exc:
        return SurveyReport(path.name, problems=[Problem(path.name, "", "", str(exc))])
    try:
        tables = read_sheets(raw, path.name, ("survey", "choices", "settings"),
                             check_header=False, max_rows=MAX_FORM_ROWS)
    except TableError as exc:
        return SurveyReport(path.name, problems=[_table_problem(p) for p in exc.problems])
    survey_sheet = _sheet(tables.get("survey"), "survey", SURVEY_COLUMNS)
    choices_sheet = _sheet(tables.get("choices"), "choices", CHOICES_COLUMNS)
    settings_sheet = _sheet(tables.get("settings"), "settings", SETTINGS_COLUMNS)
    b = _Builder(path.name)
    form_id, version, title = b.settings(settings_sheet)
    lists = b.choices(choices_sheet)
    pages = b.survey_rows(survey_sheet)
    survey = Survey(form_id, version, title, lists, tuple(pages))

    def where(key: tuple) -> str:
        if key in b.rows:
            return b.rows[key]
        if key[0] in ("list", "choice"):
            return "choices"
        return "settings" if key[0] == "survey" else "survey"

    report = SurveyReport(path.name, problems=b.problems)
    if bank is not None:
        survey, bank_problems = apply_bank(survey, bank, where)
        report.problems += bank_problems
    report.problems += validate(survey, where)
    report.problems.sort(key=_sheet_order)
    if not report.problems:
        report.survey = survey
    return report


@dataclass(frozen=True)
class FileProblem(Problem):
    """A problem of reading the workbook itself (tabular's), placed as the survey report
    places its own, with tabular's problem kept in ``table`` so a page can say it in the
    reader's language (``learningcity.filemessages.file_problem_text``)."""

    table: TableProblem | None = field(default=None, compare=False)


def _table_problem(p: TableProblem) -> Problem:
    """A problem of reading the workbook, placed as the survey report places its own."""
    sheet = (p.sheet or "").strip().lower()
    where = " ".join(part for part in (sheet, f"row {p.row}" if p.row else "") if part)
    return FileProblem(where or p.file, "", p.column or "", p.message, p)


def _sheet_order(p: Problem) -> tuple[int, int]:
    m = re.match(r"(\w+)(?: row (\d+))?", p.where)
    sheet = {"settings": 0, "survey": 1, "choices": 2}.get(m.group(1) if m else "", 3)
    return sheet, int(m.group(2)) if m and m.group(2) else 0
