"""Researcher pages: items, item curves, calibrations, diffs, publishing, bank health."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pyramid.httpexceptions import HTTPBadRequest, HTTPNotFound, HTTPSeeOther
from pyramid.response import Response
from pyramid.view import view_config
from sqlalchemy.orm import selectinload

from learningcity.i18n import _, flash

from . import charts, review, services
from .importing import ImportReport, _check
from .models import ITEM_STATUSES, Calibration, CalibrationEvent, Domain, Instrument, Item

T = "itembank:templates/"


def _instrument(request: Any) -> Instrument:
    code = request.params.get("instrument", "LLA")
    instrument = request.dbsession.scalar(sa.select(Instrument).where(Instrument.code == code))
    if instrument is None:
        raise HTTPNotFound()
    return instrument


def _calibration(request: Any, key: str = "id") -> Calibration:
    try:
        cid = int(request.matchdict.get(key) or request.params.get(key, ""))
    except ValueError:
        raise HTTPNotFound() from None
    calibration = request.dbsession.scalar(
        sa.select(Calibration).where(Calibration.id == cid)
        .options(selectinload(Calibration.items)))
    if calibration is None:
        raise HTTPNotFound()
    return calibration


@view_config(route_name="itembank.items", renderer=T + "items.pt", permission="research")
def item_list(request: Any) -> dict[str, Any]:
    db = request.dbsession
    instrument = _instrument(request)
    filters = {k: request.params.get(k, "") for k in ("domain", "status", "flag", "q")}
    query = sa.select(Item).options(selectinload(Item.versions)).order_by(Item.code)
    if filters["domain"]:
        query = query.where(Item.domain_code == filters["domain"])
    if filters["status"]:
        query = query.where(Item.status == filters["status"])
    if filters["q"]:
        query = query.where(Item.code.ilike(f"%{filters['q']}%"))
    items = db.scalars(query).all()
    published = services.published_calibration(db, instrument)
    rows = {r.item_id: r for r in (published.items if published else [])}
    exposures = services.exposure(db, instrument)
    max_rate = float(instrument.blueprint.get("exposure", {}).get("max_rate", 0.3))
    overexposed = set(services.flagged_for_exposure(exposures, max_rate))
    if filters["flag"] == "misfit":
        items = [i for i in items if i.id in rows and review.misfit(rows[i.id])]
    elif filters["flag"] == "dif":
        items = [i for i in items if i.id in rows and rows[i.id].dif_flag]
    elif filters["flag"] == "exposure":
        items = [i for i in items if i.code in overexposed]
    return {"items": items, "rows": rows, "exposures": exposures, "overexposed": overexposed,
            "filters": filters, "instrument": instrument, "published": published,
            "domains": db.scalars(sa.select(Domain).order_by(Domain.position)).all(),
            "statuses": ITEM_STATUSES, "misfit": review.misfit}


def _item(request: Any) -> Item:
    item = services.get_item(request.dbsession, request.matchdict["code"])
    if item is None:
        raise HTTPNotFound()
    return item


@view_config(route_name="itembank.item", renderer=T + "item.pt", permission="research")
def item_page(request: Any) -> dict[str, Any]:
    db = request.dbsession
    item = _item(request)
    calibrations = []
    for instrument in db.scalars(sa.select(Instrument)):
        published = services.published_calibration(db, instrument)
        for row in (published.items if published else []):
            if row.item_id == item.id:
                calibrations.append((instrument, published, row))
    exposure = services.exposure(db).get(item.code, {"count": 0, "rate": 0.0, "campaigns": []})
    return {"item": item, "calibrations": calibrations, "exposure": exposure,
            "misfit": review.misfit, "next_statuses": services.STATUS_FLOW[item.status],
            "curve_alt": _("Item characteristic curve of ${code}", mapping={"code": item.code})}


@view_config(route_name="itembank.item_status", request_method="POST", permission="research")
def item_status(request: Any) -> Any:
    item = _item(request)
    # no default status and an explicit tick: one stray click must not retire an item
    if not request.POST.get("status"):
        raise HTTPBadRequest(request.localizer.translate(_("Choose the new status.")))
    if request.POST.get("confirm") != "yes":
        raise HTTPBadRequest(request.localizer.translate(
            _("Tick the confirmation to change the status.")))
    try:
        services.change_status(request.dbsession, item, request.POST.get("status", ""),
                               request.identity.username, request.POST.get("note", ""))
    except services.BankError as exc:
        raise HTTPBadRequest(str(exc)) from None
    return HTTPSeeOther(request.route_url("itembank.item", code=item.code))


@view_config(route_name="itembank.item_curve", permission="research")
def item_curve(request: Any) -> Response:
    calibration = _calibration(request, "calibration")
    item = _item(request)
    params = services.calibration_params(calibration)
    index = [str(x) for x in params.item_ids].index(item.code) \
        if item.code in [str(x) for x in params.item_ids] else None
    if index is None:
        raise HTTPNotFound()
    png = charts.item_curves_png(params.subset([index]), f"{item.code} ({calibration.label})")
    return Response(png, content_type="image/png", cache_control="private, max-age=300")


@view_config(route_name="itembank.calibrations", renderer=T + "calibrations.pt",
             permission="research")
def calibration_list(request: Any) -> dict[str, Any]:
    db = request.dbsession
    instruments = db.scalars(sa.select(Instrument).order_by(Instrument.code)).all()
    by_instrument = {i.id: db.scalars(sa.select(Calibration).where(
        Calibration.instrument_id == i.id).order_by(Calibration.id.desc())).all()
        for i in instruments}
    events = db.scalars(sa.select(CalibrationEvent).order_by(CalibrationEvent.id.desc())
                        .limit(20)).all()
    return {"instruments": instruments, "by_instrument": by_instrument, "events": events,
            "labels": {c.id: c.label for cs in by_instrument.values() for c in cs}}


@view_config(route_name="itembank.calibration", renderer=T + "calibration.pt",
             permission="research")
def calibration_page(request: Any) -> dict[str, Any]:
    calibration = _calibration(request)
    others = request.dbsession.scalars(sa.select(Calibration).where(
        Calibration.instrument_id == calibration.instrument_id,
        Calibration.id != calibration.id).order_by(Calibration.id.desc())).all()
    return {"calibration": calibration, "instrument": calibration.instrument,
            "published": calibration.instrument.published_calibration_id == calibration.id,
            "others": others, "misfit": review.misfit}


@view_config(route_name="itembank.calibration_info", permission="research")
def calibration_information(request: Any) -> Response:
    calibration = _calibration(request)
    report = review.bank_health(calibration, {})
    curves = {**report.info_by_domain, "total": report.total_info}
    png = charts.information_png(curves, f"{calibration.label}: information")
    return Response(png, content_type="image/png", cache_control="private, max-age=300")


@view_config(route_name="itembank.publish", renderer=T + "confirm.pt", request_method="GET",
             permission="publish")
def publish_confirm(request: Any) -> dict[str, Any]:
    calibration = _calibration(request)
    return {"calibration": calibration, "action": "publish",
            "current": services.published_calibration(request.dbsession,
                                                       calibration.instrument)}


@view_config(route_name="itembank.publish", request_method="POST", permission="publish")
def publish(request: Any) -> Any:
    calibration = _calibration(request)
    if request.POST.get("confirm") != "yes":
        raise HTTPBadRequest("confirm the publication")
    try:
        services.publish(request.dbsession, calibration, request.identity.username,
                         request.POST.get("note", ""))
    except services.BankError as exc:
        raise HTTPBadRequest(str(exc)) from None
    flash(request, _("Published."))
    return HTTPSeeOther(request.route_url("itembank.calibration", id=calibration.id))


@view_config(route_name="itembank.rollback", renderer=T + "confirm.pt", request_method="GET",
             permission="publish")
def rollback_confirm(request: Any) -> dict[str, Any]:
    instrument = _instrument(request)
    return {"calibration": services.published_calibration(request.dbsession, instrument),
            "action": "rollback", "current": None, "instrument": instrument}


@view_config(route_name="itembank.rollback", request_method="POST", permission="publish")
def rollback(request: Any) -> Any:
    instrument = _instrument(request)
    if request.POST.get("confirm") != "yes":
        raise HTTPBadRequest("confirm the rollback")
    try:
        previous = services.rollback(request.dbsession, instrument, request.identity.username,
                                     request.POST.get("note", ""))
    except services.BankError as exc:
        raise HTTPBadRequest(str(exc)) from None
    return HTTPSeeOther(request.route_url("itembank.calibration", id=previous.id))


@view_config(route_name="itembank.diff", renderer=T + "diff.pt", permission="research")
def calibration_diff(request: Any) -> dict[str, Any]:
    left, right = _calibration(request, "left"), _calibration(request, "right")
    try:
        threshold = float(request.params.get("threshold", 0.3))
    except ValueError:
        threshold = 0.3
    rows = review.diff(left, right, threshold)
    return {"left": left, "right": right, "rows": rows, "threshold": threshold,
            "moved": sum(r.moved for r in rows)}


@view_config(route_name="itembank.health", renderer=T + "health.pt", permission="research")
def bank_health(request: Any) -> dict[str, Any]:
    db = request.dbsession
    instrument = _instrument(request)
    calibration = services.published_calibration(db, instrument)
    if calibration is None:
        return {"instrument": instrument, "calibration": None, "report": None}
    max_rate = float(instrument.blueprint.get("exposure", {}).get("max_rate", 0.3))
    report = review.bank_health(calibration, services.exposure(db, instrument),
                                min_items=int(request.params.get("min_items", 5)),
                                max_exposure=max_rate)
    return {"instrument": instrument, "calibration": calibration, "report": report,
            "max_rate": max_rate}


@view_config(route_name="itembank.health_chart", permission="research")
def bank_health_chart(request: Any) -> Response:
    instrument = _instrument(request)
    calibration = services.published_calibration(request.dbsession, instrument)
    if calibration is None:
        raise HTTPNotFound()
    report = review.bank_health(calibration, {})
    png = charts.information_png({**report.info_by_domain, "total": report.total_info},
                                 f"{instrument.code}: information by domain")
    return Response(png, content_type="image/png", cache_control="private, max-age=300")


def _edit_record(item: Item, post: Any) -> dict[str, Any]:
    """The edit form as an import record, so edits pass the same checks as files."""
    options = []
    for line in post.get("options", "").splitlines():
        if line.strip():
            zh, _sep, en = line.partition("|")
            options.append({"zh": zh.strip(), "en": en.strip()})
    return {"code": item.code, "domain": item.domain_code, "subdomain": item.subdomain,
            "type": item.type, "stem_zh": post.get("stem_zh", ""),
            "stem_en": post.get("stem_en", ""), "options": options,
            "key": post.get("key", ""), "reverse": post.get("reverse", "false"),
            "media": post.get("media", ""), "tags": list(item.tags), "author": item.author,
            "status": item.status}


@view_config(route_name="itembank.item_edit", renderer=T + "edit.pt", permission="research")
def item_edit(request: Any) -> Any:
    """Edit an item's content: every change is a new version, earlier answers keep theirs."""
    item = _item(request)
    current = item.current
    form = {"stem_zh": current.stem_zh, "stem_en": current.stem_en,
            "options": "\n".join(f"{o['zh']} | {o['en']}" for o in current.options),
            "key": current.key or "", "reverse": "true" if current.reverse else "false",
            "media": current.media or ""}
    problems: list[str] = []
    if request.method == "POST":
        form.update({k: request.POST.get(k, "") for k in form})
        report = ImportReport("form")
        spec = _check(report, 1, _edit_record(item, request.POST))
        problems = [f"{p.column}: {p.message}" for p in report.problems]
        if spec is not None:
            version = services.edit_item(request.dbsession, item, spec,
                                         request.identity.username)
            flash(request, _("Saved as version ${n}.", mapping={"n": version.version}))
            return HTTPSeeOther(request.route_url("itembank.item", code=item.code))
        request.response.status_int = 400
    return {"item": item, "form": form, "problems": problems}
