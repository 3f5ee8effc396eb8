"""Insert rows unless a unique key already holds them (``INSERT ... ON CONFLICT DO NOTHING``).

Concurrent requests that would create the same row (two "issue invitations" posts, two
new campaigns taking the same code) then need no savepoint and no retry loop around an
IntegrityError: the database decides, the loser's rows are skipped, and the caller
learns which rows it really inserted. SQLite (3.35+) and PostgreSQL both support it; on
PostgreSQL a conflicting insert waits for the other transaction and skips once it
commits, on SQLite writers are serialised by the database lock.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_new(db: Session, model: Any, rows: Sequence[dict[str, Any]], *,
               key: Sequence[str], where: str | None = None,
               returning: Sequence[Any]) -> list[sa.Row]:
    """Insert ``rows`` into ``model``'s table, skipping each row whose ``key`` columns
    (a unique constraint, or a partial unique index with predicate ``where``) are taken.

    Returns the ``returning`` columns of the rows inserted, in no particular order.
    Conflicts on other unique columns still raise.
    """
    if not rows:
        return []
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        statement = postgresql.insert(model)
    elif dialect == "sqlite":
        statement = sqlite.insert(model)
    else:  # pragma: no cover - the two supported backends
        raise RuntimeError(f"insert_new: unsupported database {dialect!r}")
    statement = statement.on_conflict_do_nothing(
        index_elements=list(key), index_where=sa.text(where) if where else None)
    db.flush()  # pending ORM changes first, as a query would
    return list(db.execute(statement.values(list(rows)).returning(*returning)))
