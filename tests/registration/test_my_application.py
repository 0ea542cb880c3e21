"""My application: the signed link, view, change, withdraw, and "email me my link again"."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from registration.models import Application, OutboxEmail
from registration.tokens import make_token
from tests.factories import ApplicationFactory, option

from .helpers import form_data

pytestmark = pytest.mark.django_db


def my_url(application, name="my_application"):  # type: ignore[no-untyped-def]
    return reverse(f"registration:{name}", kwargs={"token": make_token(application.number)})


def test_it_shows_the_application_from_its_link(client, edition):
    application = ApplicationFactory(edition=edition)
    page = client.get(my_url(application))
    assert page.status_code == 200
    assert application.number in page.content.decode()
    assert application.email in page.content.decode()


def test_a_tampered_link_is_refused(client, edition):
    application = ApplicationFactory(edition=edition)
    other = ApplicationFactory(edition=edition)
    token = make_token(application.number)
    forged = token.replace(application.number, other.number)
    page = client.get(reverse("registration:my_application", kwargs={"token": forged}))
    assert page.status_code == 404
    assert other.email not in page.content.decode()
    guessed = client.get(reverse("registration:my_application", kwargs={"token": other.number}))
    assert guessed.status_code == 404


def test_an_expired_link_is_refused_with_a_way_to_get_a_new_one(client, edition, settings):
    settings.MY_APPLICATION_LINK_MAX_AGE_DAYS = 30
    application = ApplicationFactory(edition=edition)
    with time_machine.travel(timezone.now() - dt.timedelta(days=31)):
        url = my_url(application)
    page = client.get(url)
    assert page.status_code == 410
    assert application.email not in page.content.decode()
    assert reverse("registration:resend_link") in page.content.decode()


def test_the_parent_can_change_the_application_while_registration_is_open(
    client, edition, django_capture_on_commit_callbacks
):
    application = ApplicationFactory(edition=edition)
    data = form_data(
        edition,
        choice_1=option(edition, "center:venue").pk,
        choice_2="",
        adults=2,
        email="ignored@example.jp",
        email_confirm="ignored@example.jp",
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(my_url(application, "my_application_edit"), data)
    assert response.status_code == 302
    application.refresh_from_db()
    assert application.choice_1.code == "center:venue" and application.choice_2 is None
    assert application.adults == 2
    assert application.email.startswith("parent")  # the address is not changed here
    assert OutboxEmail.objects.get(kind="changed").to == application.email
    assert len(mail.outbox) == 1


def test_the_change_form_shows_the_current_answers(client, edition):
    application = ApplicationFactory(edition=edition, questions="講演の資料はありますか")
    page = client.get(my_url(application, "my_application_edit")).content.decode()
    assert "講演の資料はありますか" in page
    assert f'value="{application.family_name}"' in page


def test_no_change_after_registration_closes(client, edition):
    application = ApplicationFactory(edition=edition)
    Application.objects.filter(pk=application.pk)  # noqa: B018
    edition.registration_closes_at = timezone.now() - dt.timedelta(minutes=1)
    edition.registration_opens_at = timezone.now() - dt.timedelta(days=3)
    edition.save()
    response = client.post(my_url(application, "my_application_edit"), form_data(edition, adults=2))
    assert response.status_code == 302
    application.refresh_from_db()
    assert application.adults == 1


def test_withdrawing_asks_for_confirmation_then_withdraws_once(
    client, edition, django_capture_on_commit_callbacks
):
    application = ApplicationFactory(edition=edition)
    url = my_url(application, "my_application_withdraw")
    assert client.get(url).status_code == 200
    client.post(url, {})  # box not ticked
    application.refresh_from_db()
    assert application.status == "active"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"confirm": "on"})
        client.post(url, {"confirm": "on"})
    application.refresh_from_db()
    assert application.status == "withdrawn" and application.withdrawn_at
    assert [e.kind for e in OutboxEmail.objects.all()] == ["withdrawn"]


def test_resending_the_link_answers_the_same_whether_or_not_the_address_applied(
    client, edition, django_capture_on_commit_callbacks
):
    application = ApplicationFactory(edition=edition, email="Known@Example.jp")
    with django_capture_on_commit_callbacks(execute=True):
        known = client.post(reverse("registration:resend_link"), {"email": "known@example.jp"})
        unknown = client.post(reverse("registration:resend_link"), {"email": "nobody@example.jp"})
    assert known.content.decode().replace("known", "X") == unknown.content.decode().replace(
        "nobody", "X"
    )
    [sent] = mail.outbox
    assert sent.to == ["Known@Example.jp"] and application.number in sent.body


def test_resending_the_link_checks_the_address(client, edition):
    response = client.post(reverse("registration:resend_link"), {"email": "not an address"})
    assert response.status_code == 200 and response.context["form"].errors


def test_the_link_is_resent_for_an_application_in_any_published_edition(
    client, edition, django_capture_on_commit_callbacks
):
    from tests.factories import EditionFactory

    older = EditionFactory(
        registration_opens_at=timezone.now() - dt.timedelta(days=400),
        registration_closes_at=timezone.now() - dt.timedelta(days=300),
    )
    application = ApplicationFactory(edition=older, email="last-year@example.jp")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("registration:resend_link"), {"email": "last-year@example.jp"})
    [sent] = mail.outbox
    assert application.number in sent.body
