"""Closing a campaign: freeze it, then compute its weights and its aggregates.

The step that joins the two wings: fieldwork (the campaign is frozen: no edits, draws,
invitations or answers) and results (weights, then the monitoring database). A failing
step is reported and never undoes the close. Each step says what happened in words the
officer can act on (:class:`CloseStep`: an outcome and translatable messages), so the
close page and ``learningcity campaign close`` show the same account of it.

**Resumable across the two databases.** The main database (campaign, weights) and the
monitoring database (aggregates) commit separately, main first; when the monitoring
commit is lost (a dropped connection) the campaign is closed without aggregates. Closing
such a campaign again is not refused as "already closed": :func:`aggregates_pending`
sees weights in the main database and no run in the monitoring one, and the close
computes the missing aggregates (the weights are kept). Once they are there, closing
again is refused.

With ``contact_retention_days`` 0 (``monitoring.contact_retention_days``, the default)
the close also removes the frame's contact columns
(:func:`monitoring.fieldwork.retention.purge_contacts`).
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learningcity import audit
from learningcity.db import utcnow
from learningcity.i18n import _
from monitoring.fieldwork.campaigns import CampaignError
from monitoring.fieldwork.entry import refresh_statuses
from monitoring.fieldwork.models import Campaign, Invitation
from monitoring.fieldwork.retention import purge_contacts
from monitoring.results.aggregate import aggregate_campaign
from monitoring.results.models import WeightRun
from monitoring.results.respondents import CampaignSources, campaign_sources
from monitoring.results.warehouse import has_aggregates
from monitoring.results.weighting import compute_weights

log = logging.getLogger(__name__)

#: a step's outcome, worst last: the page shows a word and an icon for each
OUTCOMES = ("ok", "warning", "skipped", "failed")
#: the steps, in the order they run
STEP_NAMES = ("weights", "aggregates")

# the messages a step can carry (mapping names in ${...}); translated where shown
NO_INVITATIONS = _("No invitation was issued, so no one could answer: no weights and no "
                   "results.")
NO_COMPLETES = _("No respondent completed the campaign: no weights and no results.")
COMPLETES = _("${completed} of ${sampled} invitations completed; ${unfinished} started "
              "without finishing.")
EMPTY_STRATUM = _("Stratum ${stratum} has no respondents: its share of the weight is "
                  "carried by stratum ${donor}.")
EMPTY_STRATUM_FAILED = _("Stratum ${stratum} has no respondents.")
NO_MARGIN = _("Not calibrated to population counts: there is no active population margin.")
NOT_CALIBRATED = _("Not calibrated to population counts: ${reason}.")
WEIGHTS_DONE = _("Weights computed for ${n} respondents (effective sample size ${n_eff}).")
NOT_COMPUTED = _("Not computed: ${reason}")
AGGREGATES_SKIPPED = _("Not computed because the weights were not: the monitoring pages "
                       "show no results for this campaign.")
NO_MONITORING_DB = _("Not computed: no monitoring database was given to the close.")
AGGREGATES_DONE = _("${rows} results written to the monitoring database from ${n} "
                    "respondents.")
WEIGHTS_KEPT = _("Weights kept from the close on ${closed_at}; the results for the "
                 "monitoring database were missing and are computed now.")
WITHHELD = _("${withheld} of ${rows} results (${share}) are withheld: too few respondents or "
             "too imprecise to publish.")


@dataclass
class CloseStep:
    """One step of the close: ``outcome`` is ok, warning, skipped or failed; ``messages``
    are translation strings (with their mapping) saying what happened and why."""

    name: str
    outcome: str = "ok"
    messages: list[Any] = field(default_factory=list)

    def say(self, message: Any, outcome: str | None = None) -> None:
        """Add a message; ``outcome`` raises the step's outcome (never lowers it)."""
        self.messages.append(message)
        if outcome is not None and OUTCOMES.index(outcome) > OUTCOMES.index(self.outcome):
            self.outcome = outcome

    def record(self) -> dict[str, Any]:
        """The step as JSON for the audit trail: outcome, message ids and their mappings."""
        return {"outcome": self.outcome,
                "messages": [{"msgid": str(m), "mapping": dict(getattr(m, "mapping", None)
                                                               or {})}
                             for m in self.messages]}


