"""The office's dashboard on the admin index, for the current edition.

A handful of aggregate queries (one per chart, whatever the number of applications) and a few
lines of Python, drawn as bar charts in inline SVG (charts.py). Each chart is an image with a
title and a description, followed by a visually hidden table holding the same numbers for
screen readers (templates/admin/office/dashboard/).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from childcare.models import Child, ChildcareBand, band_for
from lottery.models import LotteryResult, LotteryRun, Place
from registration import municipalities
from registration.models import Application, Edition, Option

from .charts import BarChart, BarRow, Column, ColumnChart

MAX_DAYS = 92  # a longer registration window shows its last three months
TOP_MUNICIPALITIES = 10


@dataclass
class Dashboard:
    edition: Edition
    submitted: int
    active: int
    drawn: bool
    charts: list[BarChart | ColumnChart]


def build_dashboard(edition: Edition, *, today: dt.date | None = None) -> Dashboard:
    """Every chart of the edition, in eight queries whatever its size."""
    today = today or timezone.localdate()
    options = sorted(
        Option.objects.filter(session__edition=edition).select_related("session"),
        key=lambda o: (o.session.date, o.session.code, not o.is_venue),  # venue, then online
    )
    labels = {o.pk: f"{o.session.name}: {o.get_kind_display()}" for o in options}
    counts = _application_counts(edition, options)
    drawn = LotteryRun.objects.filter(edition=edition, state=LotteryRun.State.DRAWN).exists()
    charts: list[BarChart | ColumnChart] = [
        per_day_chart(edition, today=today),
        demand_chart(options, labels, counts),
        fill_chart(edition, options, labels, drawn=drawn),
        childcare_chart(edition, options, drawn=drawn),
        municipality_chart(edition),
    ]
    return Dashboard(edition, counts["submitted"], counts["active"], drawn, charts)


def _application_counts(edition: Edition, options: list[Option]) -> dict[str, int]:
    active = Q(status=Application.Status.ACTIVE)
    aggregates = {"submitted": Count("pk"), "active": Count("pk", filter=active)}
    for o in options:
        aggregates[f"first_{o.pk}"] = Count("pk", filter=active & Q(choice_1=o.pk))
        aggregates[f"any_{o.pk}"] = Count(
            "pk", filter=active & (Q(choice_1=o.pk) | Q(choice_2=o.pk) | Q(choice_3=o.pk))
        )
    return Application.objects.filter(edition=edition).aggregate(**aggregates)


def per_day_chart(edition: Edition, *, today: dt.date) -> ColumnChart:
    """Applications submitted per day (Tokyo time), whatever became of them since."""
    tz = ZoneInfo(settings.TIME_ZONE)
    per_day = dict(
        Application.objects.filter(edition=edition)
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(n=Count("pk"))
        .order_by("day")
        .values_list("day", "n")
    )
    first = timezone.localtime(edition.registration_opens_at, tz).date()
    last = min(timezone.localtime(edition.registration_closes_at, tz).date(), today)
    if per_day:
        first, last = min(first, *per_day), max(last, *per_day)
    last = max(first, last)
    first = max(first, last - dt.timedelta(days=MAX_DAYS - 1))
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    columns = [
        Column(day, formats.date_format(day, "DATE_FORMAT"), per_day.get(day, 0)) for day in days
    ]
    total = sum(c.value for c in columns)
    peak = max(columns, key=lambda c: c.value)
    description = _(
        "%(total)d applications submitted from %(first)s to %(last)s; the most on %(peak_day)s "
        "(%(peak)d)."
    ) % {
        "total": total,
        "first": columns[0].label,
        "last": columns[-1].label,
        "peak_day": peak.label,
        "peak": peak.value,
    }
    return ColumnChart(
        id="dash-per-day",
        title=_("Applications per day"),
        description=description,
        category=_("Day"),
        series=_("Applications submitted"),
        columns=columns,
    ).layout()


def demand_chart(options: list[Option], labels: dict[int, str], counts: dict[str, int]) -> BarChart:
    first_choice = str(capfirst(Application._meta.get_field("choice_1").verbose_name))
    rows = [
        BarRow(
            labels[o.pk],
            [counts[f"first_{o.pk}"], counts[f"any_{o.pk}"]],
            note=f"{counts[f'first_{o.pk}']} / {counts[f'any_{o.pk}']}",
        )
        for o in options
    ]
    return BarChart(
        id="dash-demand",
        title=_("Demand per option"),
        description=_(
            "For each option, the active applications choosing it first, and choosing it at all."
        ),
        category=str(capfirst(Option._meta.verbose_name)),
        series=[first_choice, _("Any choice")],
        rows=rows,
    ).layout()


def fill_chart(
    edition: Edition, options: list[Option], labels: dict[int, str], *, drawn: bool
) -> BarChart:
    """Places held now against capacity: people at the venue, applications online."""
    held = {
        option: (n, heads or 0)
        for option, n, heads in Place.objects.filter(
            run__edition=edition, application__status=Application.Status.ACTIVE
        )
        .values("option")
        .annotate(n=Count("pk"), heads=Sum(F("application__adults") + F("application__children")))
        .values_list("option", "n", "heads")
    }
    rows = []
    for o in options:
        n, heads = held.get(o.pk, (0, 0))
        used = heads if o.is_venue else n
        numbers = {"used": used, "capacity": o.capacity}
        note = (
            _("%(used)d / %(capacity)d people")
            if o.is_venue
            else _("%(used)d / %(capacity)d applications")
        ) % numbers
        rows.append(BarRow(labels[o.pk], [used], capacity=o.capacity, note=note))
    return BarChart(
        id="dash-fill",
        title=_("Places held per option"),
        description=_(
            "For each option, the places held now against its capacity: people at the venue, "
            "applications online."
        ),
        category=str(capfirst(Option._meta.verbose_name)),
        series=[_("Places held")],
        rows=rows,
        capacity_label=str(capfirst(Option._meta.get_field("capacity").verbose_name)),
        per_row_scale=True,
        empty_text="" if drawn else _("The lottery has not been drawn yet: nobody holds a place."),
    ).layout()


def childcare_chart(edition: Edition, options: list[Option], *, drawn: bool) -> BarChart:
    """Children requested per session and age band (and granted, after the draw) against the
    band's slots. A child counts in each session whose venue the application chose."""
    bands = list(
        ChildcareBand.objects.filter(session__edition=edition)
        .select_related("session")
        .order_by("session__date", "session__code", "min_age_months")
    )
    by_session: dict[int, list[ChildcareBand]] = defaultdict(list)
    for band in bands:
        by_session[band.session_id].append(band)
    venue_session = {o.pk: o.session_id for o in options if o.is_venue}
    requested: Counter[int] = Counter()
    granted: Counter[int] = Counter()
    children = Child.objects.filter(
        application__edition=edition, application__status=Application.Status.ACTIVE
    ).values_list(
        "date_of_birth",
        "application__choice_1",
        "application__choice_2",
        "application__choice_3",
        "application__place__option",
        "application__place__childcare",
    )
    for born, c1, c2, c3, place_option, place_childcare in children.iterator(chunk_size=2000):
        for session_id in {venue_session[c] for c in (c1, c2, c3) if c in venue_session}:
            fitting = band_for(by_session[session_id], born)
            if fitting is not None:
                requested[fitting.pk] += 1
        if place_option in venue_session and place_childcare == LotteryResult.Childcare.GRANTED:
            fitting = band_for(by_session[venue_session[place_option]], born)
            if fitting is not None:
                granted[fitting.pk] += 1
    series = [_("Children requested")] + ([_("Childcare granted")] if drawn else [])
    rows = []
    for band in bands:
        values = [requested[band.pk]] + ([granted[band.pk]] if drawn else [])
        numbers = {"n": requested[band.pk], "slots": band.slots}
        rows.append(
            BarRow(
                f"{band.session.name}: {band.label}",
                values,
                capacity=band.slots,
                note=_("%(n)d / %(slots)d slots") % numbers,
            )
        )
    return BarChart(
        id="dash-childcare",
        title=_("Childcare demand per age band"),
        description=_(
            "For each session and age band, the children requested against the band's slots."
        ),
        category=str(capfirst(ChildcareBand._meta.verbose_name)),
        series=series,
        rows=rows,
        capacity_label=str(capfirst(ChildcareBand._meta.get_field("slots").verbose_name)),
        empty_text="" if bands else _("No childcare at this edition."),
    ).layout()


def municipality_chart(edition: Edition) -> BarChart:
    top = (
        Application.objects.active()
        .filter(edition=edition)
        .values("municipality")
        .annotate(n=Count("pk"))
        .order_by("-n", "municipality")
        .values_list("municipality", "n")[:TOP_MUNICIPALITIES]
    )
    rows = [BarRow(municipalities.label(key), [n], note=str(n)) for key, n in top]
    return BarChart(
        id="dash-municipalities",
        title=_("Top 10 municipalities"),
        description=_("The ten municipalities with the most active applications."),
        category=_("Municipality"),
        series=[_("Active applications")],
        rows=rows,
        empty_text="" if rows else _("No applications yet."),
    ).layout()
