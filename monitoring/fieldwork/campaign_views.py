"""District staff pages for sampling campaigns under ``/campaigns``.

List, new, and one page per campaign with tabs: overview, frame, design, draw,
invitations, progress, close. District staff act on their own district's campaigns
(another district's campaign is a 404, never a hint that it exists); admins act on all;
monitors read; researchers have no access. Views parse and render; the services in
``campaigns``, ``frames``, ``draw``, ``invitations`` and ``progress`` do the work.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pyramid.authorization import Allow
from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.response import Response
from pyramid.settings import asbool
from pyramid.view import view_config

from learningcity.districts import list_districts
from learningcity.i18n import _, flash
from monitoring.closing import aggregates_pending, close_campaign, translated_steps
from monitoring.fieldwork import campaigns as svc
from monitoring.fieldwork import draw, frames, invitations, progress, retention, window
from monitoring.fieldwork.demo_content import DEMO_CAMPAIGN_NAME, demo_codes_note
from monitoring.fieldwork.models import Campaign, FrameUnit, Invitation
from monitoring.results import charts

T = "monitoring:templates/"
TABS = ("overview", "frame", "design", "draw", "invitations", "progress", "close")
TAB_LABELS = {"overview": _("Overview"), "frame": _("Frame"), "design": _("Design"),
              "draw": _("Draw"), "invitations": _("Invitations"), "progress": _("Progress"),
              "close": _("Close")}
NO_STORE = "no-store"
LABELS = {
    # "Campaign closed", not "Closed": that msgid is a date column elsewhere ("结束日期")
    "status_labels": {"draft": _("Draft"), "ready": _("Ready (drawn)"),
                      "closed": _("Campaign closed")},
    "window_labels": {"not_drawn": _("Residents cannot answer yet (not drawn)"),
                      "not_yet_open": _("Window not yet open"), "open": _("Window open"),
                      "ended": _("Window ended"),
                      "closed": _("Answering stopped (closed)"),
                      "closed_early": _("Answering stopped early (closed before the window "
                                        "ended)")},
    "mode_labels": {"sample": _("Sample"), "open": _("Open enrolment")},
    "kind_labels": {"unit": _("unit frame"), "cluster": _("cluster frame")},
    "allocation_labels": {"proportional": _("Proportional"), "equal": _("Equal"),
                          "neyman": _("Neyman")},
    "invitation_labels": {"issued": _("issued"), "started": _("started"),
                          "completed": _("completed"), "void": _("void")},
    "icons": {"ok": "✓", "warning": "⚠", "skipped": "–", "failed": "✗"},
}


class CampaignArea:
    """The campaign list and the new-campaign form."""

    __acl__ = [
        (Allow, "role:admin", ("view", "create")),
        (Allow, "role:district", ("view", "create")),
        (Allow, "role:monitor", "view"),
    ]

    def __init__(self, request: Any) -> None:
        self.request = request


class CampaignResource:
    """One campaign: its district's staff and admins act, monitors read."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self.__acl__ = [
            (Allow, "role:admin", ("view", "edit")),
            (Allow, "role:monitor", "view"),
            (Allow, f"district:{campaign.district_code}", ("view", "edit")),
        ]


class LockedCampaign:
    """What an anonymous visitor gets for any campaign URL: nothing is allowed."""

    __acl__: list = []


def campaign_factory(request: Any) -> Any:
    """The campaign named in the URL; 404 when it does not exist or belongs to a district
    the user does not work for. Anonymous visitors get the login page for any code."""
    user = request.identity
    if user is None:
        return LockedCampaign()  # the same answer for every code: log in first
    campaign = svc.get_campaign(request.dbsession, request.matchdict["code"])
    if campaign is None:
        raise HTTPNotFound()
    if user.role == "district" and campaign.district_code != user.district_code:
        raise HTTPNotFound()
    return CampaignResource(campaign)


