"""Two staff members (or a retried task) drawing at the same moment, on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Count
from django.utils import timezone

from lottery import services
from lottery.models import LotteryResult, LotteryRun
from registration.models import OutboxEmail
from tests.concurrency import at_once
from tests.factories import ApplicationFactory, EditionFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_threads_drawing_at_once_make_exactly_one_draw_and_one_email_each():
    now = timezone.now()
    edition = EditionFactory(
        registration_opens_at=now - dt.timedelta(days=9),
        registration_closes_at=now - dt.timedelta(hours=1),
        freeze_at=now - dt.timedelta(minutes=1),
        draw_at=now,
    )
    ApplicationFactory.create_batch(40, edition=edition)
    services.lottery_freeze(edition=edition, actor=None, actor_label="staff")
    outcomes, errors = at_once(
        lambda who: services.lottery_draw(
            edition=edition, actor=None, actor_label=who, randomness=who
        ),
        ["alice", "bob"],
    )
    assert not errors, errors
    assert sorted(o.drawn for o in outcomes) == [False, True]
    run = LotteryRun.objects.get()
    winner = next(o for o in outcomes if o.drawn)
    assert run.state == "drawn" and run.drawn_by == run.public_randomness
    assert LotteryResult.objects.count() == 40 == winner.counts["entries"]
    per_application = (
        OutboxEmail.objects.filter(kind="result").values("application").annotate(n=Count("id"))
    )
    assert len(per_application) == 40 and {row["n"] for row in per_application} == {1}
