"""Settings: read once from the .ini, overridden by environment variables for secrets and URLs."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
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
    public_url = os.environ.get("LEARNINGCITY_PUBLIC_URL")
    if public_url:  # the address residents open; invitation links and QR codes use it
        settings["learningcity.public_url"] = public_url
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


@dataclass(frozen=True)
class AppSettings:
    """The settings views and services read, parsed once at start-up (``request.app_settings``)."""

    secret: str
    database_url: str
    monitoring_url: str
    secure_cookies: bool = False
    auto_migrate: bool = False
    demo_content: bool = False
    retry_transient: bool = True
    #: minutes without an answer before a test session counts as abandoned
    test_idle_minutes: int = 60
    #: years residents' answers are kept (shown on the consent screens)
    retention_years: int = 3
    #: days without an answer before a survey session counts as abandoned
    survey_idle_days: int = 60
    #: residents drawn per simulated demo campaign (0: no simulated monitoring results)
    demo_results_size: int = 0
    max_body_bytes: int = 64 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024
    upload_routes: tuple[str, ...] = ()

    @property
    def separate_monitoring_database(self) -> bool:
        """True when the monitoring database has a URL of its own."""
        return self.monitoring_url != self.database_url


def whole_number(settings: Mapping[str, Any], key: str, default: int, minimum: int = 0) -> int:
    """A whole-number setting (``default`` when unset); ValueError naming the key when it
    is not a whole number or below ``minimum`` (the purgers read theirs with this too)."""
    raw = settings.get(key)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{key} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{key} must be at least {minimum}, not {value}")
    return value


def _int(settings: dict[str, Any], key: str, default: int, minimum: int = 0) -> int:
    try:
        return whole_number(settings, key, default, minimum)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def app_settings(settings: dict[str, Any]) -> AppSettings:
    """Typed settings from the dict :func:`load_settings` returns; a clear error names the key."""
    return AppSettings(
        secret=settings["learningcity.secret"],
        database_url=settings["sqlalchemy.url"],
        monitoring_url=settings.get("monitoring.sqlalchemy.url") or settings["sqlalchemy.url"],
        secure_cookies=asbool(settings.get("learningcity.secure_cookies", False)),
        auto_migrate=asbool(settings.get("learningcity.auto_migrate", False)),
        demo_content=asbool(settings.get("learningcity.demo_content", False)),
        retry_transient=asbool(settings.get("learningcity.retry_transient", True)),
        test_idle_minutes=_int(settings, "assessment.idle_minutes", 60, 1),
        retention_years=_int(settings, "assessment.retention_years", 3, 1),
        survey_idle_days=_int(settings, "surveys.idle_days", 60, 1),
        demo_results_size=_int(settings, "monitoring.demo_results_size", 0),
        max_body_bytes=_int(settings, "learningcity.max_body_bytes", 64 * 1024, 1),
        max_upload_bytes=_int(settings, "learningcity.max_upload_bytes", 10 * 1024 * 1024, 1),
        upload_routes=tuple(str(settings.get("learningcity.upload_routes", "")).split()),
    )


def includeme(config: Any) -> None:
    """Parse the settings once: ``config.registry.app_settings`` and ``request.app_settings``."""
    config.registry.app_settings = app_settings(config.registry.settings)
    config.add_request_method(lambda request: request.registry.app_settings, "app_settings",
                              reify=True)
