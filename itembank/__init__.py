"""The item bank: items with versions and a life cycle, calibrations, publishing.

A Pyramid add-on: ``includeme`` adds the researcher pages under ``/research/``.
"""
from __future__ import annotations

from typing import Any


def includeme(config: Any) -> None:
    # start-up cost: only the app needs pyramid and the i18n plumbing; at the top every
    # ``import itembank.services`` (the CLI, assessment's simulator) paid 0.1 s for them
    from learningcity.i18n import _

    from .resources import ResearchArea

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
