"""Monitoring pages, charts, downloads and the aggregates API (thin: parse, call
:mod:`monitoring.dashboard`, render).  Every view builds the user's
:class:`~monitoring.dashboard.Scope` first, so district staff see only their
district's rows everywhere."""
from __future__ import annotations

from typing import Any

from pyramid.authorization import Allow
from pyramid.httpexceptions import HTTPBadRequest, HTTPForbidden, HTTPNotFound, HTTPSeeOther
from pyramid.response import Response
from pyramid.view import view_config

from learningcity import audit
from learningcity.api import ApiError
from learningcity.districts import list_districts
from learningcity.i18n import _, flash
from learningcity.people import GROUP_LABELS
from monitoring.results import charts, dashboard, exports
from monitoring.results.indicators import (
    Indicator,
    IndicatorError,
    load_catalogue,
    save_indicator,
)
from monitoring.results.openapi import SPEC
from monitoring.results.warehouse import DIMENSIONS

T = "monitoring:templates/"
#: the action plan's target year (its targets are for 2025)
TARGET_YEAR = 2025
PAGES = (("overview", "dashboard.overview", _("Indicators")),
         ("groups", "dashboard.groups", _("Group comparisons")),
         ("trends", "dashboard.trends", _("Trends")),
         ("districts", "dashboard.districts", _("Districts")),
         ("map", "dashboard.map", _("District map")),
         ("report", "dashboard.report", _("Yearly report")))


class MonitoringArea:
    """Monitoring pages: monitors, admins and district staff (scoped to their district)."""

    __acl__ = [
        (Allow, "role:admin", ("monitoring", "monitoring_admin")),
        (Allow, "role:monitor", "monitoring"),
        (Allow, "role:district", "monitoring"),
    ]

    def __init__(self, request: Any) -> None:
        self.request = request


def _scope(request: Any) -> dashboard.Scope:
    try:
        return dashboard.Scope.for_user(request.identity)
    except dashboard.ScopeError:
        raise HTTPForbidden() from None


def _params(request: Any, name: str) -> dict[str, str]:
    keys = {"groups": ("campaign", "measure", "dimension"), "trends": ("measure",)}.get(name, ())
    out = {k: request.GET.get(k, "")[:120] for k in keys if request.GET.get(k)}
    if out.get("dimension") and out["dimension"] not in DIMENSIONS:
        raise HTTPBadRequest(f"dimension: one of {', '.join(DIMENSIONS)}")
    return out


def _district_names(request: Any) -> dict[str, str]:
    """District code -> name in the page's language (codes stay in exports)."""
    if "lc_district_names" not in request.__dict__:
        request.__dict__["lc_district_names"] = {
            d.code: d.name(request.locale_name) for d in list_districts(request.dbsession)}
    return request.__dict__["lc_district_names"]


def _cell(request: Any, row: dict[str, Any], col: dashboard.Column) -> str:
    value = row.get(col.key)
    t = request.translate
    if col.key == "district" and value:
        return _district_names(request).get(value, value)
    if col.key == "campaign" and row.get("no_data"):
        return t(dashboard.NO_DATA)
    if col.kind == "judgement":
        if value in dashboard.JUDGEMENT_LABELS:
            return t(dashboard.JUDGEMENT_LABELS[value])
        reason = row.get(col.key.replace("__judgement", "__reason") if "__" in col.key
                         else "reason")
        return t(dashboard.REASON_LABELS[reason]) if reason in dashboard.REASON_LABELS else ""
    if col.kind == "reason":
        return t(dashboard.REASON_LABELS[value]) if value in dashboard.REASON_LABELS else ""
    if col.kind == "group":
        if value in GROUP_LABELS:
            return t(GROUP_LABELS[value])
        return _district_names(request).get(value, value or "")
    if col.kind in ("share", "number") and value is None and "__" not in col.key:
        reason = row.get(col.key + "__reason")
        if reason in dashboard.REASON_LABELS:
            return "–"
    return dashboard.format_value(value, col.kind, row.get("value_kind", "number"))


