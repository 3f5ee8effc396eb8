"""Demo content of surveys: the default learning-needs survey, imported and published once.

Idempotent: the shipped document is recognised by its content hash, so a second start
stores nothing; an operator's later version stays published.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from .definition import DEFAULTS_DIR
from .services import DEFAULT_SURVEY, import_survey, publish_version, published_survey

DEMO_ACTOR = "demo"


def load(db: Session) -> None:
    """Import ``defaults/learning_needs.json``; publish it when nothing is published yet."""
    outcome = import_survey(db, DEFAULTS_DIR / "learning_needs.json", DEMO_ACTOR)
    if published_survey(db, DEFAULT_SURVEY) is None:
        publish_version(db, outcome.definition, DEMO_ACTOR)
