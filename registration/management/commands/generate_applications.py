"""Synthetic applications for tests, demos and benchmarks (no real person behind any)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from childcare.models import Child, ChildcareBand
from registration import municipalities
from registration.models import GRADE_CHOICES, NUMBER_ALPHABET, Application, Edition, Option


class Command(BaseCommand):
    help = "Create N synthetic active applications in an edition, reproducibly from a seed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("edition")
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--random-seed", type=int, default=0)

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        try:
            edition = Edition.objects.get(code=options["edition"])
        except Edition.DoesNotExist as e:
            raise CommandError(f"No edition with code {options['edition']!r}.") from e
        made = generate(edition, count=options["count"], random_seed=options["random_seed"])
        self.stdout.write(f"Created {made} applications in {edition.code}.")


def generate(edition: Edition, *, count: int, random_seed: int) -> int:
    rng = random.Random(random_seed)  # noqa: S311 - synthetic data, not security
    options = list(Option.objects.filter(session__edition=edition).select_related("session"))
    if not options:
        raise CommandError("The edition has no options.")
    bands = {
        b.session_id: b
        for b in ChildcareBand.objects.filter(session__edition=edition, max_age_months__isnull=True)
    }
    taken = set(Application.objects.values_list("number", flat=True))
    towns = [m.key for m in municipalities.all_municipalities()]
    grades = [g for g, _ in GRADE_CHOICES]
    start = edition.registration_opens_at
    span = max((edition.registration_closes_at - start).total_seconds(), 1)
    applications, children = [], []
    for i in range(count):
        number = "".join(rng.choice(NUMBER_ALPHABET) for _ in range(8))
        while number in taken:
            number = "".join(rng.choice(NUMBER_ALPHABET) for _ in range(8))
        taken.add(number)
        chosen = rng.sample(options, rng.choice([1, 2, 2, 3, 3]))
        venue = [o for o in chosen if o.is_venue]
        adults = rng.choice([1, 1, 1, 2]) if venue else 1
        kids = rng.choice([0, 0, 0, 1, 1, 2, 3]) if venue else 0
        in_childcare = min(kids, rng.choice([0, 0, 0, 1, 2]))
        application = Application(
            edition=edition,
            number=number,
            choice_1=chosen[0],
            choice_2=chosen[1] if len(chosen) > 1 else None,
            choice_3=chosen[2] if len(chosen) > 2 else None,
            family_name="試験",
            given_name=f"{i}",
            family_name_kana="シケン",
            given_name_kana="データ",
            email=f"synthetic-{random_seed}-{i}@example.invalid",
            phone=f"090{rng.randrange(10**8):08d}",
            municipality=rng.choice(towns),
            grades=",".join(sorted(rng.sample(grades, rng.choice([1, 1, 2])))),
            adults=adults,
            children=kids,
            childcare_fallback=rng.choice(["hall", "skip"]) if in_childcare else "",
            privacy_consent_at=timezone.now(),
            health_consent_at=timezone.now() if in_childcare else None,
            created_at=start + dt.timedelta(seconds=rng.random() * span),
        )
        applications.append(application)
        for position in range(1, in_childcare + 1):
            session_date = venue[0].session.date
            band = bands.get(venue[0].session_id)
            # 3 to 5 years old on the first venue session: inside the preschool band there.
            age_days = rng.randrange(3 * 365 + 5, 5 * 365 + 100) if band else 400
            children.append(
                (
                    application,
                    Child(
                        position=position,
                        name=f"子{position}",
                        name_kana="コ",
                        date_of_birth=session_date - dt.timedelta(days=age_days),
                    ),
                )
            )
    Application.objects.bulk_create(applications, batch_size=5000)
    for application, child in children:
        child.application = application
    Child.objects.bulk_create([c for _, c in children], batch_size=5000)
    return len(applications)
