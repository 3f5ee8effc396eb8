"""Settings: environment overrides, and production refusing a default secret."""
from __future__ import annotations

from pathlib import Path

import pytest
from pyramid.exceptions import ConfigurationError
from pyramid.paster import get_appsettings

from learningcity.settings import DEVELOPMENT_SECRET, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_environment_overrides_urls_and_secret(monkeypatch) -> None:
    monkeypatch.setenv("LEARNINGCITY_DATABASE_URL", "postgresql+psycopg://u@h/main")
    monkeypatch.setenv("LEARNINGCITY_MONITORING_URL", "postgresql+psycopg://u@h/mon")
    monkeypatch.setenv("LEARNINGCITY_SECRET", "s" * 40)
    monkeypatch.setenv("LEARNINGCITY_PUBLIC_URL", "https://learn.example.cn")
    settings = load_settings({"sqlalchemy.url": "sqlite:///x.sqlite",
                              "learningcity.public_url": "http://wrong.example"})
    assert settings["sqlalchemy.url"] == "postgresql+psycopg://u@h/main"
    assert settings["monitoring.sqlalchemy.url"] == "postgresql+psycopg://u@h/mon"
    assert settings["learningcity.secret"] == "s" * 40
    assert settings["learningcity.public_url"] == "https://learn.example.cn"


def test_monitoring_url_defaults_to_main(monkeypatch) -> None:
    monkeypatch.delenv("LEARNINGCITY_MONITORING_URL", raising=False)
    monkeypatch.delenv("LEARNINGCITY_DATABASE_URL", raising=False)
    settings = load_settings({"sqlalchemy.url": "sqlite:///x.sqlite",
                              "learningcity.secret": "s" * 40})
    assert settings["monitoring.sqlalchemy.url"] == "sqlite:///x.sqlite"


@pytest.mark.parametrize("secret", ["", DEVELOPMENT_SECRET, "change-me", "short-secret"])
def test_production_refuses_default_or_weak_secret(monkeypatch, secret) -> None:
    monkeypatch.delenv("LEARNINGCITY_DATABASE_URL", raising=False)
    if secret:
        monkeypatch.setenv("LEARNINGCITY_SECRET", secret)
    else:
        monkeypatch.delenv("LEARNINGCITY_SECRET", raising=False)
    settings = dict(get_appsettings(str(ROOT / "production.ini")))
    with pytest.raises(ConfigurationError, match="LEARNINGCITY_SECRET"):
        load_settings(settings)


def test_production_starts_with_a_real_secret(monkeypatch) -> None:
    monkeypatch.setenv("LEARNINGCITY_SECRET", "k" * 48)
    settings = load_settings(dict(get_appsettings(str(ROOT / "production.ini"))))
    assert settings["learningcity.secure_cookies"] is True
    assert settings["learningcity.auto_migrate"] is False


def test_development_ini_uses_sqlite_beside_it(monkeypatch) -> None:
    monkeypatch.delenv("LEARNINGCITY_DATABASE_URL", raising=False)
    settings = load_settings(dict(get_appsettings(str(ROOT / "development.ini"))))
    assert settings["sqlalchemy.url"] == f"sqlite:///{ROOT}/learningcity.sqlite"


def test_app_settings_are_typed_once_with_defaults() -> None:
    from learningcity.settings import AppSettings, app_settings

    parsed = app_settings({"learningcity.secret": "s" * 40, "sqlalchemy.url": "sqlite://",
                           "assessment.idle_minutes": " 15 ", "surveys.idle_days": "",
                           "learningcity.secure_cookies": "true",
                           "learningcity.upload_routes": "a.b  c.d"})
    assert isinstance(parsed, AppSettings)
    assert parsed.test_idle_minutes == 15 and parsed.survey_idle_days == 60
    assert parsed.retention_years == 3 and parsed.secure_cookies is True
    assert parsed.monitoring_url == "sqlite://" and not parsed.separate_monitoring_database
    assert parsed.upload_routes == ("a.b", "c.d")


@pytest.mark.parametrize(("key", "raw", "says"), [
    ("assessment.idle_minutes", "soon", "whole number"),
    ("assessment.retention_years", "0", "at least 1"),
    ("monitoring.demo_results_size", "-2", "at least 0")])
def test_app_settings_refuse_bad_values_naming_the_key(key, raw, says) -> None:
    from pyramid.exceptions import ConfigurationError

    from learningcity.settings import app_settings

    with pytest.raises(ConfigurationError, match=rf"{key}.*{says}"):
        app_settings({"learningcity.secret": "s" * 40, "sqlalchemy.url": "sqlite://", key: raw})


def test_views_read_the_parsed_settings(testapp) -> None:
    """The app parses its settings at start-up and hands the same object to every request."""
    registry = testapp.app.registry
    assert registry.app_settings.secret == registry.settings["learningcity.secret"]
