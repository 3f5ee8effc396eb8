"""The simulated demo results (monitoring.demo_results) on both backends: residents go
through the real services, the loader is idempotent, and the monitor sees the
aggregates, marked as simulated, on /monitoring.

A reduced size keeps the test short: one district, two rounds, 70 residents drawn per
campaign (64 answer both instruments: enough for the NCHS standard to publish the
campaign's shares near one half, while group cells stay withheld)."""
from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from .results.analysis_check import check_analysis

SIZE = 70
#: on PostgreSQL the same path with fewer residents (the suite's time): every share is
#: then withheld by the NCHS standard, so the published-share checks run on SQLite only
SIZE_POSTGRESQL = 34


def _counts(db: Any) -> dict[str, int]:
    from assessment.models import TestSession
    from monitoring.fieldwork.models import Campaign, Invitation
    from monitoring.results.warehouse import Aggregate, MonitoringRun
    from surveys.models import SurveySession

    return {name: db.scalar(sa.select(sa.func.count()).select_from(model))
            for name, model in (("campaigns", Campaign), ("invitations", Invitation),
                                ("tests", TestSession), ("surveys", SurveySession),
                                ("runs", MonitoringRun), ("aggregates", Aggregate))}


def test_nothing_without_the_demo_item_bank(dbsession: Any, staff: Any) -> None:
    from monitoring import demo_results

    assert demo_results.load(dbsession, dbsession, size=SIZE) == []
    assert _counts(dbsession)["campaigns"] == 0


def test_size_comes_from_the_settings_and_is_off_by_default(city: Any) -> None:
    """Only a settings file that asks (development.ini) gets simulated campaigns."""
    from pyramid import testing

    from monitoring import demo_results

    assert demo_results.configured_size() == 0
    assert demo_results.load(city) == []  # no setting: nothing simulated
    assert _counts(city)["campaigns"] == 0
    for raw, expected in (("12", 12), ("0", 0), ("", 0)):
        testing.setUp(settings={demo_results.SIZE_SETTING: raw})
        try:
            assert demo_results.configured_size() == expected
        finally:
            testing.tearDown()
    testing.setUp(settings={demo_results.SIZE_SETTING: "many"})
    try:
        with pytest.raises(ValueError, match="demo_results_size"):
            demo_results.configured_size()
    finally:
        testing.tearDown()


def test_simulated_campaigns_are_real_closed_campaigns_and_idempotent(
        city: Any, testapp: Any, login: Any, tmp_path: Any) -> None:
    from assessment.models import TestSession
    from monitoring import demo_results
    from monitoring.fieldwork.models import Campaign, Invitation
    from monitoring.results.dashboard import SIMULATED_MARK
    from monitoring.results.warehouse import Aggregate, MonitoringRun
    from surveys.models import SurveySession

    db = city
    size = SIZE if db.get_bind().dialect.name == "sqlite" else SIZE_POSTGRESQL
    before = _counts(db)
    codes = demo_results.load(db, db, size=size, districts=demo_results.DISTRICTS[:1])
    db.commit()
    assert len(codes) == 2
    campaigns = db.scalars(sa.select(Campaign).where(Campaign.code.in_(codes))
                           .order_by(Campaign.closes_at)).all()
    assert [c.status for c in campaigns] == ["closed", "closed"]
    assert all(SIMULATED_MARK in c.name and c.district_code == "D01" for c in campaigns)
    assert [c.closes_at.year for c in campaigns] == [2025, 2026]  # past rounds

    for c in campaigns:
        invs = db.scalars(sa.select(Invitation).where(Invitation.campaign_id == c.id)).all()
        status = [i.status for i in invs]
        n_never = max(1, round(demo_results.NEVER_SHARE * len(invs)))
        n_test_only = max(1, round(demo_results.TEST_ONLY_SHARE * len(invs)))
        assert status.count("issued") == n_never
        assert status.count("started") == n_test_only
        completed = status.count("completed")
        assert completed == len(invs) - n_never - n_test_only >= 30
        # real sessions with stored answers, through the services
        tests = db.scalars(sa.select(TestSession).where(TestSession.campaign == c.code)).all()
        assert len(tests) == completed + n_test_only
        assert all(t.status == "finished" and t.n_answered >= 5 for t in tests)
        surveys = db.scalars(sa.select(SurveySession).where(
            SurveySession.campaign == c.code)).all()
        assert len(surveys) == completed and all(s.status == "finished" for s in surveys)
        assert all(s.answer_dict().get("community_training") in ("yes", "no")
                   for s in surveys)
        run = db.scalar(sa.select(MonitoringRun).where(MonitoringRun.campaign == c.code))
        assert run is not None and run.n_respondents == completed
        rows = db.scalars(sa.select(Aggregate).where(Aggregate.campaign == c.code)).all()
        shown = [r for r in rows if not r.suppressed]
        hidden = [r for r in rows if r.suppressed and r.suppression_reason == "small_n"]
        assert shown and hidden  # both kinds of cell appear on the pages
        assert all(r.estimate is None for r in hidden)
        overall = {r.measure: r for r in rows if r.dimension == "all"}
        if size == SIZE:
            assert not overall["community_training_rate"].suppressed
            assert 0.2 < overall["community_training_rate"].estimate < 0.9
        else:
            assert overall["community_training_rate"].suppression_reason.startswith("nchs_")
        assert overall["learning_communities"].estimate is not None  # from the frame

        # the analysis file re-estimates every published cell: with the project's
        # estimator to 1e-9 and, with R installed, with the R script it carries
        checked = check_analysis(db, db, c.code, tmp_path / c.code)
        census = [r for r in rows if r.method == "census(frame)"]
        assert census and checked["cells"] == len(rows) - len(census)

    after = _counts(db)
    assert after["campaigns"] == before["campaigns"] + 2
    # running again adds nothing
    assert demo_results.load(db, db, size=size, districts=demo_results.DISTRICTS[:1]) == []
    db.commit()
    assert _counts(db) == after

    # the monitor sees them on /monitoring, marked as simulated (both languages)
    login("monitor")
    page = testapp.get("/monitoring?lang=zh-CN").text
    assert codes[1] in page and "模拟演示数据" in page and "东湖区" in page
    trends = testapp.get("/monitoring/trends?measure=community_training_rate&lang=en").text
    assert codes[0] in trends and codes[1] in trends
    assert "Simulated demo data." in trends
    api = testapp.get("/api/v1/monitoring/aggregates",
                      params={"campaign": codes[1], "dimension": "all"}).json
    assert api and "community_training_rate" in str(api)
