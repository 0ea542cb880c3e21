"""Childcare (託児) at venue sessions: age bands with slots, and the children booked for it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from registration.models import Application, Localized, Option, Session

HEALTH_NOTES_PERMISSION = "childcare.view_health_notes"


def may_see_health_notes(user: Any) -> bool:
    """The one rule for children's allergies and notes: childcare staff and administrators
    read them; the office, reception and everyone else never do (pages, exports, filters)."""
    return bool(user.has_perm(HEALTH_NOTES_PERMISSION))


def sees_every_session(user: Any) -> bool:
    """Staff who may read applications (the office, administrators) see every session's
    children: they see the parents' data anyway."""
    return bool(user.has_perm("registration.view_application"))


def sessions_visible_to(user: Any) -> models.QuerySet[Session]:
    """The sessions whose childcare roster a staff member may see: every one for the office
    and administrators, the sessions they are assigned to (ChildcareAssignment) for childcare
    staff, none for anyone else."""
    sessions = Session.objects.select_related("edition")
    if sees_every_session(user):
        return sessions
    if user.pk is None:
        return sessions.none()
    return sessions.filter(childcare_assignments__user_id=user.pk)


def age_in_months(born: dt.date, on: dt.date) -> int:
    """Completed months of age on a date (a child born 31 Jan is 1 month old on 28 Feb)."""
    months = (on.year - born.year) * 12 + (on.month - born.month)
    if on.day < born.day:
        # Not yet the monthly birthday, unless this month is too short to have that day.
        next_month = (on.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        last_day = (next_month - dt.timedelta(days=1)).day
        if not (on.day == last_day and born.day > last_day):
            months -= 1
    return months


def school_entry_date(born: dt.date) -> dt.date:
    """1 April on which a child born on ``born`` starts elementary school in Japan.

    A child starts school the April after turning six; children born 1 January–1 April start a
    year before the rest of their calendar year (早生まれ).
    """
    year = born.year + 6 if (born.month, born.day) <= (4, 1) else born.year + 7
    return dt.date(year, 4, 1)


class ChildcareBand(Localized, models.Model):
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="childcare_bands", verbose_name=_("session")
    )
    code = models.CharField(
        _("code"), max_length=10, help_text=_("Name in the lottery roll, e.g. 0-2.")
    )
    label_ja = models.CharField(_("label (Japanese)"), max_length=100)
    label_en = models.CharField(_("label (English)"), max_length=100)
    min_age_months = models.PositiveSmallIntegerField(_("youngest age (months)"))
    max_age_months = models.PositiveSmallIntegerField(
        _("oldest age (months)"),
        null=True,
        blank=True,
        help_text=_("Empty: until the child starts elementary school."),
    )
    slots = models.PositiveSmallIntegerField(_("slots (children)"))

    class Meta:
        verbose_name = _("childcare band")
        verbose_name_plural = _("childcare bands")
        ordering = ["session", "min_age_months"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "code"], name="childcare_band_code_unique_per_session"
            ),
            models.CheckConstraint(
                condition=Q(max_age_months__isnull=True)
                | Q(max_age_months__gte=F("min_age_months")),
                name="childcare_band_ages_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session} {self.code}"

    @property
    def label(self) -> str:
        return self.localized("label")

    def admits(self, born: dt.date) -> bool:
        """Whether a child born on ``born`` belongs to this band on the session date."""
        on = self.session.date
        if age_in_months(born, on) < self.min_age_months:
            return False
        if self.max_age_months is None:
            return on < school_entry_date(born)
        return age_in_months(born, on) <= self.max_age_months


def band_for(bands: list[ChildcareBand], born: dt.date) -> ChildcareBand | None:
    return next((b for b in bands if b.admits(born)), None)


class ChildQuerySet(models.QuerySet["Child"]):
    def at_sessions(self, sessions: Iterable[Session] | models.QuerySet[Session]) -> ChildQuerySet:
        """Children expected in these sessions' childcare: their application is active and
        holds the venue place there, or holds no place yet (before the draw, or on a waiting
        list) and chose the venue there."""
        venue = Option.objects.filter(kind=Option.Kind.VENUE, session__in=sessions)
        chose = (
            Q(application__choice_1__in=venue)
            | Q(application__choice_2__in=venue)
            | Q(application__choice_3__in=venue)
        )
        return self.filter(application__status=Application.Status.ACTIVE).filter(
            Q(application__place__option__in=venue) | (Q(application__place__isnull=True) & chose)
        )


class Child(models.Model):
    """A child booked for childcare at the venue sessions the application chose."""

    application = models.ForeignKey(
        Application,
        on_delete=models.CASCADE,
        related_name="childcare_children",
        verbose_name=_("application"),
    )
    position = models.PositiveSmallIntegerField(default=1)
    name = models.CharField(_("child's name"), max_length=100)
    name_kana = models.CharField(_("child's name (katakana)"), max_length=100)
    date_of_birth = models.DateField(_("date of birth"))
    # Health information: only childcare staff and administrators see it
    # (permission view_health_notes); it is never copied into the audit log.
    notes = models.TextField(_("allergies and notes"), blank=True, max_length=500)

    objects = ChildQuerySet.as_manager()

    class Meta:
        verbose_name = _("child in childcare")
        verbose_name_plural = _("children in childcare")
        ordering = ["application", "position"]
        permissions = [
            ("view_health_notes", _("Can see children's allergies and health notes")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "position"], name="child_position_unique"
            ),
            models.CheckConstraint(
                condition=Q(position__gte=1, position__lte=3), name="child_position_1_to_3"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.application.number} #{self.position}"


class ChildcareAssignment(models.Model):
    """A childcare staff member works at a session: they see that session's roster only."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="childcare_assignments",
        verbose_name=_("staff member"),
    )
    session = models.ForeignKey(
        Session,
        on_delete=models.CASCADE,
        related_name="childcare_assignments",
        verbose_name=_("session"),
    )

    class Meta:
        verbose_name = _("childcare staff assignment")
        verbose_name_plural = _("childcare staff assignments")
        ordering = ["session", "user"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "session"], name="childcare_assignment_once_per_session"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.session}"
