"""The monitoring command line: ``learningcity monitoring``, ``campaign`` and ``margins``.

* ``monitoring``: aggregate a campaign into the monitoring database, export the staff
  pages' tables (CSV, XLSX, SPSS), list and save indicator definitions;
* ``campaign``: campaigns from the command line (administrators): create, frame, design,
  draw, invitations, progress, close, the analysis file of a closed campaign;
* ``margins``: population margins for weighting: upload, list, activate, weigh.

Every command takes ``--ini`` and ``--as`` names the actor in the audit trail
(default ``cli:<login>``); each database is opened one way (:func:`main_session`,
:func:`monitoring_session`). A refused request prints every problem (file, row,
column) and exits with status 1 without changing anything.

Commands import their services when they run, not at module level: ``learningcity
--help`` loads every package's command groups, and the services pull in pandas, scipy,
matplotlib and the ORM. Measured (three runs): ``import monitoring.cli`` 0.39-0.56 s,
with the services it runs 1.94-2.04 s; each such import is marked ``# start-up``.
"""
from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from learningcity.cli import db_session, ini_option, load_app_settings, open_session
from learningcity.db import make_engine, session_factory
from learningcity.settings import app_settings
from monitoring.results import report_cli


def _actor(actor: str | None) -> str:
    """The name recorded in the audit trail: ``--as`` or ``cli:<login>``."""
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "cli"


actor_option = click.option("--as", "actor", default=None,
                            help="Name recorded in the audit trail (default cli:<login>).")
quiet_option = click.option("--quiet", is_flag=True,
                            help="No progress bar or messages on stderr (for scripts).")


def monitoring_session(ini_path: str) -> Any:
    """A session on the monitoring database (the main database unless it has its own URL)."""
    settings = app_settings(load_app_settings(ini_path))
    return session_factory(make_engine(settings.monitoring_url))()


def _both_sessions(ini_path: str) -> tuple[Any, Any]:
    """Sessions on the main and the monitoring database (one engine when they are the same)."""
    settings = app_settings(load_app_settings(ini_path))
    engine = make_engine(settings.database_url)
    mengine = (make_engine(settings.monitoring_url) if settings.separate_monitoring_database
               else engine)
    return session_factory(engine)(), session_factory(mengine)()


# ------------------------------------------------------------------ monitoring

@click.group()
def monitoring() -> None:
    """Monitoring: aggregates for the monitoring database, indicator definitions."""


@monitoring.command("aggregate")
@ini_option
@actor_option
@click.option("--campaign", "campaign_code", required=True, help="Campaign code.")
def aggregate_cmd(ini_path: str, actor: str | None, campaign_code: str) -> None:
    """Write CAMPAIGN's group-level aggregates to the monitoring database (idempotent)."""
    from tqdm import tqdm  # start-up

    from monitoring.results.aggregate import AggregationError, aggregate_campaign  # start-up

    db, mdb = _both_sessions(ini_path)
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


@monitoring.command("export")
@ini_option
@actor_option
@click.option("--campaign", "campaign_code", default=None, help="Campaign code.")
@click.option("--latest", is_flag=True, help="The most recently closed aggregated campaign.")
@click.option("--table", "table_name", required=True,
              type=click.Choice(["overview", "groups", "trends", "districts"]))
@click.option("--format", "fmt", required=True, type=click.Choice(["csv", "xlsx", "sav"]))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--measure", default=None, help="groups, trends: the measure (default: the first).")
@click.option("--dimension", default="group", show_default=True,
              help="groups: all, district, group, age_band, sex or group_x_district.")
