"""Issue 10, findings 4, 7, 8 and 10: one mailbox is one address however it is spelled, personal
pages are never cached, a shredded edition leaves no browser session behind, names show letters,
and full-width formula signs are neutralised in exports."""

from __future__ import annotations

import datetime as dt
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session as BrowserSession
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from office.exports.formats import _csv_cell
from registration import retention
from registration.models import Application, AuditEvent, OutboxEmail
from registration.outbox import send as outbox
from tests.factories import ApplicationFactory
from tests.staff import admin_url, member

from .helpers import form_data
from .test_my_application import my_url

pytestmark = pytest.mark.django_db

# One mailbox: as typed on a phone in full width, in capitals, with the domain in Unicode or in
# punycode (例え.jp is xn--r8jz45g.jp).
SPELLINGS = [
    "hanako@例え.jp",
    "hanako@xn--r8jz45g.jp",
    "HANAKO@XN--R8JZ45G.JP",
    "ｈａｎａｋｏ＠例え．ｊｐ",
    "hanako@例え.ＪＰ",
]


def apply(client: Client, edition, email: str) -> None:  # type: ignore[no-untyped-def]
    data = form_data(edition, email=email, email_confirm=email)
    response = client.post(f"/{edition.code}/apply/", data)
    assert response.status_code == 302, response.context["form"].errors
    assert client.post(f"/{edition.code}/apply/confirm/").status_code == 302


# --- 4 and 8: one address, one limit, one application ------------------------------------------


def test_a_mailbox_cannot_apply_twice_under_another_spelling(edition):
    for spelling in SPELLINGS:
        apply(Client(), edition, spelling)
    (application,) = Application.objects.all()
    # Stored, and sent, in the domain's ASCII form.
    assert application.email == "hanako@xn--r8jz45g.jp"
    assert AuditEvent.objects.filter(action="application.second_attempt").count() == 4


def test_the_parent_reads_an_international_address_in_its_own_letters(edition):
    client = Client()
    apply(client, edition, "hanako@xn--r8jz45g.jp")
    done = client.get(f"/{edition.code}/apply/done/").content.decode()
    assert "hanako@例え.jp" in done and "xn--" not in done
    application = Application.objects.get()
    page = client.get(my_url(application)).content.decode()
    assert "hanako@例え.jp" in page and "xn--" not in page
    sent = client.post("/my/", {"email": "HANAKO@例え.JP"}).content.decode()
    assert "hanako@例え.jp" in sent.lower()


def test_the_owner_of_an_address_is_told_of_a_second_attempt_once_a_day(edition, now):
    apply(Client(), edition, SPELLINGS[0])
    for spelling in SPELLINGS[1:]:
        apply(Client(), edition, spelling)
    outbox.outbox_drain()
    kinds = sorted(m.subject for m in mail.outbox)
    assert len(kinds) == 2  # the receipt, and one "you have already applied"
    assert OutboxEmail.objects.filter(kind="already_applied").count() == 1
    # A day later a new attempt is worth telling the parent about again.
    OutboxEmail.objects.filter(kind="already_applied").update(
        created_at=now - dt.timedelta(days=1, minutes=1)
    )
    apply(Client(), edition, SPELLINGS[1])
    assert OutboxEmail.objects.filter(kind="already_applied").count() == 2


def test_every_spelling_of_an_address_counts_against_its_link_limit(edition, settings):
    settings.RATELIMIT_RESEND_LINK = "100/h"  # the per-client limit is not what is tested
    settings.RATELIMIT_RESEND_LINK_PER_ADDRESS = "5/h"
    ApplicationFactory(edition=edition, email="hanako@xn--r8jz45g.jp")  # as the form stores it
    answers = [
        Client(REMOTE_ADDR=f"10.0.0.{i}").post("/my/", {"email": SPELLINGS[i % len(SPELLINGS)]})
        for i in range(8)
    ]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 3
    outbox.outbox_drain()
    assert len(mail.outbox) == 5


# --- 7: no personal page is cached ------------------------------------------------------------


def personal_pages(client: Client, edition) -> list[str]:  # type: ignore[no-untyped-def]
    """Every page that shows a parent's answers, address or application, filled in."""
    application = ApplicationFactory(edition=edition)
    draft = form_data(edition, email="other@example.jp", email_confirm="other@example.jp")
    assert client.post(f"/{edition.code}/apply/", draft).status_code == 302
    return [
        f"/{edition.code}/apply/",  # the draft, when coming back from 確認
        f"/{edition.code}/apply/confirm/",  # every answer, allergies included
        f"/{edition.code}/apply/done/",
        my_url(application),
        my_url(application, "my_application_edit"),
        my_url(application, "my_application_withdraw"),
        my_url(application, "my_ticket"),
        my_url(application, "my_calendar"),
        "/my/",
    ]


