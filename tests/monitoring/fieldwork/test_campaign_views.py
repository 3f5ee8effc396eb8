"""Campaign pages: the whole flow through the web, access by role and district, CSRF."""
from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa

from monitoring.fieldwork.invitations import find_invitation
from monitoring.fieldwork.models import Campaign, FrameUnit, Invitation

from ..conftest import cluster_rows, to_csv, unit_rows

CODE_RE = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{5}\b")


def _new_campaign(testapp, **fields):
    page = testapp.get("/campaigns/new")
    form = page.forms[0]
    form["name"] = fields.get("name", "春季学习需求调查")
    form["opens_at"] = fields.get("opens_at", "2026-01-01T08:00")
    form["closes_at"] = fields.get("closes_at", "2099-12-31T20:00")
    if "district" in fields:
        form["district"] = fields["district"]
    return form.submit()


def _form_with(page, action):
    for form in page.forms.values():
        if "action" in form.fields and form["action"].value == action:
            return form
    raise AssertionError(f"no form for {action}")


def test_full_flow_for_district_staff(testapp, login, staff, monitoring_demo) -> None:
    db = monitoring_demo
    login("district_a")
    created = _new_campaign(testapp)
    assert created.status_int == 303
    campaign = db.scalar(sa.select(Campaign))
    assert campaign.district_code == "A"
    assert campaign.opens_at == dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.UTC)
    # frame with a problem: every problem listed, nothing stored
    page = testapp.get(f"/campaigns/{campaign.code}/frame")
    form = _form_with(page, "frame")
    rows = unit_rows()
    rows[2]["street"] = ""
    form["frame"] = ("hh.csv", to_csv(rows))
    form["id_column"] = "hh_id"
    form["stratum_columns"] = "street, age_band"
    refused = form.submit(status=400)
    assert "row 4" in refused.text and "street" in refused.text
    assert db.scalar(sa.select(sa.func.count(FrameUnit.id))) == 0
    # good frame
    form = _form_with(refused, "frame")
    form["frame"] = ("hh.csv", to_csv(unit_rows(), bom=True))
    form.submit(status=303)
    # design
    page = testapp.get(f"/campaigns/{campaign.code}/design")
    form = _form_with(page, "design")
    form["n"] = "9"
    form["allocation"] = "equal"
    form.submit(status=303)
    # draw without confirming is refused
    page = testapp.get(f"/campaigns/{campaign.code}/draw")
    form = _form_with(page, "draw")
    form["seed"] = "4242"
    form.submit(status=400)
    form["confirm"] = True
    form.submit(status=303)
    db.expire_all()
    campaign = db.scalar(sa.select(Campaign))
    assert campaign.status == "ready" and campaign.seed == 4242
    page = testapp.get(f"/campaigns/{campaign.code}/draw")
    assert "4242" in page.text and page.text.count("<tr>") >= 9
    assert "verified" not in page.text
    verified = page.click(href=r"verify=1")
    assert 'class="ok verified"' in verified.text  # redraw from the seed matches
    # invitations: the printable page shows codes once, with QR codes and downloads
    page = testapp.get(f"/campaigns/{campaign.code}/invitations")
    form = _form_with(page, "issue")
    printable = form.submit()
    assert printable.status_int == 200
    assert printable.headers["Cache-Control"] == "no-store"
    codes = set(CODE_RE.findall(printable.text))
    assert len(codes) == 9
    assert printable.text.count("data:image/svg+xml") == 9
    assert "data:text/csv" in printable.text and "spreadsheetml" in printable.text
    assert f"http://localhost/i/{next(iter(codes))}" in printable.text
    for code in codes:
        assert find_invitation(db, code) is not None
    # the invitation tab never shows the codes again
    again = testapp.get(f"/campaigns/{campaign.code}/invitations")
    assert not CODE_RE.findall(again.text)
    # re-issue one: old code void, new code shown
    form = next(f for f in again.forms.values() if "public_id" in f.fields)
    public_id = form["public_id"].value
    old = db.scalar(sa.select(Invitation).where(Invitation.public_id == public_id))
    new_page = form.submit()
    new_codes = set(CODE_RE.findall(new_page.text))
    assert len(new_codes) == 1 and not new_codes & codes
    db.expire_all()
    assert db.get(Invitation, old.id).status == "void"
    # CSV download flow
    progress = testapp.get(f"/campaigns/{campaign.code}/progress")
    assert "9" in progress.text
    csv_page = testapp.get(f"/campaigns/{campaign.code}/progress.csv")
    assert csv_page.content_type == "text/csv"
    assert testapp.get(f"/campaigns/{campaign.code}/progress.png").body[:4] == b"\x89PNG"
    # close: confirmation required, then frozen
    page = testapp.get(f"/campaigns/{campaign.code}/close")
    form = _form_with(page, "close")
    form.submit(status=400)
    form["confirm"] = True
    form.submit(status=303)
    db.expire_all()
    assert db.scalar(sa.select(Campaign)).status == "closed"
    page = testapp.get(f"/campaigns/{campaign.code}/invitations")
    assert "action" not in " ".join(f.fields.get("action", [""])[0].value
                                    for f in page.forms.values() if "action" in f.fields)
    token = page.forms[0]["csrf_token"].value
    testapp.post(f"/campaigns/{campaign.code}/invitations",
                 {"action": "issue", "csrf_token": token}, status=400)
    testapp.post(f"/campaigns/{campaign.code}/draw",
                 {"action": "draw", "confirm": "yes", "csrf_token": token}, status=400)
    testapp.get(f"/campaigns/{campaign.code}/edit", status=200)
    testapp.post(f"/campaigns/{campaign.code}/edit",
                 {"name": "x", "opens_at": "2026-01-01T08:00", "closes_at": "2099-01-01T08:00",
                  "csrf_token": token}, status=400)


