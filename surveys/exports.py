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
* numbers as numbers, text as text, dates as dates (ISO text in CSV), months as
  ``YYYY-MM`` text.

Variable names are legal SPSS names (a letter first, then letters, digits and
``_``; at most 64 characters; unique ignoring case; not a reserved word) and the
same in every format, with one header row.  SPSS labels are Chinese, or English with
``labels="en"``; the codebook (CSV, and the XLSX's ``codebook`` sheet) gives both
languages, the values and their labels.  In the ``.sav`` a missing answer says why:
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
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tabular.guard import guard_cell  # the project's one CSV-injection guard
from tabular.writing import Sheet, write_table, write_workbook

from .answers import clean_answers, relevance
from .definition import MAX_OTHER_TEXT, MAX_TEXT, Choice, Field, Survey, Text

__all__ = ["CODEBOOK_COLUMNS", "LABEL_LANGUAGES", "NOT_ASKED", "NO_ANSWER", "RESPONSE_FILES",
           "SCORE_PARTS", "Variable", "codebook_bytes", "codebook_rows", "csv_bytes",
           "guard_cell", "missing_codes", "response_rows", "sav_bytes", "text_width",
           "variables", "write_codebook_csv", "write_csv", "write_sav", "write_xlsx",
           "xlsx_bytes"]

ID_VARIABLE = "respondent_id"
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
    choice), ``number``, ``text``, ``date``, ``month``, ``score`` (a stored scale
    score).  ``codes`` maps the stored choice names to SPSS codes; ``value_labels``
    the SPSS codes to labels.
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


def variables(survey: Survey, scores: bool = False) -> list[Variable]:
    """The columns of the response files, in survey order (the id column first); with
    ``scores`` the scale-score variables of every rating grid follow the answers."""
    names = _Names()
    fields = survey.fields()
    out = [Variable(names.claim(ID_VARIABLE), "id", Text("答卷编号", "Respondent id"))]
    # answer keys keep their names; derived columns (flags, specify texts) come second
    direct = {f.name: names.claim(f.name) for f in fields
              if f.kind not in ("multiple_choice", "other_text")}
    for f in fields:
        if f.kind in ("single_choice", "rating"):
            choices = survey.choice_lists[f.choice_list or ""]
            codes = _choice_codes(choices)
            labels = tuple((code, c.label) for (_, code), c in zip(codes, choices))
            out.append(Variable(direct[f.name], "choice", f.label, f, codes=codes,
                                value_labels=labels,
                                measure="ordinal" if f.kind == "rating" else "nominal"))
        elif f.kind == "multiple_choice":
            choices = survey.choice_lists[f.choice_list or ""]
            every = frozenset(c.name for c in choices)
            for k, c in enumerate(choices, start=1):
                label = Text(f"{f.label.zh}：{c.label.zh}", f"{f.label.en}: {c.label.en}")
                # a choice name without ASCII letters or digits is named by its position
                part = re.sub(r"[^A-Za-z0-9]+", "_", c.name).strip("_") or str(k)
                out.append(Variable(names.claim(f"{f.name}_{part}"), "flag", label, f,
                                    choice=c.name, all_choices=every,
                                    value_labels=((0, NOT_SELECTED), (1, SELECTED))))
        elif f.kind == "other_text":
            out.append(Variable(names.claim(f"{f.name}_text"), "text", f.label, f))
        elif f.kind in ("integer", "decimal"):
            out.append(Variable(direct[f.name], "number", f.label, f, measure="scale"))
        else:  # text, date, month
            out.append(Variable(direct[f.name], f.kind, f.label, f,
                                measure="scale" if f.kind == "date" else "nominal"))
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
    return out


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
    known = {f.name for f in survey.fields()}
    rows = []
    for i, raw in enumerate(responses):
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"respondent {i + 1}: unknown answer key(s) {', '.join(unknown)}")
        answers = clean_answers(survey, raw) if clean else dict(raw)
        row: list[Any] = []
        for var in cols:
            if var.kind == "score":
                row.append(_score(var, scores[i] if scores is not None else {}, i))
            else:
                row.append(_value(var, answers, i, ids))
        rows.append(row)
    return cols, rows


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


def _value(var: Variable, answers: Mapping[str, Any], i: int, ids: Sequence[Any] | None
           ) -> Any:
    if var.kind == "id":
        return ids[i] if ids is not None else i + 1
    assert var.field is not None
    value = answers.get(var.field.name)
    if value is None or value == "" or value == []:
        return None
    if var.kind == "flag":
        if not isinstance(value, list | tuple):
            raise ValueError(f"respondent {i + 1}, {var.field.name}: expected a list of "
                             f"choices, got {value!r}")
        unknown = [v for v in value if v not in var.all_choices]
        if unknown:
            raise ValueError(f"respondent {i + 1}, {var.field.name}: {unknown[0]!r} is not a "
                             "choice of the question")
        return int(var.choice in value)
    if var.kind == "choice":
        if value not in dict(var.codes):
            raise ValueError(f"respondent {i + 1}, {var.field.name}: {value!r} is not a "
                             "choice of the question")
        return value
    if var.kind == "date" and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"respondent {i + 1}, {var.field.name}: {value!r} is not a date "
                             "(YYYY-MM-DD)") from None
    return value


