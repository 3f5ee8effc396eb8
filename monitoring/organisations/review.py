"""The district's review of a submitted self-assessment and the city office's confirmation.

District staff either return a submitted self-assessment to the organisation with a
comment saying what to change (:func:`return_for_changes`; the organisation changes it
through its link and submits again) or score every criterion (a rubric level). Where
their level differs from the organisation's own, a comment saying why is required. The
weighted score and "recognised" (score at or above the standard's threshold) are
computed here, never typed. The city office (monitors and admins) then confirms the
result; only confirmed results count as recognised
(:mod:`monitoring.organisations.recognition`). A review may be redone, or the
self-assessment returned, until it is confirmed. Every step is on the audit trail.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy.orm import Session

from learningcity import audit
from learningcity.db import utcnow
from learningcity.i18n import _
from monitoring.fieldwork.campaigns import Said
from monitoring.organisations.models import Evaluation
from monitoring.organisations.selfassess import EvaluationError, flush_once
from monitoring.organisations.standards import criteria, is_recognised, weighted_score

COMMENT_CHARS = 1000


def _allowed(evaluation: Evaluation, statuses: tuple[str, ...], revision: int,
             refusal: str) -> None:
    """409 unless the evaluation is in one of ``statuses`` and still at ``revision``."""
    if evaluation.status not in statuses:
        raise EvaluationError([Said(refusal)], 409)
    if revision != evaluation.revision:
        raise EvaluationError([Said(_("the evaluation was changed meanwhile; reload the "
                                    "page"))], 409)


def review(db: Session, evaluation: Evaluation, levels: Mapping[str, str],
           comments: Mapping[str, str], *, actor: str, revision: int,
           now: dt.datetime | None = None) -> Evaluation:
    """Store the district's levels and comments, the weighted score and the recognition.
    Refused (nothing stored) when the self-assessment is not submitted, a level is
    missing or unknown, or a level differs from the self-assessment without a comment."""
    _allowed(evaluation, ("submitted", "reviewed"), revision,
             _("only a submitted self-assessment can be reviewed; a confirmed one is final"))
    problems: list[str] = []
    clean_levels: dict[str, str] = {}
    clean_comments: dict[str, str] = {}
    for number, criterion in enumerate(criteria(evaluation.standard), start=1):
        code = criterion["code"]
        level = (levels.get(code) or "").strip()
        comment = (comments.get(code) or "").strip()
        if level not in [item["level"] for item in criterion["levels"]]:
            problems.append(Said(_("criterion ${n}: choose a level"), n=number))
            continue
        clean_levels[code] = level
        own = evaluation.self_levels.get(code)
        if level != own and not comment:
            problems.append(Said(_("criterion ${n}: your level differs from the "
                                 "organisation's (${own}); say why in a comment"),
                                 n=number, own=own or "–"))
        if len(comment) > COMMENT_CHARS:
            problems.append(Said(_("criterion ${n}: the comment is longer than ${limit} "
                                 "characters"), n=number, limit=COMMENT_CHARS))
        elif comment:
            clean_comments[code] = comment
    if problems:
        raise EvaluationError(problems)
    score = weighted_score(evaluation.standard, clean_levels)
    evaluation.review_levels = clean_levels
    evaluation.review_comments = clean_comments
    evaluation.score = score
    evaluation.recognised = is_recognised(evaluation.standard, score)
    evaluation.reviewed_at, evaluation.reviewed_by = now or utcnow(), actor
    evaluation.status = "reviewed"
    flush_once(db)
    audit.record(db, actor=actor, action="evaluation.review",
                 target=f"organisation:{evaluation.organisation.code}",
                 detail={"year": evaluation.year, "score": score,
                         "recognised": evaluation.recognised, "levels": clean_levels,
                         "differs": sorted(clean_comments)})
    return evaluation


def return_for_changes(db: Session, evaluation: Evaluation, comment: str, *, actor: str,
                       revision: int, now: dt.datetime | None = None) -> Evaluation:
    """Send a submitted (or reviewed, not confirmed) self-assessment back to the
    organisation with ``comment``; its link opens it for changes again and a review
    already saved is cleared (the answers will change). Refused without a comment."""
    _allowed(evaluation, ("submitted", "reviewed"), revision,
             _("only a submitted self-assessment can be returned; a confirmed one is final"))
    comment = (comment or "").strip()
    if not comment:
        raise EvaluationError([Said(_("say what the organisation should change"))])
    if len(comment) > COMMENT_CHARS:
        raise EvaluationError([Said(_("the comment is longer than ${limit} characters"),
                                    limit=COMMENT_CHARS)])
    evaluation.status = "returned"
    evaluation.return_comment = comment
    evaluation.returned_at, evaluation.returned_by = now or utcnow(), actor
    evaluation.review_levels, evaluation.review_comments = {}, {}
    evaluation.score = evaluation.recognised = None
    evaluation.reviewed_at = evaluation.reviewed_by = None
    flush_once(db)
    audit.record(db, actor=actor, action="evaluation.return",
                 target=f"organisation:{evaluation.organisation.code}",
                 detail={"year": evaluation.year, "comment": comment})
    return evaluation


def confirm(db: Session, evaluation: Evaluation, *, actor: str, revision: int,
            now: dt.datetime | None = None) -> Evaluation:
    """The city office confirms a reviewed evaluation (its result becomes final)."""
    _allowed(evaluation, ("reviewed",), revision,
             _("only a reviewed evaluation can be confirmed"))
    evaluation.status = "confirmed"
    evaluation.confirmed_at, evaluation.confirmed_by = now or utcnow(), actor
    flush_once(db)
    audit.record(db, actor=actor, action="evaluation.confirm",
                 target=f"organisation:{evaluation.organisation.code}",
                 detail={"year": evaluation.year, "score": evaluation.score,
                         "recognised": evaluation.recognised})
    return evaluation
