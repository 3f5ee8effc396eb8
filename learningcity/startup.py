"""What happens once when the app starts: migrations on the embedded default, demo content,
the CJK font for charts."""
from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

import transaction
from pyramid.settings import asbool

from . import db, fonts

log = logging.getLogger(__name__)


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


def check_cjk_font(settings: dict[str, Any]) -> str | None:
    """Register the CJK font for charts; without one, refuse to start when
    ``learningcity.require_cjk_font`` is true (production), else log a warning.

    Returns the font's family name, or None when there is none."""
    family = fonts.register_cjk_font()
    if family is None:
        if asbool(settings.get("learningcity.require_cjk_font", False)):
            fonts.require_cjk_font()  # raises MissingCJKFont naming what to install
            raise fonts.MissingCJKFont(  # a font file was found but matplotlib cannot read it
                f"the CJK font {fonts.cjk_font_path()} cannot be read by matplotlib; "
                f"install another ({fonts.INSTALL_HINT})")
        log.warning("no CJK font: charts will draw Chinese as empty boxes (%s)",
                    fonts.INSTALL_HINT)
    return family


def includeme(config: Any) -> None:
    settings = config.registry.settings
    check_cjk_font(settings)
    if settings["learningcity.auto_migrate"]:
        db.upgrade(settings["sqlalchemy.url"], settings["monitoring.sqlalchemy.url"])
    if settings["learningcity.demo_content"]:
        load_demo_content(config.registry)
