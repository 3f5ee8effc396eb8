"""Pyramid wiring for the two databases: ``request.dbsession`` and ``request.monitoring_db``."""
from __future__ import annotations

from typing import Any

from .db import make_engine, session_factory, tm_session


def includeme(config: Any) -> None:
    settings = config.registry.settings
    settings.setdefault("tm.manager_hook", "pyramid_tm.explicit_manager")
    settings.setdefault("retry.attempts", 3)
    pool = int(settings.get("sqlalchemy.pool_size", 10))
    engine = make_engine(settings["sqlalchemy.url"], pool_size=pool)
    if settings["monitoring.sqlalchemy.url"] == settings["sqlalchemy.url"]:
        monitoring_engine = engine
    else:
        monitoring_engine = make_engine(settings["monitoring.sqlalchemy.url"], pool_size=pool)
    config.registry.engine = engine
    config.registry.monitoring_engine = monitoring_engine
    config.registry.dbsession_factory = session_factory(engine)
    config.registry.monitoring_session_factory = session_factory(monitoring_engine)
    config.add_request_method(
        lambda r: tm_session(r.registry.dbsession_factory, r.tm), "dbsession", reify=True)
    config.add_request_method(
        lambda r: tm_session(r.registry.monitoring_session_factory, r.tm), "monitoring_db",
        reify=True)
