"""Staff accounts: argon2 password hashing, password policy, creation and changes, logins
(server-side, revocable), login throttling and audit.

Every change to an account is audited with the real actor (a staff member's name, or
``cli:<login>`` from the command line).
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Mapping

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from . import throttle
from .db import utcnow
from .models import ROLES, AuditEvent, District, StaffLogin, StaffUser

_hasher = PasswordHasher()
#: NIST SP 800-63B: length and a check against common and guessable passwords, no
#: composition rules. Administrators can change everything, so theirs are longer.
MIN_PASSWORD_LENGTH = 10
MIN_ADMIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
#: zxcvbn score 0-4; 3 means about 10^8 guesses or more ("safely unguessable" online)
MIN_PASSWORD_SCORE = 3
#: a login unused this long is dead (as the cookie's own timeout), and any login is dead
#: after a working day and a half, whatever the cookie says
LOGIN_IDLE = dt.timedelta(hours=8)
LOGIN_MAX_AGE = dt.timedelta(hours=12)
#: last_seen_at is written at most this often per login (not on every request)
LOGIN_TOUCH_EVERY = dt.timedelta(minutes=5)
#: logins are deleted at the next login of anyone this long after their last use
LOGIN_KEEP = dt.timedelta(days=30)


class AccountError(ValueError):
    """A staff-account request that cannot be carried out; the message says why."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str, role: str, username: str = "",
                     display_name: str = "") -> str | None:
    """Why this password is refused for an account of this role, or None when it is fine.

    Length at least 10 (12 for admins); refused when zxcvbn finds it common or
    guessable (dictionary words, repeats, sequences, keyboard walks, the user's own
    name). No rules about digits or symbols (NIST SP 800-63B, 5.1.1).
    """
    minimum = MIN_ADMIN_PASSWORD_LENGTH if role == "admin" else MIN_PASSWORD_LENGTH
    if len(password) < minimum:
        who = "an administrator's" if role == "admin" else "a"
        return f"{who} password must have at least {minimum} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"a password may have at most {MAX_PASSWORD_LENGTH} characters"
    # start-up cost: zxcvbn loads its word lists (75 ms, python -X importtime); only
    # account changes need it, not every web worker
    from zxcvbn import zxcvbn

    hints = [h for h in (username, display_name, "learningcity", "learning city") if h]
    # zxcvbn refuses more than 72 characters (its cost grows with length); a phrase that
    # long is judged by its first 72
    result = zxcvbn(password[:72], user_inputs=hints)
    if result["score"] < MIN_PASSWORD_SCORE:
        warning = result["feedback"].get("warning") or "it is too easy to guess"
        return (f"password refused: {warning.rstrip('.')} (about {result['guesses']:.0f} "
                "guesses); use a longer phrase of uncommon words")
    return None


def check_password(password: str, role: str, username: str = "",
                   display_name: str = "") -> None:
    """Raise AccountError naming the reason when the password is refused."""
    problem = password_problem(password, role, username, display_name)
    if problem is not None:
        raise AccountError(problem)


#: a department code: what department accounts carry (the departments themselves are
#: the programme wing's; the shell checks only the form of the code)
_DEPARTMENT_CODE = re.compile(r"[a-z0-9_]{1,32}")


def _check_role(db: Session, role: str, district_code: str | None,
                department_code: str | None = None) -> None:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if role == "department" and not department_code:
        raise AccountError("a department account needs --department")
    if role != "department" and department_code:
        raise AccountError("only department accounts belong to a department")
    if department_code and not _DEPARTMENT_CODE.fullmatch(department_code):
        raise AccountError(f"department code {department_code!r}: 1 to 32 of a-z, 0-9, _")
    if role == "district" and not district_code:
        raise AccountError("a district account needs --district")
    if role != "district" and district_code:
        raise AccountError("only district accounts are scoped to a district")
    if district_code and db.get(District, district_code) is None:
        raise AccountError(f"unknown district code {district_code!r}")


