"""Fieldwork brought back: submission exports of ODK Central and KoboToolbox stored as
finished survey sessions, all or nothing, once per instance ID.

Enumerators fill the survey offline (ODK Collect, KoboCollect) from the XLSForm that
``learningcity survey export-xlsform`` writes: question names are ours, groups are pages
(a rating item sits in its grid's group), a repeat is ``begin_repeat PAGE``, and an
optional text question ``invitation_code`` carries the campaign invitation code.

* **Reading** (:func:`read_submissions`, no database): a CSV or XLSX through
  :mod:`tabular.reading` (the size, row, column and time caps of every upload). ODK
  Central's layout (``SubmissionDate``, group paths joined by ``-`` such as
  ``background-age_band``, ``meta-instanceID``, ``KEY``, ``ReviewState``...) and
  KoboToolbox's (paths joined by ``/`` or bare names, ``_uuid``, ``_submission_time``,
  ``meta/instanceID``, ``_index``...). A column is the answer key of its last path
  segment; the groups before it must be the key's page (or the grid or inner group it sits
  in). A multiple choice is read from its space-separated names or from one 0/1 column per
  choice (``topics/health``). Repeats: KoboToolbox's XLSX export, one extra sheet per
  repeat named after it, rows linked to the main sheet by ``_parent_index`` = ``_index``;
  instance ``i`` of the rows of one submission gives the keys ``name[i]``; ODK Central's
  ZIP export, the main CSV and one CSV per repeat (``<form>-<repeat>.csv``, rows linked
  by ``PARENT_KEY`` = the main row's ``KEY``). Values are read with the survey's own rules
  (:func:`surveys.answers.parse_answer`). ODK and Kobo metadata columns are recognised
  silently; any other column is a warning, never silently dropped.
* **Storing** (:func:`import_submissions`): every row becomes a survey session started
  and finished through :mod:`surveys.services` (the invitation's prefill, the campaign's
  district, ``finish`` dropping skipped answers and storing scale scores), so campaign
  progress and closing count it exactly as a session answered on the pages; its times
  are the form's ``start`` and ``end``. Any problem in any row (a value, a required
  answer, a constraint, an unknown or already answered invitation code, an instance ID
  stored before with other answers) stores nothing and lists every problem with its row
  and column in zh and en. Importing the same file again finds every instance ID stored
  with the same answers and adds nothing.
* **Campaigns** belong to ``monitoring`` (which reads this package, never the other
  way round), so invitation codes are resolved through an :class:`InvitationDirectory`
  the caller gives: the entry-point group ``learningcity.invitation_directory`` names
  the factory (:func:`invitation_directory`).
"""
from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity import audit
from learningcity.db import utcnow
from learningcity.tokens import new_token
from tabular.reading import LIMITS, Limits, Problem, Table, TableError, read_sheets, read_table

from . import services
from .answers import AnswerError, check_answers, clean_answers, parse_answer
from .definition import META_TYPES, Field, Survey, Text, instance_key
from .models import SurveySession

__all__ = ["MAX_SUBMISSIONS_BYTES", "CampaignInfo", "ImportResult", "InvitationDirectory",
           "InvitationInfo", "Submission", "SubmissionFile", "SubmissionProblem",
           "import_submissions", "invitation_directory", "read_submissions"]

#: the largest submissions export taken (upload page and command line): about 50,000
#: rows of the default survey
MAX_SUBMISSIONS_BYTES = 20 * 1024 * 1024
MAX_SUBMISSIONS_ROWS = 50_000
#: rows one upload on the page may hold: storing takes about 40 ms a row (SQLite, a
#: 2-core machine; half of it the item-bank calibration lookup of each finish), so 500
#: rows stay within the 20 s a request may take; bigger files go through the command line
MAX_PAGE_ROWS = 500
IMPORT_ACTION = "survey.import_submissions"
ENTRY_POINT_GROUP = "learningcity.invitation_directory"
INVITATION_COLUMN = "invitation_code"
#: instance-ID columns, the first one present wins (ODK Central, Kobo, groupPaths=false)
INSTANCE_COLUMNS = ("meta-instanceID", "meta/instanceID", "instanceID", "KEY", "_uuid")
#: metadata columns of ODK Central and KoboToolbox exports (recognised, not answers)
ODK_COLUMNS = frozenset({"SubmissionDate", "KEY", "PARENT_KEY", "SubmitterID",
                         "SubmitterName", "AttachmentsPresent", "AttachmentsExpected",
                         "Status", "ReviewState", "DeviceID", "Edits", "FormVersion"})
#: last path segments of form metadata (meta block, meta question types, Kobo extras)
META_NAMES = frozenset({"start", "end", "today", "deviceid", "username", "simserial",
                        "subscriberid", "phonenumber", "audit", "instanceID", "instanceName",
                        "deprecatedID", "rootUuid", "email", "uuid"})