def _base(request: Any, campaign: Campaign, tab: str, **extra: Any) -> dict[str, Any]:
    tz = campaign.timezone
    return {"campaign": campaign, "tab": tab, "tabs": TABS, "tab_labels": TAB_LABELS,
            "can_edit": bool(request.has_permission("edit", request.context)),
            "window": window.response_state(campaign),
            "opens": window.local_text(campaign.opens_at, tz),
            "closes": window.local_text(campaign.closes_at, tz),
            "kind": draw.frame_kind(campaign), "problems": [], "demo_file": None,
            "closed_at": window.local_text(campaign.closed_at, tz), **LABELS, **extra}


def _problems(request: Any, exc: Exception) -> list[str]:
    """Every reason of a refusal in the reader's language (services say them with
    :class:`~monitoring.fieldwork.campaigns.Said`; file problems name row and column)."""
    problems = getattr(exc, "problems", None) or [exc.args[0] if exc.args else str(exc)]
    return [svc.shown(p, request.translate) for p in problems]


def _actor(request: Any) -> str:
    return request.identity.username


# ------------------------------------------------------------------ list and new

@view_config(route_name="campaigns.list", renderer=T + "campaign_list.pt", permission="view",
             context=CampaignArea)
def campaign_list(request: Any) -> dict[str, Any]:
    items = svc.visible_campaigns(request.dbsession, request.identity)
    return {"campaigns": items, "local_text": window.local_text, **LABELS,
            "response_state": window.response_state,
            "can_create": bool(request.has_permission("create", request.context))}


def _form_values(request: Any) -> dict[str, Any]:
    post = request.POST
    return {"name": post.get("name", "").strip(),
            "test_instrument": post.get("test_instrument", ""),
            "survey_code": post.get("survey_code", ""), "mode": post.get("mode", "sample"),
            "opens_at": post.get("opens_at", ""), "closes_at": post.get("closes_at", "")}


def _form_page(request: Any, form: dict[str, Any], problems: list[str],
               campaign: Campaign | None) -> dict[str, Any]:
    db = request.dbsession
    user = request.identity
    districts = list_districts(db)
    if user.role == "district":
        districts = [d for d in districts if d.code == user.district_code]
    return {"form": form, "problems": problems, "campaign": campaign, "districts": districts,
            "instruments": svc.known_instruments(db), "surveys": svc.known_surveys(db),
            "timezone": window.TIMEZONE}


@view_config(route_name="campaigns.new", renderer=T + "campaign_form.pt", permission="create",
             context=CampaignArea)
def campaign_new(request: Any) -> Any:
    user = request.identity
    form = {"name": "", "test_instrument": "LLA", "survey_code": svc.DEFAULT_SURVEY,
            "mode": "sample", "opens_at": "", "closes_at": "",
            "district": user.district_code or ""}
    problems: list[str] = []
    if request.method == "POST":
        form.update(_form_values(request))
        district = user.district_code if user.role == "district" else \
            request.POST.get("district", "")
        form["district"] = district
        try:
            campaign = svc.create_campaign(request.dbsession, district_code=district,
                                           user=_actor(request), **_form_values(request))
        except svc.CampaignError as exc:
            problems = _problems(request, exc)
            request.response.status_int = 400
        else:
            flash(request, _("Campaign created. Next: upload the frame."))
            return HTTPSeeOther(request.route_url("campaigns.tab", code=campaign.code,
                                                  tab="frame"))
    return _form_page(request, form, problems, None)


@view_config(route_name="campaigns.edit", renderer=T + "campaign_form.pt", permission="edit")
def campaign_edit(context: CampaignResource, request: Any) -> Any:
    campaign = context.campaign
    tz = campaign.timezone
    form = {"name": campaign.name, "test_instrument": campaign.test_instrument or "",
            "survey_code": campaign.survey_code or "", "mode": campaign.mode,
            "opens_at": window.local_input(campaign.opens_at, tz),
            "closes_at": window.local_input(campaign.closes_at, tz),
            "district": campaign.district_code}
    problems: list[str] = []
    if request.method == "POST":
        form.update(_form_values(request))
        try:
            svc.update_campaign(request.dbsession, campaign, user=_actor(request),
                                **_form_values(request))
        except svc.CampaignError as exc:
            problems = _problems(request, exc)
            request.response.status_int = 400
        else:
            flash(request, _("Saved."))
            return HTTPSeeOther(request.route_url("campaigns.detail", code=campaign.code))
    return _form_page(request, form, problems, campaign)


