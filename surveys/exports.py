"""Responses as files: CSV (UTF-8 with BOM), XLSX and SPSS ``.sav``, plus a codebook.

One row per respondent, one column per *variable*.  Variables come from the
answer slots of the survey (:meth:`Survey.fields`):

* single choice and rating items: one variable; CSV/XLSX hold the choice name,
  SPSS a number with value labels (the choice name itself when every name of the
  list is a whole number, as on rating scales; otherwise the choice's position
  1..n in its list);
* multiple choice: one 0/1 variable per choice, ``<question>_<choice>``, blank
  when the question was not answered; the "other, please specify" text is the
  variable ``<question>_other_text`` (the answer key ``<question>_other``);
* numbers (also ``range``) as numbers, text as text, dates (also ``today``) as dates
  (ISO text in CSV), months as ``YYYY-MM`` text, times and date-times (also ``start``
  and ``end``) as ISO text in CSV and SPSS ``TIME``/``DATETIME`` values (the wall-clock
  time as recorded; the CSV keeps any UTC offset), ``calculate`` and ``deviceid`` as text.

A repeat page (asked once per instance; answers keyed ``name[i]``) is not in the main
table: it is a long table with one row per respondent and instance,
``respondent_id``, ``repeat`` (the page name), ``instance`` (1..n) and the page's
variables (:func:`repeat_rows`; ``repeat=NAME`` of :func:`csv_bytes` and
:func:`sav_bytes`, one sheet per repeat in the XLSX, one file per repeat in
:func:`zip_bytes`). Each instance is cleaned as the resident saw it (the page's
relevance, the repeat's own answers for ``${q}``); instances beyond the repeat's count
(``repeat_count``, or the number chosen, stored under ``page[0]``) are not exported.

Variable names are legal SPSS names (a letter first, then letters, digits and
``_``; at most 64 characters; unique ignoring case, across the main table and the
repeat tables; not a reserved word) and the same in every format, with one header row.
An answer key that is no legal SPSS name (``hh-size``, ``q.1``) is written with ``_``;
its variable label then starts with ``[hh-size]`` and the codebook's ``answer_key``
keeps it.  SPSS labels are Chinese, or English with ``labels="en"`` (or any further
language of the survey); the codebook (CSV, and the XLSX's ``codebook`` sheet) gives
every language of the survey (``label_zh``, ``label_en``, ``label_<code>``...), the
values and their labels.  In the ``.sav`` a missing answer says why:
user-missing ``-8`` (not asked: the skip logic passed it by) or ``-9`` (asked, not
answered), ``"-8"``/``"-9"`` in text variables (:func:`missing_codes`); text widths
come from the definition (:func:`text_width`).  The files are written by the project's one
export-writer registry (:mod:`tabular.writing`): text cells that a spreadsheet would run
as a formula (starting with ``= + - @``, tab or CR) are prefixed with ``'`` in CSV,
and stored as plain text cells in XLSX.

Answers are cleaned first (:func:`surveys.definition.clean_answers`): answers to
questions a respondent skipped are not exported, as in XLSForm tools.

With ``scores`` (the scale scores stored when each session finished, one
``{grid: {"sum", "n_answered", "theta", "se", ...}}`` per respondent) every
rating grid adds four numeric variables after the answers: ``<grid>_sum`` (sum
score, reverse keys mirrored, prorated), ``<grid>_n`` (items answered),
``<grid>_theta`` and ``<grid>_se`` (IRT EAP; blank without a calibration).
The scores are exported as stored, never recomputed.
"""
from __future__ import annotations

import datetime as dt
import functools
import io
import math
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from tabular.guard import guard_cell  # the project's one CSV-injection guard
from tabular.writing import Sheet, write_table, write_workbook

from . import expressions as E
from .answers import clean_answers, relevance
from .definition import (
    MAX_OTHER_TEXT,
    MAX_TEXT,
    Choice,
    Field,
    Page,
    Survey,
    Text,
    instance_key,
    split_key,
)

__all__ = ["CODEBOOK_COLUMNS", "LABEL_LANGUAGES", "NOT_ASKED", "NO_ANSWER", "RESPONSE_FILES",
           "SCORE_PARTS", "Variable", "codebook_bytes", "codebook_columns", "codebook_rows",
           "csv_bytes", "guard_cell", "missing_codes", "repeat_pages", "repeat_rows",
           "repeat_variables", "response_rows", "sav_bytes", "text_width", "variables",
           "write_codebook_csv", "write_csv", "write_sav", "write_xlsx", "xlsx_bytes",
           "zip_bytes"]

ID_VARIABLE = "respondent_id"
#: the key columns of a repeat's long table after the respondent id
REPEAT_VARIABLE = "repeat"
INSTANCE_VARIABLE = "instance"
SPSS_RESERVED = {"ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO",
                 "WITH"}
MAX_NAME = 64
#: the .sav's label languages (``labels`` of :func:`sav_bytes`)
LABEL_LANGUAGES = ("zh", "en")
#: labels of the .sav's user-missing codes (:func:`missing_codes`)
NOT_ASKED = Text("未询问（跳答）", "not asked (skip logic)")
NO_ANSWER = Text("未作答", "no answer")
SELECTED = Text("选中", "selected")
NOT_SELECTED = Text("未选", "not selected")
CODEBOOK_COLUMNS = ("variable", "answer_key", "page", "question", "type", "label_zh",
                    "label_en", "value", "value_label_zh", "value_label_en", "item_code",
                    "reverse", "relevant")
