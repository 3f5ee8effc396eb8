"""The monitoring database: de-identified aggregates only (no person-level rows).

Two tables on :class:`learningcity.db.MonitoringBase`:

* ``monitoring_run`` - one row per aggregated campaign (what, when, how many,
  the suppression rule used); trends order campaigns by ``closes_at``;
* ``monitoring_aggregate`` - one row per (campaign, measure, dimension, group,
  district): n, estimate, se, 95 % interval, design effect, suppression flag and
  reason, method, and for indicators the target, direction and judgement.

A suppressed row keeps ``n`` and the reason; estimate, se, interval and deff are
NULL.  ``district`` is the district the row describes ('' for rows that are not
about one district); district staff see only rows of their own district.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from learningcity.db import MonitoringBase, UTCDateTime, utcnow

#: measure kinds
MEASURE_KINDS = ("indicator", "ability", "level_share", "scale", "share")
#: dimensions (domains) of the rows; "all" is the whole campaign population
DIMENSIONS = ("all", "district", "group", "age_band", "sex", "group_x_district")
SUPPRESSION_REASONS = ("small_n", "high_rse", "not_available")
#: columns that make up the aggregate schema (a test checks no other column appears)
AGGREGATE_COLUMNS = (
    "id", "campaign", "measure", "kind", "label_zh", "label_en", "dimension", "group_value",
    "district", "n", "estimate", "se", "ci_low", "ci_high", "deff", "suppressed",
    "suppression_reason", "method", "target", "direction", "judgement", "computed_at")


#: what the estimates of a campaign that is not a probability sample (an open, quota
#: campaign) are: stored at the front of their method and the run's design
NON_PROBABILITY = "model-based (non-probability quota sample)"
#: the same in Chinese, for the pages (the stored text stays English)
NON_PROBABILITY_ZH = "基于模型的估计（非概率配额样本）"


def method_label(method: str, probability: bool) -> str:
    """``Aggregate.method`` of an estimate: the estimator, after :data:`NON_PROBABILITY`
    when the campaign is not a probability sample (at most 64 characters)."""
    return method if probability else f"{NON_PROBABILITY}: {method}"[:64]


def design_label(columns: dict[str, str | None], estimator: str, probability: bool) -> str:
    """``MonitoringRun.design``: the design columns (``strata=stratum, psu=psu, ...``),
    the variance estimator, and :data:`NON_PROBABILITY` first for a non-probability
    campaign (at most 200 characters)."""
    text = ", ".join(f"{k}={v}" for k, v in columns.items() if v)
    if estimator:
        text = f"{text}; {estimator}" if text else estimator
    return (text if probability else f"{NON_PROBABILITY}; {text}")[:200]


def method_text(method: str, locale: str) -> str:
    """A stored method or design text in the page's language: the non-probability label
    in Chinese unless the page is in English (the estimator's name stays as stored)."""
    if not str(locale).startswith("en") and method.startswith(NON_PROBABILITY):
        return NON_PROBABILITY_ZH + method[len(NON_PROBABILITY):]
    return method


class MonitoringRun(MonitoringBase):
    """One aggregated campaign: replaced as a whole when aggregation runs again."""

    __tablename__ = "monitoring_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign: Mapped[str] = mapped_column(sa.String(64), unique=True)
    campaign_name: Mapped[str] = mapped_column(sa.String(200), default="")
    district: Mapped[str] = mapped_column(sa.String(32), default="", index=True)
    closes_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    computed_by: Mapped[str] = mapped_column(sa.String(64), default="")
    n_respondents: Mapped[int] = mapped_column(default=0)
    n_rows: Mapped[int] = mapped_column(default=0)
    n_suppressed: Mapped[int] = mapped_column(default=0)
    min_n: Mapped[int] = mapped_column()
    max_rse: Mapped[float | None] = mapped_column()
    design: Mapped[str] = mapped_column(sa.String(200), default="")


class Aggregate(MonitoringBase):
    """One group-level estimate (see the module docstring)."""

    __tablename__ = "monitoring_aggregate"
    __table_args__ = (
        sa.UniqueConstraint("campaign", "measure", "dimension", "group_value", "district",
                            name="uq_monitoring_aggregate_cell"),
        sa.CheckConstraint(
            "suppressed = false OR (estimate IS NULL AND se IS NULL AND ci_low IS NULL "
            "AND ci_high IS NULL)", name="suppressed_hidden"),
        sa.Index("ix_monitoring_aggregate_lookup", "campaign", "measure", "dimension"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign: Mapped[str] = mapped_column(sa.String(64))
    measure: Mapped[str] = mapped_column(sa.String(120))
    kind: Mapped[str] = mapped_column(sa.String(16))
    label_zh: Mapped[str] = mapped_column(sa.String(200), default="")
    label_en: Mapped[str] = mapped_column(sa.String(200), default="")
    dimension: Mapped[str] = mapped_column(sa.String(32))
    group_value: Mapped[str] = mapped_column(sa.String(120), default="")
    district: Mapped[str] = mapped_column(sa.String(32), default="", index=True)
    n: Mapped[int] = mapped_column()
    estimate: Mapped[float | None] = mapped_column()
    se: Mapped[float | None] = mapped_column()
    ci_low: Mapped[float | None] = mapped_column()
    ci_high: Mapped[float | None] = mapped_column()
    deff: Mapped[float | None] = mapped_column()
    suppressed: Mapped[bool] = mapped_column(default=False)
    suppression_reason: Mapped[str | None] = mapped_column(sa.String(16))
    method: Mapped[str] = mapped_column(sa.String(64), default="taylor")
    target: Mapped[float | None] = mapped_column()
    direction: Mapped[str | None] = mapped_column(sa.String(2))
    judgement: Mapped[str | None] = mapped_column(sa.String(16))
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


def has_aggregates(monitoring_db: Session, campaign_code: str) -> bool:
    """Whether the monitoring database holds a run (its aggregates) for the campaign."""
    return monitoring_db.scalar(sa.select(MonitoringRun.id).where(
        MonitoringRun.campaign == campaign_code).limit(1)) is not None
