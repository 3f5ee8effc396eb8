"""Pages of learning organisations: the register, standards, reviews, the organisation's link.

Staff pages under ``/organisations``: district staff keep and review their own
district's organisations (another district's organisation is a 404); admins act on
all; monitors (the city office) read every district, upload standards and confirm
reviews; researchers have no access. The organisation's own self-assessment is at
``/o/{token}``: no account, the link token is the key (like residents' links). Views
parse and render; ``register``, ``standards``, ``selfassess``, ``review`` and
``recognition`` do the work.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from pyramid.authorization import Allow
from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.renderers import render_to_response
from pyramid.response import Response
from pyramid.view import view_config

from learningcity import limits
from learningcity.districts import list_districts
from learningcity.i18n import _, flash
from monitoring.fieldwork.campaigns import shown
from monitoring.fieldwork.window import local_text
from monitoring.organisations import recognition, register, review, selfassess, standards
from monitoring.organisations.models import EVALUATION_STATUSES, KINDS, Organisation
from tabular.reading import TableError

T = "monitoring:templates/"
#: the action plan's target for learning-type communities (villages): >= 80 % by 2025
TARGET_SHARE = 0.8
NO_STORE = "no-store"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STATUS_LABELS = {"invited": _("Link issued"), "draft": _("Draft saved"),
                 "submitted": _("Submitted, awaiting review"),
                 "returned": _("Returned for changes"),
                 "reviewed": _("Reviewed, awaiting confirmation"),
                 "confirmed": _("Confirmed")}
assert set(STATUS_LABELS) == set(EVALUATION_STATUSES)
LABELS = {"kind_labels": register.KIND_LABELS, "status_labels": STATUS_LABELS,
          "kinds": KINDS}


class OrganisationArea:
    """The register, the standards and the new-organisation form."""

    __acl__ = [
        (Allow, "role:admin", ("view", "create", "standards")),
        (Allow, "role:district", ("view", "create")),
        (Allow, "role:monitor", ("view", "standards")),
    ]

    def __init__(self, request: Any) -> None:
        self.request = request


class OrganisationResource:
    """One organisation: its district's staff and admins act, the city office confirms."""

    def __init__(self, organisation: Organisation) -> None:
        self.organisation = organisation
        self.__acl__ = [
            (Allow, "role:admin", ("view", "edit", "confirm")),
            (Allow, "role:monitor", ("view", "confirm")),
            (Allow, f"district:{organisation.district_code}", ("view", "edit")),
        ]


class LockedOrganisation:
    """What an anonymous visitor gets for any organisation URL: nothing is allowed."""

    __acl__: list = []


def organisation_factory(request: Any) -> Any:
    """The organisation named in the URL; 404 when it does not exist or belongs to a
    district the user does not work for (never a hint that it exists)."""
    user = request.identity
    if user is None:
        return LockedOrganisation()
    organisation = register.get_organisation(request.dbsession,
                                             int(request.matchdict["id"]))
    if organisation is None:
        raise HTTPNotFound()
    if user.role == "district" and organisation.district_code != user.district_code:
        raise HTTPNotFound()
    return OrganisationResource(organisation)


def _scope(request: Any) -> str | None:
    """The one district a district officer works for; None for the city's staff."""
    user = request.identity
    return user.district_code if user.role == "district" else None


def _actor(request: Any) -> str:
    return request.identity.username


def _problems(request: Any, exc: Exception) -> list[str]:
    if isinstance(exc, TableError):
        return [shown(p, request.translate) for p in exc.problems] + (
            [request.translate(_("... and ${more} more problems",
                                 mapping={"more": exc.total - len(exc.problems)}))]
            if exc.total > len(exc.problems) else [])
    problems = getattr(exc, "problems", None) or [str(exc)]
    return [shown(p, request.translate) for p in problems]


def _year(request: Any) -> int:
    """The evaluation year the page is about: ``?year=``, else the latest standard's year,
    else this year."""
    raw = request.params.get("year", "")
    if raw.isdigit() and 2000 <= int(raw) <= 2100:
        return int(raw)
    found = standards.list_standards(request.dbsession)
    return found[0].year if found else dt.date.today().year


