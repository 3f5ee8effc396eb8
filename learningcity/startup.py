"""What happens once when the app starts: migrations on the embedded default, demo content."""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import transaction

from . import db


def load_demo_content(registry: Any) -> list[str]:
    """Run every package's demo loader (entry-point group ``learningcity.demo``).

    Loaders must be idempotent: they add what is missing and leave the rest alone.
    """
    loaded = []
    for ep in sorted(entry_points(group="learningcity.demo"), key=lambda e: e.name):
        loader = ep.load()
        manager = transaction.TransactionManager(explicit=True)
        with manager:
            loader(db.tm_session(registry.dbsession_factory, manager))
        loaded.append(ep.name)
    return loaded


def includeme(config: Any) -> None:
    settings = config.registry.settings
    if settings["learningcity.auto_migrate"]:
        db.upgrade(settings["sqlalchemy.url"], settings["monitoring.sqlalchemy.url"])
    if settings["learningcity.demo_content"]:
        load_demo_content(config.registry)
