"""The yearly monitoring report: one printable document per campaign year (zh-CN or en).

:func:`build_report_html` is used by the page (``/monitoring/report?year=``) and by
``learningcity monitoring report`` (HTML, or PDF through WeasyPrint).  Every indicator
of the year's campaigns gets its verdict per district, a chart (inline SVG from
:mod:`monitoring.results.charts`), the district map when
``monitoring.results.districtmap.map_svg_for`` exists, and its table; then the design
notes (campaign design, weighting and calibration, plausible values) and a summary of the
publication rule (docs/suppression.md).  Rows come through :mod:`dashboard` with the
reader's :class:`~monitoring.results.dashboard.Scope`, so district staff see their
district only.
"""
from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity.i18n import _
from monitoring.results import charts, dashboard
from monitoring.results.warehouse import Aggregate, MonitoringRun, method_text

CSS_PATH = Path(__file__).resolve().parents[2] / "static" / "css" / "report.css"

SUPPRESSION_NOTES = (
    _("Proportions follow the NCHS standard: withheld when fewer than 30 respondents, an "
      "effective sample under 30, or a Korn-Graubard interval that is too wide (30 points, "
      "or more than 130 % of the share)."),
    _("Means (mean ability, scales) are withheld when fewer than 30 respondents or a "
      "relative standard error above 30 %."),
    _("Complementary suppression: a further cell is withheld when the published ones would "
      "reveal a withheld cell (for example the proficiency levels adding up to 100 %)."),
    _("A withheld cell keeps its n and its reason; its estimate and interval are not shown."),
)


WORDS = {
    "simulated": _("Simulated data"),
    "campaigns": _("Campaigns"),
    "respondents": _("Respondents"),
    "empty": _("No aggregates yet."),
    "design_notes": _("Design notes"),
    "design": _("Design"),
    "methods": _("Methods"),
    "suppression": _("Suppression rules"),
    "district": _("District"),
}
SIMULATED_NOTE = _("these campaigns are answered by simulated residents, not real data.")
DESIGN_NOTES = (
    _("Weights: inverse inclusion probability, non-response adjustment within strata, then "
      "post-stratification or raking to the population margins (taylor+poststratify, "
      "taylor+rake); standard errors are calibration-aware."),
    _("Ability: 10 plausible values drawn under a latent regression on the reporting "
      "variables, combined by Rubin's rules (+rubin(10 PV))."),
    _("Verdicts: met when the whole 95 % interval is on the target's side, not met when it "
      "is wholly on the other side, otherwise not distinguishable."),
)


class ReportError(LookupError):
    """No campaign with aggregates in the year (within the reader's scope)."""


def campaign_years(db: Session, scope: dashboard.Scope) -> list[int]:
    """Years (of the closing date) with aggregated campaigns in the scope, newest first."""
    return sorted({r.closes_at.year for r in dashboard.campaigns(db, scope) if r.closes_at},
                  reverse=True)


def runs_of_year(db: Session, scope: dashboard.Scope, year: int) -> list[MonitoringRun]:
    return sorted((r for r in dashboard.campaigns(db, scope)
                   if r.closes_at is not None and r.closes_at.year == year),
                  key=lambda r: (r.district, r.campaign))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


_ID = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')


def _svg(body: bytes, prefix: str = "") -> str:
    """An SVG file as inline markup: the XML prologue dropped and, with ``prefix``, its ids
    made unique in the document (matplotlib numbers them from 1 in every chart)."""
    text = body.decode("utf-8")
    start = text.find("<svg")
    text = text[start:] if start >= 0 else text
    return _ID.sub(lambda m: f"{m.group(1)}{prefix}{m.group(2)}", text) if prefix else text


