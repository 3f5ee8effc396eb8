"""Design, allocation and the sample draw of a campaign.

The design (``campaign.design``) holds, besides the frame's column choices:

* ``n``: total sample size: units for a unit frame, clusters (PSUs) for a cluster frame;
* ``allocation``: ``proportional`` (n_h ∝ N_h), ``equal`` or ``neyman`` (n_h ∝ N_h S_h);
  for a cluster frame N_h is the stratum's population (sum of the counts);
* ``min_per_stratum`` / ``max_per_stratum``: bounds on n_h (never above the frame rows);
* Neyman's S_h from ``sds`` (``{stratum: S_h}``, typed in per stratum) or ``sd_column``
  (a frame column holding each stratum's expected standard deviation, the same value on
  every row of the stratum, e.g. from an earlier survey);
* ``m_per_psu``: residents invited per selected cluster (second stage);
* ``quotas``: completes wanted per stratum (open mode; by default the allocation).

Unit frames are drawn by stratified SRSWOR (π = n_h / N_h); cluster frames by randomised
systematic PPS within strata (π1 from ``sampling.pps_sample``, certainty clusters π1 = 1)
with m invitations per selected cluster, so π = π1 · min(m, M_i) / M_i. The seed is
stored; the frame rows are kept in upload order, so ``replay_draw`` repeats the draw
exactly and the draw page shows that it does.

What the draw writes on a selected frame row (``pi1``, ``certainty``, ``size`` and the
invitations planned) is what estimation reads back: the respondent table turns it into
the design with :func:`monitoring.stats.sampling.design_columns`. Open (quota)
campaigns draw nothing and are not probability samples.
"""
from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity import audit
from learningcity.db import utcnow
from learningcity.i18n import _
from monitoring.fieldwork.campaigns import Said
from monitoring.fieldwork.frames import current_upload
from monitoring.fieldwork.models import Campaign, CampaignStratum, FrameUnit
from monitoring.stats import sampling

ALLOCATIONS = ("proportional", "equal", "neyman")
SEED_BITS = 63  # fits a signed BIGINT on every backend


