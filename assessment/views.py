"""Resident pages and the JSON API of the adaptive test: both call ``services``."""
from __future__ import annotations

from typing import Any

from pyramid.authorization import Allow
from pyramid.renderers import render_to_response
from pyramid.response import Response
from pyramid.view import exception_view_config, view_config

from itembank.resources import ResearchArea
from learningcity.api import ApiError, error_body
from learningcity.i18n import _
from learningcity.redirects import see_other

from . import services
from .background import CHOICES, QUESTIONS
from .services import DeliveryError

T = "assessment:templates/"


def _session(request: Any, for_update: bool = False) -> Any:
    return services.find_session(request.dbsession, request.matchdict["token"],
                                 for_update=for_update,
                                 idle_minutes=request.app_settings.test_idle_minutes)


def _gate(request: Any, session: Any) -> None:
    """Refuse answers when a ``session_gates`` hook says the session's campaign is shut."""
    for gate in request.registry.get("session_gates", ()):
        refusal = gate(request.dbsession, session.campaign)
        if refusal:
            raise DeliveryError(409, "campaign_closed", refusal)


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DeliveryError(400, "bad_request", f"{name} must be a whole number") from None


@view_config(route_name="assessment.start", renderer=T + "start.pt", request_method="GET")
def start_page(request: Any) -> dict[str, Any]:
    instrument = services.instrument(request.dbsession, request.params.get("instrument", "LLA"))
    ready = instrument is not None and instrument.ready
    return {"instrument": instrument, "ready": ready,
            "retention": request.app_settings.retention_years, "error": None}


@view_config(route_name="assessment.start", request_method="POST")
def start_submit(request: Any) -> Any:
    token, _session_row = services.start_session(
        request.dbsession, request.POST.get("instrument", "LLA"),
        locale=request.locale_name, consent=request.POST.get("consent") == "yes")
    return see_other(request, request.route_url("assessment.session", token=token))


@view_config(route_name="assessment.session", renderer=T + "item.pt", request_method="GET")
def session_page(request: Any) -> Any:
    session = _session(request)
    step = services.current_step(request.dbsession, session, request.locale_name)
    token = request.matchdict["token"]
    if step.status == "background":
        return _background_page(request, session)
    if step.status == "finished":
        return see_other(request, request.route_url("assessment.result", token=token))
    if step.status == "expired":
        request.override_renderer = T + "expired.pt"
        return {"answered": step.answered, "token": token}
    if step.status == "withdrawn":
        request.override_renderer = T + "withdrawn.pt"
        return {}
    return {"step": step, "token": token}


def _background_page(request: Any, session: Any, errors: dict[str, Any] | None = None,
                     values: dict[str, Any] | None = None) -> Any:
    form = services.background_form(request.dbsession, session)
    return render_to_response(T + "background.pt", {
        "fields": form.fields, "choices": CHOICES, "questions": QUESTIONS,
        "districts": form.districts, "token": request.matchdict["token"],
        "values": session.background or {} if values is None else values,
        "errors": errors or {}}, request=request)


@view_config(route_name="assessment.background", request_method="POST")
def background_submit(request: Any) -> Any:
    session = _session(request, for_update=True)
    _gate(request, session)
    if session.status == "background":
        try:
            services.set_background(request.dbsession, session, dict(request.POST))
        except services.BackgroundInvalid as exc:
            response = _background_page(request, session, errors=exc.errors,
                                        values={**(session.background or {}), **exc.values})
            response.status_int = 400
            return response
    return see_other(request, request.route_url("assessment.session",
                                                token=request.matchdict["token"]))


@view_config(route_name="assessment.answer", request_method="POST", renderer=T + "item.pt")
def answer_submit(request: Any) -> Any:
    session = _session(request, for_update=True)
    _gate(request, session)
    token = request.matchdict["token"]
    if session.status == "withdrawn":
        return see_other(request, request.route_url("assessment.session", token=token))
    if "choice" not in request.POST:
        step = services.current_step(request.dbsession, session, request.locale_name)
        request.response.status_int = 400
        return {"step": step, "token": token, "error": _("Please choose one answer.")}
    services.submit_answer(
        request.dbsession, session, position=_int(request.POST.get("position"), "position"),
        version_id=_int(request.POST.get("version"), "version"),
        choice=_int(request.POST.get("choice"), "choice"),
        response_ms=_int(request.POST["response_ms"], "response_ms")
        if request.POST.get("response_ms") else None, locale=request.locale_name)
    return see_other(request, request.route_url("assessment.session", token=token))


@view_config(route_name="assessment.result", renderer=T + "result.pt")
def result_page(request: Any) -> Any:
    session = _session(request)
    step = services.current_step(request.dbsession, session, request.locale_name)
    if step.status != "finished":
        return see_other(request, request.route_url("assessment.session",
                                                    token=request.matchdict["token"]))
    # actions other packages offer after a result (e.g. the learning-needs survey)
    next_links = [link for link in (hook(request, session) for hook in
                                    request.registry.get("after_test_links", [])) if link]
    return {"result": step.result, "token": request.matchdict["token"],
            "print": request.params.get("print") == "1", "next_links": next_links}


@view_config(route_name="assessment.withdraw", renderer=T + "withdraw.pt",
             request_method="GET")
