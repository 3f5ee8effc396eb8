"""``learningcity campaign``: the whole flow from the command line; errors change nothing."""
from __future__ import annotations

import csv
import io
import re

import sqlalchemy as sa
from click.testing import CliRunner

from learningcity.cli import main
from monitoring.fieldwork.invitations import find_invitation
from monitoring.fieldwork.models import Campaign, FrameUnit, Invitation

from ..conftest import write_ini
from .conftest import cluster_rows, to_csv
from .entry_support import ready_campaign

CODE_RE = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{5}\b")

INI_SECRET = "test-secret-that-is-long-enough-for-us"  # tests.conftest.write_ini


def _run(args, ini):
    return CliRunner().invoke(main, [*args, "--ini", ini], catch_exceptions=False)


def test_cli_flow(tmp_path, db_url, monitoring_demo) -> None:
    db = monitoring_demo
    ini = write_ini(tmp_path, db_url)
    done = _run(["campaign", "create", "--district", "A", "--name", "CLI campaign",
                 "--opens", "2026-01-01 08:00", "--closes", "2099-01-01 08:00"], ini)
    assert done.exit_code == 0, done.output
    code = done.output.strip()
    assert code.startswith("A-")
    assert code in _run(["campaign", "list"], ini).output
    # a frame with problems: exit 1, every problem named, nothing stored
    rows = cluster_rows()
    rows[0]["population"] = "abc"
    rows[3]["area"] = ""
    bad = tmp_path / "bad.csv"
    bad.write_bytes(to_csv(rows))
    done = _run(["campaign", "upload-frame", code, str(bad), "--kind", "cluster",
                 "--id-column", "community", "--strata", "area", "--size-column",
                 "population"], ini)
    assert done.exit_code == 1
    assert "bad.csv: row 2, column 'population'" in done.output
    assert "bad.csv: row 5, column 'area'" in done.output
    assert db.scalar(sa.select(sa.func.count(FrameUnit.id))) == 0
    good = tmp_path / "good.csv"
    good.write_bytes(to_csv(cluster_rows()))
    done = _run(["campaign", "upload-frame", code, str(good), "--kind", "cluster",
                 "--id-column", "community", "--strata", "area", "--size-column",
                 "population"], ini)
    assert done.exit_code == 0, done.output
    done = _run(["campaign", "design", code, "--n", "4", "--m", "3"], ini)
    assert done.exit_code == 0, done.output
    done = _run(["campaign", "draw", code, "--seed", "11"], ini)
    assert done.exit_code == 0 and "seed 11" in done.output
    out = tmp_path / "codes.csv"
    done = _run(["campaign", "invitations", code, "--out", str(out), "--base-url",
                 "https://learn.example.cn"], ini)
    assert done.exit_code == 0, done.output
    listed = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert len(listed) == 12  # 4 clusters x m=3 (every demo cluster has more than 3 people)
    db.expire_all()
    for row in listed:
        assert CODE_RE.fullmatch(row["code"])
        assert row["link"] == f"https://learn.example.cn/i/{row['code']}"
        assert find_invitation(db, row["code"], INI_SECRET) is not None
    # nothing new to issue: exit 1, the file is not created
    again = tmp_path / "again.html"
    done = _run(["campaign", "invitations", code, "--out", str(again), "--base-url",
                 "https://x"], ini)
    assert done.exit_code == 1 and not again.exists()
    # replacing unused codes writes a printable page
    done = _run(["campaign", "invitations", code, "--out", str(again), "--base-url",
                 "https://x", "--replace-unused"], ini)
    assert done.exit_code == 0, done.output
    html = again.read_text(encoding="utf-8")
    assert len(set(CODE_RE.findall(html))) == 12 and html.count("data:image/svg+xml") == 12
    db.expire_all()
    assert find_invitation(db, listed[0]["code"], INI_SECRET) is None
    done = _run(["campaign", "progress", code], ini)
    assert done.exit_code == 0 and "(overall)\t12\t0\t0\t0.000" in done.output
    refused = _run(["campaign", "close", code], ini)
    assert refused.exit_code == 1 and "add --yes" in refused.output
    assert "no one has completed yet" in refused.stderr  # warned before confirming
    assert db.scalar(sa.select(Campaign)).status == "ready"
    # closed with no completes: the close stands, the weights failed, so exit 1
    done = _run(["campaign", "close", code, "--yes", "--lang", "en"], ini)
    assert done.exit_code == 1, done.output
    assert f"{code}: closed" in done.stdout
    assert "weights: failed" in done.stdout and "aggregates: skipped" in done.stdout
    assert "No respondent completed the campaign: no weights and no results." in done.stdout
    assert "a step failed: weights" in done.stderr
    db.expire_all()
    assert db.scalar(sa.select(Campaign)).status == "closed"
    done = _run(["campaign", "draw", code], ini)
    assert done.exit_code == 1 and "closed" in done.output
    n_before = db.scalar(sa.select(sa.func.count(Invitation.id)))
    done = _run(["campaign", "invitations", code, "--out", str(tmp_path / "z.csv"),
                 "--base-url", "https://x"], ini)
    assert done.exit_code == 1 and not (tmp_path / "z.csv").exists()
    assert db.scalar(sa.select(sa.func.count(Invitation.id))) == n_before


