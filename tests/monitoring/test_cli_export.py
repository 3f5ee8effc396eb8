"""``learningcity monitoring export``: the staff pages' tables written from the command line
(CSV, XLSX, SPSS .sav), the same bytes as the page download, in zh-CN or English."""
from __future__ import annotations

import datetime as dt
import io
from typing import Any

import openpyxl
import pandas as pd
import pyreadstat
import sqlalchemy as sa
from click.testing import CliRunner

from learningcity.audit import AuditEvent
from learningcity.cli import main
from monitoring.results import dashboard
from monitoring.results.aggregate import write_aggregates

from ..conftest import write_ini


def _row(measure: str, dimension: str, group: str, district: str, estimate: float | None,
         n: int = 80) -> dict[str, Any]:
    hidden = estimate is None
    return {"measure": measure, "kind": "indicator", "label_zh": "参与率",
            "label_en": "Participation", "dimension": dimension, "group_value": group,
            "district": district, "n": n, "estimate": estimate,
            "se": None if hidden else 0.02, "ci_low": None if hidden else estimate - 0.04,
            "ci_high": None if hidden else estimate + 0.04, "deff": None if hidden else 1.3,
            "suppressed": hidden, "suppression_reason": "small_n" if hidden else None,
            "method": "taylor", "target": 0.5, "direction": ">=", "judgement": None}


class _Campaign:
    def __init__(self, code: str, district: str, closes: dt.datetime) -> None:
        self.code, self.name, self.district, self.closes_at = code, code, district, closes


def _load(db: Any) -> None:
    for code, district, year, value in (("A-2025", "A", 2025, 0.41), ("A-2026", "A", 2026, 0.47),
                                        ("B-2026", "B", 2026, 0.52)):
        rows = [_row("participation", "all", "", district, value),
                _row("participation", "district", district, district, value),
                _row("participation", "group", "older_adult", district, value - 0.1),
                _row("participation", "group", "farmer", district, None, n=12)]
        closes = dt.datetime(year, 6, 30, tzinfo=dt.UTC)
        write_aggregates(db, _Campaign(code, district, closes), rows, 200)
    db.commit()


def _run(ini: str, *args: str) -> Any:
    return CliRunner().invoke(main, ["monitoring", "export", *args, "--ini", ini],
                              catch_exceptions=False)


def test_export_writes_the_pages_tables(tmp_path: Any, db_url: str, monitoring_demo: Any
                                        ) -> None:
    db = monitoring_demo
    _load(db)
    ini = write_ini(tmp_path, db_url)
    out = tmp_path / "groups.csv"
    done = _run(ini, "--campaign", "A-2026", "--table", "groups", "--format", "csv",
                "--out", str(out))
    assert done.exit_code == 0, done.output
    body = out.read_bytes()
    assert body.startswith(b"\xef\xbb\xbf")
    frame = pd.read_csv(io.BytesIO(body), encoding="utf-8-sig", skiprows=[1])
    assert sorted(frame["group"]) == ["farmer", "older_adult"]
    older = frame.set_index("group").loc["older_adult"]
    assert abs(older["estimate"] - 0.37) < 1e-12
    assert frame.set_index("group").loc["farmer"]["suppressed"] == 1
    assert pd.isna(frame.set_index("group").loc["farmer"]["estimate"])
    # the same bytes as the page download builds for the same table
    table = dashboard.table("groups", db, dashboard.Scope(None),
                            {"campaign": "A-2026", "measure": "", "dimension": "group"})
    assert len(table.rows) == len(frame)
    # the second header row holds the labels in the chosen language
    labels = body.decode("utf-8-sig").splitlines()[1]
    assert "估计值" in labels or "估计" in labels, labels
    en = tmp_path / "groups-en.csv"
    assert _run(ini, "--latest", "--table", "groups", "--format", "csv", "--out", str(en),
                "--lang", "en").exit_code == 0
    assert "Estimate" in en.read_bytes().decode("utf-8-sig").splitlines()[1]
    # overview and trends keep only the campaign's rows with --campaign
    xlsx = tmp_path / "trends.xlsx"
    assert _run(ini, "--campaign", "A-2025", "--table", "trends", "--format", "xlsx",
                "--out", str(xlsx)).exit_code == 0
    sheet = openpyxl.load_workbook(xlsx).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    campaign_col = values[0].index("campaign")
    assert {r[campaign_col] for r in values[2:]} == {"A-2025"}
    sav = tmp_path / "districts.sav"
    assert _run(ini, "--table", "districts", "--format", "sav", "--out", str(sav)
                ).exit_code == 0
    frame, meta = pyreadstat.read_sav(str(sav))
    assert sorted(frame["district"]) == ["A", "B"]
    assert meta.column_names_to_labels["district"] == "区县"
    events = db.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "monitoring.download")).all()
    assert len(events) == 4 and all(e.detail["via"] == "cli" for e in events)


def test_export_refuses_what_it_cannot_write(tmp_path: Any, db_url: str, monitoring_demo: Any
                                             ) -> None:
    ini = write_ini(tmp_path, db_url)
    out = tmp_path / "x.csv"
    done = _run(ini, "--latest", "--table", "groups", "--format", "csv", "--out", str(out))
    assert done.exit_code == 1 and "no campaign yet" in done.output
    _load(monitoring_demo)
    done = _run(ini, "--campaign", "Z-1", "--table", "groups", "--format", "csv",
                "--out", str(out))
    assert done.exit_code == 1 and "'Z-1' has no aggregates" in done.output
    done = _run(ini, "--campaign", "A-2026", "--latest", "--table", "groups", "--format",
                "csv", "--out", str(out))
    assert done.exit_code == 2
    assert not out.exists()
