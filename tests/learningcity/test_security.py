"""Staff security: CSRF, headers, login throttling, role and district scoping."""
from __future__ import annotations

import sqlalchemy as sa

from learningcity.accounts import AccountError, create_user, hash_password, verify_password
from learningcity.models import AuditEvent


def test_passwords_are_argon2_hashes_that_verify() -> None:
    hashed = hash_password("a long enough password")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "a long enough password")
    assert not verify_password(hashed, "a long enough passworD")


def test_post_without_csrf_token_is_rejected(testapp, staff) -> None:
    res = testapp.post("/login", {"username": "admin", "password": "correct horse battery"},
                       status=400)
    assert res.status_int == 400
    # nothing happened: not logged in
    assert "/login" in testapp.get("/staff/", status=302).location


def test_post_with_wrong_csrf_token_is_rejected_and_right_one_works(testapp, staff) -> None:
    form = testapp.get("/login").forms[0]
    form["username"], form["password"] = "admin", "correct horse battery"
    form["csrf_token"] = "forged"
    testapp.post("/login", dict(form.submit_fields()), status=400)
    form = testapp.get("/login").forms[0]
    form["username"], form["password"] = "admin", "correct horse battery"
    assert form.submit(status=303).location.endswith("/staff/")


def test_logout_needs_csrf(testapp, staff, login) -> None:
    login("admin", status=303)
    assert testapp.post("/logout", status=400).status_int == 400
    assert "admin" in testapp.get("/staff/", status=200).text  # still logged in


def test_security_headers_on_pages_and_api(testapp) -> None:
    for path in ("/", "/login", "/api/v1/", "/healthz", "/no-such-page"):
        res = testapp.get(path, expect_errors=True)
        csp = res.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert res.headers["X-Frame-Options"] == "DENY"
        assert res.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_have_no_inline_script(testapp) -> None:
    for path in ("/", "/login"):
        assert "<script" not in testapp.get(path).text


def test_wrong_password_is_refused_and_audited(testapp, staff, login, dbsession) -> None:
    res = login("admin", "wrong password!", status=401)
    assert "用户名或密码错误" in res.text
    actions = dbsession.scalars(sa.select(AuditEvent.action)).all()
    assert "login.failed" in actions


def test_repeated_failures_throttle_logins(testapp, staff, login, monkeypatch) -> None:
    from learningcity import accounts, throttle

    # a first wait of 10 minutes, so the test does not depend on how fast it runs
    monkeypatch.setitem(accounts.LOGIN_POLICIES, "login-user",
                        throttle.Policy(free=5, base_s=600, cap_s=600, leak_s=900))
    for _ in range(5):
        login("admin", "wrong password!", status=401)
    # even the right password is refused while throttled, with the wait in both languages
    res = login("admin", status=429)
    assert 590 <= int(res.headers["Retry-After"]) <= 600
    assert "10 分钟后再试" in res.text
    testapp.set_cookie("lc_lang", "en")
    assert "wait 10 minutes and try again" in login("admin", status=429).text


def test_district_staff_see_only_their_district(testapp, staff, login) -> None:
    login("district_a", status=303)
    assert "District A" in testapp.get("/staff/districts/A?lang=en").text
    testapp.get("/staff/districts/B", status=403)
    assert "District B" not in testapp.get("/staff/?lang=en").text


def test_monitor_and_admin_see_every_district(testapp, staff, login) -> None:
    for username in ("monitor", "admin"):
        testapp.reset()
        login(username, status=303)
        assert "甲区" in testapp.get("/staff/districts/A", status=200).text
        assert "乙区" in testapp.get("/staff/districts/B", status=200).text


def test_researcher_cannot_read_district_pages(testapp, staff, login) -> None:
    login("researcher", status=303)
    assert testapp.get("/staff/districts/A", status=403).status_int == 403


def test_anonymous_is_sent_to_login(testapp, staff) -> None:
    res = testapp.get("/staff/districts/A", status=302)
    assert "/login?next=" in res.location


def test_login_never_redirects_off_site(testapp, staff) -> None:
    form = testapp.get("/login?next=//evil.example/").forms[0]
    form["username"], form["password"] = "admin", "correct horse battery"
    assert "evil" not in form.submit(status=303).location


def test_create_user_validates(dbsession, staff) -> None:
    for kwargs, fragment in (
        (dict(username="x", password="short", role="admin"), "at least"),
        (dict(username="y", password="long enough pw", role="boss"), "unknown role"),
        (dict(username="z", password="long enough pw", role="district"), "--district"),
        (dict(username="w", password="long enough pw", role="district",
              district_code="NOPE"), "unknown district"),
        (dict(username="admin", password="long enough pw", role="admin"), "already exists"),
    ):
        try:
            create_user(dbsession, **kwargs)
        except AccountError as exc:
            assert fragment in str(exc)
        else:
            raise AssertionError(f"{kwargs} was accepted")
