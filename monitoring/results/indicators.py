"""Indicators: definitions, validation, evaluation over respondents, judgement against targets.

An indicator is a share with a target, e.g. "older adults regularly taking part
in older-adult education > 26 %".  Two kinds:

* ``person``: the weighted share of persons in ``population`` (a condition over
  the respondent's row) for whom ``expression`` is true; estimated with the
  campaign's design (Taylor SEs);
* ``frame``: the share of the campaign's frame units (communities) for which
  ``expression`` is true, computed from the frame's columns (a census of the
  frame, SE 0).  When the frame lacks a column the expression needs, the
  indicator is reported as not available.

Expressions use the surveys expression language (:mod:`surveys.expressions`),
so ``${elder_education} = 'regular'`` means the same here as in the survey's
skip logic.  Multiple-choice answers are lists, so ``selected(${topics}, 'arts')``
works on respondent rows.

Judgement against a target with the 95 % interval [lo, hi]:

==========  ======================  ========================
direction   met                     not met
==========  ======================  ========================
``>``       lo > target             hi <= target
``>=``      lo >= target            hi < target
``<``       hi < target             lo >= target
``<=``      hi <= target            lo > target
==========  ======================  ========================

otherwise the interval straddles the target: "not distinguishable".  For a
strict ``>`` an interval touching the target from above (lo == target) is not
distinguishable (the population value may equal the target, which does not
meet "> target"), and an interval ending at the target (hi == target) is not
met, because no value in it exceeds the target.  ``<`` mirrors this.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity import audit
from learningcity.db import utcnow
from learningcity.people import GROUP_CODES, OLDER_ADULT_EXPRESSION, OLDER_BANDS
from monitoring.results.models import IndicatorDefinition
from surveys import expressions as E
from surveys.definition import default_survey, var_type

KINDS = ("person", "frame")
DIRECTIONS = (">", ">=", "<", "<=")
JUDGEMENTS = ("met", "not_met", "undetermined")
CODE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")
#: Respondent-table columns every campaign has (besides the survey's answers).
LEVEL_CODES = ("L1", "L2", "L3", "L4", "L5")


class IndicatorError(ValueError):
    """A definition that cannot be saved; ``problems`` lists every fault, field first."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Indicator:
    """One indicator definition (see the module docstring for kinds and judgement)."""

    code: str
    name_zh: str
    name_en: str
    expression: str
    population: str = ""
    kind: str = "person"
    target: float | None = None
    direction: str = ">="
    builtin: bool = False
    description: str = ""

    def name(self, locale: str) -> str:
        return self.name_en if str(locale).startswith("en") else self.name_zh

    @property
    def target_text(self) -> str:
        return "" if self.target is None else f"{self.direction} {100 * self.target:g}%"


#: The action plan's three targets, over the default learning-needs survey's names.
BUILTIN: tuple[Indicator, ...] = (
    Indicator(
        code="older_adult_education",
        name_zh="老年人经常参加老年教育的比例",
        name_en="Older adults regularly taking part in older-adult education",
        expression="${elder_education} = 'regular'",
        population=OLDER_ADULT_EXPRESSION,
        kind="person", target=0.26, direction=">", builtin=True,
        description="Share of residents aged 60+ who answered 'regularly' to the older-adult "
                    "education question (last 12 months)."),
    Indicator(
        code="community_training_rate",
        name_zh="社区居民培训率",
        name_en="Community residents' training rate",
        expression="${community_training} = 'yes'",
        population="",
        kind="person", target=0.55, direction=">=", builtin=True,
        description="Share of adult residents who took part in community education training "
                    "or learning activities in the last 12 months."),
    Indicator(
        code="learning_communities",
        name_zh="学习型社区（村）占比",
        name_en="Learning-type communities (villages) among all communities",
        expression="${learning_community} = 'yes'",
        population="",
        kind="frame", target=0.80, direction=">=", builtin=True,
        description="Share of the campaign frame's communities marked as learning-type "
                    "(frame column learning_community: 1/0, yes/no, 是/否)."),
)


# ------------------------------------------------------------- variables


