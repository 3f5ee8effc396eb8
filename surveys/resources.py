"""Who may do what with surveys on staff pages.

Researchers and admins see, import, publish and download; district staff see counts
and download only their own district's responses (scoped in the view); monitors see
the list and counts but never person-level responses.
"""
from __future__ import annotations

from typing import Any

from pyramid.authorization import Allow


class SurveysArea:
    """The staff survey pages under ``/research/surveys``."""

    __acl__ = [
        (Allow, "role:admin", ("survey.view", "survey.import", "survey.download")),
        (Allow, "role:researcher", ("survey.view", "survey.import", "survey.download")),
        (Allow, "role:district", ("survey.view", "survey.download")),
        (Allow, "role:monitor", "survey.view"),
    ]

    def __init__(self, request: Any) -> None:
        self.request = request


def surveys_factory(request: Any) -> SurveysArea:
    return SurveysArea(request)
