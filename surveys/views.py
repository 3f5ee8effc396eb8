"""Survey pages for residents (no JavaScript needed), the survey API, and staff pages.

Views parse the request, call one service and render; the logic is in
``surveys.services``. Every form post redirects (POST/redirect/GET), so reloading
or tapping twice never stores anything twice.
"""
from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.renderers import render_to_response
from pyramid.response import Response
from pyramid.view import exception_view_config, view_config

from learningcity import audit
from learningcity.api import ApiError, error_body
from learningcity.filemessages import file_problem_text
from learningcity.i18n import _, flash
from tabular.writing import WRITERS

from . import services
from .definition import SurveyError
from .presenting import form_values, is_selected, state_json
from .resources import SurveysArea
from .retention import retention_years

T = "surveys:templates/"
#: download format -> (media type, file extension); the response files come from the
#: tabular registry, the codebook is a CSV and ``json`` the definition itself
FORMATS = {**{fmt: (w.media_type, w.extension) for fmt, w in WRITERS.items()},
           "codebook": (WRITERS["csv"].media_type, ".csv"),
           "json": ("application/json", ".json"),
           **{fmt: ("application/zip", f".{fmt}") for fmt in services.ZIP_FORMATS}}


def _idle(request: Any) -> int:
    return request.app_settings.survey_idle_days


def _session(request: Any, for_update: bool = False) -> Any:
    """The session of the link; a change (``for_update``) must pass every session gate."""
    session = services.find_survey_session(request.dbsession, request.matchdict["token"],
                                           for_update=for_update, idle_days=_idle(request))
    if for_update:
        # hooks from other packages, e.g. a campaign that is closed or outside its window
        for gate in request.registry.get("session_gates", ()):
            refusal = gate(request.dbsession, session.campaign)
            if refusal:
                raise services.DeliveryError(409, "campaign_closed", refusal)
    return session


def _secret(request: Any) -> str:
    return request.app_settings.secret


def _retention(request: Any) -> int:
    """Years answers are kept (the privacy notice): the purge's own setting."""
    return retention_years(request.registry.settings)


def _lang(request: Any) -> str:
    return "en" if request.locale_name.startswith("en") else "zh"


# --- resident pages ------------------------------------------------------------------

@view_config(route_name="surveys.start", renderer=T + "start.pt", request_method="GET")
def start_page(request: Any) -> dict[str, Any]:
    code = request.params.get("survey", services.DEFAULT_SURVEY)
    definition = services.published_survey(request.dbsession, code)
    return {"definition": definition, "code": code, "lang": _lang(request),
            "retention": _retention(request)}


@view_config(route_name="surveys.start", request_method="POST")
def start_submit(request: Any) -> Any:
    _session_row, token = services.start_survey_session(
        request.dbsession, request.POST.get("survey", services.DEFAULT_SURVEY)[:64],
        locale=request.locale_name)
    return HTTPSeeOther(request.route_url("surveys.session", token=token))


@view_config(route_name="surveys.after_test", request_method="POST")
def after_test_submit(request: Any) -> Any:
    """Start (or resume) the survey that belongs to an ability-test session."""
    test_token = request.POST.get("test_token", "")
    if not 16 <= len(test_token) <= 64:
        raise services.DeliveryError(400, "bad_request", "no test link given")
    _row, token, _created = services.start_after_test(
        request.dbsession, test_token, _secret(request),
        survey_code=request.POST.get("survey", services.DEFAULT_SURVEY)[:64],
        locale=request.locale_name)
    return HTTPSeeOther(request.route_url("surveys.session", token=token))


def _page_response(request: Any, session: Any, state: Any, *, errors: Any = None,
                   values: dict[str, Any] | None = None, status: int = 200,
                   notice: Any = None) -> Any:
    if errors:
        state.errors = errors
    data = state_json(state, request.locale_name)
    if values:  # what the resident typed, kept when a page comes back with problems
        for q in data["page"]["questions"]:
            if q["type"] == "rating_grid":
                for item in q["items"]:
                    item["value"] = values.get(item["name"], item["value"])
            elif q["type"] != "note":
                q["value"] = values.get(q["name"], q.get("value"))
                if q.get("other"):
                    q["other_value"] = values.get(q["other_name"], q.get("other_value"))
        more = data["page"]["add_another"]
        if more is not None and more["name"] in values:
            more["value"] = values[more["name"]]
    response = render_to_response(T + "page.pt", {
        "state": data, "token": request.matchdict["token"], "selected": is_selected,
        "notice": notice, "has_errors": bool(errors), "retention": _retention(request)},
        request=request)
    response.status_int = status
    return response


