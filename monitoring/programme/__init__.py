"""The action plan monitored: one indicator system, district and department reports,
progress against the plan's targets (``monitoring/README.md``, "The programme wing").

A Pyramid add-on: ``includeme`` adds the programme pages (``views.py``)."""
from __future__ import annotations

from typing import Any


def includeme(config: Any) -> None:
    config.include("monitoring.programme.views")
