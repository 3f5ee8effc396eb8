"""Services behind the monitoring pages, the aggregates API and the downloads.

Everything reads the monitoring database (aggregates only) through a
:class:`Scope`: monitors and admins see every district, district staff only
rows whose ``district`` is their own.  The scope is applied here, in every
query, so pages, API and exports cannot differ.  Tables come back as
:class:`Table` (columns with translatable labels, rows of plain values), which
pages render, charts draw and exports write through the project's export registry
(:mod:`tabular.writing`: CSV with BOM and formula guard, XLSX whose text is never a
formula, SPSS .sav with variable labels).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity.i18n import _
from monitoring.results.warehouse import DIMENSIONS, Aggregate, MonitoringRun, method_text

SHARE_KINDS = ("indicator", "level_share", "share")
TABLES = ("overview", "groups", "trends", "districts")
#: column kinds written as numbers in the downloads (the rest is text)
#: campaigns whose name contains this are simulated demo data (monitoring.demo_results):
#: pages show a notice while any of them is in view
SIMULATED_MARK = "【模拟 SIMULATED】"
#: rows per API answer; narrow the filters (campaign, measure, dimension) for more
API_LIMIT = 5000
DIMENSION_LABELS = {
    "all": _("Whole population"), "district": _("District"), "group": _("Group"),
    "age_band": _("Age band"), "sex": _("Sex"), "group_x_district": _("Group × district"),
}
JUDGEMENT_LABELS = {"met": _("met"), "not_met": _("not met"),
                    "undetermined": _("not distinguishable")}
#: why a cell is withheld or flagged (the publication rule, docs/suppression.md)
REASON_LABELS = {"small_n": _("suppressed: too few respondents"),
                 "high_rse": _("suppressed: too imprecise"),
                 "nchs_n_eff": _("suppressed: effective sample too small"),
                 "nchs_width": _("suppressed: interval too wide"),
                 "nchs_rel_width": _("suppressed: interval too wide for the share"),
                 "complementary": _("suppressed: would reveal a withheld cell"),
                 "nchs_df": _("review: few degrees of freedom"),
                 "nchs_0_or_100": _("review: share of 0 or 100%"),
                 "nchs_complement": _("review: its complement is imprecise"),
                 "not_available": _("not available")}


#: the districts table's campaign cell of a district without an aggregated campaign
NO_DATA = _("No data yet")


class ScopeError(PermissionError):
    """The user has no monitoring scope (not monitor, admin or district staff)."""


@dataclass(frozen=True)
class Scope:
    """Which districts' rows a user may see: ``district`` None means all of them."""

    district: str | None = None

    @classmethod
    def for_user(cls, user: Any) -> Scope:
        """Monitors and admins: everything; district staff: their district; others: refused."""
        role = getattr(user, "role", None)
        if role in ("admin", "monitor"):
            return cls(None)
        if role == "district" and getattr(user, "district_code", None):
            return cls(user.district_code)
        raise ScopeError("no monitoring access")

    def rows(self, query: Any) -> Any:
        return query if self.district is None else query.where(
            Aggregate.district == self.district)

    def runs(self, query: Any) -> Any:
        return query if self.district is None else query.where(
            MonitoringRun.district == self.district)


@dataclass
class Column:
    """A table column: ``key`` in the rows, a label, and how to show the value."""

    key: str
    label: Any
    kind: str = "text"  # text | share | number | int | judgement | date


@dataclass
class Table:
    """A table for a page, a chart and the downloads."""

    name: str
    title: Any
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)


def _label(row: Aggregate | dict, locale: str) -> str:
    get = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
    return get("label_en") if str(locale).startswith("en") else get("label_zh")


def _value_kind(kind: str) -> str:
    return "share" if kind in SHARE_KINDS else "number"


def _cells(r: Aggregate) -> dict[str, Any]:
    return {"n": r.n, "estimate": r.estimate, "se": r.se, "ci_low": r.ci_low,
            "ci_high": r.ci_high, "deff": r.deff, "suppressed": r.suppressed,
            "reason": r.suppression_reason or "", "method": r.method,
            "target": r.target, "direction": r.direction or "", "judgement": r.judgement or "",
            "value_kind": _value_kind(r.kind)}


# ------------------------------------------------------------------ lookups


def campaigns(mdb: Session, scope: Scope) -> list[MonitoringRun]:
    """Aggregated campaigns the scope may see, newest first."""
    q = scope.runs(sa.select(MonitoringRun)).order_by(
        MonitoringRun.closes_at.desc().nulls_last(), MonitoringRun.campaign)
    return list(mdb.scalars(q))


