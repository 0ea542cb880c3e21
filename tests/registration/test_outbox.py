"""The e-mail outbox: written with the change, sent after commit, exactly once."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from registration.forms import ApplicationFormGroup
from registration.models import AuditEvent, OutboxEmail
from registration.outbox import queue as outbox_queue
from registration.outbox import send as outbox
from registration.outbox.tasks import send_outbox_email
from registration.services import application_submit
from seminar_site.celery import app
from tests.factories import ApplicationFactory

from .helpers import form_data


def submit(edition):  # type: ignore[no-untyped-def]
    from django.http import QueryDict

    data = QueryDict(mutable=True)
    for k, v in form_data(edition).items():
        data.setlist(k, v if isinstance(v, list) else [str(v)])
    group = ApplicationFormGroup(data, edition=edition)
    assert group.is_valid()
    return application_submit(edition=edition, data=group.to_input(), language="ja")


@pytest.mark.django_db(transaction=True)
def test_the_email_row_is_written_in_the_same_transaction_as_the_application(edition):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        submit(edition)
        assert OutboxEmail.objects.count() == 1  # inside: written together
        raise Boom
    assert OutboxEmail.objects.count() == 0  # rolled back together
    assert mail.outbox == []  # and nothing was sent for it


@pytest.mark.django_db(transaction=True)
def test_the_email_is_sent_only_after_commit(edition):
    with mock.patch.object(outbox_queue, "schedule_send") as schedule, transaction.atomic():
        submit(edition)
        schedule.assert_not_called()
    schedule.assert_called_once()


@pytest.mark.django_db
def test_the_task_sends_an_email_once_even_if_run_twice(edition):
    email = outbox_queue.outbox_enqueue(
        kind="link", application=ApplicationFactory(edition=edition), to="a@example.jp"
    )
    send_outbox_email.apply(args=[email.pk])
    send_outbox_email.apply(args=[email.pk])
    assert len(mail.outbox) == 1
    email.refresh_from_db()
    assert email.status == "sent" and email.attempts == 1 and email.sent_at


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_never_fails_the_submission_and_the_sweep_sends_later(edition, settings):
    settings.OUTBOX_SWEEP_AFTER_SECONDS = 0
    with mock.patch.object(send_outbox_email, "delay", side_effect=ConnectionError("redis down")):
        application = submit(edition)
    assert application is not None
    assert mail.outbox == []
    assert OutboxEmail.objects.get().status == "queued"
    assert outbox.outbox_sweep() == 1
    assert outbox.outbox_sweep() == 0
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_the_sweep_leaves_fresh_emails_to_their_task(edition, settings):
    settings.OUTBOX_SWEEP_AFTER_SECONDS = 60
    with mock.patch.object(outbox_queue, "schedule_send"):
        outbox_queue.outbox_enqueue(
            kind="link", application=ApplicationFactory(edition=edition), to="a@example.jp"
        )
    assert outbox.outbox_sweep() == 0
    assert outbox.outbox_sweep(now=timezone.now() + dt.timedelta(seconds=61)) == 1


@pytest.mark.django_db
def test_an_email_stuck_in_sending_after_a_worker_died_is_sent_again(edition):
    with mock.patch.object(outbox_queue, "schedule_send"):
        email = outbox_queue.outbox_enqueue(
            kind="link", application=ApplicationFactory(edition=edition), to="a@example.jp"
        )
    OutboxEmail.objects.filter(pk=email.pk).update(status="sending", claimed_at=timezone.now())
    assert outbox.outbox_sweep(now=timezone.now() + dt.timedelta(minutes=5)) == 0
    assert outbox.outbox_sweep(now=timezone.now() + dt.timedelta(minutes=11)) == 1


@pytest.mark.django_db
def test_a_permanent_smtp_refusal_marks_the_email_failed_and_a_temporary_one_retries(edition):
    import smtplib

    with mock.patch.object(outbox_queue, "schedule_send"):
        app = ApplicationFactory(edition=edition)
        temp = outbox_queue.outbox_enqueue(kind="link", application=app, to="a@example.jp")
        perm = outbox_queue.outbox_enqueue(kind="link", application=app, to="b@example.jp")
    with mock.patch(
        "django.core.mail.EmailMultiAlternatives.send",
        side_effect=smtplib.SMTPResponseException(451, b"try later"),
    ):
        outbox.outbox_send(email_id=temp.pk)
    with mock.patch(
        "django.core.mail.EmailMultiAlternatives.send",
        side_effect=smtplib.SMTPResponseException(550, b"no such user"),
    ):
        outbox.outbox_send(email_id=perm.pk)
    temp.refresh_from_db()
    perm.refresh_from_db()
    assert temp.status == "queued" and "451" in temp.last_error
    assert perm.status == "failed" and "550" in perm.last_error


@pytest.mark.django_db
def test_legacy_carrier_addresses_can_be_sent_to(edition):
    email = outbox_queue.outbox_enqueue(
        kind="link", application=ApplicationFactory(edition=edition), to="a..b.@docomo.ne.jp"
    )
    send_outbox_email.apply(args=[email.pk])
    email.refresh_from_db()
    assert email.status == "sent"
    assert mail.outbox[0].to == ["a..b.@docomo.ne.jp"]


@pytest.mark.django_db
def test_an_email_whose_every_try_stopped_its_worker_goes_to_the_office(edition, settings):
    with mock.patch.object(outbox_queue, "schedule_send"):
        email = outbox_queue.outbox_enqueue(
            kind="link", application=ApplicationFactory(edition=edition), to="a@example.jp"
        )
    OutboxEmail.objects.filter(pk=email.pk).update(
        status="sending", claimed_at=timezone.now(), attempts=settings.OUTBOX_MAX_ATTEMPTS
    )
    assert outbox.outbox_sweep(now=timezone.now() + dt.timedelta(minutes=11)) == 0
    email.refresh_from_db()
    assert email.status == "failed" and "worker stopped" in email.last_error
    assert mail.outbox == []


def test_staff_resend_only_failed_e_mails_each_with_a_line_in_the_history(django_user_model):
    failed, sent = (
        outbox_queue.outbox_enqueue(kind=OutboxEmail.Kind.RECEIPT, application=ApplicationFactory())
        for _ in range(2)
    )
    OutboxEmail.objects.filter(pk=failed.pk).update(status="failed", last_error="550 no user")
    OutboxEmail.objects.filter(pk=sent.pk).update(status="sent", sent_at=timezone.now())
    clerk = django_user_model.objects.create(username="suzuki", is_staff=True)
    with mock.patch.object(outbox_queue, "schedule_drain"):
        assert outbox_queue.outbox_resend(OutboxEmail.objects.all(), actor=clerk) == 1
    assert OutboxEmail.objects.get(pk=failed.pk).status == "queued"
    assert OutboxEmail.objects.get(pk=sent.pk).status == "sent"
    [event] = AuditEvent.objects.filter(action="email.resent")
    assert event.actor == clerk and event.application == failed.application
    assert event.data == {"email": failed.pk, "kind": "receipt", "error": "550 no user"}


def test_routes_the_beat_schedule_and_queued_messages_find_every_task_by_its_name(settings):
    """Celery finds a task by its name: a message queued before a deploy names the old one."""

    app.loader.import_default_modules()
    named = set(settings.CELERY_TASK_ROUTES) | {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert named <= set(app.tasks)
    assert send_outbox_email.name == "registration.tasks.send_outbox_email"
    assert settings.CELERY_TASK_ROUTES[send_outbox_email.name] == {"queue": "mail"}
