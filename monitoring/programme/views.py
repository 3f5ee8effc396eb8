"""Programme pages (thin: parse, call a service of this wing, render): the indicator
system, reports of districts and departments with their review, progress against the
plan with charts and the district map.

Access: the city office (monitor, admin) sees everything and reviews reports; a
district account sees its own district's reports and progress (the city totals and its
district); a department account sees its own department's reports (only the indicators
it is responsible for) and the city totals. Only the unit's own staff edit its report.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from pyramid.authorization import Allow
from pyramid.httpexceptions import HTTPBadRequest, HTTPNotFound, HTTPSeeOther
from pyramid.response import Response
from pyramid.view import view_config

from learningcity import audit, limits
from learningcity.districts import get_district
from learningcity.filemessages import file_problems_text
from learningcity.i18n import _, flash
from monitoring.programme import catalogue, evidence, pages, progress, reporting
from monitoring.programme.reporting import Entry, ReportError, Unit
from tabular.reading import TableError

T = "monitoring:templates/"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UPLOAD_ROUTES = ("programme.system", "programme.upload")


class ProgrammeArea:
    """The programme pages: the city office, district and department staff."""

    __acl__ = [
        (Allow, "role:admin", ("programme", "programme_admin", "review")),
        (Allow, "role:monitor", ("programme", "review")),
        (Allow, "role:district", "programme"),
        (Allow, "role:department", "programme"),
    ]

    def __init__(self, request: Any) -> None:
        self.request = request


class ReportResource:
    """One unit's report of one period: its own staff edit, the city office reviews."""

    def __init__(self, request: Any) -> None:
        md = request.matchdict
        period = reporting.get_period(request.dbsession, md["period"])
        if period is None or md["kind"] not in ("district", "department"):
            raise HTTPNotFound()
        unit = Unit(md["kind"], md["unit"])
        if unit.kind == "district" and get_district(request.dbsession, unit.code) is None:
            raise HTTPNotFound()
        if unit.kind == "department" and unit.code not in {
                d[0] for d in catalogue.departments(request.dbsession)}:
            raise HTTPNotFound()
        self.request, self.period, self.unit = request, period, unit
        self.__acl__ = [
            (Allow, "role:admin", ("view", "review")),
            (Allow, "role:monitor", ("view", "review")),
            (Allow, f"{unit.kind}:{unit.code}", ("view", "edit")),
        ]

    @property
    def report(self) -> Any:
        return reporting.get_report(self.request.dbsession, self.period, self.unit)


class EvidenceResource:
    """One evidence file: whoever may view its report may download it."""

    def __init__(self, request: Any) -> None:
        try:
            found = evidence.get(request.dbsession, int(request.matchdict["id"]))
        except ValueError:
            raise HTTPNotFound() from None
        if found is None:
            raise HTTPNotFound()
        self.file = found
        r = found.report
        self.__acl__ = [
            (Allow, "role:admin", "view"), (Allow, "role:monitor", "view"),
            (Allow, f"{r.unit_kind}:{r.unit_code}", "view"),
        ]


def _actor(request: Any) -> str:
    return request.identity.username


def _problems(request: Any, exc: Exception) -> list[str]:
    if isinstance(exc, TableError):
        return file_problems_text(exc, request.translate)
    if isinstance(exc, ReportError):
        return [pages.problem_text(request, p) for p in exc.problems]
    return [str(exc)]


def _district_view(request: Any) -> str | None:
    """Whose district rows the user sees: None all, a code its own, "" none (city only)."""
    user = request.identity
    if user.role in ("admin", "monitor"):
        return None
    if user.role == "district":
        return user.district_code
    return ""


# ------------------------------------------------------------------ progress

@view_config(route_name="programme.progress", renderer=T + "programme_progress.pt",
             permission="programme", context=ProgrammeArea)
def progress_page(request: Any) -> dict[str, Any]:
    scope = _district_view(request)
    rows = progress.stored(request.monitoring_db, scope if scope is not None else None)
    if scope == "":
        rows = [r for r in rows if r.district == ""]
    year = pages.year_param(request, rows)
    return pages.progress_context(request, rows, year, scope)


