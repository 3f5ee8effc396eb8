"""Aggregation into the monitoring database on a synthetic respondent table with a known
design: agreement with monitoring.estimates called directly, suppression, idempotence,
frame indicators, and that nothing person-level reaches the monitoring database."""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from monitoring.results import aggregate as A
from monitoring.results.indicators import catalogue
from monitoring.results.warehouse import AGGREGATE_COLUMNS, Aggregate, MonitoringRun
from monitoring.stats import design as sd
from monitoring.stats import estimates as est
from monitoring.stats import imputation as imp
from tests.monitoring.synthetic import respondents


@pytest.fixture
def data(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The synthetic campaign C1, served by the respondent-table contract."""
    tables = {"C1": respondents()}
    monkeypatch.setattr(A, "respondent_table", lambda db, code: tables[code])
    return tables


def _rows(session: Any, **where: Any) -> list[Aggregate]:
    q = sa.select(Aggregate)
    for k, v in where.items():
        q = q.where(getattr(Aggregate, k) == v)
    return session.scalars(q).all()


def _design(frame: pd.DataFrame) -> sd.Design:
    return sd.Design.from_frame(frame, "weight", strata="stratum", psu="psu", fpc="fpc",
                                 lonely_psu="adjust")


def test_estimates_equal_the_statistics_core(dbsession: Any, data: Any) -> None:
    summary = A.aggregate_campaign(dbsession, dbsession, "C1", actor="test")
    dbsession.commit()
    frame = data["C1"].frame
    design = _design(frame)
    assert summary.n_respondents == len(frame)
    # indicator: community training rate, whole population and by group
    y = np.where(frame["community_training"].isna(), np.nan,
                 (frame["community_training"] == "yes").astype(float))
    ref = est.survey_proportion(design, y).table.iloc[0]
    row = _rows(dbsession, measure="community_training_rate", dimension="all")[0]
    assert row.estimate == pytest.approx(ref["estimate"], rel=1e-12)
    assert row.se == pytest.approx(ref["se"], rel=1e-12)
    assert (row.ci_low, row.ci_high) == pytest.approx((ref["ci_low"], ref["ci_high"]), rel=1e-12)
    assert row.deff == pytest.approx(ref["deff"], rel=1e-12)
    assert row.n == ref["n"] and row.method == "taylor"
    by = est.survey_proportion(design, y, by=frame["group"].rename("group")).table
    for _, r in by[by["n"] >= A.MIN_N].iterrows():
        got = _rows(dbsession, measure="community_training_rate", dimension="group",
                    group_value=r["group"])[0]
        assert (got.estimate, got.se) == pytest.approx((r["estimate"], r["se"]), rel=1e-12)
    # older-adult indicator: the population is the 60+ age bands only
    older = frame["age_band"].isin(["60-69", "70+"])
    y2 = np.where(older & frame["elder_education"].notna(),
                  (frame["elder_education"] == "regular").astype(float), np.nan)
    ref2 = est.survey_proportion(design, y2).table.iloc[0]
    row2 = _rows(dbsession, measure="older_adult_education", dimension="all")[0]
    assert (row2.estimate, row2.se, row2.n) == pytest.approx(
        (ref2["estimate"], ref2["se"], ref2["n"]), rel=1e-12)
    assert row2.target == 0.26 and row2.direction == ">"
    assert row2.judgement == ("met" if ref2["ci_low"] > 0.26 else
                              "not_met" if ref2["ci_high"] <= 0.26 else "undetermined")
    # ability: plausible values with Rubin's rules, and level shares
    pvs = frame[[f"pv{m}" for m in range(1, 6)]].to_numpy()
    pv = imp.pv_estimate(design, pvs, "mean").table.iloc[0]
    ab = _rows(dbsession, measure="ability_mean", dimension="all")[0]
    assert (ab.estimate, ab.se) == pytest.approx((pv["estimate"], pv["se"]), rel=1e-12)
    assert ab.method == "taylor+rubin(5 PV)"
    shares = imp.proficiency_shares(design, pvs, [375, 450, 550, 625],
                                    ["L1", "L2", "L3", "L4", "L5"]).table
    for _, s in shares.iterrows():
        got = _rows(dbsession, measure=f"ability_level_{s['level']}", dimension="all")[0]
        assert (got.estimate, got.se) == pytest.approx((s["estimate"], s["se"]), rel=1e-12)
    # a survey scale score and a topic share by sex
    sc = est.survey_mean(design, frame["scale_motivation"].to_numpy()).table.iloc[0]
    got = _rows(dbsession, measure="scale_motivation", dimension="all")[0]
    assert (got.estimate, got.se) == pytest.approx((sc["estimate"], sc["se"]), rel=1e-12)
    sh = est.survey_proportion(design, frame["topics__health"].to_numpy(),
                               by=frame["sex"].rename("sex")).table
    for _, r in sh.iterrows():
        got = _rows(dbsession, measure="topics__health", dimension="sex",
                    group_value=r["sex"])[0]
        assert got.estimate == pytest.approx(r["estimate"], rel=1e-12)
    assert summary.by_kind["indicator"] > 0 and summary.by_kind["level_share"] > 0


def test_small_and_unreliable_cells_are_suppressed_in_the_database(dbsession: Any,
                                                                  data: Any) -> None:
    frame = data["C1"].frame
    frame["barriers__rare"] = 0.0
    frame.loc[[5, 300], "barriers__rare"] = 1.0  # two people: a large n, a tiny share
    frame["scale_noise"] = np.random.default_rng(3).normal(0.0, 1.0, len(frame))
    A.aggregate_campaign(dbsession, dbsession, "C1")
    dbsession.commit()
    n_civil = int((frame["group"] == "civil_servant").sum())
    assert 0 < n_civil < A.MIN_N
    small = _rows(dbsession, dimension="group", group_value="civil_servant")
    assert small and all(r.suppressed and r.suppression_reason == "small_n" for r in small)
    assert all(r.estimate is None and r.se is None and r.ci_low is None and r.ci_high is None
               and r.deff is None for r in small)
    assert {r.n for r in small if r.kind != "indicator"} == {n_civil}
    # the rare barrier: n is large, the relative SE exceeds 30 %, but the share's
    # Korn-Graubard interval is narrower than 0.05: the NCHS standard for proportions
    # publishes it (docs/suppression.md)
    ref = est.survey_proportion(_design(frame), frame["barriers__rare"].to_numpy()).table.iloc[0]
    rse = ref["se"] / ref["estimate"]
    rare = _rows(dbsession, measure="barriers__rare", dimension="all")[0]
    assert rare.n >= A.MIN_N
    assert A.MAX_RSE is not None and rse > A.MAX_RSE
    lo, hi, _ = est.korn_graubard(ref["estimate"], ref["se"], ref["n"], ref["df"])
    assert hi - lo < 0.05
    assert not rare.suppressed and rare.estimate == pytest.approx(ref["estimate"], rel=1e-12)
    # a mean whose relative SE exceeds 30 % is withheld
    noisy = _rows(dbsession, measure="scale_noise", dimension="all")[0]
    assert noisy.suppressed and noisy.suppression_reason == "high_rse"
    assert noisy.estimate is None
    # cells that pass both rules keep their numbers
    big = _rows(dbsession, measure="community_training_rate", dimension="group",
                group_value="farmer")[0]
    assert not big.suppressed and big.estimate is not None and big.n >= A.MIN_N


def test_rerun_is_idempotent_and_replaces(dbsession: Any, data: Any) -> None:
    A.aggregate_campaign(dbsession, dbsession, "C1")
    dbsession.commit()
    first = sorted((r.measure, r.dimension, r.group_value, r.district, r.estimate)
                   for r in _rows(dbsession))
    A.aggregate_campaign(dbsession, dbsession, "C1")
    dbsession.commit()
    second = sorted((r.measure, r.dimension, r.group_value, r.district, r.estimate)
                    for r in _rows(dbsession))
    assert first == second
    assert dbsession.scalar(sa.select(sa.func.count(MonitoringRun.id))) == 1
    # new data replace the old rows, never add to them
    data["C1"] = respondents(seed=8, participation=0.2)
    A.aggregate_campaign(dbsession, dbsession, "C1")
    dbsession.commit()
    third = _rows(dbsession, measure="community_training_rate", dimension="all")
    assert len(third) == 1 and third[0].estimate < 0.4
    assert len(_rows(dbsession)) == len(A.compute_aggregates(data["C1"], catalogue()))


def test_failed_run_changes_nothing(dbsession: Any, data: Any) -> None:
    A.aggregate_campaign(dbsession, dbsession, "C1")
    dbsession.commit()
    before = len(_rows(dbsession))
    data["C1"] = respondents()
    data["C1"].frame = data["C1"].frame.drop(columns=["weight"])
    with pytest.raises(A.AggregationError, match="weight"):
        A.aggregate_campaign(dbsession, dbsession, "C1")
    dbsession.rollback()
    assert len(_rows(dbsession)) == before
    data["C1"].frame = data["C1"].frame.iloc[0:0]
    with pytest.raises(A.AggregationError, match="no respondents"):
        A.aggregate_campaign(dbsession, dbsession, "C1")
    assert A.aggregate_on_close(dbsession, dbsession, "C1") is None


def test_nothing_person_level_reaches_the_monitoring_database(dbsession: Any,
                                                               data: Any) -> None:
    from learningcity.db import MonitoringBase, load_models

    A.aggregate_campaign(dbsession, dbsession, "C1")
    dbsession.commit()
    load_models()
    # the monitoring metadata holds only aggregate schemas: the campaigns' cells and the
    # action plan's progress (district and city values of indicators, no person)
    assert set(MonitoringBase.metadata.tables) == {"monitoring_run", "monitoring_aggregate",
                                                   "programme_progress"}
    columns = [c.name for c in Aggregate.__table__.columns]
    assert tuple(columns) == AGGREGATE_COLUMNS
    forbidden = {"respondent", "respondent_id", "invitation_id", "token", "street", "psu",
                 "weight", "answers", "pv1", "score"}
    for table in MonitoringBase.metadata.tables.values():
        assert not forbidden & {c.name for c in table.columns}, table.name
    rows = _rows(dbsession)
    assert rows
    for r in rows:
        published = r.estimate is not None
        if r.method == "census(frame)":
            continue  # communities, not persons
        assert (r.n >= A.MIN_N and not r.suppressed) or (
            r.suppressed and not published and r.se is None), (r.measure, r.group_value, r.n)
    # no stored text equals a respondent id or a street (PSU) name
    frame = data["C1"].frame
    secrets = set(frame["respondent"]) | set(frame["street"])
    stored = {v for r in rows for v in (r.group_value, r.district, r.measure, r.label_zh,
                                        r.label_en, r.campaign)}
    assert not secrets & stored
    # the raw database agrees (no hidden numbers behind a flag)
    leaked = dbsession.execute(sa.text(
        "SELECT count(*) FROM monitoring_aggregate WHERE suppressed = :t AND "
        "(estimate IS NOT NULL OR se IS NOT NULL)"), {"t": True}).scalar()
    assert leaked == 0


def _campaign_with_frame(dbsession: Any, attributes: list[dict[str, Any]]) -> None:
    from learningcity.models import District
    from monitoring.fieldwork.models import Campaign, FrameUnit, FrameUpload

    if dbsession.get(District, "A") is None:
        dbsession.add(District(code="A", name_zh="甲区", name_en="District A"))
        dbsession.flush()
    c = Campaign(code="C1", district_code="A", name="Campaign C1",
                 opens_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
                 closes_at=dt.datetime(2026, 6, 30, tzinfo=dt.UTC))
    dbsession.add(c)
    dbsession.flush()
    up = FrameUpload(campaign_id=c.id, filename="frame.csv", sha256="0" * 64,
                     n_rows=len(attributes), kind="cluster")
    dbsession.add(up)
    dbsession.flush()
    for i, a in enumerate(attributes):
        dbsession.add(FrameUnit(campaign_id=c.id, upload_id=up.id, row_number=i + 2,
                                unit_key=f"U{i}", attributes=a))
    dbsession.commit()


def test_learning_communities_from_the_frame(dbsession: Any, data: Any) -> None:
    attrs = [{"community": f"K{i}", "learning_community": "1" if i % 5 else "0"}
             for i in range(40)]
    _campaign_with_frame(dbsession, attrs)
    summary = A.aggregate_campaign(dbsession, dbsession, "C1")
    dbsession.commit()
    row = _rows(dbsession, measure="learning_communities", dimension="all")[0]
    assert row.n == 40 and row.estimate == pytest.approx(32 / 40)
    assert row.ci_low == row.ci_high == row.estimate and row.se == 0
    assert row.judgement == "met" and row.method == "census(frame)"
    assert "learning_communities" in summary.text()


def test_learning_communities_not_available_without_the_column(dbsession: Any,
                                                                data: Any) -> None:
    _campaign_with_frame(dbsession, [{"community": f"K{i}"} for i in range(10)])
    A.aggregate_campaign(dbsession, dbsession, "C1")
    dbsession.commit()
    row = _rows(dbsession, measure="learning_communities", dimension="all")[0]
    assert row.suppressed and row.suppression_reason == "not_available"
    assert row.estimate is None and row.judgement is None


def test_cli_aggregate_prints_summary(dbsession: Any, data: Any, tmp_path: Any,
                                      wsgi_app: Any) -> None:
    from click.testing import CliRunner

    from learningcity.cli import main
    from tests.conftest import write_ini

    ini = write_ini(tmp_path, wsgi_app.registry.settings["sqlalchemy.url"])
    result = CliRunner().invoke(main, ["monitoring", "aggregate", "--campaign", "C1",
                                       "--ini", ini])
    assert result.exit_code == 0, result.output
    assert "campaign C1" in result.output and "community_training_rate" in result.output
    dbsession.expire_all()
    assert _rows(dbsession, measure="community_training_rate", dimension="all")
    bad = CliRunner().invoke(main, ["monitoring", "aggregate", "--campaign", "NOPE",
                                    "--ini", ini])
    assert bad.exit_code != 0
    listed = CliRunner().invoke(main, ["monitoring", "indicators", "--ini", ini])
    assert listed.exit_code == 0 and "older_adult_education" in listed.output


def test_overlapping_groups_are_each_a_domain(dbsession: Any, data: Any) -> None:
    """With group__<code> flags (as the respondent table gives them) an older farmer
    counts in both groups; each group is estimated as its own domain."""
    frame = data["C1"].frame
    rng = np.random.default_rng(11)
    older = (frame["group"] == "older_adult").to_numpy()
    farmer = ((frame["group"] == "farmer") | (older & (rng.random(len(frame)) < 0.4)))
    frame["group__older_adult"] = older.astype(float)
    frame["group__farmer"] = farmer.astype(float)
    A.aggregate_campaign(dbsession, dbsession, "C1")
    dbsession.commit()
    design = _design(frame)
    y = np.where(frame["community_training"].isna(), np.nan,
                 (frame["community_training"] == "yes").astype(float))
    flag = pd.Series(np.where(farmer, "farmer", None), dtype=object).rename("g")
    ref = est.survey_proportion(design, y, by=flag).table.iloc[0]
    got = _rows(dbsession, measure="community_training_rate", dimension="group",
                group_value="farmer")
    assert len(got) == 1 and got[0].n == ref["n"] > int((frame["group"] == "farmer").sum())
    assert (got[0].estimate, got[0].se) == pytest.approx((ref["estimate"], ref["se"]),
                                                         rel=1e-12)
    groups = {r.group_value for r in _rows(dbsession, dimension="group")}
    assert groups == {"farmer", "older_adult"}
    assert {r.group_value for r in _rows(dbsession, dimension="group_x_district")} == groups


def test_a_separate_monitoring_database_gets_the_rows(dbsession: Any, data: Any,
                                                      tmp_path: Any) -> None:
    """With its own monitoring database, aggregates go there and nowhere else."""
    from learningcity import db

    url = f"sqlite:///{tmp_path / 'monitoring.sqlite'}"
    from alembic import command

    command.upgrade(db.alembic_config("monitoring", url), "heads")
    other = db.session_factory(db.make_engine(url))()
    try:
        A.aggregate_campaign(dbsession, other, "C1")
        other.commit()
        dbsession.commit()
        assert other.scalar(sa.select(sa.func.count(Aggregate.id))) > 0
        assert other.scalar(sa.select(MonitoringRun.campaign)) == "C1"
        assert dbsession.scalar(sa.select(sa.func.count(Aggregate.id))) == 0
    finally:
        other.close()


def test_indicator_without_its_questions_is_not_available(dbsession: Any, data: Any) -> None:
    data["C1"].frame = data["C1"].frame.drop(columns=["elder_education"])
    A.aggregate_campaign(dbsession, dbsession, "C1")
    dbsession.commit()
    rows = _rows(dbsession, measure="older_adult_education")
    assert {r.dimension for r in rows} == {"all", "district"}
    assert all(r.suppression_reason == "not_available" for r in rows)
    assert rows[0].estimate is None and "elder_education" in rows[0].method
    assert _rows(dbsession, measure="community_training_rate", dimension="all")[0].estimate
