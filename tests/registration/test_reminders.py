"""The reminder e-mail: to every current winner, `reminder_days_before` days before their
session, exactly once, in the parent's language, with the viewing link for online places."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
import time_machine
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext

from lottery import services as lottery
from lottery.models import LotteryResult
from registration import reminders, services, tasks
from registration.models import Application, OutboxEmail
from seminar_site.celery import app as celery_app
from tests.factories import ApplicationFactory, option
from tests.lottery.drawn import closed_edition

pytestmark = pytest.mark.django_db

ONLINE_URL = "https://stream.example.jp/watch/abc123"


@pytest.fixture
def drawn(db):  # type: ignore[no-untyped-def]
    """A drawn edition: at Tama one venue seat (a winner in Japanese and a waitlisted parent),
    an online winner in English and an online winner who withdrew; at Central Tokyo (a week
    later) a venue winner."""
    edition = closed_edition()
    tama = edition.sessions.get(code="tama")
    tama.online_url = ONLINE_URL
    tama.save()
    tama_venue = option(edition, "tama:venue")
    tama_venue.capacity = 1
    tama_venue.save()
    contenders = ApplicationFactory.create_batch(2, edition=edition, language="ja")
    online = ApplicationFactory(
        edition=edition, choice_1=option(edition, "tama:online"), language="en"
    )
    withdrawn = ApplicationFactory(edition=edition, choice_1=option(edition, "tama:online"))
    center = ApplicationFactory(edition=edition, choice_1=option(edition, "center:venue"))
    lottery.lottery_freeze(edition=edition, actor=None, actor_label="staff")
    lottery.lottery_draw(edition=edition, actor=None, actor_label="staff", randomness="beacon 1")
    services.application_withdraw(application=withdrawn)
    # The result e-mails are out of the way: the outbox holds only what these tests queue.
    OutboxEmail.objects.all().delete()
    outcome = {r.application_id: r.outcome for r in LotteryResult.objects.all()}
    venue, waitlisted = sorted(contenders, key=lambda a: outcome[a.pk] != "won")
    assert outcome[waitlisted.pk] == "waitlisted"
    return SimpleNamespace(
        edition=edition,
        tama=tama,
        venue=venue,
        waitlisted=waitlisted,
        online=online,
        withdrawn=withdrawn,
        center=center,
    )


def reminder_time(session):  # type: ignore[no-untyped-def]
    return session.starts() - dt.timedelta(days=session.reminder_days_before)


def run_task(django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """The beat's task, eagerly, with the e-mails sent after commit as in production."""
    with django_capture_on_commit_callbacks(execute=True):
        tasks.reminders_send.delay()


def reminded() -> dict[str, OutboxEmail]:
    emails = OutboxEmail.objects.filter(kind=OutboxEmail.Kind.REMINDER).select_related(
        "application"
    )
    numbers = [e.application.number for e in emails if e.application]
    assert len(numbers) == len(set(numbers)), "a parent was reminded twice"
    return {e.application.number: e for e in emails if e.application}


def test_it_reminds_every_current_winner_once_even_when_the_task_runs_twice(
    drawn, django_capture_on_commit_callbacks
):
    with time_machine.travel(reminder_time(drawn.tama) + dt.timedelta(minutes=5), tick=False):
        run_task(django_capture_on_commit_callbacks)
        run_task(django_capture_on_commit_callbacks)
        assert reminders.reminders_send() == 0
    sent = reminded()
    assert set(sent) == {drawn.venue.number, drawn.online.number}
    assert all(e.status == OutboxEmail.Status.SENT for e in sent.values())
    assert sent[drawn.venue.number].to == drawn.venue.email


def test_it_does_not_remind_the_waitlisted_the_withdrawn_or_another_sessions_winners(
    drawn, django_capture_on_commit_callbacks
):
    with time_machine.travel(reminder_time(drawn.tama) + dt.timedelta(hours=1), tick=False):
        run_task(django_capture_on_commit_callbacks)
    sent = reminded()
    for other in (drawn.waitlisted, drawn.withdrawn, drawn.center):
        assert other.number not in sent
    # Central Tokyo's turn comes a week later.
    with time_machine.travel(reminder_time(drawn.center.choice_1.session), tick=False):
        run_task(django_capture_on_commit_callbacks)
    assert drawn.center.number in reminded()


def test_it_sends_nothing_before_the_reminder_time_or_once_the_session_has_started(
    drawn, django_capture_on_commit_callbacks
):
    with time_machine.travel(reminder_time(drawn.tama) - dt.timedelta(minutes=1), tick=False):
        run_task(django_capture_on_commit_callbacks)
    assert reminded() == {}
    with time_machine.travel(drawn.tama.starts(), tick=False):
        run_task(django_capture_on_commit_callbacks)
    assert drawn.venue.number not in reminded()


