"""Who may use the researcher pages (the route factory of every ``/research/`` page)."""
from __future__ import annotations

from typing import Any

from pyramid.authorization import Allow


class ResearchArea:
    """Researcher pages: researchers and admins may look and publish; no one else."""

    __acl__ = [
        (Allow, "role:researcher", ("research", "publish")),
        (Allow, "role:admin", ("research", "publish")),
    ]

    def __init__(self, request: Any) -> None:
        self.request = request