#: a text shown in the .sav of a calculation, a device id (characters; 3 bytes each)
CALCULATE_TEXT = 255
DEVICE_TEXT = 255
#: labels of the answers delivery records itself, when the form gives them none
RECORDED = {"start": Text("开始填写的时间", "time the form was started"),
            "end": Text("填完的时间", "time the form was finished"),
            "today": Text("填写日期", "date of filling in"),
            "deviceid": Text("设备编号", "device id")}
OTHER_SPECIFY = Text("其他，请注明", "other, please specify")
#: field kind -> variable kind for the kinds stored as they are
_KINDS = {"integer": "number", "decimal": "number", "range": "number", "text": "text",
          "calculate": "text", "deviceid": "text", "date": "date", "today": "date",
          "month": "month", "time": "time", "datetime": "datetime", "start": "datetime",
          "end": "datetime"}
#: the stored scale-score parts exported per rating grid: (key in the stored scores,
#: variable suffix, zh label, en label, SPSS print format)
SCORE_PARTS = (
    ("sum", "sum", "总分（反向题已转换，缺答按比例折算）",
     "sum score (reverse-keyed items mirrored, prorated when items are missing)", "F8.2"),
    ("n_answered", "n", "作答题数", "items answered", "F4.0"),
    ("theta", "theta", "IRT能力估计值θ（EAP，项目库已发布的校准；无校准时为空）",
     "IRT theta (EAP, the item bank's published calibration; blank without one)", "F8.3"),
    ("se", "se", "θ的标准误", "standard error of theta", "F8.3"),
)


@dataclass(frozen=True)
class Variable:
    """One column of the response files.

    ``kind``: ``id``, ``choice`` (coded), ``flag`` (0/1 for one choice of a multiple
    choice), ``number``, ``text``, ``date``, ``month``, ``time``, ``datetime``,
    ``score`` (a stored scale score), and in a repeat's table ``repeat`` (its name) and
    ``instance`` (1..n).  ``codes`` maps the stored choice names to SPSS codes;
    ``value_labels`` the SPSS codes to labels; ``table`` is the repeat page of a
    repeat's variable (None in the main table).
    """

    name: str
    kind: str
    label: Text
    field: Field | None = None
    #: for ``score`` variables: the rating grid and the key of the stored score
    scale: str | None = None
    part: str | None = None
    choice: str | None = None
    codes: tuple[tuple[str, int], ...] = ()
    value_labels: tuple[tuple[int, Text], ...] = ()
    measure: str = "nominal"
    all_choices: frozenset[str] = frozenset()
    table: str | None = None


def _choice_codes(choices: Sequence[Choice]) -> tuple[tuple[str, int], ...]:
    names = [c.name for c in choices]
    if all(re.fullmatch(r"-?[0-9]{1,9}", n) and str(int(n)) == n for n in names):
        return tuple((n, int(n)) for n in names)
    return tuple((n, k) for k, n in enumerate(names, start=1))


