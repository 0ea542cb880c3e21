"""A mail worker killed with SIGKILL in the middle of 1,000 result e-mails: after a new worker
starts, every parent has their result, and at most one parent has it twice (the e-mail that was
on the wire when the worker died; registration/outbox/ explains the window)."""

from __future__ import annotations

import signal
from unittest import mock

import pytest
from celery import Celery
from django.utils import timezone

from lottery import services as lottery
from registration.management.commands.generate_applications import generate
from registration.models import OutboxEmail
from registration.outbox import queue as outbox_queue
from tests.lottery.drawn import closed_edition

from .procs import app_env, celery_worker, private_redis, wait_for
from .smtp import smtp_sink

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
COUNT = 1000


def statuses() -> dict[str, int]:
    result = OutboxEmail.objects.filter(kind=OutboxEmail.Kind.RESULT).values_list(
        "status", flat=True
    )
    counts: dict[str, int] = {}
    for status in result:
        counts[status] = counts.get(status, 0) + 1
    return counts


def test_a_killed_mail_worker_loses_nothing_and_sends_at_most_one_twice(tmp_path):
    edition = closed_edition()
    generate(edition, count=COUNT, random_seed=7)
    # The draw queues one result e-mail per application; the test's own (eager) drain is held
    # back so that the worker processes below do all the sending.
    with mock.patch.object(outbox_queue, "schedule_drain"):
        lottery.lottery_freeze(
            edition=edition, actor=None, actor_label="staff", confirm_duplicates=True
        )
        lottery.lottery_draw(
            edition=edition, actor=None, actor_label="staff", randomness="kill test"
        )
    assert statuses() == {"queued": COUNT}

    with private_redis(tmp_path) as redis, smtp_sink() as (sink, port):
        env = app_env(
            tmp_path,
            REDIS_URL=redis["url"],
            EMAIL_URL=f"smtp://127.0.0.1:{port}",
            # Slow enough that the kill lands mid-batch on any machine.
            OUTBOX_RATE_PER_SECOND="100",
            OUTBOX_STALE_SENDING_SECONDS="3",
            OUTBOX_SWEEP_AFTER_SECONDS="0",
            OUTBOX_SWEEP_INTERVAL_SECONDS="1",
        )
        # What the draw's on-commit hook publishes, on the private Redis (an app of its own, so
        # the test's eager app stays the current one).
        with Celery(broker=redis["url"], set_as_current=False) as app:
            app.send_task("registration.tasks.outbox_drain", queue="mail")
        with celery_worker(tmp_path, env, name="first") as first:
            wait_for(lambda: sink.count() >= 300, timeout=120, what="300 e-mails delivered")
            first["process"].send_signal(signal.SIGKILL)
            first["process"].wait(10)
        at_kill = statuses()
        delivered_at_kill = sink.count()
        print(f"\nat the kill: {at_kill}, {delivered_at_kill} delivered")
        assert at_kill.get("sending", 0) <= 1  # claims are one at a time
        assert at_kill.get("queued", 0) >= 1  # it really died mid-batch

        # A new worker with beat: the sweep re-queues the stale claim and sends the rest.
        beat = ("-B", "--schedule", str(tmp_path / "beat-schedule"))
        with celery_worker(tmp_path, env, name="second", extra=beat):
            wait_for(
                lambda: statuses() == {"sent": COUNT}, timeout=180, what="every result e-mail sent"
            )

    per_recipient = sink.per_recipient()
    duplicates = sum(n - 1 for n in per_recipient.values())
    print(f"delivered {sink.count()} messages to {len(per_recipient)} parents; {duplicates} twice")
    emails = set(OutboxEmail.objects.filter(kind="result").values_list("to", flat=True))
    assert set(per_recipient) == emails and len(emails) == COUNT
    assert duplicates <= 1
    assert all(n <= 2 for n in per_recipient.values())
    assert OutboxEmail.objects.filter(kind="result", sent_at__gt=timezone.now()).count() == 0
