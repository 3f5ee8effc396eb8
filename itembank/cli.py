"""``learningcity itembank ...``: import/export items, export responses, calibrations.

The offline loop: ``export-responses`` -> ``learningcity calibrate`` ->
``import-calibration`` -> review on the web pages -> ``publish`` (or ``rollback``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from learningcity.cli import actor_option, db_session, ini_option
from learningcity.cli import cli_actor as _actor
from scoring.io import InputError, read_fit, read_params, write_params
from tabular.guard import guard_cell  # noqa: F401 (the guard write_table applies; tested)
from tabular.reading import TableError, read_table

from .importing import CSV_COLUMNS, ItemFileError, read_item_file, spec_to_json, spec_to_row
from .models import Calibration
from .services import (
    BankError,
    ImportRejected,
    calibration_params,
    export_responses,
    export_specs,
    get_instrument,
    import_calibration,
    import_items,
    publish,
    published_calibration,
    rollback,
)


@click.group()
def itembank() -> None:
    """The item bank: items, responses, calibrations, publishing."""


@itembank.command("import")
@ini_option
@actor_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_cmd(ini_path: str, actor: str | None, path: str) -> None:
    """Import items from PATH (.csv, .xlsx or .json): every row checked, all or nothing."""
    try:
        report = read_item_file(path)
    except ItemFileError as exc:
        raise click.ClickException(str(exc)) from None
    with db_session(ini_path) as db:
        if not report.ok:
            raise ImportRejected(report)
        outcome = import_items(db, report, _actor(actor))
    click.echo(f"{path}: {len(outcome.created)} new item(s), {len(outcome.new_versions)} new "
               f"version(s), {len(outcome.unchanged)} unchanged, "
               f"{len(outcome.status_changed)} status change(s)")


@itembank.command("export")
@ini_option
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output file: .csv, .xlsx or .json (the import format).")
def export_cmd(ini_path: str, out: str) -> None:
    """Export every item's current version in the import format."""
    with db_session(ini_path) as db:
        specs = export_specs(db)
    target = Path(out)
    tmp = target.with_name(target.name + ".part")
    suffix = target.suffix.lower()
    if suffix == ".json":
        tmp.write_text(json.dumps([spec_to_json(s) for s in specs], ensure_ascii=False,
                                  indent=1), encoding="utf-8")
    elif suffix in (".csv", ".xlsx"):
        tmp.write_bytes(_items_file(suffix[1:], specs))
    else:
        raise click.ClickException(f"{out}: use .csv, .xlsx or .json")
    tmp.replace(target)
    click.echo(f"wrote {len(specs)} item(s) to {out}")


def _items_file(fmt: str, specs: list[Any]) -> bytes:
    """The items in the import layout through the export registry: CSV with BOM and the
    formula guard (the import undoes it), XLSX with text cells that are never formulas,
    so an exported file imports back unchanged."""
    # start-up cost: tabular.writing brings pandas, 0.18-0.19 s (python -X importtime,
    # after the command's other imports); only `itembank export` needs it
    import pandas as pd

    from tabular.writing import write_table

    frame = pd.DataFrame([spec_to_row(s) for s in specs], columns=CSV_COLUMNS, dtype=object)
    return write_table(fmt, frame, sheet_name="items")


@itembank.command("export-responses")
@ini_option
@actor_option
@click.option("--instrument", required=True, help="Instrument code, e.g. LLA.")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--group", "groups", multiple=True,
              help="Background variable to add as a column (repeatable), e.g. age_band.")
@click.option("--scored-only", is_flag=True, help="Leave out unscored pilot items.")
def export_responses_cmd(ini_path: str, actor: str | None, instrument: str, out: str,
                         groups: tuple[str, ...], scored_only: bool) -> None:
    """Write the sparse RESPONSES.csv that `learningcity calibrate` reads (person-level
    data: audited with who, what and where)."""
    target = Path(out)
    tmp = target.with_name(target.name + ".part")
    try:
        # the audit row is committed before the file takes its name: no export unrecorded
        with db_session(ini_path) as db:
            inst = get_instrument(db, instrument)
            persons, items = export_responses(db, inst, tmp, groups, not scored_only,
                                              actor=_actor(actor),
                                              destination=str(target.resolve()))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(target)
    click.echo(f"wrote {persons} respondent(s) x {items} item(s) to {out}")


