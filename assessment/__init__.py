"""The adaptive ability test: the engine (pure logic over ``scoring``) and its delivery.

A Pyramid add-on: ``includeme`` adds the resident pages under ``/test`` and ``/t/``
and the session endpoints of the JSON API.
"""
from __future__ import annotations

from typing import Any


def includeme(config: Any) -> None:
    # start-up cost: only the app needs these; at the top every ``import
    # assessment.engine`` (``learningcity simulate``, the item bank) paid 0.3 s for the
    # JSON API's openapi stack and pyramid's i18n
    from learningcity.api import API_PREFIX
    from learningcity.i18n import _

    from .openapi import SPEC

    config.add_route("assessment.start", "/test")
    config.add_route("assessment.session", "/t/{token}")
    config.add_route("assessment.background", "/t/{token}/background")
    config.add_route("assessment.answer", "/t/{token}/answer")
    config.add_route("assessment.result", "/t/{token}/result")
    config.add_route("assessment.withdraw", "/t/{token}/withdraw")
    config.add_route("assessment.staff_sessions", "/staff/sessions",
                     factory="assessment.views.SessionArea")
    config.add_route("assessment.staff_session", r"/staff/sessions/{id:\d+}",
                     factory="assessment.views.SessionArea")
    config.add_route("api.sessions", API_PREFIX + "/sessions")
    config.add_route("api.session", API_PREFIX + "/sessions/{token}")
    config.add_route("api.session_background", API_PREFIX + "/sessions/{token}/background")
    config.add_route("api.session_answers", API_PREFIX + "/sessions/{token}/answers")
    config.add_route("api.session_result", API_PREFIX + "/sessions/{token}/result")
    config.add_route("api.session_withdraw", API_PREFIX + "/sessions/{token}/withdraw")
    config.add_api_spec(SPEC)
    config.registry.setdefault("home_links", []).append(
        {"route": "assessment.start", "label": _("Take the lifelong-learning test"),
         "order": 10})
    config.registry.setdefault("staff_links", []).append(
        {"route": "assessment.staff_sessions", "label": _("Test sessions"), "order": 20,
         "roles": ("district", "researcher", "admin")})
    config.add_translation_dirs("assessment:locale/")
    config.scan(".views")