def create_user(db: Session, username: str, password: str, role: str,
                district_code: str | None = None, display_name: str = "",
                actor: str = "system", department_code: str | None = None) -> StaffUser:
    """Add a staff account after checking role, district and password (audited)."""
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError("username must be 1 to 64 characters")
    _check_role(db, role, district_code, department_code)
    check_password(password, role, username, display_name)
    if db.scalar(sa.select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise AccountError(f"user {username!r} already exists")
    user = StaffUser(username=username, password_hash=hash_password(password), role=role,
                     district_code=district_code, department_code=department_code,
                     display_name=display_name or username)
    db.add(user)
    detail = {"role": role, "district": district_code}
    if department_code:
        detail["department"] = department_code
    db.add(AuditEvent(actor=actor, action="user.add", target=username, detail=detail))
    db.flush()
    return user


def get_user(db: Session, username: str) -> StaffUser:
    """The account with this name; AccountError naming it when there is none."""
    user = db.scalar(sa.select(StaffUser).where(StaffUser.username == username.strip()))
    if user is None:
        raise AccountError(f"unknown user {username!r} (see `learningcity user list`)")
    return user


def _keep_an_admin(db: Session, user: StaffUser, change: str) -> None:
    """Refuse to disable or demote the last active administrator (nobody could log in
    to undo it). The other admins' rows are locked so two such changes cannot race."""
    if user.role != "admin" or not user.active:
        return
    others = db.scalars(sa.select(StaffUser.id).where(
        StaffUser.role == "admin", StaffUser.active.is_(True), StaffUser.id != user.id)
        .with_for_update()).all()
    if not others:
        raise AccountError(f"{user.username} is the last active administrator and cannot "
                           f"be {change}; add or enable another administrator first")


def set_active(db: Session, username: str, active: bool, actor: str) -> StaffUser:
    """Disable (every login revoked at once) or enable an account (audited)."""
    user = get_user(db, username)
    if user.active == active:
        raise AccountError(f"{user.username} is already {'active' if active else 'disabled'}")
    if not active:
        _keep_an_admin(db, user, "disabled")
    user.active = active
    revoked = 0 if active else revoke_logins(db, user.id)
    db.add(AuditEvent(actor=actor, action="user.enable" if active else "user.disable",
                      target=user.username, detail={"logins_revoked": revoked}))
    db.flush()
    return user


def set_role(db: Session, username: str, role: str, district_code: str | None,
             actor: str, department_code: str | None = None) -> StaffUser:
    """Change an account's role (and district or department); its logins are revoked
    (audited)."""
    user = get_user(db, username)
    _check_role(db, role, district_code, department_code)
    if (user.role, user.district_code, user.department_code) == (
            role, district_code, department_code):
        unit = district_code or department_code
        raise AccountError(f"{user.username} is already {role}"
                           + (f" of {unit}" if unit else ""))
    if role != "admin":
        _keep_an_admin(db, user, "demoted")
    before = {"role": user.role, "district": user.district_code}
    if user.department_code or department_code:
        before["department"] = user.department_code
    user.role, user.district_code = role, district_code
    user.department_code = department_code
    revoked = revoke_logins(db, user.id)
    db.add(AuditEvent(actor=actor, action="user.role", target=user.username,
                      detail={"from": before, "to": {"role": role, "district": district_code},
                              "logins_revoked": revoked}))
    db.flush()
    return user


def set_password(db: Session, username: str, password: str, actor: str) -> StaffUser:
    """Give an account a new password (policy checked); its logins are revoked (audited)."""
    user = get_user(db, username)
    check_password(password, user.role, user.username, user.display_name)
    user.password_hash = hash_password(password)
    revoked = revoke_logins(db, user.id)
    db.add(AuditEvent(actor=actor, action="user.password", target=user.username,
                      detail={"logins_revoked": revoked}))
    db.flush()
    return user


# --- logins: the server side of a staff session --------------------------------------

def start_login(db: Session, user: StaffUser, address: str) -> str:
    """Record a new login of ``user`` and return its random id (what the cookie holds).

    Every login last used more than LOGIN_KEEP ago (anyone's: the table is small) is
    deleted here, so it holds about a month of staff logins and their addresses.
    """
    now = utcnow()
    db.execute(sa.delete(StaffLogin).where(StaffLogin.last_seen_at < now - LOGIN_KEEP))
    login_id = secrets.token_urlsafe(32)
    db.add(StaffLogin(id=login_id, user_id=user.id, created_at=now, last_seen_at=now,
                      address=(address or "")[:64]))
    db.flush()
    return login_id


def login_user(db: Session, login_id: str) -> StaffUser | None:
    """The active user of a live login (not revoked, not idle or too old), else None.

    One query per request; ``last_seen_at`` is written at most every LOGIN_TOUCH_EVERY.
    """
    now = utcnow()
    row = db.execute(
        sa.select(StaffUser, StaffLogin.last_seen_at)
        .join(StaffLogin, StaffLogin.user_id == StaffUser.id)
        .where(StaffLogin.id == login_id, StaffLogin.revoked_at.is_(None),
               StaffLogin.last_seen_at >= now - LOGIN_IDLE,
               StaffLogin.created_at >= now - LOGIN_MAX_AGE,
               StaffUser.active.is_(True))).first()
    if row is None:
        return None
    user, last_seen = row
    if last_seen < now - LOGIN_TOUCH_EVERY:
        db.execute(sa.update(StaffLogin).where(StaffLogin.id == login_id)
                   .values(last_seen_at=now))
    return user


def end_login(db: Session, login_id: str, address: str = "") -> None:
    """Revoke one login (logout): its cookie, and every copy of it, stops working.

    Audited as ``logout`` when the login was still open."""
    username = db.scalar(sa.select(StaffUser.username)
                         .join(StaffLogin, StaffLogin.user_id == StaffUser.id)
                         .where(StaffLogin.id == login_id, StaffLogin.revoked_at.is_(None)))
    if username is None:
        return
    db.execute(sa.update(StaffLogin).where(StaffLogin.id == login_id)
               .values(revoked_at=utcnow()))
    db.add(AuditEvent(actor=username, action="logout", target=username,
                      address=(address or "")[:64]))


def revoke_logins(db: Session, user_id: int) -> int:
    """Revoke every live login of a user (password, role or status changed); how many."""
    result = db.execute(sa.update(StaffLogin).where(StaffLogin.user_id == user_id,
                                                    StaffLogin.revoked_at.is_(None))
                        .values(revoked_at=utcnow()))
    return result.rowcount or 0


#: Login throttles (learningcity.throttle), per account and per address, counted apart.
#: Per account: 5 free attempts, then 1 s doubling to at most 5 minutes, one forgiven per
#: 15 minutes: a stranger failing against a name (from any number of addresses) gets
#: about 12 guesses an hour at most, and the real user waits no more than 5 minutes, or
#: not at all from an address where they logged in within KNOWN_ADDRESS_DAYS.
#: Per address: 10 free, then 1 s doubling to 15 minutes, one forgiven per 5 minutes: one
#: address (or NAT) spraying many names is slowed to about one guess per 5 minutes.
LOGIN_POLICIES = {
    "login-user": throttle.Policy(free=5, base_s=1, cap_s=300, leak_s=900),
    "login-addr": throttle.Policy(free=10, base_s=1, cap_s=900, leak_s=300),
}
#: an address where the user logged in this recently is not slowed by the account's count
KNOWN_ADDRESS_DAYS = 30


def known_address(db: Session, username: str, address: str,
                  now: dt.datetime | None = None) -> bool:
    """Whether ``username`` logged in from ``address`` within KNOWN_ADDRESS_DAYS."""
    since = (now or utcnow()) - dt.timedelta(days=KNOWN_ADDRESS_DAYS)
    return db.scalar(sa.select(AuditEvent.id).where(
        AuditEvent.action == "login.ok", AuditEvent.target == username,
        AuditEvent.address == address, AuditEvent.at >= since).limit(1)) is not None


def authenticate(db: Session, username: str, password: str, address: str,
                 now: dt.datetime | None = None,
                 policies: Mapping[str, throttle.Policy] | None = None) -> StaffUser | None:
    """Check a login; every attempt is audited and counted before the password is checked.

    Raises :class:`learningcity.throttle.Throttled` (with ``retry_after``) when the
    account or the address must wait, so the caller can say "try again later" instead
    of "wrong password". A success clears the account's count and gives the address
    its attempt back. ``policies`` override :data:`LOGIN_POLICIES` (from the settings).
    """
    policies = {**LOGIN_POLICIES, **(policies or {})}
    keys = [("login-addr", address)]
    if not known_address(db, username, address, now):
        keys.append(("login-user", username))
    try:
        throttle.attempt(db, keys, policies, now)
    except throttle.Throttled as exc:
        db.add(AuditEvent(actor=username[:64], action="login.throttled",
                          target=username[:200], address=address,
                          detail={"retry_after": exc.retry_after, "scope": exc.scope}))
        raise
    user = db.scalar(sa.select(StaffUser).where(StaffUser.username == username))
    if user is None or not user.active or not verify_password(user.password_hash, password):
        if user is None:
            # Spend the same time as a real check so usernames cannot be probed by timing.
            verify_password(_DUMMY_HASH, password)
        db.add(AuditEvent(actor=username[:64], action="login.failed", target=username[:200],
                          address=address))
        return None
    throttle.reset(db, [("login-user", username)], now)
    throttle.refund(db, [("login-addr", address)], policies, now)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    db.add(AuditEvent(actor=username, action="login.ok", target=username, address=address))
    return user


_DUMMY_HASH = _hasher.hash("not-a-real-password")