@dataclass
class CloseOutcome:
    """What closing did: each step in order (:attr:`results`); :attr:`steps` maps a step's
    name to its outcome word, e.g. ``{"weights": "ok", "aggregates": "warning"}``."""

    campaign: str
    results: list[CloseStep] = field(default_factory=list)

    @property
    def steps(self) -> dict[str, str]:
        return {s.name: s.outcome for s in self.results}

    @property
    def failed(self) -> bool:
        """Whether any step failed (the CLI exits 1, the page says so)."""
        return any(s.outcome == "failed" for s in self.results)

    def step(self, name: str) -> CloseStep:
        return next(s for s in self.results if s.name == name)


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def _response_counts(db: Session, campaign: Campaign) -> dict[str, dict[str, int]]:
    """stratum -> {status: count} over the campaign's invitations (void ones left out)."""
    counts: dict[str, dict[str, int]] = {}
    for stratum, status, n in db.execute(
            sa.select(Invitation.stratum, Invitation.status, sa.func.count(Invitation.id))
            .where(Invitation.campaign_id == campaign.id, Invitation.status != "void")
            .group_by(Invitation.stratum, Invitation.status)):
        counts.setdefault(stratum, {})[status] = int(n)
    return counts


def _weights_report(step: CloseStep, run: Any, completed: int) -> None:
    """Messages from a stored weight run: strata weighted elsewhere, calibration skipped."""
    method = run.method or {}
    for stratum, donor in sorted((method.get("collapsed") or {}).items()):
        step.say(_(EMPTY_STRATUM, mapping={"stratum": stratum, "donor": donor}), "warning")
    skipped = (method.get("calibration") or {}).get("skipped")
    if skipped == "no active population margin":
        step.say(NO_MARGIN, "warning")
    elif skipped:
        step.say(_(NOT_CALIBRATED, mapping={"reason": skipped}), "warning")
    n_eff = (run.summary or [{}])[-1].get("n_eff")
    step.say(_(WEIGHTS_DONE, mapping={"n": completed, "n_eff": "–" if n_eff is None
                                      else f"{n_eff:.1f}"}))


def aggregates_pending(db: Session, monitoring_db: Session | None, campaign: Campaign
                       ) -> bool:
    """Whether a closed campaign has weights but no results in the monitoring database
    (its monitoring write was lost): closing it again computes them."""
    if campaign.status != "closed" or monitoring_db is None:
        return False
    weighted = db.scalar(sa.select(WeightRun.id).where(
        WeightRun.campaign_id == campaign.id, WeightRun.current.is_(True)).limit(1))
    return weighted is not None and not has_aggregates(monitoring_db, campaign.code)


def close_campaign(db: Session, campaign: Campaign, user: str,
                   monitoring_db: Session | None = None, *,
                   contact_retention_days: int = 0) -> CloseOutcome:
    """Freeze the campaign (no edits, draws, invitations or answers), then compute its
    weights (:func:`~monitoring.results.weighting.compute_weights`) and aggregates
    (:func:`~monitoring.results.aggregate.aggregate_campaign`), each in a savepoint; a
    failing step is reported in the outcome and the close stands. A closed campaign
    whose aggregates are missing (:func:`aggregates_pending`) gets them now."""
    if campaign.status == "closed":
        if aggregates_pending(db, monitoring_db, campaign):
            return _resume(db, campaign, user, monitoring_db)
        raise CampaignError(f"campaign {campaign.code} is already closed")
    campaign.status = "closed"
    campaign.closed_at = utcnow()
    campaign.closed_by = user
    audit.record(db, actor=user, action="campaign.close", target=campaign.code, detail={})
    db.flush()
    outcome = CloseOutcome(campaign=campaign.code)
    weights = CloseStep("weights")
    aggregates = CloseStep("aggregates")
    outcome.results = [weights, aggregates]
    read: dict[str, CampaignSources] = {}
    try:
        with db.begin_nested():
            # the campaign is frozen now: its sessions and responses are read once, here,
            # and serve the invitation statuses, the weights and the aggregates
            read["sources"] = campaign_sources(db, campaign)
            refresh_statuses(db, campaign, read["sources"].finished())
            counts = _response_counts(db, campaign)
            sampled = sum(sum(c.values()) for c in counts.values())
            completed = sum(c.get("completed", 0) for c in counts.values())
            if not sampled:
                weights.say(NO_INVITATIONS, "failed")
            elif not completed:
                weights.say(NO_COMPLETES, "failed")
            else:
                weights.say(_(COMPLETES, mapping={
                    "completed": completed, "sampled": sampled,
                    "unfinished": sum(c.get("started", 0) for c in counts.values())}))
                try:
                    run = compute_weights(db, campaign, user, sources=read["sources"])
                except Exception as exc:  # reported to the user; the close stands
                    log.warning("close %s: weights failed: %s", campaign.code, exc)
                    for stratum in sorted(s for s, c in counts.items()
                                          if not c.get("completed")):
                        weights.say(_(EMPTY_STRATUM_FAILED, mapping={"stratum": stratum}))
                    weights.say(_(NOT_COMPUTED, mapping={"reason": str(exc)}), "failed")
                    raise _Undo() from None
                _weights_report(weights, run, completed)
    except _Undo:
        pass
    except Exception as exc:  # reading the sessions failed: reported, the close stands
        log.warning("close %s: weights failed: %s", campaign.code, exc)
        weights.say(_(NOT_COMPUTED, mapping={"reason": str(exc)}), "failed")
    if weights.outcome == "failed":
        aggregates.say(AGGREGATES_SKIPPED, "skipped")
    elif monitoring_db is None:
        aggregates.say(NO_MONITORING_DB, "failed")
    else:
        _aggregate(db, monitoring_db, campaign, read["sources"], aggregates)
    if contact_retention_days == 0:
        purged = purge_contacts(db, campaign, now=campaign.closed_at)
        if purged:
            audit.record(db, actor=user, action="campaign.contacts_purged",
                         target=campaign.code, detail={"frame_units": purged})
    audit.record(db, actor=user, action="campaign.close_steps", target=campaign.code,
                 detail={s.name: s.record() for s in outcome.results})
    db.flush()
    return outcome


