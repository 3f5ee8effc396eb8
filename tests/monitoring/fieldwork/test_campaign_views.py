"""Campaign pages: the whole flow through the web, access by role and district, CSRF."""
from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa

from monitoring import closing
from monitoring.fieldwork.invitations import find_invitation
from monitoring.fieldwork.models import Campaign, FrameUnit, Invitation
from tests.conftest import TEST_SECRET

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
    assert "第 4 行，'street' 列：分层值为空" in refused.text
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
        assert find_invitation(db, code, TEST_SECRET) is not None
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
    assert "还没有人完成答题。" in page.text  # warned before confirming
    form = _form_with(page, "close")
    refused = form.submit(status=400)
    assert "请勾选确认框，确认结束本次调查。" in refused.text
    form["confirm"] = True
    closed = form.submit(status=200)
    # the result panel: the weights failed (no completes), the aggregates were skipped
    panel = closed.html.select_one("section.close-result")
    assert panel is not None and "${" not in closed.text
    assert "本次调查已结束，但有一个步骤失败：见下文。" in panel.text
    steps = {dt_.text.strip(): dd.text.split() for dt_, dd in
             zip(panel.select("dt"), panel.select("dd"))}
    assert steps["权重"][:2] == ["✗", "失败"]
    assert "没有受访者完成答题：没有权重，也没有结果。" in panel.text
    assert steps["监测页面的结果"][:2] == ["–", "未进行"]
    assert "因权重未计算而未进行" in panel.text
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


def test_close_panel_in_english(testapp, login, staff, make_campaign, monitoring_demo) -> None:
    from ..entry_support import ready_campaign

    db = monitoring_demo
    campaign = make_campaign(survey_code=None)
    people = [{"age_band": band, "sex": sex} for band in ("18-29", "60-69")
              for sex in ("female", "male")]
    issued = ready_campaign(db, campaign, {"S01": (200.0, people), "S02": (90.0, people)})
    for _code, inv in issued:
        inv.status = "completed" if inv.stratum == "S01" else "started"
    db.commit()
    login("district_a")
    page = testapp.get(f"/campaigns/{campaign.code}/close?lang=en")
    assert "No one has completed yet." not in page.text
    assert "Completed so far:" in page.text and "4 / 8" in page.text
    assert "No respondent yet in these strata" in page.text and "S02" in page.text
    form = _form_with(page, "close")
    form["confirm"] = True
    closed = form.submit(status=200)
    panel = closed.html.select_one("section.close-result")
    assert "The campaign is closed." in panel.text and "a step failed" not in panel.text
    assert "${" not in closed.text
    assert "⚠ Done, with warnings" in " ".join(panel.text.split())
    assert ("Stratum S02 has no respondents: its share of the weight is carried by "
            "stratum S01.") in panel.text
    assert "Weights computed for 4 respondents" in panel.text
    assert "results written to the monitoring database from 4 respondents." in panel.text
    db.expire_all()
    assert db.get(Campaign, campaign.id).status == "closed"


STATUS_WORDS_EN = ("Draft", "Ready (drawn)", "Campaign closed", "Closed", "Window open",
                   "Window ended", "Window not yet open", "not drawn", "Answering stopped",
                   "issued", "started", "completed", "void", "Sample", "Open enrolment")


def _visible(page) -> str:
    """The page's text as a reader sees it (no tags, scripts or attribute values)."""
    return " ".join(page.html.get_text(" ").split())


def _badges(page) -> list[str]:
    return [" ".join(b.text.split()) for b in page.html.select("p.badges .badge")]


def test_status_words_mean_the_status(testapp, login, staff, make_campaign, drawn_campaign,
                                      monitoring_demo) -> None:
    """zh and en: each status reads as itself (a closed campaign's badge is not a date
    column's "结束日期", a draft or closed campaign is not "答题进行中"), nothing raw."""
    db = monitoring_demo
    draft = make_campaign()
    ready = drawn_campaign()
    closed = drawn_campaign()
    closing.close_campaign(db, closed, "tester")  # before its window ends: closed early
    db.commit()
    login("district_a")
    zh = {c.code: _badges(testapp.get(f"/campaigns/{c.code}?lang=zh-CN"))
          for c in (draft, ready, closed)}
    assert zh[draft.code][:2] == ["草稿", "尚未抽样，居民还不能答题"]
    assert zh[ready.code][:2] == ["已抽样", "答题进行中"]
    assert zh[closed.code][:2] == ["已结束", "已提前停止答题（在答题截止前结束）"]
    en = {c.code: _badges(testapp.get(f"/campaigns/{c.code}?lang=en"))
          for c in (draft, ready, closed)}
    assert en[draft.code][:2] == ["Draft", "Residents cannot answer yet (not drawn)"]
    assert en[ready.code][:2] == ["Ready (drawn)", "Window open"]
    assert en[closed.code][:2] == ["Campaign closed",
                                   "Answering stopped early (closed before the window ended)"]
    listing = testapp.get("/campaigns?lang=zh-CN")
    text = _visible(listing)
    assert "已结束 · 已提前停止答题" in text and "草稿 · 尚未抽样" in text
    assert text.count("答题进行中") == 1 and "结束日期" not in text
    pages = [listing, testapp.get("/campaigns/new?lang=zh-CN")]
    for c in (draft, ready, closed):
        pages += [testapp.get(f"/campaigns/{c.code}/{tab}?lang=zh-CN")
                  for tab in ("overview", "frame", "design", "draw", "invitations",
                              "progress", "close")]
    pages.append(testapp.get(f"/campaigns/{draft.code}/edit?lang=zh-CN"))
    for page in pages:
        text = _visible(page)
        assert "${" not in page.text, page.request.path
        assert "结束日期" not in text, page.request.path
        for word in STATUS_WORDS_EN:
            assert re.search(rf"\b{re.escape(word)}\b", text) is None, (word, page.request.path)
    for page in [testapp.get("/campaigns?lang=en"),
                 testapp.get(f"/campaigns/{closed.code}/close?lang=en")]:
        assert "${" not in page.text
        assert re.search(r"[\u4e00-\u9fff]", _visible(page).replace("中文", "")) is None