def _upload(request: Any, field: str) -> tuple[str, bytes] | None:
    upload = request.POST.get(field)
    if not hasattr(upload, "file"):
        return None
    return upload.filename or "upload", upload.file.read()


# ------------------------------------------------------------------ the register

def _list_page(request: Any, problems: list[str] | None = None, status: int = 200) -> Any:
    db = request.dbsession
    scope = _scope(request)
    kind = request.params.get("kind", "")
    kind = kind if kind in KINDS else ""
    year = _year(request)
    rows = register.visible_organisations(db, scope, kind or None)
    evaluations = recognition.evaluations_of_year(db, year, scope)
    counts = recognition.learning_community_counts(db, year)
    if scope is not None:
        counts = {k: v for k, v in counts.items() if k == scope}
    names = {d.code: d.name(request.locale_name) for d in list_districts(db)}
    total = (sum(r for r, _n in counts.values()), sum(n for _r, n in counts.values()))
    response = render_to_response(T + "org_list.pt", {
        "rows": rows, "evaluations": evaluations, "year": year, "kind": kind,
        "counts": counts, "total": total, "names": names, "target": TARGET_SHARE,
        "by_kind": register.counts_by_kind(db, scope),
        "problems": problems or [],
        "can_create": bool(request.has_permission("create", request.context)),
        "can_standards": bool(request.has_permission("standards", request.context)),
        **LABELS}, request=request)
    response.status_int = status
    return response


@view_config(route_name="orgs.list", permission="view", context=OrganisationArea)
def organisation_list(request: Any) -> Any:
    """The register (one district for district staff), each organisation's status in the
    year, the share of recognised communities, and the import form."""
    return _list_page(request)


@view_config(route_name="orgs.import", permission="create", context=OrganisationArea,
             request_method="POST")
def organisation_import(request: Any) -> Any:
    """Import the register from XLSX (or CSV): every problem listed, nothing stored."""
    upload = _upload(request, "file")
    if upload is None:
        return _list_page(request, [request.translate(_("Choose an XLSX file."))], 400)
    try:
        with request.dbsession.begin_nested():
            result = register.import_register(
                request.dbsession, upload[0], upload[1], actor=_actor(request),
                scope=_scope(request), max_bytes=request.app_settings.max_upload_bytes)
    except TableError as exc:
        return _list_page(request, _problems(request, exc), 400)
    flash(request, _(
        "Register imported: ${added} added, ${updated} updated.",
        mapping={"added": result.added, "updated": result.updated}))
    return HTTPSeeOther(request.route_url("orgs.list"))


@view_config(route_name="orgs.register_xlsx", permission="view", context=OrganisationArea)
def register_download(request: Any) -> Response:
    """The register as XLSX (the import's format: edit and upload it back)."""
    response = Response(register.register_template(request.dbsession, _scope(request)),
                        content_type=XLSX)
    response.content_disposition = 'attachment; filename="organisations.xlsx"'
    response.cache_control = NO_STORE
    return response


def _form_page(request: Any, form: dict[str, str], problems: list[str],
               organisation: Organisation | None) -> dict[str, Any]:
    districts = list_districts(request.dbsession)
    scope = _scope(request)
    if scope is not None:
        districts = [d for d in districts if d.code == scope]
    return {"form": form, "problems": problems, "organisation": organisation,
            "districts": districts, **LABELS}


def _form_values(request: Any) -> dict[str, str]:
    return {k: request.POST.get(k, "").strip()
            for k in ("code", "district", "kind", "name_zh", "name_en")}


@view_config(route_name="orgs.new", renderer=T + "org_form.pt", permission="create",
             context=OrganisationArea)
def organisation_new(request: Any) -> Any:
    form = {"code": "", "district": _scope(request) or "", "kind": "community",
            "name_zh": "", "name_en": "", "active": "1"}
    problems: list[str] = []
    if request.method == "POST":
        form.update(_form_values(request))
        if _scope(request) is not None:
            form["district"] = _scope(request)
        try:
            organisation = register.add_organisation(request.dbsession, form,
                                                     actor=_actor(request),
                                                     scope=_scope(request))
        except register.RegisterError as exc:
            problems = _problems(request, exc)
            request.response.status_int = 400
        else:
            flash(request, _("Organisation added."))
            return HTTPSeeOther(request.route_url("orgs.detail", id=organisation.id))
    return _form_page(request, form, problems, None)


