"""The export tables: translated headers and rows read from the database in chunks
(``values_list(...).iterator(chunk_size=CHUNK_SIZE)``), never a list of every row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from childcare.models import Child, ChildcareBand, age_in_months, band_for
from lottery.models import LotteryResult
from registration import municipalities
from registration.models import (
    GRADE_LABELS,
    Application,
    Booth,
    Edition,
    Option,
    Organisation,
    Session,
)
from registration.normalize import format_phone
from seminar_site.i18n import active_language

Cell = str | int | dt.date | dt.datetime | None

CHUNK_SIZE = 2000


@dataclass
class Table:
    name: str  # ASCII file name without extension, e.g. "applications-2026-tama"
    title: str  # translated; the XLSX sheet's name
    headers: list[str]
    rows: Iterable[Sequence[Cell]]


MOBILE_PREFIXES = ("050", "070", "080", "090")


def _phone(digits: str) -> str:
    """Hyphenated, as people read it, and so that Excel keeps the leading zero. Mobile numbers
    (most parents') are cut by hand: phonenumbers takes ~0.3 ms a number, too slow for 100,000
    rows."""
    if len(digits) == 11 and digits.startswith(MOBILE_PREFIXES):
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    return format_phone(digits)


def _municipality_labels() -> dict[str, str]:
    return {m.key: m.name for m in municipalities.all_municipalities()}


def _header(model: Any, field: str) -> str:
    return str(capfirst(model._meta.get_field(field).verbose_name))


def _option_labels(edition_id: int) -> dict[int, str]:
    """Short, translated option names: 'Tama: At the venue'."""
    return {
        o.pk: f"{o.session.name}: {o.get_kind_display()}"
        for o in Option.objects.filter(session__edition=edition_id).select_related("session")
    }


def applications_table(*, edition: Edition, session: Session | None = None) -> Table:
    """Every application of the edition (or choosing the session), whatever its status."""
    options = _option_labels(edition.pk)
    statuses = {s.value: str(s.label) for s in Application.Status}
    fallbacks = {f.value: str(f.label) for f in Application.Fallback}
    outcomes = {o.value: str(o.label) for o in LotteryResult.Outcome}
    childcare = {c.value: str(c.label) for c in LotteryResult.Childcare}
    grades = {code: str(label) for code, label in GRADE_LABELS.items()}
    municipality_names = _municipality_labels()
    yes = _("Yes")
    children_booked = Coalesce(
        Subquery(
            Child.objects.filter(application=OuterRef("pk"))
            .values("application")
            .annotate(n=Count("pk"))
            .values("n"),
            output_field=IntegerField(),
        ),
        Value(0),
    )
    queryset = Application.objects.filter(edition=edition)
    if session is not None:
        queryset = queryset.for_session(session)
    rows = (
        queryset.annotate(children_booked=children_booked)
        .order_by("created_at", "pk")
        .values_list(
            "number",
            "status",
            "created_at",
            "choice_1",
            "choice_2",
            "choice_3",
            "family_name",
            "given_name",
            "family_name_kana",
            "given_name_kana",
            "email",
            "phone",
            "municipality",
            "grades",
            "adults",
            "children",
            "children_booked",
            "childcare_fallback",
            "needs_sign_language",
            "needs_wheelchair_space",
            "needs_other",
            "questions",
            "language",
            "lottery_result__outcome",
            "lottery_result__rank",
            "place__option",
            "place__childcare",
            "place__promoted",
            "withdrawn_at",
            "status_reason",
        )
    )

    def lines() -> Iterator[list[Cell]]:
        for r in rows.iterator(chunk_size=CHUNK_SIZE):
            (number, status, created, c1, c2, c3, family, given, family_kana, given_kana) = r[:10]
            (email, phone, municipality, grade_codes, adults, children, booked, fallback) = r[10:18]
            (sign, wheelchair, other, questions, language, outcome, rank) = r[18:25]
            (place_option, place_childcare, promoted, withdrawn_at, reason) = r[25:]
            yield [
                number,
                statuses.get(status, status),
                created,
                options.get(c1, ""),
                options.get(c2, "") if c2 else "",
                options.get(c3, "") if c3 else "",
                family,
                given,
                family_kana,
                given_kana,
                email,
                _phone(phone),
                municipality_names.get(municipality, municipality),
                ", ".join(grades.get(g, g) for g in grade_codes.split(",") if g),
                adults,
                children,
                booked,
                fallbacks.get(fallback, ""),
                yes if sign else "",
                yes if wheelchair else "",
                other,
                questions,
                language,
                outcomes.get(outcome, "") if outcome else "",
                rank,
                options.get(place_option, "") if place_option else "",
                childcare.get(place_childcare, "") if place_childcare else "",
                yes if promoted else "",
                withdrawn_at,
                reason,
            ]

    a = Application
    headers = [
        _header(a, "number"),
        _header(a, "status"),
        _header(a, "created_at"),
        _header(a, "choice_1"),
        _header(a, "choice_2"),
        _header(a, "choice_3"),
        _header(a, "family_name"),
        _header(a, "given_name"),
        _header(a, "family_name_kana"),
        _header(a, "given_name_kana"),
        _header(a, "email"),
        _header(a, "phone"),
        _header(a, "municipality"),
        _header(a, "grades"),
        _header(a, "adults"),
        _header(a, "children"),
        _("Children in childcare"),
        _header(a, "childcare_fallback"),
        _header(a, "needs_sign_language"),
        _header(a, "needs_wheelchair_space"),
        _header(a, "needs_other"),
        _header(a, "questions"),
        _header(a, "language"),
        _("Lottery result"),
        _header(LotteryResult, "rank"),
        _("Place held now"),
        _("Childcare"),
        _("From the waiting list"),
        _header(a, "withdrawn_at"),
        _header(a, "status_reason"),
    ]
    scope = f"{edition.code}-{session.code}" if session else edition.code
    return Table(
        f"applications-{scope}",
        str(capfirst(Application._meta.verbose_name_plural)),
        headers,
        lines(),
    )


def childcare_table(*, session: Session, parents: bool, health_notes: bool) -> Table:
    """The children expected in the session's childcare (`Child.objects.at_sessions`), granted
    first, then by age band, youngest first.

    The parents' names and phone only for staff who see applications anyway (`parents`): the
    childcare staff get the application number and nothing else of the parents; the children's
    allergies and notes only with `health_notes`.
    """
    bands = list(ChildcareBand.objects.filter(session=session).select_related("session"))
    labels = {c.value: str(c.label) for c in LotteryResult.Childcare}
    no_place = _("No place yet (before the draw or on a waiting list)")
    rows = (
        Child.objects.at_sessions([session])
        .order_by(
            F("application__place__childcare").asc(nulls_last=True),
            "-date_of_birth",
            "name_kana",
            "pk",
        )
        .values_list(
            "name",
            "name_kana",
            "date_of_birth",
            "notes",
            "application__number",
            "application__place__childcare",
            "application__family_name",
            "application__given_name",
            "application__family_name_kana",
            "application__given_name_kana",
            "application__phone",
        )
    )

    def lines() -> Iterator[list[Cell]]:
        for r in rows.iterator(chunk_size=CHUNK_SIZE):
            name, kana, born, notes, number, status = r[:6]
            family, given, family_kana, given_kana, phone = r[6:]
            band = band_for(bands, born)
            if band is None:
                continue  # no band fits: the child stays with the parents (as in the lottery)
            months = age_in_months(born, session.date)
            age = _("%(years)d years %(months)d months") % {
                "years": months // 12,
                "months": months % 12,
            }
            line: list[Cell] = [band.label, name, kana, born, age, number]
            line.append(labels.get(status, status) if status else no_place)
            if parents:
                line += [f"{family} {given}", f"{family_kana} {given_kana}", _phone(phone)]
            if health_notes:
                line.append(notes)
            yield line

    headers = [
        str(capfirst(ChildcareBand._meta.verbose_name)),
        _header(Child, "name"),
        _header(Child, "name_kana"),
        _header(Child, "date_of_birth"),
        _("Age on the session date"),
        _header(Application, "number"),
        _("Childcare"),
    ]
    if parents:
        headers += [_("Parent's name"), _("Parent's furigana"), _header(Application, "phone")]
    if health_notes:
        headers.append(_header(Child, "notes"))
    return Table(
        f"childcare-{session.edition.code}-{session.code}", _("Childcare roster"), headers, lines()
    )


def reception_table(*, session: Session) -> Table:
    """The parties expected at the venue, by furigana, with their arrival if recorded."""
    childcare = {c.value: str(c.label) for c in LotteryResult.Childcare}
    yes = _("Yes")
    rows = (
        Application.objects.holding_venue(session)
        .order_by("family_name_kana", "given_name_kana", "pk")
        .values_list(
            "number",
            "family_name_kana",
            "given_name_kana",
            "family_name",
            "given_name",
            "adults",
            "children",
            "place__childcare",
            "needs_sign_language",
            "needs_wheelchair_space",
            "needs_other",
            "attendance__arrived_at",
            "attendance__heads",
        )
    )

    def lines() -> Iterator[list[Cell]]:
        for r in rows.iterator(chunk_size=CHUNK_SIZE):
            number, f_kana, g_kana, family, given, adults, children, care = r[:8]
            sign, wheelchair, other, arrived_at, arrived_heads = r[8:]
            yield [
                number,
                f"{f_kana} {g_kana}",
                f"{family} {given}",
                adults + children,
                adults,
                children,
                childcare.get(care, ""),
                yes if sign else "",
                yes if wheelchair else "",
                other,
                arrived_at,
                arrived_heads,
            ]

    a = Application
    headers = [
        _header(a, "number"),
        _("Furigana"),
        _("Name"),
        _("People"),
        _header(a, "adults"),
        _header(a, "children"),
        _("Childcare"),
        _header(a, "needs_sign_language"),
        _header(a, "needs_wheelchair_space"),
        _header(a, "needs_other"),
        _("Arrived at"),
        _("People arrived"),
    ]
    return Table(
        f"reception-{session.edition.code}-{session.code}", _("Reception list"), headers, lines()
    )


def booths_table(*, session: Session) -> Table:
    """How many active applications chose each booth, and how many of them hold a venue place."""
    active = Q(interested__status=Application.Status.ACTIVE)
    holding = active & Q(
        interested__place__option__session=session,
        interested__place__option__kind=Option.Kind.VENUE,
    )
    categories = {c.value: str(c.label) for c in Organisation.Category}
    booths = (
        Booth.objects.filter(session=session)
        .annotate(
            n_interested=Count("interested", filter=active, distinct=True),
            n_holding=Count("interested", filter=holding, distinct=True),
        )
        .order_by("number")
        .values_list(
            "number",
            "organisation__name_ja",
            "organisation__name_en",
            "organisation__category",
            "n_interested",
            "n_holding",
        )
    )
    english = active_language() == "en"

    def lines() -> Iterator[list[Cell]]:
        for number, name_ja, name_en, category, interested, holding in booths.iterator(
            chunk_size=CHUNK_SIZE
        ):
            yield [
                number,
                (name_en if english and name_en else name_ja),
                categories.get(category, category),
                interested,
                holding,
            ]

    headers = [
        _header(Booth, "number"),
        _header(Booth, "organisation"),
        _header(Organisation, "category"),
        _("Interested (active applications)"),
        _("Interested and holding a venue place"),
    ]
    return Table(
        f"booths-{session.edition.code}-{session.code}", _("Booth interest"), headers, lines()
    )
