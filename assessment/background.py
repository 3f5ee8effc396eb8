"""Background questions a blueprint may ask before the test (used for group results)."""
from __future__ import annotations

from learningcity.i18n import _

#: field -> (question, [(value, label), ...]); district choices come from the database
CHOICES = {
    "age_band": (_("Your age"), [
        ("18-29", _("18 to 29")), ("30-44", _("30 to 44")), ("45-59", _("45 to 59")),
        ("60-69", _("60 to 69")), ("70+", _("70 or older"))]),
    "sex": (_("Sex"), [("female", _("Female")), ("male", _("Male"))]),
    "occupation": (_("What do you mainly do?"), [
        ("student", _("Student")), ("farmer", _("Farmer")),
        ("industrial_worker", _("Industrial worker")),
        ("migrant_worker", _("Migrant worker")), ("civil_servant", _("Civil servant")),
        ("service", _("Service or office work")), ("self_employed", _("Self-employed")),
        ("retired", _("Retired")), ("other", _("Other"))]),
    "education": (_("Your highest education"), [
        ("primary", _("Primary school or less")), ("junior", _("Junior secondary school")),
        ("senior", _("Senior secondary or vocational school")),
        ("college", _("College or university"))]),
}
QUESTIONS = {"district": _("Your district"), "street": _("Your street or town (optional)")}
