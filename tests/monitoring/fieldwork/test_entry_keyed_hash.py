"""Resident links keep working across the change to keyed code hashes.

A resident's test and survey links are derived from the code itself and the app secret
(``entry.derived_token``), not from the stored hash, so rehashing an invitation stored
with the old unsalted SHA-256 leaves the resident on the same session.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from assessment.models import TestSession
from monitoring.fieldwork import invitations as inv
from monitoring.fieldwork.models import Invitation
from tests.conftest import TEST_SECRET

from ..entry_support import ready_campaign


def test_a_resident_with_an_old_hash_code_resumes_the_same_session(
        testapp: Any, make_campaign: Any, monitoring_demo: Any) -> None:
    db = monitoring_demo
    campaign = make_campaign(survey_code=None)
    [(code, invitation)] = ready_campaign(db, campaign, {"S01": (10.0, [{"age_band": "60-69"}])})
    first = testapp.post_json("/api/v1/invitations/redeem",
                              {"code": code, "consent": True}).json
    token = first["test_session"]["token"]
    # as if issued before migration 0008: the unsalted SHA-256 is stored
    db.execute(sa.update(Invitation).where(Invitation.id == invitation.id)
               .values(code_hash=inv.legacy_hash_code(code)))
    db.commit()
    again = testapp.post_json("/api/v1/invitations/redeem", {"code": code}).json
    assert again["test_session"]["token"] == token  # the same link, the same session
    assert db.scalar(sa.select(sa.func.count(TestSession.id))) == 1
    db.expire_all()
    assert db.scalar(sa.select(Invitation.code_hash).where(Invitation.id == invitation.id)) \
        == inv.hash_code(TEST_SECRET, code)  # rehashed on that use
    testapp.get(f"/t/{token}", status=200)
