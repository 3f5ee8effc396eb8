"""A survey definition written as a real XLSForm (``learningcity survey export-xlsform``):
pyxform converts it and ODK Collect / KoboCollect field it, and the reader
(:func:`surveys.xlsform.read_xlsform`) gives the same survey back.

The layout is the one shared with the reader (``surveys/README.md``, "The XLSForm
workbook"): a page is a ``field-list`` group (a repeat page a ``begin_repeat`` with
``field-list``), a rating grid a nested ``field-list`` group with the custom column
``rating_scale`` whose items are ``likert`` selects carrying ``item_code`` and
``reverse``, a month a ``date`` with ``month-year``, number bounds a constraint
``. >= MIN and . <= MAX[ and (X)]``, "other, please specify" a ``Q_other`` text row, and
languages ``label::中文 (zh)``, ``label::English (en)``, ``label::<Name> (<code>)``.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from babel import Locale, UnknownLocaleError

from tabular.writing import Sheet, write_workbook

from .definition import META_TYPES, OTHER, OTHER_SUFFIX, Page, Question, Survey, Text

__all__ = ["INVITATION_CODE", "language_column", "with_invitation_code", "write_xlsform",
           "xlsform_bytes"]

#: the default language of every exported form (settings ``default_language``)
DEFAULT_LANGUAGE = "中文 (zh)"
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}
#: repeats without a ``repeat_max`` column allow this many instances (Repeat.maximum)
REPEAT_MAX = 30
#: names pyxform refuses on the survey sheet
RESERVED_NAMES = ("meta",)
#: the question ``--with-invitation-code`` adds first: the submissions importer matches
#: its column to the campaign's invitations
INVITATION_CODE = Question("invitation_code", "text", Text("邀请码", "Invitation code"),
                           required=True)
INVITATION_PAGE = "p_invitation_code"
_SELECT = {"single_choice": "select_one", "multiple_choice": "select_multiple"}
_SAME_TYPE = ("integer", "decimal", "text", "date", "note", "time", "datetime", "range",
              "calculate", "start", "end", "today", "deviceid")
#: questions with no control on a screen (recorded by the device or computed)
_HIDDEN = (*META_TYPES, "calculate")
#: texts of the "other, please specify" row (the reader folds the row back into
#: ``other``; other languages get the English or, for zh-*, the Chinese)
_OTHER_LABEL = {"zh": "请注明其他", "en": "Please specify"}
#: column order of the sheets (a language column sits at its base name)
_ORDER = ("type", "list_name", "name", "label", "hint", "required", "required_message",
          "relevant", "constraint", "constraint_message", "appearance", "choice_filter",
          "parameters", "calculation", "default", "read_only", "repeat_count", "repeat_max",
          "rating_scale", "item_code", "reverse", "form_id", "version", "form_title",
          "form_title_en", "default_language")
_WIDTHS = {"type": 28, "name": 22, "relevant": 40, "constraint": 36, "appearance": 14,
           "calculation": 30, "choice_filter": 30}


def language_column(base: str, code: str) -> str:
    """The XLSForm column of one language: ``label::中文 (zh)``, ``hint::Français (fr)``."""
    return f"{base}::{_language_name(code)} ({code})"


def _language_name(code: str) -> str:
    if code in LANGUAGE_NAMES:
        return LANGUAGE_NAMES[code]
    try:
        locale = Locale.parse(code, sep="-")
    except (ValueError, UnknownLocaleError):
        return code
    name = locale.get_language_name(locale) or code
    return name[:1].upper() + name[1:]


def _texts(survey: Survey) -> Iterable[Text | None]:
    yield survey.title
    for choices in survey.choice_lists.values():
        for c in choices:
            yield c.label
    for page in survey.pages:
        yield page.title
        for q in page.questions:
            yield from (q.label, q.hint, q.constraint_message, q.required_message)
            for item in q.items:
                yield item.label


def _languages(survey: Survey) -> tuple[str, ...]:
    """zh, en, then every further language of the survey's texts (sorted, as JSON reads
    them), so each language gets its column."""
    more = {code for t in _texts(survey) if t is not None for code, _ in t.more}
    return ("zh", "en", *sorted(more))


class _Rows:
    """The rows of one sheet as dicts, and its columns in the order first used."""

    def __init__(self, languages: tuple[str, ...], columns: Iterable[str]) -> None:
        self.languages = languages
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = list(columns)

    def add(self, **cells: Any) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for key, value in cells.items():
            self.put(row, key, value)
        self.rows.append(row)
        return row

    def put(self, row: dict[str, Any], key: str, value: Any) -> None:
        if isinstance(value, Text):
            # every language gets the column (pyxform warns about a language that lacks
            # one); a missing translation is an empty cell
            for code in self.languages:
                column = language_column(key, code)
                if column not in self.columns:
                    self.columns.append(column)
                if value.language(code):
                    row[column] = value.language(code)
            return
        if value is None or value == "":
            return
        if key not in self.columns:
            self.columns.append(key)
        row[key] = value

    def frame(self) -> pd.DataFrame:
        """The rows, known columns in :data:`_ORDER`, others (choice extras) after them."""
        def rank(column: str) -> tuple[int, int]:
            base = column.split("::")[0]
            known = _ORDER.index(base) if base in _ORDER else len(_ORDER)
            return known, self.columns.index(column)

        columns = sorted(self.columns, key=rank)
        return pd.DataFrame([[row.get(c) for c in columns] for row in self.rows],
                            columns=columns, dtype=object)


def _bounds(q: Question) -> str | None:
    """The constraint of a number question: its bounds, then its own constraint."""
    parts = []
    if q.type in ("integer", "decimal"):
        if q.minimum is not None:
            parts.append(f". >= {_number(q.minimum)}")
        if q.maximum is not None:
            parts.append(f". <= {_number(q.maximum)}")
    text = " and ".join(parts)
    if q.constraint is None:
        return text or None
    return f"{text} and ({q.constraint})" if text else q.constraint


def _number(value: int | float) -> str:
    """A number as XPath writes it: no exponent (``1e-05`` is no XPath number)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def _parameters(q: Question) -> str | None:
    if q.type != "range":
        return None
    parts = [f"{key}={_number(value)}" for key, value in
             (("start", q.minimum), ("end", q.maximum), ("step", q.step)) if value is not None]
    return " ".join(parts) or None