def _legal(base: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", base)
    name = re.sub(r"_+", "_", name).strip("_")
    if not name or not name[0].isalpha():
        name = "v_" + name
    name = name[:MAX_NAME].rstrip("_")
    return name + "_x" if name.upper() in SPSS_RESERVED else name


class _Names:
    def __init__(self) -> None:
        self.taken: set[str] = set()

    def claim(self, base: str) -> str:
        name = _legal(base)
        candidate, n = name, 1
        while candidate.lower() in self.taken:
            n += 1
            suffix = f"_{n}"
            candidate = name[:MAX_NAME - len(suffix)] + suffix
        self.taken.add(candidate.lower())
        return candidate


def repeat_pages(survey: Survey) -> tuple[Page, ...]:
    """The survey's repeat pages, each exported as a long table of its own."""
    return tuple(p for p in survey.pages if p.repeat is not None)


def _join(head: Text, tail: Text) -> Text:
    """``head：tail`` in every language of either (English, then Chinese, standing in
    for a language one of them lacks)."""
    def side(t: Text, code: str) -> str:
        return t.language(code) or t.en or t.zh

    codes = dict.fromkeys(c for t in (head, tail) for c, _ in t.more)
    return Text(f"{head.zh}：{tail.zh}", f"{head.en}: {tail.en}",
                tuple((c, f"{side(head, c)}: {side(tail, c)}") for c in codes))


def _keyed(label: Text, key: str, name: str) -> Text:
    """A variable's label, led by its answer key when the variable name cannot show it."""
    if name.startswith(key):
        return label
    return Text(f"[{key}] {label.zh}", f"[{key}] {label.en}",
                tuple((c, f"[{key}] {t}") for c, t in label.more))


def _field_label(f: Field) -> Text:
    if not f.label.languages and f.kind in RECORDED:
        return RECORDED[f.kind]
    if not f.label.languages and f.kind == "calculate":
        return Text(f"计算值：{f.question.calculation}",
                    f"calculated: {f.question.calculation}")
    if f.kind != "other_text":
        return f.label
    q = f.question.label
    return Text(f.label.zh, f.label.en,
                tuple((c, f"{t} ({OTHER_SPECIFY.en})") for c, t in q.more))


def _field_variables(survey: Survey, fields: Sequence[Field], names: _Names,
                     table: str | None) -> list[Variable]:
    """The variables of some answer slots: answer keys claim their names first, derived
    columns (flags, specify texts) second."""
    out: list[Variable] = []
    direct = {f.name: names.claim(f.name) for f in fields
              if f.kind not in ("multiple_choice", "other_text")}
    for f in fields:
        label = _field_label(f)
        if f.kind in ("single_choice", "rating"):
            choices = survey.choice_lists[f.choice_list or ""]
            codes = _choice_codes(choices)
            labels = tuple((code, c.label) for (_, code), c in zip(codes, choices))
            out.append(Variable(direct[f.name], "choice", _keyed(label, f.name, direct[f.name]),
                                f, codes=codes, value_labels=labels, table=table,
                                measure="ordinal" if f.kind == "rating" else "nominal"))
        elif f.kind == "multiple_choice":
            choices = survey.choice_lists[f.choice_list or ""]
            every = frozenset(c.name for c in choices)
            for k, c in enumerate(choices, start=1):
                # a choice name without ASCII letters or digits is named by its position
                part = re.sub(r"[^A-Za-z0-9]+", "_", c.name).strip("_") or str(k)
                name = names.claim(f"{f.name}_{part}")
                out.append(Variable(name, "flag", _keyed(_join(label, c.label), f.name, name),
                                    f, choice=c.name, all_choices=every, table=table,
                                    value_labels=((0, NOT_SELECTED), (1, SELECTED))))
        elif f.kind == "other_text":
            name = names.claim(f"{f.name}_text")
            out.append(Variable(name, "text", _keyed(label, f.name, name), f, table=table))
        else:
            kind = _KINDS[f.kind]
            measure = "scale" if kind in ("number", "date", "time", "datetime") else "nominal"
            out.append(Variable(direct[f.name], kind, _keyed(label, f.name, direct[f.name]),
                                f, measure=measure, table=table))
    return out


def _plan(survey: Survey, scores: bool) -> tuple[list[Variable], dict[str, list[Variable]]]:
    """The main table's variables and each repeat's, named in one namespace (a variable
    name means one thing in every file of an export)."""
    names = _Names()
    repeats = repeat_pages(survey)
    id_var = Variable(names.claim(ID_VARIABLE), "id", Text("答卷编号", "Respondent id"))
    keys = []
    if repeats:
        keys = [Variable(names.claim(REPEAT_VARIABLE), "repeat", Text("重复组", "Repeat")),
                Variable(names.claim(INSTANCE_VARIABLE), "instance",
                         Text("第几次（重复组中的序号）", "Instance (number within the repeat)"),
                         measure="scale")]
    main = [f for f in survey.fields() if f.page.repeat is None]
    out = [id_var, *_field_variables(survey, main, names, None)]
    # the repeats' names before the scores', so they are the same with or without scores
    tables = {}
    for page in repeats:
        fields = [f for f in survey.fields() if f.page is page]
        tables[page.name] = [replace(v, table=page.name) for v in (id_var, *keys)] + \
            _field_variables(survey, fields, names, page.name)
    if scores:
        for page in survey.pages:
            for q in page.questions:
                if q.type != "rating_grid":
                    continue
                for key, suffix, zh, en, _fmt in SCORE_PARTS:
                    label = Text(f"{page.title.zh}（{q.name}）：{zh}",
                                 f"{page.title.en} ({q.name}): {en}")
                    out.append(Variable(names.claim(f"{q.name}_{suffix}"), "score", label,
                                        measure="scale", scale=q.name, part=key))
    return out, tables


def variables(survey: Survey, scores: bool = False) -> list[Variable]:
    """The columns of the main response table, in survey order (the id column first; no
    repeat page's questions); with ``scores`` the scale-score variables of every rating
    grid follow the answers."""
    return _plan(survey, scores)[0]


def repeat_variables(survey: Survey, repeat: str) -> list[Variable]:
    """The columns of one repeat's long table: ``respondent_id``, ``repeat``,
    ``instance``, then the repeat page's variables. ValueError for an unknown repeat."""
    tables = _plan(survey, False)[1]
    if repeat not in tables:
        raise ValueError(f"survey {survey.id!r} has no repeat {repeat!r}; its repeats: "
                         f"{', '.join(tables) or 'none'}")
    return tables[repeat]


Scores = Sequence[Mapping[str, Mapping[str, Any]]]


def response_rows(survey: Survey, responses: Sequence[Mapping[str, Any]],
                  ids: Sequence[Any] | None = None, clean: bool = True,
                  scores: Scores | None = None) -> tuple[list[Variable], list[list[Any]]]:
    """Variables and one row of Python values per respondent (None = missing).

    Choice variables hold the choice name; flags 0/1; dates ``datetime.date``; scale
    scores floats (``scores``: one ``{grid: {"sum", "n_answered", "theta", "se"}}`` per
    respondent, as stored). Raises ValueError naming the respondent and key for
    answers the survey does not know, values that are not choices of their list, or
    scores of a grid the survey does not have.
    """
    cols = variables(survey, scores=scores is not None)
    if ids is not None and len(ids) != len(responses):
        raise ValueError(f"{len(ids)} ids for {len(responses)} respondents")
    if scores is not None:
        if len(scores) != len(responses):
            raise ValueError(f"{len(scores)} score sets for {len(responses)} respondents")
        grids = {v.scale for v in cols if v.kind == "score"}
        for i, given in enumerate(scores):
            unknown = sorted(set(given) - grids)
            if unknown:
                raise ValueError(f"respondent {i + 1}: scores of unknown rating grid(s) "
                                 f"{', '.join(unknown)}")
    rows = []
    page_of = _pages_of(survey)
    for i, raw in enumerate(responses):
        main, _instances = _split(survey, raw, i, page_of)
        answers = clean_answers(survey, main) if clean else main
        row: list[Any] = []
        for var in cols:
            if var.kind == "score":
                row.append(_score(var, scores[i] if scores is not None else {}, i))
            else:
                row.append(_value(var, answers, i, ids))
        rows.append(row)
    return cols, rows


def _pages_of(survey: Survey) -> dict[str, Page]:
    """The page of every answer slot (read once per export)."""
    return {f.name: f.page for f in survey.fields()}


def _split(survey: Survey, raw: Mapping[str, Any], i: int,
           page_of: Mapping[str, Page] | None = None
           ) -> tuple[dict[str, Any], dict[str, dict[int, dict[str, Any]]]]:
    """A respondent's answers: those of the main pages, and per repeat page its
    instances' answers by plain name (instance 0: the number of instances chosen, under
    the page's name). ValueError naming the respondent for a key the survey does not
    know."""
    page_of = _pages_of(survey) if page_of is None else page_of
    repeats = {p.name for p in repeat_pages(survey)}
    main: dict[str, Any] = {}
    instances: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in repeats}
    unknown = []
    for key, value in raw.items():
        name, number = split_key(key)
        page = page_of.get(name)
        if number is None and page is not None and page.repeat is None:
            main[key] = value
        elif number == 0 and name in repeats:
            instances[name].setdefault(0, {})[name] = value
        elif number and page is not None and page.repeat is not None:
            instances[page.name].setdefault(number, {})[name] = value
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"respondent {i + 1}: unknown answer key(s) "
                         f"{', '.join(sorted(unknown))}")
    return main, instances