META_GROUPS = frozenset({"meta", "formhub", "__system"})
#: question types whose columns hold no answer to store (notes, grids' group columns,
#: meta types and calculations)
NOT_ANSWERED = frozenset({"note", "rating_grid", "calculate", *META_TYPES})
START_NAMES = ("start",)
END_NAMES = ("end",)
SUBMITTED_NAMES = ("SubmissionDate", "_submission_time")
REJECTED = {"ReviewState": "rejected", "_validation_status": "validation_status_not_approved"}
TRUE_CELLS = frozenset({"1", "true", "yes"})
FALSE_CELLS = frozenset({"0", "false", "no", ""})
_SEPARATORS = re.compile(r"[-/]")
_MIDNIGHT = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[ T]00:00(?::00(?:\.0+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?")


# ------------------------------------------------------------------ problems


@dataclass(frozen=True)
class SubmissionProblem:
    """One thing wrong with a submissions file: where (sheet, row as the file shows it,
    column) and what, in zh and en."""

    row: int | None
    column: str | None
    message: Text
    sheet: str | None = None

    def where(self, locale: str = "en") -> str:
        zh = not locale.startswith("en")
        parts = []
        if self.sheet:
            parts.append(f"工作表 '{self.sheet}'" if zh else f"sheet {self.sheet!r}")
        if self.row is not None:
            parts.append(f"第 {self.row} 行" if zh else f"row {self.row}")
        if self.column:
            parts.append(f"'{self.column}' 列" if zh else f"column {self.column!r}")
        return ("，" if zh else ", ").join(parts)

    def text(self, locale: str = "en") -> str:
        where, message = self.where(locale), self.message.get(locale)
        return f"{where}{'：' if not locale.startswith('en') else ': '}{message}" if where \
            else message


def _problem(row: int | None, column: str | None, zh: str, en: str,
             sheet: str | None = None) -> SubmissionProblem:
    return SubmissionProblem(row, column, Text(zh, en), sheet)


# ------------------------------------------------------------------ reading


@dataclass
class Submission:
    """One submission as read: its row, instance ID, invitation code, typed answers
    (``name`` or ``name[i]`` -> value, blanks left out) and the form's times (UTC)."""

    row: int
    instance_id: str
    answers: dict[str, Any]
    invitation_code: str | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    #: the server's review said "rejected" (ODK ReviewState, Kobo validation status)
    rejected: bool = False
    #: the column each answer key came from (for problems found later)
    columns: dict[str, str] = field(default_factory=dict)
    #: the sheet and row of each answer key read from a repeat sheet
    places: dict[str, tuple[str, int]] = field(default_factory=dict)


@dataclass
class SubmissionFile:
    """A submissions export read against a survey: its layout (``odk`` or ``kobo``), the
    submissions, and the problems (nothing may be stored) and warnings it has."""

    filename: str
    source: str
    submissions: list[Submission]
    problems: list[SubmissionProblem]
    warnings: list[SubmissionProblem]
    has_invitation_codes: bool = False
    sha256: str = ""
    #: problems of the file itself (size, encoding, header) as :mod:`tabular` found them
    file_problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class _Column:
    """What one header cell is: an answer key, one choice of a multiple choice, the
    invitation code, the instance ID, a time, metadata, or unknown."""

    kind: str  # answer | choice | invitation | instance | start | end | submitted | meta
    # | review | unknown
    name: str = ""
    choice: str = ""


def _segments(column: str) -> list[str]:
    return [s for s in _SEPARATORS.split(column) if s]


def _page_groups(survey: Survey) -> dict[str, set[str]]:
    """Answer key -> the group names its column path may carry: its page, its grid (a
    rating item), and the inner groups (notes) of the page."""
    notes: dict[str, set[str]] = {}
    for page in survey.pages:
        notes[page.name] = {page.name} | {q.name for q in page.questions if q.type == "note"}
    out: dict[str, set[str]] = {}
    for f in survey.fields():
        allowed = set(notes[f.page.name])
        if f.kind == "rating":
            allowed.add(f.question.name)
        out[f.name] = allowed
    return out


def _classify(column: str, fields: Mapping[str, Field], choices: Mapping[str, set[str]],
              shown: frozenset[str] = frozenset(), times: Mapping[str, str] | None = None
              ) -> tuple[_Column, list[str]]:
    """What a header cell holds, and the group path before its name (``shown``: names of
    notes, groups and calculations, which hold no answer; ``times``: the names of the
    form's start and end questions -> ``start`` or ``end``)."""
    if column in ODK_COLUMNS:
        if column == "SubmissionDate":
            return _Column("submitted"), []
        if column == "ReviewState":
            return _Column("review"), []
        return _Column("meta"), []
    if column in INSTANCE_COLUMNS:
        return _Column("instance"), []
    if column == "_submission_time":
        return _Column("submitted"), []
    if column == "_validation_status":
        return _Column("review"), []
    for name, names in choices.items():  # q/choice (a choice name may hold "-" or "/")
        at = column.find(name + "/")
        while at >= 0:
            if at == 0 or column[at - 1] in "-/":
                choice = column[at + len(name) + 1:]
                if choice in names:
                    return _Column("choice", name, choice), _segments(column[:at])
            at = column.find(name + "/", at + 1)
    parts = _segments(column)
    if not parts or column.startswith("_"):
        return _Column("meta"), []
    last, groups = parts[-1], parts[:-1]
    if last in fields:
        return _Column("answer", last), groups
    if last == INVITATION_COLUMN:
        return _Column("invitation"), groups
    times = {**dict.fromkeys(START_NAMES, "start"), **dict.fromkeys(END_NAMES, "end"),
             **(times or {})}
    if last in times:
        return _Column(times[last]), groups
    if last in META_NAMES or last in shown or (groups and groups[0] in META_GROUPS):
        return _Column("meta"), groups
    return _Column("unknown", last), groups


def _timestamp(text: str) -> dt.datetime | None:
    """A form time in UTC (ISO 8601 with or without an offset; none given: UTC)."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(
        dt.UTC)


def _form_text(f: Field, cell: str) -> str | list[str]:
    """A cell as the pages would post it: the choices of a multiple choice as a list,
    an ODK date without its midnight time, a month-year date as ``YYYY-MM``."""
    if f.kind == "multiple_choice":
        return cell.split()
    if f.kind in ("date", "month"):
        found = _MIDNIGHT.fullmatch(cell.strip())
        if found:
            day = found.group(1)
            return day[:7] if f.kind == "month" else day
    return cell


class _Reader:
    """Reads one sheet's header and rows against the survey (main sheet or a repeat)."""

    def __init__(self, survey: Survey, table: Table, out: SubmissionFile,
                 fields: Mapping[str, Field], sheet: str | None = None) -> None:
        self.survey, self.table, self.out, self.fields = survey, table, out, fields
        self.sheet = sheet
        self.choices = {n: {c.name for c in survey.choice_lists[f.question.choices or ""]}
                        for n, f in fields.items() if f.kind == "multiple_choice"}
        self.groups = _page_groups(survey)
        self.shown = frozenset({p.name for p in survey.pages} | {
            q.name for q in survey.questions if q.type in NOT_ANSWERED})
        self.times = {q.name: q.type for q in survey.questions if q.type in ("start", "end")}
        self.columns: list[tuple[int, str, _Column]] = []
        self.answer_column: dict[str, str] = {}
        self.choice_columns: dict[str, list[tuple[int, str, str]]] = {}
        self._header()

    def problem(self, row: int | None, column: str | None, zh: str, en: str) -> None:
        self.out.problems.append(_problem(row, column, zh, en, self.sheet))

    def _header(self) -> None:
        row = self.table.header_row
        for j, column in enumerate(self.table.header):
            if not column:
                continue
            kind, groups = _classify(column, self.fields, self.choices, self.shown,
                                     self.times)
            if kind.kind in ("answer", "choice"):
                allowed = self.groups.get(kind.name, set())
                wrong = [g for g in groups if g not in allowed]
                if wrong:
                    page = self.fields[kind.name].page.name
                    self.problem(row, column,
                                 f"“{kind.name}”在问卷的“{page}”页，不在组“{wrong[0]}”中",
                                 f"{kind.name!r} is on page {page!r} of the survey, "
                                 f"not in group {wrong[0]!r}")
                    continue
            if kind.kind == "answer":
                if kind.name in self.answer_column:
                    self.problem(row, column,
                                 f"与“{self.answer_column[kind.name]}”列是同一道题",
                                 f"the same question as column "
                                 f"{self.answer_column[kind.name]!r}")
                    continue
                self.answer_column[kind.name] = column
            elif kind.kind == "choice":
                self.choice_columns.setdefault(kind.name, []).append((j, column, kind.choice))
                continue
            elif kind.kind == "unknown":
                self.out.warnings.append(_problem(
                    row, column, "问卷中没有这道题，此列未导入",
                    "the survey has no such question; the column is not imported",
                    self.sheet))
                continue
            elif kind.kind == "invitation":
                self.out.has_invitation_codes = True
            self.columns.append((j, column, kind))

    def instance_column(self) -> int | None:
        found = {c: j for j, c, k in self.columns if k.kind == "instance"}
        return next((found[c] for c in INSTANCE_COLUMNS if c in found), None)

    def answers(self, number: int, values: Sequence[str], instance: int | None = None
                ) -> tuple[dict[str, Any], dict[str, str]]:
        """The typed answers of one row (blank cells left out) keyed ``name`` (or
        ``name[instance]`` on a repeat sheet), and the column of each key."""
        answers: dict[str, Any] = {}
        where: dict[str, str] = {}
        for j, column, kind in self.columns:
            if kind.kind != "answer":
                continue
            cell = values[j].strip()
            f = self.fields[kind.name]
            name = instance_key(kind.name, instance)
            where[name] = column
            if not cell:
                continue
            try:
                value = parse_answer(self.survey, kind.name, _form_text(f, cell))
            except AnswerError as exc:
                self.out.problems.append(SubmissionProblem(number, column, exc.message,
                                                           self.sheet))
                continue
            if value is not None:
                answers[name] = value
        for name, cols in self.choice_columns.items():
            picked, bad = [], False
            for j, column, choice in cols:
                cell = values[j].strip().lower()
                if cell in TRUE_CELLS:
                    picked.append(choice)
                elif cell not in FALSE_CELLS:
                    self.problem(number, column, "此列只能填 1 或 0",
                                 "this column holds 1 (chosen) or 0 (not chosen) only")
                    bad = True
            target = instance_key(name, instance)
            if bad:
                continue
            if name in self.answer_column:
                given = set(answers.get(target) or [])
                if given != set(picked) and any(values[j].strip() for j, _c, _n in cols):
                    self.problem(number, self.answer_column[name],
                                 "与各选项的 1/0 列不一致",
                                 "does not agree with the 1/0 columns of its choices")
                continue
            where.setdefault(target, cols[0][1])
            ordered = [c.name for c in self.survey.choice_lists[
                self.fields[name].question.choices or ""] if c.name in picked]
            if ordered:
                answers[target] = ordered
        return answers, where

    def cell(self, values: Sequence[str], kinds: Iterable[str]) -> str:
        for j, _column, kind in self.columns:
            if kind.kind in kinds and values[j].strip():
                return values[j].strip()
        return ""

    def review(self, values: Sequence[str]) -> bool:
        for j, column, kind in self.columns:
            if kind.kind == "review" and values[j].strip() == REJECTED.get(column):
                return True
        return False


def _answered(survey: Survey) -> list[Field]:
    """The answer slots a submission fills (meta types and calculations are recorded or
    computed by delivery: ``start`` and ``end`` give the session's times)."""
    return [f for f in survey.fields() if f.kind not in NOT_ANSWERED]


def _instance_id(text: str) -> str:
    text = text.strip()
    return text[5:] if text.lower().startswith("uuid:") else text


def _source(header: Sequence[str]) -> str:
    """``kobo`` or ``odk``: by the metadata columns each server writes, else by the path
    separator (``/`` Kobo, ``-`` ODK; ODK's choice columns ``q/choice`` aside)."""
    names = set(header)
    if names & {"_uuid", "_submission_time", "_index", "_id", "_validation_status"}:
        return "kobo"
    if names & ODK_COLUMNS:
        return "odk"
    return "kobo" if any("-" not in c.split("/", 1)[0] for c in header if "/" in c) \
        else "odk"


def read_submissions(survey: Survey, filename: str, data: bytes, *,
                     max_bytes: int = MAX_SUBMISSIONS_BYTES,
                     max_rows: int = MAX_SUBMISSIONS_ROWS,
                     limits: Limits = LIMITS) -> SubmissionFile:
    """A submissions export (CSV or XLSX, ODK Central or KoboToolbox layout) read against
    a survey; every problem and warning is listed, nothing is dropped silently."""
    out = SubmissionFile(filename, "odk", [], [], [])
    repeat_pages = [p for p in survey.pages if p.repeat is not None]
    parts = _odk_zip(data, filename, repeat_pages, out, max_bytes)
    if out.problems:
        return out
    main_name, main_data = (filename, data) if parts is None else parts.pop("")
    try:
        table = read_table(main_data, main_name, max_rows=max_rows, max_bytes=max_bytes,
                           limits=limits)
    except TableError as exc:
        out.file_problems = list(exc.problems)
        out.problems = [SubmissionProblem(p.row, p.column, Text(p.message, p.message),
                                          p.sheet) for p in exc.problems]
        return out
    out.sha256 = table.sha256
    out.source = _source(table.header)
    repeat_fields = {f.name for p in repeat_pages for f in survey.fields() if f.page is p}
    main_fields = {f.name: f for f in _answered(survey) if f.name not in repeat_fields}
    reader = _Reader(survey, table, out, main_fields)
    id_column = reader.instance_column()
    if id_column is None:
        out.problems.append(_problem(
            table.header_row, None,
            "没有实例 ID 列（meta-instanceID、meta/instanceID、KEY 或 _uuid）：这不是 ODK "
            "Central 或 KoboToolbox 的提交导出文件",
            "no instance ID column (meta-instanceID, meta/instanceID, KEY or _uuid): this "
            "is not an ODK Central or KoboToolbox submissions export"))
        return out
    link = "_index" if parts is None else "KEY"
    index_column = table.header.index(link) if link in table.header else None
    by_index: dict[str, Submission] = {}
    for row in table.rows:
        instance = _instance_id(row.values[id_column])
        if not instance:
            reader.problem(row.number, table.header[id_column], "没有实例 ID",
                           "no instance ID")
            continue
        if len(instance) > 100:
            reader.problem(row.number, table.header[id_column], "实例 ID 超过 100 个字符",
                           "the instance ID is longer than 100 characters")
            continue
        answers, where = reader.answers(row.number, row.values)
        started = _timestamp(reader.cell(row.values, ("start",)))
        ended = _timestamp(reader.cell(row.values, ("end",))) or _timestamp(
            reader.cell(row.values, ("submitted",)))
        code = reader.cell(row.values, ("invitation",)) or None
        submission = Submission(row.number, instance, answers, code, started, ended,
                                reader.review(row.values), where)
        out.submissions.append(submission)
        if index_column is not None:
            by_index[row.values[index_column].strip()] = submission
    if parts is not None:
        for page in repeat_pages:
            if page.name in parts:
                name, part = parts[page.name]
                try:
                    sheet = read_table(part, name, max_rows=max_rows, max_bytes=max_bytes,
                                       limits=limits)
                except TableError as exc:
                    _table_problems(out, exc)
                    continue
                _repeat_table(survey, sheet, out, page, name, "PARENT_KEY", by_index)
    elif repeat_pages:
        _read_repeats(survey, filename, data, out, repeat_pages, by_index, max_rows, limits)
    return out


def _table_problems(out: SubmissionFile, exc: TableError) -> None:
    out.file_problems += list(exc.problems)
    out.problems += [SubmissionProblem(p.row, p.column, Text(p.message, p.message), p.sheet)
                     for p in exc.problems]


def _odk_zip(data: bytes, filename: str, pages: Sequence[Any], out: SubmissionFile,
             max_bytes: int) -> dict[str, Any] | None:
    """ODK Central's ZIP export: ``""`` -> (name, bytes) of the main CSV and page name ->
    (name, bytes) of each repeat's CSV (``<form>-<repeat>.csv``); None for any other file
    (an XLSX is a ZIP too); problems are listed in ``out``."""
    if data[:4] != b"PK\x03\x04":
        return None
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist() if not i.is_dir()]
    except zipfile.BadZipFile:
        return None
    csvs = [i for i in infos if i.filename.lower().endswith(".csv")]
    if not csvs or any(i.filename == "[Content_Types].xml" for i in infos):
        return None
    for info in infos:
        if info not in csvs:  # attachments (media/...) of the submissions
            out.warnings.append(_problem(None, None, f"{info.filename}：不是 CSV，未导入",
                                         f"{info.filename}: not a CSV; not imported"))
    if sum(i.file_size for i in csvs) > max_bytes:
        out.problems.append(_problem(None, None, f"解压后超过 {max_bytes // 2**20} MB",
                                     f"larger than {max_bytes // 2**20} MB unpacked"))
        return None
    out_parts: dict[str, Any] = {}
    repeats = {p.name for p in pages}
    for info in csvs:
        stem = info.filename.rsplit("/", 1)[-1][:-4]
        repeat = stem.rsplit("-", 1)[-1] if "-" in stem else None
        key = repeat if repeat in repeats else ""
        if key in out_parts:
            out.problems.append(_problem(
                None, None, f"ZIP 中有多个{'主表' if not key else key} CSV：{info.filename}",
                f"the ZIP holds more than one {'main' if not key else key!r} CSV: "
                f"{info.filename}"))
            continue
        out_parts[key] = (info.filename, archive.read(info))
    if "" not in out_parts and not out.problems:
        out.problems.append(_problem(None, None, "ZIP 中没有主表 CSV",
                                     "the ZIP holds no main CSV"))
    return out_parts


def _read_repeats(survey: Survey, filename: str, data: bytes, out: SubmissionFile,
                  pages: Sequence[Any], by_index: Mapping[str, Submission], max_rows: int,
                  limits: Limits) -> None:
    """KoboToolbox's XLSX: one sheet per repeat (its name, cut to Excel's 31 characters),
    each row linked to its submission by ``_parent_index``."""
    if data[:4] != b"PK\x03\x04":
        out.warnings.append(_problem(
            None, None, "重复组只能从 KoboToolbox 的 XLSX 导出或 ODK Central 的 ZIP 导出中读取；"
            "此文件中的重复组未导入", "repeats are read from KoboToolbox XLSX exports and ODK "
            "Central ZIP exports only; this file's repeats are not imported"))
        return
    names = {p.name[:31]: p for p in pages}
    try:
        sheets = read_sheets(data, filename, list(names), max_rows=max_rows, limits=limits)
    except TableError as exc:
        _table_problems(out, exc)
        return
    for sheet, table in sheets.items():
        _repeat_table(survey, table, out, names[sheet], sheet, "_parent_index", by_index)


def _repeat_table(survey: Survey, table: Table, out: SubmissionFile, page: Any, sheet: str,
                  link: str, owners: Mapping[str, Submission]) -> None:
    """One repeat's rows (a Kobo sheet, an ODK CSV) as instance keys of the submission
    each row's ``link`` column names."""
    fields = {f.name: f for f in _answered(survey) if f.page is page}
    reader = _Reader(survey, table, out, fields, sheet=sheet)
    if link not in table.header:
        reader.problem(table.header_row, link, f"没有 {link} 列", f"no {link} column")
        return
    parent = table.header.index(link)
    counts: dict[int, int] = {}
    for row in table.rows:
        owner = owners.get(row.values[parent].strip())
        if owner is None:
            reader.problem(row.number, link, f"主表中没有这个 {link}",
                           f"no row of the main table has this {link}")
            continue
        i = counts[id(owner)] = counts.get(id(owner), 0) + 1
        if i > page.repeat.maximum:
            reader.problem(row.number, None, f"“{page.name}”最多重复 "
                           f"{page.repeat.maximum} 次",
                           f"{page.name!r} repeats at most {page.repeat.maximum} times")
            continue
        answers, where = reader.answers(row.number, row.values, i)
        owner.answers.update(answers)
        owner.columns.update(where)
        owner.places.update({k: (sheet, row.number) for k in where})
        if page.repeat.count is None:
            owner.answers[instance_key(page.name, 0)] = i


# ------------------------------------------------------------------ campaigns


@dataclass(frozen=True)
class CampaignInfo:
    """A campaign as this package needs it: its survey, district and status."""

    code: str
    district: str | None
    survey_code: str | None
    status: str


@dataclass(frozen=True)
class InvitationInfo:
    """An invitation found by its code: its public id and prefill (known answers)."""

    public_id: str
    prefill: Mapping[str, Any]


class InvitationDirectory(Protocol):
    """What the fieldwork package offers an import: campaigns and invitation codes."""

    def campaign(self, db: Session, code: str) -> CampaignInfo | None:
        """The campaign of a code, or None."""

    def campaigns(self, db: Session, survey_code: str, district: str | None
                  ) -> list[CampaignInfo]:
        """Campaigns of a survey (of one district, or all with None)."""

    def invitation(self, db: Session, campaign: str, code: str) -> InvitationInfo | None:
        """The campaign's live invitation behind a plain code, or None."""

    def answered(self, db: Session, campaign: str, public_id: str, session_id: int) -> None:
        """Note that the invitation's survey was answered in ``session_id`` (its link and
        status, as entering the code on the pages does)."""


def invitation_directory(settings: Mapping[str, Any]) -> InvitationDirectory | None:
    """The directory the installed packages offer (entry point
    ``learningcity.invitation_directory``, a factory of the app settings), or None."""
    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    return found[0].load()(settings) if found else None


# ------------------------------------------------------------------ storing


@dataclass
class ImportResult:
    """What an import did: new sessions, instances found already stored, rejected rows
    skipped, and every problem (then nothing was stored) and warning."""

    survey_code: str
    filename: str
    source: str
    campaign: str | None
    rows: int = 0
    new: int = 0
    already: int = 0
    skipped: int = 0
    problems: list[SubmissionProblem] = field(default_factory=list)
    warnings: list[SubmissionProblem] = field(default_factory=list)
    file_problems: list[Problem] = field(default_factory=list)
    session_ids: list[int] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def stored(self) -> bool:
        return self.ok and not self.dry_run and self.new > 0


class _Undo(Exception):
    """Rolls the import's savepoint back (a problem, or a dry run)."""


def _campaign_problems(db: Session, survey_code: str, campaign: str | None,
                       directory: InvitationDirectory | None, data: SubmissionFile,
                       district: str | None) -> tuple[CampaignInfo | None,
                                                      list[SubmissionProblem]]:
    if campaign is None:
        if data.has_invitation_codes and any(s.invitation_code for s in data.submissions):
            return None, [_problem(None, INVITATION_COLUMN,
                                   "文件中有邀请码：请指定调查活动",
                                   "the file has invitation codes: give the campaign")]
        return None, []
    if directory is None:
        return None, [_problem(None, None, "无法查找调查活动（未安装实地调查模块）",
                               "campaigns cannot be looked up (no fieldwork package)")]
    info = directory.campaign(db, campaign)
    if info is None or (district is not None and info.district != district):
        return None, [_problem(None, None, f"没有调查活动 {campaign}",
                               f"no campaign {campaign!r}")]
    if info.survey_code != survey_code:
        return None, [_problem(None, None, f"调查活动 {campaign} 使用的不是问卷 {survey_code}",
                               f"campaign {campaign!r} does not use survey {survey_code!r}")]
    if info.status == "closed":
        return None, [_problem(None, None, f"调查活动 {campaign} 已结束，不能再导入回答",
                               f"campaign {campaign!r} is closed: no more answers are taken")]
    return info, []


def _stored(db: Session, survey_code: str, ids: Sequence[str]) -> dict[str, SurveySession]:
    out: dict[str, SurveySession] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start:start + 500])
        out.update({s.instance_id: s for s in db.scalars(sa.select(SurveySession).where(
            SurveySession.survey_code == survey_code, SurveySession.instance_id.in_(chunk)))})
    return out


