"""Tables of the application shell: districts, staff accounts and logins, the audit trail."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Base, UTCDateTime, utcnow

ROLES = ("admin", "researcher", "monitor", "district", "department")


class District(Base):
    """An administrative district of the city; district staff are scoped to one."""

    __tablename__ = "district"

    code: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200))
    population: Mapped[int | None] = mapped_column(sa.Integer)

    def name(self, locale: str) -> str:
        return self.name_en if locale.startswith("en") else self.name_zh


class StaffUser(Base):
    """A staff account (residents never have one). Passwords are argon2 hashes."""

    __tablename__ = "staff_user"
    __table_args__ = (
        sa.CheckConstraint(
            "role IN ('admin', 'researcher', 'monitor', 'district', 'department')",
            name="role_known"),
        sa.CheckConstraint("role <> 'district' OR district_code IS NOT NULL",
                           name="district_role_has_district"),
        sa.CheckConstraint("role <> 'department' OR department_code IS NOT NULL",
                           name="department_role_has_department"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(16))
    district_code: Mapped[str | None] = mapped_column(
        sa.ForeignKey("district.code", ondelete="RESTRICT"))
    #: department accounts: the code of the city department they report for
    #: (monitoring.programme's departments; a code, not a foreign key into a package)
    department_code: Mapped[str | None] = mapped_column(sa.String(32))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    district: Mapped[District | None] = relationship()


class StaffLogin(Base):
    """One login of a staff member: the signed session cookie carries only its random id.

    Logging out sets ``revoked_at``; so do a password or role change and disabling the
    account (for every login of that user), so a copied cookie stops working at once.
    """

    __tablename__ = "staff_login"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    address: Mapped[str] = mapped_column(sa.String(64), default="")


class AuditEvent(Base):
    """Who did what, when: logins, publishing, campaign actions. Never deleted."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(64), index=True)
    target: Mapped[str] = mapped_column(sa.String(200), default="")
    address: Mapped[str] = mapped_column(sa.String(64), default="")
    detail: Mapped[dict] = mapped_column(sa.JSON, default=dict)


class ThrottleCounter(Base):
    """Attempts counted for one throttle key: a user name, an address (learningcity.throttle).

    ``attempts`` decays by one per policy leak interval; ``next_at`` is when the next
    attempt may be made. Rows of a quiet key are purged (learningcity.throttle.purge).
    """

    __tablename__ = "throttle_counter"

    scope: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    next_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