def _page(request: Any, name: str) -> dict[str, Any]:
    scope = _scope(request)
    params = _params(request, name)
    locale = request.locale_name
    try:
        table = dashboard.table(name, request.monitoring_db, scope, params, locale,
                                list(_district_names(request)))
    except ValueError as exc:
        raise HTTPBadRequest(str(exc)) from None
    except LookupError:
        raise HTTPNotFound() from None
    query = {k: v for k, v in table.params.items() if v} or params
    return {
        "table": table, "name": name, "pages": PAGES, "scope": scope,
        "cell": lambda row, col: _cell(request, row, col),
        "chart_url": request.route_path("dashboard.chart", table=name, ext="svg",
                                        _query=query),
        "chart_png": request.route_path("dashboard.chart", table=name, ext="png",
                                        _query=query),
        "downloads": [(fmt.upper(), request.route_path("dashboard.export", table=name, ext=fmt,
                                                       _query=query))
                      for fmt in exports.EXPORT_FORMATS],
        "campaigns": dashboard.campaigns(request.monitoring_db, scope),
        "measures": dashboard.measures(request.monitoring_db, scope,
                                       table.params.get("campaign") or None, locale),
        "dimensions": [(d, dashboard.DIMENSION_LABELS[d]) for d in DIMENSIONS],
        "params": table.params,
        "simulated": dashboard.simulated_campaigns(request.monitoring_db, scope),
    }


@view_config(route_name="dashboard.overview", renderer=T + "dashboard.pt",
             permission="monitoring", context=MonitoringArea)
def overview_page(request: Any) -> dict[str, Any]:
    return _page(request, "overview")


@view_config(route_name="dashboard.groups", renderer=T + "dashboard_groups.pt",
             permission="monitoring", context=MonitoringArea)
def groups_page(request: Any) -> dict[str, Any]:
    return _page(request, "groups")


@view_config(route_name="dashboard.trends", renderer=T + "dashboard_trends.pt",
             permission="monitoring", context=MonitoringArea)
def trends_page(request: Any) -> dict[str, Any]:
    return _page(request, "trends")


@view_config(route_name="dashboard.districts", renderer=T + "dashboard_districts.pt",
             permission="monitoring", context=MonitoringArea)
def districts_page(request: Any) -> dict[str, Any]:
    return _page(request, "districts")


def _table_or_404(request: Any) -> tuple[str, dashboard.Table]:
    name = request.matchdict["table"]
    if name not in dashboard.TABLES:
        raise HTTPNotFound()
    scope = _scope(request)
    try:
        return name, dashboard.table(name, request.monitoring_db, scope, _params(request, name),
                                     request.locale_name, list(_district_names(request)))
    except ValueError as exc:
        raise HTTPBadRequest(str(exc)) from None
    except LookupError:
        raise HTTPNotFound() from None


@view_config(route_name="dashboard.chart", permission="monitoring", context=MonitoringArea)
def chart(request: Any) -> Response:
    name, table = _table_or_404(request)
    ext = request.matchdict["ext"]
    if ext not in charts.FORMATS:
        raise HTTPNotFound()
    t = request.translate
    empty = t(_("No aggregates yet."))
    if name == "trends":
        body = _trend_chart(request, table, ext, empty)
    else:
        body = charts.interval_chart(_panels(request, name, table), ext, empty)
    ctype = "image/svg+xml" if ext == "svg" else "image/png"
    return Response(body=body, content_type=ctype, charset=None if ext == "png" else "utf-8")


