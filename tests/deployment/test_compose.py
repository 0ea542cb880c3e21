"""docker-compose.yml cannot run here (no Docker engine), so read it carefully instead."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_it_runs_the_production_shape():
    assert {"web", "worker", "mail-worker", "beat", "postgres", "redis"} <= set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_long_running_service_has_a_health_check(name):
    if name == "migrate":
        assert SERVICES[name]["restart"] == "no"
        return
    assert SERVICES[name]["healthcheck"]["test"]


def _app_commands() -> list[list[str]]:
    return [
        s["command"]
        for s in SERVICES.values()
        if s.get("build") or "image" in s and s["image"].startswith("seminar")
    ]


def test_every_manage_py_command_exists():
    commands = [c for c in _app_commands() if c[:2] == ["python", "manage.py"]]
    assert commands
    for command in commands:
        assert command[2] in get_commands(), command


def test_gunicorn_runs_the_projects_wsgi_app_with_its_config_file():
    [web] = [c for c in _app_commands() if c[0] == "gunicorn"]
    config = web[web.index("--config") + 1]
    assert (ROOT / config).is_file()
    module, attribute = web[-1].split(":")
    assert hasattr(importlib.import_module(module), attribute)
    assert "whitenoise.middleware.WhiteNoiseMiddleware" in settings.MIDDLEWARE


def test_the_workers_consume_every_queue_tasks_are_routed_to():
    celery = [c for c in _app_commands() if c[0] == "celery"]
    assert all(c[c.index("-A") + 1] == "seminar_site" for c in celery)
    consumed = {q for c in celery if "worker" in c for q in c[c.index("-Q") + 1].split(",")}
    routed = {r["queue"] for r in settings.CELERY_TASK_ROUTES.values()} | {"celery"}
    assert routed <= consumed
    assert any("beat" in c for c in celery)


def test_redis_never_evicts_and_persists():
    command = " ".join(SERVICES["redis"]["command"])
    assert "--maxmemory-policy noeviction" in command and "--appendonly yes" in command


def test_secrets_come_from_the_environment_and_the_app_runs_in_production_mode():
    env = SERVICES["web"]["environment"]
    assert env["DJANGO_DEBUG"] == "false"
    for name in ("SECRET_KEY", "EMAIL_URL", "ALLOWED_HOSTS"):
        assert env[name].startswith("${") and ":?" in env[name], name


def test_the_dockerfile_installs_the_project_and_builds_messages_and_static():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    assert "compilemessages" in dockerfile and "collectstatic" in dockerfile


def test_production_mode_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY",)}
    env.update(DJANGO_DEBUG="false", DJANGO_SETTINGS_MODULE="seminar_site.settings")
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def _settings_in_a_fresh_process(env: dict[str, str], expression: str) -> str:
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "DJANGO_SETTINGS_MODULE": "seminar_site.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def test_a_secret_can_come_from_a_file(tmp_path):
    """Docker secrets: SECRET_KEY_FILE=/run/secrets/... instead of SECRET_KEY."""
    secret = tmp_path / "secret_key"
    secret.write_text("from-a-file-" + "x" * 40)
    env = {"DJANGO_DEBUG": "false", "SECRET_KEY_FILE": str(secret), "VAR_DIR": str(tmp_path)}
    assert _settings_in_a_fresh_process(env, "settings.SECRET_KEY") == secret.read_text()


def test_an_empty_sender_from_compose_means_the_offices_default(tmp_path):
    env = {"DEFAULT_FROM_EMAIL": "", "VAR_DIR": str(tmp_path)}
    assert "セミナー事務局" in _settings_in_a_fresh_process(env, "settings.DEFAULT_FROM_EMAIL")


def test_the_app_images_health_checks_use_only_what_the_image_has():
    """curl is installed by the Dockerfile, celery by the project; `test` is the shell's."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name, service in SERVICES.items():
        if not (service.get("build") or service.get("image", "").startswith("seminar")):
            continue
        check = service.get("healthcheck", {}).get("test")
        if not check:
            continue
        program = check[1].split()[0]
        if program == "curl":
            assert "curl" in dockerfile.split("apt-get install", 1)[1].split("&&")[0], name
        else:
            assert program in {"celery", "test"}, (name, program)


def test_every_variable_compose_sets_is_read_by_the_app():
    """A misspelt variable would be silently ignored."""
    read = (ROOT / "seminar_site" / "settings.py").read_text() + (
        ROOT / "gunicorn.conf.py"
    ).read_text()
    for name, service in SERVICES.items():
        if not (service.get("build") or service.get("image", "").startswith("seminar")):
            continue
        for variable in service.get("environment", {}):
            assert f'"{variable}"' in read, (name, variable)


def test_the_web_never_waits_long_on_a_hung_broker():
    assert float(SERVICES["web"]["environment"]["BROKER_SOCKET_TIMEOUT"]) <= 0.5
    assert "BROKER_SOCKET_TIMEOUT" not in SERVICES["mail-worker"]["environment"]
