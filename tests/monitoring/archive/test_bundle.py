"""The yearly archive: two builds byte-identical apart from the build time, checksums
that verify (and ``sha256sum -c``), tampering detected, no rewrite of a bundle, and the
contributors' files present for the demo data."""
from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from sqlalchemy.orm import object_session

from monitoring.archive import bundle
from monitoring.archive.bundle import ArchiveFile, ArchiveSessions
from tests.conftest import write_ini

YEAR = 2025


def _build(db: Any, out: Path, sections: Any, when: dt.datetime) -> bundle.Manifest:
    return bundle.build_archive(ArchiveSessions(db, db), YEAR, out, sections=sections,
                                now=when)


def _tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_two_builds_are_identical_apart_from_the_build_time(
        year_data: Any, sections: Any, tmp_path: Path) -> None:
    one = _build(year_data, tmp_path / "one", sections,
                 dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC))
    two = _build(year_data, tmp_path / "two", sections,
                 dt.datetime(2026, 3, 9, 17, 30, tzinfo=dt.UTC))
    a, b = _tree(one.directory), _tree(two.directory)
    assert set(a) == set(b)
    assert a[bundle.MANIFEST] != b[bundle.MANIFEST]  # the build times differ
    for path in sorted(set(a) - {bundle.MANIFEST, bundle.SUMS}):
        assert a[path] == b[path], path
    ma, mb = (json.loads(x[bundle.MANIFEST]) for x in (a, b))
    assert ma.pop("built_at") == "2026-01-05T08:00:00Z" and mb.pop("built_at")
    assert ma == mb
    # the manifest is canonical: sorted keys, files sorted by path
    assert a[bundle.MANIFEST] == bundle.canonical_json(json.loads(a[bundle.MANIFEST]))
    assert [f["path"] for f in ma["files"]] == sorted(f["path"] for f in ma["files"])
    def sums(tree: dict[str, bytes]) -> list[str]:
        return [ln for ln in tree[bundle.SUMS].decode().splitlines()
                if not ln.endswith(" manifest.json")]

    assert sums(a) == sums(b) and len(sums(a)) == len(ma["files"])
    assert bundle.verify_archive(one.directory) == []
    done = subprocess.run(["sha256sum", "--quiet", "-c", bundle.SUMS], cwd=one.directory,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_demo_year_has_every_contributors_files(year_data: Any, sections: Any,
                                                    tmp_path: Path) -> None:
    manifest = _build(year_data, tmp_path, sections, dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    paths = {f["path"]: f for f in manifest.files}
    for path in ("monitoring/cells-2025.xlsx", "monitoring/report-2025.pdf",
                 "campaigns/campaigns-2025.xlsx", "organisations/register-2025.xlsx",
                 "organisations/standards-2025.xlsx", "organisations/evaluations-2025.xlsx"):
        assert path in paths, sorted(paths)
        assert paths[path]["size"] > 0 and paths[path]["description_zh"]
        assert paths[path]["description_en"] and paths[path]["source"]
    evidence = [p for p in paths if p.startswith("organisations/evidence/")]
    assert len(evidence) == 1 and evidence[0].endswith("minutes.pdf")
    from tests.monitoring.archive.conftest import EVIDENCE

    assert (manifest.directory / evidence[0]).read_bytes() == EVIDENCE
    assert (manifest.directory / "monitoring/report-2025.pdf").read_bytes().startswith(b"%PDF")
    book = openpyxl.load_workbook(manifest.directory / "campaigns/campaigns-2025.xlsx")
    assert book.properties.created == dt.datetime(2025, 12, 31)
    assert [r[0] for r in book["aggregated"].iter_rows(min_row=2, values_only=True)] == ["A-2025"]
    cells = openpyxl.load_workbook(manifest.directory / "monitoring/cells-2025.xlsx")
    campaigns = {r[0] for r in cells.worksheets[0].iter_rows(min_row=2, values_only=True)}
    assert campaigns == {"A-2025"}  # 2026's campaigns are not in the 2025 archive
    register = openpyxl.load_workbook(manifest.directory / "organisations/register-2025.xlsx")
    assert register["register"].max_row > 10
    data = json.loads((manifest.directory / bundle.MANIFEST).read_text(encoding="utf-8"))
    assert data["year"] == YEAR and data["version"]
    assert data["bundle"] == "learning-city-archive-2025"


def _tiny(sessions: Any, year: int) -> list[ArchiveFile]:
    return [ArchiveFile("a/one.txt", b"one\n", "一", "one", "test"),
            ArchiveFile("b.txt", f"{year}\n".encode(), "二", "two", "test")]


def test_verify_reports_changed_missing_and_extra_files(tmp_path: Path) -> None:
    m = bundle.build_archive(ArchiveSessions(None, None), YEAR, tmp_path,
                             sections={"tiny": _tiny})
    d = m.directory
    assert bundle.verify_archive(d) == []
    (d / "a/one.txt").write_bytes(b"ONE\n")  # same size, other bytes
    assert bundle.verify_archive(d) == ["changed: a/one.txt"]
    (d / "b.txt").unlink()
    (d / "c.txt").write_bytes(b"new")
    assert bundle.verify_archive(d) == ["changed: a/one.txt", "missing: b.txt", "extra: c.txt"]
    runner = CliRunner()
    from monitoring.archive.cli import archive

    done = runner.invoke(archive, ["verify", str(d)])
    assert done.exit_code == 1 and "changed: a/one.txt" in done.output
    # a manifest edited to match the tampered file still fails against SHA256SUMS
    data = json.loads((d / bundle.MANIFEST).read_text(encoding="utf-8"))
    data["files"][0]["sha256"] = bundle.sha256(b"ONE\n")
    (d / bundle.MANIFEST).write_bytes(bundle.canonical_json(data))
    assert any(p.startswith(bundle.SUMS) for p in bundle.verify_archive(d))


def test_a_second_build_into_the_same_directory_is_refused(tmp_path: Path) -> None:
    m = bundle.build_archive(ArchiveSessions(None, None), YEAR, tmp_path,
                             sections={"tiny": _tiny})
    before = _tree(m.directory)
    calls = []

    def other(sessions: Any, year: int) -> list[ArchiveFile]:
        calls.append(year)
        return [ArchiveFile("b.txt", b"changed\n", "", "", "test")]

    with pytest.raises(bundle.ArchiveExists):
        bundle.build_archive(ArchiveSessions(None, None), YEAR, tmp_path,
                             sections={"tiny": other})
    assert calls == [] and _tree(m.directory) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [m.directory.name]
    # an empty bundle directory may be filled
    shutil.rmtree(m.directory)
    m.directory.mkdir()
    bundle.build_archive(ArchiveSessions(None, None), YEAR, tmp_path, sections={"tiny": _tiny})
    assert bundle.verify_archive(m.directory) == []


@pytest.mark.parametrize("path", ["../x.txt", "/etc/x", "a//b.txt", "manifest.json",
                                  "a/../b.txt", "dir\\x.txt", ".hidden"])
def test_unsafe_paths_are_refused_and_nothing_is_written(tmp_path: Path, path: str) -> None:
    def bad(sessions: Any, year: int) -> list[ArchiveFile]:
        return [ArchiveFile(path, b"x", "", "", "test")]

    with pytest.raises(bundle.ArchiveError):
        bundle.build_archive(ArchiveSessions(None, None), YEAR, tmp_path, sections={"bad": bad})
    assert list(tmp_path.iterdir()) == []


def test_cli_builds_with_progress_and_audit_then_refuses(year_data: Any, sections: Any,
                                                         db_url: str, tmp_path: Path) -> None:
    from learningcity import audit
    from monitoring.archive.cli import archive

    ini = write_ini(tmp_path, db_url)
    out = tmp_path / "out"
    runner = CliRunner()
    done = runner.invoke(archive, ["build", "--ini", ini, "--year", "2025", "--out", str(out),
                                   "--as", "tester"])
    assert done.exit_code == 0, done.output
    assert "organisations:" in done.stderr and "learning-city-archive-2025" in done.stdout
    directory = out / "learning-city-archive-2025"
    assert runner.invoke(archive, ["verify", str(directory)]).exit_code == 0
    again = runner.invoke(archive, ["build", "--ini", ini, "--year", "2025", "--out", str(out)])
    assert again.exit_code == 1 and "never rewritten" in again.output
    year_data.rollback()
    assert audit.count_events(year_data, "archive.build") == 1


def test_fieldwork_campaigns_of_the_year_are_in_the_campaigns_file(
        drawn_campaign: Any, tmp_path: Path) -> None:
    from monitoring.archive import sections
    from monitoring.fieldwork.window import to_local

    campaign = drawn_campaign(n=12)
    db = object_session(campaign)
    year = to_local(campaign.closes_at, campaign.timezone).year
    files = sections.campaigns(ArchiveSessions(db, db), year)
    book = openpyxl.load_workbook(io.BytesIO(files[0].content))
    rows = list(book["fieldwork"].iter_rows(min_row=2, values_only=True))
    # drawn, invitations not issued yet: nothing sampled in the field so far
    assert [(r[0], r[1], r[4], r[8]) for r in rows] == [(campaign.code, "A", campaign.status, 0)]
    assert sections.campaigns(ArchiveSessions(db, db), year - 5) == []
