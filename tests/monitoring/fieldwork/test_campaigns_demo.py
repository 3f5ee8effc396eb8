"""The demo campaign: drawn, invited, window open, codes in var/demo_invitations.csv."""
from __future__ import annotations

import csv
import io

import sqlalchemy as sa

from monitoring.fieldwork import demo_content, window
from monitoring.fieldwork.invitations import find_invitation
from monitoring.fieldwork.models import Campaign, Invitation
from tests.conftest import TEST_SECRET


def test_demo_campaign_loads_once(dbsession, tmp_path, monkeypatch) -> None:
    from itembank import demo_content as bank_demo
    from learningcity import demo

    monkeypatch.setattr(demo_content, "demo_file", lambda db: tmp_path / "var" / "demo.csv")
    demo.load(dbsession)
    bank_demo.load(dbsession)
    demo_content.load(dbsession, secret=TEST_SECRET)
    demo_content.load(dbsession, secret=TEST_SECRET)  # idempotent
    dbsession.commit()
    found = dbsession.scalars(sa.select(Campaign)).all()
    assert len(found) == 1
    campaign = found[0]
    assert campaign.district_code == demo_content.DEMO_DISTRICT
    assert campaign.status == "ready" and campaign.seed == demo_content.DEMO_SEED
    assert campaign.test_instrument == "LLA" and campaign.survey_code == "learning_needs"
    assert window.accepting_responses(campaign)
    assert sum(s.allocated for s in campaign.strata) == demo_content.DEMO_N
    rows = list(csv.DictReader(io.StringIO(
        (tmp_path / "var" / "demo.csv").read_text(encoding="utf-8-sig"))))
    assert len(rows) == demo_content.DEMO_N
    assert dbsession.scalar(sa.select(sa.func.count(Invitation.id))) == demo_content.DEMO_N
    for row in rows[:3]:
        invitation = find_invitation(dbsession, row["code"], TEST_SECRET)
        assert invitation is not None and invitation.campaign_id == campaign.id
    assert demo_content.demo_codes_note(dbsession) == str(tmp_path / "var" / "demo.csv")
    # working codes: readable by the owner only
    assert (tmp_path / "var" / "demo.csv").stat().st_mode & 0o777 == 0o600
