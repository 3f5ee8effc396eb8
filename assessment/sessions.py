"""What other packages read of test sessions: plain frozen records, never ORM objects.

The contract of ``assessment`` (see ``assessment/README.md``, "Contract"): monitoring
looks sessions up by link token and by campaign (which invitations finished, their
latest finished session, its scored answers for plausible values); surveys read the
test session behind a result page's link. Nothing here changes a session.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity.tokens import hash_token

from .models import Answer, TestSession


@dataclass(frozen=True)
class TestSessionInfo:
    """A test session as other packages see it (its answers: :func:`finished_answers`)."""

    __test__ = False  # not a pytest test class

    id: int
    instrument_id: int
    #: the calibration the session is scored with (fixed when it started)
    calibration_id: int
    campaign: str | None
    invitation: str | None
    #: the campaign's district (staff scoping); None without a campaign
    district_code: str | None
    #: ``consent``, ``background``, ``testing``, ``finished``, ``expired`` or ``withdrawn``
    status: str
    locale: str
    #: background answers (age_band, sex, district, street, occupation, education)
    background: dict[str, str]
    answered: int
    #: final ability estimate and its standard error once finished (current before)
    theta: float | None
    se: float | None
    #: reporting-scale score, its standard error and the proficiency level code
    score: float | None
    score_se: float | None
    level: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @property
    def finished(self) -> bool:
        return self.status == "finished"


def session_info(session: TestSession) -> TestSessionInfo:
    """The plain record of a session row (for this package's callers of the contract)."""
    return TestSessionInfo(
        id=session.id, instrument_id=session.instrument_id,
        calibration_id=session.calibration_id, campaign=session.campaign,
        invitation=session.invitation, district_code=session.district_code,
        status=session.status, locale=session.locale,
        background=dict(session.background or {}), answered=session.n_answered or 0,
        theta=session.theta, se=session.se, score=session.score, score_se=session.score_se,
        level=session.level, started_at=session.consented_at or session.created_at,
        finished_at=session.finished_at)


def session_by_token(db: Session, token: str) -> TestSessionInfo | None:
    """The session behind a link token, or None (nothing is changed: no expiry here)."""
    session = db.scalar(sa.select(TestSession).where(
        TestSession.token_hash == hash_token(token)))
    return None if session is None else session_info(session)


def _finished(campaign: str, invitations: Collection[str] | None) -> Any:
    """Finished sessions of a campaign; one wanted invitation is looked up by itself, many
    are read campaign-wide and filtered by the caller (no huge IN list)."""
    query = sa.select(TestSession).where(TestSession.campaign == campaign,
                                         TestSession.status == "finished",
                                         TestSession.invitation.is_not(None))
    if invitations is not None and len(invitations) == 1:
        query = query.where(TestSession.invitation == next(iter(invitations)))
    return query


def finished_sessions(db: Session, campaign: str, invitations: Collection[str] | None = None
                      ) -> dict[str, TestSessionInfo]:
    """Invitation public id -> its latest finished session in the campaign (one query).

    ``invitations`` narrows the answer to those public ids.
    """
    wanted = None if invitations is None else set(invitations)
    out: dict[str, TestSessionInfo] = {}
    for session in db.scalars(_finished(campaign, wanted).order_by(TestSession.id)):
        if wanted is None or session.invitation in wanted:
            out[session.invitation] = session_info(session)  # later ids replace earlier
    return out


def finished_invitations(db: Session, campaign: str,
                         invitations: Collection[str] | None = None) -> set[str]:
    """Invitation public ids of the campaign with a finished test session (one query)."""
    wanted = None if invitations is None else set(invitations)
    query = _finished(campaign, wanted).with_only_columns(TestSession.invitation).distinct()
    found = set(db.scalars(query))
    return found if wanted is None else found & wanted


def withdrawn_invitations(db: Session, campaign: str) -> set[str]:
    """Invitation public ids of the campaign whose test session the resident withdrew."""
    return set(db.scalars(sa.select(TestSession.invitation).where(
        TestSession.campaign == campaign, TestSession.status == "withdrawn",
        TestSession.invitation.is_not(None)).distinct()))


@dataclass(frozen=True)
class ScoredAnswers:
    """A finished session's scored answers (pilot items left out), in the order given:
    what plausible values are drawn from, with the calibration to draw them with."""

    session_id: int
    calibration_id: int
    #: the item versions shown and the scores (categories, 0 = lowest) they got
    version_ids: tuple[int, ...]
    scores: tuple[int, ...]


def finished_answers(db: Session, campaign: str, invitations: Collection[str] | None = None
                     ) -> dict[str, ScoredAnswers]:
    """Invitation public id -> the scored answers of its latest finished session.

    Two queries for the whole campaign, whatever its size: the sessions, then the
    answers of the campaign's finished sessions (of the one session when one invitation
    is asked for).
    """
    sessions = finished_sessions(db, campaign, invitations)
    wanted = {s.id for s in sessions.values()}
    if not wanted:
        return {}
    version_ids: dict[int, list[int]] = {sid: [] for sid in wanted}
    scores: dict[int, list[int]] = {sid: [] for sid in wanted}
    query = (sa.select(Answer.session_id, Answer.item_version_id, Answer.score)
             .join(TestSession, TestSession.id == Answer.session_id)
             .where(TestSession.campaign == campaign, TestSession.status == "finished",
                    Answer.is_pilot.is_(False))
             .order_by(Answer.session_id, Answer.position))
    if len(wanted) == 1:
        query = query.where(Answer.session_id == next(iter(wanted)))
    for session_id, version_id, score in db.execute(query):
        if session_id in wanted:
            version_ids[session_id].append(version_id)
            scores[session_id].append(score)
    return {pid: ScoredAnswers(session_id=s.id, calibration_id=s.calibration_id,
                               version_ids=tuple(version_ids[s.id]), scores=tuple(scores[s.id]))
            for pid, s in sessions.items()}
