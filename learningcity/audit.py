"""The audit trail as the packages use it: record an event, count or list recent ones.

Packages write and read the trail only through these functions, never the
``audit_event`` table (its model lives in :mod:`learningcity.models`).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .models import AuditEvent


def record(db: Session, *, actor: str, action: str, target: str = "",
           detail: dict[str, Any] | None = None, address: str = "") -> None:
    """Add one event to the trail (written with the caller's transaction)."""
    db.add(AuditEvent(actor=actor, action=action, target=target, detail=detail or {},
                      address=address))


def _where(action: str, address: str | None, target: str | None,
           since: dt.datetime | None) -> list[Any]:
    clauses: list[Any] = [AuditEvent.action == action]
    if address is not None:
        clauses.append(AuditEvent.address == address)
    if target is not None:
        clauses.append(AuditEvent.target == target)
    if since is not None:
        clauses.append(AuditEvent.at >= since)
    return clauses


def count_events(db: Session, action: str, *, address: str | None = None,
                 target: str | None = None, since: dt.datetime | None = None) -> int:
    """How many events of ``action`` match (for throttles and summaries)."""
    return db.scalar(sa.select(sa.func.count(AuditEvent.id)).where(
        *_where(action, address, target, since))) or 0


def event_times(db: Session, action: str, *, address: str | None = None,
                target: str | None = None, since: dt.datetime | None = None
                ) -> list[dt.datetime]:
    """When the matching events happened, oldest first."""
    return list(db.scalars(sa.select(AuditEvent.at).where(
        *_where(action, address, target, since)).order_by(AuditEvent.at)))


def actions_for(db: Session, target: str) -> set[str]:
    """Every action recorded against ``target`` (e.g. a campaign code)."""
    return set(db.scalars(sa.select(AuditEvent.action).where(AuditEvent.target == target)))
