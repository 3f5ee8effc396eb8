"""Settings: read once from the .ini, overridden by environment variables for secrets and URLs."""
from __future__ import annotations

import os
from typing import Any

from pyramid.exceptions import ConfigurationError
from pyramid.settings import asbool

from .db import database_urls

#: The secret shipped in development.ini; production refuses to start with it.
DEVELOPMENT_SECRET = "development-only-secret-do-not-use-in-production"
MIN_SECRET_LENGTH = 32


def load_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Apply environment overrides and check what production must not run without."""
    settings = dict(settings)
    url, monitoring_url = database_urls(settings)
    settings["sqlalchemy.url"] = url
    settings["monitoring.sqlalchemy.url"] = monitoring_url
    secret = os.environ.get("LEARNINGCITY_SECRET") or settings.get("learningcity.secret") or ""
    settings["learningcity.secret"] = secret
    if asbool(settings.get("learningcity.require_secret", True)):
        if secret in ("", DEVELOPMENT_SECRET) or secret.lower().startswith("change"):
            raise ConfigurationError(
                "learningcity.secret is unset or the default: set LEARNINGCITY_SECRET to a "
                f"random string of at least {MIN_SECRET_LENGTH} characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe(48))')")
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"LEARNINGCITY_SECRET is too short ({len(secret)} characters); "
                f"use at least {MIN_SECRET_LENGTH}")
    elif not secret:
        raise ConfigurationError("learningcity.secret is empty")
    for key, default in (("learningcity.auto_migrate", "false"),
                         ("learningcity.demo_content", "false"),
                         ("learningcity.secure_cookies", "false")):
        settings[key] = asbool(settings.get(key, default))
    return settings