@click.option("--lang", default="zh-CN", show_default=True, help="zh-CN or en.")
def export_cmd(ini_path: str, actor: str | None, campaign_code: str | None, latest: bool,
               table_name: str, fmt: str, out: Path, measure: str | None, dimension: str,
               lang: str) -> None:
    """Write a monitoring table as the staff pages download it (CSV, XLSX or SPSS .sav).

    ``groups`` is one campaign's measure across groups; ``overview``, ``districts`` and
    ``trends`` span campaigns as on the pages, and with --campaign/--latest keep only that
    campaign's rows. The download is audited as on the pages.

    One header row (variable names) in every format; the labels in --lang are in the
    XLSX's ``codebook`` sheet, in ``<out>-codebook.csv`` beside a CSV, and in the .sav's
    variable and value labels.
    """
    from learningcity import audit  # start-up
    from learningcity.districts import list_districts  # start-up
    from learningcity.i18n import normalise, translator  # start-up
    from monitoring.results import dashboard, exports  # start-up
    from scoring.io import atomic_write  # start-up

    if campaign_code and latest:
        raise click.UsageError("give --campaign or --latest, not both")
    db, mdb = _both_sessions(ini_path)
    try:
        scope = dashboard.Scope(None)
        runs = dashboard.campaigns(mdb, scope)
        if latest:
            if not runs:
                raise click.ClickException("the monitoring database has no campaign yet")
            campaign_code = runs[0].campaign
        if campaign_code and campaign_code not in {r.campaign for r in runs}:
            raise click.ClickException(f"campaign {campaign_code!r} has no aggregates in the "
                                       "monitoring database (aggregate it first)")
        locale = normalise(lang)
        if locale is None:
            raise click.BadParameter("zh-CN or en", param_hint="--lang")
        params = {"campaign": campaign_code or "", "measure": measure or "",
                  "dimension": dimension}
        try:
            table = dashboard.table(table_name, mdb, scope, params, locale)
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        if campaign_code and table_name != "groups":
            table.rows = [r for r in table.rows if r.get("campaign") == campaign_code]
            table.params = {**table.params, "campaign": campaign_code}
        names = {d.code: d.name(locale) for d in list_districts(db)}
        translate = translator(locale, ("learningcity", "monitoring"))
        body = exports.export(table, fmt, translate, names)
        with atomic_write(out, "wb") as fh:
            fh.write(body)
        codebook = None
        if fmt == "csv":  # one header row: the labels go to a companion codebook
            codebook = out.with_name(f"{out.stem}-codebook.csv")
            with atomic_write(codebook, "wb") as fh:
                fh.write(exports.export(table, "codebook", translate, names))
        audit.record(db, actor=_actor(actor), action="monitoring.download",
                     target=f"{table_name}.{fmt}", detail={"params": table.params,
                                                          "rows": len(table.rows),
                                                          "scope": "all", "via": "cli"})
        db.commit()
    finally:
        db.close()
        mdb.close()
    click.echo(f"{out}: {len(table.rows)} rows ({table_name}, {fmt})"
               + (f"; labels in {codebook}" if codebook else ""))


@monitoring.command("indicators")
@ini_option
def indicators_cmd(ini_path: str) -> None:
    """List the indicator definitions in force (built-in and saved)."""
    from monitoring.results.indicators import load_catalogue  # start-up

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
    from monitoring.results.indicators import Indicator, save_indicator  # start-up

    ind = Indicator(code=code, name_zh=name_zh, name_en=name_en, expression=expression,
                    population=population, kind=kind, target=target, direction=direction)
    with db_session(ini_path) as db:
        save_indicator(db, ind, _actor(actor))
    click.echo(f"indicator {code} saved")


# ------------------------------------------------------------------ campaign

def _campaign(session, code: str):  # -> Campaign
    from monitoring.fieldwork.campaigns import get_campaign  # start-up

    campaign = get_campaign(session, code)
    if campaign is None:
        raise click.ClickException(f"no campaign {code!r} (see: learningcity campaign list)")
    return campaign


monitoring.add_command(report_cli.report)


@click.group()
def campaign() -> None:
    """Sampling campaigns: create, frame, design, draw, invitations, progress, close."""


@campaign.command("create")
@ini_option
@actor_option
@click.option("--district", required=True, help="District code.")
@click.option("--name", required=True)
@click.option("--test", "test_instrument", default="LLA", show_default=True,
              help="Ability test instrument code ('' for none).")
@click.option("--survey", "survey_code", default="learning_needs", show_default=True,
              help="Survey code ('' for none).")
@click.option("--mode", type=click.Choice(["sample", "open"]), default="sample",
              show_default=True)
@click.option("--opens", required=True, help="Local time, Asia/Shanghai: '2027-03-01 09:00'.")
@click.option("--closes", required=True, help="Local time, Asia/Shanghai.")
def create_cmd(ini_path: str, actor: str | None, district: str, name: str,
               test_instrument: str, survey_code: str, mode: str, opens: str,
               closes: str) -> None:
    """Create a draft campaign; prints its code."""
    from monitoring.fieldwork.campaigns import create_campaign  # start-up

    with db_session(ini_path) as session:
        created = create_campaign(session, district_code=district, user=_actor(actor),
                                  name=name, test_instrument=test_instrument,
                                  survey_code=survey_code, mode=mode, opens_at=opens,
                                  closes_at=closes)
        code = created.code
    click.echo(code)


