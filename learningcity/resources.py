"""Resources with ACLs: what a staff role may see, and district scoping."""
from __future__ import annotations

from typing import Any

from pyramid.authorization import Allow
from pyramid.httpexceptions import HTTPNotFound

from .models import District
from .security import StaffArea


def staff_factory(request: Any) -> StaffArea:
    return StaffArea(request)


class DistrictResource:
    """One district's pages: its own district staff, monitors and admins may look."""

    def __init__(self, district: District) -> None:
        self.district = district
        self.__acl__ = [
            (Allow, "role:admin", ("view", "edit")),
            (Allow, "role:monitor", "view"),
            (Allow, f"district:{district.code}", ("view", "edit")),
        ]


def district_factory(request: Any) -> DistrictResource:
    district = request.dbsession.get(District, request.matchdict["code"])
    if district is None:
        raise HTTPNotFound()
    return DistrictResource(district)