@functools.lru_cache(maxsize=256)
def _tree(text: str) -> E.Expr:
    return E.parse(text)


def _instance_count(page: Page, main: Mapping[str, Any], given: Mapping[int, Any],
                    i: int) -> int | None:
    """How many instances a respondent has of a repeat page: its count expression over
    the (cleaned) main answers, or the number chosen (instance 0); None when neither."""
    assert page.repeat is not None
    if page.repeat.count is not None:
        try:
            value = E.evaluate(_tree(page.repeat.count), main)
        except (E.ParseError, E.EvaluationError):
            return None
    else:
        value = given.get(0, {}).get(page.name)
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"respondent {i + 1}, {instance_key(page.name, 0)}: {value!r} is "
                         "not a number of instances") from None
    return max(0, min(page.repeat.maximum, int(number))) if math.isfinite(number) else None


def repeat_rows(survey: Survey, responses: Sequence[Mapping[str, Any]], repeat: str,
                ids: Sequence[Any] | None = None, clean: bool = True
                ) -> tuple[list[Variable], list[list[Any]]]:
    """One repeat's long table: variables and one row per respondent and instance
    (``respondent_id``, the repeat's name, the instance 1..n, its answers).

    Cleaned (the default), each instance is read as the resident saw it: the page's and
    its questions' relevance over the main answers and the instance's own; instances
    beyond the repeat's count are left out. ValueError as :func:`response_rows`.
    """
    cols, rows, _asked = _repeat_table(survey, responses, repeat, ids, clean)
    return cols, rows


def _alone(survey: Survey, page: Page) -> Survey:
    """The survey as one instance of a repeat page sees it: the main pages and this page
    asked once (so the answer rules apply to the instance unchanged)."""
    return replace(survey, pages=tuple(replace(p, repeat=None) if p is page else p
                                       for p in survey.pages
                                       if p.repeat is None or p is page))


def _repeat_table(survey: Survey, responses: Sequence[Mapping[str, Any]], repeat: str,
                  ids: Sequence[Any] | None, clean: bool
                  ) -> tuple[list[Variable], list[list[Any]], list[dict[str, bool]]]:
    """:func:`repeat_rows`, and for each row which of the instance's slots were asked."""
    cols = repeat_variables(survey, repeat)
    page = next(p for p in survey.pages if p.name == repeat)
    if ids is not None and len(ids) != len(responses):
        raise ValueError(f"{len(ids)} ids for {len(responses)} respondents")
    alone = _alone(survey, page)
    rows: list[list[Any]] = []
    asked: list[dict[str, bool]] = []
    page_of = _pages_of(survey)
    for i, raw in enumerate(responses):
        main, instances = _split(survey, raw, i, page_of)
        given = instances[repeat]
        main = clean_answers(survey, main) if clean else main
        count = _instance_count(page, main, given, i)
        present = [n for n in given if n > 0]
        if clean:
            shown = page.relevant is None or E.is_true(E.evaluate(_tree(page.relevant),
                                                                  main))
            count = (count if count is not None else max(present, default=0)) if shown else 0
        else:
            count = max([count or 0, *present])
        for n in range(1, count + 1):
            answers = {**main, **given.get(n, {})}
            asked.append(relevance(alone, answers))
            if clean:
                answers = clean_answers(alone, answers)
            row: list[Any] = []
            for var in cols:
                if var.kind == "repeat":
                    row.append(repeat)
                elif var.kind == "instance":
                    row.append(n)
                else:
                    row.append(_value(var, answers, i, ids, n))
            rows.append(row)
    return cols, rows, asked


