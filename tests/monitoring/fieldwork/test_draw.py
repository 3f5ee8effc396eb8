"""Design and draw: allocation, reproducibility from the stored seed, two-stage π, audit."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from learningcity.models import AuditEvent
from monitoring.fieldwork import draw, frames
from monitoring.fieldwork.models import FrameUnit
from monitoring.stats import sampling
from tests.conftest import TEST_SECRET

from ..conftest import ACTOR, cluster_rows, to_csv, unit_rows

UNIT = frames.FrameSpec("unit", "hh_id", ["street", "age_band"])


def _selected(db, campaign):
    return db.scalars(sa.select(FrameUnit).where(FrameUnit.campaign_id == campaign.id,
                                                 FrameUnit.selected.is_(True))).all()


def test_unit_draw_follows_allocation_and_pi(drawn_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = drawn_campaign(n=18, seed=7)
    assert campaign.status == "ready" and campaign.seed == 7 and campaign.drawn_by == ACTOR
    sizes = {s.stratum: s.population for s in campaign.strata}
    want = sampling.allocate(sizes, 18, "proportional").as_dict()
    assert {s.stratum: s.allocated for s in campaign.strata} == want
    chosen = _selected(db, campaign)
    assert len(chosen) == 18
    per = {}
    for unit in chosen:
        per[unit.stratum] = per.get(unit.stratum, 0) + 1
        assert unit.pi1 == pytest.approx(want[unit.stratum] / sizes[unit.stratum], rel=1e-12)
        assert unit.n_invitations == 1
    assert per == {k: v for k, v in want.items() if v}
    assert {s.stratum: s.quota for s in campaign.strata} == want


def test_redraw_from_stored_seed_gives_same_units(drawn_campaign, make_campaign,
                                                  monitoring_demo) -> None:
    db = monitoring_demo
    first = drawn_campaign(n=15, seed=None)  # seed generated from secrets and stored
    assert first.seed is not None and first.seed >= 0
    keys = draw.selected_keys(db, first)
    assert draw.replay_draw(db, first) == keys
    # the same frame in a new campaign with the stored seed selects the same units
    again = make_campaign()
    frames.import_frame(db, again, "u.csv", to_csv(unit_rows()), UNIT, ACTOR)
    draw.set_design(db, again, ACTOR, n=15)
    draw.draw_sample(db, again, ACTOR, seed=first.seed)
    assert draw.selected_keys(db, again) == keys
    # another seed gives another sample (the seed matters)
    other = make_campaign()
    frames.import_frame(db, other, "u.csv", to_csv(unit_rows()), UNIT, ACTOR)
    draw.set_design(db, other, ACTOR, n=15)
    draw.draw_sample(db, other, ACTOR, seed=(first.seed + 1) % 2 ** 63)
    assert draw.selected_keys(db, other) != keys


def test_draw_is_audited(drawn_campaign, monitoring_demo) -> None:
    campaign = drawn_campaign(n=10, seed=99)
    event = monitoring_demo.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "campaign.draw", AuditEvent.target == campaign.code))
    assert event.actor == ACTOR
    assert event.detail["seed"] == "99"
    assert event.detail["frame_sha256"] == campaign.design["frame"]["sha256"]
    assert len(event.detail["frame_sha256"]) == 64
    assert event.detail["selected"] == 10 and sum(event.detail["allocation"].values()) == 10
    assert event.detail["design"]["n"] == 10


def test_two_stage_pi(drawn_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    m = 100
    campaign = drawn_campaign(kind="cluster", n=4, m=m, seed=2024)
    rows = {r["community"]: float(r["population"]) for r in cluster_rows()}
    allocated = {s.stratum: s.allocated for s in campaign.strata}
    sizes = {s.stratum: s.population for s in campaign.strata}
    assert allocated == sampling.allocate(sizes, 4, "proportional",
                                          max_n={"urban": 6, "rural": 5}).as_dict()
    chosen = _selected(db, campaign)
    assert len(chosen) == 4
    for unit in chosen:
        # first stage: π1 = n_h M_i / Σ M (or 1 for a certainty cluster)
        n_h = allocated[unit.stratum]
        expected = sampling.pps_inclusion_probabilities(
            [v for k, v in rows.items() if k[0] == unit.unit_key[0]], n_h)[0]
        keys = [k for k in rows if k[0] == unit.unit_key[0]]
        assert unit.pi1 == pytest.approx(expected[keys.index(unit.unit_key)], rel=1e-12)
        assert unit.n_invitations == min(m, int(rows[unit.unit_key]))
    from monitoring.fieldwork.invitations import issue_invitations

    issued = issue_invitations(db, campaign, ACTOR, secret=TEST_SECRET)
    assert len(issued) == sum(u.n_invitations for u in chosen)
    by_unit = {u.unit_key: u for u in chosen}
    for inv in issued:
        unit = by_unit[inv.unit_key]
        size = rows[inv.unit_key]
        assert inv.pi == pytest.approx(unit.pi1 * min(m, size) / size, rel=1e-12)


def test_neyman_from_typed_sds_and_from_column(make_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = make_campaign()
    rows = unit_rows()
    for r in rows:
        r["sd"] = "2" if r["age_band"] == "60+" else "1"
    # the SD column is kept only when declared (frames keep what the campaign needs)
    with_sd = frames.FrameSpec(UNIT.kind, UNIT.id_column, UNIT.stratum_columns,
                               keep_columns=["sd"])
    frames.import_frame(db, campaign, "u.csv", to_csv(rows), UNIT, ACTOR)
    with pytest.raises(draw.DesignError, match="kept columns"):
        draw.set_design(db, campaign, ACTOR, n=20, allocation="neyman", sd_column="sd")
    frames.import_frame(db, campaign, "u.csv", to_csv(rows), with_sd, ACTOR)
    sizes = {s.stratum: s.population for s in campaign.strata}
    sds = {k: (2.0 if k.endswith("60+") else 1.0) for k in sizes}
    want = sampling.allocate(sizes, 20, "neyman", sds=sds).as_dict()
    draw.set_design(db, campaign, ACTOR, n=20, allocation="neyman", sd_column="sd")
    assert draw.allocate_campaign(db, campaign) == want
    draw.set_design(db, campaign, ACTOR, n=20, allocation="neyman", sds=sds)
    assert draw.allocate_campaign(db, campaign) == want
    # inconsistent SDs within a stratum name the row
    rows[1]["sd"] = "5"
    frames.import_frame(db, campaign, "u.csv", to_csv(rows), with_sd, ACTOR)
    with pytest.raises(draw.DesignError, match="row 3, column 'sd'"):
        draw.set_design(db, campaign, ACTOR, n=20, allocation="neyman", sd_column="sd")
    with pytest.raises(draw.DesignError, match="standard deviation per stratum"):
        draw.set_design(db, campaign, ACTOR, n=20, allocation="neyman")


def test_bounds_and_bad_design(make_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = make_campaign()
    frames.import_frame(db, campaign, "u.csv", to_csv(unit_rows()), UNIT, ACTOR)
    draw.set_design(db, campaign, ACTOR, n=27, allocation="equal", min_per_stratum=2,
                    max_per_stratum=4)
    alloc = draw.allocate_campaign(db, campaign)
    assert sum(alloc.values()) == 27 and all(2 <= v <= 4 for v in alloc.values())
    with pytest.raises(draw.DesignError) as caught:
        draw.set_design(db, campaign, ACTOR, n="x", allocation="best", quotas={"nope": 3})
    text = str(caught.value)
    assert "n: 'x'" in text and "allocation: 'best'" in text and "'nope'" in text
    with pytest.raises(draw.DesignError, match="more than"):
        draw.set_design(db, campaign, ACTOR, n=10_000)
    assert campaign.design["n"] == 27  # the refused designs changed nothing


def test_design_and_draw_refused_after_draw(drawn_campaign, monitoring_demo) -> None:
    campaign = drawn_campaign()
    design = dict(campaign.design)
    with pytest.raises(draw.DesignError, match="cannot change after the draw"):
        draw.set_design(monitoring_demo, campaign, ACTOR, n=5)
    with pytest.raises(draw.DesignError, match="already drawn"):
        draw.draw_sample(monitoring_demo, campaign, ACTOR)
    assert campaign.design == design


def test_open_mode_sets_quotas_without_selection(drawn_campaign, monitoring_demo) -> None:
    campaign = drawn_campaign(mode="open", n=9, quotas={"S01 / 60+": 5})
    assert campaign.status == "ready"
    assert _selected(monitoring_demo, campaign) == []
    quotas = {s.stratum: s.quota for s in campaign.strata}
    assert quotas["S01 / 60+"] == 5
    alloc = {s.stratum: s.allocated for s in campaign.strata}
    assert all(quotas[k] == alloc[k] for k in quotas if k != "S01 / 60+")