@view_config(route_name="programme.indicator", renderer=T + "programme_indicator.pt",
             permission="programme", context=ProgrammeArea)
def indicator_page(request: Any) -> dict[str, Any]:
    spec = catalogue.get_indicator(request.dbsession, request.matchdict["code"])
    if spec is None:
        raise HTTPNotFound()
    scope = _district_view(request)
    rows = [r for r in progress.stored(request.monitoring_db,
                                       scope if scope is not None else None)
            if r.indicator == spec.code and (scope != "" or r.district == "")]
    year = pages.year_param(request, rows)
    return pages.indicator_context(request, spec, rows, year, scope)


@view_config(route_name="programme.chart", permission="programme", context=ProgrammeArea)
def chart(request: Any) -> Response:
    spec = catalogue.get_indicator(request.dbsession, request.matchdict["code"])
    ext = request.matchdict["ext"]
    if spec is None or ext not in ("svg", "png"):
        raise HTTPNotFound()
    scope = _district_view(request)
    rows = [r for r in progress.stored(request.monitoring_db,
                                       scope if scope is not None else None)
            if r.indicator == spec.code and (scope != "" or r.district == "")]
    body = pages.trend_chart(request, spec, rows, ext)
    return Response(body, content_type="image/svg+xml" if ext == "svg" else "image/png",
                    cache_control="private, max-age=60")


@view_config(route_name="programme.map", permission="programme", context=ProgrammeArea)
def district_map(request: Any) -> Response:
    spec = catalogue.get_indicator(request.dbsession, request.matchdict["code"])
    if spec is None:
        raise HTTPNotFound()
    scope = _district_view(request)
    if scope == "":
        raise HTTPNotFound()
    rows = [r for r in progress.stored(request.monitoring_db, scope)
            if r.indicator == spec.code]
    svg = pages.map_svg(request, spec, rows, pages.year_param(request, rows), scope)
    if svg is None:
        raise HTTPNotFound()
    return Response(svg, content_type="image/svg+xml", cache_control="private, max-age=60")


@view_config(route_name="programme.refresh", permission="review", context=ProgrammeArea,
             request_method="POST")
def refresh(request: Any) -> Any:
    n = progress.refresh(request.dbsession, request.monitoring_db)
    audit.record(request.dbsession, actor=_actor(request), action="programme.progress",
                 target="refresh", detail={"rows": n})
    flash(request, _("Progress recomputed from the accepted reports."))
    return HTTPSeeOther(request.route_url("programme.progress"))


# ------------------------------------------------------------------ the indicator system

@view_config(route_name="programme.system", renderer=T + "programme_system.pt",
             permission="programme", context=ProgrammeArea, request_method="GET")
def system_page(request: Any) -> dict[str, Any]:
    return pages.system_context(request, {}, [])


@view_config(route_name="programme.system", renderer=T + "programme_system.pt",
             permission="programme_admin", context=ProgrammeArea, request_method="POST")
def system_post(request: Any) -> Any:
    post = request.POST
    if post.get("action") == "import":
        upload = post.get("file")
        if upload is None or not hasattr(upload, "file"):
            request.response.status = 400
            return pages.system_context(request, {}, [request.translate(
                _("Choose the XLSX file to import."))])
        try:
            with request.dbsession.begin_nested():
                specs = catalogue.import_xlsx(request.dbsession, upload.file.read(),
                                              upload.filename, _actor(request),
                                              translate=request.translate)
        except TableError as exc:
            request.response.status = 400
            return pages.system_context(request, {}, _problems(request, exc))
        flash(request, _("${n} indicators stored from the file.",
                                mapping={"n": len(specs)}))
        return HTTPSeeOther(request.route_url("programme.system"))
    form = {k: post.get(k, "")[:2000] for k in catalogue.FIELDS}
    if not any(form.values()):
        raise HTTPBadRequest("the indicator's fields are missing")
    try:
        with request.dbsession.begin_nested():
            spec = catalogue.save_indicator(request.dbsession, form, _actor(request))
    except catalogue.CatalogueError as exc:
        request.response.status = 400
        return pages.system_context(request, form, [
            f"{request.translate(pages.FIELD_NAMES.get(name, name))}: "
            f"{request.translate(text)}" for name, text in exc.faults])
    flash(request, _("Indicator stored: ${code}", mapping={"code": spec.code}))
    return HTTPSeeOther(request.route_url("programme.system"))


