"""Frames keep only what the campaign needs; identity numbers are refused unless declared.

Finding: a frame upload kept every column (names, phone numbers, ID numbers) in
``frame_unit.attributes`` indefinitely, linked to the answers. Now only the id, stratum,
size, declared keep and declared contact columns are stored, undeclared identity
numbers refuse the file naming the column, and contact columns go at the close.
"""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from monitoring import closing
from monitoring.fieldwork import frames, invitations, retention
from monitoring.fieldwork.frames import FrameError, FrameSpec, is_prc_id_number
from monitoring.fieldwork.models import FrameUnit, FrameUpload
from tests.conftest import TEST_SECRET

from ..conftest import ACTOR, to_csv, unit_rows


def prc_id(first17: str) -> str:
    """A well-formed 18-digit PRC identity number (valid ISO 7064 MOD 11-2 check digit)."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


def _rows_with(**extra):
    rows = unit_rows(streets=2, per_cell=2)
    for k, row in enumerate(rows):
        for name, make in extra.items():
            row[name] = make(k)
    return rows


def _all_text(db) -> str:
    from learningcity.db import Base

    return "\n".join(str(v) for table in Base.metadata.sorted_tables
                     for row in db.execute(sa.select(table)).all() for v in row)


def test_prc_id_number_check_digit() -> None:
    assert is_prc_id_number("11010519491231002X")  # the standard's own example
    assert is_prc_id_number(prc_id("44030419900101123"))
    assert not is_prc_id_number("110105194912310021")  # wrong check digit
    assert not is_prc_id_number("13800138000")  # a phone number
    assert not is_prc_id_number("01010519491231002X")  # no leading zero


def test_undeclared_columns_are_dropped_and_listed(make_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = make_campaign()
    rows = _rows_with(name=lambda k: f"张{k}", phone=lambda k: f"1380013{k:04d}",
                      notes=lambda k: "住三楼")
    upload = frames.import_frame(db, campaign, "hh.csv", to_csv(rows),
                                 FrameSpec("unit", "hh_id", ["street", "age_band"]), ACTOR)
    db.commit()
    assert upload.columns == ["hh_id", "street", "age_band", "sex"]
    frame = campaign.design["frame"]
    assert frame["dropped_columns"] == ["name", "phone", "notes"]
    attributes = db.scalars(sa.select(FrameUnit.attributes)).all()
    assert attributes and all(set(a) == {"hh_id", "street", "age_band", "sex"}
                              for a in attributes)
    text = _all_text(db)
    assert "张1" not in text and "13800130001" not in text and "住三楼" not in text


def test_declared_keep_and_contact_columns_are_kept(make_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = make_campaign()
    rows = _rows_with(name=lambda k: f"张{k}", phone=lambda k: f"1380013{k:04d}",
                      learning_group=lambda k: "yes", notes=lambda k: "x")
    spec = FrameSpec("unit", "hh_id", ["street"], keep_columns=["learning_group"],
                     contact_columns=["name", "phone"])
    upload = frames.import_frame(db, campaign, "hh.csv", to_csv(rows), spec, ACTOR)
    assert upload.columns == ["hh_id", "street", "name", "phone", "learning_group"]
    declared = frames.declared_columns(campaign)
    assert declared.structure == ["hh_id", "street"]
    assert declared.keep == ["learning_group"] and declared.contact == ["name", "phone"]
    assert declared.dropped == ["age_band", "sex", "notes"] and not declared.purged


@pytest.mark.parametrize("header", ["身份证号", "id_number", "IDCard", "证件号码", "sfzh"])
def test_identity_number_headers_are_refused_naming_the_column(
        header, make_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = make_campaign()
    rows = _rows_with(**{header: lambda k: "x"})
    with pytest.raises(FrameError) as refused:
        frames.import_frame(db, campaign, "hh.csv", to_csv(rows),
                            FrameSpec("unit", "hh_id", ["street"]), ACTOR)
    problems = refused.value.problems
    assert [p.column for p in problems] == [header]
    assert "identity numbers" in str(problems[0].message)
    assert db.scalar(sa.select(sa.func.count(FrameUnit.id))) == 0
    assert db.scalar(sa.select(sa.func.count(FrameUpload.id))) == 0


def test_identity_number_values_are_refused_naming_the_column_not_the_value(
        make_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = make_campaign()
    number = prc_id("44030419900101123")
    rows = _rows_with(remark=lambda k: number if k == 3 else "")
    with pytest.raises(FrameError) as refused:
        frames.import_frame(db, campaign, "hh.csv", to_csv(rows),
                            FrameSpec("unit", "hh_id", ["street"]), ACTOR)
    [problem] = refused.value.problems
    assert problem.column == "remark" and problem.row == 5  # header row 1, data from 2
    assert number not in str(problem.message)
    # 18 digits without a valid check digit are not identity numbers: the column is
    # simply dropped
    rows = _rows_with(remark=lambda k: number[:17] + ("0" if number[17] != "0" else "1"))
    frames.import_frame(db, campaign, "hh.csv", to_csv(rows),
                        FrameSpec("unit", "hh_id", ["street"]), ACTOR)
    assert "remark" in campaign.design["frame"]["dropped_columns"]


def test_a_declared_identity_column_is_kept_until_the_close(
        make_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = make_campaign()
    rows = _rows_with(身份证号=lambda k: prc_id(f"440304199001{k:05d}"))
    spec = FrameSpec("unit", "hh_id", ["street"], identity_columns=["身份证号"])
    frames.import_frame(db, campaign, "hh.csv", to_csv(rows), spec, ACTOR)
    assert all("身份证号" in a for a in db.scalars(sa.select(FrameUnit.attributes)))
    assert frames.declared_columns(campaign).contact == ["身份证号"]
    # ... but it may not be the id column
    with pytest.raises(FrameError, match="identity number"):
        frames.import_frame(db, campaign, "hh.csv", to_csv(rows),
                            FrameSpec("unit", "身份证号", ["street"],
                                      identity_columns=["身份证号"]), ACTOR)


def test_declared_columns_must_exist(make_campaign, monitoring_demo) -> None:
    campaign = make_campaign()
    with pytest.raises(FrameError) as refused:
        frames.import_frame(monitoring_demo, campaign, "hh.csv", to_csv(unit_rows()),
                            FrameSpec("unit", "hh_id", ["street"], contact_columns=["phone"]),
                            ACTOR)
    assert [p.column for p in refused.value.problems] == ["phone"]


def _contact_campaign(db, make_campaign):
    from monitoring.fieldwork import draw

    campaign = make_campaign()
    rows = _rows_with(phone=lambda k: f"1390013{k:04d}")
    spec = FrameSpec("unit", "hh_id", ["street"], contact_columns=["phone"])
    frames.import_frame(db, campaign, "hh.csv", to_csv(rows), spec, ACTOR)
    draw.set_design(db, campaign, ACTOR, n=4)
    draw.draw_sample(db, campaign, ACTOR, seed=5)
    issued = invitations.issue_invitations(db, campaign, ACTOR, secret=TEST_SECRET)
    db.commit()
    return campaign, issued


def test_contact_columns_print_on_the_list_and_go_at_the_close(
        make_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign, issued = _contact_campaign(db, make_campaign)
    header, rows = invitations.sheet_rows(issued, "https://learn.city.example")
    assert "phone" in header and all(r[header.index("phone")].startswith("139") for r in rows)
    closing.close_campaign(db, campaign, ACTOR)
    db.commit()
    attributes = db.scalars(sa.select(FrameUnit.attributes).where(
        FrameUnit.campaign_id == campaign.id)).all()
    assert attributes and not any("phone" in a for a in attributes)
    assert all("street" in a for a in attributes)  # what the results need stays
    assert "1390013" not in _all_text(db)
    assert frames.declared_columns(campaign).purged


def test_contact_columns_kept_the_set_days_after_the_close(
        make_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign, _issued = _contact_campaign(db, make_campaign)
    closing.close_campaign(db, campaign, ACTOR, contact_retention_days=30)
    db.commit()
    assert all("phone" in a for a in db.scalars(sa.select(FrameUnit.attributes).where(
        FrameUnit.campaign_id == campaign.id)))
    settings = {"monitoring.contact_retention_days": "30"}
    soon = campaign.closed_at + dt.timedelta(days=29)
    assert retention.purge(db, now=soon, settings=settings, dry_run=False)[
        "frame_contact_columns_purged"] == 0
    later = campaign.closed_at + dt.timedelta(days=30)
    counts = retention.purge(db, now=later, settings=settings, dry_run=False)
    db.commit()
    assert counts["frame_contact_columns_purged"] == db.scalar(sa.select(sa.func.count(
        FrameUnit.id)).where(FrameUnit.campaign_id == campaign.id)) > 0
    assert "1390013" not in _all_text(db)


def test_the_frame_tab_lists_kept_and_dropped_columns(
        testapp, login, make_campaign, monitoring_demo) -> None:
    campaign = make_campaign()
    login("district_a")
    page = testapp.get(f"/campaigns/{campaign.code}/frame")
    form = next(f for f in page.forms.values()
                if "action" in f.fields and f["action"].value == "frame")
    form["frame"] = ("hh.csv", to_csv(_rows_with(name=lambda k: f"李{k}",
                                                 phone=lambda k: "13800000000")))
    form["id_column"] = "hh_id"
    form["stratum_columns"] = "street，age_band"
    form["contact_columns"] = "phone"
    stored = form.submit(status=303).follow()
    assert "name" in stored.text  # the flash names the dropped column
    tab = testapp.get(f"/campaigns/{campaign.code}/frame")
    assert "联系方式" in tab.text and "上传时舍弃" in tab.text
    assert "<code>name</code>" in tab.text and "<code>phone</code>" in tab.text
    # an undeclared identity column: 400 naming it, in Chinese
    form = next(f for f in tab.forms.values()
                if "action" in f.fields and f["action"].value == "frame")
    form["frame"] = ("hh.csv", to_csv(_rows_with(身份证=lambda k: "x")))
    form["id_column"] = "hh_id"
    form["stratum_columns"] = "street"
    refused = form.submit(status=400)
    assert "'身份证'" in refused.text and "身份证号码" in refused.text


def test_columns_of_frame_indicators_are_kept(make_campaign, monitoring_demo) -> None:
    """learning_community (the built-in frame indicator's column) is community-level, not
    personal: kept without being declared, so the close can publish the indicator."""
    from ..conftest import cluster_rows

    campaign = make_campaign()
    rows = cluster_rows()
    for k, row in enumerate(rows):
        row["learning_community"] = "yes" if k % 2 else "no"
        row["head_phone"] = "13800000000"
    upload = frames.import_frame(monitoring_demo, campaign, "c.csv", to_csv(rows),
                                 FrameSpec("cluster", "community", ["area"], "population"),
                                 ACTOR)
    assert "learning_community" in upload.columns and "head_phone" not in upload.columns