def _score(var: Variable, given: Mapping[str, Mapping[str, Any]], i: int) -> float | None:
    value = (given.get(var.scale or "") or {}).get(var.part or "")
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"respondent {i + 1}, {var.scale} {var.part}: {value!r} is not a "
                         "number") from None
    return number if math.isfinite(number) else None


def _value(var: Variable, answers: Mapping[str, Any], i: int, ids: Sequence[Any] | None,
           instance: int | None = None) -> Any:
    if var.kind == "id":
        return ids[i] if ids is not None else i + 1
    assert var.field is not None
    value = answers.get(var.field.name)
    if value is None or value == "" or value == []:
        return None
    where = f"respondent {i + 1}, {instance_key(var.field.name, instance)}"
    if var.kind == "flag":
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where}: expected a list of choices, got {value!r}")
        unknown = [v for v in value if v not in var.all_choices]
        if unknown:
            raise ValueError(f"{where}: {unknown[0]!r} is not a choice of the question")
        return int(var.choice in value)
    if var.kind == "choice":
        if value not in dict(var.codes):
            raise ValueError(f"{where}: {value!r} is not a choice of the question")
        return value
    if var.kind in _PARSERS and isinstance(value, str):
        parse, shape = _PARSERS[var.kind]
        try:
            return parse(value)
        except ValueError:
            raise ValueError(f"{where}: {value!r} is not a {var.kind} ({shape})") from None
    return value


