"""Invitation codes: >= 64 bits, hash only stored, unique, re-issue voids, prefill, outputs."""
from __future__ import annotations

import csv
import io
import math
import re

import pytest
import sqlalchemy as sa

from monitoring.fieldwork import invitations as inv
from monitoring.fieldwork.models import Invitation
from tests.conftest import TEST_SECRET

from ..conftest import ACTOR

CODE_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{5}$")


def test_code_format_and_entropy() -> None:
    codes = [inv.generate_code() for _ in range(2000)]
    assert all(CODE_RE.match(c) for c in codes)
    assert not set("ILOU") & set("".join(codes))
    bits = len(inv.normalise_code(codes[0])) * math.log2(len(inv.ALPHABET))
    assert bits >= 64
    assert len(set(codes)) == len(codes)
    # every symbol of the alphabet is used (no bias towards a subset)
    assert set("".join(inv.normalise_code(c) for c in codes)) == set(inv.ALPHABET)


def test_hash_normalises() -> None:
    code = "K7Q2-M9XD-4HT3P"
    digest = inv.hash_code(TEST_SECRET, code)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert inv.hash_code(TEST_SECRET, "k7q2 m9xd 4ht3p") == digest
    assert inv.hash_code(TEST_SECRET, "K7Q2M9XD4HT3P") == digest
    assert inv.hash_code(TEST_SECRET, "K7Q2-M9XD-4HT3Q") != digest


def test_codes_are_hashed_with_the_server_secret() -> None:
    """Finding: codes were stored as unsalted SHA-256, so a copied database could be
    searched by hashing candidate codes. Now HMAC-SHA-256 keyed by the app secret."""
    import hashlib
    import hmac

    code = "K7Q2-M9XD-4HT3P"
    digest = inv.hash_code(TEST_SECRET, code)
    assert digest != hashlib.sha256(b"K7Q2M9XD4HT3P").hexdigest()
    assert digest == hmac.new(TEST_SECRET.encode(), b"invitation-code:K7Q2M9XD4HT3P",
                              hashlib.sha256).hexdigest()
    assert inv.hash_code("another-secret-" + "y" * 40, code) != digest
    with pytest.raises(ValueError, match="secret is empty"):
        inv.hash_code("", code)


def test_a_code_stored_with_the_old_hash_works_once_and_is_rehashed(
        drawn_campaign, monitoring_demo) -> None:
    """Codes issued before migration 0008 (unsalted SHA-256) keep working: the first use
    finds them by the old hash and stores the keyed hash instead."""
    db = monitoring_demo
    campaign = drawn_campaign(n=2)
    issued = inv.issue_invitations(db, campaign, ACTOR, secret=TEST_SECRET)
    row = db.scalar(sa.select(Invitation).where(Invitation.public_id == issued[0].public_id))
    row.code_hash = inv.legacy_hash_code(issued[0].code)  # as stored before 0008
    db.commit()
    found = inv.find_invitation(db, issued[0].code, TEST_SECRET)
    assert found is not None and found.public_id == issued[0].public_id
    db.commit()
    assert db.scalar(sa.select(Invitation.code_hash).where(Invitation.id == row.id)) == \
        inv.hash_code(TEST_SECRET, issued[0].code)
    assert db.scalar(sa.select(sa.func.count()).where(
        Invitation.code_hash == inv.legacy_hash_code(issued[0].code))) == 0
    assert inv.find_invitation(db, issued[0].code, TEST_SECRET).id == row.id
    # the wrong secret finds nothing
    assert inv.find_invitation(db, issued[1].code, "wrong-secret-" + "z" * 40) is None


def test_links_come_from_the_configured_public_url() -> None:
    assert inv.public_url({"learningcity.public_url": "https://learn.city.cn/"}) == \
        "https://learn.city.cn"
    assert inv.public_url({}) is None and inv.public_url({"learningcity.public_url": " "}) \
        is None
    with pytest.raises(inv.InvitationError, match="must start with"):
        inv.public_url({"learningcity.public_url": "learn.city.cn"})


def _all_text(db) -> str:
    """Every value of every column of every table, as one string."""
    from learningcity.db import Base, MonitoringBase

    parts = []
    for table in [*Base.metadata.sorted_tables, *MonitoringBase.metadata.sorted_tables]:
        for row in db.execute(sa.select(table)).all():
            parts.extend(str(v) for v in row)
    return "\n".join(parts)


