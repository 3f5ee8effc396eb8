"""Learning-needs surveys: versioned definitions, safe skip logic, delivery and scale scoring.

A Pyramid add-on: ``includeme`` adds the resident survey pages and the survey
endpoints of the JSON API.
"""
from __future__ import annotations

from typing import Any


def includeme(config: Any) -> None:
    config.add_translation_dirs("surveys:locale/")