class DesignError(ValueError):
    """A design or draw request that cannot be carried out; ``problems`` lists why."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or [message]
        super().__init__("; ".join(self.problems))


def new_seed() -> int:
    """A fresh random seed from :mod:`secrets`."""
    return secrets.randbits(SEED_BITS)


def frame_kind(campaign: Campaign) -> str | None:
    return (campaign.design or {}).get("frame", {}).get("kind")


def _int(value: Any, name: str, problems: list[str], minimum: int = 0,
         optional: bool = False) -> int | None:
    if value in (None, "") and optional:
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        problems.append(Said(_("${field}: ${value} is not a whole number"), field=name,
                             value=repr(value)))
        return None
    if number < minimum:
        problems.append(Said(_("${field}: must be at least ${minimum}"), field=name,
                             minimum=minimum))
        return None
    return number


def _number_map(values: Mapping[str, Any] | None, name: str, problems: list[str],
                integer: bool = False) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, raw in (values or {}).items():
        if raw in (None, ""):
            continue
        try:
            number = int(str(raw).strip()) if integer else float(str(raw).strip())
        except ValueError:
            problems.append(Said(_("${field} for stratum ${stratum}: ${value} is not a number"),
                                 field=name, stratum=repr(key), value=repr(raw)))
            continue
        if not math.isfinite(number) or number < 0:
            problems.append(Said(_("${field} for stratum ${stratum}: must be zero or more"),
                                 field=name, stratum=repr(key)))
            continue
        out[str(key)] = number
    return out


def parse_stratum_lines(text: str) -> dict[str, str]:
    """``stratum = value`` lines (from a form textarea) as a mapping."""
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        key, sep, value = line.rpartition("=")
        if not sep:
            raise DesignError(Said(_("line ${line}: write it as 'stratum = number'"),
                                   line=repr(line.strip())))
        out[key.strip()] = value.strip()
    return out


def set_design(db: Session, campaign: Campaign, user: str, *, n: Any,
               allocation: str = "proportional", min_per_stratum: Any = 0,
               max_per_stratum: Any = None, m_per_psu: Any = None,
               sds: Mapping[str, Any] | None = None, sd_column: str | None = None,
               quotas: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Check and store the design of a draft campaign (every problem listed)."""
    if campaign.status != "draft":
        raise DesignError(Said(_("campaign ${code} is ${status}: the design cannot change "
                               "after the draw"), code=campaign.code, status=campaign.status))
    problems: list[str] = []
    kind = frame_kind(campaign)
    if kind is None:
        problems.append(Said(_("frame: upload the frame before the design")))
    design: dict[str, Any] = {"frame": (campaign.design or {}).get("frame", {})}
    design["n"] = _int(n, "n", problems, minimum=1)
    if allocation not in ALLOCATIONS:
        problems.append(Said(_("allocation: ${allocation} is not one of ${choices}"),
                             allocation=repr(allocation), choices=", ".join(ALLOCATIONS)))
    design["allocation"] = allocation
    design["min_per_stratum"] = _int(min_per_stratum or 0, "min_per_stratum", problems) or 0
    design["max_per_stratum"] = _int(max_per_stratum, "max_per_stratum", problems, minimum=1,
                                     optional=True)
    if (design["max_per_stratum"] is not None
            and design["max_per_stratum"] < design["min_per_stratum"]):
        problems.append(Said(_("max_per_stratum: smaller than min_per_stratum")))
    if kind == "cluster":
        design["m_per_psu"] = _int(m_per_psu, "m_per_psu", problems, minimum=1)
    strata = {s.stratum: s for s in db.scalars(sa.select(CampaignStratum).where(
        CampaignStratum.campaign_id == campaign.id))}
    design["sds"] = _number_map(sds, "sd", problems)
    design["sd_column"] = (sd_column or "").strip() or None
    design["quotas"] = {k: int(v) for k, v in _number_map(quotas, "quota", problems,
                                                           integer=True).items()}
    for name in ("sds", "quotas"):
        for key in design[name]:
            if strata and key not in strata:
                problems.append(Said(_("${field}: ${stratum} is not a stratum of the frame "
                                       "(strata: ${strata})"), field=name,
                                     stratum=repr(key), strata=", ".join(sorted(strata))))
    if design["sd_column"] and kind and design["sd_column"] not in (
            design["frame"].get("columns") or _frame_columns(db, campaign)):
        problems.append(Said(_("sd_column: no column ${column} among the frame's kept "
                               "columns (declare it as a column to keep when uploading "
                               "the frame)"), column=repr(design["sd_column"])))
    if allocation == "neyman" and not design["sds"] and not design["sd_column"]:
        problems.append(Said(_("neyman: give a standard deviation per stratum or an SD "
                               "column")))
    if not problems and strata:
        try:
            allocate_campaign(db, campaign, design)
        except DesignError as exc:
            problems.extend(exc.problems)
    if problems:
        raise DesignError("the design was not saved", problems)
    campaign.design = design
    for label, stratum in strata.items():
        stratum.quota = design["quotas"].get(label)
    audit.record(db, actor=user, action="campaign.design", target=campaign.code,
                     detail={k: v for k, v in design.items() if k != "frame"})
    db.flush()
    return design


def _frame_columns(db: Session, campaign: Campaign) -> list[str]:
    upload = current_upload(db, campaign)
    return list(upload.columns) if upload else []


def _stratum_sds(db: Session, campaign: Campaign, design: Mapping[str, Any],
                 labels: list[str]) -> dict[str, float]:
    """S_h per stratum for Neyman: typed values win over the SD column."""
    sds: dict[str, float] = {}
    column = design.get("sd_column")
    problems: list[str] = []
    if column:
        for unit in db.scalars(sa.select(FrameUnit).where(FrameUnit.campaign_id == campaign.id)
                               .order_by(FrameUnit.row_number)):
            raw = str((unit.attributes or {}).get(column, "")).strip()
            try:
                value = float(raw)
            except ValueError:
                problems.append(Said(_("row ${row}, column ${column}: ${value} is not a "
                                       "number"), row=unit.row_number, column=repr(column),
                                     value=repr(raw)))
                continue
            if not math.isfinite(value) or value < 0:
                problems.append(Said(_("row ${row}, column ${column}: must be >= 0"),
                                     row=unit.row_number, column=repr(column)))
            elif unit.stratum in sds and sds[unit.stratum] != value:
                problems.append(Said(_("row ${row}, column ${column}: ${value} differs from "
                                       "${earlier} earlier in stratum ${stratum} (one SD per "
                                       "stratum)"), row=unit.row_number, column=repr(column),
                                     value=f"{value:g}", earlier=f"{sds[unit.stratum]:g}",
                                     stratum=repr(unit.stratum)))
            else:
                sds[unit.stratum] = value
    sds.update({k: float(v) for k, v in design.get("sds", {}).items()})
    missing = [label for label in labels if label not in sds]
    if missing:
        if len(missing) > 1:
            problems.append(Said(_("neyman: no standard deviation for stratum ${stratum} and "
                                   "${more} more"), stratum=repr(missing[0]),
                                 more=len(missing) - 1))
        else:
            problems.append(Said(_("neyman: no standard deviation for stratum ${stratum}"),
                                 stratum=repr(missing[0])))
    if problems:
        raise DesignError("Neyman allocation needs one SD per stratum", problems[:50])
    return sds


