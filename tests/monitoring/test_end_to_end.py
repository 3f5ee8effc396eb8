"""Issue 7's end-to-end path on both backends: frame upload -> draw -> invitations ->
residents answer the test and the survey through the API -> close -> weights ->
aggregates in the monitoring database
 -> export."""
from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.conftest import TEST_SECRET

from .conftest import ACTOR, to_csv
from .entry_support import finish_survey, finish_test

STREETS = ("S01", "S02", "S03")


def _frame() -> bytes:
    rows = []
    for s, street in enumerate(STREETS):
        for i in range(8 + 2 * s):  # N_h = 8, 10, 12
            rows.append({"hh_id": f"{street}-{i:03d}", "street": street,
                         "age_band": ("18-29", "30-44", "60-69")[i % 3],
                         "sex": ("female", "male")[i % 2], "occupation": "farmer"})
    return to_csv(rows)


def test_frame_to_export(city: Any, make_campaign: Any, testapp: Any, wsgi_app: Any) -> None:
    from assessment.models import TestSession
    from monitoring.closing import close_campaign
    from monitoring.fieldwork import draw, frames
    from monitoring.fieldwork.invitations import issue_invitations
    from monitoring.fieldwork.models import Invitation
    from monitoring.results.dashboard import Scope, table
    from monitoring.results.exports import export
    from monitoring.results.margins import upload_margin
    from monitoring.results.models import RespondentWeight, WeightRun
    from monitoring.results.respondents import respondent_table
    from monitoring.results.warehouse import Aggregate, MonitoringRun

    db = city
    campaign = make_campaign(district="D01")
    frames.import_frame(db, campaign, "frame.csv", _frame(),
                        frames.FrameSpec("unit", "hh_id", ["street"]), ACTOR)
    draw.set_design(db, campaign, ACTOR, n=9)
    draw.draw_sample(db, campaign, ACTOR, seed=2027)
    issued = issue_invitations(db, campaign, ACTOR, secret=TEST_SECRET)
    db.commit()
    assert len(issued) == 9
    upload_margin(db, "d01.csv", b"district,sex,population\nD01,female,5200\nD01,male,4800\n"
                  b"D02,female,1\nD02,male,1\n", name="census", user="admin")
    db.commit()

    # residents: the first in each street only takes the test, one never comes
    by_street: dict[str, list[Any]] = {}
    for inv in issued:
        by_street.setdefault(inv.stratum, []).append(inv)
    plan = {}
    for _street, members in sorted(by_street.items()):
        for k, inv in enumerate(members):
            plan[inv.code] = "test_only" if k == 0 else "both"
    plan[sorted(by_street.items())[-1][1][-1].code] = "never"
    # the five full respondents between them belong to every population group
    people = iter([{"occupation": "civil_servant", "age_band": "18-29"},
                   {"occupation": "farmer", "age_band": "60-69"},
                   {"occupation": "industrial_worker", "age_band": "30-44"},
                   {"occupation": "migrant_worker", "age_band": "45-59"},
                   {"occupation": "service", "age_band": "70+"}])
    for k, (code, what) in enumerate(sorted(plan.items())):
        if what == "never":
            continue
        started = testapp.post_json("/api/v1/invitations/redeem",
                                    {"code": code, "consent": True}).json
        finish_test(testapp, started["test_session"]["token"], choice=1 + k % 4)
        if what == "test_only":
            continue
        survey = testapp.post_json("/api/v1/invitations/redeem", {"code": code}).json
        finish_survey(testapp, survey["survey_session"]["token"], seed=k,
                      overrides=next(people))
    respondents = sum(1 for w in plan.values() if w == "both")
    assert respondents == 5

    # closing freezes the campaign, then computes the weights and the aggregates (as the
    # `learningcity campaigns close` command does: both sessions committed after)
    mdb = wsgi_app.registry.monitoring_session_factory()
    try:
        outcome = close_campaign(db, campaign, ACTOR, monitoring_db=mdb)
        db.commit()
        mdb.commit()
    finally:
        mdb.close()
    assert outcome.steps == {"weights": "ok", "aggregates": "ok"}, outcome.steps
    statuses = pd.Series([i.status for i in db.scalars(sa.select(Invitation))]).value_counts()
    assert statuses.to_dict() == {"completed": 5, "started": 3, "issued": 1}

    # nothing is accepted any more, through the code or inside a session
    code = next(c for c, w in plan.items() if w == "never")
    res = testapp.post_json("/api/v1/invitations/redeem", {"code": code, "consent": True},
                            status=409)
    assert res.json["error"] == "campaign_closed"
    assert db.scalar(sa.select(sa.func.count(TestSession.id))) == 8

    # weights: design weights carry the frame (30 households), calibrated to the margin
    run = db.scalar(sa.select(WeightRun).where(WeightRun.current.is_(True)))
    weights = db.scalars(sa.select(RespondentWeight).where(
        RespondentWeight.run_id == run.id)).all()
    assert len(weights) == 9
    assert sum(w.w_design for w in weights) == pytest.approx(30.0)
    assert sum(w.weight for w in weights) == pytest.approx(10_000.0)
    assert run.method["steps"] == ["design", "nonresponse", "poststratify"]

    data = respondent_table(db, campaign.code)
    assert len(data.frame) == 5
    by_sex = data.frame.groupby("sex")["weight"].sum().to_dict()
    assert by_sex == pytest.approx({"female": 5200.0, "male": 4800.0})
    assert data.frame[[f"pv{m}" for m in range(1, 6)]].notna().all().all()

    # aggregates in the monitoring database (no person-level rows), then an export
    mdb = wsgi_app.registry.monitoring_session_factory()
    try:
        run_row = mdb.scalar(sa.select(MonitoringRun).where(
            MonitoringRun.campaign == campaign.code))
        assert run_row is not None and run_row.n_respondents == 5
        rows = mdb.scalars(sa.select(Aggregate).where(
            Aggregate.campaign == campaign.code)).all()
        assert any(r.dimension == "all" and r.n == 5 for r in rows)
        respondent_ids = set(data.frame["respondent"])
        for r in rows:
            assert not respondent_ids & {str(v) for v in vars(r).values()}
        overview = table("overview", mdb, Scope(None), {})
        csv_bytes = export(overview, "csv")
        assert csv_bytes.startswith(b"\xef\xbb\xbf")
        exported = pd.read_csv(io.BytesIO(csv_bytes), encoding="utf-8-sig")
        assert len(exported) >= 1
    finally:
        mdb.close()
