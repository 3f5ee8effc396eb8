"""Reports of districts and departments: periods, the values a unit reports, validation,
the review cycle, the period's XLSX template, the overdue list.

A report belongs to one period and one unit (a district, or a city department) and goes
``draft -> submitted -> returned (with a comment) -> resubmitted -> accepted``; the unit's
staff fill and submit, the city office (monitor, admin) returns or accepts. Values are
checked for type and range, and a value more than the indicator's ``change_factor``
above or below the unit's value of the last period needs a comment. Every step is
audited (``programme.report.*``).
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity import audit
from learningcity.db import utcnow
from learningcity.districts import district_codes
from learningcity.i18n import _
from monitoring.programme import catalogue, sources
from monitoring.programme.catalogue import IndicatorSpec
from monitoring.programme.models import (
    ProgrammePeriod,
    ProgrammeReport,
    ProgrammeValue,
)
from tabular.reading import Problem, TableError, read_table
from tabular.writing import Sheet, write_workbook

STATES = ("draft", "submitted", "returned", "resubmitted", "accepted")
EDITABLE = ("draft", "returned")
IN_REVIEW = ("submitted", "resubmitted")
#: reports in these states count as handed in for the overdue list
HANDED_IN = ("submitted", "resubmitted", "accepted")
#: the report sheet of the period's template and its columns
SHEET = "report"
COLUMNS = ("code", "indicator", "kind", "unit", "value", "denominator", "comment")


def english(text: Any) -> str:
    """A message in English: a translation string's default, interpolated."""
    return text.interpolate() if hasattr(text, "interpolate") else str(text)


class ReportError(ValueError):
    """A report step refused; ``problems`` are ``(indicator code or "", field, text)``,
    the text a translation string (the pages say it in their language)."""

    def __init__(self, problems: Sequence[tuple[str, str, Any]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{c + ': ' if c else ''}{f + ': ' if f else ''}"
                                   f"{english(t)}" for c, f, t in self.problems))


@dataclass(frozen=True)
class Unit:
    """Who reports: ``kind`` district or department, and its code."""

    kind: str
    code: str

    @classmethod
    def of_user(cls, user: Any) -> Unit | None:
        """A district account's district, a department account's department, else None."""
        role = getattr(user, "role", None)
        if role == "district" and getattr(user, "district_code", None):
            return cls("district", user.district_code)
        if role == "department" and getattr(user, "department_code", None):
            return cls("department", user.department_code)
        return None


# ------------------------------------------------------------------ periods

def ensure_period(db: Session, year: int) -> ProgrammePeriod:
    """The yearly period of ``year`` (created when missing: due 31 January after)."""
    code = str(year)
    period = db.scalar(sa.select(ProgrammePeriod).where(ProgrammePeriod.code == code))
    if period is None:
        period = ProgrammePeriod(code=code, year=year, starts_on=dt.date(year, 1, 1),
                                 ends_on=dt.date(year, 12, 31),
                                 due_on=dt.date(year + 1, 1, 31))
        db.add(period)
        db.flush()
    return period


def periods(db: Session) -> list[ProgrammePeriod]:
    """Every period, oldest first; the plan's years exist from the start."""
    for year in range(catalogue.PLAN_START, catalogue.PLAN_END + 1):
        ensure_period(db, year)
    return list(db.scalars(sa.select(ProgrammePeriod).order_by(ProgrammePeriod.year)))


def get_period(db: Session, code: str) -> ProgrammePeriod | None:
    """A period by its code ("2024"), or None (the plan's years always exist)."""
    periods(db)
    return db.scalar(sa.select(ProgrammePeriod).where(ProgrammePeriod.code == code))


# ------------------------------------------------------------------ what a unit reports

def reported_by(spec: IndicatorSpec, unit: Unit,
                providers: Mapping[str, sources.Provider] | None = None) -> bool:
    """Whether ``unit`` reports ``spec``: districts report district indicators and those
    of a source nothing provides; a department reports the department indicators it is
    responsible for."""
    if unit.kind == "district":
        return spec.source == "district" or (
            spec.source == "organisations"
            and sources.provider_for(spec.source, providers) is None)
    return spec.source == "department" and unit.code in spec.departments


def indicators_for(db: Session, unit: Unit,
                   providers: Mapping[str, sources.Provider] | None = None
                   ) -> list[IndicatorSpec]:
    """The indicators ``unit`` reports, in the system's order."""
    return [s for s in catalogue.list_indicators(db) if reported_by(s, unit, providers)]