def allocate_campaign(db: Session, campaign: Campaign, design: Mapping[str, Any] | None = None
                      ) -> dict[str, int]:
    """n_h per stratum for the design (units, or clusters for a cluster frame)."""
    design = design if design is not None else campaign.design
    strata = db.scalars(sa.select(CampaignStratum).where(
        CampaignStratum.campaign_id == campaign.id).order_by(CampaignStratum.stratum)).all()
    if not strata:
        raise DesignError(Said(_("frame: upload the frame first")))
    if not design.get("n"):
        raise DesignError(Said(_("design: set the sample size first")))
    labels = [s.stratum for s in strata]
    sizes = pd.Series({s.stratum: float(s.population) for s in strata})
    rows = {s.stratum: s.frame_rows for s in strata}
    cap = design.get("max_per_stratum")
    max_n = {k: min(rows[k], cap) if cap else rows[k] for k in labels}
    n = int(design["n"])
    if n > sum(max_n.values()):
        raise DesignError(Said(_("n: ${n} is more than the ${rows} frame rows the bounds "
                               "allow"), n=n, rows=sum(max_n.values())))
    sds = None
    if design.get("allocation") == "neyman":
        sds = pd.Series(_stratum_sds(db, campaign, design, labels)).reindex(sizes.index)
        if float((sizes * sds).sum()) <= 0:
            raise DesignError(Said(_("neyman: every stratum has SD 0; use another "
                                   "allocation")))
    try:
        result = sampling.allocate(sizes, n, design.get("allocation", "proportional"), sds=sds,
                                   min_n=int(design.get("min_per_stratum") or 0), max_n=max_n)
    except ValueError as exc:
        raise DesignError(f"allocation: {exc}") from None
    return {str(k): int(v) for k, v in result.as_dict().items()}


@dataclass(frozen=True)
class DrawResult:
    """What a draw selected: per stratum n_h, the selected units and planned invitations."""

    seed: int
    allocation: dict[str, int]
    selected: int
    invitations: int


class _Row(NamedTuple):
    id: int
    unit_key: str
    stratum: str
    size: float | None


def _frame_df(db: Session, campaign: Campaign) -> tuple[pd.DataFrame, list[_Row]]:
    """The frame in upload order (the order the seed's random keys follow)."""
    # Core rows on the session's connection (no ORM row processing): 200,000 rows
    units = [_Row._make(row) for row in db.connection().execute(
        sa.select(FrameUnit.id, FrameUnit.unit_key, FrameUnit.stratum, FrameUnit.size)
        .where(FrameUnit.campaign_id == campaign.id).order_by(FrameUnit.row_number))]
    df = pd.DataFrame({"unit_key": [u.unit_key for u in units],
                       "stratum": [u.stratum for u in units],
                       "size": [u.size if u.size is not None else 1.0 for u in units]})
    return df, units


def _select(campaign: Campaign, df: pd.DataFrame, allocation: dict[str, int], seed: int
            ) -> pd.DataFrame:
    """The selected rows (index = frame position) with ``pi1`` and ``certainty``."""
    kind = frame_kind(campaign)
    try:
        if kind == "cluster":
            sample = sampling.pps_sample(df, "size", allocation, seed, stratum="stratum")
            units = sample.units
            return pd.DataFrame({"pi1": units["pi"], "certainty": units["certainty"]})
        sample = sampling.stratified_srs(df, "stratum", allocation, seed, id_col="unit_key")
        units = sample.units
        return pd.DataFrame({"pi1": units["pi"], "certainty": units["pi"] >= 1.0})
    except ValueError as exc:
        raise DesignError(f"draw: {exc}") from None