def _resume(db: Session, campaign: Campaign, user: str, monitoring_db: Session
            ) -> CloseOutcome:
    """The aggregates step of a close whose monitoring write was lost (weights kept)."""
    outcome = CloseOutcome(campaign=campaign.code)
    weights = CloseStep("weights")
    aggregates = CloseStep("aggregates")
    outcome.results = [weights, aggregates]
    weights.say(_(WEIGHTS_KEPT, mapping={
        "closed_at": campaign.closed_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}))
    try:
        sources = campaign_sources(db, campaign)
    except Exception as exc:  # reported; the next close tries again
        log.warning("close %s (resumed): reading the sessions failed: %s", campaign.code, exc)
        aggregates.say(_(NOT_COMPUTED, mapping={"reason": str(exc)}), "failed")
    else:
        _aggregate(db, monitoring_db, campaign, sources, aggregates)
    audit.record(db, actor=user, action="campaign.close_resumed", target=campaign.code,
                 detail={s.name: s.record() for s in outcome.results})
    db.flush()
    return outcome


class _Undo(Exception):
    """Rolls a step's savepoint back after its failure has been reported."""


def _aggregate(db: Session, monitoring_db: Session, campaign: Campaign,
               sources: CampaignSources, step: CloseStep) -> None:
    try:
        with db.begin_nested():
            summary = aggregate_campaign(db, monitoring_db, campaign.code, sources=sources)
    except Exception as exc:  # reported to the user; the close stands
        log.warning("close %s: aggregates failed: %s", campaign.code, exc)
        step.say(_(NOT_COMPUTED, mapping={"reason": str(exc)}), "failed")
        return
    step.say(_(AGGREGATES_DONE, mapping={"rows": summary.n_rows,
                                         "n": summary.n_respondents}))
    if summary.n_rows and summary.n_suppressed:
        # withholding is how small cells are published (the NCHS standard): said, with
        # its share, but not a warning (the weights step warns of what causes it)
        share = summary.n_suppressed / summary.n_rows
        step.say(_(WITHHELD, mapping={"withheld": summary.n_suppressed, "rows": summary.n_rows,
                                      "share": _percent(share)}))


def translated_steps(outcome: CloseOutcome, translate: Any) -> list[dict[str, Any]]:
    """Each step as the page and the command line show it: its name, outcome and messages
    in the language of ``translate`` (a localizer's translate)."""
    return [{"name": s.name, "label": translate(STEP_LABELS[s.name]), "outcome": s.outcome,
             "word": translate(OUTCOME_LABELS[s.outcome]),
             "messages": [translate(m) for m in s.messages]} for s in outcome.results]


STEP_LABELS = {"weights": _("Weights"), "aggregates": _("Results for the monitoring pages")}
OUTCOME_LABELS = {"ok": _("Done"), "warning": _("Done, with warnings"),
                  "skipped": _("Skipped"), "failed": _("Failed")}