@view_config(route_name="orgs.edit", renderer=T + "org_form.pt", permission="edit")
def organisation_edit(context: OrganisationResource, request: Any) -> Any:
    organisation = context.organisation
    form = {"code": organisation.code, "district": organisation.district_code,
            "kind": organisation.kind, "name_zh": organisation.name_zh,
            "name_en": organisation.name_en, "active": "1" if organisation.active else ""}
    problems: list[str] = []
    if request.method == "POST":
        form.update(_form_values(request))
        form["active"] = "1" if request.POST.get("active") else ""
        if _scope(request) is not None:
            form["district"] = _scope(request)
        try:
            register.update_organisation(request.dbsession, organisation, form,
                                         actor=_actor(request), scope=_scope(request),
                                         active=bool(form["active"]))
        except register.RegisterError as exc:
            problems = _problems(request, exc)
            request.response.status_int = 400
        else:
            flash(request, _("Saved."))
            return HTTPSeeOther(request.route_url("orgs.detail", id=organisation.id))
    return _form_page(request, form, problems, organisation)


def _detail_page(request: Any, organisation: Organisation, *, link: str | None = None,
                 problems: list[str] | None = None, status: int = 200) -> Any:
    db = request.dbsession
    year = _year(request)
    evaluations = recognition.evaluations_of(db, organisation.id)
    response = render_to_response(T + "org_detail.pt", {
        "organisation": organisation, "evaluations": evaluations, "year": year,
        "years": _years(db, year, {e.year for e in evaluations}), "link": link,
        "problems": problems or [],
        "standard": standards.current_standard(db, organisation.kind, year),
        "can_edit": bool(request.has_permission("edit", request.context)),
        "local_text": local_text, **LABELS}, request=request)
    response.status_int = status
    response.cache_control = NO_STORE
    return response


def _years(db: Any, year: int, more: set[int]) -> list[int]:
    """The years a link can be issued for: every standard's, the page's, evaluated ones."""
    found = {s.year for s in standards.list_standards(db)} | {year} | more
    return sorted(found, reverse=True)


@view_config(route_name="orgs.detail", permission="view", request_method="GET")
def organisation_detail(context: OrganisationResource, request: Any) -> Any:
    """One organisation, its evaluations by year, the form issuing a self-assessment link."""
    return _detail_page(request, context.organisation)


@view_config(route_name="orgs.invite", permission="edit", request_method="POST")
def organisation_invite(context: OrganisationResource, request: Any) -> Any:
    """Issue (or re-issue) the year's self-assessment link; shown once on the page."""
    organisation = context.organisation
    raw = request.POST.get("year", "")
    if not raw.isdigit():
        return _detail_page(request, organisation, status=400, problems=[
            request.translate(_("Choose the year of the evaluation."))])
    try:
        token, _evaluation = selfassess.invite(request.dbsession, organisation, int(raw),
                                               actor=_actor(request))
    except selfassess.EvaluationError as exc:
        return _detail_page(request, organisation, problems=_problems(request, exc),
                            status=exc.status)
    return _detail_page(request, organisation, link=request.route_url("orgs.self",
                                                                      token=token))


# ------------------------------------------------------------------ review and confirm

def _evaluation(context: OrganisationResource, request: Any) -> Any:
    found = recognition.evaluation_of(request.dbsession, context.organisation.id,
                                      int(request.matchdict["year"]))
    if found is None:
        raise HTTPNotFound()
    return found