def _problems_shown(page) -> list[str]:
    return [" ".join(li.text.split()) for li in page.html.select("div.problems li")]


def test_frame_and_draw_errors_in_both_languages(testapp, login, staff, make_campaign,
                                                 monitoring_demo) -> None:
    """Refusals read in the page's language, values filled in, column names and codes
    kept as they are."""
    campaign = make_campaign()
    login("district_a")
    rows = unit_rows()
    rows[3]["hh_id"] = rows[1]["hh_id"]  # file row 5 repeats the id of file row 3
    rows[6]["street"] = ""
    for lang, expected in [
            ("zh-CN", [f"第 5 行，'hh_id' 列：编号 '{rows[1]['hh_id']}' 重复（首次出现在第 3 行）",
                       "第 8 行，'street' 列：分层值为空"]),
            ("en", [f"row 5, column 'hh_id': duplicate id '{rows[1]['hh_id']}' (first on "
                    "row 3)", "row 8, column 'street': empty stratum value"])]:
        page = testapp.get(f"/campaigns/{campaign.code}/frame?lang={lang}")
        form = _form_with(page, "frame")
        form["frame"] = ("hh.csv", to_csv(rows))
        form["id_column"] = "hh_id"
        form["stratum_columns"] = "street, age_band"
        refused = form.submit(status=400)
        assert _problems_shown(refused) == expected
        assert "${" not in refused.text
    # a column the header lacks: the header is listed as it is
    page = testapp.get(f"/campaigns/{campaign.code}/frame?lang=zh-CN")
    form = _form_with(page, "frame")
    form["frame"] = ("hh.csv", to_csv(unit_rows()))
    form["id_column"] = "household"
    form["stratum_columns"] = "street"
    shown = _problems_shown(form.submit(status=400))
    assert shown == ["第 1 行，'household' 列：找不到编号列；表头中有："
                     "hh_id, street, age_band, sex"]
    # the draw refused without the box ticked, and a bad seed
    form = _form_with(page, "frame")
    form["frame"] = ("hh.csv", to_csv(unit_rows()))
    form["id_column"] = "hh_id"
    form["stratum_columns"] = "street"
    form.submit(status=303)
    page = testapp.get(f"/campaigns/{campaign.code}/design?lang=zh-CN")
    form = _form_with(page, "design")
    form["n"] = "abc"
    assert _problems_shown(form.submit(status=400)) == ["n：'abc' 不是整数"]
    form["n"] = "6"
    form.submit(status=303)
    page = testapp.get(f"/campaigns/{campaign.code}/draw?lang=zh-CN")
    form = _form_with(page, "draw")
    assert _problems_shown(form.submit(status=400)) == ["请勾选确认框以确认抽样。"]
    form["confirm"] = True
    form["seed"] = "x1"
    assert _problems_shown(form.submit(status=400)) == ["seed：'x1' 不是整数"]
    page = testapp.get(f"/campaigns/{campaign.code}/draw?lang=en")
    form = _form_with(page, "draw")
    assert _problems_shown(form.submit(status=400)) == ["Tick the box to confirm the draw."]


def test_campaign_form_problems_translated(testapp, login, staff) -> None:
    login("district_a")
    page = testapp.get("/campaigns/new")
    form = page.forms[0]
    form["name"] = " "
    form["opens_at"] = "2026-01-01T08:00"
    form["closes_at"] = "2025-01-01T08:00"
    refused = form.submit(status=400)
    shown = [" ".join(li.text.split()) for li in refused.html.select("div.problems li")]
    assert shown == ["name：必填", "closes_at：答题截止时间必须晚于开始时间"]


def test_file_problems_in_chinese(testapp, login, staff, make_campaign, monitoring_demo) -> None:
    """The reader's own messages about a file (empty, ragged rows) read in Chinese too."""
    campaign = make_campaign()
    login("district_a")
    page = testapp.get(f"/campaigns/{campaign.code}/frame?lang=zh-CN")
    for data, expected in [
            (b"", ["文件是空的"]),
            (b"hh_id,street\nH1,S01\nH2,S01,extra\n", ["第 3 行：有 3 个值，但表头有 2 列"])]:
        form = _form_with(page, "frame")
        form["frame"] = ("hh.csv", data)
        form["id_column"] = "hh_id"
        form["stratum_columns"] = "street"
        assert _problems_shown(form.submit(status=400)) == expected