# ------------------------------------------------------------------ tabs

def _overview(request: Any, campaign: Campaign) -> dict[str, Any]:
    note = demo_codes_note(request.dbsession) if campaign.name == DEMO_CAMPAIGN_NAME else None
    return {"counts": invitations.invitation_counts(request.dbsession, campaign),
            "demo_file": note}


def _frame(request: Any, campaign: Campaign) -> dict[str, Any]:
    frame = (campaign.design or {}).get("frame", {})
    keep = frame.get("keep_columns")
    return {"upload": frames.current_upload(request.dbsession, campaign),
            "form": {"kind": frame.get("kind", "unit"), "id_column": frame.get("id_column", ""),
                     "stratum_columns": ", ".join(frame.get("stratum_columns", [])),
                     "size_column": frame.get("size_column") or "",
                     "keep_columns": ", ".join(keep) if keep else "",
                     "contact_columns": ", ".join(frame.get("contact_columns", [])),
                     "identity_columns": ", ".join(frame.get("identity_columns", []))},
            "columns": frames.declared_columns(campaign),
            "default_keep": ", ".join(frames.DEFAULT_KEEP),
            "max_rows": frames.MAX_ROWS}


def _lines(mapping: dict[str, Any] | None) -> str:
    return "\n".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                     for k, v in (mapping or {}).items())


def _design(request: Any, campaign: Campaign) -> dict[str, Any]:
    design = campaign.design or {}
    preview: dict[str, int] = {}
    if design.get("n") and campaign.strata and campaign.status == "draft":
        try:
            preview = draw.allocate_campaign(request.dbsession, campaign)
        except draw.DesignError:
            preview = {}
    elif campaign.status != "draft":
        preview = {s.stratum: s.allocated for s in campaign.strata}
    return {"form": {"n": design.get("n") or "", "allocation": design.get("allocation",
                                                                         "proportional"),
                     "min_per_stratum": design.get("min_per_stratum") or "",
                     "max_per_stratum": design.get("max_per_stratum") or "",
                     "m_per_psu": design.get("m_per_psu") or "",
                     "sd_column": design.get("sd_column") or "",
                     "sds": _lines(design.get("sds")), "quotas": _lines(design.get("quotas"))},
            "preview": preview, "allocations": draw.ALLOCATIONS}


def _draw(request: Any, campaign: Campaign) -> dict[str, Any]:
    db = request.dbsession
    selected = db.scalars(sa.select(FrameUnit).where(
        FrameUnit.campaign_id == campaign.id, FrameUnit.selected.is_(True))
        .order_by(FrameUnit.stratum, FrameUnit.row_number)).all()
    verified = None  # redrawing reads the whole frame, so only when asked
    if (campaign.seed is not None and campaign.mode == "sample"
            and request.GET.get("verify") == "1"):
        try:
            verified = draw.replay_draw(db, campaign) == sorted(u.unit_key for u in selected)
        except draw.DesignError:
            verified = False
    return {"selected": selected, "verified": verified,
            "upload": frames.current_upload(db, campaign),
            "drawn_at": window.local_text(campaign.drawn_at, campaign.timezone)}


def _invitations(request: Any, campaign: Campaign) -> dict[str, Any]:
    db = request.dbsession
    rows = db.execute(sa.select(Invitation, FrameUnit.unit_key).outerjoin(
        FrameUnit, FrameUnit.id == Invitation.frame_unit_id)
        .where(Invitation.campaign_id == campaign.id)
        .order_by(Invitation.stratum, Invitation.id)).all()
    base = link_base(request)
    return {"rows": rows, "counts": invitations.invitation_counts(db, campaign),
            "link_base": base,
            "link_base_configured": invitations.public_url(request.registry.settings)
            is not None}


def _progress(request: Any, campaign: Campaign) -> dict[str, Any]:
    return {"report": progress.campaign_progress(request.dbsession, campaign)}


def _close(request: Any, campaign: Campaign) -> dict[str, Any]:
    """Before the close: who has completed, so closing with no completes is warned of."""
    if campaign.status == "closed":
        return {"report": None, "close_steps": None, "close_failed": False,
                "aggregates_pending": aggregates_pending(request.dbsession,
                                                         request.monitoring_db, campaign)}
    return {"report": progress.campaign_progress(request.dbsession, campaign),
            "close_steps": None, "close_failed": False, "aggregates_pending": False}