def test_no_page_with_personal_data_may_be_stored_by_a_browser_or_proxy(client, edition):
    for url in personal_pages(client, edition):
        for path in (url, f"/en{url}"):
            response = client.get(path)
            assert response.status_code in (200, 302), path
            cache_control = {d.strip() for d in response["Cache-Control"].split(",")}
            assert {"no-store", "private"} <= cache_control, path
    sent = client.post("/my/", {"email": "other@example.jp"})
    assert "no-store" in sent["Cache-Control"]


# --- 10: sessions, names, exports ------------------------------------------------------------


def test_shredding_an_edition_deletes_the_sessions_that_hold_its_drafts(edition):
    drafting, done, unrelated = Client(), Client(), Client()
    draft = form_data(edition, email="draft@example.jp", email_confirm="draft@example.jp")
    assert drafting.post(f"/{edition.code}/apply/", draft).status_code == 302
    apply(done, edition, "done@example.jp")
    unrelated.get("/")
    store = import_module(settings.SESSION_ENGINE).SessionStore
    other = store()
    other["application-draft:another-edition"] = {"email": ["someone@example.jp"]}
    other.create()
    assert BrowserSession.objects.count() == 3
    last = edition.sessions.order_by("-date").first()
    edition.sessions.update(date=last.date - dt.timedelta(days=400))
    report = retention.retention_shred(actor_label="command", now=timezone.now())
    assert report.editions[0].counts["browser_sessions"] == 2
    assert list(BrowserSession.objects.values_list("session_key", flat=True)) == [other.session_key]


@pytest.mark.parametrize(
    "name", ["\u200b", "\u200b\u200c\u200d", "\u3164", "\u2800\u2800", "\ufeff", "\u0301"]
)
def test_a_name_made_only_of_invisible_characters_is_refused(client, edition, name):
    response = client.post(f"/{edition.code}/apply/", form_data(edition, given_name=name))
    assert response.status_code == 200
    form = response.context["form"]
    # Zero-width characters are removed (nothing is left), fillers are refused as blank.
    assert form.has_error("given_name", "invisible") or form.has_error("given_name", "required")
    assert not Application.objects.exists()


def test_zero_width_characters_inside_a_name_do_not_hide_a_duplicate(client, edition):
    data = form_data(edition, family_name="山\u200b田", given_name="花\u200d子\u200f")
    assert client.post(f"/{edition.code}/apply/", data).status_code == 302
    assert client.post(f"/{edition.code}/apply/confirm/").status_code == 302
    application = Application.objects.get()
    assert (application.family_name, application.given_name) == ("山田", "花子")


@pytest.mark.parametrize(
    "value", ['＝HYPERLINK("http://evil.example/")', "＋1", "－1", "＠SUM(A1)"]
)
def test_full_width_formula_signs_are_neutralised_in_exports(value):
    assert _csv_cell(value) == "'" + value


def test_the_link_form_answers_the_same_page_for_any_address(client, edition):
    ApplicationFactory(edition=edition, email="known@example.jp")
    known = client.post(reverse("registration:resend_link"), {"email": "known@example.jp"})
    unknown = client.post(reverse("registration:resend_link"), {"email": "other@example.jp"})
    assert known.content.decode().replace("known", "X") == unknown.content.decode().replace(
        "other", "X"
    )
    # Both requests were queued alike; the worker sends one link and forgets the other address.
    assert OutboxEmail.objects.filter(kind="link", application=None).count() == 2
    outbox.outbox_drain()
    (link,) = OutboxEmail.objects.filter(kind="link")
    assert link.to == "known@example.jp" and link.status == "sent"
    assert [m.to for m in mail.outbox] == [["known@example.jp"]]
    assert not OutboxEmail.objects.filter(to="other@example.jp").exists()


def test_the_migration_respells_stored_international_domains(edition):
    from django.apps import apps

    migration = import_module("registration.migrations.0009_ascii_mail_domains")
    unicode_only = ApplicationFactory(edition=edition, email="taro@例え.jp")
    # The same mailbox twice (the bug this fixes): the older spelling stays for the review.
    ApplicationFactory(edition=edition, email="hanako@xn--r8jz45g.jp")
    twin = ApplicationFactory(edition=edition, email="hanako@例え.jp")
    migration.respell(apps, None)
    unicode_only.refresh_from_db()
    twin.refresh_from_db()
    assert unicode_only.email == "taro@xn--r8jz45g.jp"
    assert twin.email == "hanako@例え.jp"


def test_raising_the_link_generation_cancels_every_link_sent(client, edition, settings):
    application = ApplicationFactory(edition=edition)
    old = my_url(application)
    assert client.get(old).status_code == 200
    settings.MY_APPLICATION_LINK_GENERATION = 2
    assert client.get(old).status_code == 404
    assert client.get(my_url(application)).status_code == 200


def test_the_office_does_not_see_link_requests_for_unknown_addresses(client, edition):
    Client().post("/my/", {"email": "stranger@example.jp"})
    assert OutboxEmail.objects.filter(to="stranger@example.jp").exists()  # until the worker runs
    member(client, "office")
    page = client.get(admin_url("registration_outboxemail_changelist"), {"q": "stranger"})
    assert page.status_code == 200
    assert "stranger@example.jp" not in page.content.decode()
