"""The contract other packages read of survey sessions and responses: plain frozen values
from a few functions (surveys/README.md, "Contract"), never ORM objects."""
from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from surveys import services
from surveys.definition import DEFAULTS_DIR, Survey

from .test_services import full_answers, walk


def finished(db, *, campaign, invitation, token, district="A"):
    """A campaign session answered to the end."""
    info = services.start_campaign_session(db, services.DEFAULT_SURVEY, token=token,
                                           campaign=campaign, invitation=invitation,
                                           district=district)
    session = services.find_survey_session(db, token)
    walk(db, session, full_answers(trained=True))
    services.finish(db, session)
    return info


class Queries:
    """Counts the SQL statements a block sends."""

    def __init__(self, db):
        self.engine = db.get_bind()
        self.count = 0

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, *args):
        self.count += 1


def test_session_by_token_gives_plain_data(surveys_demo):
    db = surveys_demo
    assert services.session_by_token(db, "no-such-token-" + "x" * 20) is None
    info = services.start_campaign_session(
        db, "learning_needs", token="t" * 32, campaign="C1", invitation="inv-1",
        locale="en", prefill={"age_band": "60-69", "district": "D02", "bogus": 1},
        district="A")
    found = services.session_by_token(db, "t" * 32)
    assert found == info
    assert dataclasses.is_dataclass(found) and not hasattr(found, "_sa_instance_state")
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.status = "finished"  # type: ignore[misc]
    assert (found.survey_code, found.status, found.locale) == ("learning_needs", "started",
                                                               "en")
    assert (found.campaign, found.invitation, found.district) == ("C1", "inv-1", "A")
    assert found.definition_id == services.published_survey(db).id
    assert found.created_at is not None and found.finished_at is None
    assert not found.finished
    session = services.find_survey_session(db, "t" * 32)
    assert session.answer_dict() == {"age_band": "60-69", "district": "D02"}  # prefill


def test_finished_invitations(surveys_demo):
    db = surveys_demo
    finished(db, campaign="C1", invitation="A", token="a" * 32)
    finished(db, campaign="C2", invitation="X", token="x" * 32)   # another campaign
    services.start_campaign_session(db, "learning_needs", token="b" * 32, campaign="C1",
                                    invitation="B")              # started, not finished
    assert services.finished_invitations(db, "C1") == {"A"}
    assert services.finished_invitations(db, "C1", ["A"]) == {"A"}
    assert services.finished_invitations(db, "C1", ["B"]) == set()
    assert services.finished_invitations(db, "C1", ["A", "B", "Z"]) == {"A"}
    assert services.finished_invitations(db, "C1", []) == set()
    assert services.finished_invitations(db, "C9") == set()
    assert services.session_by_token(db, "a" * 32).finished


def test_published_codes_and_is_published(surveys_demo):
    db = surveys_demo
    assert services.is_published(db, "learning_needs")
    assert not services.is_published(db, "no_such_survey")
    doc = (DEFAULTS_DIR / "learning_needs.json").read_text(encoding="utf-8")
    other = doc.replace('"id": "learning_needs"', '"id": "other_needs"', 1)
    assert other != doc
    services.import_survey(db, other.encode(), "tester", name="other.json")
    assert services.published_codes(db) == ["learning_needs"]  # imported, not published
    assert not services.is_published(db, "other_needs")
    services.import_survey(db, other.encode(), "tester", name="other.json", publish=True)
    assert services.published_codes(db) == ["learning_needs", "other_needs"]
    assert services.is_published(db, "other_needs")


def test_one_definition_query_per_campaign(surveys_demo):
    """Responses name their definition; their surveys come in one query, not one each."""
    db = surveys_demo
    for k in range(5):
        finished(db, campaign="C1", invitation=f"inv-{k}", token=f"{k}" * 32)
    db.commit()
    responses = services.campaign_responses(db, "C1")
    assert [r["invitation"] for r in responses] == [f"inv-{k}" for k in range(5)]
    definition = services.published_survey(db)
    assert {(r["survey_code"], r["version"], r["definition_id"]) for r in responses} == {
        ("learning_needs", definition.version, definition.id)}
    db.expire_all()
    with Queries(db) as queries:
        surveys = services.response_surveys(db, responses)
    assert queries.count == 1
    assert list(surveys) == [("learning_needs", definition.version)]
    survey = surveys[("learning_needs", definition.version)]
    assert isinstance(survey, Survey)
    assert survey == services.definition_survey(definition)
    assert services.campaign_surveys(db, "C1") == surveys
    assert services.campaign_surveys(db, "C9") == {}
    assert services.response_surveys(db, []) == {}


def test_campaign_responses_read_definitions_once(surveys_demo):
    db = surveys_demo
    for k in range(4):
        finished(db, campaign="C1", invitation=f"inv-{k}", token=f"{k}" * 32)
    db.commit()
    db.expire_all()
    with Queries(db) as few:
        services.campaign_responses(db, "C1")
    for k in range(4, 12):
        finished(db, campaign="C1", invitation=f"inv-{k}", token=chr(ord("a") + k) * 32)
    db.commit()
    db.expire_all()
    with Queries(db) as many:
        responses = services.campaign_responses(db, "C1")
    assert len(responses) == 12 and many.count == few.count  # not one query per respondent


def test_start_session_after_test_gives_plain_data(surveys_demo):
    from assessment import services as test_services

    db = surveys_demo
    test_token, test = test_services.start_session(
        db, "LLA", consent=True, campaign="C3", invitation="inv-3",
        background={"age_band": "45-59", "sex": "female", "district": "D04"})
    info, token, created = services.start_session_after_test(db, test_token, "s" * 40)
    assert created and info == services.session_by_token(db, token)
    assert (info.campaign, info.invitation, info.test_session_id) == ("C3", "inv-3", test.id)
    again, token_again, created_again = services.start_session_after_test(
        db, test_token, "s" * 40)
    assert (again.id, token_again, created_again) == (info.id, token, False)
