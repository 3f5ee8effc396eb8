"""What the programme pages show, built from this wing's services (the view layer's
helpers: they take the request for its language, routes and databases; the figures
come from :mod:`progress`, :mod:`reporting` and :mod:`catalogue`)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from learningcity.districts import list_districts
from learningcity.i18n import _
from monitoring.programme import catalogue, progress, reporting
from monitoring.programme.catalogue import IndicatorSpec
from monitoring.programme.reporting import Entry, Unit
from monitoring.results import charts, districtmap

STATUS_LABELS = {"achieved": _("target reached"), "on_track": _("on track"),
                 "behind": _("behind"), "no_data": _("no data")}
STATE_LABELS = {"draft": _("draft"), "submitted": _("submitted"),
                "returned": _("returned"), "resubmitted": _("resubmitted"),
                "accepted": _("accepted"), "missing": _("not started")}
KIND_LABELS = {"count": _("count"), "share": _("share"), "ratio": _("ratio")}
SOURCE_LABELS = {"district": _("district reports"), "department": _("department reports"),
                 "survey": _("residents' survey"), "frame": _("community frame"),
                 "organisations": _("learning organisations (else district reports)")}
FIELD_LABELS = {"value": _("value"), "denominator": _("denominator"),
                "comment": _("comment"), "code": _("indicator"), "state": _("state"),
                "evidence": _("evidence file")}
FREQUENCY_LABELS = {"yearly": _("yearly"), "half-yearly": _("half-yearly"),
                    "quarterly": _("quarterly")}
#: the indicator form's fields, as its labels say them
FIELD_NAMES = {"code": _("Code"), "area_code": _("Area"), "name_zh": _("Name (Chinese)"),
               "name_en": _("Name (English)"), "kind": _("Kind"), "unit": _("Unit"),
               "direction": _("Direction"), "baseline_year": _("Baseline year"),
               "baseline_value": _("Baseline value"), "target": _("Target"),
               "target_year": _("Target year"), "source": _("Data source"),
               "source_code": _("Source code"), "frequency": _("Reporting frequency"),
               "responsible": _("Responsible"), "gnlc": _("UNESCO GNLC Key Features"),
               "change_factor": _("Change factor"), "cumulative": _("Cumulative")}
#: the map's colours are districtmap's verdicts: on track or reached / behind / no data
MAP_VERDICT = {"achieved": "met", "on_track": "met", "behind": "not_met",
               "no_data": "no_data"}
MAP_LEGEND = {"met": _("on track or target reached"), "not_met": _("behind the plan"),
              "undetermined": _("not judged"), "no_data": _("no accepted report")}


def fmt(value: float | None, kind: str) -> str:
    """A value as the pages show it: counts whole, shares in percent, ratios 2 d.p."""
    if value is None:
        return "–"
    if kind == "count":
        return f"{value:,.0f}"
    if kind == "share":
        return f"{100 * value:.1f} %"
    return f"{value:.2f}"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def target_text(spec: Any) -> str:
    if spec.target is None:
        return "–"
    return f"{spec.direction} {fmt(spec.target, spec.kind)}"


def responsible_text(request: Any, spec: Any) -> str:
    """The responsible units by name: departments, and "every district"."""
    names = {c: (en if request.locale_name.startswith("en") else zh)
             for c, zh, en in catalogue.departments(request.dbsession)}
    parts = [request.translate(_("every district")) if c == "districts" else names.get(c, c)
             for c in spec.responsible.split()]
    return ", ".join(parts) or "–"


def district_names(request: Any) -> dict[str, str]:
    return {d.code: d.name(request.locale_name) for d in list_districts(request.dbsession)}


def unit_name(request: Any, unit: Unit) -> str:
    if unit.kind == "district":
        return district_names(request).get(unit.code, unit.code)
    names = {c: (en if request.locale_name.startswith("en") else zh)
             for c, zh, en in catalogue.departments(request.dbsession)}
    return names.get(unit.code, unit.code)


def problem_text(request: Any, problem: tuple[str, str, str]) -> str:
    """A report problem in the page's language: indicator, field, what is wrong."""
    code, field, text = problem
    t = request.translate
    parts = []
    if code:
        spec = catalogue.get_indicator(request.dbsession, code)
        parts.append(spec.name(request.locale_name) if spec else code)
    if field:
        parts.append(t(FIELD_LABELS.get(field, field)))
    said = t(text)
    return " · ".join(parts) + ": " + said if parts else said


def year_param(request: Any, rows: Sequence[Any]) -> int:
    years = sorted({r.year for r in rows}) or list(range(catalogue.PLAN_START,
                                                          catalogue.PLAN_END + 1))
    try:
        year = int(request.GET.get("year", ""))
    except ValueError:
        year = progress.latest_year(rows) or years[-1]
    return year if year in years else years[-1]


def _years(rows: Sequence[Any]) -> list[int]:
    return sorted({r.year for r in rows}) or list(range(catalogue.PLAN_START,
                                                        catalogue.PLAN_END + 1))


