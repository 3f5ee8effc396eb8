"""Invitation links and QR codes come from ``learningcity.public_url``, not the Host header.

Finding: the printed links followed the request's Host header, so a staff member opening
the page through a careless proxy (or an attacker steering the header) printed QR codes
pointing elsewhere. Without the setting, development falls back to the page's address;
production (``learningcity.require_secret`` on) refuses to issue and says why.
"""
from __future__ import annotations

import re

import sqlalchemy as sa

from monitoring.fieldwork.models import Invitation

CODE_RE = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{5}\b")


def _issue_form(testapp, campaign):
    page = testapp.get(f"/campaigns/{campaign.code}/invitations")
    form = next(f for f in page.forms.values()
                if "action" in f.fields and f["action"].value == "issue")
    return page, form


def test_links_use_the_public_url_whatever_the_host_header(
        testapp, login, monitoring_demo, drawn_campaign, wsgi_app, monkeypatch) -> None:
    monkeypatch.setitem(wsgi_app.registry.settings, "learningcity.public_url",
                        "https://learn.city.example/")
    campaign = drawn_campaign(n=3)
    login("district_a")
    page, form = _issue_form(testapp, campaign)
    assert "https://learn.city.example" in page.text
    printable = form.submit()
    codes = CODE_RE.findall(printable.text)
    assert len(set(codes)) == 3
    assert "http://localhost/i/" not in printable.text  # the page's own address
    for code in set(codes):
        assert f"https://learn.city.example/i/{code}" in printable.text


def _request(host: str, settings: dict) -> object:
    from pyramid.registry import Registry
    from pyramid.request import Request

    request = Request.blank("/campaigns/X/invitations", base_url=f"http://{host}")
    request.registry = Registry()
    request.registry.settings = settings
    return request


def test_the_link_base_never_follows_the_host_header_in_production() -> None:
    from monitoring.fieldwork.campaign_views import link_base

    configured = {"learningcity.public_url": "https://learn.city.example",
                  "learningcity.require_secret": "true"}
    assert link_base(_request("evil.example", configured)) == "https://learn.city.example"
    production = {"learningcity.require_secret": "true"}
    assert link_base(_request("evil.example", production)) is None
    development = {"learningcity.require_secret": "false"}
    assert link_base(_request("localhost:6543", development)) == "http://localhost:6543"


def test_development_without_public_url_uses_the_page_address_and_says_so(
        testapp, login, monitoring_demo, drawn_campaign, wsgi_app, monkeypatch) -> None:
    monkeypatch.delitem(wsgi_app.registry.settings, "learningcity.public_url", raising=False)
    campaign = drawn_campaign(n=2)
    login("district_a")
    page, form = _issue_form(testapp, campaign)
    assert "learningcity.public_url" in page.text  # the notice (zh) names the setting
    printable = form.submit()
    assert "http://localhost/i/" in printable.text


def test_production_without_public_url_refuses_to_issue(
        testapp, login, monitoring_demo, drawn_campaign, wsgi_app, monkeypatch) -> None:
    monkeypatch.delitem(wsgi_app.registry.settings, "learningcity.public_url", raising=False)
    monkeypatch.setitem(wsgi_app.registry.settings, "learningcity.require_secret", "true")
    campaign = drawn_campaign(n=2)
    login("district_a")
    page, form = _issue_form(testapp, campaign)
    assert "learningcity.public_url" in page.text
    refused = form.submit(status=400)
    assert "learningcity.public_url" in refused.text and not CODE_RE.findall(refused.text)
    assert monitoring_demo.scalar(sa.select(sa.func.count(Invitation.id))) == 0