def _review_page(request: Any, context: OrganisationResource, evaluation: Any, *,
                 form: dict[str, dict[str, str]] | None = None,
                 problems: list[str] | None = None, status: int = 200,
                 return_comment: str | None = None) -> Any:
    response = render_to_response(T + "org_review.pt", {
        "organisation": context.organisation, "evaluation": evaluation,
        "standard": evaluation.standard, "criteria": standards.criteria(evaluation.standard),
        "form": form or {"levels": dict(evaluation.review_levels or evaluation.self_levels),
                         "comments": dict(evaluation.review_comments)},
        "problems": problems or [], "local_text": local_text,
        "can_review": bool(request.has_permission("edit", context))
        and evaluation.status in ("submitted", "reviewed"),
        "can_confirm": bool(request.has_permission("confirm", context))
        and evaluation.status == "reviewed",
        "return_comment": return_comment if return_comment is not None else "",
        **LABELS}, request=request)
    response.status_int = status
    response.cache_control = NO_STORE
    return response


def _refused(request: Any, context: OrganisationResource, evaluation: Any,
             exc: ValueError, **page: Any) -> Any:
    """The review page again with why a review, return or confirmation was refused (a
    missing or bad revision: the form is incomplete)."""
    request.dbsession.refresh(evaluation)
    problems = _problems(request, exc) if hasattr(exc, "problems") else [
        request.translate(_("The form is incomplete; reload the page."))]
    return _review_page(request, context, evaluation, problems=problems,
                        status=getattr(exc, "status", 400), **page)


@view_config(route_name="orgs.review", permission="view", request_method="GET")
def review_page(context: OrganisationResource, request: Any) -> Any:
    """The self-assessment beside the district's scores, the result, the confirmation."""
    return _review_page(request, context, _evaluation(context, request))


@view_config(route_name="orgs.review", permission="edit", request_method="POST")
def review_post(context: OrganisationResource, request: Any) -> Any:
    """Store the district's review (levels, comments); score and recognition computed."""
    evaluation = _evaluation(context, request)
    codes = [c["code"] for c in standards.criteria(evaluation.standard)]
    form = {"levels": {c: request.POST.get(f"level-{c}", "") for c in codes},
            "comments": {c: request.POST.get(f"comment-{c}", "") for c in codes}}
    try:
        revision = int(request.POST.get("revision", ""))
        with request.dbsession.begin_nested():
            review.review(request.dbsession, evaluation, form["levels"], form["comments"],
                          actor=_actor(request), revision=revision)
    except ValueError as exc:
        return _refused(request, context, evaluation, exc, form=form)
    flash(request, _("Review saved."))
    return HTTPSeeOther(request.route_url("orgs.review", id=context.organisation.id,
                                          year=evaluation.year))


@view_config(route_name="orgs.return", permission="edit", request_method="POST")
def return_post(context: OrganisationResource, request: Any) -> Any:
    """Return the self-assessment to the organisation with the district's comment."""
    evaluation = _evaluation(context, request)
    comment = request.POST.get("comment", "")
    try:
        revision = int(request.POST.get("revision", ""))
        with request.dbsession.begin_nested():
            review.return_for_changes(request.dbsession, evaluation, comment,
                                      actor=_actor(request), revision=revision)
    except ValueError as exc:
        return _refused(request, context, evaluation, exc, return_comment=comment)
    flash(request, _("Returned to the organisation. Its link opens the self-assessment "
                     "for changes until it submits again."))
    return HTTPSeeOther(request.route_url("orgs.review", id=context.organisation.id,
                                          year=evaluation.year))


@view_config(route_name="orgs.confirm", permission="confirm", request_method="POST")
def confirm_post(context: OrganisationResource, request: Any) -> Any:
    """The city office confirms the district's review."""
    evaluation = _evaluation(context, request)
    try:
        revision = int(request.POST.get("revision", ""))
        with request.dbsession.begin_nested():
            review.confirm(request.dbsession, evaluation, actor=_actor(request),
                           revision=revision)
    except ValueError as exc:
        return _refused(request, context, evaluation, exc)
    flash(request, _("Result confirmed."))
    return HTTPSeeOther(request.route_url("orgs.review", id=context.organisation.id,
                                          year=evaluation.year))


