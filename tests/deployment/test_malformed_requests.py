"""Issue 10, findings 5 and 6: 400, never 500, for any charset, NUL or malformed value, in the
public forms and in every admin list's filters and search; no file is ever taken."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from registration.models import Application
from tests.factories import ApplicationFactory

from ..registration.helpers import form_data

pytestmark = pytest.mark.django_db

MALFORMED = ["\x00", "1\x00", "abc", "-1", "0", "9999", "9" * 30, "1'", "１", "%", " "]


def test_a_form_posted_in_utf_16_gets_400_and_saves_nothing(client, edition):
    body = "&".join(f"{k}={v}" for k, v in form_data(edition).items() if not isinstance(v, list))
    for url in (f"/{edition.code}/apply/", "/my/", f"/en/{edition.code}/apply/"):
        response = client.generic(
            "POST",
            url,
            body.encode("utf-16"),
            content_type="application/x-www-form-urlencoded; charset=utf-16",
        )
        assert response.status_code == 400, url
    assert not Application.objects.exists()


def test_the_400_page_is_in_the_parents_language_and_names_the_office(client, edition):
    post = {"content_type": "application/x-www-form-urlencoded; charset=utf-16"}
    japanese = client.generic("POST", f"/{edition.code}/apply/", b"x", **post)
    english = client.generic("POST", f"/en/{edition.code}/apply/", b"x", **post)
    assert "送信内容を読み取れませんでした" in japanese.content.decode()
    assert "This request could not be read" in english.content.decode()
    for page in (japanese, english):
        assert "03-6633-3665" in page.content.decode()


def test_a_file_in_a_public_form_gets_400_and_is_not_kept(client, edition, settings, tmp_path):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # Django would write any file to disk at once
    data = {**form_data(edition), "attachment": SimpleUploadedFile("a.bin", b"\0" * 100_000)}
    for url in (f"/{edition.code}/apply/", "/my/"):
        assert client.post(url, data).status_code == 400, url
    assert list(tmp_path.iterdir()) == []
    assert not Application.objects.exists()


def test_a_body_announced_larger_than_the_limit_is_refused_unread(client, edition):
    response = client.generic(
        "POST",
        f"/{edition.code}/apply/",
        b"family_name=x",
        content_type="application/x-www-form-urlencoded",
        CONTENT_LENGTH=str(500 * 2**20),
    )
    assert response.status_code == 400


def test_nul_in_a_public_address_gets_400(client, edition):
    for url in (
        f"/{edition.code}/?x=%00",
        "/my/?email=a%00",
        f"/lottery/{edition.code}/?number=%00",
    ):
        assert client.get(url).status_code == 400, url


# --- every admin list, every filter, the search ------------------------------------------------


def changelists() -> list[str]:
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    ]


def filter_parameters(html: str) -> set[str]:
    """The query parameters of the filter links a changelist offers."""
    names = set()
    for href in re.findall(r'href="(\?[^"]*)"', html):
        names |= {name for name, _value in parse_qsl(urlsplit(unescape(href)).query)}
    return names - {"o", "p", "q", "e", "_changelist_filters"}


@pytest.fixture
def superuser(client):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.create_superuser("root", "root@example.jp", "x")
    client.force_login(user)
    return user


def test_no_admin_filter_or_search_answers_500(client, edition, superuser):
    ApplicationFactory.create_batch(2, edition=edition)
    tried = 0
    for url in changelists():
        page = client.get(url)
        assert page.status_code == 200, url
        parameters = filter_parameters(page.content.decode()) | {"q"}
        for name in parameters:
            for value in MALFORMED:
                response = client.get(url, {name: value})
                tried += 1
                assert response.status_code < 500, (url, name, value)
                if "\x00" in value:
                    assert response.status_code == 400, (url, name, value)
    assert tried > 200


def test_every_date_link_up_to_the_last_year_works(client, edition, superuser):
    url = reverse("admin:registration_application_changelist")
    for year, month in (("9998", "12"), ("2", "1"), ("2026", "2")):
        params = {"created_at__year": year, "created_at__month": month}
        assert client.get(url, params).status_code == 200, params
    for params in (
        {"created_at__year": "9999"},
        {"created_at__year": "1"},  # year 0 in UTC: no database can store it
        {"created_at__year": "2026", "created_at__month": "13"},
    ):
        assert client.get(url, params).status_code == 400, params


def test_the_filters_show_their_counts(client, edition, superuser):
    """Django's "Show counts" sets each filter's own keys (ints for ids) as its value."""
    ApplicationFactory(edition=edition)
    for name in ("registration_application", "childcare_child"):
        response = client.get(reverse(f"admin:{name}_changelist"), {"_facets": "True"})
        assert response.status_code == 200, name


def test_a_filter_value_the_filter_does_not_offer_is_refused(client, edition, superuser):
    url = reverse("admin:registration_application_changelist")
    for name in ("option", "session", "municipality", "grade", "childcare", "flagged"):
        assert client.get(url, {name: "abc"}).status_code == 400, name
    option = edition.sessions.first().options.first()
    assert client.get(url, {"option": option.pk}).status_code == 200