def _trend_chart(request: Any, table: dashboard.Table, ext: str, empty: str) -> bytes:
    """The trends chart: one small panel per district, the measure by campaign year with
    its 95 % interval, and the action plan's target line."""
    t = request.translate
    names = _district_names(request)
    by_district: dict[str, list] = {}
    target = None
    for r in table.rows:
        if r["year"] is not None:
            by_district.setdefault(r["district"], []).append(
                (r["year"], r["estimate"], r["ci_low"], r["ci_high"]))
        target = r["target"] if r["target"] is not None else target
    panels = [{"title": names.get(d, d), "points": pts} for d, pts in sorted(by_district.items())]
    years = sorted({y for pts in by_district.values() for y, *_rest in pts})
    share = any(r["value_kind"] == "share" for r in table.rows) or not table.rows
    ability = any(r["kind"] == "ability" for r in table.rows)
    label = (t(_("Target ${year}: ${value}", mapping={
        "year": TARGET_YEAR, "value": f"{100 * target:g} %"})) if target is not None else "")
    return charts.year_trend_chart(panels, years, "share" if share else
                                   ("ability" if ability else "number"), target, label, ext,
                                   empty)


def _panels(request: Any, name: str, table: dashboard.Table) -> list[dict[str, Any]]:
    t = request.translate
    if name == "groups":
        items = [(_cell(request, r, dashboard.Column("group", "", "group"))
                  + (f" ({r['district']})" if table.params.get("dimension") ==
                     "group_x_district" else ""),
                  r["estimate"], r["ci_low"], r["ci_high"]) for r in table.rows]
        share = any(r["value_kind"] == "share" for r in table.rows)
        target = next((r["target"] for r in table.rows if r["target"] is not None), None)
        return [{"title": t(table.title), "share": share, "target": target, "items": items}]
    if name == "overview":
        panels: dict[str, dict[str, Any]] = {}
        for r in table.rows:
            p = panels.setdefault(r["measure"], {"title": r["indicator"], "share": True,
                                                 "target": r["target"], "items": []})
            p["items"].append((_district_names(request).get(r["district"], r["district"]),
                               r["estimate"], r["ci_low"], r["ci_high"]))
        return list(panels.values())
    # districts: one panel per indicator / ability column
    panels_d = []
    for col in table.columns[3:]:
        if col.kind not in ("share", "number"):
            continue
        items = [(_district_names(request).get(r["district"], r["district"]), r.get(col.key),
                  None, None) for r in table.rows]
        panels_d.append({"title": t(col.label), "share": col.kind == "share", "target": None,
                         "items": items})
    return panels_d


@view_config(route_name="dashboard.export", permission="monitoring", context=MonitoringArea)
def export(request: Any) -> Response:
    """A table as CSV, XLSX or SPSS .sav; every download is audited (who, what, when)."""
    name, table = _table_or_404(request)
    fmt = request.matchdict["ext"]
    if fmt not in exports.EXPORT_FORMATS:
        raise HTTPNotFound()
    body, media_type, filename = exports.download(name, table, fmt, request.translate,
                                                  _district_names(request))
    user = request.identity
    audit.record(request.dbsession, actor=user.username, action="monitoring.download",
                 target=f"{name}.{fmt}", address=request.remote_addr or "",
                 detail={"params": table.params, "rows": len(table.rows),
                         "scope": _scope(request).district or "all"})
    ctype, _sep, params = media_type.partition(";")
    return Response(body=body, content_type=ctype,
                    charset="utf-8" if "charset" in params else None,
                    content_disposition=f'attachment; filename="{filename}"')


@view_config(route_name="dashboard.api.aggregates", renderer="json", request_method="GET",
             permission="monitoring", context=MonitoringArea, openapi=True)
