"""District boundaries (an uploaded GeoJSON) and the district map drawn from them as SVG.

Pure functions first (:func:`parse_geojson`, :func:`project`, :func:`render_map_svg`),
then the stored boundaries (:class:`~monitoring.results.models.DistrictBoundaries`, one
row) and :func:`map_svg_for`, which the pages and the yearly report call.  The SVG uses
presentation attributes only (the CSP forbids inline styles) and a colour-blind-safe
palette (Okabe-Ito); districts without data are grey and hatched.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity.db import utcnow
from learningcity.districts import district_codes, list_districts
from learningcity.i18n import _, translator
from monitoring.results import dashboard
from monitoring.results.models import DistrictBoundaries
from monitoring.results.warehouse import Aggregate

#: biggest GeoJSON an admin may upload
MAX_BYTES = 2_000_000
#: feature properties that may carry the district code (first found wins)
CODE_PROPERTIES = ("code", "district", "district_code")
VERDICTS = ("met", "not_met", "undetermined", "no_data")
#: Okabe-Ito: blue, vermillion, yellow; no data light grey (hatched)
COLOURS = {"met": "#0072B2", "not_met": "#D55E00", "undetermined": "#F0E442",
           "no_data": "#DDDDDD"}
VERDICT_LABELS = {"met": _("meets the target"), "not_met": _("does not meet the target"),
                  "undetermined": _("uncertain"), "no_data": _("no data")}


class MapError(ValueError):
    """The uploaded GeoJSON is not usable (the message says what is wrong)."""


@dataclass
class Feature:
    code: str
    #: polygons, each a list of rings, each a list of (lon, lat)
    polygons: list[list[list[tuple[float, float]]]]


def _rings(geometry: Any, n: int) -> list[list[list[tuple[float, float]]]]:
    if not isinstance(geometry, dict):
        raise MapError(f"feature {n}: no geometry")
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    try:
        if kind == "Polygon":
            polys = [coords]
        elif kind == "MultiPolygon":
            polys = list(coords)
        else:
            raise MapError(f"feature {n}: geometry must be a Polygon or MultiPolygon, not {kind}")
        out = [[[(float(p[0]), float(p[1])) for p in ring] for ring in poly] for poly in polys]
    except (TypeError, IndexError, ValueError):
        raise MapError(f"feature {n}: coordinates are not a list of [lon, lat] rings") from None
    if not out or any(len(ring) < 3 for poly in out for ring in poly) or \
            any(not math.isfinite(v) for poly in out for ring in poly for p in ring for v in p):
        raise MapError(f"feature {n}: a ring needs at least 3 finite points")
    return out


def parse_geojson(text: str | bytes, known_codes: set[str] | None = None) -> list[Feature]:
    """Features of a FeatureCollection; ``known_codes`` given: every code must be in it."""
    if len(text) > MAX_BYTES:
        raise MapError(f"file too large: at most {MAX_BYTES // 1000} kB")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise MapError("not JSON") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" or \
            not isinstance(data.get("features"), list):
        raise MapError("not a GeoJSON FeatureCollection")
    features: list[Feature] = []
    seen: set[str] = set()
    for n, f in enumerate(data["features"], start=1):
        props = f.get("properties") if isinstance(f, dict) else None
        code = next((str(props[k]) for k in CODE_PROPERTIES
                     if isinstance(props, dict) and props.get(k) not in (None, "")), None)
        if code is None:
            raise MapError(f"feature {n}: no district code property "
                           f"({', '.join(CODE_PROPERTIES)})")
        if known_codes is not None and code not in known_codes:
            raise MapError(f"feature {n}: unknown district code {code!r}")
        if code in seen:
            raise MapError(f"feature {n}: district code {code!r} appears twice")
        seen.add(code)
        features.append(Feature(code, _rings(f.get("geometry"), n)))
    if not features:
        raise MapError("the FeatureCollection has no features")
    return features


def project(features: list[Feature], width: float = 600, margin: float = 10
            ) -> tuple[dict[str, list[list[list[tuple[float, float]]]]], float]:
    """Equirectangular projection (longitude shrunk by cos of the mean latitude) scaled
    uniformly into ``width``: returns projected polygons per code and the height."""
    pts = [p for f in features for poly in f.polygons for ring in poly for p in ring]
    lons, lats = [p[0] for p in pts], [p[1] for p in pts]
    mid = (min(lats) + max(lats)) / 2
    k = math.cos(math.radians(mid)) if abs(mid) <= 90 else 1.0
    k = k if k > 0.01 else 1.0
    x0, x1 = min(lons) * k, max(lons) * k
    y0, y1 = min(lats), max(lats)
    span = max(x1 - x0, (y1 - y0) / 2, 1e-12)
    scale = (width - 2 * margin) / span
    height = (y1 - y0) * scale + 2 * margin
    out = {f.code: [[[(margin + (lon * k - x0) * scale, margin + (y1 - lat) * scale)
                      for lon, lat in ring] for ring in poly] for poly in f.polygons]
           for f in features}
    return out, height


def _centroid(polys: list[list[list[tuple[float, float]]]]) -> tuple[float, float]:
    ring = max((p[0] for p in polys), key=len)
    return sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)


def render_map_svg(features: list[Feature], values: dict[str, dict[str, Any]], *,
                   title: str, labels: dict[str, str] | None = None,
                   legend: dict[str, str] | None = None, width: float = 600) -> str:
    """The map as an SVG document: one <path> per feature, filled by its verdict
    (``values[code]["verdict"]``, missing: no data), a label per district, a legend."""
    labels = labels or {}
    legend = legend or {v: str(VERDICT_LABELS[v]) for v in VERDICTS}
    shapes, height = project(features, width)
    legend_h = 24 * len(VERDICTS) + 10
    total_h = height + legend_h
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {total_h:.1f}" '
           f'width="{width:g}" height="{total_h:.1f}" role="img" aria-labelledby="map-title">',
           f'<title id="map-title">{escape(title)}</title>',
           '<defs><pattern id="nodata-hatch" patternUnits="userSpaceOnUse" width="8" '
           'height="8" patternTransform="rotate(45)"><rect width="8" height="8" '
           f'fill="{COLOURS["no_data"]}"/><line x1="0" y1="0" x2="0" y2="8" stroke="#777777" '
           'stroke-width="2"/></pattern></defs>']
    for f in features:
        verdict = (values.get(f.code) or {}).get("verdict") or "no_data"
        verdict = verdict if verdict in COLOURS else "no_data"
        fill = "url(#nodata-hatch)" if verdict == "no_data" else COLOURS[verdict]
        d = " ".join("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in ring) + " Z"
                     for poly in shapes[f.code] for ring in poly)
        name = labels.get(f.code, f.code)
        out.append(f'<path d="{d}" fill="{fill}" fill-rule="evenodd" stroke="#333333" '
                   f'stroke-width="1" data-district="{escape(f.code)}" '
                   f'data-verdict="{verdict}"><title>{escape(name)}: '
                   f'{escape(legend[verdict])}</title></path>')
        cx, cy = _centroid(shapes[f.code])
        text = escape(name) + ("" if verdict != "no_data" else " " + escape(legend["no_data"]))
        out.append(f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="middle" font-size="12" '
                   f'fill="#000000" stroke="#FFFFFF" stroke-width="3" paint-order="stroke">'
                   f'{text}</text>')
    y = height + 10
    for v in VERDICTS:
        fill = "url(#nodata-hatch)" if v == "no_data" else COLOURS[v]
        out.append(f'<rect x="10" y="{y:.1f}" width="16" height="16" fill="{fill}" '
                   f'stroke="#333333" data-legend="{v}"/>'
                   f'<text x="32" y="{y + 13:.1f}" font-size="13" fill="#000000">'
                   f'{escape(legend[v])}</text>')
        y += 24
    out.append("</svg>")
    return "\n".join(out)


# ------------------------------------------------------------------ stored boundaries


def stored_features(db: Session) -> list[Feature] | None:

    row = db.scalars(sa.select(DistrictBoundaries).order_by(DistrictBoundaries.id)).first()
    return parse_geojson(row.geojson) if row else None


def save_boundaries(db: Session, text: str | bytes, user: str = "") -> list[Feature]:
    """Check ``text`` against the district table and store it (nothing changes on error)."""

    features = parse_geojson(text, set(district_codes(db)))
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    row = db.scalars(sa.select(DistrictBoundaries).order_by(DistrictBoundaries.id)).first()
    if row is None:
        row = DistrictBoundaries(geojson=text, updated_by=user)
        db.add(row)
    else:
        row.geojson, row.updated_by = text, user
        row.updated_at = utcnow()
    db.flush()
    return features


def demo_geojson(codes: list[str] | None = None) -> dict[str, Any]:
    """A schematic grid (4 columns x 3 rows) of the demo districts D01-D12."""
    codes = codes or [f"D{i:02d}" for i in range(1, 13)]
    feats = []
    for i, code in enumerate(codes):
        col, row = i % 4, i // 4
        x, y = 121.0 + 0.1 * col, 31.3 - 0.1 * row
        ring = [[x, y], [x + 0.1, y], [x + 0.1, y - 0.1], [x, y - 0.1], [x, y]]
        feats.append({"type": "Feature", "properties": {"code": code},
                      "geometry": {"type": "Polygon", "coordinates": [ring]}})
    return {"type": "FeatureCollection", "features": feats}


def load_demo(db: Session) -> None:
    """Store the demo city's schematic boundaries when none are stored (idempotent).
    Codes not in the district table are left out."""

    if db.scalars(sa.select(DistrictBoundaries.id)).first() is not None:
        return
    known = set(district_codes(db))
    data = demo_geojson()
    data["features"] = [f for f in data["features"] if f["properties"]["code"] in known]
    if data["features"]:
        db.add(DistrictBoundaries(geojson=json.dumps(data), updated_by="demo"))
        db.flush()


# ------------------------------------------------------------------ estimates


def years(mdb: Session, scope: Any) -> list[int]:

    return sorted({r.closes_at.year for r in dashboard.campaigns(mdb, scope) if r.closes_at},
                  reverse=True)


def indicators(mdb: Session, scope: Any, locale: str = "zh_CN") -> list[tuple[str, str]]:

    return [(m, label) for m, kind, label in dashboard.measures(mdb, scope, None, locale)
            if kind == "indicator"]


def values_for(mdb: Session, scope: Any, indicator_code: str, year: int | None
               ) -> dict[str, dict[str, Any]]:
    """Per district (in scope): the indicator's estimate from the district's newest
    campaign closing in ``year``, with interval, target and verdict."""

    runs: dict[str, Any] = {}
    for run in dashboard.campaigns(mdb, scope):  # newest first
        if year is None or (run.closes_at and run.closes_at.year == year):
            runs.setdefault(run.district, run)
    out: dict[str, dict[str, Any]] = {}
    for district, run in runs.items():
        q = scope.rows(sa.select(Aggregate).where(
            Aggregate.campaign == run.campaign, Aggregate.measure == indicator_code,
            Aggregate.dimension == "district", Aggregate.group_value == district))
        r = mdb.scalars(q).first()
        if r is None:
            continue
        verdict = r.judgement if r.judgement in ("met", "not_met", "undetermined") \
            and r.estimate is not None else "no_data"
        out[district] = {"campaign": run.campaign, "estimate": r.estimate,
                         "ci_low": r.ci_low, "ci_high": r.ci_high, "target": r.target,
                         "direction": r.direction or "", "verdict": verdict,
                         "reason": r.suppression_reason or "",
                         "label_zh": r.label_zh, "label_en": r.label_en}
    return out


def map_svg_for(db: Session, scope: Any, indicator_code: str, year: int | None,
                locale: str = "zh_CN", *, monitoring_db: Session | None = None) -> str | None:
    """The district map of one indicator and year as SVG, or None without boundaries.
    ``db`` holds boundaries and districts; aggregates come from ``monitoring_db``
    (default: ``db``).  District staff (scope.district) see only their district."""

    features = stored_features(db)
    if not features:
        return None
    if scope.district is not None:
        features = [f for f in features if f.code == scope.district]
        if not features:
            return None
    values = values_for(monitoring_db or db, scope, indicator_code, year)
    names = {d.code: d.name(locale) for d in list_districts(db)}
    label = next((v["label_en"] if str(locale).startswith("en") else v["label_zh"]
                  for v in values.values()), indicator_code)
    t = translator(locale, ("learningcity", "monitoring"))
    legend = {v: t(VERDICT_LABELS[v]) for v in VERDICTS}
    return render_map_svg(features, values, title=f"{label} {year or ''}".strip(),
                          labels=names, legend=legend)
