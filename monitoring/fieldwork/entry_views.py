"""Resident entry with an invitation code (``/i``, ``/i/{code}``, the redeem API) and the
admin's population-margin page (``/admin/margins``). Views parse, call a service, render.

Error pages are *returned* with their status (not raised), so the audit rows of a wrong
code are committed with the response (the throttle counts attempts in its own
transaction, learningcity.throttle).
"""
from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.renderers import render_to_response
from pyramid.view import view_config

from learningcity.api import API_PREFIX, error_body
from learningcity.filemessages import file_problems_text
from learningcity.i18n import _, flash
from learningcity.people import CHOICES
from monitoring.fieldwork import entry
from monitoring.fieldwork.invitations import format_code, normalise_code
from monitoring.fieldwork.openapi import SPEC
from monitoring.fieldwork.window import local_text
from monitoring.results.margins import (
    MarginError,
    list_margins,
    margin_total,
    set_active,
    upload_margin,
)

T = "monitoring:templates/"


def _secret(request: Any) -> str:
    return request.app_settings.secret


def _address(request: Any) -> str:
    return request.client_address


def _session_url(request: Any, state: entry.EntryState) -> str | None:
    """Where the resident continues, or None when everything is finished."""
    if state.next == "test":
        return request.route_url("assessment.session", token=state.test_token)
    if state.next == "survey":
        return request.route_url("surveys.session", token=state.survey_token)
    return None


