"""The public home pages come from the cache, and are never stale, mixed up or personal."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.messages import constants
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.sessions.backends.db import SessionStore
from django.forms import MultiWidget
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from registration import page_cache
from registration.models import Edition, Option
from tests.factories import EditionFactory

pytestmark = pytest.mark.django_db


def html(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def apply_link(code: str) -> str:
    return reverse("registration:apply_input", args=[code])


def test_it_serves_the_second_request_without_a_query(client, edition, django_assert_num_queries):
    for url in ("/", f"/{edition.code}/", "/en/", f"/en/{edition.code}/"):
        first = html(client, url)
        with django_assert_num_queries(0):
            assert html(client, url) == first, url


def test_it_keeps_each_language_apart(client, edition):
    for _ in range(2):  # rendered, then from the cache
        ja, en = html(client, "/"), html(client, "/en/")
        assert '<html lang="ja">' in ja and "テストセミナー" in ja and "Test seminar" not in ja
        assert '<html lang="en">' in en and "Test seminar" in en and "テストセミナー" not in en
        assert 'href="/en/"' in ja and 'href="/"' in en


def test_it_shows_an_edited_title_and_session_at_once(
    client, edition, django_capture_on_commit_callbacks
):
    html(client, "/")
    html(client, f"/en/{edition.code}/")
    with django_capture_on_commit_callbacks(execute=True):
        edition.title_ja = "新しい題名"
        edition.title_en = "New title"
        edition.save()
    assert "新しい題名" in html(client, "/")
    assert "New title" in html(client, f"/en/{edition.code}/")

    option = Option.objects.get(session__edition=edition, session__code="tama", kind="venue")
    with django_capture_on_commit_callbacks(execute=True):
        option.capacity = 123
        option.save()
    assert "123" in html(client, "/")


def admin_form_data(response: Any) -> dict[str, Any]:
    """What the admin change page posts back unchanged: the form and its inlines."""
    forms = [response.context["adminform"].form]
    data: dict[str, Any] = {}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        forms += [formset.management_form, *formset.forms]
    for form in forms:
        for name, field in form.fields.items():
            value = form[name].value()
            key = form.add_prefix(name)
            if isinstance(field.widget, MultiWidget):  # the admin's split date and time
                for i, part in enumerate(field.widget.decompress(value) or []):
                    data[f"{key}_{i}"] = part.isoformat() if part else ""
            elif value is not None and value is not False:
                data[key] = "on" if value is True else value
    return data


def test_it_shows_a_title_edited_in_the_admin_at_once(
    client, edition, django_capture_on_commit_callbacks
):
    assert "テストセミナー" in html(client, "/")
    staff = Client()
    staff.force_login(get_user_model().objects.create_superuser("office", "o@example.jp", "x"))
    url = reverse("admin:registration_edition_change", args=[edition.pk])
    data = admin_form_data(staff.get(url))
    data["title_ja"] = "管理画面で変えた題名"
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert "管理画面で変えた題名" in html(client, "/")


def test_it_forgets_an_edition_that_is_unpublished(
    client, edition, django_capture_on_commit_callbacks
):
    html(client, f"/{edition.code}/")
    with django_capture_on_commit_callbacks(execute=True):
        edition.is_published = False
        edition.save()
    assert client.get(f"/{edition.code}/").status_code == 404


def test_it_opens_and_closes_registration_on_time(client):
    now = timezone.now().replace(microsecond=0)
    opens, closes = now + dt.timedelta(seconds=20), now + dt.timedelta(seconds=40)
    edition = cast(
        Edition, EditionFactory(registration_opens_at=opens, registration_closes_at=closes)
    )
    code = edition.code
    with time_machine.travel(now, tick=False):
        page = html(client, "/en/")
        assert "Registration not yet open" in page and apply_link(code) not in page
    with time_machine.travel(opens - dt.timedelta(seconds=1), tick=False):
        assert "Registration not yet open" in html(client, "/en/")  # still the cached page
    with time_machine.travel(opens, tick=False):
        page = html(client, "/en/")
        assert "Registration open" in page and apply_link(code) in page
        assert apply_link(code) in html(client, f"/en/{code}/")
    with time_machine.travel(closes, tick=False):
        page = html(client, "/en/")
        assert "Registration closed" in page and apply_link(code) not in page


def test_the_home_page_moves_to_a_newer_edition_when_its_registration_opens(client):
    now = timezone.now().replace(microsecond=0)
    EditionFactory(
        title_en="Open now",
        registration_opens_at=now - dt.timedelta(days=1),
        registration_closes_at=now + dt.timedelta(days=7),
    )
    EditionFactory(
        title_en="Next one",
        registration_opens_at=now + dt.timedelta(seconds=30),
        registration_closes_at=now + dt.timedelta(days=8),
    )
    with time_machine.travel(now, tick=False):
        assert "Open now" in html(client, "/en/")
    with time_machine.travel(now + dt.timedelta(seconds=30), tick=False):
        assert "Next one" in html(client, "/en/")


def test_it_shares_no_cookie_and_no_csrf_token(client, edition):
    # A parent in the middle of an application has a session and a CSRF cookie.
    parent = Client()
    parent.get(apply_link(edition.code))
    assert parent.cookies
    first = parent.get("/")
    for response in (first, Client().get("/"), parent.get("/")):
        assert response.status_code == 200
        assert not response.cookies
        assert b"csrfmiddlewaretoken" not in response.content
        assert response.content == first.content


def test_it_shows_a_visitors_messages_to_that_visitor_only(client, edition):
    html(client, "/")  # cached
    storage = CookieStorage(RequestFactory().get("/"))
    storage.add(constants.INFO, "Only for you")
    carrier = HttpResponse()
    storage.update(carrier)
    client.cookies["messages"] = carrier.cookies["messages"].value
    assert "Only for you" in html(client, "/")
    assert "Only for you" not in html(Client(), "/")


def test_it_does_not_hand_one_visitors_query_string_to_others(client, edition):
    assert "fbclid=abc" in html(client, "/?fbclid=abc")  # the language link keeps it
    assert "fbclid" not in html(Client(), "/")


@pytest.mark.parametrize(
    "use", [get_token, lambda request: request.session.get("draft")], ids=["csrf", "session"]
)
def test_it_does_not_store_a_page_that_used_the_csrf_token_or_the_session(rf, use):
    """Should a template ever add a form or read the session, the page stays uncached."""
    builds = []

    def build(now: dt.datetime) -> tuple[HttpResponse, dt.datetime]:
        builds.append(now)
        use(request)
        return HttpResponse("personal"), now + dt.timedelta(minutes=1)

    for _ in range(2):
        request = rf.get("/")
        request.session = SessionStore()
        page_cache.serve(request, "test", build)
    assert len(builds) == 2


@pytest.fixture
def broken_cache(settings: Any) -> None:
    """Redis gone: nothing listens on port 1, so every cache call raises ConnectionError."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        },
    }


def test_the_pages_still_work_when_the_cache_is_down(
    broken_cache, client, edition, django_capture_on_commit_callbacks
):
    for _ in range(2):
        assert "テストセミナー" in html(client, "/")
        assert "Test seminar" in html(client, f"/en/{edition.code}/")
    with django_capture_on_commit_callbacks(execute=True):
        edition.title_ja = "障害中の変更"
        edition.save()  # the invalidation fails quietly: the save is what matters
    assert "障害中の変更" in html(client, "/")
