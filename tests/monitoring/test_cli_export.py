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
    frame = pd.read_csv(io.BytesIO(body), encoding="utf-8-sig")  # one header row
    assert pd.api.types.is_integer_dtype(frame["n"]), frame.dtypes
    assert all(pd.api.types.is_float_dtype(frame[c]) for c in ("estimate", "se", "ci_low"))
    assert sorted(frame["group"]) == ["farmer", "older_adult"]
    older = frame.set_index("group").loc["older_adult"]
    assert abs(older["estimate"] - 0.37) < 1e-12
    assert frame.set_index("group").loc["farmer"]["suppressed"] == 1
    assert pd.isna(frame.set_index("group").loc["farmer"]["estimate"])
    # the same bytes as the page download builds for the same table
    table = dashboard.table("groups", db, dashboard.Scope(None),
                            {"campaign": "A-2026", "measure": "", "dimension": "group"})
    assert len(table.rows) == len(frame)
    # the labels in the chosen language are in the companion codebook
    book = pd.read_csv(tmp_path / "groups-codebook.csv", encoding="utf-8-sig", dtype=str,
                       keep_default_na=False)
    assert list(book.columns) == ["variable", "label", "type", "value", "value_label"]
    heads = book[book["value"] == ""].set_index("variable")
    assert heads.loc["estimate", "label"] == "估计值"
    assert heads.loc["n", "type"] == "integer" and heads.loc["estimate", "type"] == "number"
    groups = book[(book["variable"] == "group") & (book["value"] != "")]
    assert dict(zip(groups["value"], groups["value_label"], strict=True))["farmer"] == "农民"
    reasons = book[(book["variable"] == "reason") & (book["value"] != "")]
    assert "small_n" in set(reasons["value"])
    en = tmp_path / "groups-en.csv"
    assert _run(ini, "--latest", "--table", "groups", "--format", "csv", "--out", str(en),
                "--lang", "en").exit_code == 0
    assert en.read_bytes().decode("utf-8-sig").splitlines()[0].startswith("group,district")
    en_book = (tmp_path / "groups-en-codebook.csv").read_bytes().decode("utf-8-sig")
    assert "Estimate" in en_book and "Farmers" in en_book
    # overview and trends keep only the campaign's rows with --campaign
    xlsx = tmp_path / "trends.xlsx"
    assert _run(ini, "--campaign", "A-2025", "--table", "trends", "--format", "xlsx",
                "--out", str(xlsx)).exit_code == 0
    workbook = openpyxl.load_workbook(xlsx)
    assert workbook.sheetnames == ["trends", "codebook"]
    sheet = workbook["trends"]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    campaign_col = values[0].index("campaign")
    assert {r[campaign_col] for r in values[1:]} == {"A-2025"}  # one header row
    n_col, est_col = values[0].index("n"), values[0].index("estimate")
    assert all(isinstance(r[n_col], int) and isinstance(r[est_col], float)
               for r in values[1:])
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    judgements = [r for r in workbook["codebook"].iter_rows(values_only=True)
                  if r[0] == "judgement" and r[3]]
    assert {r[3]: r[4] for r in judgements}["not_met"] == "未达标"
    sav = tmp_path / "districts.sav"
    assert _run(ini, "--table", "districts", "--format", "sav", "--out", str(sav)
                ).exit_code == 0
    frame, meta = pyreadstat.read_sav(str(sav))
    assert sorted(frame["district"]) == ["A", "B"]
    assert meta.column_names_to_labels["district"] == "区县"
    assert meta.variable_measure["n_respondents"] == "scale"
    assert meta.original_variable_types["n_respondents"] == "F8.0"
    assert meta.variable_measure["district"] == "nominal"
    assert meta.variable_storage_width["district"] == 32  # the schema's width
    assert set(meta.variable_value_labels["district"]) >= {"A", "B"}
    share = next(c for c in meta.column_names if c.endswith("__judgement"))
    assert meta.original_variable_types[share.removesuffix("__judgement")] == "F10.4"
    assert meta.variable_value_labels[share]["met"] == "已达标"
    groups_sav = tmp_path / "groups.sav"
    assert _run(ini, "--campaign", "A-2026", "--table", "groups", "--format", "sav",
                "--out", str(groups_sav), "--lang", "en").exit_code == 0
    frame, meta = pyreadstat.read_sav(str(groups_sav))
    assert meta.original_variable_types["se"] == "F10.4"  # an SE of 0.02 keeps 4 decimals
    assert meta.variable_measure["se"] == "scale"
    assert meta.variable_value_labels["group"]["farmer"] == "Farmers"
    assert meta.variable_value_labels["reason"]["small_n"].startswith("suppressed")
    assert meta.column_names_to_labels["estimate"] == "Estimate"
    events = db.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "monitoring.download")).all()
    assert len(events) == 5 and all(e.detail["via"] == "cli" for e in events)


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
