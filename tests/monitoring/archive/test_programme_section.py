"""The action plan's part of the yearly archive: progress against the targets, the
accepted reports with their values, and their evidence files, the same bytes each time."""
from __future__ import annotations

import io
from typing import Any

import openpyxl

from monitoring.archive.bundle import ArchiveSessions
from monitoring.archive.sections import programme


def test_programme_section_holds_progress_accepted_reports_and_evidence(dbsession: Any
                                                                        ) -> None:
    from learningcity import demo
    from monitoring.programme import demo as programme_demo
    from monitoring.programme import evidence, reporting

    demo.load(dbsession)
    assert programme_demo.load(dbsession, dbsession, force=True) > 0
    period = reporting.ensure_period(dbsession, 2025)
    report = reporting.get_report(dbsession, period, reporting.Unit("district", "D03"))
    state, report.state = report.state, "draft"          # attach, then accept again
    pdf = b"%PDF-1.4\n% list of learning stars\n"
    evidence.add(dbsession, report, "名单.pdf", pdf, "tester")
    report.state = state
    dbsession.commit()
    accepted = [r for r in reporting.reports(dbsession)
                if r.period.year == 2025 and r.state == "accepted"]
    assert report in accepted and len(accepted) < len(reporting.reports(dbsession))

    sessions = ArchiveSessions(dbsession, dbsession)
    files = {f.path_in_bundle: f for f in programme(sessions, 2025)}
    assert {"programme/progress-2025.xlsx", "programme/reports-2025.xlsx"} <= set(files)
    shown = [p for p in files if p.startswith("programme/evidence/")]
    assert len(shown) == 1 and files[shown[0]].content == pdf
    book = openpyxl.load_workbook(io.BytesIO(files["programme/reports-2025.xlsx"].content))
    units = [r[1] for r in book["reports"].iter_rows(min_row=2, values_only=True)]
    assert sorted(units) == sorted(r.unit_code for r in accepted)
    values = list(book["values"].iter_rows(min_row=2, values_only=True))
    assert len(values) == sum(len(r.values) for r in accepted)
    progress = openpyxl.load_workbook(
        io.BytesIO(files["programme/progress-2025.xlsx"].content))["progress"]
    indicators = {r[0] for r in progress.iter_rows(min_row=2, values_only=True)}
    assert len(indicators) >= 14
    # the same bytes on a second gathering (the archive is rebuilt byte for byte)
    again = {f.path_in_bundle: f.content for f in programme(sessions, 2025)}
    assert again == {p: f.content for p, f in files.items()}
