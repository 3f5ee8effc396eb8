"""The assessment contract (assessment/README.md, "Contract"): plain frozen records of test
sessions, the look-ups monitoring and surveys need, and the one token module."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac

import pytest
import sqlalchemy as sa

from assessment import services, sessions
from assessment.models import Answer, TestSession
from learningcity import tokens
from monitoring.fieldwork.entry import derived_token
from monitoring.fieldwork.invitations import normalise_code
from surveys.services import after_test_token
from surveys.services import hash_token as surveys_hash_token

SECRET = "contract-test-secret-" + "x" * 20
FULL = {"age_band": "70+", "district": "D01", "occupation": "retired", "education": "junior"}


def _frozen(value) -> bool:
    return dataclasses.is_dataclass(value) and type(value).__dataclass_params__.frozen


def _take_test(db, token: str, choice: int = 1) -> None:
    """Answer a started session until it finishes (through the delivery service)."""
    session = services.find_session(db, token, for_update=True)
    step = services.current_step(db, session)
    while step.status == "testing":
        item = step.item
        step = services.submit_answer(db, session, position=item["position"],
                                      version_id=item["version"], choice=choice)
    db.commit()


def _campaign_session(db, code: str, invitation: str, campaign: str = "C1",
                      prefill=None) -> str:
    token = tokens.derive_token(SECRET, "invitation-test", code)
    services.start_campaign_session(db, "LLA", token=token, campaign=campaign,
                                    invitation=invitation, prefill=prefill or FULL)
    db.commit()
    return token


# --- tokens ----------------------------------------------------------------------------

def test_hash_token_is_the_stored_sha256():
    assert tokens.hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
    assert tokens.hash_token("链接") == hashlib.sha256("链接".encode()).hexdigest()
    assert services.hash_token is tokens.hash_token
    assert surveys_hash_token("some-token") == tokens.hash_token("some-token")


def test_new_tokens_are_long_random_and_url_safe():
    made = {tokens.new_token() for _ in range(50)}
    assert len(made) == 50
    for token in made:
        assert len(token) >= 32
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                 "0123456789-_")


def test_derive_token_is_hmac_sha256_url_safe_without_padding():
    token = tokens.derive_token(SECRET, "invitation-test", "ABC123")
    assert len(token) == 43 and "=" not in token
    expected = hmac.new(SECRET.encode(), b"invitation-test:ABC123", hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(token + "=") == expected
    assert token == tokens.derive_token(SECRET, "invitation-test", "ABC123")
    assert token != tokens.derive_token(SECRET + "y", "invitation-test", "ABC123")
    assert token != tokens.derive_token(SECRET, "invitation-survey", "ABC123")
    with pytest.raises(ValueError):
        tokens.derive_token("", "invitation-test", "ABC123")
    with pytest.raises(ValueError):
        tokens.derive_token(SECRET)


def test_derive_token_gives_the_tokens_derived_today():
    """Same tokens as the invitation entry and the survey-after-test link derive."""
    test_token = tokens.new_token()
    assert tokens.derive_token(SECRET, "survey-after-test", test_token) == \
        after_test_token(SECRET, test_token)
    for code in ("ab-cd 12", "K7QX-94MZ"):
        for purpose in ("test", "survey"):
            assert tokens.derive_token(SECRET, f"invitation-{purpose}", normalise_code(code)) \
                == derived_token(SECRET, code, purpose)


# --- sessions ----------------------------------------------------------------------------

def test_session_by_token_is_a_plain_record_of_the_row(testapp, demo, dbsession):
    res = testapp.post_json("/api/v1/sessions", {"consent": True, "background": FULL},
                            status=201)
    token = res.json["token"]
    info = sessions.session_by_token(dbsession, token)
    row = dbsession.scalar(sa.select(TestSession))
    assert _frozen(info) and not isinstance(info, TestSession)
    assert (info.id, info.instrument_id, info.calibration_id, info.status, info.locale) == \
        (row.id, row.instrument_id, row.calibration_id, "testing", "zh_CN")
    assert info.background == FULL and info.answered == 0 and not info.finished
    assert (info.campaign, info.invitation, info.score, info.level) == (None, None, None, None)
    assert info.started_at is not None and info.finished_at is None
    assert sessions.session_by_token(dbsession, "x" * 32) is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.status = "finished"


def test_a_finished_session_carries_its_score(demo, dbsession):
    token = _campaign_session(dbsession, "CODE1", "inv-1")
    _take_test(dbsession, token)
    info = sessions.session_by_token(dbsession, token)
    row = dbsession.scalar(sa.select(TestSession))
    assert info.finished and info.finished_at is not None
    assert (info.score, info.score_se, info.level, info.theta, info.se, info.answered) == \
        (row.score, row.score_se, row.level, row.theta, row.se, row.n_answered)
    assert info.level.startswith("L") and info.score is not None


def test_start_session_takes_the_callers_token(demo, dbsession):
    token = tokens.derive_token(SECRET, "invitation-test", "CODE9")
    returned, session = services.start_session(dbsession, "LLA", consent=True, token=token)
    assert returned == token
    assert session.token_hash == tokens.hash_token(token)
    dbsession.commit()
    assert sessions.session_by_token(dbsession, token).id == session.id


def test_start_campaign_session_begins_when_the_prefill_answers_everything(demo, dbsession):
    token = tokens.derive_token(SECRET, "invitation-test", "CODE2")
    info = services.start_campaign_session(dbsession, "LLA", token=token, campaign="C1",
                                           invitation="inv-2", prefill={**FULL, "x": "y"})
    assert _frozen(info) and info.status == "testing" and info.background == FULL
    assert (info.campaign, info.invitation) == ("C1", "inv-2")
    assert sessions.session_by_token(dbsession, token) == info


def test_start_campaign_session_asks_first_when_the_prefill_is_short(demo, dbsession):
    token = tokens.derive_token(SECRET, "invitation-test", "CODE3")
    info = services.start_campaign_session(dbsession, "LLA", token=token, campaign="C1",
                                           invitation="inv-3", prefill={"age_band": "70+"})
    assert info.status == "background" and info.background == {"age_band": "70+"}
    dbsession.commit()
    assert sessions.session_by_token(dbsession, token).status == "background"


def test_finished_sessions_and_invitations_by_campaign(demo, dbsession):
    first = _campaign_session(dbsession, "A1", "inv-a")
    _take_test(dbsession, first, choice=1)
    again = _campaign_session(dbsession, "A2", "inv-a")  # the same invitation once more
    _take_test(dbsession, again, choice=2)
    done = _campaign_session(dbsession, "B1", "inv-b")
    _take_test(dbsession, done)
    _campaign_session(dbsession, "C1", "inv-c")  # started, not finished
    elsewhere = _campaign_session(dbsession, "D1", "inv-d", campaign="C2")
    _take_test(dbsession, elsewhere)

    found = sessions.finished_sessions(dbsession, "C1")
    assert set(found) == {"inv-a", "inv-b"}
    assert all(_frozen(s) and s.finished and s.campaign == "C1" for s in found.values())
    assert found["inv-a"].id == sessions.session_by_token(dbsession, again).id  # the latest
    assert set(sessions.finished_sessions(dbsession, "C1", ["inv-b"])) == {"inv-b"}
    assert set(sessions.finished_sessions(dbsession, "C1", ["inv-a", "inv-c", "x"])) == \
        {"inv-a"}
    assert sessions.finished_sessions(dbsession, "C1", []) == {}

    assert sessions.finished_invitations(dbsession, "C1") == {"inv-a", "inv-b"}
    assert sessions.finished_invitations(dbsession, "C1", ["inv-c"]) == set()
    assert sessions.finished_invitations(dbsession, "C1", ["inv-b", "inv-c"]) == {"inv-b"}
    assert sessions.finished_invitations(dbsession, "C2") == {"inv-d"}
    assert sessions.finished_invitations(dbsession, "nope") == set()


def test_finished_answers_are_the_scored_answers_of_the_latest_session(demo, dbsession):
    first = _campaign_session(dbsession, "A1", "inv-a")
    _take_test(dbsession, first, choice=1)
    latest = _campaign_session(dbsession, "A2", "inv-a")
    _take_test(dbsession, latest, choice=2)
    other = _campaign_session(dbsession, "B1", "inv-b")
    _take_test(dbsession, other, choice=3)

    answers = sessions.finished_answers(dbsession, "C1")
    assert set(answers) == {"inv-a", "inv-b"}
    for pid, token in (("inv-a", latest), ("inv-b", other)):
        info = sessions.session_by_token(dbsession, token)
        rows = dbsession.scalars(sa.select(Answer).where(Answer.session_id == info.id)
                                 .order_by(Answer.position)).all()
        scored = [a for a in rows if not a.is_pilot]
        got = answers[pid]
        assert _frozen(got)
        assert (got.session_id, got.calibration_id) == (info.id, info.calibration_id)
        assert got.version_ids == tuple(a.item_version_id for a in scored)
        assert got.scores == tuple(a.score for a in scored)
        assert len(scored) < len(rows)  # the demo blueprint's two pilot items are left out
    assert sessions.finished_answers(dbsession, "C1", ["inv-b"]) == {"inv-b": answers["inv-b"]}
    assert sessions.finished_answers(dbsession, "C1", ["x"]) == {}
