"""Migration 0008 backfills the district staff scope from facts: a session with a campaign
takes the campaign's district, one without stays null (city staff only), whatever the
resident answered. Run on a fresh database per backend: downgrade 0008, upgrade again."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa


def test_backfill_takes_the_campaign_district_never_the_answer(fresh_url: str) -> None:
    from alembic import command

    from assessment import services as tests
    from itembank import demo_content as bank_demo
    from learningcity import db, demo
    from monitoring.fieldwork.campaigns import create_campaign
    from monitoring.fieldwork.window import local_input
    from surveys import demo_content as survey_demo
    from surveys import services as surveys

    db.upgrade(fresh_url)
    engine = db.make_engine(fresh_url)
    session = db.session_factory(engine)()
    demo.load(session)
    bank_demo.load(session)
    survey_demo.load(session)
    now = dt.datetime.now(dt.UTC)
    campaign = create_campaign(session, district_code="D02", user="t", name="C",
                               test_instrument="LLA", survey_code="learning_needs",
                               mode="sample", opens_at=local_input(now),
                               closes_at=local_input(now + dt.timedelta(days=9)))
    claimed = {"district": "D01"}
    _t, with_campaign = tests.start_session(session, "LLA", consent=True, background=claimed,
                                            campaign=campaign.code, invitation="I1")
    _t, without = tests.start_session(session, "LLA", consent=True, background=claimed)
    survey_with, _s = surveys.start_survey_session(session, campaign=campaign.code,
                                                   prefill=claimed)
    survey_without, _s = surveys.start_survey_session(session, prefill=claimed)
    survey_without.district = "D01"  # as the old code stored an answered district
    ids = (with_campaign.id, without.id, survey_with.id, survey_without.id)
    session.commit()
    session.close()
    cfg = db.alembic_config("main", fresh_url)
    command.downgrade(cfg, "0008_session_district-1")
    command.upgrade(cfg, "heads")
    with engine.connect() as conn:
        tests_scope = dict(conn.execute(sa.text(
            "SELECT id, district_code FROM test_session")).all())
        survey_scope = dict(conn.execute(sa.text(
            "SELECT id, district FROM survey_session")).all())
    assert tests_scope == {ids[0]: "D02", ids[1]: None}
    assert survey_scope == {ids[2]: "D02", ids[3]: None}
    engine.dispose()
