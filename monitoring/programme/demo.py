"""Demo loader (entry point ``learningcity.demo`` ``50_programme``): simulated reports of
the demo city's districts and departments for 2023-2025, marked ``simulated`` (the pages
say so), then the progress in the monitoring database.

Runs with the simulated demo city (``monitoring.demo_city = true``, development.ini) or
``force=True`` (tests). Idempotent: a unit's report that exists is left alone. Every
report is accepted except the first district's 2025 report, left as a draft so the demo
district account has one to fill in. Seeded: the same numbers on every machine.
"""
from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session

from learningcity.districts import list_districts
from monitoring.demo_city import enabled
from monitoring.demo_results import _monitoring_session
from monitoring.programme import catalogue, progress, reporting
from monitoring.programme.models import ProgrammeReport, ProgrammeValue

SEED = 19_002_023
YEARS = (2023, 2024, 2025)
ACTOR = "demo"
#: how far each year gets towards a count target (cumulative shares of the target)
PACE = (0.30, 0.65, 1.0)


def _report(db: Session, period: object, unit: reporting.Unit,
            values: dict[str, tuple[float, float | None]], state: str) -> None:
    report = ProgrammeReport(period_id=period.id, unit_kind=unit.kind, unit_code=unit.code,
                             state=state, simulated=True, updated_by=ACTOR)
    report.values = [ProgrammeValue(indicator_code=c, value=v, denominator=d,
                                    comment="")
                     for c, (v, d) in values.items()]
    db.add(report)


def load(db: Session, monitoring_db: Session | None = None, *, force: bool = False) -> int:
    """Write the missing simulated reports; returns how many were written."""
    if not (force or enabled()):
        return 0
    districts = [d.code for d in list_districts(db)]
    if not districts:
        return 0
    catalogue.ensure_builtin(db)
    rng = np.random.default_rng(SEED)
    written = 0
    # each district's strength: some run ahead of the plan, some behind
    strength = {d: float(s) for d, s in zip(districts, rng.uniform(0.8, 1.3,
                                                                    len(districts)))}
    communities = {d: int(n) for d, n in zip(districts, rng.integers(30, 120,
                                                                     len(districts)))}
    for y, year in enumerate(YEARS):
        period = reporting.ensure_period(db, year)
        for unit in reporting.units(db):
            specs = reporting.indicators_for(db, unit)
            if reporting.get_report(db, period, unit) is not None or not specs:
                continue
            k = strength.get(unit.code, 1.0)
            n_units = len(districts) if unit.kind == "district" else \
                max(1, sum(1 for u in reporting.units(db) if u.kind == "department"
                           and any(s.code in {x.code for x in specs}
                                   for s in reporting.indicators_for(db, u))))
            values: dict[str, tuple[float, float | None]] = {}
            for spec in specs:
                if spec.kind == "count":
                    share = (PACE[y] - (PACE[y - 1] if y else 0.0)) * k
                    owners = n_units if unit.kind == "district" else \
                        max(1, len(spec.departments))
                    mean = (spec.target or 0) * share / owners
                    noisy = mean + rng.normal(0.0, 0.25 * mean ** 0.5)
                    values[spec.code] = (float(max(0, round(noisy))), None)
                else:
                    den = communities.get(unit.code, 60)
                    p = min(0.98, (0.55 + 0.12 * y) * k)
                    values[spec.code] = (float(rng.binomial(den, p)), float(den))
            state = "draft" if (unit.kind == "district" and unit.code == districts[0]
                                and year == YEARS[-1]) else "accepted"
            _report(db, period, unit, values, state)
            written += 1
    db.flush()
    owned = False
    if monitoring_db is None:
        monitoring_db, owned = _monitoring_session(db)
    try:
        progress.refresh(db, monitoring_db)
        if owned:
            monitoring_db.commit()
    finally:
        if owned:
            monitoring_db.close()
    return written