@view_config(route_name="orgs.evidence", permission="view")
def evidence_download(context: OrganisationResource, request: Any) -> Response:
    """One evidence file, to the staff who may see the organisation (never cached)."""
    evidence = selfassess.get_evidence(request.dbsession, int(request.matchdict["evidence"]))
    if evidence is None or evidence.evaluation.organisation_id != context.organisation.id:
        raise HTTPNotFound()
    response = Response(evidence.content, content_type=evidence.media_type)
    response.content_disposition = f'attachment; filename="evidence-{evidence.id}' \
        f'{dict((t, e) for _m, t, e in selfassess.EVIDENCE_TYPES)[evidence.media_type]}"'
    response.cache_control = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# ------------------------------------------------------------------ standards

def _standards_page(request: Any, problems: list[str] | None = None, status: int = 200
                    ) -> Any:
    db = request.dbsession
    rows = [{"standard": s, "uses": standards.uses(db, s),
             "current": standards.current_standard(db, s.kind, s.year).id == s.id}
            for s in standards.list_standards(db)]
    response = render_to_response(T + "org_standards.pt", {
        "rows": rows, "problems": problems or [],
        "can_upload": bool(request.has_permission("standards", request.context)),
        **LABELS}, request=request)
    response.status_int = status
    return response


@view_config(route_name="orgs.standards", permission="view", context=OrganisationArea,
             request_method="GET")
def standards_list(request: Any) -> Any:
    """Every version of every standard, and (city office) the upload form."""
    return _standards_page(request)


@view_config(route_name="orgs.standards", permission="standards", context=OrganisationArea,
             request_method="POST")
def standards_upload(request: Any) -> Any:
    """Upload a standard workbook: the next version of its kind and year, or every problem."""
    upload = _upload(request, "file")
    if upload is None:
        return _standards_page(request, [request.translate(_("Choose an XLSX file."))], 400)
    try:
        with request.dbsession.begin_nested():
            standard = standards.upload_standard(request.dbsession, upload[0], upload[1],
                                                 actor=_actor(request))
    except TableError as exc:
        return _standards_page(request, _problems(request, exc), 400)
    flash(request, _(
        "Standard stored as version ${version} of ${year}.",
        mapping={"version": standard.version, "year": standard.year}))
    return HTTPSeeOther(request.route_url("orgs.standard", id=standard.id))


@view_config(route_name="orgs.standard", permission="view", context=OrganisationArea,
             renderer=T + "org_standard.pt")
def standard_detail(request: Any) -> dict[str, Any]:
    standard = standards.get_standard(request.dbsession, int(request.matchdict["id"]))
    if standard is None:
        raise HTTPNotFound()
    return {"standard": standard, "criteria": standards.criteria(standard),
            "uses": standards.uses(request.dbsession, standard), **LABELS}


@view_config(route_name="orgs.standard_template", permission="view",
             context=OrganisationArea)
def standard_template(request: Any) -> Response:
    """The standard workbook template: a filled example to copy."""
    response = Response(standards.example_workbook(), content_type=XLSX)
    response.content_disposition = 'attachment; filename="evaluation-standard.xlsx"'
    return response


# ------------------------------------------------------------------ the organisation's link

def _self_message(request: Any, kind: str, status: int) -> Any:
    response = render_to_response(T + "org_self_message.pt", {"kind": kind}, request=request)
    response.status_int = status
    response.cache_control = NO_STORE
    return response


