"""A real SMTP server that refuses: temporary refusals are retried with back-off until one
delivery; a permanent refusal is marked failed, never retried, and shown to the office, who
can send it again."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from registration.models import AuditEvent, OutboxEmail
from registration.outbox import queue as outbox_queue
from registration.outbox import send as outbox
from tests.factories import ApplicationFactory

from .smtp import smtp_sink, use_sink

pytestmark = pytest.mark.django_db(transaction=True)


def receipt_to(edition, address: str) -> OutboxEmail:  # type: ignore[no-untyped-def]
    """A receipt e-mail, queued in a committed transaction: the worker tries it at once."""
    application = ApplicationFactory(edition=edition, email=address)
    return outbox_queue.outbox_enqueue(kind=OutboxEmail.Kind.RECEIPT, application=application)


def log_in_as_office(client):  # type: ignore[no-untyped-def]
    """A member of the office, as far as the outbox goes. (The "office" group is made by a data
    migration, which this test's flushed database no longer holds: its permissions on the
    outbox are given here; test_roles checks that the group has them.)"""
    user = get_user_model().objects.create(username="office", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_outboxemail", "resend_outboxemail"],
            content_type__app_label="registration",
        )
    )
    client.force_login(user)
    return user


def sweep_at(moment: dt.datetime) -> int:
    """Run the periodic sweep at that moment (the clock moves on from there)."""
    with time_machine.travel(moment, tick=True):
        return outbox.outbox_sweep()


def test_451_451_then_250_is_one_delivery_after_two_backed_off_retries(edition, settings):
    settings.OUTBOX_RETRY_BASE_SECONDS = 60
    address = "parent@example.jp"
    with smtp_sink({address: ["451 4.3.0 Try again later", "451 4.3.0 Try again later"]}) as (
        sink,
        port,
    ):
        use_sink(settings, port)
        start = timezone.now()
        email = receipt_to(edition, address)  # first try, right after commit: 451
        email.refresh_from_db()
        assert (email.status, email.attempts) == ("queued", 1)
        assert "451" in email.last_error
        assert email.next_attempt_at >= start + dt.timedelta(seconds=60)

        # Not before its time, however often the sweep runs.
        assert sweep_at(start + dt.timedelta(seconds=30)) == 0
        assert sink.tries[address] == 1
        # Second try after 1 minute: 451 again, and the next waits twice as long.
        assert sweep_at(start + dt.timedelta(seconds=61)) == 0
        email.refresh_from_db()
        assert (email.status, email.attempts) == ("queued", 2)
        assert sweep_at(start + dt.timedelta(seconds=170)) == 0  # 61 + 120 not yet reached
        assert sink.tries[address] == 2
        # Third try: accepted.
        assert sweep_at(start + dt.timedelta(seconds=190)) == 1
        # And never again.
        assert sweep_at(start + dt.timedelta(days=1)) == 0

    assert sink.per_recipient() == {address: 1}
    assert sink.tries[address] == 3
    email.refresh_from_db()
    assert (email.status, email.attempts, email.last_error) == ("sent", 3, "")
    [(_, message)] = sink.delivered
    assert message["To"] == address


def test_550_is_failed_at_once_never_retried_and_the_office_sends_it_again(
    edition, settings, client
):
    wrong, right = "pranet@example.jp", "parent@example.jp"
    with smtp_sink({wrong: "550 5.1.1 No such user"}) as (sink, port):
        use_sink(settings, port)
        start = timezone.now()
        email = receipt_to(edition, wrong)
        email.refresh_from_db()
        assert (email.status, email.attempts) == ("failed", 1)
        assert "550" in email.last_error
        for later in (dt.timedelta(minutes=2), dt.timedelta(hours=3), dt.timedelta(days=2)):
            assert sweep_at(start + later) == 0
        assert sink.tries[wrong] == 1  # no retry of a permanent refusal
        assert sink.count() == 0

        # The office sees it on the admin index and in the outbox.
        office = log_in_as_office(client)
        index = client.get(reverse("admin:index"))
        assert "1件のメールを配信できませんでした。" in index.content.decode()
        failed_list = client.get(
            reverse("admin:registration_outboxemail_changelist") + "?status__exact=failed"
        )
        assert wrong in failed_list.content.decode()

        # The parent phones; the office corrects the address, then sends the e-mail again.
        application = email.application
        application.email = right
        application.save(update_fields=["email"])
        response = client.post(
            reverse("admin:registration_outboxemail_changelist") + "?status__exact=failed",
            {"action": "resend", "_selected_action": [email.pk], "index": 0},
            follow=True,
        )
        assert "1件のメールを再送の列に入れました。" in response.content.decode()

    assert sink.per_recipient() == {right: 1}
    email.refresh_from_db()
    assert (email.status, email.to) == ("sent", right)
    # The application's history says who sent it again, and what had failed.
    [resent] = AuditEvent.objects.filter(application=application, action="email.resent")
    assert resent.actor == office and resent.actor_label == "office"
    assert resent.data["kind"] == "receipt" and "550" in resent.data["error"]


def test_a_lost_connection_is_retried_and_the_rest_of_the_batch_still_goes(edition, settings):
    """The server drops the connection on one message: that one waits for its retry, the
    others go out over a new connection."""
    from unittest import mock

    with smtp_sink() as (sink, port):
        use_sink(settings, port)
        with mock.patch.object(outbox_queue, "schedule_send"):
            emails = [receipt_to(edition, f"p{i}@example.jp") for i in range(5)]
        real_send = outbox.EmailMultiAlternatives.send
        calls = {"n": 0}

        def flaky(self, fail_silently=False):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == 2:
                self.connection.connection.close()  # the server hung up
            return real_send(self, fail_silently)

        with mock.patch.object(outbox.EmailMultiAlternatives, "send", flaky):
            sent = outbox.outbox_send_many([e.pk for e in emails])
    assert sent == 4
    statuses = sorted(OutboxEmail.objects.values_list("status", flat=True))
    assert statuses == ["queued", "sent", "sent", "sent", "sent"]
    assert len(sink.per_recipient()) == 4


@pytest.mark.postgres  # real threads writing at once: SQLite's shared in-memory test database
# answers "table is locked"
def test_the_global_rate_holds_across_two_workers(edition, settings):
    """Two workers share one rate: 12 e-mails at 4 a second cannot take less than 2 s."""
    settings.OUTBOX_RATE_PER_SECOND = 4
    from unittest import mock

    from django.db import connection

    with smtp_sink() as (sink, port), mock.patch.object(outbox_queue, "schedule_send"):
        use_sink(settings, port)
        ids = [receipt_to(edition, f"r{i}@example.jp").pk for i in range(12)]

        errors: list[BaseException] = []

        def worker(part: list[int]) -> None:
            try:
                outbox.outbox_send_many(part)
            except BaseException as e:  # noqa: BLE001 - reported by the test
                errors.append(e)
            finally:
                connection.close()

        started = time.monotonic()
        threads = [threading.Thread(target=worker, args=(ids[i::2],)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        elapsed = time.monotonic() - started
    assert errors == []
    assert sink.count() == 12
    # 4 in the first second, 4 in the second, 4 in the third: at least 2 s whatever the speed.
    assert elapsed >= 2.0


def test_a_421_closing_the_connection_delays_that_email_and_the_next_goes_over_a_new_one(
    edition, settings
):
    from unittest import mock

    with smtp_sink({"p0@example.jp": ["421 4.7.0 Too busy, closing connection"]}) as (sink, port):
        use_sink(settings, port)
        with mock.patch.object(outbox_queue, "schedule_send"):
            emails = [receipt_to(edition, f"p{i}@example.jp") for i in range(3)]
        assert outbox.outbox_send_many([e.pk for e in emails]) == 2
    assert sink.per_recipient() == {"p1@example.jp": 1, "p2@example.jp": 1}
    first = OutboxEmail.objects.get(pk=emails[0].pk)
    assert (first.status, first.attempts) == ("queued", 1) and first.next_attempt_at


def test_a_refused_sender_stops_the_batch_and_fails_nobody(edition, settings, client):
    """Our account refused (quota, a wrong sender): not the parents' fault. The batch stops,
    every e-mail stays queued for the next try, none is marked failed; after half an hour the
    office is told that e-mails are waiting."""
    from unittest import mock

    with smtp_sink() as (sink, port):
        sink.refuse_sender = "550 5.7.1 Sender not allowed"
        use_sink(settings, port)
        with mock.patch.object(outbox_queue, "schedule_send"):
            emails = [receipt_to(edition, f"p{i}@example.jp") for i in range(5)]
        assert outbox.outbox_drain() == 0
        sink.refuse_sender = ""
        tried = OutboxEmail.objects.filter(attempts=1).count()
        assert set(OutboxEmail.objects.values_list("status", flat=True)) == {"queued"}
        assert tried == 1  # the first one; the rest were never claimed
        log_in_as_office(client)
        assert "待っています" not in client.get(reverse("admin:index")).content.decode()
        with time_machine.travel(timezone.now() + dt.timedelta(minutes=31), tick=True):
            index = client.get(reverse("admin:index")).content.decode()
        assert "5件のメールが30分以上送信を待っています" in index
        with time_machine.travel(timezone.now() + dt.timedelta(minutes=2), tick=True):
            assert outbox.outbox_drain() == 5
    assert len(sink.per_recipient()) == 5 and len(emails) == 5
