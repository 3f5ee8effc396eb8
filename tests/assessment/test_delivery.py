"""Delivering the test: durable, idempotent answers, conflicts, resume, expiry, pilots."""
from __future__ import annotations

import datetime as dt
import itertools
import threading

import pytest
import sqlalchemy as sa

from assessment import services
from assessment.models import Answer, TestSession
from itembank.models import ItemResponse


def start(testapp, background=None):
    res = testapp.post_json("/api/v1/sessions", {"consent": True, "background": background
                                                  or {"age_band": "60-69"}}, status=201)
    return res.json["token"], res.json


def answer(testapp, token, step, choice=1, status=200):
    item = step["item"]
    return testapp.post_json(f"/api/v1/sessions/{token}/answers",
                             {"position": item["position"], "version": item["version"],
                              "choice": choice}, status=status)


def test_api_requires_consent(testapp, demo):
    res = testapp.post_json("/api/v1/sessions", {"consent": False}, status=400)
    assert res.json["error"] == "invalid_request"


def test_resending_the_same_answer_returns_the_same_next_step(testapp, demo, dbsession):
    token, step = start(testapp)
    first = answer(testapp, token, step).json
    again = answer(testapp, token, step).json  # a double tap / a retry
    assert again == first
    count = dbsession.scalar(sa.select(sa.func.count(Answer.id)))
    assert count == 1
    assert dbsession.scalar(sa.select(sa.func.count(ItemResponse.id))) == 1


def test_a_different_answer_at_an_answered_position_is_409(testapp, demo, dbsession):
    token, step = start(testapp)
    answer(testapp, token, step, choice=1)
    res = answer(testapp, token, step, choice=2, status=409)
    assert res.json["error"] == "conflict"
    stored = dbsession.scalar(sa.select(Answer.choice))
    assert stored == 1  # the first answer is kept


def test_answer_for_a_future_position_is_409(testapp, demo):
    token, step = start(testapp)
    item = dict(step["item"], position=5)
    res = testapp.post_json(f"/api/v1/sessions/{token}/answers",
                            {"position": 5, "version": item["version"], "choice": 1},
                            status=409)
    assert res.json["error"] == "out_of_order"


def test_resume_in_a_new_browser_gives_the_same_point(testapp, demo, wsgi_app):
    import webtest

    token, step = start(testapp)
    for _ in range(3):
        step = answer(testapp, token, step).json
    other = webtest.TestApp(wsgi_app)  # no cookies: another phone, a closed tab
    resumed = other.get(f"/api/v1/sessions/{token}").json
    assert resumed == step
    page = other.get(f"/t/{token}")
    assert step["item"]["stem"] in page.text


def test_idle_session_expires_and_keeps_its_answers(testapp, demo, dbsession):
    token, step = start(testapp)
    answer(testapp, token, step)
    session = dbsession.scalar(sa.select(TestSession))
    session.last_activity_at = session.last_activity_at - dt.timedelta(hours=3)
    dbsession.commit()
    res = testapp.get(f"/api/v1/sessions/{token}")
    assert res.json["status"] == "expired"
    assert dbsession.scalar(sa.select(sa.func.count(Answer.id))) == 1
    page = testapp.get(f"/t/{token}")
    assert "1" in page.text
    answer(testapp, token, step, choice=3, status=409)


def test_pilot_items_never_change_the_score(testapp, demo, dbsession):
    token, step = start(testapp)
    while step["status"] == "testing":
        step = answer(testapp, token, step, choice=2).json
    answers = dbsession.scalars(sa.select(Answer).order_by(Answer.position)).all()
    pilots = [a for a in answers if a.is_pilot]
    assert [a.position for a in pilots] == [5, 12]  # the demo blueprint's pilot positions
    for pilot in pilots:
        before = answers[pilot.position - 2]
        assert (pilot.theta_after, pilot.se_after) == (before.theta_after, before.se_after)
    scored = dbsession.scalars(sa.select(ItemResponse.scored)).all()
    assert scored.count(False) == 2
    result = testapp.get(f"/api/v1/sessions/{token}/result").json
    assert 15 <= result["answered"] - 2 <= 25
    assert result["level"].startswith("L") and result["margin"] > 0


