"""The yearly monitoring report page (thin: parse, call, render)."""
from __future__ import annotations

from typing import Any

from pyramid.response import Response

from monitoring.results.views import MonitoringArea


def _not_yet(request: Any) -> Response:
    return Response("…", content_type="text/plain", charset="utf-8")


def includeme(config: Any) -> None:
    config.add_route("dashboard.report", "/monitoring/report", factory=MonitoringArea)
    config.add_view(_not_yet, route_name="dashboard.report", permission="monitoring")
