"""Login throttles per account and per address, with growing delays (issue 16, findings 2
and 3): a stranger failing against a name slows that name only, with waits the real
user can sit out; one address spraying names is slowed; the real user's usual address
is not slowed at all. Time is passed in (``now``), so nothing here sleeps."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from learningcity import throttle
from learningcity.accounts import LOGIN_POLICIES, authenticate
from learningcity.db import utcnow
from tests.conftest import PASSWORD

ATTACKER, REAL = "203.0.113.66", "198.51.100.1"


def _try(db: Any, name: str, password: str, address: str, at: dt.datetime) -> Any:
    """One login at ``at``: the user, None (wrong), or the Throttled refusal; committed
    as a request would be."""
    try:
        result = authenticate(db, name, password, address, now=at)
    except throttle.Throttled as exc:
        result = exc
    db.commit()
    return result


def test_policy_delays_double_up_to_the_cap_and_leak_away() -> None:
    policy = throttle.Policy(free=5, base_s=1, cap_s=300, leak_s=900)
    assert [policy.delay(n) for n in range(1, 5)] == [0, 0, 0, 0]
    assert [policy.delay(n) for n in (5, 6, 7, 13, 14, 100)] == [1, 2, 4, 256, 300, 300]
    assert policy.decayed(10, dt.timedelta(minutes=44)) == 8
    assert policy.decayed(10, dt.timedelta(days=1)) == 0


def test_an_attacker_against_a_name_does_not_lock_the_real_user_out(
        dbsession: Any, staff: Any) -> None:
    t = utcnow()
    for _ in range(5):
        assert _try(dbsession, "admin", "wrong guess!!", ATTACKER, t) is None
    refused = _try(dbsession, "admin", "wrong guess!!", ATTACKER, t)
    assert isinstance(refused, throttle.Throttled) and refused.scope == "login-user"
    # the attacker keeps guessing as fast as allowed for two hours (from many addresses,
    # so the per-address count never binds): the waits grow to 5 minutes, no further
    guesses, start = 5, t
    while t < start + dt.timedelta(hours=2):
        result = _try(dbsession, "admin", "wrong guess!!", f"203.0.113.{guesses % 200}", t)
        if isinstance(result, throttle.Throttled):
            assert result.retry_after <= 300
            t += dt.timedelta(seconds=result.retry_after)
        else:
            guesses += 1
    assert guesses <= 5 + 9 + 2 * 12 + 1  # 1+2+...+256 s, then one per 5 minutes
    # the real admin, from an address never used before: refused for at most 5 minutes,
    # then in (the attacker does not get the slot in between in this test)
    result = _try(dbsession, "admin", PASSWORD, REAL, t)
    if isinstance(result, throttle.Throttled):
        assert result.retry_after <= LOGIN_POLICIES["login-user"].cap_s
        t += dt.timedelta(seconds=result.retry_after)
        result = _try(dbsession, "admin", PASSWORD, REAL, t)
    assert result is not None and not isinstance(result, Exception) and \
        result.username == "admin"
    # the success cleared the name's count: five more free guesses for anyone
    assert throttle.waiting(dbsession, ("login-user", "admin"), t) is None


def test_the_usual_address_is_not_slowed_by_the_accounts_count(
        dbsession: Any, staff: Any) -> None:
    t = utcnow()
    assert _try(dbsession, "admin", PASSWORD, REAL, t).username == "admin"
    for _ in range(5):
        assert _try(dbsession, "admin", "wrong guess!!", ATTACKER, t) is None
    assert isinstance(_try(dbsession, "admin", PASSWORD, ATTACKER, t), throttle.Throttled)
    # the name waits, but its owner logs in at once from where they logged in before
    assert _try(dbsession, "admin", PASSWORD, REAL, t).username == "admin"


def test_one_address_spraying_many_names_is_slowed(dbsession: Any, staff: Any) -> None:
    t = utcnow()
    results = [_try(dbsession, f"user{k}", "wrong guess!!", ATTACKER, t) for k in range(30)]
    assert results[:10] == [None] * 10
    assert all(isinstance(r, throttle.Throttled) and r.scope == "login-addr"
               for r in results[10:])
    # another address is not affected, and nor is the per-name count of those names
    assert _try(dbsession, "user3", "wrong guess!!", REAL, t) is None


def test_a_success_gives_the_address_its_attempt_back(dbsession: Any, staff: Any) -> None:
    """Colleagues behind one NAT logging in all day never use up the address's count."""
    t = utcnow()
    for k in range(40):
        assert _try(dbsession, "monitor", PASSWORD, ATTACKER,
                    t + dt.timedelta(seconds=k)).username == "monitor"
    later = t + dt.timedelta(seconds=40)
    assert throttle.waiting(dbsession, ("login-addr", ATTACKER), later) is None
    assert _try(dbsession, "admin", "wrong guess!!", ATTACKER, later) is None


@pytest.mark.parametrize("dry_run", [True, False])
def test_quiet_counters_are_purged(dbsession: Any, staff: Any, dry_run: bool) -> None:
    t = utcnow()
    _try(dbsession, "admin", "wrong guess!!", ATTACKER, t - dt.timedelta(days=3))
    _try(dbsession, "admin", "wrong guess!!", REAL, t)
    counts = throttle.purge(dbsession, now=t, settings={}, dry_run=dry_run)
    # the old attacker address row; the name's row was touched again just now
    assert counts == {"throttle_counters_deleted": 1}
    dbsession.commit()
    again = throttle.purge(dbsession, now=t, settings={}, dry_run=dry_run)
    assert again == {"throttle_counters_deleted": 1 if dry_run else 0}


def test_policies_from_the_settings_and_a_bad_one_named() -> None:
    from pyramid.exceptions import ConfigurationError

    found = throttle.policy_overrides({"learningcity.throttle.login-user": "3 2 60 600",
                                       "learningcity.secret": "x"})
    assert found == {"login-user": throttle.Policy(3, 2.0, 60.0, 600.0)}
    with pytest.raises(ConfigurationError, match=r"learningcity\.throttle\.code-addr"):
        throttle.policy_overrides({"learningcity.throttle.code-addr": "10 1 900"})
