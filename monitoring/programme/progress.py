"""Progress against the plan: city totals and district contributions per indicator and
period, the share of the target reached, on track or behind given the time elapsed.

Values come from accepted reports (district and department indicators), from a
registered indicator source (:mod:`monitoring.programme.sources`, e.g. the
organisations register) or, for survey indicators, from the published district
estimates of :mod:`monitoring.results` (``districtmap.values_for``; no city total is
made up from district estimates). The figures are written to the monitoring database
(``programme_progress``, aggregates only) by :func:`refresh` and read back by the pages.

The rules (``README.md``, "Progress against the plan"):

* a **count** with ``cumulative`` sums the values reported from the plan's first period
  to the period; the city total adds every district's and department's value;
* a **share** or **ratio** is numerator / denominator, the city's sum over sum;
* **reached** is value / target (``<`` targets: target / value); with a baseline,
  (value - baseline) / (target - baseline);
* **expected** is the time elapsed: (year - 2023 + 1) / (target year - 2023 + 1);
* **status**: ``achieved`` when the value meets the target, else ``on_track`` when
  reached >= expected, else ``behind``; ``no_data`` without a value.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitoring.programme import catalogue, reporting, sources
from monitoring.programme.catalogue import IndicatorSpec
from monitoring.programme.models import (
    ProgrammePeriod,
    ProgrammeProgress,
    ProgrammeReport,
    ProgrammeValue,
)
from monitoring.results import dashboard, districtmap

STATUSES = ("achieved", "on_track", "behind", "no_data")


@dataclass(frozen=True)
class ProgressRow:
    """One cell of progress: indicator x period x district ("" = the city)."""

    indicator: str
    label_zh: str
    label_en: str
    kind: str
    period: str
    year: int
    district: str
    value: float | None
    numerator: float | None
    denominator: float | None
    target: float | None
    direction: str
    target_year: int | None
    reached: float | None
    expected: float | None
    status: str
    source: str
    simulated: bool = False


def meets(value: float, target: float, direction: str) -> bool:
    """Whether ``value`` meets ``target`` in ``direction``."""
    return {">": value > target, ">=": value >= target, "<": value < target,
            "<=": value <= target}[direction]


def elapsed(year: int, target_year: int | None) -> float:
    """The share of the plan's time elapsed at the end of ``year`` (0..1)."""
    end = target_year or catalogue.PLAN_END
    span = end - catalogue.PLAN_START + 1
    return max(0.0, min(1.0, (year - catalogue.PLAN_START + 1) / span))


def judge(spec: IndicatorSpec, value: float | None, year: int
          ) -> tuple[float | None, float | None, str]:
    """``(reached, expected, status)`` of a value in ``year`` against the target."""
    expected = elapsed(year, spec.target_year)
    if value is None or spec.target is None:
        return None, expected, "no_data"
    target = spec.target
    if spec.baseline_value is not None and target != spec.baseline_value \
            and not spec.cumulative:
        reached = (value - spec.baseline_value) / (target - spec.baseline_value)
    elif spec.direction in ("<", "<="):
        reached = target / value if value else None
    else:
        reached = value / target if target else None
    if meets(value, target, spec.direction):
        status = "achieved"
    elif reached is not None and reached >= expected - 1e-12:
        status = "on_track"
    else:
        status = "behind"
    return reached, expected, status


def _reported(db: Session, spec: IndicatorSpec
              ) -> dict[int, dict[tuple[str, str], tuple[float, float | None, bool]]]:
    """Accepted values of one indicator: year -> {(unit kind, code): (value, den, sim)}."""
    q = (sa.select(ProgrammePeriod.year, ProgrammeReport.unit_kind,
                   ProgrammeReport.unit_code, ProgrammeValue.value,
                   ProgrammeValue.denominator, ProgrammeReport.simulated)
         .join(ProgrammeReport, ProgrammeValue.report_id == ProgrammeReport.id)
         .join(ProgrammePeriod, ProgrammeReport.period_id == ProgrammePeriod.id)
         .where(ProgrammeValue.indicator_code == spec.code,
                ProgrammeReport.state == "accepted", ProgrammeValue.value.is_not(None)))
    out: dict[int, dict[tuple[str, str], tuple[float, float | None, bool]]] = \
        defaultdict(dict)
    for year, kind, code, value, den, sim in db.execute(q):
        out[year][(kind, code)] = (value, den, bool(sim))
    return out