@view_config(route_name="surveys.session", request_method="GET")
def session_page(request: Any) -> Any:
    session = _session(request)
    token = request.matchdict["token"]
    if session.status == "finished":
        return HTTPSeeOther(request.route_url("surveys.done", token=token))
    if session.status == "expired":
        return render_to_response(T + "expired.pt", {"token": token}, request=request)
    if session.status == "withdrawn":
        return render_to_response(T + "withdrawn.pt", {}, request=request)
    state = services.current_page(request.dbsession, session)
    notice = None
    if request.GET.get("moved"):
        notice = _("This page was changed in another window. Here is where you are now; "
                   "your earlier answers are kept.")
    elif request.GET.get("more") and state.page is not None:
        notice = _("Because of your answers, the questions below were added.")
    return _page_response(request, session, state, notice=notice)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@view_config(route_name="surveys.session", request_method="POST")
def session_submit(request: Any) -> Any:
    session = _session(request, for_update=True)
    token = request.matchdict["token"]
    db = request.dbsession
    revision = _int_or_none(request.POST.get("revision"))
    here = request.route_url("surveys.session", token=token)
    if session.status == "finished":
        return HTTPSeeOther(request.route_url("surveys.done", token=token))
    if session.status in ("expired", "withdrawn"):
        return HTTPSeeOther(here)  # the page says so
    if request.POST.get("action") == "back":
        try:
            services.go_back(db, session, revision)
        except services.DeliveryError:
            pass  # already on the first page: show it again
        return HTTPSeeOther(here)
    page_id = str(request.POST.get("page", ""))[:services.MAX_STEP_KEY]
    questions = services.page_questions(db, session, page_id)
    values = form_values(questions, request.POST, page_id,
                         services.add_another_key(db, session, page_id))
    try:
        state = services.save_page(db, session, page_id, values, revision)
    except services.StaleRevision:
        return HTTPSeeOther(here + "?moved=1")
    except services.PageInvalid as exc:
        state = services.current_page(db, session)
        return _page_response(request, session, state, errors=exc.errors,
                              values=exc.values, status=400)
    if state.complete:
        try:
            services.finish(db, session)
        except services.PageInvalid as exc:
            state = services.current_page(db, session)
            return _page_response(request, session, state, errors=exc.errors, status=400)
        return HTTPSeeOther(request.route_url("surveys.done", token=token))
    if state.page is not None and state.step == page_id:
        return HTTPSeeOther(here + "?more=1")  # follow-up questions joined this page
    return HTTPSeeOther(here)


@view_config(route_name="surveys.finish", request_method="POST")
def finish_submit(request: Any) -> Any:
    session = _session(request, for_update=True)
    token = request.matchdict["token"]
    try:
        services.finish(request.dbsession, session)
    except services.PageInvalid:
        return HTTPSeeOther(request.route_url("surveys.session", token=token))
    return HTTPSeeOther(request.route_url("surveys.done", token=token))


@view_config(route_name="surveys.done", renderer=T + "done.pt")
def done_page(request: Any) -> Any:
    session = _session(request)
    token = request.matchdict["token"]
    if session.status != "finished":
        return HTTPSeeOther(request.route_url("surveys.session", token=token))
    test_token = services.unseal(token, session.test_token_sealed)
    result_url = None
    if test_token:
        try:
            result_url = request.route_url("assessment.result", token=test_token)
        except KeyError:  # the ability test is not installed on this server
            result_url = None
    return {"result_url": result_url, "token": token}


@view_config(route_name="surveys.withdraw", renderer=T + "withdraw.pt", request_method="GET")
def withdraw_page(request: Any) -> Any:
    """The confirmation page: what withdrawing deletes, and one button."""
    session = _session(request)
    token = request.matchdict["token"]
    if session.status == "withdrawn":
        return HTTPSeeOther(request.route_url("surveys.session", token=token))
    return {"token": token}


@view_config(route_name="surveys.withdraw", request_method="POST")
def withdraw_submit(request: Any) -> Any:
    """Withdraw (a form post with the CSRF token), then the "withdrawn" page on the link.
    No session gate: a resident may withdraw after the campaign has closed."""
    session = services.find_survey_session(request.dbsession, request.matchdict["token"],
                                           for_update=True, idle_days=_idle(request))
    services.withdraw(request.dbsession, session)
    return HTTPSeeOther(request.route_url("surveys.session", token=request.matchdict["token"]))


# --- the hook shown on the ability-test result page ---------------------------------