@itembank.command("import-calibration")
@ini_option
@actor_option
@click.argument("params_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", required=True, help="Calibration name; versions count up per name.")
@click.option("--instrument", default="LLA", show_default=True)
@click.option("--source", default="", help="Where the responses came from (provenance).")
@click.option("--demo", is_flag=True, help="Label it as a demonstration from simulated data.")
@click.option("--publish", "publish_now", is_flag=True, help="Publish right away.")
@click.option("--dif", "dif_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="DIF.csv from `learningcity dif`: items of ETS class B or C get flagged.")
def import_calibration_cmd(ini_path: str, actor: str | None, params_path: str, name: str,
                           instrument: str, source: str, demo: bool, publish_now: bool,
                           dif_path: str | None) -> None:
    """Store a PARAMS.csv written by `learningcity calibrate` as a new calibration."""
    try:
        params = read_params(params_path)
        fit = read_fit(params_path)
    except InputError as exc:
        raise click.ClickException(str(exc)) from None
    if dif_path:
        fit["dif"] = _dif_classes(dif_path, [str(i) for i in params.item_ids])
    with db_session(ini_path) as db:
        inst = get_instrument(db, instrument)
        calibration = import_calibration(
            db, inst, params, name, _actor(actor), fit=fit, is_demo=demo,
            provenance={"file": Path(params_path).name, "source": source,
                        "simulated": demo})
        if publish_now:
            publish(db, calibration, _actor(actor))
    click.echo(f"stored calibration {calibration.label} ({len(params.item_ids)} items, "
               f"latent N({params.latent_mean:.3f}, {params.latent_sd:.3f}^2))"
               + (", published" if publish_now else ""))


def _dif_classes(path: str, item_ids: list[str]) -> list[str]:
    """ETS classes from a DIF.csv, aligned with the calibration's items ('' where absent).

    A file that is not UTF-8 CSV with ``item_id`` and ``ets_class`` columns, a class
    other than A, B or C, or an item not in the calibration is refused, naming the row."""
    name = Path(path).name
    try:
        table = read_table(Path(path).read_bytes(), name, encodings=("utf-8",),
                           unguard=True, check_header=False)
    except TableError as exc:
        raise click.ClickException(str(exc)) from None
    if "item_id" not in table.header or "ets_class" not in table.header:
        raise click.ClickException(f"{name}: needs the columns item_id and ets_class "
                                   "(run `learningcity dif --method mh --out ...`)")
    problems = table.problems()
    classes: dict[str, str] = {}
    for number, cells in table.records():
        code, ets = cells["item_id"], cells["ets_class"].upper()
        if ets not in ("A", "B", "C", ""):
            problems.add(number, "ets_class", f"{ets[:20]!r} is not A, B or C")
        classes[code] = ets
    try:
        problems.raise_if_any()
    except TableError as exc:
        raise click.ClickException(str(exc)) from None
    unknown = sorted(set(classes) - set(item_ids))
    if unknown:
        raise click.ClickException(f"{name}: items not in the calibration: "
                                   f"{', '.join(unknown[:20])}")
    return [classes.get(code, "") for code in item_ids]


def _calibration(db: Any, instrument: str, name: str, version: int | None) -> Any:
    inst = get_instrument(db, instrument)
    query = sa.select(Calibration).where(Calibration.instrument_id == inst.id,
                                         Calibration.name == name)
    query = (query.where(Calibration.version == version) if version
             else query.order_by(Calibration.version.desc()).limit(1))
    calibration = db.scalar(query)
    if calibration is None:
        raise BankError(f"no calibration {name!r}" + (f" version {version}" if version else ""))
    return calibration


@itembank.command("export-calibration")
@ini_option
@click.option("--instrument", default="LLA", show_default=True)
@click.option("--name", default=None, help="Default: the published calibration.")
@click.option("--version", type=int, default=None, help="Default: the newest version.")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
def export_calibration_cmd(ini_path: str, instrument: str, name: str | None,
                           version: int | None, out: str) -> None:
    """Write a calibration as PARAMS.csv (for `calibrate --anchors`, `score`, `simulate`)."""
    with db_session(ini_path) as db:
        if name:
            calibration = _calibration(db, instrument, name, version)
        else:
            calibration = published_calibration(db, get_instrument(db, instrument))
            if calibration is None:
                raise BankError(f"{instrument} has no published calibration")
        write_params(out, calibration_params(calibration))
    click.echo(f"wrote {calibration.label} ({len(calibration.items)} items) to {out}")


@itembank.command("publish")
@ini_option
@actor_option
@click.option("--instrument", default="LLA", show_default=True)
@click.option("--name", required=True)
@click.option("--version", type=int, default=None, help="Default: the newest version.")
def publish_cmd(ini_path: str, actor: str | None, instrument: str, name: str,
                version: int | None) -> None:
    """Make a calibration the live one (audited)."""
    with db_session(ini_path) as db:
        calibration = _calibration(db, instrument, name, version)
        publish(db, calibration, _actor(actor))
    click.echo(f"published {calibration.label} for {instrument}")


@itembank.command("rollback")
@ini_option
@actor_option
@click.option("--instrument", default="LLA", show_default=True)
def rollback_cmd(ini_path: str, actor: str | None, instrument: str) -> None:
    """Return to the calibration that was live before the current one (audited)."""
    with db_session(ini_path) as db:
        previous = rollback(db, get_instrument(db, instrument), _actor(actor))
    click.echo(f"{instrument} now uses {previous.label}")


@itembank.command("calibrations")
@ini_option
@click.option("--instrument", default="LLA", show_default=True)
def calibrations_cmd(ini_path: str, instrument: str) -> None:
    """List an instrument's calibrations; * marks the published one."""
    with db_session(ini_path) as db:
        inst = get_instrument(db, instrument)
        for c in db.scalars(sa.select(Calibration).where(Calibration.instrument_id == inst.id)
                            .order_by(Calibration.id)):
            mark = "*" if c.id == inst.published_calibration_id else " "
            click.echo(f"{mark} {c.label}\t{c.model}\t{len(c.items)} items\t"
                       f"{c.created_at:%Y-%m-%d %H:%M}\t{c.created_by}"
                       + ("\tDEMO (simulated data)" if c.is_demo else ""))
