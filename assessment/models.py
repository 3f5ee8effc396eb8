"""Test sessions and their answers: everything a resident's test needs lives here.

A session is found by the SHA-256 of its link token (the token itself is never
stored). The engine state is kept as JSON so any worker can serve the next step.
Each answer is one row, unique per (session, position): resending is harmless.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from learningcity.db import Base, UTCDateTime, utcnow

SESSION_STATUSES = ("consent", "background", "testing", "finished", "expired", "withdrawn")


class TestSession(Base):
    """One resident taking one instrument, from consent to result."""

    __tablename__ = "test_session"
    __test__ = False  # not a pytest test class

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instrument.id"), index=True)
    #: the calibration published when the session started (kept for the whole session)
    calibration_id: Mapped[int] = mapped_column(sa.ForeignKey("calibration.id"))
    campaign: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    invitation: Mapped[str | None] = mapped_column(sa.String(64))
    #: the district staff scoping goes by: the campaign's (a fact of the invitation), never
    #: a background answer; None (no campaign): only city-level staff see the session
    district_code: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="consent")
    locale: Mapped[str] = mapped_column(sa.String(8), default="zh_CN")
    background: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    seed: Mapped[int] = mapped_column(sa.BigInteger)
    engine_state: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    n_answered: Mapped[int] = mapped_column(default=0)
    theta: Mapped[float | None] = mapped_column()
    se: Mapped[float | None] = mapped_column()
    final_method: Mapped[str | None] = mapped_column(sa.String(8))
    score: Mapped[float | None] = mapped_column()
    score_se: Mapped[float | None] = mapped_column()
    level: Mapped[str | None] = mapped_column(sa.String(16))
    stop_reason: Mapped[str | None] = mapped_column(sa.String(32))
    #: optimistic lock: every change of state bumps it
    revision: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    consented_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: when the retention purge de-identified the session (token, links and background
    #: gone; what is kept is described in docs/privacy.md)
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    answers: Mapped[list[Answer]] = relationship(
        back_populates="session", order_by="Answer.position", cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": revision}


class Answer(Base):
    """One answer at one position, with the item version shown and the estimate after it."""

    __tablename__ = "test_answer"
    __table_args__ = (sa.UniqueConstraint("session_id", "position", name="one_per_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        sa.ForeignKey("test_session.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column()
    item_version_id: Mapped[int] = mapped_column(sa.ForeignKey("item_version.id"))
    choice: Mapped[int] = mapped_column()
    score: Mapped[int] = mapped_column()
    is_pilot: Mapped[bool] = mapped_column(default=False)
    response_ms: Mapped[int | None] = mapped_column()
    theta_after: Mapped[float | None] = mapped_column()
    se_after: Mapped[float | None] = mapped_column()
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    session: Mapped[TestSession] = relationship(back_populates="answers")