def test_cli_errors(tmp_path, db_url, monitoring_demo) -> None:
    ini = write_ini(tmp_path, db_url)
    done = _run(["campaign", "create", "--district", "Z", "--name", "", "--opens", "soon",
                 "--closes", "2099-01-01 08:00"], ini)
    assert done.exit_code == 1
    assert "district: unknown district 'Z'" in done.output and "name: required" in done.output
    assert "opens_at: 'soon'" in done.output
    done = _run(["campaign", "draw", "NOPE"], ini)
    assert done.exit_code == 1 and "no campaign 'NOPE'" in done.output


def test_cli_progress_and_quiet(tmp_path, db_url, monitoring_demo) -> None:
    ini = write_ini(tmp_path, db_url)
    code = _run(["campaign", "create", "--district", "A", "--name", "Quiet",
                 "--opens", "2026-01-01 08:00", "--closes", "2099-01-01 08:00"],
                ini).output.strip()
    frame = tmp_path / "frame.csv"
    frame.write_bytes(to_csv(cluster_rows()))
    args = ["campaign", "upload-frame", code, str(frame), "--kind", "cluster",
            "--id-column", "community", "--strata", "area", "--size-column", "population"]
    loud = _run(args, ini)
    assert loud.exit_code == 0 and "reading and checking" in loud.output
    quiet = _run([*args, "--quiet"], ini)
    assert quiet.exit_code == 0, quiet.output
    assert "reading and checking" not in quiet.output and "storing rows" not in quiet.output
    assert "frame.csv stored" in quiet.output
    assert _run(["campaign", "design", code, "--n", "4", "--m", "2"], ini).exit_code == 0
    assert _run(["campaign", "draw", code, "--seed", "3"], ini).exit_code == 0
    out = tmp_path / "codes.html"
    done = _run(["campaign", "invitations", code, "--out", str(out), "--base-url",
                 "https://learn.example.cn", "--quiet"], ini)
    assert done.exit_code == 0, done.output
    assert "QR codes" not in done.output and out.read_text().count("<img") == 8


def _completed_campaign(db, make_campaign, strata=("S01",)):
    """A ready campaign whose invitations (6 per stratum) are all completed, the first
    stratum listed excepted when ``strata`` has an empty one named ``EMPTY``."""
    campaign = make_campaign(survey_code=None)
    people = [{"age_band": band, "sex": sex} for band in ("18-29", "60-69")
              for sex in ("female", "male")]
    issued = ready_campaign(db, campaign, {s: (200.0, people) for s in strata})
    for _code, inv in issued:
        inv.status = "started" if inv.stratum == "EMPTY" else "completed"
    db.commit()
    return campaign


def test_cli_close_ok_exits_0_in_chinese(tmp_path, db_url, monitoring_demo,
                                         make_campaign) -> None:
    db = monitoring_demo
    campaign = _completed_campaign(db, make_campaign, ("S01", "EMPTY"))
    done = _run(["campaign", "close", campaign.code, "--yes"], write_ini(tmp_path, db_url))
    assert done.exit_code == 0, done.output
    assert "no one has completed" not in done.output and "failed" not in done.output
    # zh-CN by default: the stratum without respondents is named, the step warns
    assert "weights: warning" in done.stdout
    assert "层 EMPTY 没有受访者：它的权重由层 S01 承担。" in done.stdout
    assert "aggregates: " in done.stdout and "${" not in done.output
    db.expire_all()
    assert db.get(Campaign, campaign.id).status == "closed"


def test_cli_close_failed_step_exits_1(tmp_path, db_url, monitoring_demo, make_campaign,
                                       monkeypatch) -> None:
    from monitoring import closing

    def broken(*_args, **_kwargs):
        raise RuntimeError("the monitoring database is read-only")

    monkeypatch.setattr(closing, "aggregate_campaign", broken)
    campaign = _completed_campaign(monitoring_demo, make_campaign)
    done = _run(["campaign", "close", campaign.code, "--yes", "--lang", "en"],
                write_ini(tmp_path, db_url))
    assert done.exit_code == 1, done.output
    # no population margin in the test database: weights computed, uncalibrated, warned
    assert "weights: warning" in done.stdout and "aggregates: failed" in done.stdout
    assert "there is no active population margin" in done.stdout
    assert "Not computed: the monitoring database is read-only" in done.stdout
    assert "a step failed: aggregates" in done.stderr
    monitoring_demo.expire_all()
    assert monitoring_demo.get(Campaign, campaign.id).status == "closed"  # the close stands