def test_it_follows_the_sessions_reminder_days(drawn, django_capture_on_commit_callbacks):
    drawn.tama.reminder_days_before = 7
    drawn.tama.save()
    with time_machine.travel(drawn.tama.starts() - dt.timedelta(days=7), tick=False):
        run_task(django_capture_on_commit_callbacks)
    assert drawn.venue.number in reminded()


def test_the_venue_reminder_names_the_place_and_links_to_the_ticket(
    drawn, django_capture_on_commit_callbacks
):
    with time_machine.travel(reminder_time(drawn.tama), tick=False):
        run_task(django_capture_on_commit_callbacks)
    email = reminded()[drawn.venue.number]
    assert "/ticket/" in email.body_text and "/ticket/" in email.body_html
    assert "/calendar.ics" in email.body_text
    assert "不登校" not in email.subject
    assert ONLINE_URL not in email.body_text + email.body_html


def test_the_online_reminder_carries_the_viewing_link_when_it_is_shown(
    drawn, django_capture_on_commit_callbacks
):
    with time_machine.travel(reminder_time(drawn.tama), tick=False):
        run_task(django_capture_on_commit_callbacks)
    email = reminded()[drawn.online.number]
    assert ONLINE_URL in email.body_text and ONLINE_URL in email.body_html
    assert "/ticket/" not in email.body_text


def test_an_online_reminder_waits_until_the_viewing_link_may_be_shown(
    drawn, django_capture_on_commit_callbacks
):
    drawn.tama.online_link_shown_from = drawn.tama.starts() - dt.timedelta(days=1)
    drawn.tama.save()
    with time_machine.travel(reminder_time(drawn.tama) + dt.timedelta(hours=1), tick=False):
        run_task(django_capture_on_commit_callbacks)
    assert set(reminded()) == {drawn.venue.number}
    with time_machine.travel(drawn.tama.online_link_shown_from, tick=False):
        run_task(django_capture_on_commit_callbacks)
    assert ONLINE_URL in reminded()[drawn.online.number].body_text


def test_each_reminder_is_written_in_the_parents_language(
    drawn, django_capture_on_commit_callbacks
):
    with time_machine.travel(reminder_time(drawn.tama), tick=False):
        run_task(django_capture_on_commit_callbacks)
    sent = reminded()
    japanese, english = sent[drawn.venue.number], sent[drawn.online.number]
    with translation.override("ja"):
        ja_prefix = gettext("[Learning spaces seminar]")
        ja_footer = gettext("Tokyo Metropolitan Government seminar office")
    assert ja_prefix != "[Learning spaces seminar]"  # the catalogue is there
    assert japanese.language == "ja" and japanese.subject.startswith(ja_prefix)
    assert ja_footer in japanese.body_text and "多摩会場" in japanese.body_text
    assert "/en/" not in japanese.body_text
    assert english.language == "en" and english.subject.startswith("[Learning spaces seminar]")
    assert "Tokyo Metropolitan Government seminar office" in english.body_text
    assert "Tama" in english.body_text and "/en/my/" in english.body_text
    assert 'lang="en"' in english.body_html and 'lang="ja"' in japanese.body_html


def test_a_parent_promoted_after_the_reminders_gets_one_at_the_next_run(
    drawn, django_capture_on_commit_callbacks
):
    # Promotions may run later than the reminders when staff set the deadline so.
    drawn.tama.promotion_deadline = drawn.tama.starts() - dt.timedelta(hours=1)
    drawn.tama.save()
    with time_machine.travel(reminder_time(drawn.tama), tick=False):
        run_task(django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            services.application_withdraw(application=drawn.venue)
    with time_machine.travel(reminder_time(drawn.tama) + dt.timedelta(hours=1), tick=False):
        run_task(django_capture_on_commit_callbacks)
    sent = reminded()
    assert drawn.waitlisted.number in sent
    assert Application.objects.get(pk=drawn.venue.pk).status == "withdrawn"
    assert OutboxEmail.objects.filter(kind="reminder", application=drawn.venue).count() == 1


def test_the_beat_runs_the_reminders_every_hour():
    entry = settings.CELERY_BEAT_SCHEDULE["reminders"]
    assert entry["task"] == tasks.reminders_send.name
    assert entry["task"] in celery_app.tasks
    assert entry["schedule"] == 3600.0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_four_runs_at_once_remind_each_winner_once(drawn):
    from tests.concurrency import at_once

    with time_machine.travel(reminder_time(drawn.tama), tick=False):
        _, errors = at_once(lambda _run: reminders.reminders_send(), range(4))
    assert not errors, errors
    assert set(reminded()) == {drawn.venue.number, drawn.online.number}
