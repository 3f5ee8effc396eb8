"""Throttles kept in the database: counted atomically, with growing delays, not hard locks.

A throttle key is ``(scope, key)``: ``("login-user", name)``, ``("login-addr", address)``,
``("code-addr", address)``. Each scope has a :class:`Policy`: the first ``free``
attempts pass at once; after that each attempt must wait a delay that doubles from
``base_s`` up to ``cap_s``; one counted attempt is forgiven every ``leak_s`` of time
(a leaky bucket), so ordinary typos never add up to a lock.

An attempt is *reserved before* the password or code is checked (:func:`attempt`), in
its own short transaction committed at once: the count survives whatever the request
does next, and the row lock is held for a few statements, not for the password check.
The rows of every key are locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite has
one writer at a time) in a fixed order, so concurrent attempts from any number of
workers and servers sharing the database are counted one after the other and no two
can pass on the same free slot. A success gives the attempt back (:func:`refund`) or
clears the key (:func:`reset`).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pyramid.exceptions import ConfigurationError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .db import utcnow
from .models import ThrottleCounter

Key = tuple[str, str]
#: the longest key kept (longer names and addresses are cut, never refused here)
KEY_LENGTH = 200


@dataclass(frozen=True)
class Policy:
    """How one scope slows down repeated attempts."""

    #: attempts that pass without waiting
    free: int
    #: the wait after the last free attempt; it doubles with every further one
    base_s: float
    #: the longest wait
    cap_s: float
    #: one counted attempt is forgiven per this many seconds
    leak_s: float

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th counted attempt."""
        if attempts < self.free:
            return 0.0
        return min(self.cap_s, self.base_s * 2.0 ** min(attempts - self.free, 40))

    def decayed(self, attempts: int, since: dt.timedelta) -> int:
        """The count left after ``since`` of quiet."""
        return max(0, attempts - int(since.total_seconds() // self.leak_s))


def policy_overrides(settings: Mapping[str, Any]) -> dict[str, Policy]:
    """Policies set in the .ini: ``learningcity.throttle.<scope> = free base cap leak``
    (seconds), e.g. ``learningcity.throttle.login-user = 5 1 300 900``; a clear error
    names a bad one. Scopes not set keep the defaults of the module that uses them."""
    prefix = "learningcity.throttle."
    found = {}
    for name, raw in settings.items():
        if not name.startswith(prefix):
            continue
        words = str(raw).split()
        try:
            free, base, cap, leak = int(words[0]), *map(float, words[1:])
            if len(words) != 4 or free < 0 or min(base, cap, leak) <= 0:
                raise ValueError
        except (ValueError, IndexError):
            raise ConfigurationError(
                f"setting {name} must be four numbers, 'free base cap leak' (attempts, "
                f"then seconds), e.g. '5 1 300 900'; not {raw!r}") from None
        found[name[len(prefix):]] = Policy(free, base, cap, leak)
    return found


class Throttled(Exception):
    """An attempt that must wait: ``retry_after`` whole seconds (at least 1)."""

    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(f"too many attempts ({scope}); try again in {retry_after} seconds")
        self.retry_after, self.scope = retry_after, scope


def _keys(keys: Iterable[Key]) -> list[Key]:
    """Distinct keys (cut to the column), sorted: every caller locks rows in one order."""
    return sorted({(scope, key[:KEY_LENGTH]) for scope, key in keys})


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _lock_rows(conn: sa.Connection, keys: Sequence[Key], now: dt.datetime
               ) -> dict[Key, Any]:
    """Make sure every key has a row and lock it; returns the rows by key."""
    table = ThrottleCounter.__table__
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    rows = {}
    for scope, key in keys:
        conn.execute(insert(table).values(scope=scope, key=key, attempts=0, last_at=now,
                                          next_at=now).on_conflict_do_nothing())
        rows[(scope, key)] = conn.execute(
            sa.select(table).where(table.c.scope == scope, table.c.key == key)
            .with_for_update()).one()
    return rows


def _write(conn: sa.Connection, key: Key, attempts: int, last_at: dt.datetime,
           next_at: dt.datetime) -> None:
    table = ThrottleCounter.__table__
    conn.execute(table.update().where(table.c.scope == key[0], table.c.key == key[1])
                 .values(attempts=attempts, last_at=last_at, next_at=next_at))


def _engine(db: Session) -> sa.Engine:
    bind = db.get_bind()
    return bind.engine if isinstance(bind, sa.Connection) else bind


@contextlib.contextmanager
def _after_check(db: Session) -> Iterator[sa.Connection]:
    """The connection for a refund or reset, which comes after the request may have
    written: on PostgreSQL its own short transaction (the row lock is not held for the
    rest of the request); on SQLite the request's own, since a second connection could
    not write while the request holds SQLite's one write lock (it would wait for itself)."""
    if db.get_bind().dialect.name == "sqlite":
        yield db.connection()
        return
    with _engine(db).begin() as conn:
        yield conn


def attempt(db: Session, keys: Iterable[Key], policies: Mapping[str, Policy],
            now: dt.datetime | None = None) -> None:
    """Reserve one attempt on every key, or raise :class:`Throttled` (nothing counted)
    when any of them must still wait.

    Runs and commits in its own transaction on ``db``'s engine, so call it before the
    request's session has written anything (SQLite allows one writer).
    """
    now = now or utcnow()
    keys = _keys(keys)
    with _engine(db).begin() as conn:
        rows = _lock_rows(conn, keys, now)
        waits = [((_aware(row.next_at) - now).total_seconds(), key[0])
                 for key, row in rows.items() if _aware(row.next_at) > now]
        if waits:
            seconds, scope = max(waits)
            raise Throttled(max(1, math.ceil(seconds)), scope)
        for key, row in rows.items():
            policy = policies[key[0]]
            count = policy.decayed(row.attempts, now - _aware(row.last_at)) + 1
            _write(conn, key, count, now,
                   now + dt.timedelta(seconds=policy.delay(count)))


def refund(db: Session, keys: Iterable[Key], policies: Mapping[str, Policy],
           now: dt.datetime | None = None) -> None:
    """Give back one reserved attempt on every key (the attempt succeeded); its wait
    shrinks to what the lower count asks, counted from the last attempt."""
    now = now or utcnow()
    with _after_check(db) as conn:
        for key, row in _lock_rows(conn, _keys(keys), now).items():
            policy = policies[key[0]]
            count = max(0, policy.decayed(row.attempts, now - _aware(row.last_at)) - 1)
            _write(conn, key, count, now,
                   min(_aware(row.next_at), now + dt.timedelta(seconds=policy.delay(count))))


def reset(db: Session, keys: Iterable[Key], now: dt.datetime | None = None) -> None:
    """Forget every attempt on these keys (the account's owner logged in)."""
    now = now or utcnow()
    with _after_check(db) as conn:
        for key in _keys(keys):
            _write(conn, key, 0, now, now)


def waiting(db: Session, key: Key, now: dt.datetime | None = None) -> int | None:
    """Seconds ``key`` must still wait, or None (for tests and status pages)."""
    now = now or utcnow()
    row = db.get(ThrottleCounter, (key[0], key[1][:KEY_LENGTH]))
    if row is None or _aware(row.next_at) <= now:
        return None
    return max(1, math.ceil((_aware(row.next_at) - now).total_seconds()))


#: rows quiet for longer than this are deleted by :func:`purge` (every policy's count
#: has leaked away long before; the addresses in them are personal data)
QUIET_DAYS = 2


def purge(db: Session, *, now: dt.datetime, settings: Mapping[str, Any],
          dry_run: bool) -> dict[str, int]:
    """Delete throttle rows quiet for ``QUIET_DAYS`` (retention contract: idempotent,
    counts by kind, nothing changed with ``dry_run``, no commit)."""
    table = ThrottleCounter.__table__
    stale = table.c.last_at < now - dt.timedelta(days=QUIET_DAYS)
    if dry_run:
        count = db.scalar(sa.select(sa.func.count()).select_from(table).where(stale)) or 0
    else:
        count = db.execute(table.delete().where(stale)).rowcount or 0
    return {"throttle_counters_deleted": count}


def includeme(config: Any) -> None:
    """Parse the policy settings once (``registry.throttle_policies``)."""
    config.registry.throttle_policies = policy_overrides(config.registry.settings)