def progress_context(request: Any, rows: Sequence[Any], year: int,
                     scope: str | None) -> dict[str, Any]:
    """The progress page: every indicator's city total in ``year`` by area, with the
    user's district beside it when a district account looks."""
    tree = catalogue.tree(request.dbsession)
    city = {r.indicator: r for r in rows if r.year == year and r.district == ""}
    own = {r.indicator: r for r in rows if r.year == year and scope and r.district == scope}
    locale = request.locale_name
    areas = []
    for _code, zh, en, specs in tree.areas:
        items = []
        for spec in specs:
            row = city.get(spec.code)
            mine = own.get(spec.code)
            items.append({"spec": spec, "name": spec.name(locale),
                          "value": fmt(row.value if row else None, spec.kind),
                          "target": target_text(spec), "reached": pct(row and row.reached),
                          "expected": pct(row and row.expected),
                          "status": row.status if row else "no_data",
                          "own": fmt(mine.value if mine else None, spec.kind),
                          "url": request.route_path("programme.indicator", code=spec.code,
                                                    _query={"year": year})})
        areas.append({"name": en if locale.startswith("en") else zh, "items": items})
    return {"areas": areas, "year": year, "years": _years(rows), "scope": scope,
            "scope_name": district_names(request).get(scope or "", ""),
            "simulated": any(r.simulated for r in rows),
            "status_labels": STATUS_LABELS,
            "can_refresh": request.has_permission("review", request.context)}


def indicator_context(request: Any, spec: IndicatorSpec, rows: Sequence[Any], year: int,
                      scope: str | None) -> dict[str, Any]:
    """One indicator: definition, trend by period (city), district contributions in
    ``year``, the chart and the district map."""
    names = district_names(request)
    city_rows = sorted((r for r in rows if r.district == ""), key=lambda r: r.year)
    city_now = next((r for r in city_rows if r.year == year), None)
    total = city_now.value if city_now else None
    districts = []
    for r in sorted((r for r in rows if r.district and r.year == year),
                    key=lambda r: r.district):
        share_of_city = (r.value / total if spec.kind == "count" and total and r.value
                         is not None else None)
        districts.append({"name": names.get(r.district, r.district),
                          "value": fmt(r.value, spec.kind),
                          "parts": "" if r.denominator is None else
                          f"{r.numerator:,.0f} / {r.denominator:,.0f}",
                          "share_of_city": pct(share_of_city), "reached": pct(r.reached),
                          "status": r.status})
    trend = [{"year": r.year, "value": fmt(r.value, spec.kind), "reached": pct(r.reached),
              "expected": pct(r.expected), "status": r.status} for r in city_rows]
    q = {"year": year}
    return {"spec": spec, "name": spec.name(request.locale_name), "year": year,
            "years": _years(rows), "target": target_text(spec), "trend": trend,
            "districts": districts, "scope": scope,
            "simulated": any(r.simulated for r in rows),
            "chart_url": request.route_path("programme.chart", code=spec.code, ext="svg"),
            "chart_png": request.route_path("programme.chart", code=spec.code, ext="png"),
            "map_url": (request.route_path("programme.map", code=spec.code, _query=q)
                        if scope != "" and districtmap.stored_features(request.dbsession)
                        else None),
            "status_labels": STATUS_LABELS, "kind_label": KIND_LABELS[spec.kind],
            "source_label": SOURCE_LABELS[spec.source],
            "responsible": responsible_text(request, spec)}


def trend_chart(request: Any, spec: IndicatorSpec, rows: Sequence[Any], ext: str) -> bytes:
    """The indicator across periods: the city total (or, without one, each district's
    value) against the target."""
    t = request.translate
    names = district_names(request)
    city = [(r.year, r.value, None, None) for r in sorted(rows, key=lambda r: r.year)
            if r.district == "" and r.value is not None]
    series: dict[str, list[tuple[Any, float | None, float | None, float | None]]] = {}
    if city:
        series[t(_("City"))] = city
    for r in sorted(rows, key=lambda r: (r.district, r.year)):
        if r.district and r.value is not None and (not city or len(
                {x.district for x in rows if x.district}) == 1):
            series.setdefault(names.get(r.district, r.district), []).append(
                (r.year, r.value, None, None))
    target_label = t(_("${year} target", mapping={"year": spec.target_year or ""}))
    return charts.trend_chart(series, spec.name(request.locale_name),
                              share=spec.kind == "share", target=spec.target, fmt=ext,
                              empty_text=t(_("no data")), target_label=target_label)


def map_svg(request: Any, spec: IndicatorSpec, rows: Sequence[Any], year: int,
            scope: str | None) -> str | None:
    """The district map of the indicator's status in ``year`` (None without boundaries)."""
    features = districtmap.stored_features(request.dbsession)
    if not features:
        return None
    if scope:
        features = [f for f in features if f.code == scope]
    t = request.translate
    values = {r.district: {"verdict": MAP_VERDICT.get(r.status, "no_data")}
              for r in rows if r.district and r.year == year}
    return districtmap.render_map_svg(
        features, values, title=f"{spec.name(request.locale_name)} {year}",
        labels=district_names(request), legend={k: t(v) for k, v in MAP_LEGEND.items()})


