"""Aggregation: a finished campaign's respondents -> de-identified aggregates in the
monitoring database.

:func:`aggregate_campaign` reads the per-respondent analysis table
(:func:`monitoring.respondents.respondent_table`), computes with the campaign's
design (Taylor linearisation, :mod:`monitoring.estimates`)

* every indicator (:mod:`monitoring.indicators`), judged against its target;
* ability: the mean score from the plausible values (Rubin's rules) and the
  proficiency-level shares;
* survey scale scores (``scale_<name>`` columns);
* shares of learning-topic interests, preferred places and barriers
  (``topics__*``, ``channels__*``, ``barriers__*``),

for the whole campaign population and the domains district, group, age band,
sex and group x district, with the campaign's design as drawn and its calibration
(:func:`build_design`) and the settings in :data:`ESTIMATION`; applies the publication
rule (``docs/suppression.md``: the NCHS standard for proportions and level shares, n and
RSE for means, complementary suppression across the proficiency levels of each domain;
a withheld row keeps n and its reason, estimate, SE, interval and deff are not written)
and replaces the campaign's rows in
the monitoring database in one transaction.  Only the aggregate schema of
:mod:`monitoring.warehouse` is ever written: no respondent identifier, no
person-level value.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from itembank.scale import default_levels
from learningcity.db import utcnow
from monitoring.fieldwork.models import Campaign, FrameUnit
from monitoring.results.ability import PV_COLUMNS
from monitoring.results.indicators import (
    Catalogue,
    Indicator,
    evaluate_frame,
    evaluate_rows,
    frame_values,
    judge,
    load_catalogue,
    references,
)
from monitoring.results.respondents import CampaignSources, RespondentData, respondent_table
from monitoring.results.warehouse import Aggregate, MonitoringRun, design_label, method_label
from monitoring.stats import calibration as cal
from monitoring.stats import design as sd
from monitoring.stats import estimates as est
from monitoring.stats import imputation as imp
from monitoring.stats import suppression as sup
from surveys.definition import default_survey

# The small-cell rule: the constants of the statistics core, one rule everywhere.
MIN_N: int = sup.MIN_N
MAX_RSE: float | None = sup.MAX_RSE

#: domains, in display order; "all" is the whole campaign population
DIMENSIONS: tuple[str, ...] = ("all", "district", "group", "age_band", "sex",
                               "group_x_district")
#: multiple-choice questions whose choice shares are published
SHARE_QUESTIONS: dict[str, tuple[str, str]] = {
    "topics": ("学习兴趣", "Learning interest"),
    "channels": ("学习场所与方式", "Preferred place"),
    "barriers": ("学习障碍", "Barrier"),
}
ABILITY_LABEL = ("能力平均分", "Mean ability score")


#: how every published cell is estimated (read by the analysis file's scripts):
#: a stratum with one responding PSU is centred at zero as R's ``survey.lonely.psu =
#: "adjust"``; proportions get R's ``svyciprop`` logit interval; intervals use the
#: domain's own degrees of freedom (its PSUs minus its strata, R's ``degf`` of the
#: subset), which for a district that is one stratum is about its PSUs, not the city's
ESTIMATION: dict[str, str] = {"lonely_psu": "adjust", "proportion_ci": "logit",
                              "df": "domain"}


class AggregationError(ValueError):
    """The campaign cannot be aggregated (no such campaign, no respondents, bad table)."""


@dataclass
class AggregateSummary:
    """What a run wrote: counts per kind, suppressed cells, indicator judgements."""

    campaign: str
    n_respondents: int
    n_rows: int
    n_suppressed: int
    computed_at: Any
    by_kind: dict[str, int] = field(default_factory=dict)
    indicators: list[dict[str, Any]] = field(default_factory=list)

    def text(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.by_kind.items()))
        lines = [f"campaign {self.campaign}: {self.n_respondents} respondents, "
                 f"{self.n_rows} aggregate rows ({kinds}), {self.n_suppressed} suppressed"]
        for i in self.indicators:
            if i["estimate"] is None:
                value = f"not published ({i['reason']})"
            else:
                value = (f"{100 * i['estimate']:.1f}% "
                         f"[{100 * i['ci_low']:.1f}, {100 * i['ci_high']:.1f}]")
            target = "" if i["target"] is None else f"{i['direction']} {100 * i['target']:g}%"
            lines.append(f"  {i['measure']}: {value}; target {target or '-'}: "
                         f"{i['judgement'] or '-'}")
        return "\n".join(lines)


# ------------------------------------------------------------------ helpers


def _attr(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    return default


def build_design(frame: pd.DataFrame, design: Any) -> sd.Design:
    """The Taylor design of a respondent table: ``design`` names its ``strata``, ``psu``,
    ``fpc``, ``ssu`` and ``fpc2`` columns (:class:`monitoring.results.respondents.
    RespondentData`; a missing or None name: no such part), or is None (weights only).

    A stratum with a single responding PSU is centred at zero
    (``lonely_psu="adjust"``, conservative) rather than failing the run.
    """
    if "weight" not in frame.columns:
        raise AggregationError("respondent table has no 'weight' column")
    parts = ("strata", "psu", "fpc", "ssu", "fpc2")
    names = {k: _attr(design, k) if design is not None else None for k in parts}
    absent = [c for c in names.values() if c is not None and c not in frame.columns]
    if absent:
        raise AggregationError(f"design: column {absent[0]!r} not in the respondent table")
    try:
        built = sd.Design.from_arrays(
            frame["weight"].to_numpy(), lonely_psu=ESTIMATION["lonely_psu"],
            names={"weights": "weight", **{k: c for k, c in names.items() if c}},
            **{k: None if c is None else frame[c].to_numpy() for k, c in names.items()})
    except ValueError as exc:
        raise AggregationError(f"design: {exc}") from None
    spec = _attr(design, "calibration") if design is not None else None
    return calibrated(built, frame, spec) if spec else built


def calibrated(design: sd.Design, frame: pd.DataFrame, calibration: Mapping[str, Any]
               ) -> sd.Design:
    """The design with the weights' calibration recorded, so that its variance is the
    calibrated one (R's ``postStratify``/``rake`` on the final weights). The weights
    already meet the margins (the weight run calibrated them), so they stay as they are
    up to the run's tolerance.

    ``calibration``: ``method`` (poststratify or rake), ``variables`` and ``totals``
    (one mapping per population cell: the variables' values and ``total``).
    """
    method, variables = calibration.get("method"), list(calibration.get("variables") or [])
    missing = [v for v in variables if v not in frame.columns]
    if missing:
        raise AggregationError(f"calibration: column {missing[0]!r} not in the respondent "
                               "table")
    totals = pd.DataFrame(list(calibration.get("totals") or []), columns=[*variables, "total"])
    data = frame[variables].astype(object).where(frame[variables].notna())
    data = data.apply(lambda col: col.map(lambda v: v if v is None else str(v)))
    try:
        if method == "poststratify":
            return cal.poststratify(design, data, totals)
        if method == "rake":
            margins = {v: totals.groupby(v)["total"].sum() for v in variables}
            return cal.rake(design, data, margins)
    except ValueError as exc:
        raise AggregationError(f"calibration ({method}): {exc}") from None
    raise AggregationError(f"calibration: unknown method {method!r}")


def _domains(frame: pd.DataFrame, campaign_district: str
             ) -> list[tuple[str, pd.DataFrame | None, Callable[[pd.Series], tuple[str, str]]]]:
    """(dimension, by, row -> (group_value, district)) for each domain available.

    Population groups may overlap (an older adult may also be a farmer): when the
    table has ``group__<code>`` 0/1 columns, each group is its own domain (one
    entry per group), otherwise the single ``group`` column is used.
    """
    Domain = tuple[str, pd.DataFrame | None, Callable[[pd.Series], tuple[str, str]]]
    out: list[Domain] = [("all", None, lambda r: ("", campaign_district))]

    def col(name: str) -> pd.Series:
        return frame[name].astype(object).where(frame[name].notna())

    has_flags = any(str(c).startswith("group__") for c in frame.columns)
    for dim in ("district", "group", "age_band", "sex"):
        if dim == "group" and has_flags:
            continue
        if dim in frame.columns and frame[dim].notna().any():
            by = pd.DataFrame({"_g": col(dim)})
            if dim == "district":
                out.append((dim, by, lambda r: (str(r["_g"]), str(r["_g"]))))
            else:
                out.append((dim, by, lambda r: (str(r["_g"]), campaign_district)))
    flags = _group_flags(frame)
    for code, flag in flags.items():
        member = pd.Series(np.where(flag == 1, code, None), dtype=object)
        out.append(("group", pd.DataFrame({"_g": member}),
                    lambda r: (str(r["_g"]), campaign_district)))
    if "district" in frame.columns:
        if flags:
            for code, flag in flags.items():
                member = pd.Series(np.where(flag == 1, code, None), dtype=object)
                out.append(("group_x_district",
                            pd.DataFrame({"_g": member, "_d": col("district")}),
                            lambda r: (str(r["_g"]), str(r["_d"]))))
        elif "group" in frame.columns and not has_flags and frame["group"].notna().any():
            out.append(("group_x_district",
                        pd.DataFrame({"_g": col("group"), "_d": col("district")}),
                        lambda r: (str(r["_g"]), str(r["_d"]))))
    return out


def _group_flags(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """``group__<code>`` membership columns (0/1) by group code."""
    flags = {str(c).split("__", 1)[1]: pd.to_numeric(frame[c], errors="coerce").to_numpy()
             for c in frame.columns if str(c).startswith("group__")}
    return {code: f for code, f in flags.items() if (f == 1).any()}  # groups with members


Part = tuple[str, Callable[[pd.Series], tuple[str, str]], pd.DataFrame]


def _suppressed(parts: list[Part], statistic: str, levels: bool = False) -> pd.DataFrame:
    """The domains' tables of one measure stacked (``_part`` = position in ``parts``)
    with the publication rule applied (``docs/suppression.md``); with ``levels`` the
    rows of a domain are the shares of every proficiency level, which sum to 1, and
    complementary suppression keeps a withheld level from being worked out."""
    stacked = pd.concat([t.reset_index(drop=True).assign(_part=k)
                         for k, (_dim, _where, t) in enumerate(parts)], ignore_index=True)
    t = sup.suppress(stacked, min_n=MIN_N, max_rse=MAX_RSE, rse_action="suppress",
                     statistic=statistic)
    if levels:
        by = [c for c in t.columns if c in ("_part", "_g", "_d")]
        t = sup.complementary(t, sup.share_groups(t, by))
    return t


def _finish_many(parts: list[Part], measure: str, kind: str, label: tuple[str, str],
                 method: str, indicator: Indicator | None = None,
                 statistic: str = "proportion") -> list[dict[str, Any]]:
    """One measure's tables of every domain -> suppressed warehouse rows."""
    if not parts:
        return []
    t = _suppressed(parts, statistic)
    rows: list[dict[str, Any]] = []
    by_part = t.groupby("_part", sort=True).indices
    for k, (dim, where, _t) in enumerate(parts):
        if k in by_part:
            rows.extend(_rows(t.iloc[by_part[k]], measure, kind, label, dim, where, method,
                              indicator))
    return rows


def _finish_levels(shares: list[Part], codes: list[str], labels: dict[str, tuple[str, str]],
                   method: str) -> list[dict[str, Any]]:
    """The proficiency-level shares of every domain -> suppressed warehouse rows, with
    complementary suppression across the levels of each domain."""
    if not shares:
        return []
    t = _suppressed(shares, "pv_level_share", levels=True)
    rows: list[dict[str, Any]] = []
    cells = t.groupby(["level", "_part"], sort=False).indices
    for code in codes:
        for k, (dim, where, _t) in enumerate(shares):
            if (code, k) in cells:
                rows.extend(_rows(t.iloc[cells[(code, k)]], f"ability_level_{code}",
                                  "level_share", labels[code], dim, where, method, None))
    return rows


def _rows(t: pd.DataFrame, measure: str, kind: str, label: tuple[str, str], dimension: str,
          where: Callable[[pd.Series], tuple[str, str]], method: str,
          indicator: Indicator | None) -> list[dict[str, Any]]:
    """Warehouse rows of a suppressed estimates table: a withheld cell keeps ``n`` and its
    reason; a published one flagged for review keeps its reason too."""
    rows = []
    columns = {c: t[c].to_numpy() for c in t.columns}
    for i in range(len(t)):
        r = {c: v[i] for c, v in columns.items()}
        group_value, district = where(r)
        n = int(r["n"])
        if n == 0 and dimension != "all":
            continue  # nobody of the measure's population in this domain: nothing to say
        hidden = bool(r["suppressed"])
        reason = str(r.get("reason") or "") or None

        def num(col: str, r: dict[str, Any] = r, hidden: bool = hidden) -> float | None:
            v = r.get(col)
            if hidden or v is None or not np.isfinite(float(v)):
                return None
            return float(v)

        row = {"measure": measure, "kind": kind, "label_zh": label[0], "label_en": label[1],
               "dimension": dimension, "group_value": group_value, "district": district,
               "n": n, "estimate": num("estimate"), "se": num("se"),
               "ci_low": num("ci_low"), "ci_high": num("ci_high"), "deff": num("deff"),
               "suppressed": hidden, "suppression_reason": reason, "method": method,
               "target": None, "direction": None, "judgement": None}
        if indicator is not None:
            row["target"], row["direction"] = indicator.target, indicator.direction
            row["judgement"] = judge(row["ci_low"], row["ci_high"], indicator.target,
                                     indicator.direction)
        rows.append(row)
    return rows


def _labels_from_survey() -> tuple[dict[str, tuple[str, str]], dict[tuple[str, str],
                                                                      tuple[str, str]]]:
    """Scale labels and (question, choice) labels from the default survey."""
    try:
        survey = default_survey()
    except Exception:  # labels are cosmetic; never fail a run for them
        return {}, {}
    scales, choices = {}, {}
    for q in survey.questions:
        if q.type == "rating_grid":
            scales[f"scale_{q.name}"] = (q.label.zh, q.label.en)
        if q.type == "multiple_choice" and q.choices:
            for c in survey.choices(q.choices):
                choices[(q.name, c.name)] = (c.label.zh, c.label.en)
    return scales, choices


def level_scheme() -> tuple[list[float], list[str], dict[str, tuple[str, str]]]:
    """The proficiency levels: lower cut points, level codes and their labels."""
    levels = default_levels()
    cuts = [float(lv["min"]) for lv in levels if lv["min"] is not None]
    codes = [lv["code"] for lv in levels]
    return cuts, codes, {lv["code"]: (lv["label_zh"], lv["label_en"]) for lv in levels}


# -------------------------------------------------------------- computation


def compute_aggregates(data: RespondentData, indicators: Catalogue | Sequence[Indicator],
                       frame_attributes: list[dict[str, Any]] | None = None,
                       progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Every aggregate row of one campaign (no database): see the module docstring.

    ``frame_attributes`` are the campaign frame units' columns (one mapping per
    unit) for ``frame`` indicators; None means the campaign has no frame.
    """
    frame = data.frame.reset_index(drop=True)
    if len(frame) == 0:
        raise AggregationError("the campaign has no respondents to aggregate")
    campaign_district = str(_attr(data.campaign, "district", "district_code", default="") or "")
    design = build_design(frame, data.design)
    n = design.n
    # each domain partition is factorised once, for every measure
    domains = [(dim, est.domains(by, n), where)
               for dim, by, where in _domains(frame, campaign_district)]
    taylor = _method_text(data.design)
    prop = {"ci_method": ESTIMATION["proportion_ci"], "df": ESTIMATION["df"]}
    tick = progress or (lambda _msg: None)
    rows: list[dict[str, Any]] = []
    values = indicator_values(frame, indicators)
    for ind in indicators:
        tick(f"indicator {ind.code}")
        label = (ind.name_zh, ind.name_en)
        if ind.kind == "frame":
            rows.extend(_frame_indicator(ind, frame_attributes, campaign_district))
            continue
        if ind.code not in values:  # e.g. a test-only campaign has no survey answers
            missing = _absent(ind, frame)
            na = _not_available(ind, campaign_district, f"not available: no {', '.join(missing)}")
            rows += [na, {**na, "dimension": "district", "group_value": campaign_district}]
            continue
        y = values[ind.code]
        parts = [(dim, where, est.survey_proportion(design, y, by=dom, **prop).table)
                 for dim, dom, where in domains]
        rows.extend(_finish_many(parts, ind.code, "indicator", label, taylor, ind))
    pvs = [c for c in PV_COLUMNS if c in frame.columns]
    if len(pvs) >= 2 and frame[pvs].notna().any().all():
        tick("ability")
        p = frame[pvs].to_numpy(dtype=float)
        method = f"{taylor}+rubin({len(pvs)} PV)"
        cuts, codes, level_labels = level_scheme()
        means, shares = [], []
        for dim, dom, where in domains:
            means.append((dim, where, imp.pv_estimate(design, p, "mean", by=dom,
                                                      df=ESTIMATION["df"]).table))
            shares.append((dim, where, imp.proficiency_shares(design, p, cuts, codes, by=dom,
                                                              **prop).table))
        rows.extend(_finish_many(means, "ability_mean", "ability", ABILITY_LABEL, method,
                                 statistic="pv_mean"))
        rows.extend(_finish_levels(shares, codes, level_labels, method))
    scale_labels, choice_labels = _labels_from_survey()
    for col in sorted(c for c in frame.columns if str(c).startswith("scale_")):
        tick(col)
        y = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        label = scale_labels.get(col, (col, col))
        parts = [(dim, where, est.survey_mean(design, y, by=dom, df=ESTIMATION["df"]).table)
                 for dim, dom, where in domains]
        rows.extend(_finish_many(parts, col, "scale", label, taylor, statistic="mean"))
    for q, (zh, en) in SHARE_QUESTIONS.items():
        cols = sorted(c for c in frame.columns if str(c).startswith(q + "__"))
        if cols:
            tick(q)
        for col in cols:
            choice = col.split("__", 1)[1]
            czh, cen = choice_labels.get((q, choice), (choice, choice))
            y = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
            parts = [(dim, where, est.survey_proportion(design, y, by=dom, **prop).table)
                     for dim, dom, where in domains]
            rows.extend(_finish_many(parts, col, "share", (f"{zh}：{czh}", f"{en}: {cen}"),
                                     taylor))
    return rows


def _method_text(design: Any) -> str:
    """How a campaign's cells are estimated, for the warehouse's ``method`` column."""
    spec = _attr(design, "calibration") if design is not None else None
    method = (spec or {}).get("method") if isinstance(spec, Mapping) else None
    return f"taylor+{method}" if method else "taylor"


def indicator_values(frame: pd.DataFrame, indicators: Catalogue | Sequence[Indicator]
                     ) -> dict[str, np.ndarray]:
    """Each person indicator the table can answer as 0/1 per respondent, NaN where the
    answer is missing or the respondent is outside the indicator's population (what the
    published shares are estimated from, and the analysis file's ``ind_<code>``)."""
    out: dict[str, np.ndarray] = {}
    for ind in indicators:
        if ind.kind == "frame" or _absent(ind, frame):
            continue
        y = evaluate_frame(ind.expression, frame)
        inside = evaluate_frame(ind.population, frame) == 1.0
        out[ind.code] = np.where(inside, y, np.nan)
    return out


def _absent(ind: Indicator, frame: pd.DataFrame) -> list[str]:
    """Questions an indicator needs that the respondent table does not have."""
    have = {str(c) for c in frame.columns} | {str(c).split("__", 1)[0] for c in frame.columns}
    return [r for r in references(ind) if r not in have]


def _not_available(ind: Indicator, district: str, method: str) -> dict[str, Any]:
    return {"measure": ind.code, "kind": "indicator", "label_zh": ind.name_zh,
            "label_en": ind.name_en, "dimension": "all", "group_value": "",
            "district": district, "n": 0, "estimate": None, "se": None, "ci_low": None,
            "ci_high": None, "deff": None, "suppressed": True,
            "suppression_reason": "not_available", "method": method[:64],
            "target": ind.target, "direction": ind.direction, "judgement": None}


def _frame_indicator(ind: Indicator, attributes: list[dict[str, Any]] | None,
                     district: str) -> list[dict[str, Any]]:
    """A share of frame units (a census of the frame: SE 0), or 'not available'."""
    base = {"measure": ind.code, "kind": "indicator", "label_zh": ind.name_zh,
            "label_en": ind.name_en, "group_value": "", "district": district, "se": None,
            "deff": None, "target": ind.target, "direction": ind.direction,
            "method": "census(frame)"}
    refs = references(ind, population=False)
    values = frame_values(attributes or [])
    present = bool(values) and all(any(r in v for v in values) for r in refs)
    if not present:
        empty = {**base, "n": len(values), "estimate": None, "ci_low": None, "ci_high": None,
                 "suppressed": True, "suppression_reason": "not_available", "judgement": None,
                 "method": "not available"}
        return [{**empty, "dimension": "all"}, {**empty, "dimension": "district",
                                                "group_value": district}]
    y = evaluate_rows(ind.expression, values)
    ok = ~np.isnan(y)
    n = int(ok.sum())
    share = float(y[ok].mean()) if n else math.nan
    if not n:
        return _frame_indicator(ind, None, district)
    cell = {**base, "n": n, "estimate": share, "se": 0.0, "ci_low": share, "ci_high": share,
            "suppressed": False, "suppression_reason": None,
            "judgement": judge(share, share, ind.target, ind.direction)}
    return [{**cell, "dimension": "all"}, {**cell, "dimension": "district",
                                           "group_value": district}]


# ------------------------------------------------------------- the database


def frame_unit_attributes(db: Session, campaign_code: str) -> list[dict[str, Any]] | None:
    """The campaign's frame units' columns, one mapping per community (None: no frame).

    A cluster frame lists communities (streets, villages) directly; a unit frame
    (households) with a ``community`` column is reduced to one row per community.
    """
    rows = [dict(r or {}) for r in db.execute(
        sa.select(FrameUnit.attributes).join(Campaign).where(Campaign.code == campaign_code)
        .order_by(FrameUnit.row_number)).scalars()]
    if rows and all("community" in r for r in rows):
        seen: dict[str, dict[str, Any]] = {}
        for r in rows:
            seen.setdefault(str(r["community"]), r)
        rows = list(seen.values())
    return rows or None


def write_aggregates(monitoring_db: Session, campaign: Any, rows: list[dict[str, Any]],
                     n_respondents: int, design_text: str = "", actor: str = "") -> Any:
    """Replace the campaign's rows (delete + insert in the caller's transaction)."""
    code = str(_attr(campaign, "code"))
    now = utcnow()
    monitoring_db.execute(sa.delete(Aggregate).where(Aggregate.campaign == code))
    monitoring_db.execute(sa.delete(MonitoringRun).where(MonitoringRun.campaign == code))
    monitoring_db.flush()
    monitoring_db.add(MonitoringRun(
        campaign=code, campaign_name=str(_attr(campaign, "name", default="") or ""),
        district=str(_attr(campaign, "district", "district_code", default="") or ""),
        closes_at=_attr(campaign, "closes_at"), computed_at=now, computed_by=actor,
        n_respondents=n_respondents, n_rows=len(rows),
        n_suppressed=sum(1 for r in rows if r["suppressed"]), min_n=MIN_N, max_rse=MAX_RSE,
        design=design_text[:200]))
    if rows:
        monitoring_db.execute(sa.insert(Aggregate),
                              [{**r, "campaign": code, "computed_at": now} for r in rows])
    monitoring_db.flush()
    return now


def _writer(db: Session, monitoring_db: Session) -> Session:
    """The session to write aggregates with: the main session when the monitoring
    database *is* the main database (the embedded default), so one connection holds
    the write (SQLite allows one writer; two sessions would lock each other out)."""
    try:
        same = (db.get_bind().url.render_as_string(hide_password=False)
                == monitoring_db.get_bind().url.render_as_string(hide_password=False))
    except Exception:  # an unbound session: keep them apart
        same = False
    return db if same else monitoring_db


def aggregate_campaign(db: Session, monitoring_db: Session, campaign_code: str,
                       actor: str = "", progress: Callable[[str], None] | None = None,
                       sources: CampaignSources | None = None) -> AggregateSummary:
    """Aggregate one campaign into the monitoring database (idempotent).

    Reads the respondent table from ``db`` (main database), writes to
    ``monitoring_db`` (or through ``db`` when both are the same database) without
    committing: the caller's transaction (pyramid_tm, or the CLI committing both
    sessions) makes the delete + insert atomic.  Raises AggregationError.
    """
    try:
        data = (respondent_table(db, campaign_code) if sources is None
                else respondent_table(db, campaign_code, sources))
    except LookupError as exc:
        raise AggregationError(str(exc)) from None
    catalogue = load_catalogue(db)
    frame_attrs = None
    if any(i.kind == "frame" for i in catalogue):
        frame_attrs = frame_unit_attributes(db, campaign_code)
    rows = compute_aggregates(data, catalogue, frame_attrs, progress)
    design = data.design
    probability = design is None or bool(_attr(design, "probability", default=True))
    if not probability:  # estimates from respondents; frame counts and gaps stay as they are
        for r in rows:
            if r["suppression_reason"] != "not_available" and r["method"] != "census(frame)":
                r["method"] = method_label(r["method"], probability)
    design_text = "weights only" if design is None else design_label(
        {k: _attr(design, k) for k in ("strata", "psu", "fpc", "ssu", "fpc2")},
        str(_attr(design, "estimator", default="") or ""), probability)
    computed_at = write_aggregates(_writer(db, monitoring_db), data.campaign, rows,
                                   len(data.frame), design_text, actor)
    by_kind: dict[str, int] = {}
    for r in rows:
        by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + 1
    inds = [{"measure": r["measure"], "estimate": r["estimate"], "ci_low": r["ci_low"],
             "ci_high": r["ci_high"], "target": r["target"], "direction": r["direction"],
             "judgement": r["judgement"], "reason": r["suppression_reason"]}
            for r in rows if r["kind"] == "indicator" and r["dimension"] == "all"]
    return AggregateSummary(campaign=campaign_code, n_respondents=len(data.frame),
                            n_rows=len(rows), n_suppressed=sum(r["suppressed"] for r in rows),
                            computed_at=computed_at, by_kind=by_kind, indicators=inds)


def aggregate_on_close(db: Session, monitoring_db: Session, campaign_code: str,
                       actor: str = "") -> AggregateSummary | None:
    """For the campaign-close code: aggregate, or None when there is nothing to aggregate
    yet (no respondents); other errors propagate so the close can report them."""
    try:
        return aggregate_campaign(db, monitoring_db, campaign_code, actor=actor)
    except AggregationError as exc:
        if "no respondents" in str(exc):
            return None
        raise
