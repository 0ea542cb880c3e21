"""Issue 10, finding 1: an e-mail stored for staff never holds a working private link.

The office may read the outbox (to answer "I got no e-mail" on the phone) but not children's
health notes, and must never act as the parent: a stored My application link would give both.
"""

from __future__ import annotations

import importlib
import re

import pytest
from django.core import mail
from django.test import Client

from registration.models import OutboxEmail
from registration.outbox import queue as outbox_queue
from registration.outbox import send as outbox
from registration.tokens import PLACEHOLDER, make_token
from tests.staff import admin_url, member

from .helpers import form_data

pytestmark = pytest.mark.django_db

NOTE = "卵アレルギー、エピペン持参"
LINK = re.compile(r"https?://testserver(/(?:en/)?my/[^\s\"'<>]+)")


def apply_with_childcare(client: Client, edition) -> None:  # type: ignore[no-untyped-def]
    data = form_data(
        edition,
        children=1,
        childcare_fallback="hall",
        health_consent="on",
        **{
            "child-0-name": "太郎",
            "child-0-name_kana": "タロウ",
            "child-0-date_of_birth": "2023-04-01",
            "child-0-notes": NOTE,
        },
    )
    assert client.post(f"/{edition.code}/apply/", data).status_code == 302
    assert client.post(f"/{edition.code}/apply/confirm/").status_code == 302
    outbox.outbox_drain()


def test_the_office_opening_an_outbox_email_finds_no_working_link(edition):
    parent = Client()
    apply_with_childcare(parent, edition)
    (receipt,) = OutboxEmail.objects.filter(kind="receipt", status="sent")

    office = Client()
    member(office, "office")
    page = office.get(admin_url("registration_outboxemail_change", receipt.pk))
    assert page.status_code == 200
    shown = page.content.decode()
    paths = LINK.findall(shown)
    assert paths and all(PLACEHOLDER in p for p in paths), paths
    assert make_token(receipt.application.number) not in shown
    for path in paths:  # what the office could click or copy opens nothing of the parent's
        opened = Client().get(path)
        assert opened.status_code == 404
        assert NOTE not in opened.content.decode()


def test_the_parent_receives_the_working_link_that_staff_never_see(edition):
    apply_with_childcare(Client(), edition)
    (message,) = mail.outbox
    (path,) = set(LINK.findall(message.body))
    assert PLACEHOLDER not in path
    assert path in message.alternatives[0][0]
    page = Client().get(path)
    assert page.status_code == 200 and NOTE in page.content.decode()
    stored = OutboxEmail.objects.get()
    assert path not in stored.body_text + stored.body_html + stored.subject


def test_every_kind_of_email_is_stored_without_the_token(edition):
    from tests.factories import ApplicationFactory

    application = ApplicationFactory(edition=edition)
    for kind in ("receipt", "already_applied", "link", "changed", "withdrawn"):
        outbox_queue.outbox_enqueue(kind=kind, application=application)
    outbox.outbox_drain()
    token = make_token(application.number)
    stored = OutboxEmail.objects.filter(status="sent")
    assert stored.count() == 5
    for email in stored:
        assert token not in email.body_text + email.body_html, email.kind
    # The withdrawal confirmation has no link; the other four give the parent a working one.
    with_link = [m for m in mail.outbox if "/my/" in m.body]
    assert len(with_link) == 4 and all(token in m.body for m in with_link)
    assert stored.filter(body_text__contains=PLACEHOLDER).count() == 4


def test_the_migration_removes_the_links_stored_before(edition):
    from django.apps import apps

    from tests.factories import ApplicationFactory

    application = ApplicationFactory(edition=edition)
    token = make_token(application.number)
    email = OutboxEmail.objects.create(
        application=application,
        kind="receipt",
        to=application.email,
        status="sent",
        sent_at=application.created_at,
        body_text=f"リンク:\nhttp://testserver/my/{token}/\nhttp://testserver/en/my/{token}/ticket/",
        body_html=f'<a href="http://testserver/my/{token}/withdraw/">辞退</a>',
    )
    migration = importlib.import_module("registration.migrations.0008_redact_stored_links")
    migration.redact(apps, None)
    email.refresh_from_db()
    assert token not in email.body_text + email.body_html
    assert email.body_text.count(f"/my/{PLACEHOLDER}/") == 2
    assert f'/my/{PLACEHOLDER}/withdraw/"' in email.body_html