TAB_DATA = {"overview": _overview, "frame": _frame, "design": _design, "draw": _draw,
            "invitations": _invitations, "progress": _progress, "close": _close}


def _tab_page(request: Any, campaign: Campaign, tab: str, **extra: Any) -> dict[str, Any]:
    data = _base(request, campaign, tab)
    data.update(TAB_DATA[tab](request, campaign))
    data.update(extra)
    request.override_renderer = T + "campaign.pt"
    return data


@view_config(route_name="campaigns.detail", renderer=T + "campaign.pt", permission="view",
             request_method="GET")
def campaign_detail(context: CampaignResource, request: Any) -> dict[str, Any]:
    return _tab_page(request, context.campaign, "overview")


@view_config(route_name="campaigns.tab", renderer=T + "campaign.pt", permission="view",
             request_method="GET")
def campaign_tab(context: CampaignResource, request: Any) -> dict[str, Any]:
    tab = request.matchdict["tab"]
    if tab not in TABS:
        raise HTTPNotFound()
    return _tab_page(request, context.campaign, tab)


def _refused(request: Any, campaign: Campaign, tab: str, exc: Exception,
             **extra: Any) -> dict[str, Any]:
    request.response.status_int = 400
    return _tab_page(request, campaign, tab, problems=_problems(request, exc), **extra)


@view_config(route_name="campaigns.tab", permission="edit", renderer=T + "campaign.pt",
             request_method="POST", request_param="action=frame")
def frame_upload(context: CampaignResource, request: Any) -> Any:
    campaign = context.campaign
    post = request.POST
    keep = post.get("keep_columns", "").strip()
    spec = frames.FrameSpec(
        kind=post.get("kind", "unit"), id_column=post.get("id_column", "").strip(),
        stratum_columns=frames.column_list(post.get("stratum_columns", "")),
        size_column=post.get("size_column", "").strip() or None,
        keep_columns=frames.column_list(keep) if keep else None,
        contact_columns=frames.column_list(post.get("contact_columns", "")),
        identity_columns=frames.column_list(post.get("identity_columns", "")))
    form = {"kind": spec.kind, "id_column": spec.id_column,
            "stratum_columns": ", ".join(spec.stratum_columns),
            "size_column": spec.size_column or "", "keep_columns": keep,
            "contact_columns": ", ".join(spec.contact_columns),
            "identity_columns": ", ".join(spec.identity_columns)}
    upload = post.get("frame")
    if not hasattr(upload, "file"):
        return _refused(request, campaign, "frame", ValueError(svc.Said(_("Choose a frame file."))),
                        form=form)
    try:
        frames.import_frame(request.dbsession, campaign, upload.filename, upload.file.read(),
                            spec, _actor(request))
    except ValueError as exc:
        return _refused(request, campaign, "frame", exc, form=form)
    dropped = campaign.design["frame"]["dropped_columns"]
    if dropped:
        flash(request, _(
            "Frame stored; columns not needed by the campaign were dropped: ${columns}. "
            "Next: the design.", mapping={"columns": ", ".join(dropped)}))
    else:
        flash(request, _("Frame stored. Next: the design."))
    return HTTPSeeOther(request.route_url("campaigns.tab", code=campaign.code, tab="design"))


@view_config(route_name="campaigns.tab", permission="edit", renderer=T + "campaign.pt",
             request_method="POST", request_param="action=design")
def design_submit(context: CampaignResource, request: Any) -> Any:
    campaign = context.campaign
    post = request.POST
    form = {k: post.get(k, "") for k in ("n", "allocation", "min_per_stratum",
                                         "max_per_stratum", "m_per_psu", "sd_column", "sds",
                                         "quotas")}
    try:
        draw.set_design(request.dbsession, campaign, _actor(request), n=form["n"],
                        allocation=form["allocation"],
                        min_per_stratum=form["min_per_stratum"] or 0,
                        max_per_stratum=form["max_per_stratum"] or None,
                        m_per_psu=form["m_per_psu"] or None,
                        sd_column=form["sd_column"] or None,
                        sds=draw.parse_stratum_lines(form["sds"]),
                        quotas=draw.parse_stratum_lines(form["quotas"]))
    except ValueError as exc:
        return _refused(request, campaign, "design", exc, form=form, preview={})
    flash(request, _("Design saved."))
    return HTTPSeeOther(request.route_url("campaigns.tab", code=campaign.code, tab="design"))