def _self_page(request: Any, evaluation: Any, *, form: dict[str, dict[str, str]] | None = None,
               problems: list[str] | None = None, status: int = 200) -> Any:
    response = render_to_response(T + "org_self.pt", {
        "evaluation": evaluation, "organisation": evaluation.organisation,
        "standard": evaluation.standard, "criteria": standards.criteria(evaluation.standard),
        "form": form or {"levels": dict(evaluation.self_levels),
                         "notes": dict(evaluation.self_notes)},
        "problems": problems or [], "local_text": local_text,
        "editable": evaluation.status in selfassess.EDITABLE,
        "max_mb": selfassess.EVIDENCE_BYTES // (1024 * 1024)}, request=request)
    response.status_int = status
    response.cache_control = NO_STORE
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@view_config(route_name="orgs.self", request_method="GET")
def self_assessment(request: Any) -> Any:
    """The organisation's self-assessment (read-only once submitted)."""
    try:
        evaluation = selfassess.open_link(request.dbsession, request.matchdict["token"])
    except selfassess.LinkRefused as exc:
        return _self_message(request, exc.code, 404 if exc.code == "unknown" else 410)
    return _self_page(request, evaluation)


@view_config(route_name="orgs.self", request_method="POST")
def self_assessment_post(request: Any) -> Any:
    """Save the draft (``action=save``), submit it once (``action=submit``), or attach an
    evidence file to a criterion (``action=evidence``, its own form)."""
    try:
        evaluation = selfassess.open_link(request.dbsession, request.matchdict["token"])
    except selfassess.LinkRefused as exc:
        return _self_message(request, exc.code, 404 if exc.code == "unknown" else 410)
    codes = [c["code"] for c in standards.criteria(evaluation.standard)]
    post = request.POST
    action = post.get("action", "save")
    form = {"levels": {c: post.get(f"level-{c}", "") for c in codes},
            "notes": {c: post.get(f"note-{c}", "") for c in codes}}
    try:
        revision = int(post.get("revision", ""))
    except ValueError:
        return _self_page(request, evaluation, form=form, status=400, problems=[
            request.translate(_("The form is incomplete; reload the page."))])
    try:
        with request.dbsession.begin_nested():
            if action == "evidence":
                form = None
                upload = post.get("file")
                files = [selfassess.Evidence(post.get("criterion", ""),
                                             upload.filename or "evidence",
                                             upload.file.read())] \
                    if hasattr(upload, "file") else []
                selfassess.attach_evidence(request.dbsession, evaluation, files,
                                           revision=revision)
            else:
                selfassess.save(request.dbsession, evaluation, form["levels"],
                                form["notes"], revision=revision, submit=action == "submit")
    except selfassess.EvaluationError as exc:
        request.dbsession.refresh(evaluation)
        return _self_page(request, evaluation, form=form, problems=_problems(request, exc),
                          status=exc.status)
    saved = {"submit": "submitted", "evidence": "evidence"}.get(action, "draft")
    return HTTPSeeOther(request.route_url("orgs.self", token=request.matchdict["token"],
                                          _query={"saved": saved}))


def includeme(config: Any) -> None:
    """Routes of the organisation pages, their upload routes, the staff-home link."""
    area = {"factory": OrganisationArea}
    one = {"factory": organisation_factory}
    config.add_route("orgs.list", "/organisations", **area)
    config.add_route("orgs.new", "/organisations/new", **area)
    config.add_route("orgs.import", "/organisations/import", **area)
    config.add_route("orgs.register_xlsx", "/organisations/register.xlsx", **area)
    config.add_route("orgs.standards", "/organisations/standards", **area)
    config.add_route("orgs.standard_template", "/organisations/standards/template.xlsx",
                     **area)
    config.add_route("orgs.standard", "/organisations/standards/{id:\\d+}", **area)
    config.add_route("orgs.detail", "/organisations/{id:\\d+}", **one)
    config.add_route("orgs.edit", "/organisations/{id:\\d+}/edit", **one)
    config.add_route("orgs.invite", "/organisations/{id:\\d+}/invite", **one)
    config.add_route("orgs.review", "/organisations/{id:\\d+}/review/{year:\\d{4}}", **one)
    config.add_route("orgs.confirm", "/organisations/{id:\\d+}/confirm/{year:\\d{4}}", **one)
    config.add_route("orgs.return", "/organisations/{id:\\d+}/return/{year:\\d{4}}", **one)
    config.add_route("orgs.evidence", "/organisations/{id:\\d+}/evidence/{evidence:\\d+}",
                     **one)
    config.add_route("orgs.self", "/o/{token}")
    config.registry.setdefault("upload_routes", set()).update(
        {"orgs.import", "orgs.standards"})
    # no account behind the link: the body is capped at one evidence file, not 10 MB
    limits.route_limit(config, "orgs.self", selfassess.EVIDENCE_BYTES)
    config.registry.setdefault("staff_links", []).append(
        {"route": "orgs.list", "label": _("Learning organisations"), "order": 35,
         "roles": ("district", "admin", "monitor")})
    config.scan("monitoring.organisations.views")