def _map_svg(db: Session, scope: dashboard.Scope, code: str, year: int, locale: str,
             main_db: Session | None = None) -> str:
    # the map module may not have map_svg_for yet (it is written alongside)
    from monitoring.results import districtmap  # start-up: only the report draws maps

    if not hasattr(districtmap, "map_svg_for"):
        return ""
    try:
        # boundaries and district names live in the main database, aggregates in ``db``
        svg = districtmap.map_svg_for(main_db or db, scope, code, year, locale,
                                      monitoring_db=db)
    except Exception:  # a map that cannot be drawn must not stop the report
        return ""
    if isinstance(svg, bytes):
        svg = svg.decode("utf-8")
    return _svg(svg.encode("utf-8"), f"m-{code}-") if svg else ""


def report_body(db: Session, scope: dashboard.Scope, year: int, locale: str,
                translate: Callable[[Any], str],
                district_names: dict[str, str] | None = None,
                main_db: Session | None = None) -> str:
    """The report's content (an ``<article>``); raises :class:`ReportError` without data."""
    t = translate
    names = district_names or {}
    runs = runs_of_year(db, scope, year)
    if not runs:
        years = campaign_years(db, scope)
        raise ReportError(t(_("No aggregated campaign closed in ${year}.",
                              mapping={"year": year})) + " " + t(_("Years with data: ${years}",
                              mapping={"years": ", ".join(map(str, years)) or "–"})))
    codes = [r.campaign for r in runs]
    simulated = set(dashboard.simulated_campaigns(db, scope)) & set(codes)
    out = ['<article class="report">']
    title = t(_("Monitoring report ${year}", mapping={"year": year}))
    out.append(f"<h1>{_e(title)}</h1>")
    if scope.district:
        out.append(f'<p class="scope">{_e(t(WORDS["district"]))}: '
                   f'{_e(names.get(scope.district, scope.district))}</p>')
    if simulated:
        out.append(f'<p class="simulated" role="note"><strong>{_e(t(WORDS["simulated"]))}'
                   f'</strong>: {_e(t(SIMULATED_NOTE))} '
                   f'({_e(", ".join(sorted(simulated)))})</p>')
    out.append(f"<h2>{_e(t(WORDS['campaigns']))}</h2><ul class=\"campaigns\">")
    for r in runs:
        out.append(f"<li>{_e(r.campaign)} · {_e(names.get(r.district, r.district))} · "
                   f"{_e(t(WORDS['respondents']))} {r.n_respondents}</li>")
    out.append("</ul>")
    q = scope.rows(sa.select(Aggregate).where(
        Aggregate.campaign.in_(codes), Aggregate.kind == "indicator",
        Aggregate.dimension == "district")).order_by(Aggregate.measure, Aggregate.district)
    by_measure: dict[str, list[Aggregate]] = {}
    for a in db.scalars(q):
        by_measure.setdefault(a.measure, []).append(a)
    heads = [t(_("District")), t(_("Campaign")), t(_("n")), t(_("Estimate")),
             t(_("95% CI low")), t(_("95% CI high")), t(_("Target")), t(_("Judgement"))]
    for code, rows in by_measure.items():
        label = dashboard._label(rows[0], locale)
        out.append(f'<section class="indicator" id="ind-{_e(code)}"><h2>{_e(label)}</h2>')
        verdicts = []
        for a in rows:
            verdicts.append(f"<li>{_e(names.get(a.district, a.district))}: "
                            f"<strong>{_e(_verdict(a, t))}</strong></li>")
        out.append(f'<ul class="verdicts">{"".join(verdicts)}</ul>')
        target = next((a.target for a in rows if a.target is not None), None)
        panel = {"title": label, "share": True, "target": target,
                 "items": [(names.get(a.district, a.district), a.estimate, a.ci_low,
                            a.ci_high) for a in rows]}
        chart = charts.interval_chart([panel], "svg", t(_("No aggregates yet.")))
        out.append(f'<figure class="chart">{_svg(chart, f"c{len(out)}-")}</figure>')
        svg = _map_svg(db, scope, code, year, locale, main_db)
        if svg:
            out.append(f'<figure class="map">{svg}</figure>')
        out.append(f'<div class="table-wrap" tabindex="0" role="region" aria-label="{_e(label)}">'
                   "<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in heads)
                   + "</tr></thead><tbody>")
        for a in rows:
            cells = [names.get(a.district, a.district), a.campaign, a.n,
                     dashboard.format_value(a.estimate, "share"),
                     dashboard.format_value(a.ci_low, "share"),
                     dashboard.format_value(a.ci_high, "share"),
                     dashboard._target_text(a.target, a.direction), _verdict(a, t)]
            out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
        out.append("</tbody></table></div></section>")
    if not by_measure:
        out.append(f"<p>{_e(t(WORDS['empty']))}</p>")
    out.append(f'<section class="notes"><h2>{_e(t(WORDS["design_notes"]))}</h2><ul>')
    for r in runs:
        methods = sorted(set(db.scalars(scope.rows(sa.select(Aggregate.method).where(
            Aggregate.campaign == r.campaign)).distinct())))
        out.append(f"<li>{_e(r.campaign)}: {_e(t(WORDS['design']))}: "
                   f"{_e(method_text(r.design or '–', locale))}; {_e(t(WORDS['methods']))}: "
                   f"{_e('; '.join(method_text(m, locale) for m in methods))}</li>")
    for note in DESIGN_NOTES:
        out.append(f"<li>{_e(t(note))}</li>")
    out.append(f"</ul><h2>{_e(t(WORDS['suppression']))}</h2><ul>")
    for note in SUPPRESSION_NOTES:
        out.append(f"<li>{_e(t(note))}</li>")
    out.append("</ul></section></article>")
    return "\n".join(out)