def _row(spec: IndicatorSpec, period: ProgrammePeriod, district: str,
         num: float | None, den: float | None, simulated: bool,
         value: float | None = None) -> ProgressRow:
    if value is None and num is not None:
        value = num if spec.kind == "count" else (num / den if den else None)
    reached, expected, status = judge(spec, value, period.year)
    return ProgressRow(spec.code, spec.name_zh, spec.name_en, spec.kind, period.code,
                       period.year, district, value, num, den, spec.target, spec.direction,
                       spec.target_year, reached, expected, status, spec.source, simulated)


def compute(db: Session, monitoring_db: Session | None = None,
            providers: Mapping[str, sources.Provider] | None = None) -> list[ProgressRow]:
    """Every indicator x period x (city, each district) from the current reports."""
    periods = reporting.periods(db)
    rows: list[ProgressRow] = []
    for spec in catalogue.list_indicators(db):
        if spec.source == "survey" or spec.source == "frame":
            rows += _from_results(spec, periods, monitoring_db or db)
            continue
        provided = None
        if spec.source == "organisations":
            provided = {p.year: sources.values(spec.source, db, p.year, providers)
                        for p in periods}
            if all(v is None for v in provided.values()):
                provided = None
        reported = _reported(db, spec)
        running: dict[tuple[str, str], float] = defaultdict(float)
        for period in periods:
            if provided is not None:
                cells = {("district", d): cell
                         for d, cell in (provided.get(period.year) or {}).items()}
            else:
                cells = reported.get(period.year, {})
            if spec.kind == "count" and spec.cumulative:
                for key, (value, _den, _sim) in cells.items():
                    running[key] += value
                totals = {key: (running[key], None, cells.get(key, (0, None, False))[2])
                          for key in running}
            else:
                totals = cells
            sim = any(s for _v, _d, s in totals.values())
            if totals:
                num = sum(v for v, _d, _s in totals.values())
                den = sum(d or 0 for _v, d, _s in totals.values()) \
                    if spec.kind != "count" else None
                rows.append(_row(spec, period, "", num, den, sim))
            else:
                rows.append(_row(spec, period, "", None, None, False))
            for (kind, code), (value, den, s) in sorted(totals.items()):
                if kind == "district":
                    rows.append(_row(spec, period, code, value, den, s))
    return rows


def _from_results(spec: IndicatorSpec, periods: Sequence[ProgrammePeriod],
                  monitoring_db: Session) -> list[ProgressRow]:
    """District estimates of a survey indicator, from the published aggregates."""
    rows: list[ProgressRow] = []
    scope = dashboard.Scope(None)
    for period in periods:
        rows.append(_row(spec, period, "", None, None, False))
        found = districtmap.values_for(monitoring_db, scope, spec.source_code or spec.code,
                                       period.year)
        for district, cell in sorted(found.items()):
            if cell.get("estimate") is None:
                continue
            rows.append(_row(spec, period, district, None, None, False,
                             value=cell["estimate"]))
    return rows


def write(monitoring_db: Session, rows: Sequence[ProgressRow]) -> int:
    """Replace the stored progress with ``rows`` (aggregates only); returns the count."""
    monitoring_db.execute(sa.delete(ProgrammeProgress))
    monitoring_db.add_all(ProgrammeProgress(**asdict(r)) for r in rows)
    monitoring_db.flush()
    return len(rows)


def _writer(db: Session, monitoring_db: Session) -> Session:
    """The main session when the monitoring database is the main one (the embedded
    default): one connection holds the write, as SQLite allows one writer."""
    try:
        same = (db.get_bind().url.render_as_string(hide_password=False)
                == monitoring_db.get_bind().url.render_as_string(hide_password=False))
    except Exception:  # an unbound session: keep them apart
        same = False
    return db if same else monitoring_db


def refresh(db: Session, monitoring_db: Session,
            providers: Mapping[str, sources.Provider] | None = None) -> int:
    """Recompute the progress from the reports and store it (not committed: the
    caller's transaction makes it atomic)."""
    return write(_writer(db, monitoring_db), compute(db, monitoring_db, providers))


def stored(monitoring_db: Session, district: str | None = None) -> list[ProgrammeProgress]:
    """The stored progress, by indicator and year; ``district`` given: the city rows
    and that district's only (district staff)."""
    q = sa.select(ProgrammeProgress).order_by(ProgrammeProgress.indicator,
                                              ProgrammeProgress.year,
                                              ProgrammeProgress.district)
    if district is not None:
        q = q.where(ProgrammeProgress.district.in_(("", district)))
    return list(monitoring_db.scalars(q))


def latest_year(rows: Sequence[Any]) -> int | None:
    """The newest year with any value."""
    years = [r.year for r in rows if r.value is not None]
    return max(years) if years else None
