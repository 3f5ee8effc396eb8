"""Shared Alembic environment for the main and the monitoring database."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic import context

from learningcity import db


@contextmanager
def _sqlite_keys_off(connection: Any) -> Iterator[None]:
    """On SQLite, foreign keys off while migrating (as Alembic's batch mode needs): a
    batch migration rebuilds a table (copy, drop, rename), and with keys on, dropping the
    old table deletes every row pointing at it through ON DELETE CASCADE (a survey
    session's answers and scale scores). Afterwards the keys are checked and back on.
    The PRAGMA has no effect inside a transaction, so it runs before and after one."""
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"the migration left rows without their parents: {broken[:5]}")
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def run() -> None:
    config = context.config
    target = config.attributes.get("target", "main")
    version_table = config.attributes.get("version_table", "alembic_version")
    db.load_models()
    metadata = db.TARGETS[target][2]()
    url = config.get_main_option("sqlalchemy.url")
    options = dict(target_metadata=metadata, version_table=version_table,
                   compare_type=True, include_name=db.include_name_for(target),
                   render_as_batch=url.startswith("sqlite"))
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **options)
        with _sqlite_keys_off(connection), context.begin_transaction():
            context.run_migrations()
        return
    engine = db.make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        with _sqlite_keys_off(connection), context.begin_transaction():
            context.run_migrations()
    engine.dispose()