def after_test_link(request: Any, test_session: Any) -> dict[str, Any] | None:
    """A "continue to the learning-needs survey" action for a test result page.

    Links to the survey session of this test when it exists; otherwise a form that
    starts it (campaign, invitation and background copied from the test).
    """
    test_token = request.matchdict.get("token") if request.matchdict else None
    if not test_token or services.published_survey(request.dbsession) is None:
        return None
    existing, token = services.survey_session_for_test(request.dbsession, _secret(request),
                                                       test_token)
    if existing is not None:
        if existing.status == "finished":
            return None  # already sent: nothing to continue
        return {"method": "get", "url": request.route_url("surveys.session", token=token),
                "label": _("Continue the learning-needs survey")}
    return {"method": "post", "url": request.route_url("surveys.after_test"),
            "label": _("Continue to the learning-needs survey"),
            "fields": {"test_token": test_token}}


# --- errors ------------------------------------------------------------------------

@exception_view_config(services.DeliveryError, renderer=T + "problem.pt")
def delivery_error(exc: services.DeliveryError, request: Any) -> Any:
    if request.path.startswith("/api/"):
        body = error_body(exc.code, exc.message, exc.details)
        return Response(json_body=body, status=exc.status)
    request.response.status_int = exc.status
    messages = {
        "unknown_session": _("This survey link is not valid. Please check the link or start "
                             "the survey again."),
        "unknown_survey": _("This survey is not available on this server."),
        "unknown_test_session": _("This test link is not valid."),
        "campaign_closed": exc.message,  # translated by the session gate that refused
    }
    return {"message": messages.get(exc.code, _("Something went wrong. Please go back and "
                                                "try again.")),
            "token": request.matchdict.get("token") if request.matchdict else None}


# --- JSON API ------------------------------------------------------------------------

def _api_state(request: Any, session: Any, state: Any = None) -> dict[str, Any]:
    state = state or services.current_page(request.dbsession, session)
    locale = request.GET.get("locale") or session.locale
    return state_json(state, locale)


@view_config(route_name="api.survey_sessions", request_method="POST", renderer="json",
             openapi=True, require_csrf=False)
def api_start(request: Any) -> dict[str, Any]:
    body = request.openapi_body or {}
    code = body.get("survey", services.DEFAULT_SURVEY)
    locale = body.get("locale", "zh_CN")
    if body.get("test_session_token"):
        session, token, created = services.start_after_test(
            request.dbsession, body["test_session_token"], _secret(request),
            survey_code=code, locale=locale)
        request.response.status_int = 201 if created else 200
    else:
        session, token = services.start_survey_session(request.dbsession, code,
                                                       locale=locale)
        request.response.status_int = 201
    return {"token": token, **_api_state(request, session)}


@view_config(route_name="api.survey_session", request_method="GET", renderer="json",
             openapi=True)
def api_state(request: Any) -> dict[str, Any]:
    return _api_state(request, _session(request))


@view_config(route_name="api.survey_page", request_method="POST", renderer="json",
             openapi=True, require_csrf=False)
def api_page(request: Any) -> Any:
    session = _session(request, for_update=True)
    body = request.openapi_body
    try:
        state = services.save_page(request.dbsession, session, request.matchdict["page"],
                                   body.get("answers", {}), body["revision"])
    except services.StaleRevision as exc:
        return Response(json_body={**error_body(exc.code, exc.message),
                                   "state": _api_state(request, session)}, status=409)
    except services.PageInvalid as exc:
        return Response(json_body={**error_body(exc.code, exc.message, exc.details),
                                   "state": _api_state(request, session)}, status=422)
    return _api_state(request, session, state)


@view_config(route_name="api.survey_back", request_method="POST", renderer="json",
             openapi=True, require_csrf=False)
def api_back(request: Any) -> Any:
    session = _session(request, for_update=True)
    body = request.openapi_body or {}
    state = services.go_back(request.dbsession, session, body.get("revision"))
    return _api_state(request, session, state)


@view_config(route_name="api.survey_finish", request_method="POST", renderer="json",
             openapi=True, require_csrf=False)
def api_finish(request: Any) -> Any:
    session = _session(request, for_update=True)
    try:
        services.finish(request.dbsession, session)
    except services.PageInvalid as exc:
        return Response(json_body={**error_body(exc.code, exc.message, exc.details),
                                   "state": _api_state(request, session)}, status=422)
    return {"status": session.status, "scales": services.scale_results(session)}


@view_config(route_name="api.survey_withdraw", request_method="POST", renderer="json",
             openapi=True, require_csrf=False)
def api_withdraw(request: Any) -> dict[str, Any]:
    """Withdraw the survey session's data; repeatable (answers_deleted 0)."""
    session = services.find_survey_session(request.dbsession, request.matchdict["token"],
                                           for_update=True, idle_days=_idle(request))
    return {"status": "withdrawn", "answers_deleted": services.withdraw(request.dbsession,
                                                                         session)}


@view_config(route_name="api.survey_result", request_method="GET", renderer="json",
             openapi=True)
def api_result(request: Any) -> Any:
    session = _session(request)
    if session.status != "finished":
        raise ApiError(409, "not_finished", "the survey is not finished yet")
    return {"status": session.status, "scales": services.scale_results(session)}