def units(db: Session, providers: Mapping[str, sources.Provider] | None = None
          ) -> list[Unit]:
    """Every unit expected to report: each district, each department with indicators."""
    specs = catalogue.list_indicators(db)
    out = [Unit("district", c) for c in district_codes(db)]
    for code, _zh, _en in catalogue.departments(db):
        unit = Unit("department", code)
        if any(reported_by(s, unit, providers) for s in specs):
            out.append(unit)
    return out


def get_report(db: Session, period: ProgrammePeriod, unit: Unit, *,
               create: bool = False) -> ProgrammeReport | None:
    """The unit's report of the period (a new draft when ``create``), or None."""
    report = db.scalar(sa.select(ProgrammeReport).where(
        ProgrammeReport.period_id == period.id, ProgrammeReport.unit_kind == unit.kind,
        ProgrammeReport.unit_code == unit.code))
    if report is None and create:
        report = ProgrammeReport(period_id=period.id, unit_kind=unit.kind,
                                 unit_code=unit.code, state="draft")
        db.add(report)
        db.flush()
    return report


def report_by_id(db: Session, report_id: int) -> ProgrammeReport | None:
    """A report by id, or None."""
    return db.get(ProgrammeReport, report_id)


def reports(db: Session, unit: Unit | None = None) -> list[ProgrammeReport]:
    """Reports, newest period first; only ``unit``'s when given."""
    q = sa.select(ProgrammeReport).join(ProgrammePeriod).order_by(
        ProgrammePeriod.year.desc(), ProgrammeReport.unit_kind, ProgrammeReport.unit_code)
    if unit is not None:
        q = q.where(ProgrammeReport.unit_kind == unit.kind,
                    ProgrammeReport.unit_code == unit.code)
    return list(db.scalars(q))


def unit_of(report: ProgrammeReport) -> Unit:
    return Unit(report.unit_kind, report.unit_code)


def values_of(report: ProgrammeReport) -> dict[str, ProgrammeValue]:
    """The report's values by indicator code."""
    return {v.indicator_code: v for v in report.values}


def previous_values(db: Session, report: ProgrammeReport) -> dict[str, float]:
    """The unit's values of the latest earlier period (any state), by indicator."""
    q = (sa.select(ProgrammeValue.indicator_code, ProgrammeValue.value,
                   ProgrammeValue.denominator, ProgrammePeriod.year)
         .join(ProgrammeReport, ProgrammeValue.report_id == ProgrammeReport.id)
         .join(ProgrammePeriod, ProgrammeReport.period_id == ProgrammePeriod.id)
         .where(ProgrammeReport.unit_kind == report.unit_kind,
                ProgrammeReport.unit_code == report.unit_code,
                ProgrammePeriod.year < report.period.year)
         .order_by(ProgrammePeriod.year))
    out: dict[str, float] = {}
    for code, value, den, _year in db.execute(q):
        if value is not None:
            out[code] = value / den if den else value
    return out


# ------------------------------------------------------------------ validation

@dataclass(frozen=True)
class Entry:
    """One indicator's input as text: value, denominator (shares, ratios), comment."""

    value: str = ""
    denominator: str = ""
    comment: str = ""


def _parse(text: str, field: str, code: str,
           problems: list[tuple[str, str, str]]) -> float | None:
    text = (text or "").strip().replace(",", "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        problems.append((code, field, _("${text} is not a number",
                                        mapping={"text": repr(text[:40])})))
        return None
    if not math.isfinite(value):
        problems.append((code, field, _("${text} is not a finite number",
                                        mapping={"text": repr(text[:40])})))
        return None
    return value


