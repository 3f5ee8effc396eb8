"""Issue 16: ``learningcity retention purge`` de-identifies residents' data past
``assessment.retention_years``: idempotent, a dry run changes nothing and gives the same
counts, sessions inside the window are untouched, an unloadable purger is named and the
command fails; one audited event per run with the real actor. Both backends."""
from __future__ import annotations

import datetime as dt
from importlib.metadata import EntryPoint
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import assessment.retention
from assessment import services as tests
from assessment.models import Answer, TestSession
from learningcity import retention
from learningcity.models import AuditEvent
from surveys import retention as survey_retention
from surveys import services as survey_services
from surveys.models import SurveyAnswer, SurveyScaleScore, SurveySession
from tests.conftest import load_once, write_ini
from tests.surveys.test_services import full_answers, walk

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(days=3 * 365 + 30)      # past 3 years
RECENT = NOW - dt.timedelta(days=2 * 365)        # inside the window
BACKGROUND = {"age_band": "60-69", "sex": "female", "district": "D01", "street": "和平街",
              "occupation": "retired", "education": "junior"}


@pytest.fixture
def world(dbsession: Any) -> dict[str, Any]:
    """An old and a recent test session (campaign, background, answers) and an old and a
    recent finished survey session of the same kind."""
    from itembank import demo_content as bank_demo
    from learningcity import demo
    from surveys import demo_content

    load_once(dbsession, "surveys demo", lambda db: (
        demo.load(db), bank_demo.load(db), demo_content.load(db)))
    db = dbsession
    out: dict[str, Any] = {}
    for label, when in (("old", OLD), ("recent", RECENT)):
        token, session = tests.start_session(db, "LLA", consent=True, background=BACKGROUND,
                                             campaign="C1", invitation=f"I-{label}",
                                             district="D01")
        step = tests.current_step(db, session)
        for _ in range(3):
            step = tests.submit_answer(db, session, position=step.item["position"],
                                       version_id=step.item["version"], choice=1)
        db.flush()
        db.execute(sa.update(TestSession).where(TestSession.id == session.id).values(
            last_activity_at=when, finished_at=when))
        survey, survey_token = survey_services.start_survey_session(
            db, campaign="C1", invitation=f"I-{label}", district="D01",
            test_session_id=session.id)
        walk(db, survey, full_answers(trained=True))
        survey_services.finish(db, survey)
        db.flush()
        db.execute(sa.update(SurveySession).where(SurveySession.id == survey.id).values(
            updated_at=when, finished_at=when))
        out[label] = {"token": token, "id": session.id, "survey_token": survey_token,
                      "survey_id": survey.id}
    db.commit()
    return out


@pytest.fixture
def only_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    """The purgers of this engineer's packages (fieldwork's lands separately)."""
    monkeypatch.setattr(retention, "purgers", lambda: {
        "assessment": assessment.retention.purge, "surveys": survey_retention.purge})


def _state(db: Any) -> list[Any]:
    """Every row the purge may touch, for before/after comparisons."""
    db.expire_all()
    return [
        [tuple(r) for r in db.execute(sa.select(
            TestSession.id, TestSession.token_hash, TestSession.background,
            TestSession.campaign, TestSession.invitation, TestSession.district_code,
            TestSession.purged_at).order_by(TestSession.id))],
        [tuple(r) for r in db.execute(sa.select(Answer.id, Answer.choice).order_by(Answer.id))],
        [tuple(r) for r in db.execute(sa.select(
            SurveySession.id, SurveySession.token_hash, SurveySession.campaign,
            SurveySession.district, SurveySession.test_session_id).order_by(SurveySession.id))],
        [tuple(r) for r in db.execute(sa.select(SurveyAnswer.id, SurveyAnswer.name)
                                      .order_by(SurveyAnswer.id))],
    ]


def _purge(ini: str, *extra: str) -> Any:
    return CliRunner().invoke(retention.retention, [
        "purge", "--ini", ini, "--now", NOW.isoformat(), "--actor", "ops-alice", *extra])


def _counts(output: str) -> dict[str, int]:
    rows = [line.split("\t") for line in output.splitlines() if line.count("\t") == 2]
    return {f"{name}.{kind}": int(n) for name, kind, n in rows}