def system_context(request: Any, form: dict[str, str], problems: list[str]
                   ) -> dict[str, Any]:
    """The indicator system: areas and indicators, today's survey indicators, the form."""
    db = request.dbsession
    return {"tree": catalogue.tree(db), "survey": catalogue.survey_indicators(db),
            "form": form, "problems": problems,
            "areas": catalogue.areas(db), "departments": catalogue.departments(db),
            "kinds": catalogue.KINDS, "sources": catalogue.SOURCES,
            "directions": catalogue.DIRECTIONS, "fields": catalogue.FIELDS,
            "gnlc_tags": catalogue.GNLC_TAGS, "kind_labels": KIND_LABELS,
            "source_labels": SOURCE_LABELS, "fmt": fmt, "target_text": target_text,
            "frequency_labels": FREQUENCY_LABELS,
            "responsible": lambda spec: responsible_text(request, spec),
            "can_edit": request.has_permission("programme_admin", request.context)}


def reports_context(request: Any, unit: Unit | None, today: dt.date) -> dict[str, Any]:
    """The reports list: a unit's own reports per period (staff of a unit), or every
    report and the overdue list (the city office)."""
    db = request.dbsession
    periods = reporting.periods(db)
    rows = []
    if unit is not None:
        have = {r.period_id: r for r in reporting.reports(db, unit)}
        for p in reversed(periods):
            r = have.get(p.id)
            rows.append({"period": p.code, "due": p.due_on.isoformat(),
                         "unit": unit_name(request, unit),
                         "state": r.state if r else "missing",
                         "simulated": bool(r and r.simulated),
                         "url": request.route_path("programme.report", period=p.code,
                                                   kind=unit.kind, unit=unit.code)})
        late = [o for o in reporting.overdue(db, today) if o.unit == unit]
    else:
        for r in reporting.reports(db):
            u = reporting.unit_of(r)
            rows.append({"period": r.period.code, "due": r.period.due_on.isoformat(),
                         "unit": unit_name(request, u), "state": r.state,
                         "simulated": r.simulated,
                         "url": request.route_path("programme.report", period=r.period.code,
                                                   kind=u.kind, unit=u.code)})
        late = reporting.overdue(db, today)
    overdue = [{"period": o.period, "due": o.due_on.isoformat(),
                "unit": unit_name(request, o.unit), "state": o.state,
                "url": request.route_path("programme.report", period=o.period,
                                          kind=o.unit.kind, unit=o.unit.code)}
               for o in late]
    return {"rows": rows, "overdue": overdue, "unit": unit,
            "unit_name": unit_name(request, unit) if unit else "",
            "state_labels": STATE_LABELS, "simulated": any(r["simulated"] for r in rows),
            "office": unit is None}


def report_context(request: Any, period: Any, unit: Unit, report: Any,
                   problems: list[str], entries: dict[str, Entry] | None,
                   can_edit: bool, can_review: bool) -> dict[str, Any]:
    """One report: its indicators with the values (or what was just typed), evidence,
    the state and what the user may do."""
    db = request.dbsession
    specs = reporting.indicators_for(db, unit)
    stored = reporting.values_of(report) if report is not None else {}
    previous = reporting.previous_values(db, report) if report is not None else {}

    def shown(x: float | None) -> str:
        return "" if x is None else f"{x:g}"

    items = []
    for spec in specs:
        e = (entries or {}).get(spec.code)
        v = stored.get(spec.code)
        items.append({"spec": spec, "name": spec.name(request.locale_name),
                      "value": e.value if e else shown(v.value if v else None),
                      "denominator": e.denominator if e else
                      shown(v.denominator if v else None),
                      "comment": e.comment if e else (v.comment if v else ""),
                      "previous": fmt(previous.get(spec.code), spec.kind)
                      if spec.code in previous else "–",
                      "factor": f"{spec.change_factor:g}" if spec.change_factor else ""})
    state = report.state if report is not None else "missing"
    editable = can_edit and state in ("missing",) + reporting.EDITABLE
    md = {"period": period.code, "kind": unit.kind, "unit": unit.code}
    return {"period": period, "unit": unit, "unit_name": unit_name(request, unit),
            "report": report, "state": state, "items": items, "problems": problems,
            "editable": editable,
            "reviewable": can_review and state in reporting.IN_REVIEW,
            "evidence": list(report.evidence) if report is not None else [],
            "state_labels": STATE_LABELS, "kind_labels": KIND_LABELS,
            "simulated": bool(report and report.simulated),
            "max_mb": 5,
            "urls": {name: request.route_path(f"programme.{name}", **md)
                     for name in ("report", "review", "template", "upload",
                                  "evidence_add")}}