def withdraw_page(request: Any) -> Any:
    """The confirmation page: what withdrawing deletes, and one button."""
    session = _session(request)
    if session.status == "withdrawn":
        return see_other(request, request.route_url("assessment.session",
                                                    token=request.matchdict["token"]))
    return {"token": request.matchdict["token"],
            "retention": request.app_settings.retention_years}


@view_config(route_name="assessment.withdraw", request_method="POST")
def withdraw_submit(request: Any) -> Any:
    """Withdraw (a form post with the CSRF token; no JavaScript), then the "withdrawn"
    page on the same link."""
    services.withdraw(request.dbsession, _session(request, for_update=True))
    return see_other(request, request.route_url("assessment.session",
                                                token=request.matchdict["token"]))


@exception_view_config(DeliveryError, renderer=T + "problem.pt")
def delivery_error(exc: DeliveryError, request: Any) -> Any:
    if request.path.startswith("/api/"):
        return Response(json_body=error_body(exc.code, exc.message, exc.details),
                        status=exc.status)
    request.response.status_int = exc.status
    messages = {
        "unknown_session": _("This test link is not valid. Please check the link or start a "
                             "new test."),
        "conflict": _("This question was already answered with a different choice. Your "
                      "first answer was kept."),
        "consent_required": _("Please tick the box to agree before starting."),
        "campaign_closed": exc.message,  # translated by the session gate that refused
    }
    return {"message": messages.get(exc.code, _("Something went wrong. Please go back and try "
                                                "again.")),
            "token": request.matchdict.get("token") if request.matchdict else None}


# --- JSON API ------------------------------------------------------------------

@view_config(route_name="api.sessions", request_method="POST", renderer="json", openapi=True,
             require_csrf=False)
def api_start(request: Any) -> dict[str, Any]:
    body = request.openapi_body
    token, session = services.start_session(
        request.dbsession, body.get("instrument", "LLA"), locale=body.get("locale", "zh_CN"),
        consent=bool(body.get("consent")), background=body.get("background"))
    request.response.status_int = 201
    step = services.current_step(request.dbsession, session)
    return {"token": token, **step.to_json()}


@view_config(route_name="api.session", request_method="GET", renderer="json", openapi=True)
def api_state(request: Any) -> dict[str, Any]:
    session = _session(request)
    return services.current_step(request.dbsession, session).to_json()


@view_config(route_name="api.session_background", request_method="POST", renderer="json",
             openapi=True, require_csrf=False)
def api_background(request: Any) -> dict[str, Any]:
    session = _session(request, for_update=True)
    _gate(request, session)
    if session.status == "background":
        services.set_background(request.dbsession, session, dict(request.openapi_body))
    return services.current_step(request.dbsession, session).to_json()


@view_config(route_name="api.session_answers", request_method="POST", renderer="json",
             openapi=True, require_csrf=False)
def api_answer(request: Any) -> dict[str, Any]:
    body = request.openapi_body
    session = _session(request, for_update=True)
    _gate(request, session)
    return services.submit_answer(request.dbsession, session, position=body["position"],
                                  version_id=body["version"], choice=body["choice"],
                                  response_ms=body.get("response_ms")).to_json()


@view_config(route_name="api.session_result", request_method="GET", renderer="json",
             openapi=True)
def api_result(request: Any) -> dict[str, Any]:
    session = _session(request)
    step = services.current_step(request.dbsession, session)
    if step.status != "finished":
        raise ApiError(409, "not_finished", "the test is not finished yet")
    return step.result


@view_config(route_name="api.session_withdraw", request_method="POST", renderer="json",
             openapi=True, require_csrf=False)
def api_withdraw(request: Any) -> dict[str, Any]:
    """Withdraw the session's data (answers deleted, background cleared); repeatable."""
    deleted = services.withdraw(request.dbsession, _session(request, for_update=True))
    return {"status": "withdrawn", "answers_deleted": deleted}


# --- staff look-up -----------------------------------------------------------------

class SessionArea:
    """Individual test sessions (answers item by item): district staff (their own
    district, filtered in the services), researchers and admins. Monitors read group
    results only, so person-level sessions are closed to them."""

    __acl__ = [
        (Allow, "role:admin", "sessions"),
        (Allow, "role:researcher", "sessions"),
        (Allow, "role:district", "sessions"),
    ]

    def __init__(self, request: Any) -> None:
        self.request = request


@view_config(route_name="assessment.staff_sessions", renderer=T + "staff_sessions.pt",
             permission="sessions")
def staff_sessions(request: Any) -> dict[str, Any]:
    """Recent sessions; district staff see only sessions from their own district."""
    user = request.identity
    found = services.staff_sessions(request.dbsession, request.params.get("q", "").strip(),
                                    district=user.district_code
                                    if user.role == "district" else None)
    return {"sessions": found, "q": request.params.get("q", "")}


@view_config(route_name="assessment.staff_session", renderer=T + "staff_session.pt",
             permission="sessions")
def staff_session(request: Any) -> dict[str, Any]:
    user = request.identity
    session, answers = services.staff_session_detail(
        request.dbsession, int(request.matchdict["id"]),
        district=user.district_code if user.role == "district" else None,
        viewer=user.username, address=request.client_addr or "")
    # item pages are the researchers' (itembank's ResearchArea): no link for others
    return {"session": session, "answers": answers,
            "item_links": request.has_permission("research", ResearchArea(request))}
