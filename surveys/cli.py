"""``learningcity survey``: import, validate, list and export survey definitions and responses.

``validate`` works on a plain file with no database; the others read ``--ini``.
Bad input gives an error naming the file, row or field, and changes nothing.
"""
from __future__ import annotations

import getpass
import json
import re
import sys
from pathlib import Path

import click
from tqdm import tqdm

from learningcity import audit
from learningcity.cli import db_session, ini_option, load_app_settings, open_session
from tabular.reading import OFFLINE_LIMITS

from . import submissions
from .definition import Problem, SurveyError
from .documents import read_definition
from .services import (
    EXPORT_FORMATS,
    definition_survey,
    export_responses,
    get_definition,
    import_survey,
    list_surveys,
)
from .xlsform_export import with_invitation_code, write_xlsform


@click.group()
def survey() -> None:
    """Survey definitions (JSON or XLSForm .xlsx/.xls) and response exports."""


@survey.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help="Print the report as JSON (file, ok, problems, warnings, survey).")
def validate_cmd(file: str, as_json: bool) -> None:
    """Check a definition (JSON or XLSForm) and list every problem and warning with its
    sheet, row and column; exit status 1 when there are problems."""
    path = Path(file)
    report = read_definition(path.name, path.read_bytes())
    s = report.survey
    if as_json:
        click.echo(json.dumps({
            "file": path.name, "ok": report.ok,
            "problems": [_problem_json(p) for p in report.problems],
            "warnings": [_problem_json(p) for p in report.warnings],
            "survey": None if s is None else {"id": s.id, "version": s.version,
                                              "pages": len(s.pages),
                                              "questions": len(s.questions)}},
            ensure_ascii=False, indent=2))
        sys.exit(0 if report.ok else 1)
    for p in report.problems:
        click.echo(f"problem: {p}", err=True)
    for w in report.warnings:
        click.echo(f"warning: {w}", err=True)
    if not report.ok:
        click.echo(f"{path.name}: {len(report.problems)} problem(s), "
                   f"{len(report.warnings)} warning(s); the survey was not read", err=True)
        sys.exit(1)
    assert s is not None
    click.echo(f"{path.name}: ok, survey {s.id!r} (document version {s.version}), "
               f"{len(s.pages)} pages, {len(s.questions)} questions, "
               f"{len(s.fields())} answer keys, {len(report.warnings)} warning(s)")


def _problem_json(p: Problem) -> dict[str, object]:
    """A problem for scripts: sheet and row split out of ``where`` when it names them."""
    m = re.fullmatch(r"(\w+) row (\d+)", p.where)
    return {"where": p.where, "sheet": m.group(1) if m else None,
            "row": int(m.group(2)) if m else None, "column": p.field or None,
            "subject": p.subject or None, "message": p.message,
            "feature": getattr(p, "feature", None) or None}


@survey.command("import")
@ini_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--publish", is_flag=True, help="Make this version the one residents get.")
@click.option("--actor", default=None,
              help="Name recorded as importer (default: the operating-system user).")
def import_cmd(ini_path: str, file: str, publish: bool, actor: str | None) -> None:
    """Store a definition as the next version of its survey (all or nothing)."""
    actor = actor or getpass.getuser()

    try:
        with db_session(ini_path) as db:
            outcome = import_survey(db, file, actor, publish=publish)
            d = outcome.definition
            text = (f"imported {d.code} version {d.version}" if outcome.created else
                    f"{Path(file).name} is already stored as {d.code} version {d.version}")
            if outcome.published:
                text += " (published)"
    except SurveyError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(text)


@survey.command("list")
@ini_option
def list_cmd(ini_path: str) -> None:
    """Survey codes, versions, the published one and response counts."""

    db = open_session(ini_path)
    try:
        rows = list_surveys(db)
        if not rows:
            click.echo("no surveys")
        for s in rows:
            for d in s.versions:
                counts = s.counts.get(d.id, {})
                mark = "*" if d.id == s.published_id else " "
                click.echo(f"{mark} {d.code}\tv{d.version}\t{d.imported_at:%Y-%m-%d}\t"
                           f"{d.imported_by}\tfinished={counts.get('finished', 0)}\t"
                           f"unfinished={counts.get('started', 0) + counts.get('expired', 0)}"
                           f"\t{d.title_en}")
    finally:
        db.close()


