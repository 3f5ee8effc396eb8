"""The live test with classification stopping and KL selection (engine through delivery):
the level the engine stops in is the level the resident is told, and the session records
why it stopped."""
from __future__ import annotations

import sqlalchemy as sa

from assessment import engine, services
from assessment.models import TestSession
from itembank.scale import level_for


def start(testapp):
    res = testapp.post_json("/api/v1/sessions", {"consent": True,
                                                 "background": {"age_band": "60-69"}},
                            status=201)
    return res.json["token"], res.json


def answer(testapp, token, step, choice):
    item = step["item"]
    return testapp.post_json(f"/api/v1/sessions/{token}/answers",
                             {"position": item["position"], "version": item["version"],
                              "choice": choice}).json


def test_classification_stopping_in_the_live_test(testapp, demo, dbsession):
    from itembank.models import Instrument

    instrument = dbsession.scalar(sa.select(Instrument).where(Instrument.code == "LLA"))
    instrument.blueprint = {**instrument.blueprint, "min_items": 5, "max_items": 25,
                            "se_target": 0.05, "kl": {"items": 3},
                            "classification": {"alpha": 0.1}}
    dbsession.commit()
    reasons = []
    for pattern in ((1,), (2,), (1, 2), (3, 1, 2), (4,)):
        token, step = start(testapp)
        while step["status"] == "testing":
            step = answer(testapp, token, step, pattern[step["answered"] % len(pattern)])
        session = dbsession.scalar(sa.select(TestSession).where(
            TestSession.token_hash == services.hash_token(token)))
        dbsession.refresh(session)
        live = services.live_bank(dbsession, session.calibration_id)
        calibration = live.calibration
        assert list(live.bank.cuts) == list(engine.theta_cuts(
            [lv["min"] for lv in calibration.levels], calibration.scale_mean,
            calibration.scale_sd, calibration.link_a, calibration.link_b))
        assert session.stop_reason in ("classified", "max_items", "no_items")
        reasons.append(session.stop_reason)
        # the level recorded and shown is the level of the final θ on the reporting scale
        assert session.level == level_for(calibration.to_scale(session.theta),
                                          calibration.levels)["code"]
        assert step["result"]["level"] == session.level
        if session.stop_reason == "classified":
            half = 1.6448536 * session.se
            lo, hi = (live.bank.level_index(session.theta - half),
                      live.bank.level_index(session.theta + half))
            assert lo == hi
            codes = [lv["code"] for lv in calibration.levels]
            assert codes[lo] == session.level
            assert session.n_answered >= 5  # min_items (pilot items come on top)
    assert "classified" in reasons, reasons


def test_the_staff_page_names_the_new_stop_reason():
    from learningcity.labels import CODES

    assert engine.STOP_REASONS == ("max_items", "no_items", "se_target", "classified",
                                   "min_info_gain")
    assert all(reason in CODES for reason in engine.STOP_REASONS)
