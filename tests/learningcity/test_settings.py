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
    settings = load_settings({"sqlalchemy.url": "sqlite:///x.sqlite"})
    assert settings["sqlalchemy.url"] == "postgresql+psycopg://u@h/main"
    assert settings["monitoring.sqlalchemy.url"] == "postgresql+psycopg://u@h/mon"
    assert settings["learningcity.secret"] == "s" * 40


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
