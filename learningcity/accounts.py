"""Staff accounts: argon2 password hashing, creation, login with throttling and audit."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from . import throttle
from .db import utcnow
from .models import ROLES, AuditEvent, District, StaffUser

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10


class AccountError(ValueError):
    """A staff-account request that cannot be carried out; the message says why."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(db: Session, username: str, password: str, role: str,
                district_code: str | None = None, display_name: str = "",
                actor: str = "cli") -> StaffUser:
    """Add a staff account after checking role, district and password length."""
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError("username must be 1 to 64 characters")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if role == "district" and not district_code:
        raise AccountError("a district account needs --district")
    if role != "district" and district_code:
        raise AccountError("only district accounts are scoped to a district")
    if district_code and db.get(District, district_code) is None:
        raise AccountError(f"unknown district code {district_code!r}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if db.scalar(sa.select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise AccountError(f"user {username!r} already exists")
    user = StaffUser(username=username, password_hash=hash_password(password), role=role,
                     district_code=district_code, display_name=display_name or username)
    db.add(user)
    db.add(AuditEvent(actor=actor, action="user.add", target=username,
                      detail={"role": role, "district": district_code}))
    db.flush()
    return user


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