def simulated_campaigns(mdb: Session, scope: Scope) -> list[str]:
    """Codes of the visible aggregated campaigns marked as simulated demo data."""
    q = scope.runs(sa.select(MonitoringRun.campaign)).where(
        MonitoringRun.campaign_name.contains(SIMULATED_MARK, autoescape=True)
    ).order_by(MonitoringRun.campaign)
    return list(mdb.scalars(q))


def measures(mdb: Session, scope: Scope, campaign: str | None = None,
             locale: str = "zh_CN") -> list[tuple[str, str, str]]:
    """(measure, kind, label) of the aggregated measures (of one campaign, or all)."""
    q = scope.rows(sa.select(Aggregate.measure, Aggregate.kind, Aggregate.label_zh,
                             Aggregate.label_en).distinct())
    if campaign:
        q = q.where(Aggregate.campaign == campaign)
    seen: dict[str, tuple[str, str, str]] = {}
    order = {"indicator": 0, "ability": 1, "level_share": 2, "scale": 3, "share": 4}
    for m, k, zh, en in mdb.execute(q):
        seen.setdefault(m, (m, k, en if str(locale).startswith("en") else zh))
    return sorted(seen.values(), key=lambda t: (order.get(t[1], 9), t[0]))


def aggregates(mdb: Session, scope: Scope, campaign: str | None = None,
               measure: str | None = None, dimension: str | None = None,
               limit: int = 5000) -> list[Aggregate]:
    """Aggregate rows filtered by campaign, measure and dimension, within the scope."""
    q = scope.rows(sa.select(Aggregate))
    if campaign:
        q = q.where(Aggregate.campaign == campaign)
    if measure:
        q = q.where(Aggregate.measure == measure)
    if dimension:
        q = q.where(Aggregate.dimension == dimension)
    q = q.order_by(Aggregate.campaign, Aggregate.measure, Aggregate.dimension,
                   Aggregate.district, Aggregate.group_value).limit(limit)
    return list(mdb.scalars(q))


def _latest_by_district(mdb: Session, scope: Scope) -> dict[str, MonitoringRun]:
    """The newest aggregated campaign of each district (by closing date)."""
    latest: dict[str, MonitoringRun] = {}
    for run in campaigns(mdb, scope):
        latest.setdefault(run.district, run)
    return latest


# ------------------------------------------------------------------ tables

_EST_COLUMNS = [
    Column("n", _("n"), "int"), Column("estimate", _("Estimate"), "value"),
    Column("ci_low", _("95% CI low"), "value"), Column("ci_high", _("95% CI high"), "value"),
]


def overview(mdb: Session, scope: Scope, locale: str = "zh_CN") -> Table:
    """Indicators against targets per district, from each district's newest campaign."""
    rows: list[dict[str, Any]] = []
    for district, run in sorted(_latest_by_district(mdb, scope).items()):
        q = scope.rows(sa.select(Aggregate).where(
            Aggregate.campaign == run.campaign, Aggregate.kind == "indicator",
            Aggregate.dimension == "district", Aggregate.group_value == district))
        for r in mdb.scalars(q.order_by(Aggregate.measure)):
            rows.append({"district": district, "indicator": _label(r, locale),
                         "measure": r.measure, "campaign": run.campaign, **_cells(r),
                         "target_text": _target_text(r.target, r.direction)})
    cols = [Column("district", _("District")), Column("indicator", _("Indicator")),
            Column("campaign", _("Campaign")), *_EST_COLUMNS,
            Column("target_text", _("Target")), Column("judgement", _("Judgement"), "judgement")]
    return Table("overview", _("Indicators against targets"), cols, rows)


def _target_text(target: float | None, direction: str | None) -> str:
    if target is None or not direction:
        return ""
    return f"{direction} {100 * target:g}%"


def groups(mdb: Session, scope: Scope, campaign: str | None, measure: str | None,
           dimension: str = "group", locale: str = "zh_CN") -> Table:
    """One measure of one campaign across the groups of one dimension, with intervals."""
    runs = campaigns(mdb, scope)
    if campaign and campaign not in {r.campaign for r in runs}:
        raise LookupError(f"campaign {campaign!r} not found")
    if not campaign and runs:
        campaign = runs[0].campaign
    if dimension not in DIMENSIONS:
        raise ValueError(f"dimension: must be one of {', '.join(DIMENSIONS)}")
    if not measure:
        found = measures(mdb, scope, campaign, locale)
        measure = found[0][0] if found else None
    rows: list[dict[str, Any]] = []
    label = ""
    if campaign and measure:
        for r in aggregates(mdb, scope, campaign, measure, dimension):
            label = _label(r, locale)
            rows.append({"group": r.group_value, "district": r.district, **_cells(r),
                         "method": method_text(r.method, locale),
                         "target_text": _target_text(r.target, r.direction)})
    cols = [Column("group", _("Group"), "group"), Column("district", _("District")),
            *_EST_COLUMNS[:2], Column("se", _("SE"), "value"), *_EST_COLUMNS[2:],
            Column("deff", _("Design effect"), "number"), Column("reason", _("Note"), "reason"),
            Column("method", _("Method"))]
    return Table("groups", label or _("Group comparisons"), cols, rows,
                 {"campaign": campaign or "", "measure": measure or "", "dimension": dimension})


