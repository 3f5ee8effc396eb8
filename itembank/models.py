"""Item bank tables: domains, instruments, items and their versions, calibrations, responses.

Items keep every version of their content; a response always points at the exact
version shown. Parameters belong to a calibration; the instrument points at the one
published calibration the live test uses.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from learningcity.db import Base, UTCDateTime, utcnow

from .content import score_choice

ITEM_TYPES = ("single_choice", "rating")
ITEM_STATUSES = ("draft", "pilot", "operational", "retired")
#: allowed status changes (retired items may come back as pilot after revision)
STATUS_FLOW = {
    "draft": ("pilot", "operational", "retired"),
    "pilot": ("operational", "draft", "retired"),
    "operational": ("retired",),
    "retired": ("pilot",),
}


class Domain(Base):
    """A content area used for balancing and reporting (digital skills, numeracy, ...)."""

    __tablename__ = "domain"

    code: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(sa.String(100))
    name_en: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(16), default="ability")  # ability | rating
    position: Mapped[int] = mapped_column(default=0)
    advice_zh: Mapped[str] = mapped_column(sa.Text, default="")
    advice_en: Mapped[str] = mapped_column(sa.Text, default="")

    def name(self, locale: str) -> str:
        return self.name_en if locale.startswith("en") else self.name_zh


class Instrument(Base):
    """A test or rating scale built from bank items; points at its published calibration."""

    __tablename__ = "instrument"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(16), default="ability")  # ability | rating
    #: item types this instrument draws from the bank
    item_type: Mapped[str] = mapped_column(sa.String(16), default="single_choice")
    blueprint: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    published_calibration_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("calibration.id", use_alter=True, name="fk_instrument_published"))

    def name(self, locale: str) -> str:
        return self.name_en if locale.startswith("en") else self.name_zh


class Item(Base):
    """A bank item: stable code, content area, type and life-cycle status."""

    __tablename__ = "item"
    __table_args__ = (
        sa.CheckConstraint("type IN ('single_choice', 'rating')", name="type_known"),
        sa.CheckConstraint("status IN ('draft', 'pilot', 'operational', 'retired')",
                           name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    domain_code: Mapped[str] = mapped_column(sa.ForeignKey("domain.code"), index=True)
    subdomain: Mapped[str] = mapped_column(sa.String(64), default="")
    type: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), default="draft", index=True)
    tags: Mapped[list] = mapped_column(sa.JSON, default=list)
    author: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    domain: Mapped[Domain] = relationship()
    versions: Mapped[list[ItemVersion]] = relationship(
        back_populates="item", order_by="ItemVersion.version", cascade="all, delete-orphan")
    status_changes: Mapped[list[ItemStatusChange]] = relationship(
        order_by="ItemStatusChange.at", cascade="all, delete-orphan")

    @property
    def current(self) -> ItemVersion:
        return self.versions[-1]


class ItemVersion(Base):
    """One immutable version of an item's content, in both languages."""

    __tablename__ = "item_version"
    __table_args__ = (sa.UniqueConstraint("item_id", "version", name="item_version_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("item.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(default=1)
    stem_zh: Mapped[str] = mapped_column(sa.Text)
    stem_en: Mapped[str] = mapped_column(sa.Text)
    #: [{"zh": ..., "en": ...}, ...] in display order; rating categories in score order
    options: Mapped[list] = mapped_column(sa.JSON)
    #: 1-based number of the correct option (single choice); None for rating items
    key: Mapped[int | None] = mapped_column()
    reverse: Mapped[bool] = mapped_column(default=False)
    media: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(64), default="")

    item: Mapped[Item] = relationship(back_populates="versions")

    def stem(self, locale: str) -> str:
        return self.stem_en if locale.startswith("en") else self.stem_zh

    def option_texts(self, locale: str) -> list[str]:
        lang = "en" if locale.startswith("en") else "zh"
        return [o[lang] for o in self.options]

    def score(self, choice: int) -> int:
        """Score of a 1-based option choice: 0/1 against the key, or the rating category."""
        return score_choice(self.key, bool(self.reverse), len(self.options), choice)


class ItemStatusChange(Base):
    """Who moved an item from one status to another, and when."""

    __tablename__ = "item_status_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("item.id", ondelete="CASCADE"),
                                         index=True)
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str] = mapped_column(sa.String(16))
    by: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(sa.Text, default="")


