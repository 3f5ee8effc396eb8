"""``learningcity monitoring ...``: aggregate a campaign into the monitoring database,
list and save indicator definitions."""
from __future__ import annotations

import getpass
from typing import Any

import click

from learningcity.cli import ini_option, load_app_settings


def _actor(actor: str | None) -> str:
    return actor or f"cli:{getpass.getuser()}"


actor_option = click.option("--as", "actor", default=None,
                            help="Name recorded in the audit trail (default cli:<login>).")


def _sessions(ini_path: str) -> tuple[Any, Any]:
    """Sessions on the main and the monitoring database (one engine when they are the same)."""
    from learningcity.db import make_engine, session_factory

    settings = load_app_settings(ini_path)
    engine = make_engine(settings["sqlalchemy.url"])
    murl = settings.get("monitoring.sqlalchemy.url") or settings["sqlalchemy.url"]
    mengine = engine if murl == settings["sqlalchemy.url"] else make_engine(murl)
    return session_factory(engine)(), session_factory(mengine)()


@click.group()
def monitoring() -> None:
    """Monitoring: aggregates for the monitoring database, indicator definitions."""


@monitoring.command("aggregate")
@ini_option
@actor_option
@click.option("--campaign", "campaign_code", required=True, help="Campaign code.")
def aggregate_cmd(ini_path: str, actor: str | None, campaign_code: str) -> None:
    """Write CAMPAIGN's group-level aggregates to the monitoring database (idempotent)."""
    from tqdm import tqdm

    from .aggregate import AggregationError, aggregate_campaign

    db, mdb = _sessions(ini_path)
    bar = tqdm(desc=f"aggregating {campaign_code}", unit=" measures")

    def progress(message: str) -> None:
        bar.set_postfix_str(message)
        bar.update(1)

    try:
        summary = aggregate_campaign(db, mdb, campaign_code, actor=_actor(actor),
                                     progress=progress)
        mdb.commit()
        db.commit()  # the aggregates went through it when both databases are one
    except (AggregationError, ValueError) as exc:
        mdb.rollback()
        db.rollback()
        raise click.ClickException(f"campaign {campaign_code}: {exc}") from None
    finally:
        bar.close()
        db.close()
        mdb.close()
    click.echo(summary.text())


@monitoring.command("indicators")
@ini_option
def indicators_cmd(ini_path: str) -> None:
    """List the indicator definitions in force (built-in and saved)."""
    from learningcity.cli import open_session

    from .indicators import load_catalogue

    db = open_session(ini_path)
    try:
        cat = load_catalogue(db)
    finally:
        db.close()
    for ind in cat:
        origin = "built-in" if ind.builtin else "saved"
        click.echo(f"{ind.code}\t{ind.kind}\t{ind.target_text or '-'}\t{origin}\t{ind.name_en}")
        click.echo(f"    expression: {ind.expression}")
        if ind.population:
            click.echo(f"    population: {ind.population}")


@monitoring.command("indicator-set")
@ini_option
@actor_option
@click.argument("code")
@click.option("--name-zh", required=True)
@click.option("--name-en", required=True)
@click.option("--expression", required=True, help="Condition over a respondent's answers.")
@click.option("--population", default="", help="Who the indicator applies to (a condition).")
@click.option("--kind", type=click.Choice(["person", "frame"]), default="person",
              show_default=True)
@click.option("--target", type=float, default=None, help="Target share, e.g. 0.55.")
@click.option("--direction", type=click.Choice([">", ">=", "<", "<="]), default=">=",
              show_default=True)
def indicator_set_cmd(ini_path: str, actor: str | None, code: str, name_zh: str,
                      name_en: str, expression: str, population: str, kind: str,
                      target: float | None, direction: str) -> None:
    """Add or replace the indicator CODE (checked first: nothing is saved on a problem)."""
    from learningcity.cli import db_session

    from .indicator_models import save_indicator
    from .indicators import Indicator

    ind = Indicator(code=code, name_zh=name_zh, name_en=name_en, expression=expression,
                    population=population, kind=kind, target=target, direction=direction)
    with db_session(ini_path) as db:
        save_indicator(db, ind, _actor(actor))
    click.echo(f"indicator {code} saved")