@survey.command("export")
@ini_option
@click.argument("code")
@click.option("--format", "fmt", type=click.Choice(list(EXPORT_FORMATS)),
              default="csv", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--version", type=int, default=None, help="Default: the published version.")
@click.option("--district", default=None, help="Only this district's responses.")
@click.option("--campaign", default=None, help="Only this campaign's responses.")
@click.option("--labels", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the .sav's variable and value labels.")
@click.option("--actor", default=None,
              help="Who exports (audited; default: the operating-system user).")
def export_cmd(ini_path: str, code: str, fmt: str, out: str, version: int | None,
               district: str | None, campaign: str | None, labels: str,
               actor: str | None) -> None:
    """Write finished responses (one row per respondent) or the codebook (both languages).

    csv.zip and sav.zip hold the main table, one long table per repeat page (one row per
    instance) and the codebook.

    The .sav has its labels in --labels, user-missing codes (-8 not asked, -9 no answer)
    and text widths from the survey definition.
    """

    with db_session(ini_path) as db, tqdm(total=1, desc=f"export {code}", unit="file",
                                          disable=not sys.stderr.isatty()) as bar:
        n = export_responses(db, code, fmt, out, version=version, district=district,
                             campaign=campaign, labels=labels)
        audit.record(db, actor=actor or getpass.getuser(), action="survey.download",
                     target=code,
                     detail={"format": fmt, "district": district, "campaign": campaign,
                             "respondents": n, "out": out, "labels": labels})
        bar.update(1)
    click.echo(f"wrote {out}" + ("" if fmt == "codebook" else f" ({n} respondents)"))


@survey.command("export-xlsform")
@ini_option
@click.argument("code", required=False)
@click.option("--file", "source", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Export this definition file (JSON or XLSX) instead of a stored survey "
                   "(no database).")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--version", type=int, default=None,
              help="Stored version (default: the published one, else the latest).")
@click.option("--with-invitation-code", "invitation", is_flag=True,
              help="Ask a required text invitation_code (邀请码) first, so enumerators "
                   "record the campaign invitation the submissions importer matches.")
def export_xlsform_cmd(ini_path: str, code: str | None, source: str | None, out: str,
                       version: int | None, invitation: bool) -> None:
    """Write a survey as an XLSForm for ODK Collect / KoboCollect (pyxform converts it)."""
    if (code is None) == (source is None):
        raise click.UsageError("give a survey CODE or --file PATH (one of them)")
    if source is not None:
        if version is not None:
            raise click.UsageError("--version is for a stored survey, not --file")
        path = Path(source)
        report = read_definition(path.name, path.read_bytes())
        if not report.ok:
            click.echo(report.summary(), err=True)
            sys.exit(1)
        s = report.survey_or_raise()
    else:
        with db_session(ini_path) as db:
            s = definition_survey(get_definition(db, code or "", version))
    try:
        if invitation:
            s = with_invitation_code(s)
        write_xlsform(s, out)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {out}: survey {s.id!r} version {s.version}, {len(s.pages)} pages")


@survey.command("import-submissions")
@ini_option
@click.argument("code")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--campaign", default=None,
              help="Link every row to this campaign; its invitation_code column to the "
                   "campaign's invitations.")
@click.option("--actor", default=None,
              help="Who imports (audited; default: the operating-system user).")
@click.option("--dry-run", is_flag=True, help="Check everything, store nothing.")
def import_submissions_cmd(ini_path: str, code: str, file: str, campaign: str | None,
                           actor: str | None, dry_run: bool) -> None:
    """Store an ODK Central or KoboToolbox submissions export (CSV or XLSX) as finished
    responses of survey CODE: all or nothing, once per instance ID (exit status 1 when
    any row has a problem; every one is listed with its row and column)."""
    path = Path(file)
    if path.stat().st_size > submissions.MAX_SUBMISSIONS_BYTES:
        raise click.ClickException(f"{path.name}: larger than "
                                   f"{submissions.MAX_SUBMISSIONS_BYTES // 2**20} MB")
    directory = None
    if campaign is not None:
        directory = submissions.invitation_directory(load_app_settings(ini_path))
    with db_session(ini_path) as db:
        result = submissions.import_submissions(
            db, code, path.name, path.read_bytes(), actor or getpass.getuser(),
            campaign=campaign, directory=directory, dry_run=dry_run,
            limits=OFFLINE_LIMITS)
    for warning in result.warnings:
        click.echo(f"{path.name}: warning: {warning.text('en')}", err=True)
    for problem in result.problems:
        click.echo(f"{path.name}: {problem.text('en')}", err=True)
    if not result.ok:
        click.echo(f"{path.name}: {len(result.problems)} problem(s); nothing stored",
                   err=True)
        sys.exit(1)
    done = "nothing stored (dry run)" if dry_run else "stored"
    click.echo(f"{path.name}: {result.rows} rows ({result.source}): {result.new} new, "
               f"{result.already} already imported, {result.skipped} skipped; {done}")
