"""Labels of the codes pages show (statuses, stop reasons, roles, domains, audit actions).

Stored values stay codes ("operational", "se_target"); templates show
``code_label(value)``, the label in the page's language (unknown codes as they are).
"""
from __future__ import annotations

from typing import Any

from learningcity.i18n import _

CODES = {
    # item status (itembank.models.Item.status)
    "draft": _("Draft"),
    "pilot": _("Pilot"),
    "operational": _("Operational"),
    "retired": _("Retired item"),
    # test session status (assessment.models)
    "consent": _("Consent"),
    "background": _("Background questions"),
    "testing": _("Testing"),
    "finished": _("Finished"),
    "expired": _("Expired"),
    "withdrawn": _("Withdrawn by the resident"),
    # why an adaptive test stopped (assessment.engine.STOP_REASONS)
    "max_items": _("Maximum number of items reached"),
    "no_items": _("No items left"),
    "se_target": _("Target precision reached"),
    "classified": _("Proficiency level determined"),
    "min_info_gain": _("Too little information gained"),
    # staff roles (learningcity.accounts)
    "district": _("District staff"),
    "monitor": _("Monitor"),
    "researcher": _("Researcher"),
    "admin": _("Administrator"),
    # calibration audit actions (itembank)
    "publish": _("Publish"),
    "rollback": _("Roll back"),
}


def code_label(translate: Any, code: str | None) -> str:
    """The label of ``code`` translated with ``translate``; unknown codes as they are."""
    if code is None:
        return ""
    return translate(CODES[code]) if code in CODES else code
