"""Item files: every bad row reported with its row number, and nothing changed."""
from __future__ import annotations

import csv
import json

import openpyxl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from itembank.importing import CSV_COLUMNS, ItemFileError, read_item_file, spec_to_row
from itembank.models import Item, ItemVersion
from itembank.services import ImportRejected, export_specs, import_items
from learningcity.cli import main
from tests.conftest import write_ini

from .conftest import make_items


def write_csv(path, rows):
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def good_row(code="NEW-001", **changes):
    row = {c: "" for c in CSV_COLUMNS}
    row.update(code=code, domain="digital", type="single_choice", stem_zh="题", stem_en="Q",
               option1_zh="甲", option1_en="A", option2_zh="乙", option2_en="B", key="2",
               status="draft")
    row.update(changes)
    return row


def test_broken_file_reports_every_bad_row_and_changes_nothing(dbsession, bank, tmp_path):
    before = dbsession.scalar(sa.select(sa.func.count(Item.id)))
    path = tmp_path / "broken.csv"
    write_csv(path, [
        good_row("NEW-001"),                                   # row 2: fine
        good_row("NEW-002", domain="astrology"),               # row 3: unknown domain
        good_row("NEW-003", key=""),                           # row 4: missing key
        good_row("NEW-001"),                                   # row 5: duplicate code
        good_row("NEW-005", option2_en=""),                    # row 6: option count mismatch
        good_row("NEW-006", key="7"),                          # row 7: key beyond options
        good_row("NEW-007", type="essay"),                     # row 8: unknown type
    ])
    report = read_item_file(path)
    with pytest.raises(ImportRejected) as caught:
        import_items(dbsession, report, "tests")
    problems = {(p.row, p.column) for p in caught.value.report.problems}
    assert {(3, "domain"), (4, "key"), (5, "code"), (6, "option2_en"), (7, "key"),
            (8, "type")} <= problems
    assert not any(row == 2 for row, _ in problems)
    dbsession.rollback()
    assert dbsession.scalar(sa.select(sa.func.count(Item.id))) == before


def test_cli_import_of_broken_file_names_rows_and_writes_nothing(dbsession, bank, tmp_path,
                                                                 db_url):
    path = tmp_path / "broken.csv"
    write_csv(path, [good_row("NEW-001"), good_row("NEW-002", domain="astrology")])
    result = CliRunner().invoke(main, ["itembank", "import", str(path), "--ini",
                                       write_ini(tmp_path, db_url)])
    assert result.exit_code == 1
    assert "row 3, domain: unknown domain 'astrology'" in result.output
    assert dbsession.scalar(sa.select(Item.id).where(Item.code == "NEW-001")) is None


def test_bad_utf8_is_named(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes(",".join(CSV_COLUMNS).encode() + "\n题目".encode("gbk"))
    with pytest.raises(ItemFileError, match="not UTF-8"):
        read_item_file(path)


def test_xlsx_json_and_csv_read_the_same(tmp_path):
    items = make_items(3)
    json_path = tmp_path / "items.json"
    json_path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    from_json = read_item_file(json_path)
    assert from_json.ok, from_json.summary()
    rows = [spec_to_row(s) for s in from_json.items]
    csv_path = tmp_path / "items.csv"
    write_csv(csv_path, rows)
    book = openpyxl.Workbook()
    book.active.append(CSV_COLUMNS)
    for row in rows:
        book.active.append([int(row[c]) if c == "key" else row[c] for c in CSV_COLUMNS])
    xlsx_path = tmp_path / "items.xlsx"
    book.save(xlsx_path)
    for path in (csv_path, xlsx_path):
        report = read_item_file(path)
        assert report.ok, report.summary()
        assert [(s.code, s.options, s.key, s.stem_zh) for s in report.items] == \
            [(s.code, s.options, s.key, s.stem_zh) for s in from_json.items]


def test_reimport_of_changed_content_makes_a_new_version(dbsession, bank, tmp_path):
    items = make_items()
    items[0]["stem"]["zh"] = "修改后的题目"
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    outcome = import_items(dbsession, read_item_file(path), "tests")
    assert outcome.new_versions == [items[0]["code"]]
    assert len(outcome.unchanged) == len(items) - 1
    versions = dbsession.scalars(sa.select(ItemVersion.stem_zh).join(Item).where(
        Item.code == items[0]["code"]).order_by(ItemVersion.version)).all()
    assert versions == [f"题目 {items[0]['code']}", "修改后的题目"]


def test_export_then_import_round_trips(dbsession, bank, tmp_path, db_url):
    ini = write_ini(tmp_path, db_url)
    runner = CliRunner()
    for suffix in ("csv", "xlsx", "json"):
        out = tmp_path / f"export.{suffix}"
        result = runner.invoke(main, ["itembank", "export", "--out", str(out), "--ini", ini])
        assert result.exit_code == 0, result.output
        report = read_item_file(out)
        assert report.ok, report.summary()
        assert [s.code for s in report.items] == [s.code for s in export_specs(dbsession)]
        result = runner.invoke(main, ["itembank", "import", str(out), "--ini", ini])
        assert result.exit_code == 0 and "0 new item(s), 0 new version(s)" in result.output


def test_the_demo_bank_file_is_valid():
    from itembank.demo_content import DEMO_DIR

    report = read_item_file(DEMO_DIR / "items.json")
    assert report.ok, report.summary()
    ability = [s for s in report.items if s.type == "single_choice"]
    rating = [s for s in report.items if s.type == "rating"]
    assert len(ability) >= 150 and len(rating) >= 20
    assert len({s.domain for s in ability}) >= 5
