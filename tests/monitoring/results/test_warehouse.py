"""The monitoring database's tables: migrated as modelled, and guarding suppression."""
from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from monitoring.results.warehouse import AGGREGATE_COLUMNS, Aggregate, MonitoringRun


def test_migrations_create_the_modelled_tables(dbsession: Any) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from learningcity import db

    db.load_models()
    mine = {"monitoring_run", "monitoring_aggregate", "indicator_definition"}
    conn = dbsession.connection()
    insp = sa.inspect(conn)
    assert mine <= set(insp.get_table_names())
    assert [c["name"] for c in insp.get_columns("monitoring_aggregate")] == list(
        AGGREGATE_COLUMNS)
    for target in ("main", "monitoring"):
        _folder, _vt, metadata = db.TARGETS[target]
        ctx = MigrationContext.configure(conn, opts={
            "include_name": db.include_name_for(target), "compare_type": True})
        diffs = [d for d in compare_metadata(ctx, metadata()) if mine & _tables(d)]
        assert diffs == [], diffs


def _tables(diff: Any) -> set[str]:
    """Table names a diff entry is about (entries are tuples, or lists of tuples)."""
    items = diff if isinstance(diff, list) else [diff]
    names = set()
    for item in items:
        for part in item:
            name = getattr(part, "name", None) if not isinstance(part, str) else part
            table = getattr(part, "table", None)
            if table is not None:
                names.add(table.name)
            if isinstance(name, str):
                names.add(name)
    return names


def _cell(**kw: Any) -> Aggregate:
    base = {"campaign": "C1", "measure": "m", "kind": "share", "dimension": "all",
            "group_value": "", "district": "A", "n": 12, "suppressed": True,
            "suppression_reason": "small_n", "method": "taylor"}
    return Aggregate(**{**base, **kw})


def test_a_suppressed_row_cannot_carry_numbers(dbsession: Any) -> None:
    dbsession.add(_cell(estimate=0.4, se=0.1))
    with pytest.raises(IntegrityError):
        dbsession.flush()
    dbsession.rollback()
    dbsession.add(_cell())
    dbsession.commit()
    assert dbsession.scalar(sa.select(Aggregate.estimate)) is None


def test_one_row_per_cell(dbsession: Any) -> None:
    dbsession.add(_cell())
    dbsession.add(_cell())
    with pytest.raises(IntegrityError):
        dbsession.flush()
    dbsession.rollback()
    dbsession.add(MonitoringRun(campaign="C1", min_n=30))
    dbsession.add(MonitoringRun(campaign="C1", min_n=30))
    with pytest.raises(IntegrityError):
        dbsession.flush()
    dbsession.rollback()