def check_entries(specs: Sequence[IndicatorSpec], entries: Mapping[str, Entry],
                  previous: Mapping[str, float]
                  ) -> tuple[dict[str, tuple[float | None, float | None, str]],
                             list[tuple[str, str, str]]]:
    """Check the entries of a report: ``({code: (value, denominator, comment)},
    problems)``. Counts are whole numbers >= 0; a share's numerator lies between 0 and
    its denominator (> 0); a ratio's denominator is > 0; a value beyond the indicator's
    change factor of the last period's needs a comment. Empty entries stay empty."""
    problems: list[tuple[str, str, str]] = []
    out: dict[str, tuple[float | None, float | None, str]] = {}
    known = {s.code: s for s in specs}
    for code in entries:
        if code not in known:
            problems.append((code, "code", _("not an indicator this unit reports")))
    for spec in specs:
        entry = entries.get(spec.code, Entry())
        comment = (entry.comment or "").strip()[:2000]
        value = _parse(entry.value, "value", spec.code, problems)
        den = _parse(entry.denominator, "denominator", spec.code, problems) \
            if spec.kind != "count" else None
        if spec.kind == "count" and (entry.denominator or "").strip():
            problems.append((spec.code, "denominator", _("a count has no denominator")))
        if value is not None and value < 0:
            problems.append((spec.code, "value", _("cannot be negative")))
        if spec.kind == "count" and value is not None and value != int(value):
            problems.append((spec.code, "value", _("a count is a whole number")))
        if spec.kind != "count":
            if value is not None and den is None:
                problems.append((spec.code, "denominator", _("is required with the value")))
            if den is not None and den <= 0:
                problems.append((spec.code, "denominator", _("must be above 0")))
            if spec.kind == "share" and value is not None and den is not None \
                    and den > 0 and value > den:
                problems.append((spec.code, "value", _("a share's numerator cannot exceed its "
                                                       "denominator")))
        if value is not None and spec.change_factor and spec.code in previous \
                and not comment:
            now = value / den if den else value
            before = previous[spec.code]
            factor = spec.change_factor
            if (before > 0 and (now > before * factor or now < before / factor)) or \
                    (before == 0 and now > 0 and spec.kind != "count"):
                problems.append((spec.code, "comment",
                                 _("the value changed more than ${factor}-fold from "
                                   "the last period's (${before}): say why in the "
                                   "comment", mapping={"factor": f"{factor:g}",
                                                       "before": f"{before:g}"})))
        out[spec.code] = (value, den, comment)
    return out, problems


#: why a step is refused: the report is in another state
STEP_REFUSED = {
    "changed": _("This report cannot be changed now: it is with the city office or "
                 "accepted."),
    "submitted": _("This report cannot be submitted now: it is with the city office or "
                   "accepted."),
    "returned": _("Only a submitted report can be returned."),
    "accepted": _("Only a submitted report can be accepted."),
}


def _require_state(report: ProgrammeReport, allowed: Sequence[str], step: str) -> None:
    if report.state not in allowed:
        raise ReportError([("", "state", STEP_REFUSED[step])])


def save_entries(db: Session, report: ProgrammeReport, entries: Mapping[str, Entry],
                 actor: str, providers: Mapping[str, sources.Provider] | None = None,
                 via: str = "form") -> None:
    """Store a draft's values after checking every entry (ReportError: nothing stored)."""
    _require_state(report, EDITABLE, "changed")
    specs = indicators_for(db, unit_of(report), providers)
    checked, problems = check_entries(specs, entries, previous_values(db, report))
    if problems:
        raise ReportError(problems)
    existing = values_of(report)
    for code, (value, den, comment) in checked.items():
        row = existing.get(code)
        if row is None:
            report.values.append(ProgrammeValue(indicator_code=code, value=value,
                                                denominator=den, comment=comment))
        else:
            row.value, row.denominator, row.comment = value, den, comment
    report.updated_at, report.updated_by = utcnow(), actor[:64]
    audit.record(db, actor=actor, action="programme.report.save", target=_target(report),
                 detail={"via": via, "filled": sum(v[0] is not None
                                                   for v in checked.values())})
    db.flush()


def _target(report: ProgrammeReport) -> str:
    return f"{report.period.code}/{report.unit_kind}/{report.unit_code}"


def submit(db: Session, report: ProgrammeReport, actor: str,
           providers: Mapping[str, sources.Provider] | None = None) -> None:
    """Hand a draft (or a returned report) to the city office: every value filled."""
    _require_state(report, EDITABLE, "submitted")
    have = values_of(report)
    missing = [s.code for s in indicators_for(db, unit_of(report), providers)
               if have.get(s.code) is None or have[s.code].value is None]
    if missing:
        raise ReportError([(c, "value", _("is required before submitting")) for c in missing])
    before = report.state
    report.state = "resubmitted" if before == "returned" else "submitted"
    report.submitted_at = utcnow()
    report.updated_at, report.updated_by = utcnow(), actor[:64]
    audit.record(db, actor=actor, action="programme.report.submit", target=_target(report),
                 detail={"from": before, "to": report.state})
    db.flush()


def return_report(db: Session, report: ProgrammeReport, comment: str, actor: str) -> None:
    """The city office sends a submitted report back with a comment (required)."""
    _require_state(report, IN_REVIEW, "returned")
    comment = (comment or "").strip()
    if not comment:
        raise ReportError([("", "comment", _("say what to correct"))])
    before = report.state
    report.state, report.review_comment = "returned", comment[:2000]
    report.updated_at, report.updated_by = utcnow(), actor[:64]
    audit.record(db, actor=actor, action="programme.report.return", target=_target(report),
                 detail={"from": before, "comment": comment[:500]})
    db.flush()