class Calibration(Base):
    """A named, versioned parameter set for an instrument's items, with its provenance."""

    __tablename__ = "calibration"
    __table_args__ = (sa.UniqueConstraint("instrument_id", "name", "version",
                                          name="calibration_name_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instrument.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    version: Mapped[int] = mapped_column(default=1)
    model: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(64))
    #: where the parameters came from: file, persons, period, engine, simulated or not
    provenance: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    is_demo: Mapped[bool] = mapped_column(default=False)
    #: reporting scale: score = mean + sd * (A * theta + B)
    scale_mean: Mapped[float] = mapped_column(default=500.0)
    scale_sd: Mapped[float] = mapped_column(default=100.0)
    link_a: Mapped[float] = mapped_column(default=1.0)
    link_b: Mapped[float] = mapped_column(default=0.0)
    #: the calibrated latent distribution theta ~ N(latent_mean, latent_sd^2) on the scale
    #: of the parameters (PARAMS.csv latent_mean/latent_sd): the live test's EAP prior
    latent_mean: Mapped[float] = mapped_column(default=0.0, server_default="0")
    latent_sd: Mapped[float] = mapped_column(default=1.0, server_default="1")
    #: [{"min": score, "code": ..., "label_zh", "label_en", "cando_zh", "cando_en"}]
    levels: Mapped[list] = mapped_column(sa.JSON, default=list)
    notes: Mapped[str] = mapped_column(sa.Text, default="")

    instrument: Mapped[Instrument] = relationship(foreign_keys=[instrument_id])
    items: Mapped[list[CalibrationItem]] = relationship(
        back_populates="calibration", cascade="all, delete-orphan",
        order_by="CalibrationItem.id")

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


class CalibrationItem(Base):
    """One item's parameters, standard errors, fit and DIF flag within a calibration."""

    __tablename__ = "calibration_item"
    __table_args__ = (sa.UniqueConstraint("calibration_id", "item_id",
                                          name="calibration_item_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calibration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("calibration.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("item.id"), index=True)
    model: Mapped[str] = mapped_column(sa.String(16))
    a: Mapped[float] = mapped_column()
    #: difficulties / thresholds, on the theta metric of this calibration
    b: Mapped[list] = mapped_column(sa.JSON)
    c: Mapped[float] = mapped_column(default=0.0)
    se_a: Mapped[float | None] = mapped_column()
    se_b: Mapped[list | None] = mapped_column(sa.JSON)
    se_c: Mapped[float | None] = mapped_column()
    infit: Mapped[float | None] = mapped_column()
    outfit: Mapped[float | None] = mapped_column()
    sx2: Mapped[float | None] = mapped_column()
    sx2_p: Mapped[float | None] = mapped_column()
    dif_flag: Mapped[str | None] = mapped_column(sa.String(8))  # ETS class B or C

    calibration: Mapped[Calibration] = relationship(back_populates="items")
    item: Mapped[Item] = relationship()


class CalibrationEvent(Base):
    """Publishing and rolling back: one audited row per change of the live calibration."""

    __tablename__ = "calibration_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instrument.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(16))  # publish | rollback
    from_calibration_id: Mapped[int | None] = mapped_column(sa.ForeignKey("calibration.id"))
    to_calibration_id: Mapped[int | None] = mapped_column(sa.ForeignKey("calibration.id"))
    by: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(sa.Text, default="")


class ItemResponse(Base):
    """One scored answer to one item version, written by the delivery packages.

    The bank owns these rows so that exposure, usage and the calibration export
    need nothing from the packages that deliver tests and surveys.
    """

    __tablename__ = "item_response"
    __table_args__ = (sa.UniqueConstraint("respondent", "item_version_id",
                                          name="item_response_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instrument.id"), index=True)
    item_version_id: Mapped[int] = mapped_column(sa.ForeignKey("item_version.id"), index=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("item.id"), index=True)
    #: pseudonymous respondent key (a test session's id), never a name or phone number
    respondent: Mapped[str] = mapped_column(sa.String(64), index=True)
    campaign: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    #: grouping variables for calibration and DIF (age band, district, occupation...)
    groups: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    choice: Mapped[int | None] = mapped_column()
    score: Mapped[int | None] = mapped_column()
    scored: Mapped[bool] = mapped_column(default=True)  # False for pilot items
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
