"""Browser tests: a real Chromium (Debian's, never `playwright install`) against pytest-django's
live server, at a phone's width."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from registration.models import Edition

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
PHONE = {"width": 360, "height": 740}
REVIEW_DIR = Path("/tmp/e2e-shots")  # a stable copy of the screenshots for a human to look at


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One browser per test module. Playwright's sync API keeps an event loop running in this
    thread while it is started, and Django then refuses the test's own ORM calls ("called from
    an async context") unless DJANGO_ALLOW_ASYNC_UNSAFE is set. Both last only as long as the
    module, so the rest of the suite keeps Django's async-safety check."""
    if not Path(CHROMIUM).exists():
        # tests/conftest.py fails (CI) or skips loudly (elsewhere) before this runs.
        pytest.skip("Chromium missing")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def phone_page(chromium):
    """A fresh phone-sized page with a Japanese browser; nothing shared between tests."""
    context = chromium.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="ja-JP",
        timezone_id="Asia/Tokyo",
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shot(request, tmp_path) -> Callable[[object, str], Path]:
    """``shot(page, "01-home")`` saves a full-page screenshot under tmp_path and /tmp/e2e-shots."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    test_name = re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name)
    review = REVIEW_DIR / test_name
    review.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shutil.copy(path, review / path.name)
        # Also screen by screen, as a parent scrolls through it on the phone.
        height = page.evaluate("document.documentElement.scrollHeight")
        for i, top in enumerate(range(0, height, PHONE["height"]), start=1):
            clip = {
                "x": 0,
                "y": top,
                "width": PHONE["width"],
                "height": min(PHONE["height"], height - top),
            }
            page.screenshot(
                path=str(review / f"{name}-screen{i:02d}.png"), full_page=True, clip=clip
            )
        return path

    return take


@pytest.fixture
def open_edition(transactional_db, live_server, settings):
    """The factory edition as the only published one, with e-mail links pointing at the server."""
    from tests.factories import EditionFactory

    edition = EditionFactory()
    Edition.objects.exclude(pk=edition.pk).update(is_published=False)
    settings.SITE_URL = live_server.url
    return edition
