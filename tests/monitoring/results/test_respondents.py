"""The per-respondent analysis table: columns, groups, survey answers, weights and
reproducible plausible values, from residents who answered through the API."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from monitoring.results.respondents import GROUP_ORDER, groups_of, respondent_table
from monitoring.results.weighting import compute_weights
from monitoring.stats import sampling
from tests.conftest import TEST_SECRET

from ..entry_support import finish_survey, finish_test, ready_campaign

PEOPLE = [
    {"age_band": "60-69", "sex": "female", "occupation": "retired"},
    {"age_band": "18-29", "sex": "male", "occupation": "migrant_worker"},
    {"age_band": "30-44", "sex": "female", "occupation": "farmer"},
    {"age_band": "45-59", "sex": "male", "occupation": "civil_servant"},
    {"age_band": "70+", "sex": "male", "occupation": "farmer"},
]


@pytest.fixture
def answered(make_campaign: Any, monitoring_demo: Any, testapp: Any) -> Any:
    """A test + survey campaign in D01: four residents finish both, one only the test,
    one never starts."""
    from learningcity import demo
    from surveys import demo_content

    demo.load(monitoring_demo)
    demo_content.load(monitoring_demo)
    monitoring_demo.commit()
    campaign = make_campaign(district="D01")
    issued = ready_campaign(monitoring_demo, campaign, {
        "S01": (40.0, [{**PEOPLE[0], "street": "S01"}, {**PEOPLE[1], "street": "S01"},
                       {**PEOPLE[2], "street": "S01"}]),
        "S02": (30.0, [{**PEOPLE[3], "street": "S02"}, {**PEOPLE[4], "street": "S02"},
                       {"street": "S02"}])})
    for k, (code, _inv) in enumerate(issued[:5]):
        first = testapp.post_json("/api/v1/invitations/redeem",
                                  {"code": code, "consent": True}).json
        assert first["survey_session"] is None and first["next"] == "test"
        finish_test(testapp, first["test_session"]["token"], choice=1 + k % 3)
        if k == 4:
            continue  # stops after the test
        second = testapp.post_json("/api/v1/invitations/redeem", {"code": code}).json
        assert second["next"] == "survey" and second["survey_session"] is not None
        finish_survey(testapp, second["survey_session"]["token"], seed=k,
                      overrides={"community_training": "yes" if k % 2 else "no"})
        done = testapp.post_json("/api/v1/invitations/redeem", {"code": code}).json
        assert done["status"] == "completed" and done["next"] == "done"
    compute_weights(monitoring_demo, campaign, "tester")
    monitoring_demo.commit()
    return campaign, issued


def test_one_row_per_respondent_with_design_and_weights(answered: Any,
                                                        monitoring_demo: Any) -> None:
    campaign, issued = answered
    data = respondent_table(monitoring_demo, campaign.code)
    frame = data.frame
    assert sorted(frame["respondent"]) == sorted(inv.public_id for _c, inv in issued[:4])
    assert data.design == {"strata": "stratum", "psu": "psu", "fpc": "fpc", "ssu": None,
                           "fpc2": None, "probability": True,
                           "estimator": sampling.ONE_STAGE_ESTIMATOR}
    assert "ssu" not in frame.columns and "fpc2" not in frame.columns
    assert data.campaign.code == campaign.code and data.campaign.district == "D01"
    assert (frame["psu"] == frame["respondent"]).all()  # a unit design
    assert frame.set_index("respondent")["fpc"].to_dict() == {
        inv.public_id: (40.0 if inv.stratum == "S01" else 30.0) for _c, inv in issued[:4]}
    # nonresponse: stratum S01 has all 3 of 3, S02 has 1 of 3 -> its weight carries 30
    totals = frame.groupby("stratum")["weight"].sum().to_dict()
    assert totals == pytest.approx({"S01": 40.0, "S02": 30.0})
    assert (frame["district"] == "D01").all()
    forbidden = {"code", "code_hash", "name", "phone", "street_other", "suggestions",
                 "occupation_other", "token"}
    assert not forbidden & set(frame.columns)


def test_groups_and_answers(answered: Any, monitoring_demo: Any) -> None:
    campaign, issued = answered
    frame = respondent_table(monitoring_demo, campaign.code).frame.set_index("respondent")
    older = frame.loc[issued[0][1].public_id]
    assert older["age_band"] == "60-69" and older["group"] == "older_adult"
    assert older["group__older_adult"] == 1 and older["group__farmer"] == 0
    young = frame.loc[issued[1][1].public_id]
    assert young["group"] == "migrant_worker"
    assert young["group__young_people"] == 1 and young["group__migrant_worker"] == 1
    assert frame.loc[issued[3][1].public_id, "group"] == "civil_servant"
    assert set(frame["community_training"]) == {"yes", "no"}
    topic_columns = [c for c in frame.columns if c.startswith("topics__")]
    assert topic_columns and set(np.unique(frame[topic_columns].to_numpy())) <= {0.0, 1.0}
    assert any(c.startswith("scale_") for c in frame.columns)
    assert frame["street"].tolist() == ["S01", "S01", "S01", "S02"]


def test_plausible_values_are_on_the_scale_and_reproducible(answered: Any,
                                                             monitoring_demo: Any) -> None:
    from assessment.models import TestSession

    campaign, _issued = answered
    one = respondent_table(monitoring_demo, campaign.code).frame
    two = respondent_table(monitoring_demo, campaign.code).frame
    pv = [f"pv{m}" for m in range(1, 6)]
    assert np.array_equal(one[pv].to_numpy(), two[pv].to_numpy())
    assert one[pv].notna().all().all()
    assert one[pv].std(axis=1).gt(0).all()  # draws, not copies of the score
    sessions = {s.invitation: s for s in monitoring_demo.scalars(sa.select(TestSession))}
    for _i, row in one.iterrows():
        s = sessions[row["respondent"]]
        assert row["score"] == pytest.approx(s.score) and row["level"] == s.level
        # the PVs scatter around the resident's score with the posterior's spread
        assert abs(row[pv].mean() - s.score) < 4 * s.score_se
        assert 100 < row[pv].mean() < 900


def test_group_rules() -> None:
    assert groups_of({"age_band": "70+", "occupation": "farmer"}) == ["older_adult", "farmer"]
    assert groups_of({"age_band": "18-29", "occupation": "student"}) == ["young_people"]
    assert groups_of({"age_band": "30-44", "occupation": "service"}) == []
    assert GROUP_ORDER[0] == "older_adult"


def test_a_campaign_without_weights_is_refused(make_campaign: Any, monitoring_demo: Any
                                               ) -> None:
    from monitoring.fieldwork.models import Invitation

    campaign = make_campaign(survey_code=None)
    ready_campaign(monitoring_demo, campaign, {"S": (10.0, [{"age_band": "18-29"}])})
    assert respondent_table(monitoring_demo, campaign.code).frame.empty
    inv = monitoring_demo.scalar(sa.select(Invitation))
    inv.status = "completed"
    monitoring_demo.commit()
    with pytest.raises(ValueError, match="no weights"):
        respondent_table(monitoring_demo, campaign.code)
    with pytest.raises(LookupError):
        respondent_table(monitoring_demo, "NOPE")


def test_cluster_designs_carry_both_stages_and_certainty_strata(
        drawn_campaign: Any, monitoring_demo: Any) -> None:
    """A cluster campaign's table carries the design as drawn: the cluster as PSU, the
    person as SSU, M_i, the certainty cluster as a stratum of its own with fpc 1, and
    the other strata's fpc n_h / mean(π1), read back from the draw's frame rows."""
    from monitoring.fieldwork.invitations import issue_invitations
    from monitoring.fieldwork.models import FrameUnit, Invitation
    from monitoring.results.aggregate import build_design

    campaign = drawn_campaign(kind="cluster", n=4, m=3)
    issue_invitations(monitoring_demo, campaign, "tester", secret=TEST_SECRET)
    invitations = list(monitoring_demo.scalars(sa.select(Invitation)))
    for k, inv in enumerate(invitations):
        inv.status = "issued" if k == 0 else "completed"  # one nonrespondent
    monitoring_demo.commit()
    compute_weights(monitoring_demo, campaign, "tester")
    monitoring_demo.commit()
    data = respondent_table(monitoring_demo, campaign.code)
    frame = data.frame.set_index("respondent")
    assert data.design == {"strata": "stratum", "psu": "psu", "fpc": "fpc", "ssu": "ssu",
                           "fpc2": "fpc2", "probability": True,
                           "estimator": sampling.TWO_STAGE_ESTIMATOR}
    units = {u.id: u for u in monitoring_demo.scalars(sa.select(FrameUnit).where(
        FrameUnit.selected.is_(True)))}
    answered = [i for i in invitations if i.status == "completed"]
    assert sorted(frame.index) == sorted(i.public_id for i in answered)
    certain = {u.unit_key for u in units.values() if u.certainty}
    # 4 urban clusters of 5,850 residents: U04 (2,500) is above the sampling interval,
    # and then U00 (1,200 of the 3,350 left for 3 clusters)
    assert certain == {"U00", "U04"}
    clusters: dict[str, list[float]] = {}
    for inv in answered:
        unit, row = units[inv.frame_unit_id], frame.loc[inv.public_id]
        assert row["psu"] == unit.unit_key and row["ssu"] == inv.public_id
        assert row["fpc2"] == unit.size
        if unit.certainty:
            assert row["stratum"] == f"{unit.stratum}|{unit.unit_key}" and row["fpc"] == 1
        else:
            assert row["stratum"] == unit.stratum
            clusters.setdefault(unit.stratum, [])
            if unit.pi1 not in clusters[unit.stratum]:
                clusters[unit.stratum].append(unit.pi1)
    for stratum, pis in clusters.items():
        fpc = frame.loc[frame["stratum"] == stratum, "fpc"]
        assert fpc.nunique() == 1
        assert fpc.iloc[0] == pytest.approx(len(pis) / np.mean(pis), rel=1e-12)
    # weighting adjusts for nonresponse within the drawn stratum: the total stays Σ 1/pi
    assert frame["weight"].sum() == pytest.approx(
        sum(1 / i.pi for i in invitations), rel=1e-12)
    design = build_design(data.frame, data.design)
    assert design.ssu is not None and design.f2 is not None
    assert design.f[list(design.strata_labels).index("urban|U04")] == 1.0


def test_open_campaigns_are_labelled_non_probability(make_campaign: Any,
                                                     monitoring_demo: Any) -> None:
    """An open (quota) campaign is not a probability sample: its table says so, and its
    quota strata carry the stratum population as fpc, each respondent its own PSU."""
    from monitoring.fieldwork.models import CampaignStratum, Invitation

    campaign = make_campaign(survey_code=None, mode="open")
    ready_campaign(monitoring_demo, campaign, {"S": (25.0, [{"age_band": "18-29"},
                                                            {"age_band": "30-44"}])})
    for inv in monitoring_demo.scalars(sa.select(Invitation)):
        inv.status = "completed"
    monitoring_demo.commit()
    compute_weights(monitoring_demo, campaign, "tester")
    monitoring_demo.commit()
    data = respondent_table(monitoring_demo, campaign.code)
    assert data.design["probability"] is False and data.design["ssu"] is None
    population = monitoring_demo.scalar(sa.select(CampaignStratum.population))
    assert (data.frame["fpc"] == population).all()
    assert (data.frame["psu"] == data.frame["respondent"]).all()


def test_open_campaign_estimates_are_labelled_model_based(dbsession: Any,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """A non-probability campaign's cells and run say that they are model-based, and the
    staff page prints the label in the page's language; a probability campaign's do not."""
    from monitoring.results import aggregate as agg
    from monitoring.results import dashboard
    from monitoring.results.warehouse import (
        NON_PROBABILITY,
        NON_PROBABILITY_ZH,
        Aggregate,
        MonitoringRun,
    )
    from tests.monitoring.synthetic import respondents

    tables = {"Q1": respondents(code="Q1"), "P1": respondents(code="P1")}
    tables["Q1"].design = {"strata": "stratum", "psu": "psu", "fpc": "fpc", "ssu": None,
                           "fpc2": None, "probability": False, "estimator": "model"}
    monkeypatch.setattr(agg, "respondent_table", lambda db, code: tables[code])
    for code in tables:
        agg.aggregate_campaign(dbsession, dbsession, code)
    dbsession.commit()
    runs = {r.campaign: r.design for r in dbsession.scalars(sa.select(MonitoringRun))}
    assert runs["Q1"] == f"{NON_PROBABILITY}; strata=stratum, psu=psu, fpc=fpc; model"
    assert runs["P1"] == "strata=stratum, psu=psu, fpc=fpc"
    methods = dict(dbsession.execute(sa.select(Aggregate.campaign, Aggregate.method).where(
        Aggregate.measure == "community_training_rate", Aggregate.dimension == "all")).all())
    assert methods == {"Q1": f"{NON_PROBABILITY}: taylor", "P1": "taylor"}
    ability = dbsession.scalar(sa.select(Aggregate.method).where(
        Aggregate.campaign == "Q1", Aggregate.measure == "ability_mean"))
    assert ability.startswith(f"{NON_PROBABILITY}: taylor+rubin(") and len(ability) <= 64
    scope = dashboard.Scope(None)
    for locale, label in (("zh_CN", NON_PROBABILITY_ZH), ("en", NON_PROBABILITY)):
        shown = dashboard.groups(dbsession, scope, "Q1", "community_training_rate",
                                 locale=locale).rows
        assert shown and all(r["method"] == f"{label}: taylor" for r in shown)
    plain = dashboard.groups(dbsession, scope, "P1", "community_training_rate").rows
    assert {r["method"] for r in plain} == {"taylor"}