def _same(survey: Survey, stored: SurveySession, submission: Submission,
          campaign: str | None, invitation: str | None) -> bool:
    """Whether a stored session holds this submission's answers (prefilled answers the
    form left blank stay as they were), campaign and invitation."""
    answers = stored.answer_dict()
    prefilled = {k: v for k, v in answers.items() if k in set(stored.prefilled or [])
                 and k not in submission.answers}
    return (stored.campaign, stored.invitation) == (campaign, invitation) and \
        stored.status == "finished" and \
        clean_answers(survey, {**prefilled, **submission.answers}) == answers


def import_submissions(db: Session, survey_code: str, filename: str, data: bytes,
                       actor: str, *, campaign: str | None = None,
                       directory: InvitationDirectory | None = None,
                       district: str | None = None, dry_run: bool = False,
                       max_bytes: int = MAX_SUBMISSIONS_BYTES,
                       max_rows: int = MAX_SUBMISSIONS_ROWS,
                       limits: Limits = LIMITS) -> ImportResult:
    """Store a submissions export as finished sessions of the published ``survey_code``.

    All or nothing: any problem in any row stores nothing and is listed (row, column,
    zh and en). Idempotent by instance ID: an ID stored before with the same answers
    counts as ``already``; with other answers it is a problem. ``campaign`` links each
    session to the campaign and the row's ``invitation_code`` to its invitation (through
    ``directory``); ``district`` restricts the campaign to one district (district staff).
    ``dry_run`` checks everything and stores nothing. Audited, except a dry run.
    """
    definition = services.published_survey(db, survey_code)
    if definition is None:
        raise ValueError(f"no published survey {survey_code!r}")
    survey = services.definition_survey(definition)
    read = read_submissions(survey, filename, data, max_bytes=max_bytes, max_rows=max_rows,
                            limits=limits)
    result = ImportResult(survey_code, filename, read.source, campaign,
                          rows=len(read.submissions), problems=list(read.problems),
                          warnings=list(read.warnings), file_problems=read.file_problems,
                          dry_run=dry_run)
    info, problems = _campaign_problems(db, survey_code, campaign, directory, read, district)
    result.problems += problems
    if campaign is not None and info is not None and not read.has_invitation_codes:
        result.warnings.append(_problem(
            None, INVITATION_COLUMN,
            "文件中没有 invitation_code 列：这些回答属于调查活动，但不计入任何邀请的进度",
            "the file has no invitation_code column: the answers belong to the campaign but "
            "count in no invitation's progress"))
    if not result.file_problems:
        _store_all(db, survey, read, result, info, directory)
    if not dry_run:
        audit.record(db, actor=actor, action=IMPORT_ACTION, target=survey_code, detail={
            "file": filename[:200], "sha256": read.sha256, "source": read.source,
            "campaign": campaign, "rows": result.rows, "new": result.new if result.ok else 0,
            "already": result.already, "skipped": result.skipped,
            "problems": len(result.problems)})
        db.flush()
    return result


