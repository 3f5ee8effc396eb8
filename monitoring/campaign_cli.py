"""``learningcity campaign ...``: campaigns from the command line (administrators).

Every command takes ``--ini``; a refused request prints every problem (file, row,
column) and exits with status 1 without changing anything.
"""
from __future__ import annotations

import getpass
import os
from pathlib import Path

import click

from learningcity.cli import db_session, ini_option, open_session


def _actor(actor: str | None) -> str:
    return actor or f"cli:{getpass.getuser()}"


actor_option = click.option("--as", "actor", default=None,
                            help="Name recorded in the audit trail (default cli:<login>).")


quiet_option = click.option("--quiet", is_flag=True,
                            help="No progress bar or messages on stderr (for scripts).")


def _campaign(session, code: str):  # -> Campaign
    from .campaigns import get_campaign

    campaign = get_campaign(session, code)
    if campaign is None:
        raise click.ClickException(f"no campaign {code!r} (see: learningcity campaign list)")
    return campaign


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
    from .campaigns import create_campaign

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
    import sqlalchemy as sa

    from .campaigns import local_text
    from .models import Campaign

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
@quiet_option
def upload_frame_cmd(ini_path: str, actor: str | None, code: str, frame_file: Path,
                     kind: str, id_column: str, stratum_columns: str,
                     size_column: str | None, quiet: bool) -> None:
    """Check and store the frame (CSV UTF-8/GBK or XLSX); all rows or none."""
    from tqdm import tqdm

    from .frames import FrameSpec, import_frame

    spec = FrameSpec(kind, id_column.strip(),
                     [c.strip() for c in stratum_columns.split(",") if c.strip()],
                     (size_column or "").strip() or None)
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
    from .draw import allocate_campaign, set_design

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
    from .draw import draw_sample

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
@click.option("--base-url", required=True, help="Public address, e.g. https://learn.city.cn")
@click.option("--replace-unused", is_flag=True,
              help="Void every unused code and issue new ones (a lost list).")
@quiet_option
def invitations_cmd(ini_path: str, actor: str | None, code: str, out: Path, base_url: str,
                    replace_unused: bool, quiet: bool) -> None:
    """Issue the missing invitations and write their codes to --out (only place they exist)."""
    from tqdm import tqdm

    from . import invitations as inv

    suffix = out.suffix.lower()
    if suffix not in (".csv", ".xlsx", ".html"):
        raise click.ClickException(f"{out}: --out must end in .csv, .xlsx or .html")
    if out.exists():
        raise click.ClickException(f"{out}: exists; choose a new file (codes are never "
                                   "overwritten)")
    written = False
    try:
        with db_session(ini_path) as session:
            target = _campaign(session, code)
            issue = inv.reissue_unused if replace_unused else inv.issue_invitations
            issued = issue(session, target, _actor(actor))
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
            with open(out, "xb") as fh:
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
    from .progress import campaign_progress, progress_csv

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


def _monitoring_session(ini_path: str):  # -> Session on the monitoring database
    from learningcity.cli import load_app_settings
    from learningcity.db import make_engine, session_factory

    settings = load_app_settings(ini_path)
    url = settings.get("monitoring.sqlalchemy.url") or settings["sqlalchemy.url"]
    return session_factory(make_engine(url))()


@campaign.command("close")
@ini_option
@actor_option
@click.argument("code")
@click.option("--yes", is_flag=True, help="Confirm: closing cannot be undone.")
def close_cmd(ini_path: str, actor: str | None, code: str, yes: bool) -> None:
    """Close the campaign (frozen), then compute weights and aggregates."""
    from .campaigns import close_campaign

    if not yes:
        raise click.ClickException("closing cannot be undone; add --yes to confirm")
    monitoring_db = _monitoring_session(ini_path)
    try:
        with db_session(ini_path) as session:
            outcome = close_campaign(session, _campaign(session, code), _actor(actor),
                                     monitoring_db)
        monitoring_db.commit()
    finally:
        monitoring_db.close()
    click.echo(f"{code}: closed")
    for step, result in outcome.steps.items():
        click.echo(f"  {step}: {result}")
