"""The staff page that brings fieldwork back: upload an ODK Central or KoboToolbox
submissions export of a published survey (``/research/surveys/submissions``).

District staff import into their own district's campaigns (another district's campaign
is refused as unknown); admins into any campaign, or none. Nothing is stored when any
row has a problem: the page lists every one with its row and column. The work is
:func:`surveys.submissions.import_submissions`; this module parses and renders.

A Pyramid add-on of its own (``config.include("surveys.submission_views")``): the
route, its permission, its upload allowance and a staff-home link.
"""
from __future__ import annotations

from typing import Any

from pyramid.authorization import Allow
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from learningcity.filemessages import file_problem_text
from learningcity.i18n import _, flash

from . import services, submissions

T = "surveys:templates/"
ROUTE = "surveys.submissions"
#: registry key of the :class:`surveys.submissions.InvitationDirectory` (None: campaigns
#: cannot be looked up, imports without a campaign still work for admins)
DIRECTORY_KEY = "survey_invitation_directory"


class SubmissionsArea:
    """Who may upload submissions: district staff (their district's campaigns) and admins."""

    __acl__ = [
        (Allow, "role:admin", "survey.submissions"),
        (Allow, "role:district", "survey.submissions"),
    ]

    def __init__(self, request: Any) -> None:
        self.request = request


def _scope(request: Any) -> str | None:
    user = request.identity
    return user.district_code if user.role == "district" else None


def _directory(request: Any) -> submissions.InvitationDirectory | None:
    return request.registry.get(DIRECTORY_KEY)


def _codes(request: Any) -> list[str]:
    return services.published_codes(request.dbsession)


def _titles(request: Any, codes: list[str]) -> dict[str, str]:
    """Code -> ``title (code)`` of each published survey, the title in the page's
    language (what the survey dropdown shows)."""
    out = {}
    for code in codes:
        definition = services.published_survey(request.dbsession, code)
        title = definition.title(request.locale_name) if definition is not None else ""
        out[code] = f"{title} ({code})" if title else code
    return out


def _rows(request: Any, result: submissions.ImportResult | None,
          which: str) -> list[dict[str, Any]]:
    """Problems (or warnings) as table rows in the reader's language."""
    if result is None:
        return []
    locale = request.locale_name
    if which == "problems" and result.file_problems:
        return [{"sheet": p.sheet or "", "row": p.row or "", "column": p.column or "",
                 "message": file_problem_text(p, request.translate)}
                for p in result.file_problems]
    return [{"sheet": p.sheet or "", "row": p.row or "", "column": p.column or "",
             "message": p.message.get(locale)} for p in getattr(result, which)]


def _page(request: Any, code: str | None = None,
          result: submissions.ImportResult | None = None, refusal: Any = None
          ) -> dict[str, Any]:
    scope = _scope(request)
    directory = _directory(request)
    codes = _codes(request)
    campaigns = [] if directory is None else [
        c for each in codes for c in directory.campaigns(request.dbsession, each, scope)
        if c.status != "closed"]
    chosen = code or (services.DEFAULT_SURVEY if services.DEFAULT_SURVEY in codes else
                      next(iter(codes), None))
    return {"code": chosen, "codes": codes, "titles": _titles(request, codes),
            "scope": scope, "campaigns": campaigns,
            "selected": (request.params.get("campaign") or "").strip(),
            "campaign_optional": scope is None, "result": result, "refusal": refusal,
            "problems": _rows(request, result, "problems"),
            "warnings": _rows(request, result, "warnings"),
            "max_mb": submissions.MAX_SUBMISSIONS_BYTES // 2**20,
            "max_rows": submissions.MAX_PAGE_ROWS}


@view_config(route_name=ROUTE, context=SubmissionsArea, renderer=T + "submissions.pt",
             permission="survey.submissions", request_method="GET")
def submissions_form(request: Any) -> dict[str, Any]:
    return _page(request)


@view_config(route_name=ROUTE, context=SubmissionsArea, renderer=T + "submissions.pt",
             permission="survey.submissions", request_method="POST")
def submissions_upload(request: Any) -> Any:
    code = (request.POST.get("survey") or "").strip()
    scope = _scope(request)
    if code not in _codes(request):
        request.response.status_int = 400
        return _page(request, refusal=_("Choose a published survey."))
    upload = request.POST.get("file")
    campaign = (request.POST.get("campaign") or "").strip() or None
    if upload is None or not hasattr(upload, "file"):
        request.response.status_int = 400
        return _page(request, code, refusal=_("Choose a CSV or XLSX file."))
    if campaign is None and scope is not None:
        request.response.status_int = 400
        return _page(request, code, refusal=_("Choose the campaign these submissions "
                                              "belong to."))
    data = upload.file.read(submissions.MAX_SUBMISSIONS_BYTES + 1)
    check_only = request.POST.get("check") == "yes"
    result = submissions.import_submissions(
        request.dbsession, code, upload.filename or "submissions.csv", data,
        request.identity.username, campaign=campaign, directory=_directory(request),
        district=scope, dry_run=check_only, max_rows=submissions.MAX_PAGE_ROWS)
    if not result.ok:
        request.response.status_int = 400
        return _page(request, code, result)
    mapping = {"rows": result.rows, "new": result.new, "already": result.already,
               "skipped": result.skipped}
    flash(request, _(
        "Checked ${rows} rows: ${new} new, ${already} already imported, ${skipped} "
        "skipped; nothing was stored.", mapping=mapping) if check_only else _(
        "Imported ${rows} rows: ${new} new, ${already} already imported, ${skipped} "
        "skipped.", mapping=mapping))
    return HTTPSeeOther(request.route_url(ROUTE))


def includeme(config: Any) -> None:
    config.add_route(ROUTE, "/research/surveys/submissions", factory=SubmissionsArea)
    config.registry.setdefault("upload_routes", set()).add(ROUTE)
    config.registry.setdefault(DIRECTORY_KEY, submissions.invitation_directory(
        config.registry.settings))
    config.registry.setdefault("staff_links", []).append(
        {"route": ROUTE, "label": _("Import fieldwork submissions (ODK, Kobo)"), "order": 35,
         "roles": ("district", "admin")})
    config.scan("surveys.submission_views")
