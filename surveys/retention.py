"""Retention of survey sessions: what ``learningcity retention purge`` does to this package.

Sessions whose last change (or finish) is older than ``surveys.retention_years``, else
``assessment.retention_years`` (default 3), are de-identified: the link token (its
hash), the campaign, invitation, district and the link to the test session are removed,
and so are the background answers (age band, sex, district, street, occupation,
education) and every free-text answer; the coded answers and scale scores stay as
de-identified rows (for scale calibration), as the survey introduction says.
Idempotent: a de-identified session carries ``purged_at`` and is not looked at again.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity import retention as shared
from learningcity.people import PERSON_FIELDS

from .models import SurveyAnswer, SurveyDefinition, SurveySession
from .services import definition_survey

#: answer kinds whose text may say anything about the person: never kept
FREE_TEXT = frozenset({"text", "other_text", "date"})


def retention_years(settings: Mapping[str, Any]) -> int:
    """``surveys.retention_years``, else ``assessment.retention_years`` (default 3)."""
    return shared.retention_years(settings, "surveys.retention_years")


def _identifying(db: Session, definition_ids: set[int]) -> dict[int, set[str]]:
    """Definition id -> the answer keys that are background or free text."""
    out: dict[int, set[str]] = {}
    for definition in db.scalars(sa.select(SurveyDefinition).where(
            SurveyDefinition.id.in_(definition_ids))):
        survey = definition_survey(definition)
        out[definition.id] = {f.name for f in survey.fields()
                              if f.kind in FREE_TEXT or f.name in PERSON_FIELDS} | \
            set(PERSON_FIELDS)
    return out


def purge(db: Session, *, now: dt.datetime, settings: Mapping[str, Any],
          dry_run: bool) -> dict[str, int]:
    """De-identify survey sessions past their retention (see the module docstring).

    Counts: ``survey_sessions_deidentified``, ``survey_answers_deleted`` (background and
    free text) and ``survey_answers_kept``. Does not commit.
    """
    before = shared.years_before(now, retention_years(settings))
    last = sa.func.coalesce(SurveySession.finished_at, SurveySession.updated_at)
    due = list(db.execute(sa.select(SurveySession.id, SurveySession.definition_id).where(
        SurveySession.purged_at.is_(None), last < before).order_by(SurveySession.id)))
    counts = {"survey_sessions_deidentified": len(due), "survey_answers_deleted": 0,
              "survey_answers_kept": 0}
    if not due:
        return counts
    identifying = _identifying(db, {d for _i, d in due})
    definition_of = dict(due)
    drop: list[int] = []
    for chunk in _chunks([i for i, _d in due]):
        for answer_id, session_id, name in db.execute(
                sa.select(SurveyAnswer.id, SurveyAnswer.session_id, SurveyAnswer.name)
                .where(SurveyAnswer.session_id.in_(chunk))):
            if name in identifying[definition_of[session_id]]:
                drop.append(answer_id)
            else:
                counts["survey_answers_kept"] += 1
    counts["survey_answers_deleted"] = len(drop)
    if dry_run:
        return counts
    for chunk in _chunks(drop):
        db.execute(sa.delete(SurveyAnswer).where(SurveyAnswer.id.in_(chunk))
                   .execution_options(synchronize_session=False))
    for chunk in _chunks([i for i, _d in due]):
        db.execute(sa.update(SurveySession).where(SurveySession.id.in_(chunk)).values(
            token_hash=sa.literal("purged:") + sa.cast(SurveySession.id, sa.String),
            campaign=None, invitation=None, district=None, test_session_id=None,
            test_token_sealed=None, prefilled=[], purged_at=now,
            revision=SurveySession.revision + 1)
            .execution_options(synchronize_session=False))
    db.expire_all()
    return counts


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]
