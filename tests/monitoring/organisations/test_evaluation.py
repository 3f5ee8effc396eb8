"""An organisation's self-assessment through its link, the district review, the city's
confirmation, and the learning-community counts they feed (shares computed by hand)."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import sqlalchemy as sa
import webtest

from learningcity import audit
from learningcity.db import utcnow
from monitoring.organisations import review, selfassess
from monitoring.organisations.models import Evaluation, EvaluationEvidence
from monitoring.organisations.recognition import (
    learning_community_counts,
    learning_community_indicator,
    recognised,
)
from tests.monitoring.organisations.conftest import ACTOR, csrf

ALL_A = {"organisation": "A", "facilities": "A", "activities": "A", "participation": "A",
         "results": "A"}
PDF = b"%PDF-1.4\n% evidence\n"


def _issue(app: Any, organisation_id: int, year: int = 2025) -> str:
    page = app.get(f"/organisations/{organisation_id}")
    form = next(f for f in page.forms.values() if f.action.endswith("/invite"))
    form["year"] = str(year)
    res = form.submit()
    return re.search(r'href="https?://[^/"]+(/o/[^"]+)"', res.text).group(1)


def _self_form(page: Any) -> Any:
    return next(f for f in page.forms.values()
                if "/o/" in f.action and f.id != "evidence" and f.method.lower() == "post")


def _evaluation(db: Any, organisation: Any) -> Evaluation:
    db.rollback()
    return db.scalar(sa.select(Evaluation).where(
        Evaluation.organisation_id == organisation.id))


def test_self_assessment_review_and_confirmation_feed_the_counts(
        dbsession: Any, community_standard: Any, register_ab: Any, client: Any) -> None:
    district_a, district_b, monitor = client("district_a"), client("district_b"), \
        client("monitor")
    org = register_ab["A-C1"]
    link = _issue(district_a, org.id)

    # --- the organisation: no account, the link is the key
    organisation = client(None)
    page = organisation.get(link)
    assert "Self-assessment" in page.text or "自评" in page.text
    form = _self_form(page)
    form["level-organisation"] = "A"
    form["note-organisation"] = "有学习型社区建设领导小组"
    res = form.submit("action", value="save", status=303)
    assert _evaluation(dbsession, org).status == "draft"
    page = res.follow()
    assert _self_form(page)["level-organisation"].value == "A"
    evidence = page.forms["evidence"]
    evidence["criterion"] = "activities"
    evidence["file"] = webtest.Upload("活动记录.pdf", PDF)
    page = evidence.submit(status=303).follow()
    bad = page.forms["evidence"]
    bad["file"] = webtest.Upload("notes.txt", b"just text")
    assert bad.submit(status=400).html.find(role="alert") is not None
    form = _self_form(page)
    for code, level in ALL_A.items():
        form[f"level-{code}"] = level
    page = form.submit("action", value="submit", status=303).follow()
    assert _self_form_or_none(page) is None  # read-only once submitted
    evaluation = _evaluation(dbsession, org)
    assert evaluation.status == "submitted" and evaluation.self_levels == ALL_A
    assert [(e.criterion, e.filename, e.content) for e in evaluation.evidence] == [
        ("activities", "活动记录.pdf", PDF)]

    # submitted once: a second submission is refused and changes nothing
    again = organisation.post(link, {"csrf_token": csrf(organisation), "action": "submit",
                                     "revision": str(evaluation.revision),
                                     **{f"level-{c}": "D" for c in ALL_A}}, status=409)
    assert again.html.find(role="alert") is not None
    assert _evaluation(dbsession, org).self_levels == ALL_A

    # --- district B cannot see or review A's organisation
    b_url = f"/organisations/{org.id}/review/2025"
    district_b.get(b_url, status=404)
    district_b.post(b_url, {"csrf_token": csrf(district_b), "revision": "0"}, status=404)
    evidence_id = evaluation.evidence[0].id
    district_b.get(f"/organisations/{org.id}/evidence/{evidence_id}", status=404)

    # --- district A reviews: a differing level needs a comment
    got = district_a.get(f"/organisations/{org.id}/evidence/{evidence_id}")
    assert got.body == PDF and got.headers["X-Content-Type-Options"] == "nosniff"
    form = district_a.get(b_url).forms["review"]
    form["level-results"] = "B"
    refused = form.submit(status=400)
    assert refused.html.find(role="alert") is not None
    assert _evaluation(dbsession, org).status == "submitted"
    form = refused.forms["review"]
    form["comment-results"] = "成效材料只覆盖半年"
    form.submit(status=303)
    evaluation = _evaluation(dbsession, org)
    # 100 * (0.2 + 0.2 + 0.3 + 0.2 + 0.1 * 3/4) = 97.5 >= 75
    assert evaluation.score == pytest.approx(97.5) and evaluation.recognised is True
    assert recognised(dbsession, org.id, 2025) is None  # not confirmed yet
    assert learning_community_counts(dbsession, 2025) == {"A": (0, 3), "B": (0, 2)}

    # --- district staff do not confirm; the city office does
    page = district_a.get(b_url)
    assert page.html.find(id="confirm") is None
    district_a.post(f"/organisations/{org.id}/confirm/2025",
                    {"csrf_token": csrf(district_a), "revision": str(evaluation.revision)},
                    status=403)
    monitor.get(b_url).forms["confirm"].submit(status=303)
    assert recognised(dbsession, org.id, 2025) is True
    assert learning_community_counts(dbsession, 2025) == {"A": (1, 3), "B": (0, 2)}
    # the indicator source: B has no confirmed result yet (no data); none simulated
    assert learning_community_indicator(dbsession, 2025) == {"A": (1, 3, False)}
    assert audit.actions_for(dbsession, f"organisation:{org.code}") == {
        "organisation.add", "evaluation.invite", "evaluation.draft", "evaluation.evidence",
        "evaluation.submit", "evaluation.review", "evaluation.confirm"}


def _self_form_or_none(page: Any) -> Any:
    return next((f for f in page.forms.values()
                 if "/o/" in f.action and f.method.lower() == "post"), None)


def _through(db: Any, organisation: Any, levels: dict[str, str], reviewed: dict[str, str],
             *, confirm: bool) -> Evaluation:
    _token, evaluation = selfassess.invite(db, organisation, 2025, actor=ACTOR)
    selfassess.save(db, evaluation, levels, {}, revision=evaluation.revision, submit=True)
    comments = {c: "复核意见" for c in reviewed if reviewed[c] != levels.get(c)}
    review.review(db, evaluation, reviewed, comments, actor=ACTOR,
                  revision=evaluation.revision)
    if confirm:
        review.confirm(db, evaluation, actor="monitor", revision=evaluation.revision)
    db.commit()
    return evaluation


def test_counts_by_hand(dbsession: Any, community_standard: Any, register_ab: Any) -> None:
    """A: 3 communities; C1 recognised (97.5), C2 exactly at the threshold (75, every
    criterion B), C3 not evaluated; the school does not count. B: C1 reviewed at 50
    (every criterion C: not recognised), C2 recognised but not confirmed."""
    all_b = dict.fromkeys(ALL_A, "B")
    all_c = dict.fromkeys(ALL_A, "C")
    _through(dbsession, register_ab["A-C1"], ALL_A, {**ALL_A, "results": "B"}, confirm=True)
    second = _through(dbsession, register_ab["A-C2"], ALL_A, all_b, confirm=True)
    assert second.score == pytest.approx(75.0) and second.recognised is True
    third = _through(dbsession, register_ab["B-C1"], all_c, all_c, confirm=True)
    assert third.score == pytest.approx(50.0) and third.recognised is False
    _through(dbsession, register_ab["B-C2"], ALL_A, ALL_A, confirm=False)
    counts = learning_community_counts(dbsession, 2025)
    assert counts == {"A": (2, 3), "B": (0, 2)}
    assert counts["A"][0] / counts["A"][1] == pytest.approx(2 / 3)  # 66.7 % < 80 %
    assert learning_community_counts(dbsession, 2024) == {"A": (0, 3), "B": (0, 2)}
    # the indicator: no confirmed evaluation in 2024 is no data, not 0 %; in 2025 a
    # district counts from its first confirmed result (B's 0 of 2 is data)
    assert learning_community_indicator(dbsession, 2024) == {}
    assert learning_community_indicator(dbsession, 2025) == {"A": (2, 3, False),
                                                             "B": (0, 2, False)}
    # an organisation made inactive leaves both numbers
    register_ab["A-C3"].active = False
    dbsession.commit()
    assert learning_community_counts(dbsession, 2025)["A"] == (2, 2)


def test_link_expiry_replacement_and_one_submission(
        dbsession: Any, community_standard: Any, register_ab: Any, client: Any) -> None:
    org = register_ab["A-C2"]
    old, _evaluation_row = selfassess.invite(dbsession, org, 2025, actor=ACTOR)
    new, evaluation = selfassess.invite(dbsession, org, 2025, actor=ACTOR)
    dbsession.commit()
    app = client(None)
    app.get(f"/o/{old}", status=404)      # replaced by the newer link
    app.get(f"/o/{new}", status=200)
    app.get("/o/not-a-token-at-all", status=404)
    evaluation.token_expires_at = utcnow() - dt.timedelta(seconds=1)
    dbsession.commit()
    expired = app.get(f"/o/{new}", status=410)
    assert expired.html.find(role="alert") is not None
    app.post(f"/o/{new}", {"csrf_token": csrf(app), "action": "submit", "revision": "0"},
             status=410)
    with pytest.raises(selfassess.LinkRefused):
        selfassess.open_link(dbsession, new)
    # the service: one submission only, and no new link after it
    _t, evaluation = selfassess.invite(dbsession, org, 2025, actor=ACTOR)
    selfassess.save(dbsession, evaluation, ALL_A, {}, revision=evaluation.revision,
                    submit=True)
    with pytest.raises(selfassess.EvaluationError) as caught:
        selfassess.save(dbsession, evaluation, ALL_A, {}, revision=evaluation.revision,
                        submit=True)
    assert caught.value.status == 409
    with pytest.raises(selfassess.EvaluationError):
        selfassess.invite(dbsession, org, 2025, actor=ACTOR)
    assert audit.count_events(dbsession, "evaluation.submit") == 1


def test_submission_needs_every_level_and_evidence_is_limited(
        dbsession: Any, community_standard: Any, register_ab: Any) -> None:
    _token, evaluation = selfassess.invite(dbsession, register_ab["A-C1"], 2025, actor=ACTOR)
    with pytest.raises(selfassess.EvaluationError, match="criterion 2: choose a level"):
        selfassess.save(dbsession, evaluation, {"organisation": "A"}, {},
                        revision=evaluation.revision, submit=True)
    with pytest.raises(selfassess.EvaluationError, match="choose one of the levels"):
        selfassess.save(dbsession, evaluation, {"organisation": "Z"}, {},
                        revision=evaluation.revision)
    big = b"%PDF-" + b"0" * selfassess.EVIDENCE_BYTES
    with pytest.raises(selfassess.EvaluationError, match="larger than 5 MB"):
        selfassess.attach_evidence(dbsession, evaluation,
                                   [selfassess.Evidence("results", "big.pdf", big)],
                                   revision=evaluation.revision)
    with pytest.raises(selfassess.EvaluationError, match="only PDF, PNG or JPEG"):
        selfassess.attach_evidence(dbsession, evaluation, [selfassess.Evidence(
            "results", "x.pdf", b"<html>not a pdf</html>")], revision=evaluation.revision)
    assert dbsession.scalar(sa.select(sa.func.count(EvaluationEvidence.id))) == 0
    assert evaluation.status == "invited"


def test_no_link_without_a_standard(dbsession: Any, register_ab: Any) -> None:
    with pytest.raises(selfassess.EvaluationError, match="no evaluation standard"):
        selfassess.invite(dbsession, register_ab["A-S1"], 2025, actor=ACTOR)


def test_two_windows_saving_at_once_get_409_not_an_error(
        dbsession: Any, community_standard: Any, register_ab: Any, wsgi_app: Any) -> None:
    """Both windows read revision r; the first save wins, the second is refused (409)
    by the optimistic lock even though its own revision check passed."""
    token, _row = selfassess.invite(dbsession, register_ab["A-C1"], 2025, actor=ACTOR)
    dbsession.commit()
    other = wsgi_app.registry.dbsession_factory()
    try:
        mine = selfassess.open_link(dbsession, token)
        theirs = selfassess.open_link(other, token)
        selfassess.save(other, theirs, {"organisation": "A"}, {}, revision=theirs.revision)
        other.commit()
        with pytest.raises(selfassess.EvaluationError) as caught:
            selfassess.save(dbsession, mine, {"organisation": "D"}, {},
                            revision=mine.revision)
        assert caught.value.status == 409
    finally:
        other.close()
    dbsession.rollback()
    assert _evaluation(dbsession, register_ab["A-C1"]).self_levels == {"organisation": "A"}


def test_returned_for_changes_then_resubmitted_and_reviewed(
        dbsession: Any, community_standard: Any, register_ab: Any, client: Any) -> None:
    """The district sends a submitted self-assessment back with a comment; the link
    shows the comment and opens the answers again (a draft stays "returned"); the
    organisation submits again and the district reviews it. Another district cannot
    return it, a return needs a comment, and a confirmed result cannot be returned."""
    district_a, district_b, monitor = client("district_a"), client("district_b"), \
        client("monitor")
    org = register_ab["A-C1"]
    link = _issue(district_a, org.id)
    organisation = client(None)
    form = _self_form(organisation.get(link))
    for code, level in ALL_A.items():
        form[f"level-{code}"] = level
    form.submit("action", value="submit", status=303)
    evaluation = _evaluation(dbsession, org)
    assert evaluation.status == "submitted"
    url = f"/organisations/{org.id}/return/2025"

    district_b.post(url, {"csrf_token": csrf(district_b), "comment": "x",
                          "revision": str(evaluation.revision)}, status=404)
    page = district_a.get(f"/organisations/{org.id}/review/2025")
    empty = page.forms["return"]
    empty["comment"] = "   "
    assert empty.submit(status=400).html.find(role="alert") is not None
    assert _evaluation(dbsession, org).status == "submitted"
    back = page.forms["return"]
    back["comment"] = "请补充活动照片，并说明参与人数"
    shown = back.submit(status=303).follow()
    assert "请补充活动照片" in shown.text and shown.html.find(id="returned") is not None
    evaluation = _evaluation(dbsession, org)
    assert (evaluation.status, evaluation.return_comment, evaluation.returned_by) == (
        "returned", "请补充活动照片，并说明参与人数", "district_a")
    assert "evaluation.return" in audit.actions_for(dbsession, f"organisation:{org.code}")

    # --- the organisation sees the comment, changes its answers, submits again
    page = organisation.get(link)
    assert "请补充活动照片" in page.html.find(id="returned").text
    form = _self_form(page)
    form["level-results"] = "B"
    form.submit("action", value="save", status=303)
    assert _evaluation(dbsession, org).status == "returned"  # still with the organisation
    form = _self_form(organisation.get(link))
    form["note-participation"] = "参与 120 人次"
    form.submit("action", value="submit", status=303)
    evaluation = _evaluation(dbsession, org)
    assert evaluation.status == "submitted"
    assert evaluation.self_levels == {**ALL_A, "results": "B"}
    assert evaluation.self_notes["participation"] == "参与 120 人次"

    # --- reviewed, then returned again: the review is cleared; confirmed: final
    review.review(dbsession, evaluation, evaluation.self_levels, {}, actor="district_a",
                  revision=evaluation.revision)
    assert evaluation.score is not None
    review.return_for_changes(dbsession, evaluation, "再核对一次", actor="district_a",
                              revision=evaluation.revision)
    assert (evaluation.status, evaluation.score, evaluation.recognised,
            evaluation.review_levels) == ("returned", None, None, {})
    selfassess.save(dbsession, evaluation, evaluation.self_levels, {},
                    revision=evaluation.revision, submit=True)
    review.review(dbsession, evaluation, evaluation.self_levels, {}, actor="district_a",
                  revision=evaluation.revision)
    dbsession.commit()
    monitor.get(f"/organisations/{org.id}/review/2025").forms["confirm"].submit(status=303)
    evaluation = _evaluation(dbsession, org)
    refused = district_a.post(url, {"csrf_token": csrf(district_a), "comment": "晚了",
                                    "revision": str(evaluation.revision)}, status=409)
    assert refused.html.find(role="alert") is not None
    assert district_a.get(f"/organisations/{org.id}/review/2025").html.find(id="return") \
        is None
    assert _evaluation(dbsession, org).status == "confirmed"
