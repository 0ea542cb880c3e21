"""The shared fixture world: an edition open for registration, with two sessions."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from django.core.cache import caches
from django.db import connection
from django.utils import timezone, translation

from seminar_site.celery import app as celery_app

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = Path("/usr/bin/chromium")


def _missing_service(item: pytest.Item) -> str | None:
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        return "needs PostgreSQL: set DATABASE_URL (CI does)"
    if item.get_closest_marker("browser") and not CHROMIUM.exists():
        return "needs Chromium at /usr/bin/chromium (apt-get install chromium fonts-noto-cjk)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """PostgreSQL and browser tests fail in CI when their service is missing, and are skipped
    loudly elsewhere."""
    missing = _missing_service(item)
    if missing and IN_CI:
        pytest.fail(f"CI must run this test: {missing}", pytrace=False)
    if missing:
        pytest.skip(f"SKIPPED LOUDLY: {missing}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.write_sep(
            "!", f"{len(skipped)} TESTS SKIPPED: see reasons above", red=True
        )
    terminalreporter.write_line(f"Database used: {connection.vendor}")


@pytest.fixture(autouse=True)
def _eager_celery_and_mail(settings, tmp_path):  # type: ignore[no-untyped-def]
    """Tasks run in-process; e-mails go to Django's locmem outbox; every test starts in the
    site's language (a request to /en/ leaves English active in the test's thread)."""
    translation.activate(settings.LANGUAGE_CODE)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.SITE_URL = "http://testserver"
    # The constant-time floor of 送信 would only slow every test down; its own test sets it.
    settings.APPLY_SUBMIT_ANSWER_SECONDS = 0
    celery_app.conf.task_always_eager = True
    for cache in caches.all():
        cache.clear()
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def now() -> dt.datetime:
    return timezone.now()


@pytest.fixture
def edition(db):  # type: ignore[no-untyped-def]
    from tests.factories import EditionFactory

    return EditionFactory()
