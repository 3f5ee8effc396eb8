"""Tables of campaign results (main database): population margins, weight runs with each
respondent's weight and every step, and the indicator definitions admins save.

Weights are stored per respondent with each step, so any estimate can be traced back to
the selection probabilities. Built-in indicators live in code
(:mod:`monitoring.results.indicators`); a saved definition with a built-in's code replaces it.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from learningcity.db import Base, UTCDateTime, utcnow


class PopulationMargin(Base):
    """Population counts uploaded by an admin for post-stratification or raking."""

    __tablename__ = "population_margin"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    #: the crossed variables, e.g. ["age_band", "sex", "district"]
    variables: Mapped[list] = mapped_column(sa.JSON, default=list)
    reference_year: Mapped[int | None] = mapped_column()
    source: Mapped[str] = mapped_column(sa.String(500), default="")
    active: Mapped[bool] = mapped_column(default=True)
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(sa.String(64), default="")

    cells: Mapped[list[PopulationCell]] = relationship(
        back_populates="margin", cascade="all, delete-orphan")


class PopulationCell(Base):
    """One cell of a margin table: the variables' values and the population count."""

    __tablename__ = "population_cell"

    id: Mapped[int] = mapped_column(primary_key=True)
    margin_id: Mapped[int] = mapped_column(
        sa.ForeignKey("population_margin.id", ondelete="CASCADE"), index=True)
    values: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    population: Mapped[float] = mapped_column()

    margin: Mapped[PopulationMargin] = relationship(back_populates="cells")


class WeightRun(Base):
    """One computation of a campaign's weights: the method, its parameters, a summary."""

    __tablename__ = "weight_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaign.id", ondelete="CASCADE"), index=True)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    computed_by: Mapped[str] = mapped_column(sa.String(64), default="")
    #: steps and their parameters (nonresponse cells, margin id, trimming bounds...)
    method: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    #: per step: sum, min, max, CV, Kish effective n
    summary: Mapped[list] = mapped_column(sa.JSON, default=list)
    #: the run in use for estimates (one per campaign)
    current: Mapped[bool] = mapped_column(default=True)

    weights: Mapped[list[RespondentWeight]] = relationship(
        back_populates="run", cascade="all, delete-orphan")


class RespondentWeight(Base):
    """A respondent's weight with every step from design weight to final weight."""

    __tablename__ = "respondent_weight"
    __table_args__ = (sa.UniqueConstraint("run_id", "invitation_id", name="one_per_run"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(
        sa.ForeignKey("weight_run.id", ondelete="CASCADE"), index=True)
    invitation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("invitation.id", ondelete="CASCADE"), index=True)
    responded: Mapped[bool] = mapped_column()
    w_design: Mapped[float] = mapped_column()
    #: {"nonresponse": w, "poststratify": w, "trim": w, ...} in the order applied
    steps: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    weight: Mapped[float] = mapped_column()

    run: Mapped[WeightRun] = relationship(back_populates="weights")


class IndicatorDefinition(Base):
    """One admin-defined (or admin-overridden) indicator."""

    __tablename__ = "indicator_definition"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('person', 'frame')", name="kind_known"),
        sa.CheckConstraint("direction IN ('>', '>=', '<', '<=')", name="direction_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200))
    expression: Mapped[str] = mapped_column(sa.Text)
    population: Mapped[str] = mapped_column(sa.Text, default="")
    kind: Mapped[str] = mapped_column(sa.String(8), default="person")
    target: Mapped[float | None] = mapped_column()
    direction: Mapped[str] = mapped_column(sa.String(2), default=">=")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(sa.String(64), default="")


class DistrictBoundaries(Base):
    """The uploaded GeoJSON of district boundaries (one row: the current upload)."""

    __tablename__ = "district_boundaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    geojson: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(sa.String(64), default="")