@campaign.command("list")
@ini_option
@click.option("--district", default=None, help="Only this district.")
def list_cmd(ini_path: str, district: str | None) -> None:
    """List campaigns: code, district, status, window (local time), name."""
    from monitoring.fieldwork.models import Campaign  # start-up
    from monitoring.fieldwork.window import local_text  # start-up

    session = open_session(ini_path)
    try:
        query = sa.select(Campaign).order_by(Campaign.created_at, Campaign.id)
        if district:
            query = query.where(Campaign.district_code == district)
        for c in session.scalars(query):
            click.echo(f"{c.code}\t{c.district_code}\t{c.status}\t{c.mode}\t"
                       f"{local_text(c.opens_at, c.timezone)} - "
                       f"{local_text(c.closes_at, c.timezone)}\t{c.name}")
    finally:
        session.close()


@campaign.command("upload-frame")
@ini_option
@actor_option
@click.argument("code")
@click.argument("frame_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["unit", "cluster"]), default="unit",
              show_default=True)
@click.option("--id-column", required=True)
@click.option("--strata", "stratum_columns", required=True,
              help="Stratum columns, comma-separated (e.g. street,age_band).")
@click.option("--size-column", default=None, help="Population count column (clusters).")
@click.option("--keep", "keep_columns", default=None,
              help="Other columns to keep (grouping, prefill, frame indicators), "
                   "comma-separated; default: the background columns present (district, "
                   "street, community, age_band, sex, group, occupation, education).")
@click.option("--contact", "contact_columns", default="",
              help="Contact columns for the field workers' list (name, phone...), "
                   "comma-separated; purged when the campaign closes.")
@click.option("--identity", "identity_columns", default="",
              help="Identity-number columns the campaign really needs (refused otherwise); "
                   "purged when the campaign closes.")
@quiet_option
def upload_frame_cmd(ini_path: str, actor: str | None, code: str, frame_file: Path,
                     kind: str, id_column: str, stratum_columns: str,
                     size_column: str | None, keep_columns: str | None,
                     contact_columns: str, identity_columns: str, quiet: bool) -> None:
    """Check and store the frame (CSV UTF-8/GBK or XLSX); all rows or none. Only the
    columns the campaign needs are stored; the others are dropped and listed."""
    from tqdm import tqdm  # start-up

    from monitoring.fieldwork.frames import FrameSpec, column_list, import_frame  # start-up

    spec = FrameSpec(kind, id_column.strip(), column_list(stratum_columns),
                     (size_column or "").strip() or None,
                     keep_columns=None if keep_columns is None else column_list(keep_columns),
                     contact_columns=column_list(contact_columns),
                     identity_columns=column_list(identity_columns))
    with db_session(ini_path) as session:
        target = _campaign(session, code)
        if not quiet:
            click.echo(f"{frame_file.name}: reading and checking every row ...", err=True)
        with tqdm(desc="storing rows", unit="row", disable=quiet, leave=False) as bar:
            upload = import_frame(session, target, frame_file.name,
                                  frame_file.read_bytes(), spec, _actor(actor),
                                  progress=bar.update)
        click.echo(f"{code}: frame {frame_file.name} stored, {upload.n_rows} rows, "
                   f"{len(target.strata)} strata")
        frame = target.design.get("frame", {})
        click.echo(f"  kept columns: {', '.join(frame.get('kept_columns', []))}")
        if frame.get("dropped_columns"):
            click.echo(f"  dropped columns (not stored): "
                       f"{', '.join(frame['dropped_columns'])}")
        for s in target.strata:
            click.echo(f"  {s.stratum}\tN_h={s.population:g}\trows={s.frame_rows}")


