"""Background questions a blueprint may ask before the test (used for group results).

The answer choices are the city's one person vocabulary (``learningcity.people``);
district choices come from the database. :func:`check_answers` refuses anything else,
so a posted value can never be a claim outside the questions (e.g. a district staff
scoping might trust).
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from learningcity.i18n import _
from learningcity.people import CHOICES

__all__ = ["CHOICES", "FIELDS", "QUESTIONS", "STREET_MAX", "check_answers"]

#: the background fields, in the order they are asked
FIELDS = ("age_band", "sex", "district", "street", "occupation", "education")
#: the questions without fixed choices: field -> question
QUESTIONS = {"district": _("Your district"), "street": _("Your street or town (optional)")}
#: the longest street answer accepted (free text, bounded)
STREET_MAX = 64


def check_answers(answers: Mapping[str, Any], *, districts: Collection[str],
                  fixed_district: str | None = None
                  ) -> tuple[dict[str, str], dict[str, Any]]:
    """The clean answers and the problems (field -> translatable message).

    Empty answers are skipped (every question may be left out); fields that are not
    background questions are ignored (a form's CSRF token). ``fixed_district``: the
    campaign's district, the only district answer accepted.
    """
    clean: dict[str, str] = {}
    errors: dict[str, Any] = {}
    for name in FIELDS:
        raw = answers.get(name)
        if raw is None:
            continue
        if not isinstance(raw, str):
            errors[name] = _("This answer is not valid; please choose again.")
            continue
        value = raw.strip()
        if not value:
            continue
        if name in CHOICES:
            if value not in {code for code, _label in CHOICES[name][1]}:
                errors[name] = _("Please choose one of the answers offered.")
                continue
        elif name == "district":
            if value not in districts:
                errors[name] = _("Please choose one of the districts offered.")
                continue
            if fixed_district is not None and value != fixed_district:
                errors[name] = _("Your invitation belongs to another district; please "
                                 "choose the district shown.")
                continue
        elif name == "street":
            if len(value) > STREET_MAX:
                errors[name] = _("Please use at most ${n} characters.",
                                 mapping={"n": STREET_MAX})
                continue
            if any(ord(c) < 32 or 0x7f <= ord(c) < 0xa0 for c in value):
                errors[name] = _("Please type plain text (no control characters).")
                continue
        clean[name] = value
    return clean, errors
