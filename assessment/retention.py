"""Retention of test sessions: what ``learningcity retention purge`` does to this package.

Sessions whose last activity (or finish) is older than ``assessment.retention_years``
(default 3) are de-identified: the link token (its hash), the background answers, the
campaign, invitation and district and the engine state are removed; the answers stay as
de-identified rows for calibration (item version, choice, score, time, the estimate
after it), as the consent screen says. ``assessment.retention_keep_answers = false``
deletes them instead. Idempotent: a de-identified session carries ``purged_at`` and is
not looked at again.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from pyramid.settings import asbool
from sqlalchemy.orm import Session

from learningcity.retention import retention_years, years_before

from .models import Answer, TestSession
from .services import forget_bank_copies


def _due(before: dt.datetime) -> Any:
    last = sa.func.coalesce(TestSession.finished_at, TestSession.last_activity_at)
    return sa.and_(TestSession.purged_at.is_(None), last < before)


def purge(db: Session, *, now: dt.datetime, settings: Mapping[str, Any],
          dry_run: bool) -> dict[str, int]:
    """De-identify test sessions past their retention (see the module docstring).

    Counts: ``test_sessions_deidentified``, ``test_answers_kept`` (de-identified rows
    left for calibration) and ``test_answers_deleted`` (with
    ``item_bank_copies_deleted`` when answers are deleted). Does not commit.
    """
    before = years_before(now, retention_years(settings))
    keep = asbool(settings.get("assessment.retention_keep_answers", True))
    ids = list(db.scalars(sa.select(TestSession.id).where(_due(before))
                          .order_by(TestSession.id)))
    n_answers = 0
    for chunk in _chunks(ids):
        n_answers += db.scalar(sa.select(sa.func.count(Answer.id)).where(
            Answer.session_id.in_(chunk))) or 0
    counts = {"test_sessions_deidentified": len(ids),
              "test_answers_kept": n_answers if keep else 0,
              "test_answers_deleted": 0 if keep else n_answers}
    if not keep:  # the item bank's copies go with the answers
        counts["item_bank_copies_deleted"] = forget_bank_copies(db, ids, dry_run=dry_run)
    if dry_run or not ids:
        return counts
    for chunk in _chunks(ids):
        if not keep:
            db.execute(sa.delete(Answer).where(Answer.session_id.in_(chunk))
                       .execution_options(synchronize_session=False))
        # one UPDATE per chunk; the token hash becomes a value no SHA-256 hex can equal
        db.execute(sa.update(TestSession).where(TestSession.id.in_(chunk)).values(
            token_hash=sa.literal("purged:") + sa.cast(TestSession.id, sa.String),
            background={}, engine_state={}, campaign=None, invitation=None,
            district_code=None, purged_at=now, revision=TestSession.revision + 1)
            .execution_options(synchronize_session=False))
    db.expire_all()
    return counts


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]
