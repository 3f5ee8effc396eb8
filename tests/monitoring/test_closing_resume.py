"""The two-database close is resumable.

Finding: closing commits the main database before the monitoring one, so a dropped
monitoring connection left a closed campaign without aggregates, and closing again said
"already closed". Here the monitoring database is a separate one whose commit fails
once, as the command line and pyramid_tm commit them (main first); closing again then
computes the missing aggregates, and only after that is a further close refused.
"""
from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from learningcity import db as dbmod
from monitoring import closing
from monitoring.fieldwork.campaigns import CampaignError
from monitoring.fieldwork.models import Campaign
from monitoring.results.warehouse import Aggregate, MonitoringRun, has_aggregates

from .conftest import ACTOR
from .fieldwork.test_campaigns import _completes


@pytest.fixture
def monitoring_engine(tmp_path) -> Any:
    """A monitoring database of its own (SQLite file), migrated."""
    from alembic import command

    url = f"sqlite:///{tmp_path / 'monitoring.sqlite'}"
    command.upgrade(dbmod.alembic_config("monitoring", url), "heads")
    engine = dbmod.make_engine(url)
    yield engine
    engine.dispose()


def _fail_commit_once(session: Any) -> list[int]:
    failures: list[int] = []

    @event.listens_for(session, "before_commit")
    def drop(_session: Any) -> None:
        if not failures:
            failures.append(1)
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    return failures


def test_a_lost_monitoring_commit_is_completed_by_closing_again(
        make_campaign, monitoring_demo, monitoring_engine) -> None:
    db = monitoring_demo
    campaign = make_campaign(survey_code=None)
    _completes(db, campaign)
    factory = dbmod.session_factory(monitoring_engine)

    mdb = factory()
    failures = _fail_commit_once(mdb)
    outcome = closing.close_campaign(db, campaign, ACTOR, mdb)
    assert outcome.steps["aggregates"] == "ok"  # written, but not yet committed
    db.commit()  # the main database first
    with pytest.raises(OperationalError):
        mdb.commit()  # the monitoring connection drops
    mdb.rollback()
    mdb.close()
    assert failures == [1]
    check = factory()
    assert not has_aggregates(check, campaign.code)  # closed without aggregates
    db.expire_all()
    campaign = db.get(Campaign, campaign.id)
    assert campaign.status == "closed"
    assert closing.aggregates_pending(db, check, campaign)
    check.close()

    # closing again is not "already closed": it computes the missing aggregates
    mdb = factory()
    again = closing.close_campaign(db, campaign, ACTOR, mdb)
    assert again.steps == {"weights": "ok", "aggregates": "ok"}, again.steps
    assert again.step("weights").messages == [closing.WEIGHTS_KEPT]
    db.commit()
    mdb.commit()
    mdb.close()
    check = factory()
    assert has_aggregates(check, campaign.code)
    assert check.scalar(sa.select(sa.func.count(Aggregate.id)).where(
        Aggregate.campaign == campaign.code)) > 0
    assert check.scalar(sa.select(MonitoringRun.n_respondents).where(
        MonitoringRun.campaign == campaign.code)) == 4
    assert not closing.aggregates_pending(db, check, campaign)
    # and now it is really done
    with pytest.raises(CampaignError, match="already closed"):
        closing.close_campaign(db, campaign, ACTOR, check)
    check.close()


def test_a_close_without_weights_is_not_pending(
        drawn_campaign, monitoring_demo, monitoring_engine) -> None:
    """Nothing to resume when the weights could not be computed (no completes)."""
    db = monitoring_demo
    campaign = drawn_campaign(n=3)
    mdb = dbmod.session_factory(monitoring_engine)()
    closing.close_campaign(db, campaign, ACTOR, mdb)
    db.commit()
    mdb.commit()
    assert not closing.aggregates_pending(db, mdb, campaign)
    with pytest.raises(CampaignError, match="already closed"):
        closing.close_campaign(db, campaign, ACTOR, mdb)
    mdb.close()


def test_the_close_page_offers_to_finish_a_pending_close(
        testapp, login, make_campaign, monitoring_demo, wsgi_app) -> None:
    """With the embedded default the monitoring tables are in the main database: deleting
    the campaign's run stands for the lost write; the close tab then offers to finish."""
    db = monitoring_demo
    campaign = make_campaign(survey_code=None)
    _completes(db, campaign)
    closing.close_campaign(db, campaign, ACTOR, db)
    db.commit()
    db.execute(sa.delete(Aggregate).where(Aggregate.campaign == campaign.code))
    db.execute(sa.delete(MonitoringRun).where(MonitoringRun.campaign == campaign.code))
    db.commit()
    login("district_a")
    page = testapp.get(f"/campaigns/{campaign.code}/close")
    form = next(f for f in page.forms.values()
                if "action" in f.fields and f["action"].value == "close")
    done = form.submit()
    assert done.status_int == 200 and "调查已结束。" in done.text
    db.expire_all()
    assert has_aggregates(db, campaign.code)
    again = testapp.get(f"/campaigns/{campaign.code}/close")
    assert not any("action" in f.fields and f["action"].value == "close"
                   for f in again.forms.values())
