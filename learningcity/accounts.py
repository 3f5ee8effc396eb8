"""Staff accounts: argon2 password hashing, creation, login with throttling and audit."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from .db import utcnow
from .models import ROLES, AuditEvent, District, StaffUser

_hasher = PasswordHasher()
#: A login is refused after this many failures for one username or address in the window.
MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
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


def recent_failures(db: Session, username: str, address: str) -> int:
    """Failed logins for this username or from this address within the window."""
    since = utcnow() - FAILURE_WINDOW
    return db.scalar(
        sa.select(sa.func.count(AuditEvent.id)).where(
            AuditEvent.action == "login.failed", AuditEvent.at >= since,
            sa.or_(AuditEvent.target == username, AuditEvent.address == address))) or 0


def authenticate(db: Session, username: str, password: str, address: str) -> StaffUser | None:
    """Check a login; every attempt is audited and repeated failures lock the login out.

    Raises AccountError when throttled, so the caller can say "try again later"
    instead of "wrong password".
    """
    if recent_failures(db, username, address) >= MAX_FAILURES:
        db.add(AuditEvent(actor=username, action="login.throttled", target=username,
                          address=address))
        raise AccountError("too many failed logins; try again in 15 minutes")
    user = db.scalar(sa.select(StaffUser).where(StaffUser.username == username))
    if user is None or not user.active or not verify_password(user.password_hash, password):
        if user is None:
            # Spend the same time as a real check so usernames cannot be probed by timing.
            verify_password(_DUMMY_HASH, password)
        db.add(AuditEvent(actor=username, action="login.failed", target=username,
                          address=address))
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    db.add(AuditEvent(actor=username, action="login.ok", target=username, address=address))
    return user


_DUMMY_HASH = _hasher.hash("not-a-real-password")
