"""Indicator definitions saved by admins (main database); built-ins live in code.

A saved definition with a built-in's code replaces it (e.g. a new target).  Every
save is validated (:func:`monitoring.indicators.check`) and audited.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from learningcity.db import Base, UTCDateTime, utcnow
from learningcity.models import AuditEvent

from .indicators import Indicator, check


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

    def to_indicator(self) -> Indicator:
        return Indicator(code=self.code, name_zh=self.name_zh, name_en=self.name_en,
                         expression=self.expression, population=self.population or "",
                         kind=self.kind, target=self.target, direction=self.direction,
                         description=self.description or "")


def saved_indicators(db: Session) -> list[Indicator]:
    """Every saved definition, by code."""
    rows = db.scalars(sa.select(IndicatorDefinition).order_by(IndicatorDefinition.code))
    return [r.to_indicator() for r in rows]


def save_indicator(db: Session, ind: Indicator, actor: str) -> IndicatorDefinition:
    """Validate and store (insert or replace by code); raises IndicatorError, storing nothing."""
    check(ind)
    row = db.scalar(sa.select(IndicatorDefinition).where(IndicatorDefinition.code == ind.code))
    created = row is None
    if row is None:
        row = IndicatorDefinition(code=ind.code)
        db.add(row)
    row.name_zh, row.name_en = ind.name_zh.strip(), ind.name_en.strip()
    row.expression, row.population = ind.expression.strip(), ind.population.strip()
    row.kind, row.target, row.direction = ind.kind, ind.target, ind.direction
    row.description = ind.description
    row.updated_at, row.updated_by = utcnow(), actor
    db.add(AuditEvent(actor=actor, action="indicator.add" if created else "indicator.edit",
                      target=ind.code,
                      detail={"expression": row.expression, "population": row.population,
                              "kind": row.kind, "target": row.target,
                              "direction": row.direction}))
    db.flush()
    return row
