"""Staff accounts: server-side logins that logout and account changes revoke, the
password policy, and the audited account changes."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
import webtest

from learningcity import accounts
from learningcity.accounts import AccountError, password_problem
from learningcity.models import AuditEvent, StaffLogin, StaffUser


def _copy_of(testapp: webtest.TestApp, wsgi_app) -> webtest.TestApp:
    """A second browser holding a copy of the first one's session cookie."""
    other = webtest.TestApp(wsgi_app, extra_environ={"REMOTE_ADDR": "127.0.0.9"})
    other.set_cookie("lc_session", testapp.cookies["lc_session"])
    return other


def _logout(testapp: webtest.TestApp) -> None:
    token = testapp.get("/staff/").forms[0]["csrf_token"].value
    testapp.post("/logout", {"csrf_token": token}, status=303)


def test_a_copied_cookie_stops_working_after_logout(testapp, wsgi_app, staff, login,
                                                     dbsession) -> None:
    login("researcher", status=303)
    copy = _copy_of(testapp, wsgi_app)
    assert "researcher" in copy.get("/staff/", status=200).text  # the copy works...
    _logout(testapp)
    # ...until the owner logs out: then the copy is sent to the login page
    assert "/login" in copy.get("/staff/", status=302).location
    assert "/login" in testapp.get("/staff/", status=302).location
    token = copy.get("/login").forms[0]["csrf_token"].value
    copy.post("/research/items/X/status", {"csrf_token": token, "status": "retired",
                                           "confirm": "yes"}, status=403)
    login_row = dbsession.scalar(sa.select(StaffLogin))
    assert login_row.revoked_at is not None and login_row.address == "127.0.0.1"
    logouts = dbsession.execute(sa.select(AuditEvent.actor, AuditEvent.address)
                                .where(AuditEvent.action == "logout")).all()
    assert logouts == [("researcher", "127.0.0.1")]
    # logging out of a dead login again changes nothing and records nothing
    accounts.end_login(dbsession, login_row.id)
    dbsession.commit()
    assert dbsession.scalar(sa.select(sa.func.count(AuditEvent.id))
                            .where(AuditEvent.action == "logout")) == 1


def test_the_cookie_names_a_login_not_a_user(testapp, staff, login, dbsession) -> None:
    login("admin", status=303)
    login_id = dbsession.scalar(sa.select(StaffLogin.id))
    assert len(login_id) >= 40  # 32 random bytes
    # a cookie forged with the user's id instead of a login id gets nobody
    policy = accounts.login_user
    assert policy(dbsession, str(staff["admin"].id)) is None
    assert policy(dbsession, login_id).username == "admin"