def test_admin_chooses_district_cluster_frame(testapp, login, staff, monitoring_demo) -> None:
    login("admin")
    _new_campaign(testapp, district="B").follow()
    campaign = monitoring_demo.scalar(sa.select(Campaign))
    assert campaign.district_code == "B"
    page = testapp.get(f"/campaigns/{campaign.code}/frame")
    form = _form_with(page, "frame")
    form["frame"] = ("c.csv", to_csv(cluster_rows()))
    form["kind"] = "cluster"
    form["id_column"] = "community"
    form["stratum_columns"] = "area"
    form["size_column"] = "population"
    form.submit(status=303)
    page = testapp.get(f"/campaigns/{campaign.code}/design")
    assert "m_per_psu" in page.text


def test_access_by_role_and_district(testapp, login, staff, drawn_campaign) -> None:
    b = drawn_campaign(district="B")
    a = drawn_campaign(district="A")
    # anonymous: login page for any campaign URL, existing or not
    for url in ("/campaigns", f"/campaigns/{b.code}", "/campaigns/NOPE-1/progress"):
        assert "/login" in testapp.get(url, status=302).location
    login("district_a")
    listing = testapp.get("/campaigns")
    assert a.code in listing.text and b.code not in listing.text
    for tab in ("", "/frame", "/draw", "/invitations", "/progress", "/close", "/edit",
                "/progress.csv", "/progress.png"):
        testapp.get(f"/campaigns/{b.code}{tab}", status=404)
    token = testapp.get(f"/campaigns/{a.code}/close").forms[0]["csrf_token"].value
    for tab, action in (("frame", "frame"), ("design", "design"), ("draw", "draw"),
                        ("invitations", "issue"), ("invitations", "reissue"),
                        ("close", "close")):
        testapp.post(f"/campaigns/{b.code}/{tab}", {"action": action, "confirm": "yes",
                                                    "n": "3", "csrf_token": token},
                     status=404)
    testapp.post(f"/campaigns/{b.code}/edit", {"name": "taken over", "csrf_token": token},
                 status=404)
    with testapp.app.registry.dbsession_factory() as fresh:
        other = fresh.get(Campaign, b.id)
        assert other.status == "ready" and other.name != "taken over"
        assert fresh.scalar(sa.select(sa.func.count(Invitation.id)).where(
            Invitation.campaign_id == b.id)) == 0
    # CSRF: a post without the token changes nothing
    testapp.post(f"/campaigns/{a.code}/close", {"action": "close", "confirm": "yes"},
                 status=400)
    testapp.post(f"/campaigns/{a.code}/invitations", {"action": "issue"}, status=400)
    with testapp.app.registry.dbsession_factory() as fresh:
        assert fresh.get(Campaign, a.id).status == "ready"
        assert fresh.scalar(sa.select(sa.func.count(Invitation.id))) == 0


def test_monitor_reads_only(testapp, login, staff, drawn_campaign) -> None:
    campaign = drawn_campaign()
    login("monitor")
    assert campaign.code in testapp.get("/campaigns").text
    page = testapp.get(f"/campaigns/{campaign.code}/progress")
    assert page.status_int == 200
    invitations_page = testapp.get(f"/campaigns/{campaign.code}/invitations")
    assert not [f for f in invitations_page.forms.values() if "action" in f.fields]
    testapp.get("/campaigns/new", status=403)
    testapp.get(f"/campaigns/{campaign.code}/edit", status=403)
    token = invitations_page.forms[0]["csrf_token"].value
    testapp.post(f"/campaigns/{campaign.code}/invitations",
                 {"action": "issue", "csrf_token": token}, status=403)


def test_researcher_refused(testapp, login, staff, drawn_campaign) -> None:
    campaign = drawn_campaign()
    login("researcher")
    testapp.get("/campaigns", status=403)
    testapp.get(f"/campaigns/{campaign.code}/progress", status=403)
    staff_home = testapp.get("/staff/")
    assert "/campaigns" not in staff_home.text


def test_staff_link_and_english(testapp, login, staff) -> None:
    login("district_a")
    assert "/campaigns" in testapp.get("/staff/").text
    page = testapp.get("/campaigns?lang=en")
    assert "New campaign" in page.text
    page = testapp.get("/campaigns?lang=zh-CN")
    assert "New campaign" not in page.text and "新建调查" in page.text
