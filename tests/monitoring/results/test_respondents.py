"""The per-respondent analysis table: columns, groups, survey answers, weights and
reproducible plausible values, from residents who answered through the API."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from monitoring.results.respondents import GROUP_ORDER, groups_of, respondent_table
from monitoring.results.weighting import compute_weights

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
    assert data.design == {"strata": "stratum", "psu": "psu", "fpc": "fpc"}
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


def test_cluster_designs_carry_their_psus_and_first_stage_fpc(
        drawn_campaign: Any, monitoring_demo: Any) -> None:
    from monitoring.fieldwork.invitations import issue_invitations
    from monitoring.fieldwork.models import CampaignStratum, FrameUnit, Invitation

    campaign = drawn_campaign(kind="cluster", n=4, m=3)
    issue_invitations(monitoring_demo, campaign, "tester")
    for inv in monitoring_demo.scalars(sa.select(Invitation)):
        inv.status = "completed"
    monitoring_demo.commit()
    compute_weights(monitoring_demo, campaign, "tester")
    monitoring_demo.commit()
    frame = respondent_table(monitoring_demo, campaign.code).frame
    invitations = {i.public_id: i for i in monitoring_demo.scalars(sa.select(Invitation))}
    assert (frame["psu"] == [invitations[r].psu for r in frame["respondent"]]).all()
    assert frame["psu"].nunique() < len(frame)  # several residents per community
    clusters = dict(monitoring_demo.execute(sa.select(
        FrameUnit.stratum, sa.func.count(FrameUnit.id)).where(
        FrameUnit.campaign_id == campaign.id).group_by(FrameUnit.stratum)).all())
    strata = {s.stratum: s.frame_rows for s in monitoring_demo.scalars(
        sa.select(CampaignStratum))}
    assert strata == clusters  # frame_rows counts PSUs (communities) for a cluster frame
    assert (frame["fpc"] == frame["stratum"].map(clusters)).all()
    weights = {i.public_id: 1 / i.pi for i in invitations.values()}
    assert np.allclose(frame["weight"], frame["respondent"].map(weights))