def trends(mdb: Session, scope: Scope, measure: str | None, locale: str = "zh_CN") -> Table:
    """One measure across campaigns (by closing date), per district."""
    if not measure:
        found = [m for m in measures(mdb, scope, None, locale) if m[1] == "indicator"]
        measure = found[0][0] if found else None
    runs = {r.campaign: r for r in campaigns(mdb, scope)}
    rows: list[dict[str, Any]] = []
    label = ""
    if measure:
        for r in aggregates(mdb, scope, None, measure, "district"):
            run = runs.get(r.campaign)
            if run is None:
                continue
            label = _label(r, locale)
            rows.append({"district": r.district, "campaign": r.campaign,
                         "year": run.closes_at.year if run.closes_at else None,
                         "kind": r.kind,
                         "closes_at": run.closes_at.date().isoformat() if run.closes_at else "",
                         **_cells(r), "target_text": _target_text(r.target, r.direction)})
    rows.sort(key=lambda x: (x["district"], x["closes_at"], x["campaign"]))
    cols = [Column("district", _("District")), Column("campaign", _("Campaign")),
            Column("closes_at", _("Closed"), "date"), *_EST_COLUMNS,
            Column("target_text", _("Target")), Column("judgement", _("Judgement"), "judgement")]
    return Table("trends", label or _("Trends"), cols, rows, {"measure": measure or ""})


def districts(mdb: Session, scope: Scope, locale: str = "zh_CN",
              known: Sequence[str] = ()) -> Table:
    """One row per district (newest campaign): respondents, each indicator, mean ability.

    Districts in ``known`` (the city's list) without an aggregated campaign get a row
    saying so, so a missing district is seen rather than silently absent."""
    latest = _latest_by_district(mdb, scope)
    wanted: list[tuple[str, str, str]] = []
    rows: list[dict[str, Any]] = []
    for district, run in sorted(latest.items()):
        row: dict[str, Any] = {"district": district, "campaign": run.campaign,
                               "n_respondents": run.n_respondents}
        q = scope.rows(sa.select(Aggregate).where(
            Aggregate.campaign == run.campaign, Aggregate.dimension == "district",
            Aggregate.group_value == district,
            Aggregate.kind.in_(("indicator", "ability"))))
        for r in mdb.scalars(q.order_by(Aggregate.kind.desc(), Aggregate.measure)):
            if r.measure not in [w[0] for w in wanted]:
                wanted.append((r.measure, _label(r, locale), _value_kind(r.kind)))
            row[r.measure] = r.estimate
            row[r.measure + "__judgement"] = r.judgement or ""
            row[r.measure + "__reason"] = r.suppression_reason or ""
        rows.append(row)
    for district in sorted(set(known) - set(latest)):
        if scope.district in (None, district):
            rows.append({"district": district, "campaign": "", "n_respondents": None,
                         "no_data": True})
    rows.sort(key=lambda r: r["district"])
    cols = [Column("district", _("District")), Column("campaign", _("Campaign")),
            Column("n_respondents", _("Respondents"), "int")]
    for m, label, vk in wanted:
        cols.append(Column(m, label, vk))
        if vk == "share":
            cols.append(Column(m + "__judgement", label, "judgement"))
    return Table("districts", _("Districts"), cols, rows)


def table(name: str, mdb: Session, scope: Scope, params: dict[str, str],
          locale: str = "zh_CN", known: Sequence[str] = ()) -> Table:
    """The named table with the page's query parameters (used by pages, charts, exports);
    ``known``: the city's district codes (the districts table lists those without data)."""
    if name == "overview":
        return overview(mdb, scope, locale)
    if name == "groups":
        return groups(mdb, scope, params.get("campaign") or None, params.get("measure") or None,
                      params.get("dimension") or "group", locale)
    if name == "trends":
        return trends(mdb, scope, params.get("measure") or None, locale)
    if name == "districts":
        return districts(mdb, scope, locale, known)
    raise KeyError(name)


# ------------------------------------------------------------------ display


def format_value(value: Any, kind: str, value_kind: str = "number") -> str:
    """A cell as shown on a page ('' for missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if kind == "value":
        kind = value_kind
    if kind == "share":
        return f"{100 * float(value):.1f}%"
    if kind == "number":
        return f"{float(value):.2f}" if abs(float(value)) < 100 else f"{float(value):.1f}"
    if kind == "int":
        return str(int(value))
    return str(value)