def _stratum_values(values: tuple[str, ...], name: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.rpartition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: write STRATUM=VALUE", param_hint=name)
        out[key.strip()] = value.strip()
    return out


@campaign.command("design")
@ini_option
@actor_option
@click.argument("code")
@click.option("--n", "n", required=True, type=int,
              help="Sample size (units, or clusters for a cluster frame).")
@click.option("--allocation", type=click.Choice(["proportional", "equal", "neyman"]),
              default="proportional", show_default=True)
@click.option("--min-per-stratum", type=int, default=0, show_default=True)
@click.option("--max-per-stratum", type=int, default=None)
@click.option("--m", "m_per_psu", type=int, default=None,
              help="Invitations per selected cluster (cluster frames).")
@click.option("--sd-column", default=None, help="Neyman: column with each stratum's SD.")
@click.option("--sd", "sds", multiple=True, help="Neyman: STRATUM=SD (repeat).")
@click.option("--quota", "quotas", multiple=True, help="STRATUM=COMPLETES (repeat).")
def design_cmd(ini_path: str, actor: str | None, code: str, n: int, allocation: str,
               min_per_stratum: int, max_per_stratum: int | None, m_per_psu: int | None,
               sd_column: str | None, sds: tuple[str, ...], quotas: tuple[str, ...]) -> None:
    """Set the design of a draft campaign and show the allocation."""
    from monitoring.fieldwork.draw import allocate_campaign, set_design  # start-up

    with db_session(ini_path) as session:
        target = _campaign(session, code)
        set_design(session, target, _actor(actor), n=n, allocation=allocation,
                   min_per_stratum=min_per_stratum, max_per_stratum=max_per_stratum,
                   m_per_psu=m_per_psu, sd_column=sd_column,
                   sds=_stratum_values(sds, "--sd"), quotas=_stratum_values(quotas, "--quota"))
        for stratum, n_h in allocate_campaign(session, target).items():
            click.echo(f"  {stratum}\tn_h={n_h}")


@campaign.command("draw")
@ini_option
@actor_option
@click.argument("code")
@click.option("--seed", type=int, default=None,
              help="Seed to use (default: a new random seed, printed and stored).")
def draw_cmd(ini_path: str, actor: str | None, code: str, seed: int | None) -> None:
    """Draw the sample (or fix the quotas of an open campaign)."""
    from monitoring.fieldwork.draw import draw_sample  # start-up

    with db_session(ini_path) as session:
        result = draw_sample(session, _campaign(session, code), _actor(actor), seed=seed)
    click.echo(f"{code}: drawn with seed {result.seed}; {result.selected} units selected, "
               f"{result.invitations} invitations planned")
    for stratum, n_h in result.allocation.items():
        click.echo(f"  {stratum}\tn_h={n_h}")


@campaign.command("invitations")
@ini_option
@actor_option
@click.argument("code")
@click.option("--out", "out", required=True,
              type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="File for the printable list: .csv, .xlsx or .html (codes shown once).")
@click.option("--base-url", default=None,
              help="Public address, e.g. https://learn.city.cn (default: the .ini's "
                   "learningcity.public_url)")
@click.option("--replace-unused", is_flag=True,
              help="Void every unused code and issue new ones (a lost list).")
@quiet_option
def invitations_cmd(ini_path: str, actor: str | None, code: str, out: Path,
                    base_url: str | None, replace_unused: bool, quiet: bool) -> None:
    """Issue the missing invitations and write their codes to --out (only place they exist)."""
    from tqdm import tqdm  # start-up

    from monitoring.fieldwork import invitations as inv  # start-up

    suffix = out.suffix.lower()
    if suffix not in (".csv", ".xlsx", ".html"):
        raise click.ClickException(f"{out}: --out must end in .csv, .xlsx or .html")
    if out.exists():
        raise click.ClickException(f"{out}: exists; choose a new file (codes are never "
                                   "overwritten)")
    settings = load_app_settings(ini_path)
    base_url = base_url or inv.public_url(settings)
    if not base_url:
        raise click.ClickException("--base-url is needed: the settings have no "
                                   "learningcity.public_url for the residents' links")
    written = False
    try:
        with db_session(ini_path) as session:
            target = _campaign(session, code)
            issue = inv.reissue_unused if replace_unused else inv.issue_invitations
            issued = issue(session, target, _actor(actor),
                           secret=settings["learningcity.secret"])
            if not issued:
                raise ValueError(f"{code}: every sampled unit already has an invitation "
                                 "(use --replace-unused for new codes)")
            bar = tqdm(issued, desc="QR codes" if suffix == ".html" else "writing list",
                       unit="code", disable=quiet, leave=False)
            if suffix == ".csv":
                data = inv.invitations_csv(bar, base_url)
            elif suffix == ".xlsx":
                data = inv.invitations_xlsx(bar, base_url)
            else:
                data = inv.invitations_html(target, bar, base_url).encode("utf-8")
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # working codes
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            written = True
    except BaseException:
        if written and out.exists():  # the codes were not saved: the file is worthless
            os.remove(out)
        raise
    click.echo(f"{code}: {len(issued)} invitations written to {out}. The codes exist only "
               "in that file; keep it safe.")


@campaign.command("progress")
@ini_option
@click.argument("code")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the table as CSV.")
def progress_cmd(ini_path: str, code: str, csv_out: Path | None) -> None:
    """Sampled, started, completed, response rate and quota per stratum."""
    from monitoring.fieldwork.progress import campaign_progress, progress_csv  # start-up

    session = open_session(ini_path)
    try:
        report = campaign_progress(session, _campaign(session, code))
    finally:
        session.close()
    click.echo("stratum\tsampled\tstarted\tcompleted\tresponse_rate\tquota")
    for r in [*report.rows, report.overall]:
        rate = f"{r.response_rate:.3f}" if r.response_rate is not None else "-"
        click.echo(f"{r.stratum or '(overall)'}\t{r.sampled}\t{r.started}\t{r.completed}\t"
                   f"{rate}\t{r.quota}")
    if csv_out is not None:
        csv_out.write_bytes(progress_csv(report))


@campaign.command("close")
@ini_option
@actor_option
@click.argument("code")
@click.option("--yes", is_flag=True, help="Confirm: closing cannot be undone.")
@click.option("--lang", default="zh-CN", show_default=True,
              help="Language of the step messages: zh-CN or en.")
def close_cmd(ini_path: str, actor: str | None, code: str, yes: bool, lang: str) -> None:
    """Close the campaign (frozen), then compute weights and aggregates. Prints each step's
    outcome and messages; exits 1 (message on stderr) when a step failed, 0 otherwise."""
    from learningcity.i18n import translator  # start-up
    from monitoring.closing import close_campaign, translated_steps  # start-up
    from monitoring.fieldwork.progress import campaign_progress  # start-up
    from monitoring.fieldwork.retention import contact_retention_days  # start-up

    translate = translator(lang, ("learningcity", "monitoring"))
    monitoring_db = monitoring_session(ini_path)
    try:
        with db_session(ini_path) as session:
            target = _campaign(session, code)
            if (target.status != "closed"
                    and not campaign_progress(session, target).overall.completed):
                click.echo(f"{code}: warning: no one has completed yet; closing now leaves "
                           "the campaign without weights and results", err=True)
            if not yes:
                raise click.ClickException("closing cannot be undone; add --yes to confirm")
            outcome = close_campaign(session, target, _actor(actor), monitoring_db,
                                     contact_retention_days=contact_retention_days(
                                         load_app_settings(ini_path)))
        monitoring_db.commit()
    finally:
        monitoring_db.close()
    click.echo(f"{code}: closed")
    for step in translated_steps(outcome, translate):
        click.echo(f"  {step['name']}: {step['outcome']} ({step['label']}: {step['word']})")
        for message in step["messages"]:
            click.echo(f"    - {message}")
    if outcome.failed:
        failed = ", ".join(name for name, word in outcome.steps.items() if word == "failed")
        click.echo(f"{code}: closed, but a step failed: {failed}", err=True)
        raise click.exceptions.Exit(1)


@campaign.command("export-analysis")
@ini_option
@actor_option
@click.argument("code")
@click.option("--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path), help="Directory to write.")
def export_analysis_cmd(ini_path: str, actor: str | None, code: str, out_dir: Path) -> None:
    """Write the analysis file of closed campaign CODE: the de-identified respondent table
    (CSV and SPSS), codebook, margins, published cells, and R and SPSS scripts that
    re-estimate the published cells."""
    from learningcity import audit  # start-up
    from monitoring.results.analysis import AnalysisExportError, export_analysis  # start-up

    db, mdb = _both_sessions(ini_path)
    try:
        try:
            done = export_analysis(db, mdb, code, out_dir)
        except (AnalysisExportError, LookupError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        audit.record(db, actor=_actor(actor), action="campaign.export_analysis", target=code,
                     detail={"respondents": done.n_respondents, "files": list(done.files)})
        db.commit()
    finally:
        db.close()
        mdb.close()
    click.echo(f"{out_dir}: {done.n_respondents} respondents, {done.n_variables} variables, "
               f"{done.n_published} published cells; files: {', '.join(done.files)}")


# ------------------------------------------------------------------ margins

@click.group()
def margins() -> None:
    """Population margins (age band x sex x district counts) for weighting."""


@margins.command("upload")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", required=True, help="A name for this table, e.g. 'census 2025'.")
@click.option("--year", "year", type=int, default=None, help="Reference year of the counts.")
@click.option("--source", default="", help="Where the counts come from.")
@ini_option
@actor_option
def margins_upload_cmd(path: str, name: str, year: int | None, source: str, ini_path: str,
               actor: str | None) -> None:
    """Check FILE (CSV or XLSX) and store it; every problem is listed, nothing is changed."""
    from monitoring.results.margins import margin_total, upload_margin  # start-up

    data = Path(path).read_bytes()
    with db_session(ini_path) as db:
        margin = upload_margin(db, Path(path).name, data, name=name, user=_actor(actor),
                               reference_year=year, source=source)
        click.echo(f"margin {margin.id} {margin.name!r}: {len(margin.cells)} cells over "
                   f"{' x '.join(margin.variables)}, population {margin_total(margin):,.0f} "
                   "(active)")


@margins.command("list")
@ini_option
def margins_list_cmd(ini_path: str) -> None:
    """The uploaded margins, newest first."""
    from monitoring.results.margins import list_margins, margin_total  # start-up

    with db_session(ini_path) as db:
        rows = list_margins(db)
        if not rows:
            click.echo("no population margins yet")
        for m in rows:
            click.echo(f"{m.id}\t{'active' if m.active else 'inactive'}\t{m.name}\t"
                       f"{m.reference_year or '-'}\t{' x '.join(m.variables)}\t"
                       f"{len(m.cells)} cells\t{margin_total(m):,.0f}")


@margins.command("activate")
@click.argument("margin_id", type=int)
@click.option("--off", is_flag=True, help="Deactivate instead.")
@ini_option
@actor_option
def margins_activate_cmd(margin_id: int, off: bool, ini_path: str, actor: str | None) -> None:
    """Make a margin active (used for weighting) or, with --off, inactive."""
    from monitoring.results.margins import set_active  # start-up

    with db_session(ini_path) as db:
        margin = set_active(db, margin_id, not off, _actor(actor))
        click.echo(f"margin {margin.id} {margin.name!r} is now "
                   f"{'active' if margin.active else 'inactive'}")


@margins.command("weigh")
@click.argument("campaign_code")
@click.option("--margin", "margin_id", type=int, default=None,
              help="Margin id (default: the most recent active one).")
@click.option("--method", type=click.Choice(["poststratify", "rake"]), default="poststratify",
              show_default=True)
@click.option("--trim", "trim_multiple", type=float, default=None,
              help="Cap weights at this multiple of the median (total kept).")
@click.option("--no-collapse", is_flag=True,
              help="Refuse instead of collapsing a stratum without respondents.")
@ini_option
@actor_option
def margins_weigh_cmd(campaign_code: str, margin_id: int | None, method: str,
              trim_multiple: float | None, no_collapse: bool, ini_path: str,
              actor: str | None) -> None:
    """Compute CAMPAIGN's weights (design, nonresponse, calibration to the margin, trimming)
    and make them current; prints each step's sum, range, CV and effective n."""
    from monitoring.fieldwork.models import Campaign  # start-up
    from monitoring.results.weighting import compute_weights  # start-up

    with db_session(ini_path) as db:
        campaign = db.scalar(sa.select(Campaign).where(Campaign.code == campaign_code))
        if campaign is None:
            raise ValueError(f"no campaign {campaign_code!r}")
        run = compute_weights(db, campaign, _actor(actor), margin_id=margin_id, method=method,
                              trim_median_multiple=trim_multiple, collapse=not no_collapse)
        click.echo(f"campaign {campaign.code}: weight run {run.id} is current "
                   f"({' -> '.join(run.method.get('steps', []))})")
        skipped = (run.method.get("calibration") or {}).get("skipped")
        if skipped:
            click.echo(f"  calibration skipped: {skipped}")
        for k, v in (run.method.get("collapsed") or {}).items():
            click.echo(f"  stratum {k} has no respondents: weighted with {v}")
        for step in run.summary:
            click.echo(f"  {step['step']:<13} n={step['n']:<6} sum={step['sum']:,.1f} "
                       f"min={step['min']:.3g} max={step['max']:.3g} cv={step['cv']:.3f} "
                       f"n_eff={step['n_eff']:.1f}")
