from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from childcare.models import ChildcareBand
from registration.models import Application, Booth, Edition, Option, Organisation, Session


class EditionFactory(factory.django.DjangoModelFactory):
    """An edition whose registration opened yesterday and closes in a week."""

    class Meta:
        model = Edition
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"e{n}")
    title_ja = "テストセミナー"
    title_en = "Test seminar"
    registration_opens_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    registration_closes_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=7))
    freeze_at = factory.LazyAttribute(lambda o: o.registration_closes_at + dt.timedelta(hours=1))
    draw_at = factory.LazyAttribute(lambda o: o.freeze_at + dt.timedelta(days=1))

    @factory.post_generation
    def sessions(self, create: bool, extracted: object, **kwargs: object) -> None:
        if not create or extracted is False:
            return
        today = timezone.localdate()
        for code, days in (("tama", 40), ("center", 47)):
            SessionFactory(edition=self, code=code, date=today + dt.timedelta(days=days))


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Session
        skip_postgeneration_save = True

    edition = factory.SubFactory(EditionFactory, sessions=False)
    code = "tama"
    name_ja = factory.LazyAttribute(lambda o: "多摩会場" if o.code == "tama" else "都心会場")
    name_en = factory.LazyAttribute(lambda o: "Tama" if o.code == "tama" else "Central Tokyo")
    date = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=40))
    venue_ja = "会場"
    venue_en = "Venue"
    address_ja = "東京都"
    address_en = "Tokyo"
    promotion_deadline = factory.LazyAttribute(
        lambda o: (
            dt.datetime.combine(o.date, dt.time(13, 30), tzinfo=timezone.get_default_timezone())
            - dt.timedelta(days=5)
        )
    )

    @factory.post_generation
    def options(self, create: bool, extracted: object, **kwargs: object) -> None:
        if not create:
            return
        Option.objects.create(session=self, kind=Option.Kind.VENUE, capacity=150)
        Option.objects.create(session=self, kind=Option.Kind.ONLINE, capacity=300)
        ChildcareBand.objects.create(
            session=self,
            code="0-2",
            label_ja="6か月〜2歳",
            label_en="6 months to 2 years",
            min_age_months=6,
            max_age_months=35,
            slots=6,
        )
        ChildcareBand.objects.create(
            session=self,
            code="3-5",
            label_ja="3歳〜未就学児",
            label_en="3 years to preschool",
            min_age_months=36,
            max_age_months=None,
            slots=10,
        )
        org = Organisation.objects.create(
            name_ja=f"フリースクール{self.code}",
            name_en="",
            category=Organisation.Category.FREE_SCHOOL,
        )
        Booth.objects.create(session=self, organisation=org, number=1)


def option(edition: Edition, code: str) -> Option:
    """``option(edition, "tama:venue")``."""
    session, kind = code.split(":")
    return Option.objects.select_related("session").get(
        session__edition=edition, session__code=session, kind=kind
    )


class ApplicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Application

    edition = factory.SubFactory(EditionFactory)
    choice_1 = factory.LazyAttribute(lambda o: option(o.edition, "tama:venue"))
    family_name = "山田"
    given_name = factory.Sequence(lambda n: f"花子{n}")
    family_name_kana = "ヤマダ"
    given_name_kana = "ハナコ"
    email = factory.Sequence(lambda n: f"parent{n}@example.jp")
    phone = factory.Sequence(lambda n: f"090{n:08d}")
    municipality = "hachioji"
    grades = "e4"
    privacy_consent_at = factory.LazyFunction(timezone.now)
