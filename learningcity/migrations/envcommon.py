"""Shared Alembic environment for the main and the monitoring database."""
from __future__ import annotations

from alembic import context

from learningcity import db


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
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = db.make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
