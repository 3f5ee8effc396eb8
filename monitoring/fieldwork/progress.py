"""Fieldwork progress of a campaign: per stratum and overall, with a daily chart.

Counts come from the invitations (their status is set by the resident entry): sampled =
invitations not void, started = used at least once (started or completed), completed.
Response rate = completed / sampled; completes are compared with each stratum's quota
(``sampling.quota_progress``). Days are calendar days in the campaign's time zone.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitoring.fieldwork.entry import refresh_statuses
from monitoring.fieldwork.models import Campaign, CampaignStratum, Invitation
from monitoring.fieldwork.window import to_local
from monitoring.stats import sampling
from tabular.writing import write_table


@dataclass(frozen=True)
class StratumProgress:
    stratum: str
    population: float
    allocated: int
    sampled: int
    started: int
    completed: int
    quota: int
    response_rate: float | None
    quota_progress: float
    quota_met: bool


@dataclass
class ProgressReport:
    """Per-stratum rows, the overall row and completes per local day."""

    campaign: str
    rows: list[StratumProgress]
    overall: StratumProgress
    daily: list[tuple[dt.date, int]] = field(default_factory=list)

    @property
    def cumulative(self) -> list[tuple[dt.date, int]]:
        total, out = 0, []
        for day, n in self.daily:
            total += n
            out.append((day, total))
        return out


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def campaign_progress(db: Session, campaign: Campaign) -> ProgressReport:
    """Sampled, started, completed, response rate and quota progress by stratum."""
    refresh_statuses(db, campaign)  # a resident may have finished through the pages
    strata = db.scalars(sa.select(CampaignStratum).where(
        CampaignStratum.campaign_id == campaign.id).order_by(CampaignStratum.stratum)).all()
    counts: dict[str, dict[str, int]] = {}
    for stratum, status, n in db.execute(
            sa.select(Invitation.stratum, Invitation.status, sa.func.count(Invitation.id))
            .where(Invitation.campaign_id == campaign.id)
            .group_by(Invitation.stratum, Invitation.status)):
        counts.setdefault(stratum, {})[status] = int(n)
    labels = [s.stratum for s in strata] + sorted(set(counts) - {s.stratum for s in strata})
    info = {s.stratum: s for s in strata}
    sampled = {k: sum(v for s, v in counts.get(k, {}).items() if s != "void") for k in labels}
    completed = {k: counts.get(k, {}).get("completed", 0) for k in labels}
    started = {k: counts.get(k, {}).get("started", 0) + completed[k] for k in labels}
    quotas = {k: int(info[k].quota if k in info and info[k].quota is not None
                     else sampled[k]) for k in labels}
    status = sampling.quota_progress(quotas, completed, sampled) if labels else None
    rows = []
    for k in labels:
        t = status.table.loc[k]
        rows.append(StratumProgress(
            stratum=k, population=float(info[k].population) if k in info else 0.0,
            allocated=int(info[k].allocated) if k in info else 0, sampled=sampled[k],
            started=started[k], completed=completed[k], quota=quotas[k],
            response_rate=_rate(completed[k], sampled[k]),
            quota_progress=float(t["progress"]), quota_met=bool(t["met"])))
    tot = {name: sum(getattr(r, name) for r in rows)
           for name in ("population", "allocated", "sampled", "started", "completed", "quota")}
    overall = StratumProgress(
        stratum="", population=float(tot["population"]), allocated=int(tot["allocated"]),
        sampled=int(tot["sampled"]), started=int(tot["started"]),
        completed=int(tot["completed"]), quota=int(tot["quota"]),
        response_rate=_rate(int(tot["completed"]), int(tot["sampled"])),
        quota_progress=(tot["completed"] / tot["quota"]) if tot["quota"] else 1.0,
        quota_met=bool(rows) and all(r.quota_met for r in rows))
    return ProgressReport(campaign.code, rows, overall, daily_completes(db, campaign))


def daily_completes(db: Session, campaign: Campaign) -> list[tuple[dt.date, int]]:
    """Completes per local calendar day, every day from the first complete to the last."""
    times = db.scalars(sa.select(Invitation.completed_at).where(
        Invitation.campaign_id == campaign.id, Invitation.status == "completed",
        Invitation.completed_at.is_not(None)))
    per_day: dict[dt.date, int] = {}
    for moment in times:
        day = to_local(moment, campaign.timezone).date()
        per_day[day] = per_day.get(day, 0) + 1
    if not per_day:
        return []
    first, last = min(per_day), max(per_day)
    return [(first + dt.timedelta(days=i), per_day.get(first + dt.timedelta(days=i), 0))
            for i in range((last - first).days + 1)]


PROGRESS_COLUMNS = ("stratum", "population", "allocated", "sampled", "started", "completed",
                    "response_rate", "quota", "quota_progress", "quota_met")


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}" if not value.is_integer() else str(int(value))
    return str(value)


def progress_csv(report: ProgressReport) -> bytes:
    """The progress table as CSV (UTF-8 with BOM, formula-guarded: stratum names come from
    an uploaded frame), strata then the overall row, through the export registry
    (:func:`tabular.writing.write_table`); rates with four decimals, flags as yes/no."""
    rows = [[row.stratum or "(overall)", *[_fmt(getattr(row, c)) for c in PROGRESS_COLUMNS[1:]]]
            for row in [*report.rows, report.overall]]
    return write_table("csv", pd.DataFrame(rows, columns=list(PROGRESS_COLUMNS), dtype=object))
