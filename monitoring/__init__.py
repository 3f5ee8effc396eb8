"""Monitoring: campaigns and sampling, weights, group statistics, indicators and aggregates.

A Pyramid add-on: ``includeme`` adds the district and monitoring pages and API.
"""
from __future__ import annotations

from typing import Any


def includeme(config: Any) -> None:
    config.add_translation_dirs("monitoring:locale/")
    config.include(".entry_views")
    config.include(".dashboard_views")
    config.include(".campaign_views")