def test_purge_deidentifies_what_is_past_retention_and_only_that(
        world: dict, dbsession: Any, db_url: str, tmp_path: Any, only_ours: None) -> None:
    db = dbsession
    ini = write_ini(tmp_path, db_url)
    recent_before = _state(db)
    dry = _purge(ini, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "nothing changed" in dry.output
    assert _state(db) == recent_before  # a dry run changes nothing
    real = _purge(ini)
    assert real.exit_code == 0, real.output
    counts = _counts(real.output)
    assert counts == _counts(dry.output)  # the same counts as the dry run
    assert counts["assessment.test_sessions_deidentified"] == 1
    assert counts["assessment.test_answers_kept"] == 3
    assert counts["surveys.survey_sessions_deidentified"] == 1
    assert counts["surveys.survey_answers_deleted"] >= 8  # background and free text
    assert counts["surveys.survey_answers_kept"] > 10    # coded answers for calibration
    db.expire_all()
    old = db.get(TestSession, world["old"]["id"])
    assert old.background == {} and old.campaign is None and old.invitation is None
    assert old.district_code is None and old.purged_at is not None
    assert old.token_hash == f"purged:{old.id}"
    assert tests.find_session is not None
    with pytest.raises(tests.DeliveryError):  # the link no longer opens it
        tests.find_session(db, world["old"]["token"])
    assert db.scalar(sa.select(sa.func.count(Answer.id)).where(
        Answer.session_id == old.id)) == 3  # de-identified rows for calibration
    survey = db.get(SurveySession, world["old"]["survey_id"])
    assert survey.campaign is None and survey.district is None
    assert survey.test_session_id is None and survey.test_token_sealed is None
    names = set(db.scalars(sa.select(SurveyAnswer.name).where(
        SurveyAnswer.session_id == survey.id)))
    gone = {"age_band", "sex", "district", "street", "occupation", "occupation_other",
            "education", "suggestions"}
    assert not names & gone, sorted(names & gone)
    assert {"topics", "community_training"} <= names
    assert db.scalar(sa.select(sa.func.count(SurveyScaleScore.id)).where(
        SurveyScaleScore.session_id == survey.id)) > 0
    # inside the window: untouched
    recent = db.get(TestSession, world["recent"]["id"])
    assert recent.background == BACKGROUND and recent.campaign == "C1"
    assert recent.purged_at is None
    assert tests.find_session(db, world["recent"]["token"]).id == recent.id
    found = survey_services.find_survey_session(db, world["recent"]["survey_token"])
    assert found.district == "D01"
    db.rollback()  # the look-ups mark idle sessions expired: not this test's business
    # twice: idempotent, nothing found the second time
    after_first = _state(db)
    again = _purge(ini)
    assert again.exit_code == 0, again.output
    assert set(_counts(again.output).values()) == {0}
    assert _state(db) == after_first
    events = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "retention.purge")
                        .order_by(AuditEvent.id)).all()
    assert [(e.actor, e.detail["dry_run"]) for e in events] == [
        ("ops-alice", True), ("ops-alice", False), ("ops-alice", False)]
    assert events[1].detail["counts"]["assessment"]["test_sessions_deidentified"] == 1
    assert "和平街" not in str([e.detail for e in events])


def test_a_shorter_setting_reaches_the_recent_sessions_too(
        world: dict, dbsession: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = {"assessment.retention_years": "1", "assessment.retention_keep_answers": "no"}
    counts = assessment.retention.purge(dbsession, now=NOW, settings=settings, dry_run=False)
    assert counts["test_sessions_deidentified"] == 2
    assert counts["test_answers_deleted"] == 6 and counts["test_answers_kept"] == 0
    assert dbsession.scalar(sa.select(sa.func.count(Answer.id))) == 0
    # surveys read the same setting unless they have their own
    assert survey_retention.retention_years(settings) == 1
    assert survey_retention.retention_years({**settings, "surveys.retention_years": "5"}) == 5
    assert survey_retention.retention_years({}) == 3


def test_an_unloadable_purger_is_named_and_fails_the_command(
        world: dict, dbsession: Any, db_url: str, tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "entry_points", lambda group: [
        EntryPoint("assessment", "assessment.retention:purge", group),
        EntryPoint("ghost", "no_such_package.retention:purge", group)])
    found = retention.purgers()
    assert found["assessment"] is assessment.retention.purge
    result = _purge(write_ini(tmp_path, db_url))
    assert result.exit_code == 1
    assert "'ghost' could not be loaded" in result.output
    assert _counts(result.output) == {"assessment.test_sessions_deidentified": 1,
                                      "assessment.test_answers_kept": 3,
                                      "assessment.test_answers_deleted": 0}
    dbsession.expire_all()
    event = dbsession.scalar(sa.select(AuditEvent).where(AuditEvent.action ==
                                                         "retention.purge"))
    assert event.detail["unavailable"] == ["ghost"]


def test_a_failing_purger_rolls_everything_back(
        world: dict, dbsession: Any, db_url: str, tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(db: Any, **_kw: Any) -> dict[str, int]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(retention, "purgers", lambda: {
        "assessment": assessment.retention.purge, "zz_broken": broken})
    before = _state(dbsession)
    result = _purge(write_ini(tmp_path, db_url))
    assert result.exit_code == 1 and "zz_broken" in result.output
    assert "nothing was changed" in result.output
    assert _state(dbsession) == before
    assert dbsession.scalar(sa.select(sa.func.count(AuditEvent.id)).where(
        AuditEvent.action == "retention.purge")) == 0


def test_a_bad_now_is_refused(tmp_path: Any, db_url: str) -> None:
    result = CliRunner().invoke(retention.retention, [
        "purge", "--ini", write_ini(tmp_path, db_url), "--now", "yesterday"])
    assert result.exit_code == 2 and "--now" in result.output