def test_issue_stores_only_hashes(drawn_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = drawn_campaign(n=12)
    issued = inv.issue_invitations(db, campaign, ACTOR, secret=TEST_SECRET)
    db.commit()
    assert len(issued) == 12
    assert len({i.code for i in issued}) == 12 and len({i.public_id for i in issued}) == 12
    text = _all_text(db)
    for item in issued:
        assert item.code not in text
        assert inv.normalise_code(item.code) not in text
        assert inv.hash_code(TEST_SECRET, item.code) in text
        found = inv.find_invitation(db, item.code.lower(), TEST_SECRET)
        assert found is not None and found.public_id == item.public_id
        assert found.status == "issued" and found.prefill["district"] == "A"
        assert found.prefill["street"] == item.attributes["street"]
        assert found.prefill["age_band"] == item.attributes["age_band"]
        assert found.prefill["sex"] == {"F": "female", "M": "male"}[item.attributes["sex"]]
    assert inv.find_invitation(db, "0000-0000-00000", TEST_SECRET) is None
    assert inv.find_invitation(db, "short", TEST_SECRET) is None
    # issuing again adds nothing: every sampled unit has its invitation
    assert inv.issue_invitations(db, campaign, ACTOR, secret=TEST_SECRET) == []


def test_reissue_voids_old_code(drawn_campaign, monitoring_demo) -> None:
    db = monitoring_demo
    campaign = drawn_campaign(n=5)
    issued = inv.issue_invitations(db, campaign, ACTOR, secret=TEST_SECRET)
    old = issued[0]
    new = inv.reissue_invitation(db, campaign, old.public_id, ACTOR, secret=TEST_SECRET)
    db.commit()
    assert new.code != old.code and new.unit_key == old.unit_key
    assert inv.find_invitation(db, old.code, TEST_SECRET) is None
    assert inv.find_invitation(db, new.code, TEST_SECRET).public_id == new.public_id
    statuses = db.execute(sa.select(Invitation.public_id, Invitation.status).where(
        Invitation.campaign_id == campaign.id)).all()
    assert dict(statuses)[old.public_id] == "void"
    assert inv.invitation_counts(db, campaign)["issued"] == 5
    # a started invitation is not re-issued
    started = inv.find_invitation(db, issued[1].code, TEST_SECRET)
    started.status = "started"
    db.flush()
    with pytest.raises(inv.InvitationError, match="only an unused"):
        inv.reissue_invitation(db, campaign, issued[1].public_id, ACTOR, secret=TEST_SECRET)
    # re-issue all unused: every old unused code stops working
    fresh = inv.reissue_unused(db, campaign, ACTOR, secret=TEST_SECRET)
    assert len(fresh) == 4
    assert inv.find_invitation(db, new.code, TEST_SECRET) is None
    assert inv.find_invitation(db, issued[1].code, TEST_SECRET) is not None


def test_no_invitations_before_draw_or_after_close(make_campaign, drawn_campaign,
                                                   monitoring_demo) -> None:
    from monitoring.closing import close_campaign

    with pytest.raises(inv.InvitationError, match="draw the sample"):
        inv.issue_invitations(monitoring_demo, make_campaign(), ACTOR, secret=TEST_SECRET)
    campaign = drawn_campaign(n=4)
    issued = inv.issue_invitations(monitoring_demo, campaign, ACTOR, secret=TEST_SECRET)
    close_campaign(monitoring_demo, campaign, ACTOR)
    with pytest.raises(inv.InvitationError, match="closed"):
        inv.issue_invitations(monitoring_demo, campaign, ACTOR, secret=TEST_SECRET)
    with pytest.raises(inv.InvitationError, match="closed"):
        inv.reissue_invitation(monitoring_demo, campaign, issued[0].public_id, ACTOR,
                               secret=TEST_SECRET)


def test_printable_outputs(drawn_campaign, monitoring_demo) -> None:
    from openpyxl import load_workbook

    campaign = drawn_campaign(n=3)
    issued = inv.issue_invitations(monitoring_demo, campaign, ACTOR, secret=TEST_SECRET)
    data = inv.invitations_csv(issued, "https://city.example")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["code"] for r in rows] == [i.code for i in issued]
    assert rows[0]["link"] == f"https://city.example/i/{issued[0].code}"
    assert rows[0]["street"] == issued[0].attributes["street"]
    wb = load_workbook(io.BytesIO(inv.invitations_xlsx(issued, "https://city.example")))
    values = list(wb.active.iter_rows(values_only=True))
    assert values[0][:6] == ("campaign", "public_id", "stratum", "unit", "code", "link")
    assert [v[4] for v in values[1:]] == [i.code for i in issued]
    svg = inv.qr_svg_data_uri(issued[0].link("https://city.example"))
    assert svg.startswith("data:image/svg+xml")


def test_qr_is_small_inline_svg() -> None:
    """Fixed-mask QR (fast) still encodes the link at error level M, no declaration."""
    import urllib.parse

    import segno

    link = "https://learn.example.cn/i/K7Q2-M9XD-4HT3P"
    uri = inv.qr_svg_data_uri(link)
    assert uri.startswith("data:image/svg+xml")
    svg = urllib.parse.unquote(uri.split(",", 1)[1])
    assert "<?xml" not in svg and "viewBox" in svg and "http" not in svg.replace(
        "http://www.w3.org/2000/svg", "")
    reference = segno.make(link, error="m", micro=False)
    fixed = segno.make(link, error="m", micro=False, mask=0)
    assert (fixed.version, fixed.error) == (reference.version, reference.error)
    assert len(uri) < 3000


def test_field_lists_guard_csv_and_keep_xlsx_text_exact() -> None:
    """Through tabular's registry: a frame value that looks like a formula is guarded in
    the CSV and is that exact text, a string cell and never a formula, in the XLSX."""
    from openpyxl import load_workbook

    evil = '=HYPERLINK("http://x")'
    issued = [inv.IssuedInvitation("AB12CD34", "K7Q2-M9XD-4HT3P", "C-1", evil, "-H1", None,
                                   0.1, {"street": "@x"})]
    rows = list(csv.reader(io.StringIO(inv.invitations_csv(issued, "https://c.example")
                                       .decode("utf-8-sig"))))
    assert rows[1][2:5] == ["'" + evil, "'-H1", "K7Q2-M9XD-4HT3P"] and rows[1][6] == "'@x"
    sheet = load_workbook(io.BytesIO(inv.invitations_xlsx(issued, "https://c.example"))).active
    assert sheet.title == "invitations" and sheet.column_dimensions["F"].width == 48
    assert [c.value for c in sheet[2]][2:4] == [evil, "-H1"]
    assert all(c.data_type == "s" for c in sheet[2])
