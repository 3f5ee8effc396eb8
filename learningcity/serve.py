"""``learningcity serve``: the app under gunicorn with several worker processes.

    learningcity serve --ini production.ini --workers 2 --bind 127.0.0.1:6543

Gunicorn settings come from the ``[server:main]`` section of the .ini when it says
``use = egg:gunicorn#main`` (production.ini does, so ``pserve production.ini`` serves
the same way); the options given here override them. Each worker builds the app
itself (no preloading), so no database connection is ever shared across a fork;
``post_fork`` also drops any pooled connection a preloading master (pserve) made.

Every ``learningcity`` command imports this module, so gunicorn, paste.deploy and the
app are imported inside ``serve`` (a start-up cost only that command should pay).
"""
from __future__ import annotations

import configparser
import os
import weakref
from typing import Any

import click

#: engines created in this process (see :func:`track_engine`), disposed after a fork
_ENGINES: weakref.WeakSet[Any] = weakref.WeakSet()

#: gunicorn defaults when neither the .ini nor the command line says otherwise
DEFAULTS = {
    "worker_class": "gthread",
    "threads": "4",
    "timeout": "30",
    "graceful_timeout": "20",
    "keepalive": "5",
    "max_requests": "5000",
    "max_requests_jitter": "500",
}
_NOT_GUNICORN = {"use", "host", "port", "listen", "config"}


def track_engine(engine: Any) -> None:
    """Remember an engine so a forked worker can drop the parent's pooled connections."""
    _ENGINES.add(engine)


def post_fork(server: Any, worker: Any) -> None:
    """Gunicorn hook: a forked worker must not reuse connections opened by its parent."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)


def server_options(ini_path: str) -> dict[str, str]:
    """Gunicorn settings from the ``[server:main]`` section (when it is gunicorn's)."""
    parser = configparser.ConfigParser(defaults={"here": os.path.dirname(
        os.path.abspath(ini_path))}, interpolation=configparser.BasicInterpolation())
    parser.read(ini_path)
    if not parser.has_section("server:main"):
        return {}
    section = dict(parser.items("server:main"))
    if "gunicorn" not in section.get("use", ""):
        return {}
    options = {k: v for k, v in section.items() if k not in _NOT_GUNICORN and k != "here"}
    if section.get("host") and section.get("port"):
        options["bind"] = f"{section['host']}:{section['port']}"
    return options


def gunicorn_options(ini_path: str, workers: int | None = None, bind: str | None = None,
                     threads: int | None = None) -> dict[str, Any]:
    """The effective gunicorn settings: defaults < .ini ``[server:main]`` < command line."""
    options: dict[str, Any] = dict(DEFAULTS)
    options.update(server_options(ini_path))
    for key, value in (("workers", workers), ("bind", bind), ("threads", threads)):
        if value is not None:
            options[key] = str(value)
    options.setdefault("workers", "2")
    options.setdefault("bind", "127.0.0.1:6543")
    options.setdefault("post_fork", "learningcity.serve.post_fork")
    parser = configparser.ConfigParser()
    parser.read(ini_path)
    if parser.has_section("loggers"):
        options.setdefault("logconfig", ini_path)
    # start-up cost: only `learningcity serve` needs it (module docstring)
    from gunicorn.config import KNOWN_SETTINGS

    unknown = sorted(set(options) - {s.name for s in KNOWN_SETTINGS})
    if unknown:
        raise click.ClickException(f"{ini_path} [server:main]: not gunicorn settings: "
                                   f"{', '.join(unknown)}")
    return options


def run(ini_path: str, options: dict[str, Any]) -> None:
    """Run gunicorn in the foreground until it is stopped (SIGTERM: graceful)."""
    # start-up cost: only `learningcity serve` needs it (module docstring)
    from gunicorn.app.base import BaseApplication

    ini_abs = os.path.abspath(ini_path)

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():  # names checked by gunicorn_options
                self.cfg.set(key.lower(), value)
            self.cfg.set("default_proc_name", f"learningcity:{os.path.basename(ini_path)}")

        def load(self) -> Any:
            # start-up cost: only `learningcity serve` needs it (module docstring)
            from paste.deploy import loadapp

            return loadapp(f"config:{ini_abs}")

    Application().run()


@click.command()
@click.option("--ini", "ini_path", default="production.ini", show_default=True,
              type=click.Path(dir_okay=False), help="Settings file (environment overrides "
              "apply).")
@click.option("--workers", "-w", type=click.IntRange(1, 64), default=None,
              help="Worker processes (default from the .ini, else 2).")
@click.option("--threads", type=click.IntRange(1, 64), default=None,
              help="Threads per worker (default from the .ini, else 4).")
@click.option("--bind", "-b", default=None, help="HOST:PORT to listen on "
              "(default from the .ini, else 127.0.0.1:6543).")
@click.option("--check", is_flag=True, help="Print the effective settings and exit.")
def serve(ini_path: str, workers: int | None, threads: int | None, bind: str | None,
          check: bool) -> None:
    """Serve the app with gunicorn (several workers) for production."""
    if not os.path.exists(ini_path):
        raise click.ClickException(f"{ini_path}: settings file not found (use --ini)")
    # start-up cost: only `learningcity serve` needs it (module docstring)
    from pyramid.exceptions import ConfigurationError

    from .cli import load_app_settings

    try:  # fail here, in the foreground, on a missing secret or database URL
        load_app_settings(ini_path)
    except (ConfigurationError, ValueError) as exc:
        raise click.ClickException(f"{ini_path}: {exc}") from None
    options = gunicorn_options(ini_path, workers=workers, bind=bind, threads=threads)
    if check:
        for key in sorted(options):
            click.echo(f"{key} = {options[key]}")
        return
    run(ini_path, options)
