"""The client address behind proxies: X-Forwarded-For is believed only from trusted proxies
(issue 16, finding 2: a spoofed header defeated every address throttle and forged the audit
trail)."""
from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
import webtest
from pyramid.exceptions import ConfigurationError

from learningcity.clientaddr import client_address, parse_trusted
from learningcity.models import AuditEvent
from tests.conftest import app_settings

PROXY = "10.0.0.5"


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("203.0.113.7", "1.2.3.4", ()) == "203.0.113.7"
    assert client_address("203.0.113.7", None, ()) == "203.0.113.7"


def test_the_first_untrusted_hop_from_the_right_is_the_client() -> None:
    trusted = parse_trusted("10.0.0.0/24 192.168.1.1")
    # the client forged "6.6.6.6"; our proxies appended what they saw
    assert client_address(PROXY, "6.6.6.6, 198.51.100.2, 192.168.1.1", trusted) \
        == "198.51.100.2"
    # a request straight from an untrusted peer: its header means nothing
    assert client_address("198.51.100.9", "6.6.6.6", trusted) == "198.51.100.9"
    # a hop that is not an address: the trusted proxy that passed it on is the client
    assert client_address(PROXY, "6.6.6.6, <script>", trusted) == PROXY
    # every hop trusted: the leftmost
    assert client_address(PROXY, "10.0.0.7", trusted) == "10.0.0.7"
    assert client_address("::ffff:10.0.0.5", "2001:db8::1", trusted) == "2001:db8::1"


def test_a_bad_trusted_proxy_setting_is_refused_naming_it() -> None:
    with pytest.raises(ConfigurationError, match=r"'10\.0\.0\.300'"):
        parse_trusted("10.0.0.1 10.0.0.300")


def test_spoofed_headers_do_not_escape_the_code_throttle(testapp: Any) -> None:
    """300 wrong codes, each with a fresh X-Forwarded-For: all count against the one
    socket address, so 429 comes after the limit (it was 300 x 404 before)."""
    statuses = []
    for k in range(300):
        spoofed = {"X-Forwarded-For": f"10.9.{k // 250}.{k % 250}"}
        res = testapp.get(f"/i/WRONG{k:03d}", headers=spoofed, expect_errors=True)
        statuses.append(res.status_int)
    assert statuses[:10] == [404] * 10 and statuses[10] == 429
    # after the limit, a wrong code passes only when the doubling wait (1 s, 2 s, 4 s...)
    # is over: at most 12 more in 4096 s, far longer than this run
    assert statuses.count(404) <= 10 + 12 and statuses.count(429) >= 300 - 22


@pytest.fixture(scope="module")
def proxied_app(db_url: str) -> Any:
    """The app behind a trusted proxy at 10.0.0.5."""
    from learningcity import main

    return main({}, **app_settings(db_url, **{"learningcity.trusted_proxies": PROXY}))


def test_behind_a_trusted_proxy_the_real_client_is_taken(proxied_app: Any, dbsession: Any,
                                                         staff: Any) -> None:
    client = webtest.TestApp(proxied_app, extra_environ={"REMOTE_ADDR": PROXY})
    form = client.get("/login").forms[0]
    form["username"], form["password"] = "admin", "wrong password!"
    form.submit(headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.2"}, status=401)
    # the same header straight from the client (not through the proxy) is not believed
    direct = webtest.TestApp(proxied_app, extra_environ={"REMOTE_ADDR": "198.51.100.77"})
    form = direct.get("/login").forms[0]
    form["username"], form["password"] = "admin", "wrong password!"
    form.submit(headers={"X-Forwarded-For": "6.6.6.6"}, status=401)
    addresses = dbsession.scalars(sa.select(AuditEvent.address).where(
        AuditEvent.action == "login.failed").order_by(AuditEvent.id)).all()
    assert addresses == ["198.51.100.2", "198.51.100.77"]


def test_audit_addresses_cannot_be_forged(testapp: Any, dbsession: Any, staff: Any) -> None:
    form = testapp.get("/login").forms[0]
    form["username"], form["password"] = "admin", "wrong password!"
    form.submit(headers={"X-Forwarded-For": "6.6.6.6"}, status=401)
    assert dbsession.scalars(sa.select(AuditEvent.address).where(
        AuditEvent.action == "login.failed")).all() == ["127.0.0.1"]


def test_login_spraying_many_names_with_spoofed_headers_is_slowed(testapp: Any,
                                                                  staff: Any) -> None:
    """30 user names, a fresh X-Forwarded-For each (never throttled before): after the
    address's 10 free attempts every login from it waits, whatever the header says."""
    statuses = []
    for k in range(30):
        form = testapp.get("/login").forms[0]
        form["username"], form["password"] = f"name{k}", "wrong password!"
        res = form.submit(headers={"X-Forwarded-For": f"10.7.0.{k + 1}"}, expect_errors=True)
        statuses.append(res.status_int)
    assert statuses[:10] == [401] * 10
    assert statuses[10:].count(429) >= 20 - 5  # a wrong try only when a doubled wait ended
