"""The person vocabulary: age bands, sex, occupation, education and population groups.

Defined once here and read by the test's background questions, the surveys, the
campaign frames and the monitoring results, so every package means the same thing
by "older adult" or "farmer".
"""
from __future__ import annotations

from typing import Any

from .i18n import _

#: age bands residents choose from, youngest first
AGE_BANDS: tuple[str, ...] = ("18-29", "30-44", "45-59", "60-69", "70+")
#: bands that make a person an older adult; ``60+`` is the band frames often use
OLDER_BANDS: frozenset[str] = frozenset({"60-69", "70+", "60+"})
#: bands wholly under 35 (30-44 straddles 35 and is not counted as young people)
YOUNG_BANDS: frozenset[str] = frozenset({"18-29"})

#: field -> (question, [(value, label), ...]) for the background questions
CHOICES: dict[str, tuple[str, list[tuple[str, str]]]] = {
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
#: the answers a person record carries, in display order
PERSON_FIELDS: tuple[str, ...] = ("age_band", "sex", "district", "street", "occupation",
                                  "education")

#: population groups, in the order that picks a person's single ``group`` value
GROUP_ORDER: tuple[str, ...] = ("older_adult", "civil_servant", "farmer", "industrial_worker",
                                "migrant_worker", "young_people")
#: groups defined by the occupation answer having that code
OCCUPATION_GROUPS: tuple[str, ...] = ("farmer", "industrial_worker", "migrant_worker",
                                      "civil_servant")
#: every group code a published cell may carry (``other``: in none of the groups)
GROUP_CODES: tuple[str, ...] = ("older_adult", "farmer", "industrial_worker",
                                                  "migrant_worker", "civil_servant",
                                                  "young_people", "other")
GROUP_LABELS: dict[str, str] = {
    "older_adult": _("Older adults"), "farmer": _("Farmers"),
    "industrial_worker": _("Industrial workers"), "migrant_worker": _("Migrant workers"),
    "civil_servant": _("Civil servants"), "young_people": _("Young people"),
    "other": _("Other"), "female": _("Female"), "male": _("Male")}

#: the older-adult population as a survey expression (every band in :data:`OLDER_BANDS`)
OLDER_ADULT_EXPRESSION = " or ".join(f"${{age_band}} = '{band}'" for band in sorted(OLDER_BANDS))


def groups_of(person: dict[str, Any]) -> list[str]:
    """The population groups a person belongs to, in :data:`GROUP_ORDER`."""
    band, occupation = person.get("age_band"), person.get("occupation")
    out = []
    for code in GROUP_ORDER:
        if code == "older_adult":
            member = band in OLDER_BANDS
        elif code == "young_people":
            member = band in YOUNG_BANDS
        else:
            member = occupation == code
        if member:
            out.append(code)
    return out
