"""Tables of the programme wing.

Main database: the indicator system (areas, indicators), the departments that report,
reporting periods, reports (one per period and reporting unit: a district or a
department), their values and evidence files. Monitoring database: the progress
aggregates (city totals and district contributions per indicator and period; no
person-level rows, no file contents).
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from learningcity.db import Base, MonitoringBase, UTCDateTime, utcnow


class ProgrammeArea(Base):
    """An area of the action plan grouping indicators (e.g. "community education")."""

    __tablename__ = "programme_area"

    code: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200))
    position: Mapped[int] = mapped_column(default=0)


class ProgrammeDepartment(Base):
    """A city department that reports indicators (department accounts carry its code)."""

    __tablename__ = "programme_department"

    code: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200))


class ProgrammeIndicator(Base):
    """One indicator of the action plan with its baseline, target and data source."""

    __tablename__ = "programme_indicator"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('count', 'share', 'ratio')", name="kind_known"),
        sa.CheckConstraint("direction IN ('>', '>=', '<', '<=')", name="direction_known"),
        sa.CheckConstraint(
            "source IN ('district', 'department', 'survey', 'frame', 'organisations')",
            name="source_known"),
    )

    code: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    area_code: Mapped[str] = mapped_column(
        sa.ForeignKey("programme_area.code", ondelete="RESTRICT"), index=True)
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(8))
    unit: Mapped[str] = mapped_column(sa.String(32), default="")
    direction: Mapped[str] = mapped_column(sa.String(2), default=">=")
    baseline_year: Mapped[int | None] = mapped_column()
    baseline_value: Mapped[float | None] = mapped_column()
    target: Mapped[float | None] = mapped_column()
    target_year: Mapped[int | None] = mapped_column()
    source: Mapped[str] = mapped_column(sa.String(16))
    #: the survey or frame indicator's code in monitoring.results (source survey/frame)
    source_code: Mapped[str] = mapped_column(sa.String(64), default="")
    frequency: Mapped[str] = mapped_column(sa.String(16), default="yearly")
    #: department codes responsible (space-separated); "districts" for district reports
    responsible: Mapped[str] = mapped_column(sa.String(500), default="")
    #: UNESCO GNLC Key Features tags, space-separated (e.g. "1.2 3.1")
    gnlc: Mapped[str] = mapped_column(sa.String(200), default="")
    #: a value more than this factor above or below the last period's needs a comment
    change_factor: Mapped[float | None] = mapped_column()
    #: counts: the plan's target is the sum of the values reported since the baseline
    cumulative: Mapped[bool] = mapped_column(default=False)
    builtin: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(default=0)


class ProgrammePeriod(Base):
    """A reporting period (yearly by default) and when its reports are due."""

    __tablename__ = "programme_period"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    year: Mapped[int] = mapped_column()
    starts_on: Mapped[dt.date] = mapped_column(sa.Date)
    ends_on: Mapped[dt.date] = mapped_column(sa.Date)
    due_on: Mapped[dt.date] = mapped_column(sa.Date)


class ProgrammeReport(Base):
    """One unit's report for one period: a district's or a department's values."""

    __tablename__ = "programme_report"
    __table_args__ = (
        sa.UniqueConstraint("period_id", "unit_kind", "unit_code", name="uq_programme_report_unit"),
        sa.CheckConstraint("unit_kind IN ('district', 'department')", name="unit_kind_known"),
        sa.CheckConstraint(
            "state IN ('draft', 'submitted', 'returned', 'resubmitted', 'accepted')",
            name="state_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(
        sa.ForeignKey("programme_period.id", ondelete="RESTRICT"), index=True)
    unit_kind: Mapped[str] = mapped_column(sa.String(16))
    unit_code: Mapped[str] = mapped_column(sa.String(32))
    state: Mapped[str] = mapped_column(sa.String(16), default="draft")
    #: the city office's comment when it returned the report
    review_comment: Mapped[str] = mapped_column(sa.Text, default="")
    simulated: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(sa.String(64), default="")
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    period: Mapped[ProgrammePeriod] = relationship()
    values: Mapped[list[ProgrammeValue]] = relationship(
        back_populates="report", cascade="all, delete-orphan")
    evidence: Mapped[list[ProgrammeEvidence]] = relationship(
        back_populates="report", cascade="all, delete-orphan")


class ProgrammeValue(Base):
    """One indicator's value in a report: a count, or numerator and denominator."""

    __tablename__ = "programme_value"
    __table_args__ = (
        sa.UniqueConstraint("report_id", "indicator_code", name="uq_programme_value_indicator"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(
        sa.ForeignKey("programme_report.id", ondelete="CASCADE"), index=True)
    indicator_code: Mapped[str] = mapped_column(
        sa.ForeignKey("programme_indicator.code", ondelete="RESTRICT"))
    value: Mapped[float | None] = mapped_column()
    denominator: Mapped[float | None] = mapped_column()
    comment: Mapped[str] = mapped_column(sa.Text, default="")

    report: Mapped[ProgrammeReport] = relationship(back_populates="values")


class ProgrammeEvidence(Base):
    """An evidence file attached to a report, kept in the (private) main database."""

    __tablename__ = "programme_evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(
        sa.ForeignKey("programme_report.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(sa.String(200))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(sa.String(64))
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(sa.String(64), default="")

    report: Mapped[ProgrammeReport] = relationship(back_populates="evidence")


class ProgrammeProgress(MonitoringBase):
    """Progress aggregate (monitoring database): one indicator, period and district
    ("" for the city total) with the share of the target reached and the verdict."""

    __tablename__ = "programme_progress"
    __table_args__ = (
        sa.UniqueConstraint("indicator", "period", "district", name="uq_programme_progress_cell"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    indicator: Mapped[str] = mapped_column(sa.String(64))
    label_zh: Mapped[str] = mapped_column(sa.String(200), default="")
    label_en: Mapped[str] = mapped_column(sa.String(200), default="")
    kind: Mapped[str] = mapped_column(sa.String(8))
    period: Mapped[str] = mapped_column(sa.String(16))
    year: Mapped[int] = mapped_column()
    district: Mapped[str] = mapped_column(sa.String(32), default="", index=True)
    value: Mapped[float | None] = mapped_column()
    numerator: Mapped[float | None] = mapped_column()
    denominator: Mapped[float | None] = mapped_column()
    target: Mapped[float | None] = mapped_column()
    direction: Mapped[str] = mapped_column(sa.String(2), default=">=")
    target_year: Mapped[int | None] = mapped_column()
    reached: Mapped[float | None] = mapped_column()
    expected: Mapped[float | None] = mapped_column()
    status: Mapped[str] = mapped_column(sa.String(16), default="no_data")
    source: Mapped[str] = mapped_column(sa.String(16), default="")
    simulated: Mapped[bool] = mapped_column(default=False)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
