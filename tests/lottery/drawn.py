"""Build small drawn lotteries with a chosen draw order, for promotion tests."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from childcare.models import Child
from lottery import procedure, services
from lottery.models import LotteryRun, Place
from registration.models import Application, Edition, Option
from tests.factories import ApplicationFactory, EditionFactory, option


def closed_edition(**capacities: int) -> Edition:
    """Registration closed; capacities like ``tama_venue=3, tama_online=1``."""
    now = timezone.now()
    edition = EditionFactory(
        registration_opens_at=now - dt.timedelta(days=30),
        registration_closes_at=now - dt.timedelta(hours=1),
        freeze_at=now - dt.timedelta(minutes=30),
        draw_at=now + dt.timedelta(days=1),
    )
    for name, capacity in capacities.items():
        session, kind = name.split("_")
        Option.objects.filter(session__edition=edition, session__code=session, kind=kind).update(
            capacity=capacity
        )
    return edition


def applicant(
    edition: Edition,
    number: str,
    choices: Sequence[str],
    *,
    adults: int = 1,
    children: int = 0,
    childcare: int = 0,
    fallback: str = "hall",
) -> Application:
    chosen = [option(edition, c) for c in choices] + [None, None]
    application = ApplicationFactory(
        edition=edition,
        number=number,
        choice_1=chosen[0],
        choice_2=chosen[1],
        choice_3=chosen[2],
        adults=adults,
        children=children,
        childcare_fallback=fallback if childcare else "",
    )
    session = chosen[0].session if chosen[0] else None
    for position in range(1, childcare + 1):
        Child.objects.create(
            application=application,
            position=position,
            name="子",
            name_kana="コ",
            date_of_birth=session.date - dt.timedelta(days=4 * 365),
        )
    return application


def draw_in_order(edition: Edition, *groups: Sequence[str], **kwargs: Any) -> LotteryRun:
    """Freeze, then draw with a public randomness that ranks every number of a group before
    every number of the next group (one group: exactly that order)."""
    run = services.lottery_freeze(edition=edition, actor=None, actor_label="staff", **kwargs)
    entries = json.loads(run.roll_json)["entries"]
    wanted = groups if len(groups) > 1 else [[n] for n in groups[0]]
    position = {number: g for g, group in enumerate(wanted) for number in group}
    for attempt in range(50000):
        seed = procedure.seed(run.roll_hash, run.secret, str(attempt))
        ranked = [
            position[e["number"]]
            for e, _key in procedure.draw_order(entries, seed)
            if e["number"] in position
        ]
        if ranked == sorted(ranked):
            services.lottery_draw(
                edition=edition, actor=None, actor_label="staff", randomness=str(attempt)
            )
            run.refresh_from_db()
            return run
    raise AssertionError("no randomness gives that order")


def places(edition: Edition) -> dict[str, tuple[str, str]]:
    return {
        p.application.number: (p.option.code, p.childcare)
        for p in Place.objects.filter(run__edition=edition).select_related(
            "application", "option__session"
        )
    }
