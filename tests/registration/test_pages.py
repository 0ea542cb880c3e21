"""Public pages: in Japanese by default and in English, with a language switch on each."""

from __future__ import annotations

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from registration.models import Booth, Edition, Option
from registration.tokens import make_token
from tests.factories import ApplicationFactory

pytestmark = pytest.mark.django_db


def public_urls(edition: Edition) -> list[str]:
    """Every public page a parent can reach (Japanese paths; English adds /en)."""
    token = make_token(ApplicationFactory(edition=edition).number)
    return [
        "/",
        f"/{edition.code}/",
        f"/{edition.code}/booths/tama/",
        f"/{edition.code}/apply/",
        f"/{edition.code}/apply/done/",
        "/privacy/",
        "/how-the-lottery-works/",
        "/my/",
        f"/my/{token}/",
        f"/my/{token}/change/",
        f"/my/{token}/withdraw/",
        f"/lottery/{edition.code}/",
    ]


def test_every_public_page_is_in_japanese_with_a_link_to_english(client, edition):
    for url in public_urls(edition):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert '<html lang="ja">' in html, url
        assert f'href="/en{url}"' in html, url
        assert "セミナー事務局" in html, url


def test_every_public_page_is_in_english_with_a_link_to_japanese(client, edition):
    for url in public_urls(edition):
        response = client.get(f"/en{url}")
        assert response.status_code == 200, url
        html = response.content.decode()
        assert '<html lang="en">' in html, url
        assert f'href="{url}"' in html, url
        assert "Seminar office" in html, url


def test_the_home_page_shows_sessions_registration_state_and_contact(client, edition):
    html = client.get("/").content.decode()
    assert "多摩会場" in html and "都心会場" in html
    assert reverse("registration:apply_input", args=[edition.code]) in html
    assert settings.OFFICE_PHONE in html and settings.NAVIGATOR_URL in html
    assert reverse("registration:booths", args=[edition.code, "tama"]) in html
    assert reverse("registration:privacy") in html and reverse("registration:lottery_info") in html


def test_the_japanese_catalogue_is_complete_and_has_no_fuzzy_entries():
    po = polib.pofile(str(settings.BASE_DIR / "locale" / "ja" / "LC_MESSAGES" / "django.po"))
    assert po.percent_translated() == 100, [e.msgid for e in po.untranslated_entries()][:5]
    assert not po.fuzzy_entries()


def test_the_catalogue_covers_every_string_in_the_source(tmp_path):
    """makemessages would add nothing: no string was added without a translation."""
    po_path = settings.BASE_DIR / "locale" / "ja" / "LC_MESSAGES" / "django.po"
    before = {e.msgid for e in polib.pofile(str(po_path))}
    copy = tmp_path / "django.po"
    copy.write_bytes(po_path.read_bytes())
    call_command(
        "makemessages",
        locale=["ja"],
        ignore_patterns=[".venv", "tests", "bench"],
        verbosity=0,
        no_obsolete=True,
    )
    try:
        after = {e.msgid for e in polib.pofile(str(po_path)) if not e.obsolete}
    finally:
        po_path.write_bytes(copy.read_bytes())
    assert after - before == set()


def test_closed_registration_is_refused_politely(client):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import EditionFactory

    edition = EditionFactory(
        registration_opens_at=timezone.now() - timedelta(days=30),
        registration_closes_at=timezone.now() - timedelta(days=1),
    )
    html = client.get(f"/{edition.code}/apply/").content.decode()
    assert "<form" not in html.split("<main", 1)[1].split("</main>")[0]
    assert settings.OFFICE_PHONE in html


def test_seed_demo_loads_the_2026_edition_and_an_open_demo(db, capsys):
    call_command("seed_demo")
    call_command("seed_demo", "--no-admin")  # and again: nothing duplicated
    e2026 = Edition.objects.get(code="2026")
    assert [s.code for s in e2026.sessions.order_by("date")] == ["tama", "center"]
    assert {(o.code, o.capacity) for o in Option.objects.filter(session__edition=e2026)} == {
        ("tama:venue", 150),
        ("tama:online", 300),
        ("center:venue", 150),
        ("center:online", 300),
    }
    assert Edition.objects.get(code="demo").registration_is_open()
    for session in e2026.sessions.all():
        assert Booth.objects.filter(session=session).count() >= 28
        assert session.childcare_bands.get(code="0-2").slots == 6
        assert session.childcare_bands.get(code="3-5").slots == 10
    assert "Admin login: user 'admin'" in capsys.readouterr().out