def accept(db: Session, report: ProgrammeReport, actor: str) -> None:
    """The city office accepts a submitted report: its values count for progress."""
    _require_state(report, IN_REVIEW, "accepted")
    before = report.state
    report.state, report.accepted_at = "accepted", utcnow()
    report.updated_at, report.updated_by = utcnow(), actor[:64]
    audit.record(db, actor=actor, action="programme.report.accept", target=_target(report),
                 detail={"from": before})
    db.flush()


# ------------------------------------------------------------------ overdue

@dataclass(frozen=True)
class Overdue:
    """A unit whose report of a period was not handed in by the due date."""

    period: str
    due_on: dt.date
    unit: Unit
    state: str  # "missing", "draft" or "returned"


def overdue(db: Session, today: dt.date,
            providers: Mapping[str, sources.Provider] | None = None) -> list[Overdue]:
    """Units whose report of a period past its due date is missing, a draft or returned."""
    out: list[Overdue] = []
    expected = units(db, providers)
    for period in periods(db):
        if period.due_on >= today:
            continue
        have = {(r.unit_kind, r.unit_code): r.state for r in db.scalars(
            sa.select(ProgrammeReport).where(ProgrammeReport.period_id == period.id))}
        for unit in expected:
            state = have.get((unit.kind, unit.code), "missing")
            if state not in HANDED_IN:
                out.append(Overdue(period.code, period.due_on, unit, state))
    return out


# ------------------------------------------------------------------ XLSX template

def template_xlsx(db: Session, report: ProgrammeReport, locale: str = "zh_CN",
                  providers: Mapping[str, sources.Provider] | None = None) -> bytes:
    """The period's template for the unit: one row per indicator it reports, with the
    values stored so far; fill ``value`` (and ``denominator``, ``comment``), upload."""
    have = values_of(report)
    rows = []
    for spec in indicators_for(db, unit_of(report), providers):
        v = have.get(spec.code)
        rows.append({"code": spec.code, "indicator": spec.name(locale), "kind": spec.kind,
                     "unit": spec.unit,
                     "value": None if v is None or v.value is None else v.value,
                     "denominator": None if v is None else v.denominator,
                     "comment": "" if v is None else v.comment})
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    info = pd.DataFrame([{"field": "period", "value": report.period.code},
                         {"field": "unit_kind", "value": report.unit_kind},
                         {"field": "unit_code", "value": report.unit_code}])
    return write_workbook([Sheet(SHEET, frame, freeze_panes="A2",
                                 column_widths={"indicator": 48, "comment": 40}),
                           Sheet("about", info)])


def upload_template(db: Session, report: ProgrammeReport, data: bytes, filename: str,
                    actor: str, providers: Mapping[str, sources.Provider] | None = None,
                    max_bytes: int = 2 * 1024 * 1024,
                    translate: Callable[[Any], str] = english) -> None:
    """Store the values of a filled template. All or nothing: a fault raises
    :class:`TableError` naming sheet, row and column (and the indicator), and the
    report keeps its values. ``translate`` says the problems in the reader's language
    (a page passes ``request.translate``; English by default)."""
    _require_state(report, EDITABLE, "changed")
    table = read_table(data, filename, sheet=SHEET, max_rows=1000, max_bytes=max_bytes,
                       required=("code", "value"))
    sheet = table.sheet or SHEET
    problems: list[Problem] = []
    entries: dict[str, Entry] = {}
    rows: dict[str, int] = {}
    for number, record in table.records():
        code = record.get("code", "").strip()
        if not code:
            problems.append(Problem(filename, sheet, number, "code",
                                    translate(_("is required"))))
            continue
        if code in entries:
            problems.append(Problem(filename, sheet, number, "code",
                                    translate(_("${code} appears twice",
                                                mapping={"code": repr(code)}))))
            continue
        rows[code] = number
        entries[code] = Entry(record.get("value", ""), record.get("denominator", ""),
                              record.get("comment", ""))
    specs = indicators_for(db, unit_of(report), providers)
    _checked, faults = check_entries(specs, entries, previous_values(db, report))
    for code, field, text in faults:
        problems.append(Problem(filename, sheet, rows.get(code), field,
                                f"{code}: {translate(text)}"))
    if problems:
        raise TableError(problems)
    save_entries(db, report, entries, actor, providers, via="xlsx")
