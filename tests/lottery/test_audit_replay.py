"""The published audit file replays: 3,000 entries, 60 departures through the real services
(parents, staff on the phone, duplicates removed, entries holding nothing, one between the
freeze and the draw, a promotion deadline passing), then `lottery.verify` recomputes the draw and
every event, and its replay ends with exactly the places in the database."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from lottery import services as lottery
from lottery.models import LotteryEvent, Place
from lottery.verify import replay, verify
from registration import services
from registration.management.commands.generate_applications import generate
from registration.models import Application, DuplicateFlag
from tests.lottery.drawn import closed_edition

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_sixty_departures_of_every_kind_replay_from_the_audit_file_to_the_database():
    assert connection.vendor == "postgresql", "CI runs this on PostgreSQL"
    edition = closed_edition(tama_venue=150, tama_online=300, center_venue=150, center_online=300)
    generate(edition, count=3000, random_seed=11)
    rng = random.Random(5)
    clerk = get_user_model().objects.create(username="office-clerk", is_staff=True)
    start = edition.registration_closes_at + dt.timedelta(minutes=5)
    tama = edition.sessions.get(code="tama")
    tama.promotion_deadline = start + dt.timedelta(hours=2)  # passes halfway through
    tama.save(update_fields=["promotion_deadline"])

    lottery.lottery_freeze(edition=edition, actor=None, confirm_duplicates=True, now=start)
    early = Application.objects.filter(edition=edition).order_by("number").first()
    assert early is not None
    services.application_withdraw(application=early, now=start + dt.timedelta(minutes=1))
    lottery.lottery_draw(edition=edition, actor=clerk, now=start + dt.timedelta(minutes=2))

    holders = list(Place.objects.filter(run__edition=edition).values_list("application", flat=True))
    active = Application.objects.active().filter(edition=edition)
    waiting = list(active.exclude(pk__in=holders).values_list("pk", flat=True))
    chosen = rng.sample(holders, 45) + rng.sample(waiting, 15)  # 15 that hold nothing
    rng.shuffle(chosen)
    for i, pk in enumerate(chosen):
        application = Application.objects.get(pk=pk)
        if application.status != Application.Status.ACTIVE:
            continue
        now = start + dt.timedelta(minutes=10 + 4 * i)  # 10 min to 4 h: tama closes at 2 h
        way = i % 4
        if way == 0:
            services.application_withdraw(application=application, now=now)
        elif way == 1:
            services.application_withdraw(
                application=application, actor=clerk, reason="phone call", now=now
            )
        elif way == 2:
            services.application_remove(
                application=application, status="invalid", actor=clerk, reason="test", now=now
            )
        else:
            other = active.exclude(pk=pk).order_by("?").first()
            assert other is not None
            DuplicateFlag.objects.create(application=application, other=other, reason="phone")
            services.duplicate_remove_one(
                remove=application,
                keep=other,
                status="duplicate",
                actor=clerk,
                reason="same",
                now=now,
            )

    audit = json.loads(lottery.lottery_audit_json(edition=edition))
    departures = [e for e in audit["events"] if e["kind"] in ("withdrawn", "removed")]
    assert len(departures) == 61 and departures[0]["number"] == early.number
    assert {e["kind"] for e in audit["events"]} >= {"withdrawn", "removed", "promoted"}
    assert any(e["option"] is None for e in departures), "some held nothing"
    assert verify(audit) == []

    holdings, events = replay(audit)
    assert events == audit["events"]
    in_database = {
        number: (option.code, childcare)
        for number, option, childcare in (
            (p.application.number, p.option, p.childcare)
            for p in Place.objects.filter(run__edition=edition).select_related(
                "application", "option__session"
            )
        )
    }
    assert {n: tuple(h) for n, h in holdings.items()} == in_database
    # Nothing was promoted in tama after its deadline.
    late = [
        e
        for e in audit["events"]
        if e["kind"] in ("promoted", "childcare_granted")
        and e["option"].startswith("tama:")
        and e["time"] >= tama.promotion_deadline.isoformat()
    ]
    assert late == []
    assert LotteryEvent.objects.filter(run__edition=edition).count() == len(audit["events"])