def _datetime(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    if len(text) < 16:  # a bare date is not a date-time
        raise ValueError(text)
    return value


#: kind -> (reader of the stored ISO text, the shape it wants)
_PARSERS = {"date": (dt.date.fromisoformat, "YYYY-MM-DD"),
            "time": (dt.time.fromisoformat, "HH:MM[:SS]"),
            "datetime": (_datetime, "YYYY-MM-DDTHH:MM[:SS][+HH:MM]")}


def _frame(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Rows as a frame of Python values (no NaN for None, ints stay ints)."""
    return pd.DataFrame([list(r) for r in rows], columns=list(names), dtype=object)


def csv_bytes(survey: Survey, responses: Sequence[Mapping[str, Any]],
              ids: Sequence[Any] | None = None, scores: Scores | None = None,
              repeat: str | None = None) -> bytes:
    """Responses as CSV in UTF-8 with a byte-order mark (so Excel reads the Chinese);
    with ``repeat`` the long table of that repeat page (:func:`repeat_rows`)."""
    if repeat is not None:
        cols, rows = repeat_rows(survey, responses, repeat, ids)
    else:
        cols, rows = response_rows(survey, responses, ids, scores=scores)
    return write_table("csv", _frame([v.name for v in cols], rows))


def _numeric_choices(cols: Sequence[Variable], rows: Sequence[Sequence[Any]]
                     ) -> list[list[Any]]:
    """Rows with the choices of all-number lists (rating scales) as numbers (XLSX)."""
    numeric = {v.name for v in cols if v.kind == "choice" and all(
        str(code) == name for name, code in v.codes)}
    return [[int(val) if cols[j].name in numeric and val is not None else val
             for j, val in enumerate(row)] for row in rows]


def _sheet_names(survey: Survey) -> dict[str, str]:
    """The sheet of each repeat: its page name, made unique within the workbook."""
    taken = {"responses", "codebook"}
    out = {}
    for page in repeat_pages(survey):
        name, n = page.name[:31], 1
        while name.lower() in taken:
            n += 1
            name = f"{page.name[:31 - len(str(n)) - 1]}_{n}"
        taken.add(name.lower())
        out[page.name] = name
    return out


def xlsx_bytes(survey: Survey, responses: Sequence[Mapping[str, Any]],
               ids: Sequence[Any] | None = None, scores: Scores | None = None) -> bytes:
    """Responses (sheet ``responses``), one sheet per repeat page (its long table, named
    after the page) and the codebook (sheet ``codebook``) in one workbook.

    Choice variables hold the choice name (a number for numeric names).
    """
    cols, rows = response_rows(survey, responses, ids, scores=scores)
    sheets = [Sheet("responses", _frame([v.name for v in cols], _numeric_choices(cols, rows)),
                    freeze_panes="B2")]
    for page_name, sheet_name in _sheet_names(survey).items():
        rcols, rrows = repeat_rows(survey, responses, page_name, ids)
        sheets.append(Sheet(sheet_name, _frame([v.name for v in rcols],
                                               _numeric_choices(rcols, rrows)),
                            freeze_panes="D2"))
    columns = codebook_columns(survey)
    codebook = [[r[c] for c in columns]
                for r in codebook_rows(survey, scores=scores is not None)]
    sheets.append(Sheet("codebook", _frame(columns, codebook), freeze_panes="B2"))
    return write_workbook(sheets)


def _say(text: Text, labels: str) -> str:
    """A label in the .sav's language (a further language falls back to English, then
    Chinese)."""
    if labels in LABEL_LANGUAGES:
        return text.language(labels)
    return text.language(labels) or text.en or text.zh


def _seconds(value: dt.time) -> float:
    return value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6


def _wall_clock(value: dt.datetime) -> dt.datetime:
    """The time as the device showed it (SPSS has no time zones; the CSV keeps them)."""
    return value.replace(tzinfo=None)


def sav_bytes(survey: Survey, responses: Sequence[Mapping[str, Any]],
              ids: Sequence[Any] | None = None, scores: Scores | None = None,
              labels: str = "zh", repeat: str | None = None) -> bytes:
    """Responses as an SPSS ``.sav`` file with variable and value labels in ``labels``
    (``zh``, the default, ``en``, or a further language of the survey); with ``repeat``
    the long table of that repeat page (:func:`repeat_rows`).

    Choice variables are numeric codes (see the module docstring); labels longer
    than SPSS allows (255 bytes for variables, 120 for values) are shortened, the
    codebook keeps them whole. A missing answer is a user-missing code that says why
    (:func:`missing_codes`): not asked (the skip logic passed the question by) or asked
    and not answered; dates, times and scale scores stay system-missing. Text widths
    come from the definition (:func:`text_width`), so every wave's file has the same
    widths.
    """
    languages = {code for t in _survey_texts(survey) for code in t.languages}
    if labels not in LABEL_LANGUAGES and labels not in languages:
        raise ValueError(f"labels: {labels!r}; use one of "
                         f"{', '.join([*LABEL_LANGUAGES, *sorted(languages - {'zh', 'en'})])}")
    if repeat is not None:
        cols, rows, asked = _repeat_table(survey, responses, repeat, ids, True)
    else:
        cols, rows = response_rows(survey, responses, ids, scores=scores)
        page_of = _pages_of(survey)
        asked = [relevance(survey, _split(survey, r, i, page_of)[0])
                 for i, r in enumerate(responses)]
    score_formats = {key: fmt for key, _s, _zh, _en, fmt in SCORE_PARTS}
    data: dict[str, Any] = {}
    formats: dict[str, str] = {}
    missing: dict[str, list[Any]] = {}
    value_labels: dict[str, dict[Any, str]] = {}
    widths: dict[str, int] = {}

    def why(var: Variable, i: int, codes: tuple[Any, Any]) -> Any:
        assert var.field is not None
        return codes[0] if not asked[i].get(var.field.name, True) else codes[1]

    for j, var in enumerate(cols):
        values = [row[j] for row in rows]
        codes = missing_codes(var)
        if var.kind == "choice":
            given = dict(var.codes)
            values = [why(var, i, codes) if v is None else given[v]
                      for i, v in enumerate(values)]
        elif var.kind in ("flag", "number"):
            values = [why(var, i, codes) if v is None else v for i, v in enumerate(values)]
        elif var.kind in ("text", "month"):
            values = ["" if v is None and codes is None else why(var, i, codes)
                      if v is None else str(v) for i, v in enumerate(values)]
        if codes is not None:
            missing[var.name] = list(codes)
        if var.kind == "choice":
            data[var.name] = pd.array(values, dtype="float64")
            formats[var.name] = f"F{max(8, _digits(dict(var.codes).values(), codes))}.0"
        elif var.kind == "flag":
            data[var.name] = pd.array(values, dtype="float64")
            formats[var.name] = "F2.0"
        elif var.kind == "number":
            data[var.name] = pd.array(values, dtype="float64")
            if var.field is not None and _whole(var.field):
                formats[var.name] = f"F{max(8, _digits([], codes))}.0"
        elif var.kind == "score":
            data[var.name] = pd.array(values, dtype="float64")
            formats[var.name] = score_formats[var.part or ""]
        elif var.kind in ("id", "instance") and all(isinstance(v, int) for v in values):
            data[var.name] = pd.array(values, dtype="float64")
            formats[var.name] = "F10.0" if var.kind == "id" else "F4.0"
        elif var.kind == "date":
            data[var.name] = pd.Series(values, dtype="object")
        elif var.kind == "time":
            data[var.name] = pd.array([None if v is None else _seconds(v) for v in values],
                                      dtype="float64")
            formats[var.name] = "TIME8"
        elif var.kind == "datetime":
            data[var.name] = pd.Series([None if v is None else _wall_clock(v)
                                        for v in values], dtype="object")
            formats[var.name] = "DATETIME20"
        else:
            data[var.name] = pd.Series(["" if v is None else str(v) for v in values],
                                       dtype="object")
            width = text_width(var)
            if width:
                widths[var.name] = width
        own = {code: _say(text, labels) for code, text in var.value_labels}
        if codes is not None:
            own.update({code: _say(text, labels)
                        for code, text in zip(codes, (NOT_ASKED, NO_ANSWER), strict=True)})
        if own:
            value_labels[var.name] = own
    return write_table(
        "sav", pd.DataFrame(data, columns=[v.name for v in cols]),
        file_label=_say(survey.title, labels), formats=formats,
        variable_labels={v.name: _say(v.label, labels) for v in cols},
        value_labels=value_labels, missing_values=missing, string_widths=widths,
        measures={v.name: v.measure for v in cols})


def _whole(f: Field) -> bool:
    """Whether a number slot only holds whole numbers (integer; a range of whole steps)."""
    q = f.question
    if f.kind == "integer":
        return True
    return f.kind == "range" and all(
        float(v).is_integer() for v in (q.minimum if q.minimum is not None else 1,
                                        q.step if q.step is not None else 1))


def zip_bytes(survey: Survey, responses: Sequence[Mapping[str, Any]],
              ids: Sequence[Any] | None = None, scores: Scores | None = None,
              fmt: str = "csv", labels: str = "zh") -> bytes:
    """Every table of an export in one ZIP: ``<survey>.<fmt>`` (one row per respondent),
    ``<survey>_<repeat>.<fmt>`` for each repeat page (one row per instance) and
    ``<survey>_codebook.csv``; ``fmt`` is ``csv`` or ``sav``."""
    if fmt not in ("csv", "sav"):
        raise ValueError(f"fmt: {fmt!r}; use csv or sav (xlsx holds every table itself)")

    def table(repeat: str | None) -> bytes:
        if fmt == "sav":
            return sav_bytes(survey, responses, ids, scores if repeat is None else None,
                             labels, repeat=repeat)
        return csv_bytes(survey, responses, ids, scores if repeat is None else None,
                         repeat=repeat)

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{survey.id}.{fmt}", table(None))
        for page in repeat_pages(survey):
            archive.writestr(f"{survey.id}_{page.name}.{fmt}", table(page.name))
        archive.writestr(f"{survey.id}_codebook.csv",
                         codebook_bytes(survey, scores=scores is not None))
    return buffer.getvalue()


def missing_codes(var: Variable) -> tuple[Any, Any] | None:
    """The .sav's user-missing codes of a variable: (not asked, not answered).

    ``-8`` and ``-9`` for coded, 0/1 and number variables (``-98``/``-99``... when those
    are choice codes or within a number question's range), ``"-8"`` and ``"-9"`` for text
    and month variables; None for the id, the repeat keys, dates, times and scale scores
    (system-missing)."""
    if var.kind in ("text", "month"):
        return ("-8", "-9")
    if var.kind not in ("choice", "flag", "number"):
        return None
    taken = {code for _name, code in var.codes}
    low = var.field.question.minimum if var.kind == "number" and var.field else None
    if var.kind == "number" and low is None:
        return _MISSING_PAIRS[-1]
    for pair in _MISSING_PAIRS:
        if not taken & set(pair) and (low is None or max(pair) < low):
            return pair
    return None


_MISSING_PAIRS = ((-8, -9), (-98, -99), (-998, -999), (-99999998, -99999999))


def _digits(codes: Any, missing: tuple[Any, Any] | None) -> int:
    """Print width of a whole-number variable: its widest code (or missing code), at
    least 2, at most 40 (SPSS's limit)."""
    every = [*codes, *(missing or ())]
    return min(40, max([2, *(len(str(int(c))) for c in every)]))


_TEXT_LIMIT = re.compile(r"^\s*string-length\(\s*\.\s*\)\s*(<=|<)\s*([0-9]{1,6})\s*$")


def text_width(var: Variable) -> int | None:
    """The storage width in bytes of a text variable in .sav files, from the definition:
    the characters a respondent may write (a ``string-length(.) <= n`` constraint, else
    the definition's limit for text or for an "other" text) times 3, the bytes of a
    Chinese character in UTF-8; a calculation or device id 255 characters; ``YYYY-MM``
    months 8; a repeat table's ``repeat`` its name. None for other variables (the width
    of their values)."""
    if var.kind == "month":
        return 8
    if var.kind == "repeat":
        return max(8, len((var.table or "").encode()))
    if var.kind != "text" or var.field is None:
        return None
    limit = {"other_text": MAX_OTHER_TEXT, "calculate": CALCULATE_TEXT,
             "deviceid": DEVICE_TEXT}.get(var.field.kind, MAX_TEXT)
    constraint = var.field.question.constraint if var.field.kind == "text" else None
    found = _TEXT_LIMIT.match(constraint or "")
    if found:
        n = int(found.group(2)) - (1 if found.group(1) == "<" else 0)
        limit = max(1, min(limit, n))
    return max(8, 3 * limit)


#: format -> the bytes of a response file in it
RESPONSE_FILES = {"csv": csv_bytes, "xlsx": xlsx_bytes, "sav": sav_bytes}


def write_csv(survey: Survey, responses: Sequence[Mapping[str, Any]], path: str | Path,
              ids: Sequence[Any] | None = None, scores: Scores | None = None,
              repeat: str | None = None) -> None:
    """:func:`csv_bytes` written to ``path``."""
    Path(path).write_bytes(csv_bytes(survey, responses, ids, scores, repeat))


def write_xlsx(survey: Survey, responses: Sequence[Mapping[str, Any]], path: str | Path,
               ids: Sequence[Any] | None = None, scores: Scores | None = None) -> None:
    """:func:`xlsx_bytes` written to ``path``."""
    Path(path).write_bytes(xlsx_bytes(survey, responses, ids, scores))


def write_sav(survey: Survey, responses: Sequence[Mapping[str, Any]], path: str | Path,
              ids: Sequence[Any] | None = None, scores: Scores | None = None,
              labels: str = "zh", repeat: str | None = None) -> None:
    """:func:`sav_bytes` written to ``path``."""
    Path(path).write_bytes(sav_bytes(survey, responses, ids, scores, labels, repeat))


def _survey_texts(survey: Survey) -> list[Text]:
    out = [survey.title]
    out += [c.label for choices in survey.choice_lists.values() for c in choices]
    for page in survey.pages:
        out.append(page.title)
        for q in page.questions:
            out += [t for t in (q.label, q.hint) if t is not None]
            out += [i.label for i in q.items]
    return out


def _more_languages(survey: Survey) -> list[str]:
    """The survey's languages beyond zh and en (sorted), each with codebook columns."""
    return sorted({code for t in _survey_texts(survey) for code, _ in t.more})


def codebook_columns(survey: Survey) -> tuple[str, ...]:
    """The codebook's columns: :data:`CODEBOOK_COLUMNS`, with ``label_<code>`` and
    ``value_label_<code>`` for each further language of the survey, and ``table`` (the
    repeat page of a repeat's variable, blank in the main table) when it has repeats."""
    more = _more_languages(survey)
    out: list[str] = []
    for column in CODEBOOK_COLUMNS:
        out.append(column)
        if column in ("label_en", "value_label_en"):
            out += [f"{column[:-3]}_{code}" for code in more]
    if repeat_pages(survey):
        out.append("table")
    return tuple(out)


def codebook_rows(survey: Survey, scores: bool = False) -> list[dict[str, str]]:
    """The codebook: one row per variable, then one row per value label of it and per
    user-missing code of the .sav (:func:`missing_codes`) (with ``scores``, also the
    scale-score variables, as in exports made with scores); the variables of each
    repeat's table follow those of the main table. Every language of the survey has
    its columns (:func:`codebook_columns`)."""
    columns = codebook_columns(survey)
    more = _more_languages(survey)
    main, tables = _plan(survey, scores)
    out: list[dict[str, str]] = []

    def blank() -> dict[str, str]:
        return {c: "" for c in columns}

    def labels(prefix: str, text: Text) -> dict[str, str]:
        return {f"{prefix}_{code}": text.language(code) for code in ("zh", "en", *more)}

    for var in [*main, *(v for table in tables.values() for v in table)]:
        if var.kind == "score":
            out.append(_score_codebook_row(survey, var, columns))
            continue
        f = var.field
        item = f.item if f is not None else None
        relevant = f.question.relevant if f is not None else None
        if f is not None and f.page.relevant:
            relevant = f"({f.page.relevant}) and ({relevant})" if relevant else f.page.relevant
        if f is not None and f.kind == "other_text":
            selected = f"selected(${{{f.question.name}}}, 'other')"
            relevant = f"({relevant}) and {selected}" if relevant else selected
        base = blank()
        base.update(variable=var.name, answer_key=f.name if f else "",
                    page=f.page.name if f else (var.table or ""),
                    question=f.question.name if f else "",
                    type=(f.kind if f else var.kind) + (f":{var.choice}" if var.choice else ""),
                    **labels("label", var.label),
                    item_code=(item.item_code or "") if item else "",
                    reverse=("true" if item.reverse else "false") if item else "",
                    relevant=relevant or "")
        if "table" in columns:
            base["table"] = var.table or ""
        out.append(base)
        names = {code: name for name, code in var.codes}
        for code, text in var.value_labels:
            row = blank()
            shown = str(code) if var.kind == "flag" else f"{code} = {names[code]}"
            row.update(variable=var.name, value=shown, **labels("value_label", text))
            out.append(row)
        for code, text in zip(missing_codes(var) or (), (NOT_ASKED, NO_ANSWER), strict=False):
            row = blank()
            row.update(variable=var.name, value=str(code),
                       value_label_zh=f"{text.zh}（.sav 用户缺失值；CSV、XLSX 为空）",
                       value_label_en=f"{text.en} (.sav user-missing; blank in CSV, XLSX)")
            out.append(row)
    return out


def _score_codebook_row(survey: Survey, var: Variable, columns: Sequence[str]
                        ) -> dict[str, str]:
    """A scale-score variable: its grid, the item codes it sums (``-`` marks reverse
    keys) and the grid's relevance."""
    q = survey.question(var.scale or "")
    page = next(p for p in survey.pages if q in p.questions)
    relevant = q.relevant
    if page.relevant:
        relevant = f"({page.relevant}) and ({relevant})" if relevant else page.relevant
    row = {c: "" for c in columns}
    row.update(variable=var.name, answer_key="", page=page.name, question=q.name,
               type=f"scale_score:{var.part}", label_zh=var.label.zh, label_en=var.label.en,
               item_code=" ".join(("-" if i.reverse else "") + (i.item_code or i.name)
                                  for i in q.items),
               relevant=relevant or "")
    return row


def codebook_bytes(survey: Survey, scores: bool = False) -> bytes:
    """The codebook as CSV (UTF-8 with BOM, formula-guarded), every language of the
    survey (``scores``: with the scale-score variables)."""
    columns = codebook_columns(survey)
    rows = [[r[c] for c in columns] for r in codebook_rows(survey, scores=scores)]
    return write_table("csv", _frame(columns, rows))


def write_codebook_csv(survey: Survey, path: str | Path, scores: bool = False) -> None:
    """:func:`codebook_bytes` written to ``path``."""
    Path(path).write_bytes(codebook_bytes(survey, scores))
