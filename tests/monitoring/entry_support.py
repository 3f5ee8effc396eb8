"""Helpers for the entry, weighting and respondent-table tests (not collected by pytest).

``ready_campaign`` turns a fixture campaign into a drawn one with invitations made
here directly (plain codes returned), so these tests do not depend on the draw.
``finish_test`` answers a whole adaptive test through the JSON API.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from monitoring.fieldwork.invitations import generate_code, hash_code
from monitoring.fieldwork.models import CampaignStratum, Invitation
from tests.conftest import TEST_SECRET

ADDRESS = "127.0.0.1"


def ready_campaign(db: Any, campaign: Any, strata: dict[str, tuple[float, list[dict]]],
                   ) -> list[tuple[str, Invitation]]:
    """Mark ``campaign`` ready and issue one invitation per prefill dict.

    ``strata``: stratum -> (population N_h, [prefill, ...]); pi = n_h / N_h.
    Returns [(code, invitation), ...] in order.
    """
    out = []
    for stratum, (population, prefills) in strata.items():
        db.add(CampaignStratum(campaign_id=campaign.id, stratum=stratum, values={},
                               population=population, frame_rows=int(population),
                               allocated=len(prefills)))
        for k, prefill in enumerate(prefills):
            code = generate_code()
            inv = Invitation(campaign_id=campaign.id, public_id=f"{campaign.id}{stratum}{k}"[:32],
                             code_hash=hash_code(TEST_SECRET, code), stratum=stratum,
                             pi=len(prefills) / population,
                             prefill={"district": campaign.district_code, **prefill},
                             status="issued")
            db.add(inv)
            out.append((code, inv))
    campaign.status = "ready"
    campaign.drawn_at = dt.datetime.now(dt.UTC)
    db.commit()
    return out


def finish_test(testapp: Any, token: str, choice: int = 1, max_steps: int = 80) -> dict:
    """Answer every item of a test session through the API; returns the last step."""
    step = testapp.get(f"/api/v1/sessions/{token}").json
    if step["status"] == "background":
        step = testapp.post_json(f"/api/v1/sessions/{token}/background",
                                 {"education": "senior"}).json
    for _ in range(max_steps):
        if step["status"] != "testing":
            return step
        item = step["item"]
        step = testapp.post_json(f"/api/v1/sessions/{token}/answers",
                                 {"position": item["position"], "version": item["version"],
                                  "choice": choice}).json
    raise AssertionError("the test did not finish")


def _answer_for(q: dict, rng: Any, overrides: dict) -> dict:
    """Answers for one question as the survey API expects them (valid, varied by rng)."""
    name, kind = q["name"], q["type"]
    choices = [c["name"] for c in q.get("choices", []) if c["name"] not in ("other", "none")]
    if name in overrides:
        return {name: overrides[name]}
    if kind == "single_choice":
        return {name: choices[int(rng.integers(len(choices)))]}
    if kind == "multiple_choice":
        k = int(rng.integers(1, min(3, len(choices)) + 1))
        return {name: [str(c) for c in rng.choice(choices, size=k, replace=False)]}
    if kind in ("integer", "decimal"):
        lo, hi = q.get("min") or 0, q.get("max") or 10
        return {name: int(rng.integers(lo, min(hi, lo + 10) + 1))}
    if kind == "month":
        return {name: "2026-05"}
    if kind == "rating_grid":
        return {item["name"]: choices[int(rng.integers(len(choices)))] for item in q["items"]}
    return {}


def finish_survey(testapp: Any, token: str, seed: int = 0, overrides: dict | None = None,
                  max_pages: int = 30) -> dict:
    """Fill and finish a survey session through the JSON API; returns the finish body."""
    import numpy as np

    rng = np.random.default_rng(seed)
    overrides = overrides or {}
    state = testapp.get(f"/api/v1/survey-sessions/{token}").json
    for _ in range(max_pages):
        if state["status"] != "started" or state["page"] is None:
            break
        answers: dict = {}
        for q in state["page"]["questions"]:
            if q["type"] == "note":
                continue
            if q.get("value") not in (None, "", []) and q["name"] not in overrides:
                answers[q["name"]] = q["value"]  # prefilled: sent again as it is
                continue
            answers.update(_answer_for(q, rng, overrides))
        res = testapp.post_json(
            f"/api/v1/survey-sessions/{token}/pages/{state['page']['name']}",
            {"revision": state["revision"], "answers": answers}, expect_errors=True)
        if res.status_int != 200:
            raise AssertionError(f"survey page {state['page']['name']}: {res.json}")
        previous, state = state, res.json
        if state["page"] is not None and state["page"]["name"] == previous["page"]["name"] \
                and len(state["page"]["questions"]) == len(previous["page"]["questions"]):
            break  # same page, nothing newly shown: the last page stays current
    return testapp.post_json(f"/api/v1/survey-sessions/{token}/finish", {}).json
