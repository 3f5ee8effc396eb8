"""Monitoring: campaigns and sampling, weights, group statistics, indicators and aggregates.

Four wings and the step that joins three of them (see ``monitoring/README.md``):
``stats/`` (pure statistics), ``fieldwork/`` (campaigns, frames, draws, invitations,
entry, progress), ``results/`` (respondent tables, weights, aggregates, indicators,
dashboards, the monitoring database), ``organisations/`` (learning organisations: the
register, evaluation standards, self-assessments, reviews) and ``closing.py``.

A Pyramid add-on: ``includeme`` adds the district and monitoring pages and API.
"""
from __future__ import annotations

from typing import Any


def includeme(config: Any) -> None:
    config.add_translation_dirs("monitoring:locale/")
    config.include(".fieldwork.entry_views")
    config.include(".results.views")
    config.include(".fieldwork.campaign_views")
    config.include(".organisations.views")
    config.include(".archive.views")
    config.include(".programme")
