"""Tables of sampling campaigns (main database): campaigns, frames, strata and invitations.

A campaign belongs to one district. Its frame rows are kept as uploaded (row number and
every column) so a draw can be reproduced from the stored seed and audited. Invitation
codes are never stored, only their keyed hash (HMAC-SHA-256 with the app secret).
Weights, margins and indicator definitions are in :mod:`monitoring.results.models`;
aggregates in :mod:`monitoring.results.warehouse`.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from learningcity.db import Base, UTCDateTime, utcnow

#: draft: frame and design may change; ready: sample drawn, invitations issued;
#: closed: frozen (nothing accepted, weights and aggregates final).
CAMPAIGN_STATUSES = ("draft", "ready", "closed")
#: sample: invitations for drawn units only; open: open enrolment up to stratum quotas.
CAMPAIGN_MODES = ("sample", "open")
INVITATION_STATUSES = ("issued", "started", "completed", "void")
#: the partial unique index making an invitation slot of a frame unit live at most once
LIVE_SLOT_INDEX = "uq_invitation_live_slot"
LIVE_WHERE = "status <> 'void'"


class Campaign(Base):
    """A district's sampling campaign: instruments, response window, design, state."""

    __tablename__ = "campaign"
    __table_args__ = (
        sa.CheckConstraint("status IN ('draft', 'ready', 'closed')", name="status_known"),
        sa.CheckConstraint("mode IN ('sample', 'open')", name="mode_known"),
        sa.CheckConstraint("closes_at > opens_at", name="window_ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: public, stable reference (also written to test and survey sessions)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    district_code: Mapped[str] = mapped_column(
        sa.ForeignKey("district.code", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    #: item-bank instrument code of the ability test (e.g. "LLA"), or None
    test_instrument: Mapped[str | None] = mapped_column(sa.String(32))
    #: survey code (e.g. "learning_needs"), or None
    survey_code: Mapped[str | None] = mapped_column(sa.String(64))
    mode: Mapped[str] = mapped_column(sa.String(8), default="sample")
    #: stored in UTC; entered and shown in ``timezone``
    opens_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="Asia/Shanghai")
    #: the sampling design as entered (strata columns, allocation, n, stages, quotas...)
    design: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    seed: Mapped[int | None] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(8), default="draft")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(64), default="")
    drawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    drawn_by: Mapped[str | None] = mapped_column(sa.String(64))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(sa.String(64))
    #: optimistic lock for staff edits
    revision: Mapped[int] = mapped_column(default=0)

    frame_units: Mapped[list[FrameUnit]] = relationship(
        back_populates="campaign", order_by="FrameUnit.row_number",
        cascade="all, delete-orphan")
    strata: Mapped[list[CampaignStratum]] = relationship(
        back_populates="campaign", order_by="CampaignStratum.stratum",
        cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": revision}


class FrameUpload(Base):
    """One uploaded frame file (the latest one before the draw is the campaign's frame)."""

    __tablename__ = "frame_upload"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaign.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    n_rows: Mapped[int] = mapped_column()
    columns: Mapped[list] = mapped_column(sa.JSON, default=list)
    #: "unit" (households or persons, one invitation each) or "cluster" (streets or
    #: communities with population counts, drawn as PSUs with m invitations each)
    kind: Mapped[str] = mapped_column(sa.String(8), default="unit")
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(sa.String(64), default="")


class FrameUnit(Base):
    """One frame row as uploaded, with its stratum and, after the draw, its selection."""

    __tablename__ = "frame_unit"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "row_number", name="one_per_row"),
        sa.UniqueConstraint("campaign_id", "unit_key", name="unit_key_unique"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaign.id", ondelete="CASCADE"), index=True)
    upload_id: Mapped[int] = mapped_column(sa.ForeignKey("frame_upload.id", ondelete="CASCADE"))
    #: 1-based data row of the file (header is row 1 in a spreadsheet, so data start at 2)
    row_number: Mapped[int] = mapped_column()
    unit_key: Mapped[str] = mapped_column(sa.String(128))
    stratum: Mapped[str] = mapped_column(sa.String(200), default="")
    psu: Mapped[str | None] = mapped_column(sa.String(128))
    #: population count of a cluster (measure of size), or None for a unit frame
    size: Mapped[float | None] = mapped_column()
    #: every column of the row, as text
    attributes: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    selected: Mapped[bool] = mapped_column(default=False)
    #: first-stage inclusion probability (the unit's own for a unit frame)
    pi1: Mapped[float | None] = mapped_column()
    certainty: Mapped[bool] = mapped_column(default=False)
    #: invitations planned for a selected cluster (second stage), 1 for a unit
    n_invitations: Mapped[int] = mapped_column(default=0)

    campaign: Mapped[Campaign] = relationship(back_populates="frame_units")


class CampaignStratum(Base):
    """A stratum of the design: population, allocated sample, quota."""

    __tablename__ = "campaign_stratum"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "stratum", name="one_per_stratum"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaign.id", ondelete="CASCADE"), index=True)
    stratum: Mapped[str] = mapped_column(sa.String(200))
    #: the stratum variables' values, e.g. {"street": "S01", "age_band": "60+"}
    values: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    #: frame population N_h (units, or persons for a cluster frame)
    population: Mapped[float] = mapped_column()
    #: number of frame rows (units or clusters) in the stratum
    frame_rows: Mapped[int] = mapped_column()
    allocated: Mapped[int] = mapped_column(default=0)
    quota: Mapped[int | None] = mapped_column()

    campaign: Mapped[Campaign] = relationship(back_populates="strata")


class Invitation(Base):
    """One invitation code for one sampled unit (or one recruit within a sampled cluster)."""

    __tablename__ = "invitation"
    __table_args__ = (
        sa.CheckConstraint("status IN ('issued', 'started', 'completed', 'void')",
                           name="status_known"),
        # one live (not void) invitation per slot of a sampled unit, whoever issues it:
        # concurrent "issue" posts insert with ON CONFLICT DO NOTHING against this index
        sa.Index(LIVE_SLOT_INDEX, "frame_unit_id", "slot", unique=True,
                 sqlite_where=sa.text(LIVE_WHERE), postgresql_where=sa.text(LIVE_WHERE)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaign.id", ondelete="CASCADE"), index=True)
    #: short non-secret reference printed next to the code and written to sessions
    public_id: Mapped[str] = mapped_column(sa.String(32), unique=True)
    #: HMAC-SHA-256 (keyed by the app secret) of the normalised code, or the unsalted
    #: SHA-256 of a code issued before migration 0008 until its first use; the code
    #: itself is shown once and never stored
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    frame_unit_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("frame_unit.id", ondelete="SET NULL"), index=True)
    #: which of the unit's ``n_invitations`` this is (0 for a unit frame); a re-issue
    #: takes the voided invitation's slot
    slot: Mapped[int] = mapped_column(default=0, server_default="0")
    stratum: Mapped[str] = mapped_column(sa.String(200), default="")
    psu: Mapped[str | None] = mapped_column(sa.String(128))
    #: overall inclusion probability of the person or unit this invitation stands for
    pi: Mapped[float | None] = mapped_column()
    #: answers known from the frame (district, street, age band...), offered as prefill
    prefill: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    status: Mapped[str] = mapped_column(sa.String(12), default="issued")
    test_session_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("test_session.id", ondelete="SET NULL"))
    #: survey_session.id (no foreign key: the surveys tables are another migration branch)
    survey_session_id: Mapped[int | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
