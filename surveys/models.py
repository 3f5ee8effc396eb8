"""Database tables of surveys (main database).

* ``SurveyDefinition``: one imported version of a survey document (normalised JSON),
  numbered 1, 2, ... per survey code; never changed once stored.
* ``SurveyPublication``: which version of a survey code residents get now.
* ``SurveySession``: one resident answering one definition version, found by the
  SHA-256 of its link token (the token itself is never stored); ``revision`` is an
  optimistic lock bumped by every change, so two tabs cannot both advance it.
  ``source`` says whether the answers came from the pages or an ODK/Kobo submissions
  export (``instance_id``, unique per survey code: an export imported again adds nothing).
* ``SurveyAnswer``: one row per (session, answer key) with a JSON value, so a page
  post is durable and re-posting it only rewrites the same rows.
* ``SurveyScaleScore``: sum score and IRT theta/SE per rating grid, stored on finish.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from learningcity.db import Base, UTCDateTime, utcnow

from .definition import MAX_KEY

SESSION_STATUSES = ("started", "finished", "expired", "withdrawn")
#: where a session's answers came from: the survey pages (or the API), or a submissions
#: export of ODK Central or KoboToolbox (``learningcity survey import-submissions``)
SESSION_SOURCES = ("page", "odk", "kobo")


class SurveyDefinition(Base):
    """One version of a survey document, as imported (normalised JSON)."""

    __tablename__ = "survey_definition"
    __table_args__ = (sa.UniqueConstraint("code", "version", name="one_per_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), index=True)
    version: Mapped[int] = mapped_column()
    #: the ``version`` written inside the document by its author
    document_version: Mapped[int] = mapped_column()
    title_zh: Mapped[str] = mapped_column(sa.String(300))
    title_en: Mapped[str] = mapped_column(sa.String(300))
    document: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    #: SHA-256 of the canonical JSON: importing the same document again changes nothing
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    source: Mapped[str] = mapped_column(sa.String(300), default="")
    imported_by: Mapped[str] = mapped_column(sa.String(64))
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def title(self, locale: str) -> str:
        return self.title_en if locale.startswith("en") else self.title_zh


class SurveyPublication(Base):
    """The version of a survey code that new sessions get."""

    __tablename__ = "survey_publication"

    code: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    definition_id: Mapped[int] = mapped_column(sa.ForeignKey("survey_definition.id"))
    published_by: Mapped[str] = mapped_column(sa.String(64))
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    definition: Mapped[SurveyDefinition] = relationship()


class SurveySession(Base):
    """One resident answering one survey version, from the first page to the end."""

    __tablename__ = "survey_session"
    __table_args__ = (sa.UniqueConstraint("survey_code", "instance_id",
                                          name="uq_survey_session_instance"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    definition_id: Mapped[int] = mapped_column(sa.ForeignKey("survey_definition.id"),
                                               index=True)
    survey_code: Mapped[str] = mapped_column(sa.String(64), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="started")
    locale: Mapped[str] = mapped_column(sa.String(8), default="zh_CN")
    campaign: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    invitation: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    #: the ability-test session of the same resident (no foreign key: another package)
    test_session_id: Mapped[int | None] = mapped_column(index=True)
    #: the test's link token sealed with a key derived from this session's own token, so
    #: only the holder of the survey link can get back to the test result
    test_token_sealed: Mapped[str | None] = mapped_column(sa.String(128))
    #: district for staff scoping: the campaign's (given at start), never an answer
    district: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    #: the page shown now, ``page[i]`` in a repeat (None once every page is answered)
    page: Mapped[str | None] = mapped_column(sa.String(MAX_KEY))
    #: answer keys that came from the invitation or the test (not typed by the resident)
    prefilled: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    revision: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: when the retention purge de-identified the session (token, links and background
    #: gone; what is kept is described in docs/privacy.md)
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: ``page``, ``odk`` or ``kobo`` (:data:`SESSION_SOURCES`)
    source: Mapped[str] = mapped_column(sa.String(8), default="page", server_default="page")
    #: an imported submission's instance ID (``meta/instanceID`` without ``uuid:``), one
    #: session per ID and survey code, so importing a file again adds nothing
    instance_id: Mapped[str | None] = mapped_column(sa.String(100))

    definition: Mapped[SurveyDefinition] = relationship()
    answers: Mapped[list[SurveyAnswer]] = relationship(
        back_populates="session", order_by="SurveyAnswer.id", cascade="all, delete-orphan")
    scores: Mapped[list[SurveyScaleScore]] = relationship(
        back_populates="session", order_by="SurveyScaleScore.id",
        cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": revision}

    def answer_dict(self) -> dict[str, Any]:
        return {a.name: a.value for a in self.answers}


class SurveyAnswer(Base):
    """The answer to one answer key of a session (a JSON value)."""

    __tablename__ = "survey_answer"
    __table_args__ = (sa.UniqueConstraint("session_id", "name", name="one_per_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        sa.ForeignKey("survey_session.id", ondelete="CASCADE"), index=True)
    #: the answer key: ``name``, ``name[i]`` in repeat instance i, ``page[0]`` the count
    #: of a repeat without one (at most :data:`~surveys.definition.MAX_KEY` characters)
    name: Mapped[str] = mapped_column(sa.String(MAX_KEY))
    page: Mapped[str] = mapped_column(sa.String(MAX_KEY))
    value: Mapped[Any] = mapped_column(sa.JSON)
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    session: Mapped[SurveySession] = relationship(back_populates="answers")


class SurveyScaleScore(Base):
    """A rating grid's scores for one finished session (IRT columns empty without a
    calibration for its items)."""

    __tablename__ = "survey_scale_score"
    __table_args__ = (sa.UniqueConstraint("session_id", "scale", name="one_per_scale"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        sa.ForeignKey("survey_session.id", ondelete="CASCADE"), index=True)
    scale: Mapped[str] = mapped_column(sa.String(64))
    n_items: Mapped[int] = mapped_column()
    n_answered: Mapped[int] = mapped_column()
    sum_score: Mapped[float | None] = mapped_column()
    method: Mapped[str | None] = mapped_column(sa.String(8))
    theta: Mapped[float | None] = mapped_column()
    se: Mapped[float | None] = mapped_column()
    #: the item-bank calibration the IRT score used (id in ``calibration``)
    calibration_id: Mapped[int | None] = mapped_column()

    session: Mapped[SurveySession] = relationship(back_populates="scores")