def _frame(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Rows as a frame of Python values (no NaN for None, ints stay ints)."""
    return pd.DataFrame([list(r) for r in rows], columns=list(names), dtype=object)


def csv_bytes(survey: Survey, responses: Sequence[Mapping[str, Any]],
              ids: Sequence[Any] | None = None, scores: Scores | None = None) -> bytes:
    """Responses as CSV in UTF-8 with a byte-order mark (so Excel reads the Chinese)."""
    cols, rows = response_rows(survey, responses, ids, scores=scores)
    return write_table("csv", _frame([v.name for v in cols], rows))


def xlsx_bytes(survey: Survey, responses: Sequence[Mapping[str, Any]],
               ids: Sequence[Any] | None = None, scores: Scores | None = None) -> bytes:
    """Responses (sheet ``responses``) and the codebook (sheet ``codebook``) in one workbook.

    Choice variables hold the choice name (a number for numeric names).
    """
    cols, rows = response_rows(survey, responses, ids, scores=scores)
    numeric = {v.name for v in cols if v.kind == "choice" and all(
        str(code) == name for name, code in v.codes)}
    out_rows = [[int(val) if cols[j].name in numeric and val is not None else val
                 for j, val in enumerate(row)] for row in rows]
    codebook = [[r[c] for c in CODEBOOK_COLUMNS]
                for r in codebook_rows(survey, scores=scores is not None)]
    return write_workbook([
        Sheet("responses", _frame([v.name for v in cols], out_rows), freeze_panes="B2"),
        Sheet("codebook", _frame(CODEBOOK_COLUMNS, codebook), freeze_panes="B2")])


def sav_bytes(survey: Survey, responses: Sequence[Mapping[str, Any]],
              ids: Sequence[Any] | None = None, scores: Scores | None = None,
              labels: str = "zh") -> bytes:
    """Responses as an SPSS ``.sav`` file with variable and value labels in ``labels``
    (``zh``, the default, or ``en``).

    Choice variables are numeric codes (see the module docstring); labels longer
    than SPSS allows (255 bytes for variables, 120 for values) are shortened, the
    codebook keeps them whole. A missing answer is a user-missing code that says why
    (:func:`missing_codes`): not asked (the skip logic passed the question by) or asked
    and not answered; dates and scale scores stay system-missing. Text widths come from
    the definition (:func:`text_width`), so every wave's file has the same widths.
    """
    if labels not in LABEL_LANGUAGES:
        raise ValueError(f"labels: {labels!r}; use one of {', '.join(LABEL_LANGUAGES)}")
    cols, rows = response_rows(survey, responses, ids, scores=scores)
    asked = [relevance(survey, dict(r)) for r in responses]
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
            if var.field is not None and var.field.kind == "integer":
                formats[var.name] = f"F{max(8, _digits([], codes))}.0"
        elif var.kind == "score":
            data[var.name] = pd.array(values, dtype="float64")
            formats[var.name] = score_formats[var.part or ""]
        elif var.kind == "id" and all(isinstance(v, int) for v in values):
            data[var.name] = pd.array(values, dtype="float64")
            formats[var.name] = "F10.0"
        elif var.kind == "date":
            data[var.name] = pd.Series(values, dtype="object")
        else:
            data[var.name] = pd.Series(["" if v is None else str(v) for v in values],
                                       dtype="object")
            width = text_width(var)
            if width:
                widths[var.name] = width
        own = {code: text.en if labels == "en" else text.zh for code, text in var.value_labels}
        if codes is not None:
            own.update({code: text.en if labels == "en" else text.zh
                        for code, text in zip(codes, (NOT_ASKED, NO_ANSWER), strict=True)})
        if own:
            value_labels[var.name] = own
    title = survey.title.en if labels == "en" else survey.title.zh
    return write_table(
        "sav", pd.DataFrame(data, columns=[v.name for v in cols]),
        file_label=title, formats=formats,
        variable_labels={v.name: v.label.en if labels == "en" else v.label.zh for v in cols},
        value_labels=value_labels, missing_values=missing, string_widths=widths,
        measures={v.name: v.measure for v in cols})


def missing_codes(var: Variable) -> tuple[Any, Any] | None:
    """The .sav's user-missing codes of a variable: (not asked, not answered).

    ``-8`` and ``-9`` for coded, 0/1 and number variables (``-98``/``-99``... when those
    are choice codes or within a number question's range), ``"-8"`` and ``"-9"`` for text
    and month variables; None for the id, dates and scale scores (system-missing)."""
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
    Chinese character in UTF-8; ``YYYY-MM`` months 8. None for other variables (the
    width of their values)."""
    if var.kind == "month":
        return 8
    if var.kind != "text" or var.field is None:
        return None
    limit = MAX_OTHER_TEXT if var.field.kind == "other_text" else MAX_TEXT
    constraint = var.field.question.constraint if var.field.kind == "text" else None
    found = _TEXT_LIMIT.match(constraint or "")
    if found:
        n = int(found.group(2)) - (1 if found.group(1) == "<" else 0)
        limit = max(1, min(limit, n))
    return max(8, 3 * limit)


#: format -> the bytes of a response file in it
RESPONSE_FILES = {"csv": csv_bytes, "xlsx": xlsx_bytes, "sav": sav_bytes}


def write_csv(survey: Survey, responses: Sequence[Mapping[str, Any]], path: str | Path,
              ids: Sequence[Any] | None = None, scores: Scores | None = None) -> None:
    """:func:`csv_bytes` written to ``path``."""
    Path(path).write_bytes(csv_bytes(survey, responses, ids, scores))


def write_xlsx(survey: Survey, responses: Sequence[Mapping[str, Any]], path: str | Path,
               ids: Sequence[Any] | None = None, scores: Scores | None = None) -> None:
    """:func:`xlsx_bytes` written to ``path``."""
    Path(path).write_bytes(xlsx_bytes(survey, responses, ids, scores))


def write_sav(survey: Survey, responses: Sequence[Mapping[str, Any]], path: str | Path,
              ids: Sequence[Any] | None = None, scores: Scores | None = None,
              labels: str = "zh") -> None:
    """:func:`sav_bytes` written to ``path``."""
    Path(path).write_bytes(sav_bytes(survey, responses, ids, scores, labels))


def codebook_rows(survey: Survey, scores: bool = False) -> list[dict[str, str]]:
    """The codebook: one row per variable, then one row per value label of it and per
    user-missing code of the .sav (:func:`missing_codes`) (with ``scores``, also the
    scale-score variables, as in exports made with scores)."""
    out: list[dict[str, str]] = []
    for var in variables(survey, scores=scores):
        if var.kind == "score":
            out.append(_score_codebook_row(survey, var))
            continue
        f = var.field
        item = f.item if f is not None else None
        relevant = f.question.relevant if f is not None else None
        if f is not None and f.page.relevant:
            relevant = f"({f.page.relevant}) and ({relevant})" if relevant else f.page.relevant
        if f is not None and f.kind == "other_text":
            selected = f"selected(${{{f.question.name}}}, 'other')"
            relevant = f"({relevant}) and {selected}" if relevant else selected
        base = {c: "" for c in CODEBOOK_COLUMNS}
        base.update(variable=var.name, answer_key=f.name if f else "",
                    page=f.page.name if f else "", question=f.question.name if f else "",
                    type=(f.kind if f else "id") + (f":{var.choice}" if var.choice else ""),
                    label_zh=var.label.zh, label_en=var.label.en,
                    item_code=(item.item_code or "") if item else "",
                    reverse=("true" if item.reverse else "false") if item else "",
                    relevant=relevant or "")
        out.append(base)
        names = {code: name for name, code in var.codes}
        for code, text in var.value_labels:
            row = {c: "" for c in CODEBOOK_COLUMNS}
            shown = str(code) if var.kind == "flag" else f"{code} = {names[code]}"
            row.update(variable=var.name, value=shown, value_label_zh=text.zh,
                       value_label_en=text.en)
            out.append(row)
        for code, text in zip(missing_codes(var) or (), (NOT_ASKED, NO_ANSWER), strict=False):
            row = {c: "" for c in CODEBOOK_COLUMNS}
            row.update(variable=var.name, value=str(code),
                       value_label_zh=f"{text.zh}（.sav 用户缺失值；CSV、XLSX 为空）",
                       value_label_en=f"{text.en} (.sav user-missing; blank in CSV, XLSX)")
            out.append(row)
    return out


def _score_codebook_row(survey: Survey, var: Variable) -> dict[str, str]:
    """A scale-score variable: its grid, the item codes it sums (``-`` marks reverse
    keys) and the grid's relevance."""
    q = survey.question(var.scale or "")
    page = next(p for p in survey.pages if q in p.questions)
    relevant = q.relevant
    if page.relevant:
        relevant = f"({page.relevant}) and ({relevant})" if relevant else page.relevant
    row = {c: "" for c in CODEBOOK_COLUMNS}
    row.update(variable=var.name, answer_key="", page=page.name, question=q.name,
               type=f"scale_score:{var.part}", label_zh=var.label.zh, label_en=var.label.en,
               item_code=" ".join(("-" if i.reverse else "") + (i.item_code or i.name)
                                  for i in q.items),
               relevant=relevant or "")
    return row


def codebook_bytes(survey: Survey, scores: bool = False) -> bytes:
    """The codebook as CSV (UTF-8 with BOM, formula-guarded), both languages
    (``scores``: with the scale-score variables)."""
    rows = [[r[c] for c in CODEBOOK_COLUMNS] for r in codebook_rows(survey, scores=scores)]
    return write_table("csv", _frame(CODEBOOK_COLUMNS, rows))


def write_codebook_csv(survey: Survey, path: str | Path, scores: bool = False) -> None:
    """:func:`codebook_bytes` written to ``path``."""
    Path(path).write_bytes(codebook_bytes(survey, scores))
