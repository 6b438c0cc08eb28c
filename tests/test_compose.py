"""docker-compose.yml and the Dockerfile agree with service/config.py (Docker does not run here, so the
files are checked by reading them): every FORESIGHT_* name exists, values parse, the URL points at the
compose Postgres with its credentials."""

from __future__ import annotations

from typing import Any

import yaml
from sqlalchemy.engine import make_url

from service.config import Settings
from tests.helpers import REPO_ROOT


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_settings_match_config() -> None:
    compose = _compose()
    environment: dict[str, str] = compose["services"]["foresight"]["environment"]
    known = {f"FORESIGHT_{name.upper()}" for name in Settings.model_fields}
    assert set(environment) <= known, set(environment) - known
    assert set(environment) == known, (
        f"compose should set every setting explicitly: missing {known - set(environment)}"
    )
    settings = Settings(**{name[len("FORESIGHT_") :].lower(): value for name, value in environment.items()})
    assert not settings.is_sqlite and not settings.auto_migrate
    url = make_url(settings.database_url)
    postgres = compose["services"]["postgres"]["environment"]
    assert url.host == "postgres" and url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"] and url.database == postgres["POSTGRES_DB"]
    port = compose["services"]["foresight"]["ports"][0].split(":")[-1]
    assert int(port) == settings.port


def test_service_waits_for_postgres_and_image_migrates() -> None:
    service = _compose()["services"]["foresight"]
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "torch==2.13.0" in dockerfile
    assert "foresight db upgrade" in dockerfile
    for package in ("service", "forecasting", "policies", "migrations"):
        assert f"COPY {package}" in dockerfile
