"""The yearly monitoring report page (thin: parse, call, render)."""
from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPBadRequest

from monitoring.results import report
from monitoring.results.views import MonitoringArea, _district_names, _scope

T = "monitoring:templates/"


def report_page(request: Any) -> dict[str, Any]:
    """``/monitoring/report?year=2025``: the report for the reader's scope (district staff:
    their district); without a year, the newest year with data."""
    scope = _scope(request)
    db = request.monitoring_db
    years = report.campaign_years(db, scope)
    raw = request.GET.get("year", "")
    try:
        year = int(raw) if raw else (years[0] if years else 0)
    except ValueError:
        raise HTTPBadRequest("year: a campaign year such as 2025") from None
    body, message = "", ""
    try:
        body = report.report_body(db, scope, year, request.locale_name, request.translate,
                                  _district_names(request), request.dbsession)
    except report.ReportError as exc:
        message = str(exc)
        if raw:  # a year asked for by name that has no data; no year at all is a page
            request.response.status_int = 404
    return {"body": body, "message": message, "years": years, "year": year}


def includeme(config: Any) -> None:
    config.add_route("dashboard.report", "/monitoring/report", factory=MonitoringArea)
    config.add_view(report_page, route_name="dashboard.report", permission="monitoring",
                    renderer=T + "dashboard_report.pt", context=MonitoringArea)