def respondent_variables(survey: Any = None) -> dict[str, E.VarType]:
    """Expression types of the respondent table's variables.

    ``survey`` is a :class:`surveys.definition.Survey` (default: the learning-needs
    instrument).  Adds the columns every respondent table has: district, street,
    group, age band, sex, ability score/level/plausible values and survey scale
    scores ``scale_<rating grid>``.
    """
    survey = survey or default_survey()
    out: dict[str, E.VarType] = {}
    for f in survey.fields():
        if f.kind == "other_text":
            continue
        out[f.name] = var_type(survey, f)
    for q in survey.questions:
        if q.type == "rating_grid":
            out[f"scale_{q.name}"] = E.VarType("number")
    out.setdefault("district", E.VarType("string"))
    out.setdefault("street", E.VarType("string"))
    out.setdefault("stratum", E.VarType("string"))
    out["group"] = E.VarType("choice", GROUP_CODES)
    out.setdefault("age_band", E.VarType("string"))
    band = out["age_band"]
    if band.kind == "choice":  # a frame's prefill may carry the band 60+ (learningcity.people)
        extra = tuple(b for b in sorted(OLDER_BANDS) if b not in band.choices)
        out["age_band"] = E.VarType("choice", tuple(band.choices) + extra, band.label)
    out.setdefault("sex", E.VarType("string"))
    out["score"] = E.VarType("number")
    out["level"] = E.VarType("choice", LEVEL_CODES)
    for m in range(1, 6):
        out[f"pv{m}"] = E.VarType("number")
    return out


@functools.lru_cache(maxsize=1024)
def parsed(text: str) -> E.Expr:
    """The expression tree of ``text``, parsed once per process (trees are immutable)."""
    return E.parse(text)


def references(ind: Indicator, *, population: bool = True) -> list[str]:
    """The questions and columns an indicator's expression (and population) name, in order."""
    refs = E.references(parsed(ind.expression))
    if population and ind.population.strip():
        refs += E.references(parsed(ind.population))
    return list(dict.fromkeys(refs))


def _check_expression(text: str, what: str, variables: Mapping[str, E.VarType] | None,
                      problems: list[str]) -> None:
    try:
        tree = parsed(text)
    except E.ParseError as exc:
        problems.append(f"{what}: {exc}")
        return
    if E.uses_current(tree):
        problems.append(f"{what}: '.' has no meaning here; name the question with ${{...}}")
    if variables is None:
        return
    unknown = [n for n in E.references(tree) if n not in variables]
    for name in dict.fromkeys(unknown):
        problems.append(f"{what}: unknown question or column ${{{name}}}")
    for msg in E.check_types(tree, lambda n: variables.get(n), None, "boolean"):
        problems.append(f"{what}: {msg}")


def validate(ind: Indicator, variables: Mapping[str, E.VarType] | None = None) -> list[str]:
    """Every problem of a definition, each naming its field (empty list: it may be saved).

    ``variables`` are the respondent variables (:func:`respondent_variables`);
    frame indicators are checked for syntax only (frame columns are known per
    campaign, and a missing one makes the indicator "not available").
    """
    problems: list[str] = []
    if not ind.code or len(ind.code) > 64 or not set(ind.code) <= CODE_CHARS \
            or not ind.code[0].isalpha():
        problems.append("code: 1 to 64 characters a-z, 0-9 or _, starting with a letter")
    if not ind.name_zh.strip() or len(ind.name_zh) > 200:
        problems.append("name_zh: required, at most 200 characters")
    if not ind.name_en.strip() or len(ind.name_en) > 200:
        problems.append("name_en: required, at most 200 characters")
    if ind.kind not in KINDS:
        problems.append(f"kind: must be one of {', '.join(KINDS)}")
    if ind.direction not in DIRECTIONS:
        problems.append(f"direction: must be one of {' '.join(DIRECTIONS)}")
    if ind.target is not None and not (math.isfinite(ind.target) and 0 <= ind.target <= 1):
        problems.append("target: a share between 0 and 1 (e.g. 0.26 for 26%)")
    if not ind.expression.strip():
        problems.append("expression: required")
    else:
        if variables is None and ind.kind == "person":
            variables = respondent_variables()
        _check_expression(ind.expression, "expression",
                          variables if ind.kind == "person" else None, problems)
    if ind.population.strip():
        if ind.kind == "frame":
            problems.append("population: frame indicators cover every frame unit; leave empty")
        else:
            _check_expression(ind.population, "population", variables, problems)
    return problems


def check(ind: Indicator, variables: Mapping[str, E.VarType] | None = None) -> Indicator:
    """``ind`` unchanged when valid, else :class:`IndicatorError` listing every problem."""
    problems = validate(ind, variables)
    if problems:
        raise IndicatorError(problems)
    return ind


# ------------------------------------------------------------ evaluation