def replay_draw(db: Session, campaign: Campaign) -> list[str]:
    """The unit keys the stored seed selects on the stored frame (nothing written)."""
    if campaign.seed is None:
        raise DesignError(f"campaign {campaign.code} has not been drawn")
    allocation = {s.stratum: s.allocated for s in campaign.strata}
    df, units = _frame_df(db, campaign)
    chosen = _select(campaign, df, allocation, int(campaign.seed))
    return sorted(units[i].unit_key for i in chosen.index)


def selected_keys(db: Session, campaign: Campaign) -> list[str]:
    return sorted(db.scalars(sa.select(FrameUnit.unit_key).where(
        FrameUnit.campaign_id == campaign.id, FrameUnit.selected.is_(True))))


def draw_sample(db: Session, campaign: Campaign, user: str, seed: int | None = None
                ) -> DrawResult:
    """Draw the sample (sample mode) or fix the quotas (open mode); status -> ready.

    ``seed`` is used when given, else a fresh one from :mod:`secrets`; it is stored."""
    if campaign.status == "closed":
        raise DesignError(Said(_("campaign ${code} is closed"), code=campaign.code))
    if campaign.status != "draft":
        raise DesignError(Said(_("campaign ${code} was already drawn (seed ${seed}); the draw "
                                 "cannot be repeated"), code=campaign.code, seed=campaign.seed))
    if frame_kind(campaign) is None:
        raise DesignError(Said(_("frame: upload the frame first")))
    design = dict(campaign.design or {})
    allocation = allocate_campaign(db, campaign, design)
    if seed is not None and (isinstance(seed, bool) or not 0 <= int(seed) < 2 ** SEED_BITS):
        raise DesignError(Said(_("seed: a whole number from 0 to ${top}"),
                               top=2 ** SEED_BITS - 1))
    seed = int(seed) if seed is not None else new_seed()
    strata = {s.stratum: s for s in campaign.strata}
    kind = frame_kind(campaign)
    m = int(design.get("m_per_psu") or 1)
    selected = invitations = 0
    if campaign.mode == "sample":
        df, units = _frame_df(db, campaign)
        chosen = _select(campaign, df, allocation, seed)
        # only selected rows carry draw values: resetting just those avoids rewriting
        # a 200,000-row frame
        db.execute(sa.update(FrameUnit).where(FrameUnit.campaign_id == campaign.id,
                                              FrameUnit.selected.is_(True))
                   .values(selected=False, pi1=None, certainty=False, n_invitations=0))
        planned: dict[str, int] = {k: 0 for k in strata}
        changes = []
        for position, pi1, certainty in zip(chosen.index, chosen["pi1"],
                                            chosen["certainty"]):
            unit = units[int(position)]
            k = sampling.second_stage_size(m, unit.size) if kind == "cluster" else 1
            changes.append({"id": unit.id, "selected": True, "pi1": float(pi1),
                            "certainty": bool(certainty), "n_invitations": k})
            planned[unit.stratum] += k
            selected += 1
            invitations += k
        if changes:
            db.execute(sa.update(FrameUnit), changes)
        db.expire_all()
        for label, stratum in strata.items():
            stratum.allocated = allocation.get(label, 0)
            stratum.quota = design.get("quotas", {}).get(label, planned[label])
    else:
        for label, stratum in strata.items():
            stratum.allocated = allocation.get(label, 0)
            stratum.quota = design.get("quotas", {}).get(label, allocation.get(label, 0))
    campaign.seed = seed
    campaign.status = "ready"
    campaign.drawn_at = utcnow()
    campaign.drawn_by = user
    audit.record(db, actor=user, action="campaign.draw", target=campaign.code, detail={
       "seed": str(seed), "mode": campaign.mode,
       "design": {k: v for k, v in design.items()},
       "frame_sha256": design.get("frame", {}).get("sha256"),
       "allocation": allocation, "selected": selected, "invitations": invitations})
    db.flush()
    return DrawResult(seed=seed, allocation=allocation, selected=selected,
                      invitations=invitations)