@pytest.mark.parametrize("change", ["role", "password", "disable"])
def test_an_account_change_ends_every_session_of_that_user(testapp, wsgi_app, staff, login,
                                                            dbsession, change) -> None:
    login("monitor", status=303)
    other_browser = webtest.TestApp(wsgi_app, extra_environ={"REMOTE_ADDR": "127.0.0.2"})
    form = other_browser.get("/login").forms[0]  # a second login of the same user
    form["username"], form["password"] = "monitor", "correct horse battery"
    form.submit(status=303)
    bystander = webtest.TestApp(wsgi_app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    form = bystander.get("/login").forms[0]
    form["username"], form["password"] = "researcher", "correct horse battery"
    form.submit(status=303)
    if change == "role":
        accounts.set_role(dbsession, "monitor", "researcher", None, "cli:root")
    elif change == "password":
        accounts.set_password(dbsession, "monitor", "another fine phrase here", "cli:root")
    else:
        accounts.set_active(dbsession, "monitor", False, "cli:root")
    dbsession.commit()
    for browser in (testapp, other_browser):
        assert "/login" in browser.get("/staff/", status=302).location
    assert bystander.get("/staff/", status=200)  # other users keep their sessions
    event = dbsession.scalar(sa.select(AuditEvent).where(AuditEvent.action.like("user.%"),
                                                         AuditEvent.action != "user.add"))
    assert (event.actor, event.target, event.detail["logins_revoked"]) == (
        "cli:root", "monitor", 2)


def test_an_idle_or_day_old_login_is_dead(testapp, staff, login, dbsession) -> None:
    login("admin", status=303)
    assert testapp.get("/staff/", status=200)
    login_row = dbsession.scalar(sa.select(StaffLogin))
    login_row.last_seen_at = accounts.utcnow() - accounts.LOGIN_IDLE - dt.timedelta(minutes=1)
    dbsession.commit()
    assert "/login" in testapp.get("/staff/", status=302).location
    login("admin", status=303)
    newest = dbsession.scalars(sa.select(StaffLogin).order_by(StaffLogin.created_at.desc())
                               ).first()
    newest.created_at = accounts.utcnow() - accounts.LOGIN_MAX_AGE - dt.timedelta(minutes=1)
    dbsession.commit()
    assert "/login" in testapp.get("/staff/", status=302).location


def test_last_seen_is_written_only_now_and_then(testapp, staff, login, dbsession) -> None:
    login("admin", status=303)
    row = dbsession.scalar(sa.select(StaffLogin))
    first_seen = row.last_seen_at
    testapp.get("/staff/", status=200)
    dbsession.expire_all()
    assert dbsession.scalar(sa.select(StaffLogin.last_seen_at)) == first_seen
    row = dbsession.scalar(sa.select(StaffLogin))
    row.last_seen_at = first_seen - accounts.LOGIN_TOUCH_EVERY - dt.timedelta(seconds=1)
    dbsession.commit()
    testapp.get("/staff/", status=200)
    dbsession.expire_all()
    assert dbsession.scalar(sa.select(StaffLogin.last_seen_at)) >= first_seen


def test_old_dead_logins_are_deleted_at_the_next_login(testapp, staff, login,
                                                        dbsession) -> None:
    login("admin", status=303)
    testapp.reset()
    login("monitor", status=303)
    rows = dbsession.scalars(sa.select(StaffLogin).order_by(StaffLogin.created_at)).all()
    rows[0].last_seen_at = accounts.utcnow() - accounts.LOGIN_KEEP - dt.timedelta(days=1)
    rows[1].last_seen_at = accounts.utcnow() - accounts.LOGIN_KEEP + dt.timedelta(days=1)
    old_id, recent_id = rows[0].id, rows[1].id
    dbsession.commit()
    testapp.reset()
    login("researcher", status=303)  # anyone's login prunes everyone's old ones
    dbsession.expire_all()
    ids = dbsession.scalars(sa.select(StaffLogin.id)).all()
    assert old_id not in ids and recent_id in ids and len(ids) == 2


# --- passwords ------------------------------------------------------------------------

@pytest.mark.parametrize("password, reason", [
    ("aaaaaaaaaa", "Repeats"),
    ("password123", "very common password"),
    ("qwertyuiop12", "commonly used"),
    ("1234567890", "guesses"),
    ("short", "at least 10"),
])
def test_weak_passwords_are_refused_with_the_reason(password, reason) -> None:
    problem = password_problem(password, "researcher", "alice")
    assert problem is not None and reason in problem


def test_admins_need_twelve_characters_and_everyone_a_strong_phrase() -> None:
    assert "at least 12" in password_problem("plum vortex", "admin")  # 11 characters
    assert password_problem("plum vortex", "researcher") is None
    assert password_problem("plum vortex x", "admin") is None
    # no composition rules: lower-case words and spaces are fine
    assert password_problem("correct horse battery", "admin") is None
    # the account's own name is guessable
    assert password_problem("zhangweilin2", "monitor", "zhangweilin") is not None
    assert password_problem("z" * 300, "monitor") is not None
    # longer than zxcvbn's 72-character limit: judged, not an error
    long_phrase = ("plum vortex harbour lantern quiet meadow copper kettle violet "
                   "orchard ember glacier")
    assert len(long_phrase) > 72 and password_problem(long_phrase, "admin") is None


def test_create_user_refuses_a_common_password_and_writes_nothing(dbsession, staff) -> None:
    with pytest.raises(AccountError, match="very common password"):
        accounts.create_user(dbsession, "eve", "password123", "monitor")
    with pytest.raises(AccountError, match="Repeats"):
        accounts.set_password(dbsession, "monitor", "aaaaaaaaaa", "cli:root")
    dbsession.rollback()
    assert dbsession.scalar(sa.select(StaffUser).where(StaffUser.username == "eve")) is None


# --- account changes ------------------------------------------------------------------

def test_account_changes_are_refused_clearly(dbsession, staff) -> None:
    for call, fragment in (
        (lambda: accounts.set_active(dbsession, "nobody", False, "t"), "unknown user"),
        (lambda: accounts.set_role(dbsession, "monitor", "boss", None, "t"), "unknown role"),
        (lambda: accounts.set_role(dbsession, "monitor", "district", None, "t"), "--district"),
        (lambda: accounts.set_role(dbsession, "monitor", "district", "ZZ", "t"),
         "unknown district"),
        (lambda: accounts.set_role(dbsession, "monitor", "monitor", None, "t"), "already"),
        (lambda: accounts.set_active(dbsession, "monitor", True, "t"), "already active"),
        # admin is the only administrator in the fixture
        (lambda: accounts.set_active(dbsession, "admin", False, "t"), "last active admin"),
        (lambda: accounts.set_role(dbsession, "admin", "monitor", None, "t"),
         "last active admin"),
    ):
        with pytest.raises(AccountError, match=fragment):
            call()
    dbsession.rollback()
    admin = dbsession.scalar(sa.select(StaffUser).where(StaffUser.username == "admin"))
    assert admin.active and admin.role == "admin"


def test_an_admin_can_be_demoted_when_another_is_active(dbsession, staff) -> None:
    accounts.set_role(dbsession, "researcher", "admin", None, "cli:root")
    accounts.set_role(dbsession, "admin", "monitor", None, "cli:root")
    with pytest.raises(AccountError, match="last active admin"):
        accounts.set_active(dbsession, "researcher", False, "cli:root")
    accounts.set_role(dbsession, "monitor", "district", "A", "cli:root")
    dbsession.commit()
    rows = dbsession.execute(sa.select(AuditEvent.target, AuditEvent.detail).where(
        AuditEvent.action == "user.role").order_by(AuditEvent.id)).all()
    assert [t for t, _d in rows] == ["researcher", "admin", "monitor"]
    assert rows[2][1]["from"] == {"role": "monitor", "district": None}
    assert rows[2][1]["to"] == {"role": "district", "district": "A"}


def test_a_disabled_user_cannot_log_in_until_enabled(testapp, staff, login, dbsession) -> None:
    accounts.set_active(dbsession, "monitor", False, "cli:root")
    dbsession.commit()
    login("monitor", status=401)
    accounts.set_active(dbsession, "monitor", True, "cli:root")
    dbsession.commit()
    login("monitor", status=303)
    actions = dbsession.scalars(sa.select(AuditEvent.action).where(
        AuditEvent.target == "monitor", AuditEvent.actor == "cli:root")
        .order_by(AuditEvent.id)).all()
    assert actions == ["user.disable", "user.enable"]


def test_identity_costs_one_query_per_request(testapp, wsgi_app, staff, login) -> None:
    """The login check joins staff_login to staff_user once, however often a page asks
    for the identity (layout, permissions, the view)."""
    login("admin", status=303)
    statements: list[str] = []

    def log(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    engine = wsgi_app.registry.engine
    sa.event.listen(engine, "before_cursor_execute", log)
    try:
        testapp.get("/staff/", status=200)
    finally:
        sa.event.remove(engine, "before_cursor_execute", log)
    touching = [s for s in statements if "staff_login" in s or "staff_user" in s]
    assert len(touching) == 1 and "JOIN staff_login" in touching[0], touching