# --- staff ---------------------------------------------------------------------------

def _district_scope(request: Any) -> str | None:
    user = request.identity
    return user.district_code if user.role == "district" else None


@view_config(route_name="surveys.staff_list", context=SurveysArea, renderer=T + "staff.pt",
             permission="survey.view", request_method="GET")
def staff_list(request: Any) -> dict[str, Any]:
    return _staff_data(request)


def _problem_text(problem: Any, translate: Any) -> str:
    """A definition's problem as the import page shows it: a problem of reading the
    workbook itself (it keeps tabular's in ``table``) in the reader's language."""
    table = getattr(problem, "table", None)
    return file_problem_text(table, translate) if table is not None else str(problem)


def _staff_data(request: Any, problems: list[str] | None = None, message: Any = None
                ) -> dict[str, Any]:
    scope = _district_scope(request)
    surveys = services.list_surveys(request.dbsession, district=scope)
    # versions with repeat pages also offer CSV and SPSS as a zip with the long tables
    with_repeats = {d.id for s in surveys for d in s.versions
                    if any(p.repeat for p in services.definition_survey(d).pages)}
    return {"surveys": surveys, "with_repeats": with_repeats,
            "can_import": request.has_permission("survey.import"),
            "can_download": request.has_permission("survey.download"),
            "scope": scope, "problems": problems or [], "message": message,
            "lang": _lang(request)}


@view_config(route_name="surveys.staff_list", context=SurveysArea, renderer=T + "staff.pt",
             permission="survey.import", request_method="POST")
def staff_import(request: Any) -> Any:
    upload = request.POST.get("file")
    if upload is None or not hasattr(upload, "file"):
        request.response.status_int = 400
        return _staff_data(request, [request.translate(_("Choose a JSON or XLSX file."))])
    data = upload.file.read(services.MAX_UPLOAD + 1)
    try:
        outcome = services.import_survey(
            request.dbsession, data, request.identity.username, name=upload.filename,
            publish=request.POST.get("publish") == "yes")
    except SurveyError as exc:
        request.response.status_int = 400
        return _staff_data(request, [_problem_text(p, request.translate)
                                     for p in exc.problems])
    d = outcome.definition
    mapping = {"code": d.code, "version": d.version}
    flash(request, _("Imported ${code} version ${version}.", mapping=mapping)
          if outcome.created else
          _("This document is already stored as ${code} version ${version}.",
            mapping=mapping))
    return HTTPSeeOther(request.route_url("surveys.staff_list"))


@view_config(route_name="surveys.staff_publish", context=SurveysArea,
             permission="survey.import", request_method="POST")
def staff_publish(request: Any) -> Any:
    try:
        definition = services.get_definition(request.dbsession, request.matchdict["code"],
                                             int(request.matchdict["version"]))
    except ValueError:
        raise HTTPNotFound() from None
    services.publish_version(request.dbsession, definition, request.identity.username)
    return HTTPSeeOther(request.route_url("surveys.staff_list"))


@view_config(route_name="surveys.staff_download", context=SurveysArea,
             permission="survey.download", request_method="GET")
def staff_download(request: Any) -> Any:
    """Responses of one survey version; district staff get only their district's rows."""
    code, fmt = request.matchdict["code"], request.matchdict["fmt"]
    if fmt not in FORMATS:
        raise HTTPNotFound()
    try:
        definition = services.get_definition(request.dbsession, code,
                                             int(request.matchdict["version"]))
    except ValueError:
        raise HTTPNotFound() from None
    if fmt == "json":  # the definition itself (no responses)
        response = Response(services.definition_json(definition), charset="utf-8",
                            content_type="application/json")
        response.content_disposition = (f'attachment; filename="{code}_v'
                                        f'{definition.version}.json"')
        return response
    scope = _district_scope(request)
    labels = request.params.get("labels", "zh")
    if labels not in services.label_languages(services.definition_survey(definition)):
        labels = "zh"
    data, n = services.export_file(request.dbsession, code, fmt, version=definition.version,
                                   district=scope, labels=labels)
    media_type, extension = FORMATS[fmt]
    response = Response(body=data, content_type=media_type.split(";")[0],
                        charset="utf-8" if "charset" in media_type else None)
    name = f"{code}_v{definition.version}_{'codebook' if fmt == 'codebook' else 'responses'}"
    name += f"_{scope}" if scope else ""
    response.content_disposition = f'attachment; filename="{name}{extension}"'
    response.cache_control = "no-store"
    audit.record(request.dbsession, actor=request.identity.username, action="survey.download",
                 target=f"{code} v{definition.version}", address=request.client_address,
                 detail={"format": fmt, "district": scope, "respondents": n})
    return response
