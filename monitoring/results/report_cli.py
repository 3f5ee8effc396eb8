"""``learningcity monitoring report``: the yearly monitoring report as PDF or HTML."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from learningcity.cli import ini_option, load_app_settings
from learningcity.db import make_engine, session_factory
from learningcity.settings import app_settings


def _sessions(ini_path: str) -> tuple[Any, Any]:
    """Sessions on the main database (district names) and the monitoring database."""
    settings = app_settings(load_app_settings(ini_path))
    engine = make_engine(settings.database_url)
    mengine = (make_engine(settings.monitoring_url) if settings.separate_monitoring_database
               else engine)
    return session_factory(engine)(), session_factory(mengine)()


@click.command("report")
@ini_option
@click.option("--year", type=int, required=True, help="Campaign year the report covers.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write: .pdf or .html.")
@click.option("--lang", default="zh", show_default=True, help="zh (zh-CN) or en.")
def report(ini_path: str, year: int, out: Path, lang: str) -> None:
    """Write the monitoring report of one campaign year (every district)."""
    from learningcity.districts import list_districts  # start-up
    from learningcity.i18n import normalise  # start-up
    from monitoring.results import dashboard  # start-up
    from monitoring.results import report as service  # start-up

    locale = normalise("zh-CN" if lang == "zh" else lang)
    if locale is None:
        raise click.BadParameter("zh or en", param_hint="--lang")
    if out.suffix.lower() not in (".pdf", ".html", ".htm"):
        raise click.BadParameter("a .pdf or .html file", param_hint="--out")
    db, mdb = _sessions(ini_path)
    try:
        names = {d.code: d.name(locale) for d in list_districts(db)}
        try:
            document = service.build_report_html(mdb, dashboard.Scope(None), year, locale,
                                                 names, main_db=db)
        except service.ReportError as exc:
            raise click.ClickException(str(exc)) from None
        if out.suffix.lower() == ".pdf":
            service.write_pdf(document, out)
        else:
            out.write_text(document, encoding="utf-8")
    finally:
        db.close()
        mdb.close()
    click.echo(f"report {year} written to {out}")