def _appearance(q: Question) -> str | None:
    if q.type != "month":
        return q.appearance
    words = [w for w in (q.appearance or "").split() if w != "month-year"]
    return " ".join(["month-year", *words])


def _question(rows: _Rows, q: Question) -> None:
    required = "yes" if q.required else None
    if q.type == "rating_grid":
        rows.add(type="begin_group", name=q.name, label=q.label, hint=q.hint,
                 relevant=q.relevant, appearance="field-list", rating_scale=q.choices)
        for item in q.items:
            rows.add(type=f"select_one {q.choices}", name=item.name, label=item.label,
                     required=required, required_message=q.required_message,
                     appearance="likert", item_code=item.item_code,
                     reverse="yes" if item.reverse else "no")
        rows.add(type="end_group", name=q.name)
        return
    if q.type in _SELECT:
        kind = f"{_SELECT[q.type]} {q.choices}"
    elif q.type == "month":
        kind = "date"
    elif q.type in _SAME_TYPE:
        kind = q.type
    else:
        raise ValueError(f"question {q.name!r}: type {q.type!r} has no XLSForm form")
    rows.add(type=kind, name=q.name, label=q.label, hint=q.hint, required=required,
             required_message=q.required_message, relevant=q.relevant,
             constraint=_bounds(q), constraint_message=q.constraint_message,
             appearance=_appearance(q), choice_filter=q.choice_filter,
             parameters=_parameters(q), calculation=q.calculation, default=q.default,
             read_only="yes" if q.read_only else None)
    if q.other and q.type in _SELECT:
        more = {code: _OTHER_LABEL["zh" if code.startswith("zh") else "en"]
                for code in rows.languages}
        label = Text(more.pop("zh"), more.pop("en"), tuple(more.items()))
        rows.add(type="text", name=q.name + OTHER_SUFFIX, label=label,
                 relevant=f"selected(${{{q.name}}}, '{OTHER}')")


