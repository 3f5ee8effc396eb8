"""Progress: counts per stratum and overall, response rates, quotas, days, chart, CSV."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import sqlalchemy as sa

from monitoring.fieldwork import invitations as inv
from monitoring.fieldwork import progress
from monitoring.fieldwork.models import Invitation
from monitoring.results import charts
from tests.conftest import TEST_SECRET

from ..conftest import ACTOR


def test_progress_numbers(drawn_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = drawn_campaign(n=12, seed=3)
    inv.issue_invitations(db, campaign, ACTOR, secret=TEST_SECRET)
    rows = db.scalars(sa.select(Invitation).where(Invitation.campaign_id == campaign.id)
                      .order_by(Invitation.id)).all()
    # a scripted fieldwork: statuses and completion times (Asia/Shanghai days)
    base = dt.datetime(2027, 3, 1, 15, 30, tzinfo=dt.UTC)  # 23:30 local on 1 March
    plan = ["completed", "completed", "started", "void", "completed", "issued"]
    expected: dict[str, dict[str, int]] = {}
    completed_times = []
    for i, row in enumerate(rows):
        status = plan[i % len(plan)]
        row.status = status
        if status == "completed":
            row.completed_at = base + dt.timedelta(hours=i)
            completed_times.append(row.completed_at)
        e = expected.setdefault(row.stratum, {"sampled": 0, "started": 0, "completed": 0})
        if status != "void":
            e["sampled"] += 1
        if status in ("started", "completed"):
            e["started"] += 1
        if status == "completed":
            e["completed"] += 1
    db.flush()
    report = progress.campaign_progress(db, campaign)
    by = {r.stratum: r for r in report.rows}
    assert set(by) == {s.stratum for s in campaign.strata}
    quotas = {s.stratum: s.quota for s in campaign.strata}
    for stratum, row in by.items():
        e = expected.get(stratum, {"sampled": 0, "started": 0, "completed": 0})
        assert (row.sampled, row.started, row.completed) == (e["sampled"], e["started"],
                                                             e["completed"])
        if e["sampled"]:
            assert row.response_rate == pytest.approx(e["completed"] / e["sampled"])
        else:
            assert row.response_rate is None
        assert row.quota == quotas[stratum]
        assert row.quota_met == (e["completed"] >= quotas[stratum])
    total_sampled = sum(e["sampled"] for e in expected.values())
    total_completed = sum(e["completed"] for e in expected.values())
    assert report.overall.sampled == total_sampled == 12 - plan.count("void") * 2
    assert report.overall.response_rate == pytest.approx(total_completed / total_sampled)
    # days are local days: 15:30 UTC is 23:30 in Shanghai, one hour later is the next day
    local_days = [(t + dt.timedelta(hours=8)).date() for t in completed_times]
    want = {d: local_days.count(d) for d in local_days}
    assert {d: n for d, n in report.daily if n} == want
    assert sum(n for _d, n in report.daily) == total_completed
    assert report.cumulative[-1][1] == total_completed
    png = charts.daily_chart_png(report, "进度")
    assert png.startswith(b"\x89PNG")
    table = list(csv.reader(io.StringIO(progress.progress_csv(report).decode("utf-8-sig"))))
    assert table[0][:6] == ["stratum", "population", "allocated", "sampled", "started",
                            "completed"]
    assert table[-1][0] == "(overall)" and int(table[-1][3]) == total_sampled
    assert len(table) == len(report.rows) + 2


def test_empty_progress(make_campaign, monitoring_demo) -> None:
    report = progress.campaign_progress(monitoring_demo, make_campaign())
    assert report.rows == [] and report.overall.sampled == 0 and report.daily == []
    assert charts.daily_chart_png(report).startswith(b"\x89PNG")


def test_progress_csv_guards_a_stratum_that_looks_like_a_formula() -> None:
    """Stratum names come from an uploaded frame: a formula must not run in a spreadsheet."""
    import csv
    import io

    from monitoring.fieldwork.progress import ProgressReport, StratumProgress, progress_csv

    def row(name: str) -> StratumProgress:
        return StratumProgress(name, 100.0, 10, 10, 5, 4, 0, 0.4, 0.0, False)

    report = ProgressReport("X", [row('=HYPERLINK("http://x","y")')], row(""))
    rows = list(csv.reader(io.StringIO(progress_csv(report).decode("utf-8-sig"))))
    assert rows[1][0] == '\'=HYPERLINK("http://x","y")'
    assert rows[2][0] == "(overall)" and rows[1][5] == "4"


def test_progress_csv_bytes() -> None:
    """Through tabular's registry the file is as before: BOM, CRLF, rates with four
    decimals, whole numbers without decimals, flags as yes/no, empty for no rate."""
    from monitoring.fieldwork.progress import ProgressReport, StratumProgress, progress_csv

    report = ProgressReport("X", [StratumProgress("S01 / 60+", 100.0, 10, 10, 5, 4, 7, 0.4,
                                                  4 / 7, False),
                                  StratumProgress("-east", 50.0, 0, 0, 0, 0, 0, None, 1.0,
                                                  True)],
                            StratumProgress("", 150.0, 10, 10, 5, 4, 7, 0.4, 4 / 7, False))
    assert progress_csv(report).decode("utf-8") == (
        "\ufeffstratum,population,allocated,sampled,started,completed,response_rate,quota,"
        "quota_progress,quota_met\r\n"
        "S01 / 60+,100,10,10,5,4,0.4000,7,0.5714,no\r\n"
        "'-east,50,0,0,0,0,,0,1,yes\r\n"
        "(overall),150,10,10,5,4,0.4000,7,0.5714,no\r\n")
