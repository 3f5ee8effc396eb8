"""The Alembic migrations build exactly the schema the models declare, on both backends."""
from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from learningcity import db


def schema_differences(url: str, metadata: sa.MetaData, version_table: str,
                       target: str = "main") -> list:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True, "version_table": version_table,
                "include_name": db.include_name_for(target)})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_migrations_match_models(db_url) -> None:
    db.load_models()
    for target, (_folder, version_table, metadata) in db.TARGETS.items():
        diff = schema_differences(db_url, metadata(), version_table, target)
        assert diff == [], f"{target}: models and migrations disagree: {diff}"


def test_the_check_notices_a_model_without_migration(db_url) -> None:
    """The check above can fail: a table declared only in the models is reported."""
    db.load_models()
    extended = sa.MetaData(naming_convention=db.NAMING_CONVENTION)
    for table in db.Base.metadata.tables.values():
        table.to_metadata(extended)
    sa.Table("not_migrated", extended, sa.Column("id", sa.Integer, primary_key=True))
    diff = schema_differences(db_url, extended, "alembic_version")
    added = [d[1].name for d in diff if isinstance(d, tuple) and d[0] == "add_table"]
    assert added == ["not_migrated"], diff


def test_upgrade_is_idempotent(db_url) -> None:
    db.upgrade(db_url)  # already at head: nothing to do, no error
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()


def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()
