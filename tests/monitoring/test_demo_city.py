"""The simulated demo city (monitoring.demo_city): twelve districts, three yearly
campaigns, every built-in indicator published (estimate, interval, verdict) for every
district and year, marked as simulated; seeded, idempotent, and off unless asked for.

The full load runs without the ability cells (``ability=False``: they take most of the
aggregation time and none of the indicators needs them); one district-year is published
with them."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa


@pytest.fixture
def districts(dbsession: Any, staff: Any) -> Any:
    from learningcity import demo

    demo.load(dbsession)
    dbsession.commit()
    return dbsession


def test_the_demo_city_has_twelve_districts() -> None:
    from learningcity.demo import DEMO_DISTRICTS
    from monitoring import demo_city

    codes = [d[0] for d in DEMO_DISTRICTS]
    assert codes == [f"D{k:02d}" for k in range(1, 13)]
    assert len({d[1] for d in DEMO_DISTRICTS}) == len({d[2] for d in DEMO_DISTRICTS}) == 12
    assert all(d[3] > 100_000 for d in DEMO_DISTRICTS)
    assert set(demo_city.PROFILES) == set(codes)
    assert demo_city.YEARS == (2023, 2024, 2025)


def test_off_unless_the_settings_ask(districts: Any) -> None:
    from pyramid import testing

    from monitoring import demo_city
    from monitoring.results.warehouse import MonitoringRun

    assert demo_city.enabled() is False
    assert demo_city.load(districts, districts) == []
    assert districts.scalar(sa.select(sa.func.count()).select_from(MonitoringRun)) == 0
    testing.setUp(settings={demo_city.SETTING: "true"})
    try:
        assert demo_city.enabled() is True
    finally:
        testing.tearDown()


def test_older_adults_are_oversampled_and_the_weights_undo_it() -> None:
    from monitoring import demo_city

    population = 412_000
    a, communities = demo_city.simulate("D01", 2024, population)
    b, again = demo_city.simulate("D01", 2024, population)
    assert a.equals(b) and communities == again  # seeded
    assert len(a) == demo_city.sample_size(population) >= 300
    older = a["stratum"] == "60+"
    profile = demo_city.PROFILES["D01"]
    assert older.mean() == pytest.approx(demo_city.OLDER_SAMPLE_SHARE, abs=0.01)
    assert older.mean() > profile.older + 0.15  # oversampled
    # design weights N_h / n_h: the strata sum to the adult population, older adults
    # weigh as many as they are in it
    adults = int(population * demo_city.ADULT_SHARE)
    assert a["weight"].sum() == pytest.approx(adults)
    assert a.loc[older, "weight"].sum() / adults == pytest.approx(profile.older, abs=1e-3)
    assert (a.groupby("stratum")["fpc"].first() ==
            a.groupby("stratum")["weight"].sum().round()).all()
    assert a["elder_education"][~older].isna().all()
    assert set(a["elder_education"][older]) <= {"regular", "sometimes", "never"}
    # the indicators do not depend on whether the ability columns are drawn
    c, _ = demo_city.simulate("D01", 2024, population, ability=False)
    assert not any(col.startswith("pv") for col in c.columns)
    assert c["community_training"].equals(a["community_training"])


def test_every_district_year_and_builtin_indicator_is_published(
        districts: Any, testapp: Any, login: Any) -> None:
    from monitoring import demo_city
    from monitoring.results.dashboard import SIMULATED_MARK, Scope, simulated_campaigns
    from monitoring.results.indicators import BUILTIN
    from monitoring.results.warehouse import Aggregate, MonitoringRun

    db = districts
    codes = demo_city.load(db, db, force=True, ability=False)
    db.commit()
    assert len(codes) == 36
    runs = db.scalars(sa.select(MonitoringRun)).all()
    assert {r.district for r in runs} == {f"D{k:02d}" for k in range(1, 13)}
    assert sorted({r.closes_at.year for r in runs}) == [2023, 2024, 2025]
    assert len({(r.district, r.closes_at.year) for r in runs}) == 36
    assert all(SIMULATED_MARK in r.campaign_name and r.n_respondents >= 300 for r in runs)
    assert sorted(simulated_campaigns(db, Scope())) == sorted(codes)

    cells = {(r.campaign, r.measure): r for r in db.scalars(sa.select(Aggregate).where(
        Aggregate.kind == "indicator", Aggregate.dimension == "district"))}
    verdicts = set()
    for run in runs:
        for ind in BUILTIN:
            cell = cells[(run.campaign, ind.code)]
            assert cell.group_value == cell.district == run.district
            assert not cell.suppressed, (run.campaign, ind.code, cell.suppression_reason)
            assert cell.estimate is not None and cell.ci_low is not None \
                and cell.ci_high is not None
            assert cell.ci_low <= cell.estimate <= cell.ci_high
            if ind.kind == "person":
                assert cell.ci_low < cell.ci_high
            assert cell.judgement in ("met", "not_met", "undetermined")
            assert cell.target == ind.target and cell.direction == ind.direction
            verdicts.add(cell.judgement)
        older = cells[(run.campaign, "older_adult_education")]
        # the oversample: every district's older adults count
        assert older.n == round(demo_city.OLDER_SAMPLE_SHARE * run.n_respondents) >= 135
    assert verdicts == {"met", "not_met", "undetermined"}  # the districts differ

    # running again adds nothing
    count = db.scalar(sa.select(sa.func.count()).select_from(Aggregate))
    assert demo_city.load(db, db, force=True, ability=False) == []
    db.commit()
    assert db.scalar(sa.select(sa.func.count()).select_from(Aggregate)) == count

    # the monitor sees the city, marked as simulated
    login("monitor")
    page = testapp.get("/monitoring/districts?lang=zh-CN").text
    assert "模拟演示数据" in page and "东湖区" in page and "龙泉市" in page
    trends = testapp.get("/monitoring/trends?measure=older_adult_education&lang=en").text
    assert "Simulated demo data." in trends
    assert all(demo_city.campaign_code("D12", y) in trends for y in demo_city.YEARS)


def test_one_district_year_with_ability_cells(districts: Any) -> None:
    from monitoring import demo_city
    from monitoring.results.warehouse import Aggregate

    db = districts
    assert demo_city.publish(db, db, "D05", 2025, 154_000) > 0
    db.commit()
    rows = db.scalars(sa.select(Aggregate).where(
        Aggregate.campaign == demo_city.campaign_code("D05", 2025),
        Aggregate.dimension == "district")).all()
    by = {r.measure: r for r in rows}
    ability = by["ability_mean"]
    assert not ability.suppressed and 400 < ability.estimate < 650
    assert "rubin(10 PV)" in ability.method
    levels = [r for r in rows if r.kind == "level_share" and not r.suppressed]
    assert levels and np.isfinite([r.estimate for r in levels]).all()
    assert not by["scale_motivation"].suppressed
