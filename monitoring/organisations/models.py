"""Tables of learning organisations (main database): the register, evaluation standards,
evaluations (self-assessment, district review, city confirmation) and evidence files.

An organisation belongs to one district (foreign key onto ``district.code``, as
campaigns). A standard is immutable once stored: a change is a new version of the same
kind and year. An evaluation pins the standard version it was made against, so a later
version never changes an old score. Evidence files are kept in the database (like the
uploaded frames), never under the static folder: they are served only to the staff who
may see the organisation.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from learningcity.db import Base, UTCDateTime, utcnow

#: the kinds of learning organisation of the action plan, in the order pages list them
KINDS = ("party", "government", "enterprise", "school", "community", "social")
#: invited: link issued; draft: the organisation saved answers; submitted: sent;
#: returned: the district sent it back with a comment (the organisation changes it and
#: submits again); reviewed: the district scored it; confirmed: the city office
#: confirmed the result
EVALUATION_STATUSES = ("invited", "draft", "submitted", "returned", "reviewed", "confirmed")


class Organisation(Base):
    """One organisation of the register: its kind, district and names."""

    __tablename__ = "organisation"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('party', 'government', 'enterprise', 'school', "
                           "'community', 'social')", name="kind_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the city's own reference (unique; the key of register imports)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    district_code: Mapped[str] = mapped_column(
        sa.ForeignKey("district.code", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16), index=True)
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200), default="")
    active: Mapped[bool] = mapped_column(default=True)
    #: demo rows are labelled simulated on every page
    simulated: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(64), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(sa.String(64), default="")

    def name(self, locale: str) -> str:
        """The name in the reader's language (English falls back to Chinese)."""
        return (self.name_en or self.name_zh) if locale.startswith("en") else self.name_zh


class EvaluationStandard(Base):
    """One version of the evaluation standard of a kind and year (never changed)."""

    __tablename__ = "evaluation_standard"
    __table_args__ = (
        sa.UniqueConstraint("kind", "year", "version", name="kind_year_version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    year: Mapped[int] = mapped_column()
    version: Mapped[int] = mapped_column()
    title_zh: Mapped[str] = mapped_column(sa.String(200))
    title_en: Mapped[str] = mapped_column(sa.String(200), default="")
    #: the weighted score (0-100) at or above which an organisation is recognised
    threshold: Mapped[float] = mapped_column(sa.Double)
    #: ``{"criteria": [{"code", "name_zh", "name_en", "weight" (fraction, sum 1),
    #: "levels": [{"level", "points", "descriptor_zh", "descriptor_en"}]}]}``
    definition: Mapped[dict] = mapped_column(sa.JSON)
    filename: Mapped[str] = mapped_column(sa.String(255), default="")
    sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(sa.String(64), default="")

    def title(self, locale: str) -> str:
        return (self.title_en or self.title_zh) if locale.startswith("en") else self.title_zh


class Evaluation(Base):
    """An organisation's evaluation of one year: its self-assessment, the district's
    review and the city office's confirmation."""

    __tablename__ = "evaluation"
    __table_args__ = (
        sa.UniqueConstraint("organisation_id", "year", name="organisation_year"),
        sa.CheckConstraint("status IN ('invited', 'draft', 'submitted', 'returned', "
                           "'reviewed', 'confirmed')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisation.id", ondelete="CASCADE"), index=True)
    standard_id: Mapped[int] = mapped_column(
        sa.ForeignKey("evaluation_standard.id", ondelete="RESTRICT"), index=True)
    year: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(sa.String(12), default="invited")
    #: keyed hash of the organisation's link token (the token itself is never stored)
    token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    token_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: {criterion code: level}, {criterion code: note}
    self_levels: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    self_notes: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: the district's comment when it last returned the self-assessment for changes
    return_comment: Mapped[str] = mapped_column(sa.Text, default="")
    returned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    returned_by: Mapped[str | None] = mapped_column(sa.String(64))
    review_levels: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    review_comments: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    score: Mapped[float | None] = mapped_column(sa.Double)
    recognised: Mapped[bool | None] = mapped_column()
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(sa.String(64))
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    confirmed_by: Mapped[str | None] = mapped_column(sa.String(64))
    simulated: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: optimistic lock: a draft saved twice from two tabs, a review and a confirmation
    revision: Mapped[int] = mapped_column(default=0)

    organisation: Mapped[Organisation] = relationship()
    standard: Mapped[EvaluationStandard] = relationship()
    evidence: Mapped[list[EvaluationEvidence]] = relationship(
        back_populates="evaluation", order_by="EvaluationEvidence.id",
        cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": revision}


class EvaluationEvidence(Base):
    """One evidence file the organisation attached to a criterion (bytes kept here)."""

    __tablename__ = "evaluation_evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("evaluation.id", ondelete="CASCADE"), index=True)
    criterion: Mapped[str] = mapped_column(sa.String(32))
    filename: Mapped[str] = mapped_column(sa.String(255))
    media_type: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(sa.String(64))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    evaluation: Mapped[Evaluation] = relationship(back_populates="evidence")
