"""Learning-needs surveys: versioned definitions, safe skip logic, delivery and scale scoring.

A Pyramid add-on: ``includeme`` adds the resident survey pages (``/survey``,
``/s/{token}``), the survey endpoints of the JSON API, the staff pages under
``/research/surveys``, and the "continue to the survey" hook that the ability-test
result page shows (registry list ``after_test_links``).
"""
from __future__ import annotations

from typing import Any


def includeme(config: Any) -> None:
    # Only the app needs these: at the top they would make every ``import
    # surveys.definition`` (the CLI, monitoring's indicators) load pyramid's i18n
    # (+0.13 s), openapi_core and the views with the services (+0.9 s), measured with
    # python -X importtime.
    from learningcity.api import API_PREFIX
    from learningcity.i18n import _

    from .openapi import SPEC
    from .views import after_test_link

    staff = "surveys.resources.surveys_factory"
    config.add_route("surveys.start", "/survey")
    config.add_route("surveys.after_test", "/survey/after-test")
    config.add_route("surveys.session", "/s/{token}")
    config.add_route("surveys.finish", "/s/{token}/finish")
    config.add_route("surveys.done", "/s/{token}/done")
    config.add_route("surveys.withdraw", "/s/{token}/withdraw")
    config.add_route("surveys.staff_list", "/research/surveys", factory=staff)
    config.add_route("surveys.staff_publish",
                     r"/research/surveys/{code}/v{version:\d+}/publish", factory=staff)
    config.add_route("surveys.staff_download",
                     r"/research/surveys/{code}/v{version:\d+}/{fmt}", factory=staff)
    config.add_route("api.survey_sessions", API_PREFIX + "/survey-sessions")
    config.add_route("api.survey_session", API_PREFIX + "/survey-sessions/{token}")
    config.add_route("api.survey_page", API_PREFIX + "/survey-sessions/{token}/pages/{page}")
    config.add_route("api.survey_back", API_PREFIX + "/survey-sessions/{token}/back")
    config.add_route("api.survey_finish", API_PREFIX + "/survey-sessions/{token}/finish")
    config.add_route("api.survey_result", API_PREFIX + "/survey-sessions/{token}/result")
    config.add_route("api.survey_withdraw", API_PREFIX + "/survey-sessions/{token}/withdraw")
    config.add_api_spec(SPEC)
    config.registry.setdefault("home_links", []).append(
        {"route": "surveys.start", "label": _("Tell us what you would like to learn"),
         "order": 20})
    config.registry.setdefault("staff_links", []).append(
        {"route": "surveys.staff_list", "label": _("Surveys and responses"), "order": 30,
         "roles": ("admin", "researcher", "district", "monitor")})
    config.registry.setdefault("after_test_links", []).append(after_test_link)
    config.add_translation_dirs("surveys:locale/")
    config.scan(".views")
    config.include(".submission_views")
