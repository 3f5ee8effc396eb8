"""``learningcity retention purge``: delete or de-identify person-level data past retention.

Each package that keeps person-level data registers a purger in the entry-point group
``learningcity.retention`` (setup.cfg): ``purge(db, *, now, settings, dry_run)`` returning
counts by kind, idempotent, not committing. This command runs every purger in one
transaction on the main database, records one ``retention.purge`` audit event (the real
actor, the counts, the dry-run flag) and prints the counts. It is safe to run daily.

A purger that cannot be loaded is reported by name and makes the command exit non-zero;
the others still run and are committed (their deletions are due whatever the missing one
does). A purger that fails rolls everything back.
"""
from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

import click

from .settings import whole_number

GROUP = "learningcity.retention"
ACTION = "retention.purge"
#: ``assessment.retention_years`` when unset: what the consent screens promise
DEFAULT_YEARS = 3


def retention_years(settings: Mapping[str, Any], *keys: str) -> int:
    """The first of ``keys`` that is set, else ``assessment.retention_years``, else 3
    (at least 1): the one reading of the retention period every purger uses."""
    for key in (*keys, "assessment.retention_years"):
        if str(settings.get(key) or "").strip():
            return whole_number(settings, key, DEFAULT_YEARS, 1)
    return DEFAULT_YEARS


def years_before(now: dt.datetime, years: int) -> dt.datetime:
    """The same moment ``years`` calendar years earlier (29 February -> 28 February)."""
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)

Purger = Callable[..., Mapping[str, int]]


class PurgerUnavailable(Exception):
    """A registered purger whose module or function cannot be loaded."""


class PurgeFailed(Exception):
    """A purger raised an error: the whole purge is rolled back."""


def _unavailable(name: str, exc: Exception) -> Purger:
    def purge(*_args: Any, **_kwargs: Any) -> Mapping[str, int]:
        raise PurgerUnavailable(f"{name}: cannot be loaded ({type(exc).__name__}: {exc})")

    return purge


def purgers() -> dict[str, Purger]:
    """Name -> purge function of every registered purger, by name (one that cannot be
    loaded is a function raising :class:`PurgerUnavailable`)."""
    out: dict[str, Purger] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            out[ep.name] = ep.load()
        except Exception as exc:  # an ImportError or AttributeError: reported by name
            out[ep.name] = _unavailable(ep.name, exc)
    return out


def run_purge(db: Any, *, now: dt.datetime, settings: Mapping[str, Any], dry_run: bool,
              actor: str) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Run every purger on ``db`` and record the audit event; returns the counts by purger
    and the names that could not be loaded. Does not commit."""
    # start-up cost: the audit model loads SQLAlchemy, wanted only when a purge runs
    from . import audit

    counts: dict[str, dict[str, int]] = {}
    unavailable: list[str] = []
    for name, purge in purgers().items():
        try:
            found = purge(db, now=now, settings=settings, dry_run=dry_run)
        except PurgerUnavailable:
            unavailable.append(name)
            continue
        except Exception as exc:  # any failure: the caller rolls the transaction back
            raise PurgeFailed(f"purger {name!r} failed: {type(exc).__name__}: {exc}") from exc
        counts[name] = {str(k): int(v) for k, v in dict(found).items()}
    audit.record(db, actor=actor, action=ACTION, target="",
                 detail={"dry_run": dry_run, "now": now.isoformat(), "counts": counts,
                         "unavailable": unavailable})
    db.flush()
    return counts, unavailable


def _when(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime.now(dt.UTC)
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date or date-time",
                                 param_hint="--now") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


@click.group()
def retention() -> None:
    """Retention of residents' data: purge what is past its retention period."""


@retention.command("purge")
@click.option("--ini", "ini_path", default="development.ini", show_default=True,
              type=click.Path(dir_okay=False),
              help="Settings file (environment overrides apply).")
@click.option("--dry-run", is_flag=True,
              help="Count what would be deleted or de-identified; change nothing.")
@click.option("--now", "now_text", default=None, metavar="ISO-DATE",
              help="Treat this moment as now (for tests and catch-up runs).")
@click.option("--actor", default=None,
              help="Who runs the purge (audited; default: the operating-system user).")
def purge_command(ini_path: str, dry_run: bool, now_text: str | None,
                  actor: str | None) -> None:
    """Delete or de-identify person-level data past its retention, in one transaction."""
    # start-up cost: the settings and the database are loaded only when the command runs
    from .cli import load_app_settings, open_session

    now = _when(now_text)
    settings = load_app_settings(ini_path)
    db = open_session(ini_path)
    try:
        counts, unavailable = run_purge(db, now=now, settings=settings, dry_run=dry_run,
                                        actor=actor or getpass.getuser())
        db.commit()  # a dry run commits only its audit event
    except PurgeFailed as exc:
        db.rollback()
        raise click.ClickException(f"{exc}; nothing was changed") from None
    finally:
        db.close()
    prefix = "would " if dry_run else ""
    for name, found in counts.items():
        for kind, n in found.items():
            click.echo(f"{name}\t{kind}\t{n}")
    total = sum(n for found in counts.values() for n in found.values())
    click.echo(f"{prefix}purge: {total} in all" + (" (dry run: nothing changed)"
                                                  if dry_run else ""))
    if unavailable:
        for name in unavailable:
            click.echo(f"error: purger {name!r} could not be loaded; its data was not "
                       "purged", err=True)
        raise SystemExit(1)