def _refusal_page(request: Any, exc: entry.EntryRefused) -> Any:
    campaign = exc.campaign
    values = {"kind": exc.code, "campaign": campaign, "retry_minutes": None,
              "opens": local_text(campaign.opens_at, campaign.timezone) if campaign else "",
              "closes": local_text(campaign.closes_at, campaign.timezone) if campaign else "",
              "result_token": None,
              "typed": format_code(normalise_code(request.matchdict.get("code", "")))[:40]}
    if exc.retry_after is not None:
        values["retry_minutes"] = max(1, -(-exc.retry_after // 60))
    response = render_to_response(T + "entry_message.pt", values, request=request)
    response.status_int = exc.status
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    response.cache_control = "no-store"
    return response


@view_config(route_name="monitoring.entry", renderer=T + "entry.pt", request_method="GET")
def entry_form(request: Any) -> dict[str, Any]:
    """The page where a resident types the code printed on the invitation letter
    (``?code=`` keeps what was typed when a code was not found)."""
    typed = normalise_code(request.GET.get("code", "")[:40])
    return {"error": None, "code": format_code(typed) if typed else ""}


@view_config(route_name="monitoring.entry", request_method="POST")
def entry_submit(request: Any) -> Any:
    """A typed code: send the resident on to the code's own page (same checks as a scan)."""
    code = normalise_code(request.POST.get("code", ""))
    if not code:
        response = render_to_response(T + "entry.pt", {
            "error": _("Please type the code from your invitation."), "code": ""},
            request=request)
        response.status_int = 400
        return response
    return HTTPSeeOther(request.route_url("monitoring.entry_code", code=format_code(code)))


@view_config(route_name="monitoring.entry_code", request_method="GET")
def entry_code(request: Any) -> Any:
    """The invitation link (QR code): resume where the resident was, or ask consent."""
    db, code = request.dbsession, request.matchdict["code"]
    try:
        invitation = entry.lookup(db, code, _address(request), secret=_secret(request),
                                  policies=request.registry.throttle_policies)
    except entry.EntryRefused as exc:
        return _refusal_page(request, exc)
    state = entry.resolve(db, invitation, code, _secret(request))
    if state.next == "consent":
        retention = request.app_settings.retention_years
        return render_to_response(T + "entry_welcome.pt", {
            "campaign": state.campaign, "instruments": state.instruments,
            "code": format_code(code), "retention": retention, "error": None,
            "closes": local_text(state.campaign.closes_at, state.campaign.timezone)},
            request=request)
    if state.next == "survey" and state.survey_session is None:
        # the test is finished: start the survey that follows it (idempotent)
        state = entry.enter(db, invitation, code, _secret(request), locale=request.locale_name)
    return _continue(request, state)


def _continue(request: Any, state: entry.EntryState) -> Any:
    url = _session_url(request, state)
    if url is not None:
        return HTTPSeeOther(url)
    return render_to_response(T + "entry_message.pt", {
        "kind": "done", "campaign": state.campaign, "retry_minutes": None, "opens": "",
        "closes": "", "result_token": state.test_token if state.test_session else None},
        request=request)


@view_config(route_name="monitoring.entry_code", request_method="POST")
def entry_start(request: Any) -> Any:
    """Consent given: start the first instrument (or resume if already started)."""
    db, code = request.dbsession, request.matchdict["code"]
    try:
        invitation = entry.lookup(db, code, _address(request), secret=_secret(request),
                                  policies=request.registry.throttle_policies)
        state = entry.enter(db, invitation, code, _secret(request),
                            locale=request.locale_name,
                            consent=request.POST.get("consent") == "yes")
    except entry.EntryRefused as exc:
        if exc.code != "consent_required":
            return _refusal_page(request, exc)
        campaign = exc.campaign
        response = render_to_response(T + "entry_welcome.pt", {
            "campaign": campaign, "instruments": entry.instruments_of(campaign),
            "code": format_code(code),
            "retention": request.app_settings.retention_years,
            "error": _("Please tick the box to agree before starting."),
            "closes": local_text(campaign.closes_at, campaign.timezone)}, request=request)
        response.status_int = 400
        return response
    return _continue(request, state)


# --- open enrolment -------------------------------------------------------------

def _join_page(request: Any, campaign: Any, error: Any = None, values: Any = None,
               status: int = 200) -> Any:
    form = entry.join_form(request.dbsession, campaign)
    labels = {name: dict(CHOICES[name][1]) for name in form.variables if name in CHOICES}
    questions = {name: CHOICES[name][0] for name in form.variables if name in CHOICES}
    response = render_to_response(T + "entry_join.pt", {
        "campaign": campaign, "form": form, "labels": labels, "questions": questions,
        "instruments": entry.instruments_of(campaign), "values": values or {},
        "error": error, "closes": local_text(campaign.closes_at, campaign.timezone),
        "retention": request.app_settings.retention_years},
        request=request)
    response.status_int = status
    return response


@view_config(route_name="monitoring.join", request_method="GET")
def join_form(request: Any) -> Any:
    """The public link of an open-enrolment campaign: consent and the stratum questions."""
    try:
        campaign = entry.open_campaign(request.dbsession, request.matchdict["campaign"])
    except entry.EntryRefused as exc:
        return _refusal_page(request, exc)
    return _join_page(request, campaign)


@view_config(route_name="monitoring.join", request_method="POST")
def join_submit(request: Any) -> Any:
    """Enrol (stratum from the answers, up to its quota) and show the resident's code."""
    db = request.dbsession
    try:
        campaign = entry.open_campaign(db, request.matchdict["campaign"])
    except entry.EntryRefused as exc:
        return _refusal_page(request, exc)
    values = {k: v for k, v in request.POST.items() if k != "csrf_token"}
    try:
        code, state = entry.enrol(db, campaign, values, _address(request), _secret(request),
                                  locale=request.locale_name,
                                  consent=request.POST.get("consent") == "yes")
    except entry.EntryRefused as exc:
        if exc.code == "consent_required":
            return _join_page(request, campaign, _("Please tick the box to agree before "
                                                   "starting."), values, 400)
        if exc.code == "answer_required":
            return _join_page(request, campaign, _("Please answer every question."), values,
                              400)
        return _refusal_page(request, exc)
    return render_to_response(T + "entry_enrolled.pt", {
        "campaign": campaign, "code": format_code(code),
        "next_url": _session_url(request, state)}, request=request)


# --- JSON API ----------------------------------------------------------------------

@view_config(route_name="api.invitation_redeem", request_method="POST", renderer="json",
             openapi=True, require_csrf=False)
def api_redeem(request: Any) -> Any:
    """Redeem a code: start or resume the campaign's instruments, return the session links."""
    body = request.openapi_body
    db, code = request.dbsession, body["code"]
    try:
        invitation = entry.lookup(db, code, _address(request), secret=_secret(request),
                                  policies=request.registry.throttle_policies)
        state = entry.enter(db, invitation, code, _secret(request),
                            locale=body.get("locale", "zh_CN"),
                            consent=bool(body.get("consent")))
    except entry.EntryRefused as exc:
        request.response.status_int = exc.status
        if exc.retry_after is not None:
            request.response.headers["Retry-After"] = str(exc.retry_after)
        return error_body(exc.code, exc.message, exc.details())
    campaign = state.campaign
    return {
        "campaign": {"code": campaign.code, "name": campaign.name,
                     "district": campaign.district_code,
                     "opens_at": entry._iso(campaign.opens_at),
                     "closes_at": entry._iso(campaign.closes_at),
                     "timezone": campaign.timezone},
        "instruments": state.instruments,
        "test_session": None if state.test_session is None else {
            "token": state.test_token, "status": state.test_session.status,
            "url": request.route_url("assessment.session", token=state.test_token),
            "api": request.route_url("api.session", token=state.test_token)},
        "survey_session": None if state.survey_session is None else {
            "token": state.survey_token, "status": state.survey_session.status,
            "url": request.route_url("surveys.session", token=state.survey_token),
            "api": request.route_url("api.survey_session", token=state.survey_token)},
        "next": state.next,
        "status": state.status,
    }


# --- population margins (admin) ---------------------------------------------------

def _margins_page(request: Any, problems: list[str] | None = None,
                  values: dict[str, str] | None = None, status: int = 200) -> Any:
    rows = [{"margin": m, "total": margin_total(m), "cells": len(m.cells)}
            for m in list_margins(request.dbsession)]
    response = render_to_response(T + "margins.pt", {
        "rows": rows, "problems": problems or [], "values": values or {}}, request=request)
    response.status_int = status
    return response


@view_config(route_name="monitoring.margins", request_method="GET", permission="admin")
def margins_list(request: Any) -> Any:
    """Uploaded margins and the upload form."""
    return _margins_page(request)


@view_config(route_name="monitoring.margins", request_method="POST", permission="admin")
def margins_post(request: Any) -> Any:
    """Upload a margin file (every problem listed, nothing stored) or switch one on/off."""
    user = request.identity.username
    if request.POST.get("action") in ("activate", "deactivate"):
        try:
            set_active(request.dbsession, int(request.POST.get("id", "0")),
                       request.POST["action"] == "activate", user)
        except ValueError as exc:
            return _margins_page(request, [str(exc)], status=400)
        return HTTPSeeOther(request.route_url("monitoring.margins"))
    values = {k: request.POST.get(k, "").strip() for k in ("name", "year", "source")}
    upload = request.POST.get("file")
    if upload is None or not hasattr(upload, "file"):
        return _margins_page(request, [_("Choose a CSV or XLSX file to upload.")], values, 400)
    year = None
    if values["year"]:
        try:
            year = int(values["year"])
        except ValueError:
            return _margins_page(request, [_("The reference year must be a whole number.")],
                                 values, 400)
    try:
        with request.dbsession.begin_nested():
            margin = upload_margin(request.dbsession, upload.filename, upload.file.read(),
                                   name=values["name"], user=user, reference_year=year,
                                   source=values["source"])
    except MarginError as exc:
        return _margins_page(request, file_problems_text(exc, request.translate), values,
                             400)
    flash(request, _("Population margin stored: ${name}",
                            mapping={"name": margin.name}))
    return HTTPSeeOther(request.route_url("monitoring.margins"))


def includeme(config: Any) -> None:
    """Routes of the entry pages, the redeem API, the margins page; the session gate."""
    config.add_route("monitoring.entry", "/i")
    config.add_route("monitoring.entry_code", "/i/{code}")
    config.add_route("monitoring.join", "/join/{campaign}")
    config.add_route("api.invitation_redeem", API_PREFIX + "/invitations/redeem")
    config.add_route("monitoring.margins", "/admin/margins",
                     factory="learningcity.resources.staff_factory")
    config.add_api_spec(SPEC)
    config.registry.setdefault("session_gates", []).append(entry.campaign_gate)
    config.registry.setdefault("home_links", []).append(
        {"route": "monitoring.entry", "label": _("I have an invitation code"), "order": 5})
    config.registry.setdefault("staff_links", []).append(
        {"route": "monitoring.margins", "label": _("Population margins"), "order": 60,
         "roles": ("admin",)})
    config.scan("monitoring.fieldwork.entry_views")

