"""A campaign's stored weights: design weights, nonresponse within strata, calibration to
the admin's margins, trimming, the stored steps, idempotent re-runs."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from monitoring.fieldwork.models import Invitation
from monitoring.results.margins import upload_margin
from monitoring.results.models import RespondentWeight, WeightRun
from monitoring.results.weighting import WeightingError, compute_weights

from ..entry_support import ready_campaign

CELLS = [(band, sex) for band in ("18-29", "30-44", "60-69") for sex in ("female", "male")]


def _people(n: int, offset: int = 0) -> list[dict[str, str]]:
    return [{"age_band": CELLS[(k + offset) % len(CELLS)][0],
             "sex": CELLS[(k + offset) % len(CELLS)][1]} for k in range(n)]


@pytest.fixture
def campaign(make_campaign: Any, monitoring_demo: Any) -> Any:
    """Three strata (N = 300, 120, 80; n = 12, 8, 6) in district A."""
    c = make_campaign(survey_code=None)
    ready_campaign(monitoring_demo, c, {"S01 / young": (300.0, _people(12)),
                                        "S01 / old": (120.0, _people(8, 1)),
                                        "S02 / young": (80.0, _people(6, 2))})
    return c


def _complete(db: Any, campaign: Any, skip: set[str] = frozenset()) -> None:
    for inv in db.scalars(sa.select(Invitation).where(Invitation.campaign_id == campaign.id)):
        if inv.public_id not in skip:
            inv.status = "completed"
    db.commit()


def _weights(db: Any, run: WeightRun) -> pd.DataFrame:
    rows = db.execute(sa.select(Invitation.public_id, Invitation.stratum, Invitation.prefill,
                                RespondentWeight.responded, RespondentWeight.w_design,
                                RespondentWeight.steps, RespondentWeight.weight)
                      .join(Invitation, Invitation.id == RespondentWeight.invitation_id)
                      .where(RespondentWeight.run_id == run.id)).all()
    return pd.DataFrame([{"id": r[0], "stratum": r[1], "age_band": r[2].get("age_band"),
                          "sex": r[2].get("sex"), "responded": r[3], "w_design": r[4],
                          **{f"w_{k}": v for k, v in r[5].items()}, "weight": r[6]}
                         for r in rows])


def _margin_csv(counts: dict[tuple[str, str, str], float]) -> bytes:
    lines = ["district,age_band,sex,population"] + [
        f"{d},{a},{s},{n:g}" for (d, a, s), n in counts.items()]
    return ("\n".join(lines) + "\n").encode()


def _margin(db: Any, scale: float = 1.0) -> dict[tuple[str, str], float]:
    counts = {("A", a, s): (100 + 17 * k) * scale for k, (a, s) in enumerate(CELLS)}
    counts.update({("B", a, s): 999.0 for a, s in CELLS})  # another district: ignored
    upload_margin(db, "margin.csv", _margin_csv(counts), name="census", user="admin")
    db.commit()
    return {(a, s): n for (d, a, s), n in counts.items() if d == "A"}


def test_design_weights_sum_to_the_frame_population_with_full_response(
        campaign: Any, monitoring_demo: Any) -> None:
    _complete(monitoring_demo, campaign)
    run = compute_weights(monitoring_demo, campaign, "tester")
    w = _weights(monitoring_demo, run)
    assert len(w) == 26
    assert w["w_design"].sum() == pytest.approx(500.0, rel=1e-12)
    assert w.groupby("stratum")["w_design"].sum().to_dict() == pytest.approx(
        {"S01 / young": 300.0, "S01 / old": 120.0, "S02 / young": 80.0}, rel=1e-12)
    assert np.allclose(w["weight"], w["w_design"])  # no margin: nonresponse factor 1
    assert run.method["calibration"]["skipped"] == "no active population margin"


def test_nonresponse_keeps_stratum_totals(campaign: Any, monitoring_demo: Any) -> None:
    skip = {i.public_id for i in monitoring_demo.scalars(sa.select(Invitation).where(
        Invitation.campaign_id == campaign.id).order_by(Invitation.id)).all()[::3]}
    _complete(monitoring_demo, campaign, skip)
    run = compute_weights(monitoring_demo, campaign, "tester")
    w = _weights(monitoring_demo, run)
    assert (w.loc[~w["responded"], "weight"] == 0).all()
    assert set(w.loc[~w["responded"], "id"]) == skip
    by = w.groupby("stratum")
    assert np.allclose(by["w_nonresponse"].sum(), by["w_design"].sum(), rtol=1e-12)
    # within a stratum every respondent gets the same factor
    for _s, part in w[w["responded"]].groupby("stratum"):
        assert np.ptp(part["w_nonresponse"] / part["w_design"]) < 1e-12


def test_poststratified_totals_equal_the_margins(campaign: Any, monitoring_demo: Any) -> None:
    _complete(monitoring_demo, campaign, {"x"})
    target = _margin(monitoring_demo)
    run = compute_weights(monitoring_demo, campaign, "tester", method="poststratify")
    w = _weights(monitoring_demo, run)
    got = w[w["responded"]].groupby(["age_band", "sex"])["weight"].sum().to_dict()
    assert got == pytest.approx(target, rel=1e-10)
    assert run.method["calibration"]["variables"] == ["age_band", "sex"]
    assert run.method["steps"] == ["design", "nonresponse", "poststratify"]


def test_raking_matches_each_variable_margin(campaign: Any, monitoring_demo: Any) -> None:
    _complete(monitoring_demo, campaign)
    target = _margin(monitoring_demo)
    run = compute_weights(monitoring_demo, campaign, "tester", method="rake")
    w = _weights(monitoring_demo, run)
    t = pd.Series(target)
    for level, var in ((0, "age_band"), (1, "sex")):
        want = t.groupby(level=level).sum().to_dict()
        got = w.groupby(var)["weight"].sum().to_dict()
        assert got == pytest.approx(want, rel=1e-8)


def test_trimming_keeps_the_total_and_caps(campaign: Any, monitoring_demo: Any) -> None:
    _complete(monitoring_demo, campaign)
    run = compute_weights(monitoring_demo, campaign, "tester", trim_median_multiple=1.5)
    w = _weights(monitoring_demo, run)
    before = w["w_nonresponse"]
    assert w["weight"].sum() == pytest.approx(before.sum(), rel=1e-10)
    cap = 1.5 * np.median(before[before > 0])
    assert w["weight"].max() <= cap * (1 + 1e-9)
    assert before.max() > cap  # the test trims something
    assert run.method["trim"]["median_multiple"] == 1.5
    assert [s["step"] for s in run.summary] == ["design", "nonresponse", "trim"]
    assert run.summary[-1]["sum"] == pytest.approx(500.0)


def test_trimming_after_calibration_keeps_the_margins(campaign: Any, monitoring_demo: Any
                                                      ) -> None:
    """Trimmed and re-calibrated in turn: the cross-classified margins hold and no weight
    is above the cap (trimming after calibration alone would break the margins)."""
    _complete(monitoring_demo, campaign)
    target = _margin(monitoring_demo)
    plain = _weights(monitoring_demo, compute_weights(monitoring_demo, campaign, "tester",
                                                      method="poststratify"))
    cap_base = np.median(plain.loc[plain["responded"], "weight"])
    run = compute_weights(monitoring_demo, campaign, "tester", method="poststratify",
                          trim_median_multiple=1.5)
    w = _weights(monitoring_demo, run)
    got = w[w["responded"]].groupby(["age_band", "sex"])["weight"].sum().to_dict()
    assert got == pytest.approx(target, rel=1e-8)
    upper = run.method["trim"]["upper"]
    assert upper == pytest.approx(1.5 * cap_base, rel=1e-9)
    assert w["weight"].max() <= upper * (1 + 1e-9)
    assert plain["weight"].max() > upper  # something was trimmed
    assert run.method["trim"]["recalibrated"] is True
    assert run.method["trim"]["n_trimmed"] > 0
    # a cap the margins cannot live with is refused, naming the cell
    with pytest.raises(WeightingError, match="60-69 × female"):
        compute_weights(monitoring_demo, campaign, "tester", method="poststratify",
                        trim_median_multiple=1.3)
    assert [s["step"] for s in run.summary] == ["design", "nonresponse", "poststratify",
                                                "trim"]
    # the calibration (with its cells' totals) is kept for the variance
    cal = run.method["calibration"]
    assert cal["method"] == "poststratify" and sum(c["total"] for c in cal["totals"]) == \
        pytest.approx(sum(target.values()))


def test_every_sampled_invitation_is_stored_and_reruns_are_idempotent(
        campaign: Any, monitoring_demo: Any) -> None:
    _complete(monitoring_demo, campaign, {"x"})
    first = compute_weights(monitoring_demo, campaign, "tester")
    monitoring_demo.commit()
    again = compute_weights(monitoring_demo, campaign, "tester")
    assert again.id == first.id
    assert monitoring_demo.scalar(sa.select(sa.func.count(WeightRun.id))) == 1
    _margin(monitoring_demo)
    second = compute_weights(monitoring_demo, campaign, "tester")
    monitoring_demo.commit()
    runs = monitoring_demo.scalars(sa.select(WeightRun).order_by(WeightRun.id)).all()
    assert [r.current for r in runs] == [False, True] and runs[1].id == second.id
    n = monitoring_demo.scalar(sa.select(sa.func.count(RespondentWeight.id)).where(
        RespondentWeight.run_id == second.id))
    assert n == 26
    row = monitoring_demo.scalar(sa.select(RespondentWeight).where(
        RespondentWeight.run_id == second.id))
    assert list(row.steps) == ["nonresponse", "poststratify"]
    assert row.weight == pytest.approx(row.steps["poststratify"])


def test_a_stratum_without_respondents_is_collapsed_or_refused(
        campaign: Any, monitoring_demo: Any) -> None:
    from monitoring.fieldwork.models import CampaignStratum

    for s in monitoring_demo.scalars(sa.select(CampaignStratum)):
        street, band = s.stratum.split(" / ")
        s.values = {"street": street, "age": band}
    empty = {i.public_id for i in monitoring_demo.scalars(sa.select(Invitation).where(
        Invitation.stratum == "S01 / old"))}
    _complete(monitoring_demo, campaign, empty)
    with pytest.raises(WeightingError, match="S01 / old"):
        compute_weights(monitoring_demo, campaign, "tester", collapse=False)
    run = compute_weights(monitoring_demo, campaign, "tester")
    assert run.method["collapsed"] == {"S01 / old": "S01 / young"}  # same street
    w = _weights(monitoring_demo, run)
    merged = w[w["stratum"].isin(["S01 / old", "S01 / young"])]
    assert merged["weight"].sum() == pytest.approx(420.0)


def test_respondents_missing_a_margin_variable_are_named(
        campaign: Any, monitoring_demo: Any) -> None:
    _complete(monitoring_demo, campaign)
    _margin(monitoring_demo)
    victim = monitoring_demo.scalar(sa.select(Invitation).order_by(Invitation.id))
    victim.prefill = {"district": "A", "age_band": "18-29"}
    monitoring_demo.commit()
    with pytest.raises(WeightingError, match=victim.public_id):
        compute_weights(monitoring_demo, campaign, "tester")
    for inv in monitoring_demo.scalars(sa.select(Invitation)):
        inv.prefill = {k: v for k, v in inv.prefill.items() if k != "sex"}
    monitoring_demo.commit()
    run = compute_weights(monitoring_demo, campaign, "tester")
    assert run.method["calibration"]["summed_out"] == ["sex"]


def test_no_respondents_is_a_clear_error(campaign: Any, monitoring_demo: Any) -> None:
    with pytest.raises(WeightingError, match="no respondents"):
        compute_weights(monitoring_demo, campaign, "tester")
    with pytest.raises(WeightingError, match="unknown method"):
        compute_weights(monitoring_demo, campaign, "tester", method="magic")


def test_command_line_weigh(campaign: Any, monitoring_demo: Any, db_url: str,
                            tmp_path: Any) -> None:
    from click.testing import CliRunner

    from learningcity.cli import main
    from tests.conftest import write_ini

    ini = write_ini(tmp_path, db_url)
    runner = CliRunner()
    refused = runner.invoke(main, ["margins", "weigh", campaign.code, "--ini", ini])
    assert refused.exit_code != 0 and "no respondents" in refused.output
    _complete(monitoring_demo, campaign)
    _margin(monitoring_demo)
    res = runner.invoke(main, ["margins", "weigh", campaign.code, "--method", "rake",
                               "--trim", "3", "--ini", ini])
    assert res.exit_code == 0, res.output
    assert "design -> nonresponse -> rake -> trim" in res.output
    assert "n_eff=" in res.output
    monitoring_demo.expire_all()
    run = monitoring_demo.scalar(sa.select(WeightRun).where(WeightRun.current.is_(True)))
    assert run.method["calibration"]["method"] == "rake"
    assert runner.invoke(main, ["margins", "weigh", "NOPE", "--ini", ini]).exit_code != 0
