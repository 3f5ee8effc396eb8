"""The application shell: app factory, settings, database session, security, i18n, API.

Read :func:`main` to see the whole system: it composes the domain packages with
``config.include``; each package adds its own routes, views, API paths and
command-line subcommands.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

#: css, images and scripts served to phones (top-level ``static/``)
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
#: The domain packages, each a Pyramid add-on with ``includeme(config)``.
DOMAIN_PACKAGES: tuple[str, ...] = ("itembank", "assessment", "surveys", "monitoring")


def asset(request: Any, path: str) -> str:
    """The URL path of a file under ``static/`` (``request.asset('css/app.css')``),
    worked out once per file and mount point: every page links two or three."""
    known = request.registry.setdefault("asset_paths", {})
    key = (request.script_name, path)
    found = known.get(key)
    if found is None:
        found = known[key] = request.static_path(str(STATIC_DIR / path))
    return found


def main(global_config: dict[str, Any] | None = None, **settings: Any) -> Any:
    """Build the WSGI application (the ``paste.app_factory`` behind pserve)."""
    # start-up cost: every learningcity command imports this package; pyramid's
    # configurator (0.17 s) and the settings module with the database plumbing it loads
    # (0.33 s) are only the app's
    from pyramid.config import Configurator

    from .settings import load_settings

    settings = load_settings(settings)
    with Configurator(settings=settings) as config:
        config.include(".settings")
        config.include("pyramid_chameleon")
        config.include("pyramid_tm")
        config.include("pyramid_retry")
        config.include(".database")
        config.include(".clientaddr")
        config.include(".throttle")
        config.include(".security")
        config.include(".i18n")
        config.include(".display")
        config.include(".api")
        config.include(".limits")
        config.include(".templating")
        config.include(".views")
        for package in DOMAIN_PACKAGES:
            config.include(package)
        config.add_static_view("static", str(STATIC_DIR), cache_max_age=86400)
        config.add_request_method(asset, "asset")
        config.include(".startup")
    return config.make_wsgi_app()