def test_two_tabs_cannot_corrupt_a_session(wsgi_app, demo, dbsession):
    """Two clients post different answers to the same position at once: one wins."""
    import webtest

    first = webtest.TestApp(wsgi_app)
    token, step = start(first)
    results = []

    def post(choice):
        client = webtest.TestApp(wsgi_app)
        try:
            results.append(answer(client, token, step, choice=choice, status="*").status_int)
        except Exception as exc:  # an exception escaping the app is a failure too
            results.append(repr(exc))

    threads = [threading.Thread(target=post, args=(c,)) for c in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and results.count(200) == 1, results
    assert all(s in (200, 409) for s in results), results
    dbsession.expire_all()
    assert dbsession.scalar(sa.select(sa.func.count(Answer.id))) == 1
    session = dbsession.scalar(sa.select(TestSession))
    assert session.n_answered == 1 and len(session.engine_state["items"]) == 1


def test_unknown_token_is_404(testapp, demo):
    assert testapp.get("/api/v1/sessions/" + "x" * 32, status=404).json["error"] == \
        "unknown_session"
    assert "链接无效" in testapp.get("/t/" + "x" * 32, status=404).text


def test_tokens_are_long_and_only_hashes_are_stored(testapp, demo, dbsession):
    token, _ = start(testapp)
    assert len(token) >= 32
    stored = dbsession.scalar(sa.select(TestSession.token_hash))
    assert stored == services.hash_token(token) and token not in stored


def test_staff_look_up_is_scoped_to_the_district(testapp, demo, staff, login, dbsession):
    """Scoped by the campaign's district (issue 16: never by the answered one)."""
    _token_a, session_a = services.start_session(dbsession, "LLA", consent=True,
                                                 campaign="CA", district="A",
                                                 background={"district": "A"})
    token_b, session_b = services.start_session(dbsession, "LLA", consent=True, campaign="CB",
                                                district="B", background={"district": "B"})
    id_a, id_b = session_a.id, session_b.id
    dbsession.commit()
    login("district_a", status=303)
    listing = testapp.get("/staff/sessions")
    assert f"/staff/sessions/{id_a}" in listing.text
    assert f"/staff/sessions/{id_b}" not in listing.text
    testapp.get(f"/staff/sessions/{id_b}", status=404)
    testapp.get(f"/staff/sessions/{id_a}", status=200)
    testapp.reset()
    login("researcher", status=303)
    assert str(id_b) in testapp.get(f"/staff/sessions?q={token_b}").text
    testapp.reset()
    login("monitor", status=303)  # group results only: no person-level sessions
    testapp.get("/staff/sessions", status=403)
    testapp.get(f"/staff/sessions/{id_a}", status=403)
    assert "/staff/sessions" not in testapp.get("/staff/").text


def test_anonymous_cannot_look_sessions_up(testapp, demo):
    assert "/login" in testapp.get("/staff/sessions", status=302).location


def test_item_page_is_light_and_works_without_javascript(testapp, demo):
    """An item page with its stylesheet and script stays under 30 KB; the form is plain HTML."""
    import re

    token, _ = start(testapp)
    page = testapp.get(f"/t/{token}")
    total = len(page.body)
    for path in re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text):
        total += len(testapp.get(path).body)
    assert total < 30 * 1024, total
    form = page.forms["item-form"]
    assert form.method.lower() == "post" and form.action.endswith("/answer")
    form["choice"] = "1"
    assert form.submit(status=303).follow().status_int == 200