def _verdict(a: Aggregate, t: Callable[[Any], str]) -> str:
    if a.judgement in dashboard.JUDGEMENT_LABELS:
        return t(dashboard.JUDGEMENT_LABELS[a.judgement])
    reason = a.suppression_reason or "not_available"
    return t(dashboard.REASON_LABELS.get(reason, dashboard.REASON_LABELS["not_available"]))


def font_face_css() -> str:
    """@font-face for the CJK font by its file URL (WeasyPrint embeds it in the PDF)."""
    from learningcity.fonts import cjk_font_path  # start-up: only the PDF needs the file

    path = cjk_font_path()
    if path is None:
        return ""
    url = path.resolve().as_uri()
    return (f'@font-face {{ font-family: "ReportCJK"; src: url("{url}"); }}\n'
            'body { font-family: "ReportCJK", sans-serif; }\n')


def build_report_html(db: Session, scope: dashboard.Scope, year: int, locale: str,
                      district_names: dict[str, str] | None = None,
                      translate: Callable[[Any], str] | None = None,
                      main_db: Session | None = None) -> str:
    """The whole report as one standalone HTML document (print CSS and the CJK font
    inline); raises :class:`ReportError` when the year has no aggregated campaign."""
    from learningcity.i18n import translator  # start-up: catalogs only when a report is made

    t = translate or translator(locale, ("learningcity", "monitoring"))
    body = report_body(db, scope, year, locale, t, district_names, main_db)
    lang = "en" if str(locale).startswith("en") else "zh-CN"
    css = CSS_PATH.read_text(encoding="utf-8") if CSS_PATH.is_file() else ""
    title = _e(t(_("Monitoring report ${year}", mapping={"year": year})))
    return (f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
            f"<title>{title}</title><style>{font_face_css()}{css}</style></head>"
            f"<body>{body}</body></html>")


def write_pdf(document: str, out: Path) -> None:
    """The HTML document as PDF (WeasyPrint embeds the @font-face font subset)."""
    import weasyprint  # start-up: WeasyPrint and pango load only for a PDF

    weasyprint.HTML(string=document, base_url=str(CSS_PATH.parent)).write_pdf(str(out))