def _store_all(db: Session, survey: Survey, read: SubmissionFile, result: ImportResult,
               info: CampaignInfo | None, directory: InvitationDirectory | None) -> None:
    """Check and store every submission in one savepoint, rolled back on any problem."""
    stored = _stored(db, result.survey_code, [s.instance_id for s in read.submissions])
    seen: dict[str, Submission] = {}
    codes: dict[str, int] = {}
    finished: set[str] = set()
    withdrawn: set[str] = set()
    if info is not None:
        finished = services.finished_invitations(db, info.code)
        withdrawn = services.withdrawn_invitations(db, info.code)
    new_ids: list[int] = []
    bad_rows = {p.row for p in read.problems if p.sheet is None}
    try:
        with db.begin_nested():
            for s in read.submissions:
                if s.rejected:
                    result.skipped += 1
                    result.warnings.append(_problem(
                        s.row, None, "服务器审核为“拒绝”，未导入",
                        "rejected in the server's review; not imported"))
                    continue
                first = seen.get(s.instance_id)
                if first is not None:
                    if first.answers != s.answers or first.invitation_code != \
                            s.invitation_code:
                        result.problems.append(_problem(
                            s.row, None, f"实例 ID {s.instance_id} 在第 {first.row} 行已出现，"
                            "但回答不同", f"instance ID {s.instance_id!r} is also on row "
                            f"{first.row}, with other answers"))
                    else:
                        result.already += 1
                    continue
                seen[s.instance_id] = s
                invitation = _invitation(db, s, info, directory, codes, result,
                                         read.has_invitation_codes)
                if invitation is False or s.row in bad_rows:
                    _answer_problems(survey, s, result,
                                     invitation.prefill if invitation else {})
                    continue
                public_id = invitation.public_id if invitation else None
                existing = stored.get(s.instance_id)
                if existing is not None:
                    if _same(survey, existing, s, info.code if info else None, public_id):
                        result.already += 1
                    else:
                        result.problems.append(_problem(
                            s.row, None, f"实例 ID {s.instance_id} 已导入过，但回答、调查活动或"
                            "邀请不同（不会覆盖）", f"instance ID {s.instance_id!r} was "
                            "imported before with other answers, campaign or invitation (it "
                            "is not overwritten)"))
                    continue
                if public_id is not None and public_id in withdrawn:
                    result.problems.append(_problem(
                        s.row, INVITATION_COLUMN, "受访者已撤回这份邀请的回答",
                        "the resident withdrew this invitation's answers"))
                    _answer_problems(survey, s, result, invitation.prefill)
                    continue
                if public_id is not None and public_id in finished:
                    result.problems.append(_problem(
                        s.row, INVITATION_COLUMN, "这个邀请码已经答完问卷",
                        "this invitation code has already answered the survey"))
                    _answer_problems(survey, s, result, invitation.prefill)
                    continue
                session = _store_one(db, survey, s, result, info, invitation)
                if session is not None:
                    new_ids.append(session.id)
                    if info is not None and invitation and directory is not None:
                        directory.answered(db, info.code, invitation.public_id, session.id)
            if result.problems or result.dry_run:
                raise _Undo
    except _Undo:
        pass
    result.new = len(new_ids)
    result.session_ids = new_ids if result.ok and not result.dry_run else []


