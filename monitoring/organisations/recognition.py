"""Recognised status of organisations per year, and the indicator system's provider.

An organisation is *recognised* for a year when its evaluation of that year was
reviewed by its district with a weighted score at or above the standard's threshold
and the city office confirmed it. Nothing else counts (a review not yet confirmed is
"pending").

:func:`learning_community_indicator` is registered in ``setup.cfg`` under the
entry-point group ``learningcity.indicator_sources`` as ``organisations``: the indicator
"learning-type communities (villages) >= 80 % of communities" reads its numerator and
denominator from here when the city runs its evaluations in the product, and is
labelled simulated where the demo's organisations are counted.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitoring.organisations.models import Evaluation, Organisation

COMMUNITY = "community"


def recognised(db: Session, organisation_id: int, year: int) -> bool | None:
    """True/False once the year's evaluation is confirmed; None before (or without one)."""
    row = db.execute(sa.select(Evaluation.status, Evaluation.recognised).where(
        Evaluation.organisation_id == organisation_id, Evaluation.year == year)).first()
    if row is None or row.status != "confirmed":
        return None
    return bool(row.recognised)


def evaluations_of_year(db: Session, year: int, district: str | None = None
                        ) -> dict[int, Evaluation]:
    """The year's evaluations by organisation id (one district, or all)."""
    query = sa.select(Evaluation).where(Evaluation.year == year)
    if district is not None:
        query = query.join(Organisation).where(Organisation.district_code == district)
    return {e.organisation_id: e for e in db.scalars(query)}


def evaluation_of(db: Session, organisation_id: int, year: int) -> Evaluation | None:
    """One organisation's evaluation of one year, or None."""
    return db.scalar(sa.select(Evaluation).where(Evaluation.organisation_id == organisation_id,
                                                 Evaluation.year == year))


def evaluations_of(db: Session, organisation_id: int) -> list[Evaluation]:
    """Every evaluation of one organisation, the latest year first."""
    return list(db.scalars(sa.select(Evaluation).where(
        Evaluation.organisation_id == organisation_id).order_by(Evaluation.year.desc())))


def learning_community_counts(session: Session, year: int) -> dict[str, tuple[int, int]]:
    """``{district code: (recognised communities/villages, all communities/villages in
    the register)}`` for ``year``.

    The denominator is every active organisation of kind ``community`` in the register
    (evaluated or not); the numerator those whose evaluation of ``year`` is confirmed
    and recognised. Districts without communities in the register are left out. The
    share is ``recognised / all`` (the caller judges it against the 80 % target).
    """
    everyone = dict(session.execute(
        sa.select(Organisation.district_code, sa.func.count(Organisation.id))
        .where(Organisation.kind == COMMUNITY, Organisation.active.is_(True))
        .group_by(Organisation.district_code)).all())
    passed = dict(session.execute(
        sa.select(Organisation.district_code, sa.func.count(Evaluation.id))
        .join(Evaluation, Evaluation.organisation_id == Organisation.id)
        .where(Organisation.kind == COMMUNITY, Organisation.active.is_(True),
               Evaluation.year == year, Evaluation.status == "confirmed",
               Evaluation.recognised.is_(True))
        .group_by(Organisation.district_code)).all())
    return {code: (int(passed.get(code, 0)), int(n)) for code, n in sorted(everyone.items())}


def learning_community_indicator(session: Session, year: int
                                 ) -> dict[str, tuple[int, int, bool]]:
    """The indicator source: :func:`learning_community_counts` of the districts with at
    least one confirmed community evaluation of ``year`` (the others have no data for
    the year, not 0 %), with whether any counted community or its evaluation is
    simulated (the demo's)."""
    def districts(*conditions: Any) -> set[str]:
        return set(session.scalars(
            sa.select(Organisation.district_code).distinct()
            .outerjoin(Evaluation, sa.and_(Evaluation.organisation_id == Organisation.id,
                                           Evaluation.year == year))
            .where(Organisation.kind == COMMUNITY, Organisation.active.is_(True),
                   *conditions)))

    evaluated = districts(Evaluation.status == "confirmed")
    simulated = districts(sa.or_(Organisation.simulated.is_(True),
                                 Evaluation.simulated.is_(True)))
    return {code: (passed, everyone, code in simulated)
            for code, (passed, everyone) in learning_community_counts(session, year).items()
            if code in evaluated}