# ------------------------------------------------------------------ reports

@view_config(route_name="programme.reports", renderer=T + "programme_reports.pt",
             permission="programme", context=ProgrammeArea)
def reports_page(request: Any) -> dict[str, Any]:
    return pages.reports_context(request, Unit.of_user(request.identity),
                                 dt.date.today())


def _report_page(context: ReportResource, request: Any, problems: list[str] | None = None,
                 entries: dict[str, Entry] | None = None, status: int = 200
                 ) -> dict[str, Any]:
    request.response.status = status
    return pages.report_context(request, context.period, context.unit, context.report,
                                problems or [], entries,
                                can_edit=request.has_permission("edit", context),
                                can_review=request.has_permission("review", context))


@view_config(route_name="programme.report", renderer=T + "programme_report.pt",
             permission="view", context=ReportResource, request_method="GET")
def report_page(context: ReportResource, request: Any) -> dict[str, Any]:
    return _report_page(context, request)


def _own_report(context: ReportResource, request: Any) -> Any:
    return reporting.get_report(request.dbsession, context.period, context.unit,
                                create=True)


@view_config(route_name="programme.report", renderer=T + "programme_report.pt",
             permission="edit", context=ReportResource, request_method="POST")
def report_post(context: ReportResource, request: Any) -> Any:
    post = request.POST
    action = post.get("action", "")
    if action not in ("save", "submit"):
        raise HTTPBadRequest("action: save or submit")
    specs = reporting.indicators_for(request.dbsession, context.unit)
    entries = {s.code: Entry(post.get(f"value__{s.code}", "")[:64],
                             post.get(f"denominator__{s.code}", "")[:64],
                             post.get(f"comment__{s.code}", "")[:2000]) for s in specs}
    report = _own_report(context, request)
    try:
        with request.dbsession.begin_nested():
            reporting.save_entries(request.dbsession, report, entries, _actor(request))
            if action == "submit":
                reporting.submit(request.dbsession, report, _actor(request))
    except ReportError as exc:
        request.dbsession.refresh(report)
        return _report_page(context, request, _problems(request, exc), entries, 400)
    flash(request, _("Report submitted to the city office.") if action == "submit"
                          else _("Draft saved."))
    return HTTPSeeOther(request.url)


@view_config(route_name="programme.review", renderer=T + "programme_report.pt",
             permission="review", context=ReportResource, request_method="POST")
def review_post(context: ReportResource, request: Any) -> Any:
    action = request.POST.get("action", "")
    report = context.report
    if action not in ("return", "accept"):
        raise HTTPBadRequest("action: return or accept")
    if report is None:
        return _report_page(context, request, [request.translate(
            _("There is no report to review yet."))], status=409)
    try:
        with request.dbsession.begin_nested():
            if action == "accept":
                reporting.accept(request.dbsession, report, _actor(request))
                progress.refresh(request.dbsession, request.monitoring_db)
            else:
                reporting.return_report(request.dbsession, report,
                                        request.POST.get("comment", "")[:2000],
                                        _actor(request))
    except ReportError as exc:
        request.dbsession.refresh(report)
        return _report_page(context, request, _problems(request, exc), status=400)
    flash(request, _("Report accepted.") if action == "accept"
                          else _("Report returned with your comment."))
    return HTTPSeeOther(request.route_url("programme.report", **request.matchdict))