def test_group_prior_start_rule(testapp, demo, dbsession):
    """A blueprint may start each resident at their group's prior (here: by age band)."""
    from itembank.models import Instrument

    instrument = dbsession.scalar(sa.select(Instrument).where(Instrument.code == "LLA"))
    instrument.blueprint = {**instrument.blueprint, "start": {
        "mean": 0.0, "sd": 1.0, "group_field": "age_band",
        "groups": {"70+": {"mean": -0.8, "sd": 0.9}}}}
    dbsession.commit()
    _, older = start(testapp, {"age_band": "70+"})
    _, younger = start(testapp, {"age_band": "18-29"})
    states = {s.background["age_band"]: s.engine_state
              for s in dbsession.scalars(sa.select(TestSession))}
    assert states["70+"]["prior"] == [-0.8, 0.9]
    assert states["18-29"]["prior"] == [0.0, 1.0]
    assert states["70+"]["theta"] == -0.8 and states["18-29"]["theta"] == 0.0
    assert older["status"] == younger["status"] == "testing"


def test_page_post_without_a_choice_asks_again_and_stores_nothing(testapp, demo, dbsession):
    token, _ = start(testapp)
    form = testapp.get(f"/t/{token}").forms["item-form"]
    res = testapp.post(f"/t/{token}/answer", {k: v for k, v in form.submit_fields()
                                              if k != "choice"}, status=400)
    assert "请选择一个答案" in res.text
    assert dbsession.scalar(sa.select(sa.func.count(Answer.id))) == 0


def test_the_remaining_count_never_goes_up(testapp, demo):
    """"About N left" falls or stays the same from item to item, whatever the answers."""
    for pattern in ((1, 2, 3, 4), (2, 2, 1, 1, 1, 3), (1,)):
        token, step = start(testapp)
        shown = []
        while step["status"] == "testing" and len(shown) < 60:
            shown.append(step["estimated_remaining"])
            choice = pattern[len(shown) % len(pattern)]
            n_options = 4
            step = answer(testapp, token, step, choice=min(choice, n_options)).json
        assert step["status"] == "finished"
        assert len(shown) > 3
        assert all(b <= a for a, b in itertools.pairwise(shown)), shown
        assert min(shown) >= 1


def test_live_test_starts_from_the_published_calibrations_latent_distribution(
        testapp, demo, dbsession):
    """A published calibration with N(0.2, 0.75^2) (as a Rasch calibration writes it): a
    blueprint without a start prior starts residents there, and the running estimate after
    an answer is the EAP under that prior (scoring.estimation, checked against quadrature
    in tests/scoring), not under N(0, 1)."""
    import numpy as np

    from itembank.models import Instrument
    from itembank.services import calibration_info, import_calibration, publish
    from scoring import estimation

    instrument = dbsession.scalar(sa.select(Instrument).where(Instrument.code == "LLA"))
    live = calibration_info(dbsession, instrument.published_calibration_id)
    params = live.params.replace(latent_mean=0.2, latent_sd=0.75)
    calibration = import_calibration(dbsession, instrument, params, "latent", "tests")
    publish(dbsession, calibration, "tests")
    dbsession.commit()
    token, step = start(testapp)
    session = dbsession.scalar(sa.select(TestSession).order_by(TestSession.id.desc()))
    assert session.calibration_id == calibration.id
    assert session.engine_state["prior"] == [0.2, 0.75]
    assert (session.theta, session.se) == (0.2, 0.75)
    answer(testapp, token, step, choice=1)
    dbsession.expire_all()
    session = dbsession.get(TestSession, session.id)
    stored = calibration_info(dbsession, calibration.id)
    (j,) = [k for k, item in enumerate(stored.items)
            if item.current_version_id == step["item"]["version"]]
    score = int(dbsession.scalar(sa.select(Answer.score).where(
        Answer.session_id == session.id)))
    r = np.full((1, stored.params.n_items), np.nan)
    r[0, j] = score
    want = estimation.eap(stored.params, r)
    assert session.theta == pytest.approx(float(want.theta[0]), abs=1e-9)
    assert session.se == pytest.approx(float(want.se[0]), abs=1e-9)
    old = estimation.eap(stored.params, r, prior_mean=0.0, prior_sd=1.0)
    assert abs(float(old.se[0]) - session.se) > 0.05