def api_aggregates(request: Any) -> dict[str, Any]:
    """Aggregates (district-scoped) filtered by campaign, measure and dimension."""
    try:
        scope = dashboard.Scope.for_user(request.identity)
    except dashboard.ScopeError:
        raise ApiError(403, "forbidden", "no monitoring access") from None
    q = request.GET
    dimension = q.get("dimension") or None
    rows = dashboard.aggregates(request.monitoring_db, scope, q.get("campaign") or None,
                                q.get("measure") or None, dimension,
                                limit=dashboard.API_LIMIT + 1)
    truncated = len(rows) > dashboard.API_LIMIT
    return {"truncated": truncated, "items": [{
        "campaign": r.campaign, "measure": r.measure, "kind": r.kind,
        "label_zh": r.label_zh, "label_en": r.label_en, "dimension": r.dimension,
        "group": r.group_value, "district": r.district, "n": r.n, "estimate": r.estimate,
        "se": r.se, "ci_low": r.ci_low, "ci_high": r.ci_high, "deff": r.deff,
        "suppressed": r.suppressed, "suppression_reason": r.suppression_reason,
        "method": r.method, "target": r.target, "direction": r.direction,
        "judgement": r.judgement, "computed_at": r.computed_at.isoformat()}
        for r in rows[:dashboard.API_LIMIT]]}


# ---------------------------------------------------------- indicator definitions


@view_config(route_name="dashboard.indicators", renderer=T + "dashboard_indicators.pt",
             permission="monitoring", context=MonitoringArea, request_method="GET")
def indicators_page(request: Any) -> dict[str, Any]:
    return _indicator_form(request, load_catalogue(request.dbsession), {}, [])


def _indicator_form(request: Any, cat: Any, form: dict[str, str], problems: list[str]
                    ) -> dict[str, Any]:
    return {"indicators": list(cat), "form": form, "problems": problems, "pages": PAGES,
            "name": "indicators", "example": "${community_training} = 'yes'",
            "can_edit": request.has_permission("monitoring_admin", request.context)}


@view_config(route_name="dashboard.indicators", renderer=T + "dashboard_indicators.pt",
             permission="monitoring_admin", context=MonitoringArea, request_method="POST")
def indicator_save(request: Any) -> Any:
    """Admins add or edit a definition; it is checked first and nothing is saved on a problem."""
    p = request.POST
    form = {k: p.get(k, "").strip() for k in ("code", "name_zh", "name_en", "expression",
                                              "population", "kind", "target", "direction")}
    problems: list[str] = []
    target: float | None = None
    if form["target"]:
        try:
            target = float(form["target"].rstrip("%")) / (100 if form["target"].endswith("%")
                                                          else 1)
        except ValueError:
            problems.append("target: a number such as 0.55 or 55%")
    ind = Indicator(code=form["code"], name_zh=form["name_zh"], name_en=form["name_en"],
                    expression=form["expression"], population=form["population"],
                    kind=form["kind"] or "person", target=target,
                    direction=form["direction"] or ">=")
    if not problems:
        try:
            save_indicator(request.dbsession, ind, request.identity.username)
        except IndicatorError as exc:
            problems = exc.problems
    if problems:
        request.response.status_int = 400
        return _indicator_form(request, load_catalogue(request.dbsession), form, problems)
    flash(request, _("Indicator saved."))
    return HTTPSeeOther(request.route_url("dashboard.indicators"))


def includeme(config: Any) -> None:
    routes = (
        ("dashboard.overview", "/monitoring"),
        ("dashboard.groups", "/monitoring/groups"),
        ("dashboard.trends", "/monitoring/trends"),
        ("dashboard.districts", "/monitoring/districts"),
        ("dashboard.indicators", "/monitoring/indicators"),
        ("dashboard.chart", "/monitoring/charts/{table}.{ext}"),
        ("dashboard.export", "/monitoring/export/{table}.{ext}"),
        ("dashboard.api.aggregates", "/api/v1/monitoring/aggregates"),
    )
    for name, pattern in routes:
        config.add_route(name, pattern, factory=MonitoringArea)
    config.add_api_spec(SPEC)
    config.registry.setdefault("staff_links", []).append(
        {"route": "dashboard.overview", "label": _("Monitoring"), "order": 40,
         "roles": ("monitor", "admin", "district")})
    config.include("monitoring.results.map_views")
    config.include("monitoring.results.report_views")
    config.scan("monitoring.results.views")