@view_config(route_name="programme.template", permission="view", context=ReportResource)
def template(context: ReportResource, request: Any) -> Response:
    report = context.report
    if report is None:
        if not request.has_permission("edit", context):
            raise HTTPNotFound()
        report = _own_report(context, request)
    body = reporting.template_xlsx(request.dbsession, report, request.locale_name)
    name = f"programme-{context.period.code}-{context.unit.kind}-{context.unit.code}.xlsx"
    return Response(body, content_type=XLSX,
                    content_disposition=f'attachment; filename="{name}"')


@view_config(route_name="programme.upload", renderer=T + "programme_report.pt",
             permission="edit", context=ReportResource, request_method="POST")
def upload(context: ReportResource, request: Any) -> Any:
    upload_file = request.POST.get("file")
    if upload_file is None or not hasattr(upload_file, "file"):
        return _report_page(context, request, [request.translate(
            _("Choose the filled XLSX template to upload."))], status=400)
    report = _own_report(context, request)
    try:
        with request.dbsession.begin_nested():
            reporting.upload_template(request.dbsession, report, upload_file.file.read(),
                                      upload_file.filename, _actor(request),
                                      translate=request.translate)
    except (TableError, ReportError) as exc:
        request.dbsession.refresh(report)
        return _report_page(context, request, _problems(request, exc), status=400)
    flash(request, _("Values stored from the file. Check them, then submit."))
    return HTTPSeeOther(request.route_url("programme.report", **request.matchdict))


@view_config(route_name="programme.evidence_add", renderer=T + "programme_report.pt",
             permission="edit", context=ReportResource, request_method="POST")
def evidence_add(context: ReportResource, request: Any) -> Any:
    upload_file = request.POST.get("file")
    if upload_file is None or not hasattr(upload_file, "file"):
        return _report_page(context, request, [request.translate(
            _("Choose a PDF, JPEG, PNG or XLSX file."))], status=400)
    report = _own_report(context, request)
    try:
        with request.dbsession.begin_nested():
            evidence.add(request.dbsession, report, upload_file.filename or "evidence",
                         upload_file.file.read(evidence.MAX_BYTES + 1), _actor(request))
    except ReportError as exc:
        request.dbsession.refresh(report)
        return _report_page(context, request, _problems(request, exc), status=400)
    flash(request, _("Evidence attached."))
    return HTTPSeeOther(request.route_url("programme.report", **request.matchdict))


@view_config(route_name="programme.evidence", permission="view", context=EvidenceResource)
def evidence_file(context: EvidenceResource, request: Any) -> Response:
    f = context.file
    return Response(f.data, content_type=f.content_type,
                    content_disposition=f'attachment; filename="{f.filename}"',
                    cache_control="private, no-store")


def includeme(config: Any) -> None:
    """Routes of the programme pages, their upload routes and the staff home link."""
    area = (("programme.progress", "/programme"),
            ("programme.indicator", "/programme/indicators/{code}"),
            ("programme.chart", "/programme/charts/{code}.{ext}"),
            ("programme.map", "/programme/map/{code}.svg"),
            ("programme.refresh", "/programme/refresh"),
            ("programme.system", "/programme/system"),
            ("programme.reports", "/programme/reports"))
    for name, pattern in area:
        config.add_route(name, pattern, factory=ProgrammeArea)
    base = "/programme/reports/{period}/{kind}/{unit}"
    for name, suffix in (("programme.report", ""), ("programme.review", "/review"),
                         ("programme.template", "/template.xlsx"),
                         ("programme.upload", "/upload"),
                         ("programme.evidence_add", "/evidence")):
        config.add_route(name, base + suffix, factory=ReportResource)
    config.add_route("programme.evidence", "/programme/evidence/{id}",
                     factory=EvidenceResource)
    config.registry.setdefault("upload_routes", set()).update(UPLOAD_ROUTES)
    limits.route_limit(config, "programme.evidence_add", evidence.MAX_BYTES)
    config.registry.setdefault("staff_links", []).append(
        {"route": "programme.reports", "label": _("Action plan: reports and progress"),
         "order": 45, "roles": ("monitor", "admin", "district", "department")})
    config.scan("monitoring.programme.views")
