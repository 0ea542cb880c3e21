"""Two staff members (or a retried task) drawing at the same moment, on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from django.db.models import Count
from django.utils import timezone

from lottery import services
from lottery.models import LotteryResult, LotteryRun, Place
from lottery.verify import replay, verify
from registration import services as registration_services
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


def test_a_withdrawal_during_the_draw_waits_for_it_and_is_recorded_after_it(settings):
    """The draw holds the capacity lock until it commits; a withdrawal made meanwhile takes the
    same lock before it looks at the run, so it sees the draw and is the first event after it
    (had it looked first, it would have found the roll frozen, and the draw would not have seen
    it either: a departure missing from the audit file)."""
    now = timezone.now()
    edition = EditionFactory(
        registration_opens_at=now - dt.timedelta(days=9),
        registration_closes_at=now - dt.timedelta(hours=1),
        freeze_at=now - dt.timedelta(minutes=1),
        draw_at=now,
    )
    applications = ApplicationFactory.create_batch(30, edition=edition)
    services.lottery_freeze(edition=edition, actor=None)
    settings.LOTTERY_TEST_PAUSE_SECONDS = 1.5  # the draw waits here with everything written

    def work(step: str) -> object:
        if step == "draw":
            return services.lottery_draw(edition=edition, actor=None, randomness="race")
        time.sleep(0.5)  # the draw has read the roll's statuses and holds the lock
        return registration_services.application_withdraw(application=applications[7])

    _, errors = at_once(work, ["draw", "withdraw"])
    assert not errors, errors
    audit = json.loads(services.lottery_audit_json(edition=edition))
    assert [e["number"] for e in audit["events"] if e["kind"] == "withdrawn"] == [
        applications[7].number
    ]
    assert verify(audit) == []
    holdings, _events = replay(audit)
    assert set(holdings) == set(
        Place.objects.filter(run__edition=edition).values_list("application__number", flat=True)
    )
