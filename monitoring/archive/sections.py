"""The archive's contributors for what the product holds (registered in setup.cfg under
``learningcity.archive_sections``): monitoring results, campaigns, learning organisations,
the action plan's indicators and accepted reports.

Each is ``(sessions, year) -> list[ArchiveFile]`` and reads through the documented
service functions of its package: :mod:`monitoring.results.report` and
:mod:`monitoring.results.exports` (the year's published cells, the yearly report PDF),
:func:`monitoring.results.dashboard.campaigns` (the year's aggregated campaigns), and
:mod:`monitoring.organisations` ``register``/``standards``/``recognition`` (the register,
the year's standards, the confirmed evaluations and their evidence files). Rows are
ordered by their codes; XLSX and PDF carry the year's end as their dates.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

from learningcity.i18n import _
from monitoring.archive.bundle import (
    ArchiveFile,
    ArchiveSessions,
    files_of,
    fixed_xlsx,
    pdf_dates_html,
    safe_name,
    year_end,
)
from tabular.writing import Sheet, write_workbook

LOCALE = "zh_CN"


def _xlsx(sheets: list[Sheet], year: int) -> bytes:
    return fixed_xlsx(write_workbook(sheets), year_end(year))


def _names(db: Any, locale: str = LOCALE) -> dict[str, str]:
    from learningcity.districts import list_districts  # start-up cost: the ORM of districts

    return {d.code: d.name(locale) for d in list_districts(db)}


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


# ------------------------------------------------------------------ monitoring results

#: the columns of the year's cells (every aggregate of the year's campaigns)
CELL_COLUMNS = (("campaign", _("Campaign"), "text"), ("measure", _("Measure"), "text"),
                ("label", _("Indicator"), "text"), ("dimension", _("Dimension"), "text"),
                ("district", _("District"), "text"), ("group", _("Group"), "group"),
                ("n", _("n"), "int"), ("estimate", _("Estimate"), "value"),
                ("se", _("SE"), "value"), ("ci_low", _("95% CI low"), "value"),
                ("ci_high", _("95% CI high"), "value"), ("target", _("Target"), "value"),
                ("judgement", _("Judgement"), "judgement"), ("reason", _("Note"), "reason"),
                ("method", _("Method"), "text"))


def monitoring_results(sessions: ArchiveSessions, year: int) -> list[ArchiveFile]:
    """The year's published cells (XLSX, suppressed cells empty as in every download)
    and the yearly monitoring report (PDF, zh-CN); nothing when no campaign closed in
    the year."""
    # start-up cost: the report pulls in charts (matplotlib) and the translations
    from learningcity.i18n import translator
    from monitoring.results import dashboard, exports, report

    mdb = sessions.monitoring
    scope = dashboard.Scope(None)
    runs = report.runs_of_year(mdb, scope, year)
    if not runs:
        return []
    rows = []
    for run in sorted(runs, key=lambda r: r.campaign):
        for a in dashboard.aggregates(mdb, scope, run.campaign, limit=10**7):
            rows.append({"campaign": a.campaign, "measure": a.measure,
                         "label": a.label_zh, "dimension": a.dimension,
                         "district": a.district, "group": a.group_value, "n": a.n,
                         "estimate": a.estimate, "se": a.se, "ci_low": a.ci_low,
                         "ci_high": a.ci_high, "target": a.target,
                         "judgement": a.judgement or "", "reason": a.suppression_reason or "",
                         "method": a.method, "suppressed": a.suppressed})
    table = dashboard.Table("cells", _("Published cells"),
                            [dashboard.Column(k, label, kind) for k, label, kind in CELL_COLUMNS],
                            rows)
    translate = translator(LOCALE, ("learningcity", "monitoring"))
    names = _names(sessions.main)
    cells = fixed_xlsx(exports.export(table, "xlsx", translate, names), year_end(year))
    document = report.build_report_html(mdb, scope, year, LOCALE, names,
                                        translate=translate, main_db=sessions.main)
    pdf = _pdf(pdf_dates_html(document, year_end(year)))
    return files_of([
        ArchiveFile(f"monitoring/cells-{year}.xlsx", cells,
                    f"{year} 年监测活动的全部公布单元格（不公布的单元格为空）及代码表",
                    f"Every published cell of the {year} monitoring campaigns (withheld "
                    "cells empty) with the codebook", "monitoring.results.exports"),
        ArchiveFile(f"monitoring/report-{year}.pdf", pdf, f"{year} 年度监测报告",
                    f"Monitoring report {year}", "monitoring.results.report"),
    ])


def _pdf(document: str) -> bytes:
    from monitoring.results import report  # start-up cost: WeasyPrint loads in write_pdf

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.pdf"
        report.write_pdf(document, out)
        return out.read_bytes()


# ------------------------------------------------------------------ campaigns

CAMPAIGN_COLUMNS = ("campaign", "campaign_name", "district", "district_name", "closes_at",
                    "n_respondents", "n_rows", "n_suppressed", "design", "min_n",
                    "computed_at")


FIELDWORK_COLUMNS = ("campaign", "district", "name", "mode", "status", "opens_local",
                     "closes_local", "timezone", "sampled", "started", "completed",
                     "response_rate")
#: whom :func:`monitoring.fieldwork.campaigns.visible_campaigns` is asked for: the city
#: office sees every district's campaigns
CITY_OFFICE = SimpleNamespace(role="admin", district_code=None)


def campaigns(sessions: ArchiveSessions, year: int) -> list[ArchiveFile]:
    """The year's campaigns (XLSX): sheet ``fieldwork``, every campaign whose window
    closes in the year (local time) with its status and overall progress (sampled,
    started, completed, response rate); sheet ``aggregated``, the aggregated campaigns
    that closed in the year (respondents, cells, suppressed cells, design)."""
    # start-up cost: the fieldwork and dashboard services load their ORM
    from monitoring.fieldwork.campaigns import visible_campaigns
    from monitoring.fieldwork.progress import campaign_progress
    from monitoring.fieldwork.window import to_local
    from monitoring.results import dashboard, report

    fieldwork = []
    for c in sorted(visible_campaigns(sessions.main, CITY_OFFICE), key=lambda c: c.code):
        closes = to_local(c.closes_at, c.timezone)
        if closes.year != year:
            continue
        overall = campaign_progress(sessions.main, c).overall
        fieldwork.append([c.code, c.district_code, c.name, c.mode, c.status,
                          to_local(c.opens_at, c.timezone).strftime("%Y-%m-%d %H:%M"),
                          closes.strftime("%Y-%m-%d %H:%M"), c.timezone, overall.sampled,
                          overall.started, overall.completed, overall.response_rate])
    runs = sorted(report.runs_of_year(sessions.monitoring, dashboard.Scope(None), year),
                  key=lambda r: r.campaign)
    if not runs and not fieldwork:
        return []
    names = _names(sessions.main)
    frame = pd.DataFrame([[r.campaign, r.campaign_name, r.district,
                           names.get(r.district, r.district), _iso(r.closes_at),
                           r.n_respondents, r.n_rows, r.n_suppressed, r.design, r.min_n,
                           _iso(r.computed_at)] for r in runs],
                         columns=list(CAMPAIGN_COLUMNS), dtype=object)
    sheets = [Sheet("fieldwork", pd.DataFrame(fieldwork, columns=list(FIELDWORK_COLUMNS),
                                              dtype=object)),
              Sheet("aggregated", frame)]
    return [ArchiveFile(f"campaigns/campaigns-{year}.xlsx", _xlsx(sheets, year),
                        f"{year} 年的监测活动：现场进度（抽样、开始、完成、应答率）"
                        "及已汇总活动摘要",
                        f"The campaigns of {year}: fieldwork progress (sampled, started, "
                        "completed, response rate) and the aggregated campaigns' summary",
                        "monitoring.fieldwork.progress, monitoring.results.dashboard")]


# ------------------------------------------------------------------ organisations

REGISTER_COLUMNS = ("code", "district", "kind", "name_zh", "name_en", "active", "simulated")
EVALUATION_COLUMNS = ("organisation", "district", "kind", "year", "standard_kind",
                      "standard_version", "score", "recognised", "reviewed_by",
                      "reviewed_at", "confirmed_by", "confirmed_at", "simulated")


def organisations(sessions: ArchiveSessions, year: int) -> list[ArchiveFile]:
    """The register (XLSX), the year's evaluation standards (XLSX: every version with its
    criteria and levels), the year's confirmed evaluations (XLSX: score, recognised,
    per-criterion levels) and their evidence files as uploaded."""
    # start-up cost: the organisations ORM
    from monitoring.organisations import recognition, register, standards

    db = sessions.main
    orgs = register.visible_organisations(db, None)
    if not orgs:
        return []
    by_id = {o.id: o for o in orgs}
    out = []
    reg = pd.DataFrame([[o.code, o.district_code, o.kind, o.name_zh, o.name_en,
                         int(o.active), int(o.simulated)] for o in orgs],
                       columns=list(REGISTER_COLUMNS), dtype=object)
    out.append(ArchiveFile(f"organisations/register-{year}.xlsx",
                           _xlsx([Sheet("register", reg)], year),
                           "学习型组织名册（归档时的状态）",
                           "The register of learning organisations (as archived)",
                           "monitoring.organisations.register"))
    found = sorted((s for s in standards.list_standards(db) if s.year == year),
                   key=lambda s: (s.kind, s.version))
    if found:
        heads = pd.DataFrame([[s.kind, s.year, s.version, s.title_zh, s.title_en, s.threshold,
                               s.filename, s.sha256] for s in found],
                             columns=["kind", "year", "version", "title_zh", "title_en",
                                      "threshold", "filename", "sha256"], dtype=object)
        crit, levels = [], []
        for s in found:
            for c in standards.criteria(s):
                crit.append([s.kind, s.version, c["code"], c.get("name_zh", ""),
                             c.get("name_en", ""), c.get("weight")])
                for lv in c.get("levels", []):
                    levels.append([s.kind, s.version, c["code"], lv["level"], lv["points"],
                                   lv.get("descriptor_zh", ""), lv.get("descriptor_en", "")])
        out.append(ArchiveFile(
            f"organisations/standards-{year}.xlsx", _xlsx([
                Sheet("standards", heads),
                Sheet("criteria", pd.DataFrame(crit, dtype=object, columns=[
                    "kind", "version", "code", "name_zh", "name_en", "weight"])),
                Sheet("levels", pd.DataFrame(levels, dtype=object, columns=[
                    "kind", "version", "criterion", "level", "points", "descriptor_zh",
                    "descriptor_en"]))], year),
            f"{year} 年学习型组织评价标准（全部版本）",
            f"Evaluation standards of learning organisations {year} (every version)",
            "monitoring.organisations.standards"))
    evaluations = sorted((e for e in recognition.evaluations_of_year(db, year).values()
                          if e.status == "confirmed" and e.organisation_id in by_id),
                         key=lambda e: by_id[e.organisation_id].code)
    if evaluations:
        rows, levels = [], []
        for e in evaluations:
            o = by_id[e.organisation_id]
            rows.append([o.code, o.district_code, o.kind, e.year, e.standard.kind,
                         e.standard.version, e.score, int(bool(e.recognised)),
                         e.reviewed_by or "", _iso(e.reviewed_at), e.confirmed_by or "",
                         _iso(e.confirmed_at), int(e.simulated)])
            for code in sorted(set(e.self_levels) | set(e.review_levels)):
                levels.append([o.code, code, e.self_levels.get(code, ""),
                               e.self_notes.get(code, ""), e.review_levels.get(code, ""),
                               e.review_comments.get(code, "")])
            for ev in sorted(e.evidence, key=lambda v: (v.criterion, v.id)):
                out.append(ArchiveFile(
                    f"organisations/evidence/{safe_name(o.code)}/"
                    f"{safe_name(ev.criterion)}-{ev.id}-{safe_name(ev.filename)}",
                    bytes(ev.content), f"{o.name_zh}：{ev.criterion} 项佐证材料 {ev.filename}",
                    f"{o.name('en')}: evidence for {ev.criterion}, {ev.filename}",
                    "monitoring.organisations.selfassess"))
        out.append(ArchiveFile(
            f"organisations/evaluations-{year}.xlsx", _xlsx([
                Sheet("evaluations", pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS),
                                                  dtype=object)),
                Sheet("levels", pd.DataFrame(levels, dtype=object, columns=[
                    "organisation", "criterion", "self_level", "self_note", "review_level",
                    "review_comment"]))], year),
            f"{year} 年经市级确认的学习型组织评价结果",
            f"Learning-organisation evaluations of {year} confirmed by the city office",
            "monitoring.organisations.recognition"))
    return files_of(out)


# ------------------------------------------------------------------ the action plan

PROGRESS_COLUMNS = ("indicator", "label_zh", "label_en", "kind", "period", "district",
                    "value", "numerator", "denominator", "target", "target_year",
                    "reached", "expected", "status", "source", "simulated")
REPORT_COLUMNS = ("unit_kind", "unit", "period", "state", "accepted_at", "simulated")
VALUE_COLUMNS = ("unit_kind", "unit", "indicator", "value", "denominator", "comment")


def programme(sessions: ArchiveSessions, year: int) -> list[ArchiveFile]:
    """The action plan of the year: every indicator's value against its target for the
    city and each district (XLSX, from :func:`monitoring.programme.progress.compute`),
    the year's accepted district and department reports with their values (XLSX), and
    those reports' evidence files as uploaded."""
    # start-up cost: the programme ORM
    from monitoring.programme import progress, reporting

    db = sessions.main
    rows = sorted((r for r in progress.compute(db, sessions.monitoring) if r.year == year),
                  key=lambda r: (r.indicator, r.district))
    out: list[ArchiveFile] = []
    if rows:
        table = pd.DataFrame([[getattr(r, c) for c in PROGRESS_COLUMNS] for r in rows],
                             columns=list(PROGRESS_COLUMNS), dtype=object)
        table["simulated"] = table["simulated"].astype(int)
        out.append(ArchiveFile(
            f"programme/progress-{year}.xlsx", _xlsx([Sheet("progress", table)], year),
            f"{year} 年行动计划指标完成情况（全市与各区县）",
            f"The action plan's indicators in {year}: city and districts against targets",
            "monitoring.programme.progress"))
    accepted = sorted((r for r in reporting.reports(db)
                       if r.period.year == year and r.state == "accepted"),
                      key=lambda r: (r.unit_kind, r.unit_code))
    if accepted:
        heads, values = [], []
        for report in accepted:
            heads.append([report.unit_kind, report.unit_code, report.period.code,
                          report.state, _iso(report.accepted_at), int(report.simulated)])
            for code, v in sorted(reporting.values_of(report).items()):
                values.append([report.unit_kind, report.unit_code, code, v.value,
                               v.denominator, v.comment])
            for ev in sorted(report.evidence, key=lambda e: e.id):
                out.append(ArchiveFile(
                    f"programme/evidence/{safe_name(report.unit_kind)}-"
                    f"{safe_name(report.unit_code)}/{ev.id}-{safe_name(ev.filename)}",
                    bytes(ev.data), f"{report.unit_code} {year} 年报送的佐证材料 {ev.filename}",
                    f"Evidence of {report.unit_code}'s {year} report: {ev.filename}",
                    "monitoring.programme.evidence"))
        out.append(ArchiveFile(
            f"programme/reports-{year}.xlsx", _xlsx([
                Sheet("reports", pd.DataFrame(heads, columns=list(REPORT_COLUMNS),
                                              dtype=object)),
                Sheet("values", pd.DataFrame(values, columns=list(VALUE_COLUMNS),
                                             dtype=object))], year),
            f"{year} 年经市级验收的区县与部门报送",
            f"District and department reports of {year} accepted by the city office",
            "monitoring.programme.reporting"))
    return files_of(out)
