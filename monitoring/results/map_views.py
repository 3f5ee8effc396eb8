"""The district map page (thin: parse, call, render)."""
from __future__ import annotations

from typing import Any

from markupsafe import Markup
from pyramid.httpexceptions import HTTPSeeOther

from learningcity.i18n import _, flash
from monitoring.results import dashboard, districtmap
from monitoring.results.views import PAGES, MonitoringArea, T, _district_names, _scope

UPLOAD_LIMIT = districtmap.MAX_BYTES


def _map_page(request: Any, problems: list[str] | None = None) -> dict[str, Any]:
    scope = _scope(request)
    mdb, locale = request.monitoring_db, request.locale_name
    indicators = districtmap.indicators(mdb, scope, locale)
    years = districtmap.years(mdb, scope)
    code = request.GET.get("indicator", "")[:120]
    if code not in {c for c, _label in indicators}:
        code = indicators[0][0] if indicators else ""
    try:
        year: int | None = int(request.GET.get("year", ""))
    except ValueError:
        year = None
    if year not in years:
        year = years[0] if years else None
    svg = districtmap.map_svg_for(request.dbsession, scope, code, year, locale,
                                  monitoring_db=mdb) if code else None
    values = districtmap.values_for(mdb, scope, code, year) if code else {}
    names = _district_names(request)
    features = districtmap.stored_features(request.dbsession) or []
    codes = sorted({f.code for f in features} | set(values))
    if scope.district is not None:
        codes = [c for c in codes if c == scope.district]
    fmt = dashboard.format_value
    rows = []
    for c in codes:
        v = values.get(c) or {}
        kind = "share"
        verdict = v.get("verdict") or "no_data"
        rows.append({
            "district": names.get(c, c),
            "estimate": fmt(v.get("estimate"), kind) if v.get("estimate") is not None else "–",
            "interval": (f"{fmt(v.get('ci_low'), kind)} – {fmt(v.get('ci_high'), kind)}"
                         if v.get("ci_low") is not None and v.get("ci_high") is not None
                         else ""),
            "target": dashboard._target_text(v.get("target"), v.get("direction")),
            "verdict": verdict, "verdict_label": districtmap.VERDICT_LABELS[verdict]})
    return {"name": "map", "pages": PAGES, "scope": scope,
            "simulated": dashboard.simulated_campaigns(mdb, scope),
            "indicators": indicators, "years": years, "indicator": code, "year": year,
            "svg": Markup(svg) if svg else None, "rows": rows, "has_boundaries": bool(features),
            "legend": [(v, districtmap.COLOURS[v], districtmap.VERDICT_LABELS[v])
                       for v in districtmap.VERDICTS],
            "can_upload": request.has_permission("monitoring_admin", request.context),
            "problems": problems or [], "max_kb": UPLOAD_LIMIT // 1000}


def map_page(request: Any) -> dict[str, Any]:
    return _map_page(request)


def map_upload(request: Any) -> Any:
    """Admins upload a GeoJSON of the district boundaries; nothing changes on an error."""
    upload = request.POST.get("geojson")
    if not hasattr(upload, "file"):
        problems = [request.translate(_("Choose a GeoJSON file to upload."))]
    else:
        data = upload.file.read(UPLOAD_LIMIT + 1)
        try:
            with request.dbsession.begin_nested():
                districtmap.save_boundaries(request.dbsession, data,
                                            getattr(request.identity, "username", ""))
        except districtmap.MapError as exc:
            problems = [str(exc)]
        else:
            flash(request, _("District boundaries stored."))
            return HTTPSeeOther(request.route_url("dashboard.map"))
    request.response.status_int = 400
    return _map_page(request, problems)


def includeme(config: Any) -> None:
    config.add_route("dashboard.map", "/monitoring/map", factory=MonitoringArea)
    config.add_view(map_page, route_name="dashboard.map", permission="monitoring",
                    renderer=T + "dashboard_map.pt", request_method="GET")
    config.add_view(map_upload, route_name="dashboard.map", permission="monitoring_admin",
                    renderer=T + "dashboard_map.pt", request_method="POST")