@view_config(route_name="campaigns.tab", permission="edit", renderer=T + "campaign.pt",
             request_method="POST", request_param="action=draw")
def draw_submit(context: CampaignResource, request: Any) -> Any:
    campaign = context.campaign
    raw = request.POST.get("seed", "").strip()
    try:
        if request.POST.get("confirm") != "yes":
            raise draw.DesignError(svc.Said(_("Tick the box to confirm the draw.")))
        seed = None
        if raw:
            try:
                seed = int(raw)
            except ValueError:
                raise draw.DesignError(svc.Said(_("seed: ${value} is not a whole number"),
                                                value=repr(raw))) from None
        draw.draw_sample(request.dbsession, campaign, _actor(request), seed=seed)
    except ValueError as exc:
        return _refused(request, campaign, "draw", exc)
    flash(request, _("Sample drawn. Next: print the invitations."))
    return HTTPSeeOther(request.route_url("campaigns.tab", code=campaign.code, tab="draw"))


def link_base(request: Any) -> str | None:
    """Where residents' links and QR codes point: ``learningcity.public_url``; without it,
    the request's own address in development only (``learningcity.require_secret`` off),
    never in production, where the Host header is the client's or a proxy's choice."""
    settings = request.registry.settings
    configured = invitations.public_url(settings)
    if configured:
        return configured
    if not asbool(settings.get("learningcity.require_secret", True)):
        return request.application_url
    return None


def _need_link_base(request: Any) -> str:
    base = link_base(request)
    if base is None:
        raise invitations.InvitationError(svc.Said(_(
            "Set learningcity.public_url (the address residents open, e.g. "
            "https://learn.city.cn) before printing invitations: links and QR codes are "
            "never made from the address this page was opened with.")))
    return base


