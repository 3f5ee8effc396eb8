"""``learningcity archive build|verify``: the yearly learning-city archive from the
command line (registered in setup.cfg ``learningcity.commands`` as ``archive``).

``build --year 2025 --out DIR`` writes ``DIR/learning-city-archive-2025/`` (progress on
stderr, an ``archive.build`` audit event) and refuses an existing non-empty bundle;
``verify DIR`` recomputes every checksum and prints each changed, missing or extra file,
exiting 1 when there is any.
"""
from __future__ import annotations

import getpass
from pathlib import Path

import click

from learningcity.cli import ini_option, load_app_settings
from learningcity.db import make_engine, session_factory
from learningcity.settings import app_settings
from monitoring.archive import bundle


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "cli"


@click.group()
def archive() -> None:
    """The yearly learning-city archive: build a dated bundle, verify its checksums."""


@archive.command("build")
@ini_option
@click.option("--as", "actor", default=None,
              help="Name recorded in the audit trail (default cli:<login>).")
@click.option("--year", type=int, required=True, help="The year the archive covers.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory in which learning-city-archive-YEAR/ is written.")
def build_cmd(ini_path: str, actor: str | None, year: int, out: Path) -> None:
    """Build the archive of one year (never into an existing non-empty bundle)."""
    from learningcity import audit  # start-up cost: the ORM, wanted only when building

    settings = app_settings(load_app_settings(ini_path))
    engine = make_engine(settings.database_url)
    mengine = (make_engine(settings.monitoring_url) if settings.separate_monitoring_database
               else engine)
    db, mdb = session_factory(engine)(), session_factory(mengine)()
    try:
        try:
            manifest = bundle.build_archive(
                bundle.ArchiveSessions(db, mdb), year, out,
                progress=lambda m: click.echo(m, err=True))
        except (bundle.ArchiveExists, bundle.ArchiveError) as exc:
            raise click.ClickException(str(exc)) from None
        audit.record(db, actor=_actor(actor), action="archive.build",
                     target=manifest.directory.name,
                     detail={"year": year, "files": len(manifest.files), "via": "cli",
                             "built_at": manifest.built_at})
        db.commit()
    finally:
        db.close()
        mdb.close()
    click.echo(f"{manifest.directory}: {len(manifest.files)} files")


@archive.command("verify")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
def verify_cmd(directory: Path) -> None:
    """Recompute every checksum of a bundle; exit 1 on any changed, missing or extra file."""
    problems = bundle.verify_archive(directory)
    for line in problems:
        click.echo(line, err=True)
    if problems:
        raise SystemExit(1)
    click.echo(f"{directory}: verified")