def _page(rows: _Rows, page: Page) -> None:
    if page.repeat is None and all(q.type in _HIDDEN for q in page.questions):
        # ODK refuses a group with nothing to show: recorded and computed questions
        # alone stand at the top level (the reader makes each its own page again)
        for q in page.questions:
            _question(rows, q)
        return
    if page.repeat is None:
        rows.add(type="begin_group", name=page.name, label=page.title,
                 relevant=page.relevant, appearance="field-list")
    else:
        rows.add(type="begin_repeat", name=page.name, label=page.title,
                 relevant=page.relevant, appearance="field-list",
                 repeat_count=page.repeat.count,
                 repeat_max=(page.repeat.maximum if page.repeat.maximum != REPEAT_MAX
                             else None))
    for q in page.questions:
        _question(rows, q)
    rows.add(type="end_group" if page.repeat is None else "end_repeat", name=page.name)


def _sheets(survey: Survey) -> list[Sheet]:
    languages = _languages(survey)
    head = ["type", "name", *(language_column("label", c) for c in languages)]
    survey_rows = _Rows(languages, head)
    for page in survey.pages:
        _page(survey_rows, page)
    choice_rows = _Rows(languages, ["list_name", "name",
                                    *(language_column("label", c) for c in languages)])
    for list_name, choices in survey.choice_lists.items():
        for c in choices:
            row = choice_rows.add(list_name=list_name, name=c.name, label=c.label)
            for column, value in c.extra:
                choice_rows.put(row, column, value)
    settings = _Rows(languages, ())
    row = settings.add(form_id=survey.id, version=survey.form_version or survey.version,
                       form_title=survey.title.zh, form_title_en=survey.title.en,
                       default_language=DEFAULT_LANGUAGE)
    for code, title in survey.title.more:
        settings.put(row, f"form_title_{code}", title)

    def widths(columns: list[str]) -> dict[str, float]:
        return {c: _WIDTHS.get(c, 44 if c.startswith("label::") else 18) for c in columns}

    return [Sheet(name, rows.frame(), column_widths=widths(rows.columns), wrap_text=True,
                  freeze_panes="C2" if name != "settings" else None)
            for name, rows in (("survey", survey_rows), ("choices", choice_rows),
                               ("settings", settings))]


def xlsform_bytes(survey: Survey) -> bytes:
    """The XLSForm workbook of a definition (sheets ``survey``, ``choices``, ``settings``;
    text cells are text, never formulas).

    ValueError for a name XLSForm reserves (``meta``: pyxform refuses the form)."""
    names = [p.name for p in survey.pages] + [q.name for q in survey.questions]
    for name in names + [f.name for f in survey.fields()]:
        if name in RESERVED_NAMES:
            raise ValueError(f"{name!r}: XLSForm reserves this name for the form's own "
                             "data (pyxform refuses it); rename the page or question")
    return write_workbook(_sheets(survey))


def write_xlsform(survey: Survey, path: str | Path) -> None:
    """Write a definition as an XLSForm workbook (:func:`xlsform_bytes`) to ``path``."""
    Path(path).write_bytes(xlsform_bytes(survey))


def with_invitation_code(survey: Survey) -> Survey:
    """The survey with a first page asking the required text ``invitation_code`` (邀请码),
    so an enumerator records a campaign invitation the submissions importer matches.

    ValueError when the survey already has a question or page of that name."""
    taken = {p.name for p in survey.pages} | {f.name for f in survey.fields()} | {
        q.name for q in survey.questions}
    for name in (INVITATION_CODE.name, INVITATION_PAGE):
        if name in taken:
            raise ValueError(f"survey {survey.id!r} already has {name!r}")
    page = Page(INVITATION_PAGE, INVITATION_CODE.label, (INVITATION_CODE,))
    return replace(survey, pages=(page, *survey.pages))
