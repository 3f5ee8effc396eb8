"""The item bank: items with versions and a life cycle, calibrations, publishing.

A Pyramid add-on: ``includeme`` adds the researcher pages under ``/research/``.
"""
from __future__ import annotations

from typing import Any

from pyramid.authorization import Allow

from learningcity.i18n import _


class ResearchArea:
    """Researcher pages: researchers and admins may look and publish; no one else."""

    __acl__ = [
        (Allow, "role:researcher", ("research", "publish")),
        (Allow, "role:admin", ("research", "publish")),
    ]

    def __init__(self, request: Any) -> None:
        self.request = request


def includeme(config: Any) -> None:
    routes = (
        ("itembank.items", "/research/items"),
        ("itembank.item", "/research/items/{code}"),
        ("itembank.item_status", "/research/items/{code}/status"),
        ("itembank.item_edit", "/research/items/{code}/edit"),
        ("itembank.item_curve", "/research/items/{code}/curve.png"),
        ("itembank.calibrations", "/research/calibrations"),
        ("itembank.diff", "/research/calibrations/diff"),
        ("itembank.rollback", "/research/calibrations/rollback"),
        ("itembank.calibration", "/research/calibrations/{id}"),
        ("itembank.calibration_info", "/research/calibrations/{id}/information.png"),
        ("itembank.publish", "/research/calibrations/{id}/publish"),
        ("itembank.health", "/research/health"),
        ("itembank.health_chart", "/research/health.png"),
    )
    for name, pattern in routes:
        config.add_route(name, pattern, factory=ResearchArea)
    config.registry.setdefault("staff_links", []).extend([
        {"route": "itembank.items", "label": _("Item bank"), "order": 10,
         "roles": ("researcher", "admin")},
        {"route": "itembank.calibrations", "label": _("Calibrations"), "order": 11,
         "roles": ("researcher", "admin")},
        {"route": "itembank.health", "label": _("Bank health"), "order": 12,
         "roles": ("researcher", "admin")},
    ])
    config.add_translation_dirs("itembank:locale/")
    config.scan(".views")
