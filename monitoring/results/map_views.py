"""The district map and the yearly monitoring report pages (thin: parse, call, render)."""
from __future__ import annotations

from typing import Any

from pyramid.response import Response

from monitoring.results.views import MonitoringArea


def _not_yet(request: Any) -> Response:
    return Response("…", content_type="text/plain", charset="utf-8")


def includeme(config: Any) -> None:
    for name, pattern in (("dashboard.map", "/monitoring/map"),
                          ("dashboard.report", "/monitoring/report")):
        config.add_route(name, pattern, factory=MonitoringArea)
        config.add_view(_not_yet, route_name=name, permission="monitoring")