def _invitation(db: Session, s: Submission, info: CampaignInfo | None,
                directory: InvitationDirectory | None, codes: dict[str, int],
                result: ImportResult, has_codes: bool) -> InvitationInfo | bool | None:
    """The row's invitation (None without a campaign or without the code column); False
    once a problem with it is listed."""
    if info is None or directory is None or not has_codes:
        return None
    code = (s.invitation_code or "").strip()
    if not code:
        result.problems.append(_problem(s.row, INVITATION_COLUMN, "没有邀请码",
                                        "no invitation code"))
        return False
    found = directory.invitation(db, info.code, code)
    if found is None:
        result.problems.append(_problem(s.row, INVITATION_COLUMN,
                                        f"调查活动 {info.code} 中没有这个邀请码",
                                        f"campaign {info.code!r} has no such invitation code"))
        return False
    if found.public_id in codes:
        result.problems.append(_problem(
            s.row, INVITATION_COLUMN, f"同一个邀请码在第 {codes[found.public_id]} 行已出现",
            f"the same invitation code is on row {codes[found.public_id]}"))
        return False
    codes[found.public_id] = s.row
    return found


def _answer_problems(survey: Survey, s: Submission, result: ImportResult,
                     prefill: Mapping[str, Any] | None = None, *,
                     answers: Mapping[str, Any] | None = None) -> bool:
    """List the problems of a row's answers (``answers``, or the row's over the known
    ``prefill``) with the sheet, row and column each came from, leaving out a column
    the row already has a problem in; True when there were any."""
    if answers is None:
        names = {f.name for f in survey.fields()}
        answers = {**{k: v for k, v in (prefill or {}).items() if k in names}, **s.answers}
    listed = {(p.sheet, p.row, p.column) for p in result.problems}
    found = False
    for p in check_answers(survey, answers):
        if p.name not in s.answers and p.name in (prefill or {}):
            continue
        sheet, row = s.places.get(p.name, (None, s.row))
        column = s.columns.get(p.name, p.name)
        found = True
        if (sheet, row, column) not in listed:
            result.problems.append(SubmissionProblem(row, column, p.message, sheet))
    return found


def _store_one(db: Session, survey: Survey, s: Submission, result: ImportResult,
               info: CampaignInfo | None, invitation: InvitationInfo | None
               ) -> SurveySession | None:
    """Start a session as the pages do (prefill, district), store the row's answers
    over it, check them all and finish at the form's end; None after listing the
    problems."""
    session, _token = services.start_survey_session(
        db, result.survey_code, campaign=info.code if info else None,
        invitation=invitation.public_id if invitation else None,
        prefill=dict(invitation.prefill) if invitation else None,
        district=info.district if info else None, token=new_token())
    answered = s.ended_at or utcnow()
    services.store_answers(db, session, s.answers, answered_at=answered)
    if _answer_problems(survey, s, result, answers=session.answer_dict()):
        return None
    services.finish(db, session, finished_at=answered)
    session.source, session.instance_id = result.source, s.instance_id
    session.created_at = s.started_at or answered
    db.flush()
    return session