def row_values(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One ``{name: value}`` mapping per row, in the expression language's terms.

    Multiple-choice columns ``<question>__<choice>`` (0/1) become the list of
    chosen names under ``<question>`` (None when every one is missing); NaN
    becomes None (unanswered).
    """
    multi: dict[str, list[tuple[str, str]]] = {}
    plain: list[str] = []
    for col in frame.columns:
        name = str(col)
        if "__" in name:
            q, choice = name.split("__", 1)
            multi.setdefault(q, []).append((choice, name))
        else:
            plain.append(name)
    records: list[dict[str, Any]] = []
    cols = {c: frame[c].to_numpy(dtype=object) for c in frame.columns}
    for i in range(len(frame)):
        row: dict[str, Any] = {}
        for c in plain:
            v = cols[c][i]
            row[c] = None if _missing(v) else (v.item() if isinstance(v, np.generic) else v)
        for q, parts in multi.items():
            if q in cols:
                continue  # a plain column of that name wins (e.g. group vs group__<code>)
            vals = [(choice, cols[c][i]) for choice, c in parts]
            if all(_missing(v) for _, v in vals):
                row.setdefault(q, None)
            else:
                row[q] = [choice for choice, v in vals if not _missing(v) and float(v) == 1]
        records.append(row)
    return records


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float | np.floating) and math.isnan(v)) or v is pd.NA


def evaluate_rows(text: str, rows: Sequence[Mapping[str, Any]], missing_as_nan: bool = True
                  ) -> np.ndarray:
    """0/1 per row for a condition; NaN where every referenced value is unanswered.

    An empty ``text`` is "everyone" (all 1).  With ``missing_as_nan`` a row whose
    referenced questions are all unanswered is missing (item nonresponse is left
    out of the share, as ``na.rm=TRUE``), not counted as "no".
    """
    n = len(rows)
    if not text.strip():
        return np.ones(n)
    tree = parsed(text)
    refs = E.references(tree)
    out = np.empty(n)
    for i, row in enumerate(rows):
        if missing_as_nan and refs and all(row.get(r) is None for r in refs):
            out[i] = np.nan
            continue
        try:
            out[i] = 1.0 if E.is_true(E.evaluate(tree, row)) else 0.0
        except E.EvaluationError:
            out[i] = np.nan
    return out


def evaluate_frame(text: str, frame: pd.DataFrame, missing_as_nan: bool = True) -> np.ndarray:
    """:func:`evaluate_rows` of ``text`` over :func:`row_values` of ``frame``, on whole columns.

    The same 1/0/NaN row for row, without a mapping per row or a walk of the
    expression per row: the referenced columns go to
    :func:`surveys.expressions.evaluate_columns` as arrays and multiple-choice questions
    as a :class:`~surveys.expressions.Selection`.  Only referenced columns are read, so
    a bad unreferenced ``<q>__<choice>`` column raises nothing here (it does in
    :func:`row_values`).
    """
    n = len(frame)
    if not text.strip():
        return np.ones(n)
    tree = parsed(text)
    columns = expression_columns(frame, E.references(tree))
    return E.evaluate_columns(tree, columns, n, missing_as_nan=missing_as_nan)


def expression_columns(frame: pd.DataFrame, names: Iterable[str]) -> dict[str, Any]:
    """The columns ``names`` refer to, as :func:`surveys.expressions.evaluate_columns` takes
    them, by :func:`row_values`' rules: a plain column by its name, else the
    ``<name>__<choice>`` columns as one selection; names with neither are left out
    (unanswered)."""
    plain: dict[str, Any] = {}
    multi: dict[str, list[tuple[str, Any]]] = {}
    for col in frame.columns:
        name = str(col)
        if "__" in name:
            q, choice = name.split("__", 1)
            multi.setdefault(q, []).append((choice, col))
        elif name in plain:
            raise ValueError(f"column {name!r} appears more than once")
        else:
            plain[name] = col
    out: dict[str, Any] = {}
    for name in names:
        if name in plain:
            out[name] = _expression_values(frame[plain[name]])
        elif name in multi:
            out[name] = _selection(frame, multi[name])
    return out


def _expression_values(column: pd.Series) -> Any:
    """One column's values in the expression language's terms (NaN in float arrays is None)."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
        return column.to_numpy()
    values = column.to_numpy(dtype=object, copy=True)  # a view of text columns otherwise
    if isinstance(dtype, pd.StringDtype):  # text, or NaN/NA for missing
        values[column.isna().to_numpy()] = None
        return values
    return np.fromiter((None if _missing(v) else v.item() if isinstance(v, np.generic) else v
                        for v in values), dtype=object, count=len(values))


def _selection(frame: pd.DataFrame, parts: list[tuple[str, Any]]) -> E.Selection:
    """A multiple-choice question from its 0/1 columns: chosen where the value is 1,
    unanswered where every column is missing."""
    n = len(frame)
    chosen = np.zeros((n, len(parts)), dtype=bool)
    missing = np.zeros((n, len(parts)), dtype=bool)
    for j, (_choice, col) in enumerate(parts):
        column = frame[col]
        if isinstance(column.dtype, np.dtype) and column.dtype.kind in "fiub":
            x = column.to_numpy()
            chosen[:, j] = x == 1
            missing[:, j] = np.isnan(x) if x.dtype.kind == "f" else False
            continue
        for i, v in enumerate(column.to_numpy(dtype=object)):
            missing[i, j] = _missing(v)
            try:
                chosen[i, j] = not missing[i, j] and float(v) == 1
            except (TypeError, ValueError):
                raise ValueError(f"column {str(col)!r}, row {i + 1}: {v!r} is not 0 or 1"
                                 ) from None
    return E.Selection(tuple(c for c, _ in parts), chosen, missing.all(axis=1))


_YES = {"1", "1.0", "yes", "y", "true", "是", "t"}
_NO = {"0", "0.0", "no", "n", "false", "否", "f"}


def frame_values(attributes: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Frame-unit attributes for expressions; yes/no-like values become 'yes'/'no'."""
    out = []
    for attrs in attributes:
        row: dict[str, Any] = {}
        for k, v in (attrs or {}).items():
            if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
                row[k] = None
                continue
            s = str(v).strip().lower()
            row[k] = "yes" if s in _YES else "no" if s in _NO else v
        out.append(row)
    return out


# ------------------------------------------------------------- judgement


def judge(ci_low: float | None, ci_high: float | None, target: float | None,
          direction: str) -> str | None:
    """'met', 'not_met' or 'undetermined' (interval straddles the target); None when
    there is no target or no interval (suppressed, not available)."""
    if target is None or ci_low is None or ci_high is None:
        return None
    if any(isinstance(x, float) and math.isnan(x) for x in (ci_low, ci_high, target)):
        return None
    lo, hi, t = float(ci_low), float(ci_high), float(target)
    if direction == ">":
        met, not_met = lo > t, hi <= t
    elif direction == ">=":
        met, not_met = lo >= t, hi < t
    elif direction == "<":
        met, not_met = hi < t, lo >= t
    elif direction == "<=":
        met, not_met = hi <= t, lo > t
    else:
        raise ValueError(f"direction: must be one of {' '.join(DIRECTIONS)}")
    return "met" if met else "not_met" if not_met else "undetermined"


# ------------------------------------------------------------- catalogue


@dataclass
class Catalogue:
    """The indicators in force: built-ins, overridden or extended by saved definitions."""

    items: dict[str, Indicator] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Indicator]:
        return iter(self.items.values())

    def __len__(self) -> int:
        return len(self.items)

    def get(self, code: str) -> Indicator | None:
        return self.items.get(code)


def catalogue(saved: Iterable[Indicator] = ()) -> Catalogue:
    """Built-ins first, then saved definitions (a saved one replaces a built-in of its code)."""
    items = {i.code: i for i in BUILTIN}
    for ind in saved:
        items[ind.code] = replace(ind, builtin=ind.code in items and items[ind.code].builtin)
    return Catalogue(items)


def load_catalogue(db: Any = None) -> Catalogue:
    """The catalogue with the admins' saved definitions from the main database (if any)."""
    if db is None:
        return catalogue()
    return catalogue(saved_indicators(db))


# ------------------------------------------------------------------ saved definitions

def _from_row(row: IndicatorDefinition) -> Indicator:
    return Indicator(code=row.code, name_zh=row.name_zh, name_en=row.name_en,
                     expression=row.expression, population=row.population or "",
                     kind=row.kind, target=row.target, direction=row.direction,
                     description=row.description or "")


def saved_indicators(db: Session) -> list[Indicator]:
    """Every saved definition, by code."""
    rows = db.scalars(sa.select(IndicatorDefinition).order_by(IndicatorDefinition.code))
    return [_from_row(r) for r in rows]


def save_indicator(db: Session, ind: Indicator, actor: str) -> IndicatorDefinition:
    """Validate and store (insert or replace by code); raises IndicatorError, storing nothing."""
    check(ind)
    row = db.scalar(sa.select(IndicatorDefinition).where(IndicatorDefinition.code == ind.code))
    created = row is None
    if row is None:
        row = IndicatorDefinition(code=ind.code)
        db.add(row)
    row.name_zh, row.name_en = ind.name_zh.strip(), ind.name_en.strip()
    row.expression, row.population = ind.expression.strip(), ind.population.strip()
    row.kind, row.target, row.direction = ind.kind, ind.target, ind.direction
    row.description = ind.description
    row.updated_at, row.updated_by = utcnow(), actor
    audit.record(db, actor=actor, action="indicator.add" if created else "indicator.edit",
                     target=ind.code,
                     detail={"expression": row.expression, "population": row.population,
                             "kind": row.kind, "target": row.target,
                             "direction": row.direction})
    db.flush()
    return row
