"""Simultaneous staff posts: invitations issued exactly once, campaign codes without a race.

Each request is a thread with its own session (its own connection and transaction), all
released together by a barrier, as gunicorn's workers would run them; on both backends.
Before the partial unique index and ``ON CONFLICT DO NOTHING``, 6 issue posts gave 60
live codes for 30 sampled units, and 4 new-campaign posts two IntegrityErrors.
"""
from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from monitoring.fieldwork import invitations as inv
from monitoring.fieldwork.campaigns import create_campaign
from monitoring.fieldwork.models import Campaign, FrameUnit, Invitation
from monitoring.fieldwork.window import local_input
from tests.conftest import TEST_SECRET

from ..conftest import ACTOR


def _together(wsgi_app: Any, n: int, work: Any) -> tuple[list[Any], list[BaseException]]:
    """Run ``work(session)`` in ``n`` threads at once, each committing its own session."""
    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        session = wsgi_app.registry.dbsession_factory()
        try:
            barrier.wait(timeout=30)
            value = work(session)
            session.commit()
            with lock:
                results.append(value)
        except BaseException as exc:  # collected: the test names it
            session.rollback()
            with lock:
                errors.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, errors


def _live_slots(db: Any, campaign_id: int) -> Counter:
    return Counter(db.execute(sa.select(Invitation.frame_unit_id, Invitation.slot).where(
        Invitation.campaign_id == campaign_id, Invitation.status != "void")).all())


@pytest.mark.parametrize("kind", ["unit", "cluster"])
def test_six_simultaneous_issue_posts_give_one_code_per_unit(
        kind, wsgi_app, monitoring_demo, drawn_campaign) -> None:
    campaign = drawn_campaign(kind=kind, n=30 if kind == "unit" else 4, m=3)
    campaign_id = campaign.id
    wanted = monitoring_demo.scalar(sa.select(sa.func.sum(FrameUnit.n_invitations)).where(
        FrameUnit.campaign_id == campaign_id, FrameUnit.selected.is_(True)))
    assert wanted == (30 if kind == "unit" else 12)

    def issue(session: Any) -> list[str]:
        mine = session.get(Campaign, campaign_id)
        return [i.code for i in inv.issue_invitations(session, mine, ACTOR,
                                                      secret=TEST_SECRET)]

    results, errors = _together(wsgi_app, 6, issue)
    assert errors == []
    codes = [code for batch in results for code in batch]
    assert len(codes) == wanted == len(set(codes))  # every code handed out once in all
    monitoring_demo.expire_all()
    live = _live_slots(monitoring_demo, campaign_id)
    assert sum(live.values()) == wanted and set(live.values()) == {1}
    per_unit = Counter(unit for unit, _slot in live)
    units = dict(monitoring_demo.execute(sa.select(FrameUnit.id, FrameUnit.n_invitations)
                                         .where(FrameUnit.campaign_id == campaign_id,
                                                FrameUnit.selected.is_(True))).all())
    assert per_unit == Counter(units)
    for code in codes:  # and every printed code works
        assert inv.find_invitation(monitoring_demo, code, TEST_SECRET) is not None


def test_the_database_refuses_a_second_live_invitation_for_a_slot(
        monitoring_demo, drawn_campaign) -> None:
    """The rule holds below the service too: a plain insert of a duplicate fails."""
    db = monitoring_demo
    campaign = drawn_campaign(n=3)
    first = inv.issue_invitations(db, campaign, ACTOR, secret=TEST_SECRET)[0]
    db.commit()
    row = db.scalar(sa.select(Invitation).where(Invitation.public_id == first.public_id))
    twin = Invitation(campaign_id=campaign.id, public_id="TWIN0001", code_hash="0" * 64,
                      frame_unit_id=row.frame_unit_id, slot=row.slot, stratum=row.stratum,
                      prefill={}, status="issued")
    db.add(twin)
    with pytest.raises(IntegrityError):
        db.flush()
    db.rollback()
    # a void invitation does not hold its slot: the re-issue takes it
    new = inv.reissue_invitation(db, campaign, first.public_id, ACTOR, secret=TEST_SECRET)
    db.commit()
    assert db.scalar(sa.select(Invitation.slot).where(
        Invitation.public_id == new.public_id)) == row.slot


def test_a_second_issue_post_finds_nothing_to_issue(monitoring_demo, drawn_campaign) -> None:
    db = monitoring_demo
    campaign = drawn_campaign(n=5)
    assert len(inv.issue_invitations(db, campaign, ACTOR, secret=TEST_SECRET)) == 5
    db.commit()
    assert inv.issue_invitations(db, campaign, ACTOR, secret=TEST_SECRET) == []


def test_four_simultaneous_new_campaigns_get_four_codes(wsgi_app, monitoring_demo) -> None:
    import datetime as dt

    now = dt.datetime.now(dt.UTC)

    def create(session: Any) -> str:
        return create_campaign(session, district_code="A", user=ACTOR, name="Race",
                               test_instrument="LLA", survey_code="learning_needs",
                               opens_at=local_input(now - dt.timedelta(days=1)),
                               closes_at=local_input(now + dt.timedelta(days=9))).code

    results, errors = _together(wsgi_app, 4, create)
    assert errors == []
    assert len(results) == 4 and len(set(results)) == 4
    monitoring_demo.expire_all()
    stored = monitoring_demo.scalars(sa.select(Campaign.code).where(Campaign.name == "Race"))
    assert sorted(stored) == sorted(results)


def test_six_simultaneous_issue_posts_to_the_served_app(
        wsgi_app, staff, monitoring_demo, drawn_campaign) -> None:
    """The finding as measured: six logged-in browsers post "create the missing
    invitations" at once to the app served by waitress (6 threads). One gets the 30
    codes, the others the "already has its invitation" redirect; no 500."""
    import re

    import httpx

    from tests.browser import serving
    from tests.conftest import PASSWORD

    campaign = drawn_campaign(n=30)
    token_re = re.compile(r'name="csrf_token" value="([^"]+)"')
    code_re = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-"
                         r"[0-9A-HJKMNP-TV-Z]{5}\b")
    with serving(wsgi_app, threads=6) as base:
        clients = [httpx.Client(base_url=base, timeout=60) for _ in range(6)]
        tokens = []
        for client in clients:
            login = client.get("/login")
            client.post("/login", data={"csrf_token": token_re.search(login.text)[1],
                                        "username": "district_a", "password": PASSWORD})
            tab = client.get(f"/campaigns/{campaign.code}/invitations")
            assert tab.status_code == 200
            tokens.append(token_re.search(tab.text)[1])
        barrier = threading.Barrier(6)
        answers: list[Any] = [None] * 6

        def post(k: int) -> None:
            barrier.wait(timeout=30)
            answers[k] = clients[k].post(
                f"/campaigns/{campaign.code}/invitations",
                data={"csrf_token": tokens[k], "action": "issue", "format": "csv"})

        threads = [threading.Thread(target=post, args=(k,)) for k in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        for client in clients:
            client.close()
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 303, 303, 303, 303, 303], statuses
    lines = next(a.text.splitlines()[1:] for a in answers if a.status_code == 200)
    codes = [code_re.search(line)[0] for line in lines if line.strip()]  # code, then link
    assert len(codes) == len(set(codes)) == 30
    monitoring_demo.expire_all()
    live = _live_slots(monitoring_demo, campaign.id)
    assert sum(live.values()) == 30 and set(live.values()) == {1}
