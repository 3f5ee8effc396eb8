"""Background questions a blueprint may ask before the test (used for group results).

The answer choices are the city's one person vocabulary (``learningcity.people``);
district choices come from the database.
"""
from __future__ import annotations

from learningcity.i18n import _
from learningcity.people import CHOICES

__all__ = ["CHOICES", "QUESTIONS"]

#: the questions without fixed choices: field -> question
QUESTIONS = {"district": _("Your district"), "street": _("Your street or town (optional)")}
