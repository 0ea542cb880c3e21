"""Many parents withdrawing at the same moment, on PostgreSQL with real threads.

The invariants are checked by replaying the event log from the draw: no place is given twice,
no capacity is ever exceeded, the log explains the places in the database, and each promotion
sent one e-mail. The negative control removes the lock (a test-only switch) and widens the race
window, and the same checks must then fail: they are what proves the lock works.
"""

from __future__ import annotations

from collections import Counter

import pytest

from lottery.models import LotteryEvent, LotteryResult, Place
from registration import services
from registration.models import Application, Option, OutboxEmail
from tests.concurrency import at_once

from .drawn import applicant, closed_edition, draw_in_order

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HOLDERS = [f"H{i}HHHHHH" for i in range(1, 10)]  # 9 people of 1
WAITING = [f"W{i}WWWWWW" for i in range(1, 6)]  # parties of 3: none fits in the 2 seats left


def scenario():  # type: ignore[no-untyped-def]
    edition = closed_edition(tama_venue=11)
    for number in HOLDERS:
        applicant(edition, number, ["tama:venue"])
    for number in WAITING:
        applicant(edition, number, ["tama:venue"], adults=2, children=1)
    run = draw_in_order(edition, HOLDERS, WAITING)
    assert Place.objects.count() == 9
    return edition, run


def withdraw_at_once(numbers: list[str]) -> list[BaseException]:
    applications = list(Application.objects.filter(number__in=numbers))
    _, errors = at_once(lambda a: services.application_withdraw(application=a), applications)
    return errors


def problems(run) -> list[str]:  # type: ignore[no-untyped-def]
    """Replay the event log from the draw and compare with the database."""
    found = []
    heads = {a.number: a.heads for a in Application.objects.filter(edition=run.edition)}
    capacity = {o.pk: o.capacity for o in Option.objects.filter(session__edition=run.edition)}
    holding = {r.number: r.option_id for r in LotteryResult.objects.filter(run=run, outcome="won")}
    for event in LotteryEvent.objects.filter(run=run).order_by("id"):
        if event.kind in ("withdrawn", "removed", "released"):
            if holding.pop(event.number, None) != event.option_id:
                found.append(f"{event.kind} {event.number}: it did not hold that place")
        elif event.kind == "promoted":
            if holding.get(event.number) == event.option_id:
                found.append(f"promoted {event.number} twice: a seat counted twice")
            holding[event.number] = event.option_id
        used = Counter()
        for number, option_id in holding.items():
            used[option_id] += heads[number]
        found += [
            f"option {o} over capacity: {n} > {capacity[o]}"
            for o, n in used.items()
            if n > capacity[o]
        ]
    in_db = dict(Place.objects.filter(run=run).values_list("application__number", "option_id"))
    if in_db != holding:
        found.append(f"the log does not explain the places: {holding} != {in_db}")
    used_db = Counter()
    for number, option_id in in_db.items():
        used_db[option_id] += heads[number]
    found += [f"database over capacity on {o}" for o, n in used_db.items() if n > capacity[o]]
    promoted = Counter(
        LotteryEvent.objects.filter(run=run, kind="promoted").values_list("number", flat=True)
    )
    emails = Counter(
        OutboxEmail.objects.filter(kind="promoted").values_list("application__number", flat=True)
    )
    if promoted != emails:
        found.append(f"one e-mail per promotion expected: {dict(promoted)} vs {dict(emails)}")
    return found


def test_concurrent_withdrawals_never_count_a_seat_twice(settings):
    settings.LOTTERY_TEST_PAUSE_SECONDS = 0.2  # the window is wide, the lock must hold
    _, run = scenario()
    errors = withdraw_at_once(HOLDERS[:6])
    assert not errors, errors
    assert problems(run) == []
    # 6 withdrawn + 2 free = 8 seats: two parties of 3 promoted, 2 seats left for nobody.
    first_waiting = list(
        LotteryResult.objects.filter(run=run, number__in=WAITING)
        .order_by("rank")
        .values_list("number", flat=True)
    )[:2]
    assert sorted(
        Place.objects.filter(promoted=True).values_list("application__number", flat=True)
    ) == sorted(first_waiting)


def test_negative_control_without_the_lock_the_same_checks_catch_overbooking(settings):
    settings.LOTTERY_TEST_PAUSE_SECONDS = 0.2
    settings.LOTTERY_TEST_SKIP_LOCK = True
    _, run = scenario()
    errors = withdraw_at_once(HOLDERS[:6])
    assert errors or problems(run), "the checks failed to notice a race without the lock"