def _codes_response(request: Any, campaign: Campaign, issued: list[Any], fmt: str,
                    base: str) -> Any:
    """The plain codes, once: a printable page (with CSV/XLSX inside it) or a file."""
    if fmt == "csv":
        response = Response(invitations.invitations_csv(issued, base),
                            content_type="text/csv", charset="utf-8")
        name = invitations.list_filename(campaign, "csv")
    elif fmt == "xlsx":
        response = Response(invitations.invitations_xlsx(issued, base), content_type=(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
        name = invitations.list_filename(campaign, "xlsx")
    else:
        request.response.cache_control = NO_STORE
        request.override_renderer = T + "campaign_codes.pt"
        xlsx_mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return {"campaign": campaign, "issued": issued, "base": base,
                "qr": {i.public_id: invitations.qr_svg_data_uri(i.link(base)) for i in issued},
                "csv_uri": invitations.data_uri(invitations.invitations_csv(issued, base),
                                                "text/csv;charset=utf-8"),
                "xlsx_uri": invitations.data_uri(invitations.invitations_xlsx(issued, base),
                                                 xlsx_mime),
                "csv_name": invitations.list_filename(campaign, "csv"),
                "xlsx_name": invitations.list_filename(campaign, "xlsx"),
                "opens": window.local_text(campaign.opens_at, campaign.timezone),
                "closes": window.local_text(campaign.closes_at, campaign.timezone)}
    response.content_disposition = f'attachment; filename="{name}"'
    response.cache_control = NO_STORE
    return response


@view_config(route_name="campaigns.tab", permission="edit", renderer=T + "campaign.pt",
             request_method="POST", request_param="action=issue")
def invitations_issue(context: CampaignResource, request: Any) -> Any:
    campaign = context.campaign
    try:
        base = _need_link_base(request)
        issued = invitations.issue_invitations(request.dbsession, campaign, _actor(request),
                                               secret=request.app_settings.secret)
    except ValueError as exc:
        return _refused(request, campaign, "invitations", exc)
    if not issued:  # also the answer to a second, simultaneous post
        flash(request, _("Every sampled unit already has its invitation. To print "
                                "codes again, replace the unused codes."))
        return HTTPSeeOther(request.route_url("campaigns.tab", code=campaign.code,
                                              tab="invitations"))
    return _codes_response(request, campaign, issued, request.POST.get("format", "html"),
                           base)


@view_config(route_name="campaigns.tab", permission="edit", renderer=T + "campaign.pt",
             request_method="POST", request_param="action=reissue")
def invitations_reissue(context: CampaignResource, request: Any) -> Any:
    campaign = context.campaign
    public_id = request.POST.get("public_id", "").strip()
    secret = request.app_settings.secret
    try:
        base = _need_link_base(request)
        if public_id:
            issued = [invitations.reissue_invitation(request.dbsession, campaign, public_id,
                                                     _actor(request), secret=secret)]
        else:
            if request.POST.get("confirm") != "yes":
                raise invitations.InvitationError(svc.Said(_(
                    "Tick the box to confirm that every unused code stops working.")))
            issued = invitations.reissue_unused(request.dbsession, campaign, _actor(request),
                                                secret=secret)
    except ValueError as exc:
        return _refused(request, campaign, "invitations", exc)
    return _codes_response(request, campaign, issued, request.POST.get("format", "html"),
                           base)


@view_config(route_name="campaigns.progress_csv", permission="view")
def progress_download(context: CampaignResource, request: Any) -> Response:
    report = progress.campaign_progress(request.dbsession, context.campaign)
    response = Response(progress.progress_csv(report), content_type="text/csv",
                        charset="utf-8")
    response.content_disposition = \
        f'attachment; filename="progress-{context.campaign.code}.csv"'
    return response


@view_config(route_name="campaigns.progress_png", permission="view")
def progress_chart(context: CampaignResource, request: Any) -> Response:
    report = progress.campaign_progress(request.dbsession, context.campaign)
    t = request.translate
    labels = {"per_day": t(_("Completes per day")), "cumulative": t(_("Cumulative")),
              "empty": t(_("No completes yet."))}
    return Response(charts.daily_chart_png(report, context.campaign.code, labels),
                    content_type="image/png", cache_control="private, max-age=60")


@view_config(route_name="campaigns.tab", permission="edit", renderer=T + "campaign.pt",
             request_method="POST", request_param="action=close")
def close_submit(context: CampaignResource, request: Any) -> Any:
    """Close, then show the close tab with each step's outcome and messages (rendered on
    the POST: the account is not kept in the session, whose cookie it could overflow)."""
    campaign = context.campaign
    try:
        if request.POST.get("confirm") != "yes":
            raise svc.CampaignError(svc.Said(_("Tick the box to confirm the close.")))
        outcome = close_campaign(
            request.dbsession, campaign, _actor(request), request.monitoring_db,
            contact_retention_days=retention.contact_retention_days(request.registry.settings))
    except ValueError as exc:
        return _refused(request, campaign, "close", exc)
    return _tab_page(request, campaign, "close",
                     close_steps=translated_steps(outcome, request.translate),
                     close_failed=outcome.failed)


def includeme(config: Any) -> None:
    config.add_route("campaigns.list", "/campaigns", factory=CampaignArea)
    config.add_route("campaigns.new", "/campaigns/new", factory=CampaignArea)
    config.add_route("campaigns.progress_csv", "/campaigns/{code}/progress.csv",
                     factory=campaign_factory)
    config.add_route("campaigns.progress_png", "/campaigns/{code}/progress.png",
                     factory=campaign_factory)
    config.add_route("campaigns.edit", "/campaigns/{code}/edit", factory=campaign_factory)
    config.add_route("campaigns.tab", "/campaigns/{code}/{tab}", factory=campaign_factory)
    config.add_route("campaigns.detail", "/campaigns/{code}", factory=campaign_factory)
    config.registry.setdefault("staff_links", []).append(
        {"route": "campaigns.list", "label": _("Campaigns"), "order": 30,
         "roles": ("district", "admin", "monitor")})
    config.scan("monitoring.fieldwork.campaign_views")
