"""Editions, sessions, options, booths, applications, the e-mail outbox and the audit log."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import formats, timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from seminar_site.i18n import Localized  # also named by the migrations' bases

from . import municipalities

# No 0/O, 1/I/L, U or V-W confusions when a number is read out on the phone.
NUMBER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTXYZ"
NUMBER_LENGTH = 8
# When a session leaves online_link_shown_from empty.
ONLINE_LINK_DAYS_BEFORE = 3


def new_application_number() -> str:
    return "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(NUMBER_LENGTH))


class EditionQuerySet(models.QuerySet["Edition"]):
    def current(self) -> Edition | None:
        """The edition the home page shows: one open now, else the latest published."""
        now = timezone.now()
        published = self.filter(is_published=True)
        open_now = published.filter(
            registration_opens_at__lte=now, registration_closes_at__gt=now
        ).order_by("-registration_opens_at")
        return open_now.first() or published.order_by("-registration_opens_at").first()


class Edition(Localized, models.Model):
    code = models.SlugField(_("code"), max_length=20, unique=True)
    title_ja = models.CharField(_("title (Japanese)"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200)
    is_published = models.BooleanField(_("published"), default=True)
    registration_opens_at = models.DateTimeField(_("registration opens"))
    registration_closes_at = models.DateTimeField(_("registration closes"))
    freeze_at = models.DateTimeField(_("entry roll freezes"))
    draw_at = models.DateTimeField(_("lottery draw"))
    # Set once by registration.retention, which claims the edition with it.
    shredded_at = models.DateTimeField(
        _("personal data shredded"), null=True, blank=True, editable=False
    )

    objects = EditionQuerySet.as_manager()

    class Meta:
        verbose_name = _("edition")
        verbose_name_plural = _("editions")
        ordering = ["-registration_opens_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(registration_closes_at__gt=F("registration_opens_at")),
                name="edition_registration_window_ordered",
            ),
            models.CheckConstraint(
                condition=Q(freeze_at__gte=F("registration_closes_at"))
                & Q(draw_at__gte=F("freeze_at")),
                name="edition_freeze_after_close_draw_after_freeze",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.title_ja}"

    @property
    def title(self) -> str:
        return self.localized("title")

    class RegistrationState(models.TextChoices):
        UPCOMING = "upcoming", _("Registration not yet open")
        OPEN = "open", _("Registration open")
        CLOSED = "closed", _("Registration closed")

    def registration_state(self, now: dt.datetime | None = None) -> RegistrationState:
        now = now or timezone.now()
        if now < self.registration_opens_at:
            return self.RegistrationState.UPCOMING
        if now < self.registration_closes_at:
            return self.RegistrationState.OPEN
        return self.RegistrationState.CLOSED

    def registration_is_open(self, now: dt.datetime | None = None) -> bool:
        return self.registration_state(now) == self.RegistrationState.OPEN


class Session(Localized, models.Model):
    edition = models.ForeignKey(
        Edition, on_delete=models.CASCADE, related_name="sessions", verbose_name=_("edition")
    )
    code = models.SlugField(_("code"), max_length=20)
    name_ja = models.CharField(_("name (Japanese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    date = models.DateField(_("date"))
    starts_at = models.TimeField(_("starts"), default=dt.time(13, 30))
    ends_at = models.TimeField(_("ends"), default=dt.time(17, 0))
    venue_ja = models.CharField(_("venue (Japanese)"), max_length=200)
    venue_en = models.CharField(_("venue (English)"), max_length=200)
    address_ja = models.CharField(_("address (Japanese)"), max_length=300)
    address_en = models.CharField(_("address (English)"), max_length=300)
    access_ja = models.TextField(_("access (Japanese)"), blank=True)
    access_en = models.TextField(_("access (English)"), blank=True)
    map_url = models.URLField(_("map link"), blank=True)
    promotion_deadline = models.DateTimeField(
        _("promotion deadline"), help_text=_("Waitlist promotions stop at this time.")
    )
    online_url = models.URLField(_("online viewing link"), blank=True)
    online_link_shown_from = models.DateTimeField(
        _("online link shown from"),
        null=True,
        blank=True,
        help_text=_("Empty: 3 days before the session."),
    )
    reminder_days_before = models.PositiveSmallIntegerField(_("reminder days before"), default=3)

    class Meta:
        verbose_name = _("session")
        verbose_name_plural = _("sessions")
        ordering = ["edition", "date", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["edition", "code"], name="session_code_unique_per_edition"
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="session_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.edition.code}:{self.code}"

    @property
    def name(self) -> str:
        return self.localized("name")

    @property
    def venue(self) -> str:
        return self.localized("venue")

    @property
    def address(self) -> str:
        return self.localized("address")

    @property
    def access(self) -> str:
        return self.localized("access")

    def starts(self) -> dt.datetime:
        return dt.datetime.combine(
            self.date, self.starts_at, tzinfo=timezone.get_default_timezone()
        )

    def ends(self) -> dt.datetime:
        return dt.datetime.combine(self.date, self.ends_at, tzinfo=timezone.get_default_timezone())

    def online_link_from(self) -> dt.datetime:
        """When the online viewing link may be shown and e-mailed."""
        return self.online_link_shown_from or self.starts() - dt.timedelta(
            days=ONLINE_LINK_DAYS_BEFORE
        )


class OptionKind(models.TextChoices):
    """Option.Kind; at module level so that the model's constraints can name it."""

    VENUE = "venue", _("At the venue")
    ONLINE = "online", _("Online")


class Option(models.Model):
    """One way to attend a session: at the venue (capacity in heads) or online (in applications)."""

    Kind = OptionKind

    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="options", verbose_name=_("session")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    capacity = models.PositiveIntegerField(
        _("capacity"), help_text=_("Venue: people (children included). Online: applications.")
    )

    class Meta:
        verbose_name = _("option")
        verbose_name_plural = _("options")
        ordering = ["session__date", "session__code", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "kind"], name="option_one_per_kind_per_session"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=OptionKind.values), name="option_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def code(self) -> str:
        """The option's name in the lottery roll, e.g. ``tama:venue``."""
        return f"{self.session.code}:{self.kind}"

    @property
    def is_venue(self) -> bool:
        return self.kind == self.Kind.VENUE

    def reminder_due_at(self) -> dt.datetime:
        """When the reminder of a place in this option goes out: ``reminder_days_before`` days
        before the session, and for an online place not before its viewing link may be shown,
        so that every online parent gets the link by e-mail in that one reminder."""
        due = self.session.starts() - dt.timedelta(days=self.session.reminder_days_before)
        if not self.is_venue:
            due = max(due, self.session.online_link_from())
        return due

    @property
    def label(self) -> str:
        return str(
            format_lazy(
                _("{session}, {date}: {kind}"),
                session=self.session.name,
                date=formats.date_format(self.session.date, "DATE_FORMAT"),
                kind=self.get_kind_display(),
            )
        )


class Organisation(Localized, models.Model):
    class Category(models.TextChoices):
        PUBLIC_COUNSELING = "public_counseling", _("Public education counseling")
        PUBLIC_DEVELOPMENT = "public_development", _("Public developmental support")
        FREE_SCHOOL = "free_school", _("Free school")
        ALTERNATIVE = "alternative", _("Alternative education provider")
        CAREER = "career", _("Career counseling for parents")
        OTHER = "other", _("Other support")

    name_ja = models.CharField(_("name (Japanese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    category = models.CharField(_("category"), max_length=30, choices=Category.choices)
    description_ja = models.TextField(_("description (Japanese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    website = models.URLField(_("website"), blank=True)

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["name_ja"]

    def __str__(self) -> str:
        return self.name_ja

    @property
    def name(self) -> str:
        return self.localized("name")

    @property
    def description(self) -> str:
        return self.localized("description")


class Booth(models.Model):
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="booths", verbose_name=_("session")
    )
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="booths",
        verbose_name=_("organisation"),
    )
    number = models.PositiveSmallIntegerField(_("booth number"))

    class Meta:
        verbose_name = _("booth")
        verbose_name_plural = _("booths")
        ordering = ["session", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "number"], name="booth_number_unique_per_session"
            ),
            models.UniqueConstraint(
                fields=["session", "organisation"], name="booth_organisation_once_per_session"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session.code} #{self.number} {self.organisation.name_ja}"


GRADE_CHOICES = [
    ("e1", _("Elementary grade 1")),
    ("e2", _("Elementary grade 2")),
    ("e3", _("Elementary grade 3")),
    ("e4", _("Elementary grade 4")),
    ("e5", _("Elementary grade 5")),
    ("e6", _("Elementary grade 6")),
    ("m1", _("Junior high grade 1")),
    ("m2", _("Junior high grade 2")),
    ("m3", _("Junior high grade 3")),
]
GRADE_LABELS = dict(GRADE_CHOICES)


class ApplicationQuerySet(models.QuerySet["Application"]):
    def active(self) -> ApplicationQuerySet:
        return self.filter(status=Application.Status.ACTIVE)

    def with_email(self, email: str) -> ApplicationQuerySet:
        return self.annotate(email_lower=Lower("email")).filter(email_lower=email.lower())

    def linked_to(self, email: str) -> ApplicationQuerySet:
        """The applications "e-mail me my link" may send for this address, best first: any
        published edition not yet shredded, the newest first, and within it the active one
        first (a withdrawn application can still be viewed)."""
        return (
            self.with_email(email)
            .filter(edition__is_published=True, edition__shredded_at__isnull=True)
            .order_by("-edition__registration_opens_at", "status", "-created_at")
        )

    def for_option(self, option: Option) -> ApplicationQuerySet:
        return self.filter(Q(choice_1=option) | Q(choice_2=option) | Q(choice_3=option))

    def for_session(self, session: Session) -> ApplicationQuerySet:
        return self.filter(
            Q(choice_1__session=session)
            | Q(choice_2__session=session)
            | Q(choice_3__session=session)
        )

    def holding_venue(self, session: Session) -> ApplicationQuerySet:
        """Active applications holding this session's venue option: the people expected."""
        return self.active().filter(
            place__option__session=session, place__option__kind=Option.Kind.VENUE
        )


class ApplicationStatus(models.TextChoices):
    """Application.Status; at module level so that the model's constraints can name it."""

    ACTIVE = "active", _("Active")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    DUPLICATE = "duplicate", _("Marked duplicate")
    INVALID = "invalid", _("Marked invalid")


class ApplicationFallback(models.TextChoices):
    """Application.Fallback: what a venue choice does when childcare is full."""

    HALL = "hall", _("Attend with my children in the hall")
    SKIP = "skip", _("Give up that venue choice")


class ApplicationLanguage(models.TextChoices):
    """Application.Language: the parent's language for pages and e-mails."""

    JA = "ja", "日本語"
    EN = "en", "English"


class Application(models.Model):
    Status = ApplicationStatus
    Fallback = ApplicationFallback
    Language = ApplicationLanguage

    edition = models.ForeignKey(
        Edition, on_delete=models.PROTECT, related_name="applications", verbose_name=_("edition")
    )
    number = models.CharField(
        _("application number"),
        max_length=NUMBER_LENGTH,
        unique=True,
        default=new_application_number,
        editable=False,
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.ACTIVE
    )
    status_reason = models.TextField(_("reason for status"), blank=True)

    # Ranked choices: the database enforces 1–3 distinct options with no gap.
    choice_1 = models.ForeignKey(
        Option, on_delete=models.PROTECT, related_name="+", verbose_name=_("1st choice")
    )
    choice_2 = models.ForeignKey(
        Option,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("2nd choice"),
    )
    choice_3 = models.ForeignKey(
        Option,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("3rd choice"),
    )

    family_name = models.CharField(_("family name"), max_length=50)
    given_name = models.CharField(_("given name"), max_length=50)
    family_name_kana = models.CharField(_("family name (katakana)"), max_length=100)
    given_name_kana = models.CharField(_("given name (katakana)"), max_length=100)
    email = models.EmailField(_("email"), max_length=254)
    phone = models.CharField(_("phone"), max_length=20, help_text=_("Digits only, normalised."))
    municipality = models.CharField(_("municipality"), max_length=40)
    grades = models.CharField(
        _("children's grades"),
        max_length=40,
        help_text=_("Comma-separated grade codes, e.g. e3,m1."),
    )

    adults = models.PositiveSmallIntegerField(_("adults"), default=1)
    children = models.PositiveSmallIntegerField(_("accompanying children"), default=0)
    childcare_fallback = models.CharField(
        _("if childcare is full"), max_length=4, choices=Fallback.choices, blank=True
    )

    needs_sign_language = models.BooleanField(_("sign language interpretation"), default=False)
    needs_wheelchair_space = models.BooleanField(_("wheelchair space"), default=False)
    needs_other = models.TextField(_("other accessibility needs"), blank=True, max_length=500)
    questions = models.TextField(_("questions for the lecturers"), blank=True, max_length=1000)
    booths_of_interest = models.ManyToManyField(
        Booth, blank=True, related_name="interested", verbose_name=_("booths of interest")
    )

    privacy_consent_at = models.DateTimeField(_("privacy consent given"))
    health_consent_at = models.DateTimeField(
        _("health information consent given"), null=True, blank=True
    )
    language = models.CharField(
        _("language"), max_length=2, choices=Language.choices, default=Language.JA
    )

    created_at = models.DateTimeField(_("submitted"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("last changed"), default=timezone.now)
    withdrawn_at = models.DateTimeField(_("withdrawn"), null=True, blank=True)

    objects = ApplicationQuerySet.as_manager()

    class Meta:
        verbose_name = _("application")
        verbose_name_plural = _("applications")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["edition", "status"], name="application_edition_status"),
            models.Index(fields=["phone"], name="application_phone"),
            models.Index(fields=["family_name_kana", "given_name_kana"], name="application_kana"),
        ]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "edition",
                condition=Q(status=ApplicationStatus.ACTIVE),
                name="application_one_active_per_email_per_edition",
            ),
            models.CheckConstraint(
                condition=Q(adults__gte=1, adults__lte=2), name="application_adults_1_to_2"
            ),
            models.CheckConstraint(
                condition=Q(children__gte=0, children__lte=3), name="application_children_0_to_3"
            ),
            models.CheckConstraint(
                condition=Q(adults__lte=5 - F("children")), name="application_party_at_most_5"
            ),
            models.CheckConstraint(
                condition=Q(choice_2__isnull=True) | ~Q(choice_2=F("choice_1")),
                name="application_choice_2_distinct",
            ),
            models.CheckConstraint(
                condition=Q(choice_3__isnull=True)
                | (
                    Q(choice_2__isnull=False)
                    & ~Q(choice_3=F("choice_1"))
                    & ~Q(choice_3=F("choice_2"))
                ),
                name="application_choice_3_distinct_and_after_2",
            ),
            models.CheckConstraint(
                condition=Q(status__in=ApplicationStatus.values),
                name="application_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(childcare_fallback__in=["", *ApplicationFallback.values]),
                name="application_fallback_valid",
            ),
            models.CheckConstraint(
                condition=Q(language__in=ApplicationLanguage.values),
                name="application_language_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def full_name(self) -> str:
        return f"{self.family_name} {self.given_name}"

    @property
    def full_name_kana(self) -> str:
        return f"{self.family_name_kana} {self.given_name_kana}"

    @property
    def heads(self) -> int:
        """People at the venue: adults plus every accompanying child (hall or childcare)."""
        return self.adults + self.children

    @property
    def choices(self) -> list[Option]:
        return [c for c in (self.choice_1, self.choice_2, self.choice_3) if c is not None]

    @property
    def has_venue_choice(self) -> bool:
        return any(o.is_venue for o in self.choices)

    @property
    def grade_codes(self) -> list[str]:
        return [g for g in self.grades.split(",") if g]

    @property
    def grade_labels(self) -> list[str]:
        return [str(GRADE_LABELS.get(g, g)) for g in self.grade_codes]

    @property
    def municipality_label(self) -> str:
        return municipalities.label(self.municipality)

    def withdraw_deadline(self) -> dt.datetime:
        """Withdrawal is possible until the session starts: the one held, or else the last
        session chosen (a waitlisted parent may still be promoted until then)."""
        place = getattr(self, "place", None)
        if place is not None:
            return place.option.session.starts()
        return max(option.session.starts() for option in self.choices)

    def can_withdraw(self, now: dt.datetime | None = None) -> bool:
        return (
            self.status == self.Status.ACTIVE and (now or timezone.now()) < self.withdraw_deadline()
        )

    def can_change(self, now: dt.datetime | None = None) -> bool:
        return self.status == self.Status.ACTIVE and self.edition.registration_is_open(now)


class DuplicateFlagQuerySet(models.QuerySet["DuplicateFlag"]):
    def open(self, edition: Edition | None = None) -> DuplicateFlagQuerySet:
        """Unresolved flags whose two applications are both still active (of one edition)."""
        flags = self.filter(
            resolution=DuplicateFlag.Resolution.OPEN,
            application__status=Application.Status.ACTIVE,
            other__status=Application.Status.ACTIVE,
        )
        return flags.filter(application__edition=edition) if edition is not None else flags

    def pair_count(self) -> int:
        """How many pairs of applications these flags name: flags come in mirrored pairs (A→B
        and B→A), one per reason."""
        ids = self.values_list("application_id", "other_id")
        return len({(min(a, b), max(a, b)) for a, b in ids})


class DuplicateFlag(models.Model):
    """A likely duplicate across e-mail addresses, for staff to review. Never voids anything."""

    class Reason(models.TextChoices):
        PHONE = "phone", _("Same phone number")
        NAME = "name", _("Same name and furigana")
        CHILD = "child", _("Same child name and date of birth")

    class Resolution(models.TextChoices):
        OPEN = "", _("Not yet reviewed")
        KEPT = "kept", _("Reviewed: not a duplicate")
        MARKED = "marked", _("Marked duplicate or invalid")

    application = models.ForeignKey(
        Application,
        on_delete=models.CASCADE,
        related_name="duplicate_flags",
        verbose_name=_("application"),
    )
    other = models.ForeignKey(
        Application,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("possible duplicate of"),
    )
    reason = models.CharField(_("reason"), max_length=10, choices=Reason.choices)
    resolution = models.CharField(
        _("resolution"), max_length=10, choices=Resolution.choices, blank=True, default=""
    )
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )

    objects = DuplicateFlagQuerySet.as_manager()

    class Meta:
        verbose_name = _("duplicate flag")
        verbose_name_plural = _("duplicate flags")
        constraints = [
            models.UniqueConstraint(
                fields=["application", "other", "reason"],
                name="duplicate_flag_unique_per_pair_and_reason",
            ),
            models.CheckConstraint(
                condition=~Q(application=F("other")), name="duplicate_flag_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.application_id} ~ {self.other_id} ({self.reason})"


class OutboxStatus(models.TextChoices):
    """OutboxEmail.Status; at module level so that the model's constraints can name it."""

    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class OutboxEmail(models.Model):
    """Every e-mail is written here in the transaction that causes it, then sent after commit."""

    Status = OutboxStatus

    class Kind(models.TextChoices):
        RECEIPT = "receipt", _("Receipt")
        ALREADY_APPLIED = "already_applied", _("Already applied")
        LINK = "link", _("My application link")
        CHANGED = "changed", _("Application changed")
        WITHDRAWN = "withdrawn", _("Withdrawal confirmed")
        RESULT = "result", _("Lottery result")
        PROMOTED = "promoted", _("Place from the waiting list")
        CHILDCARE_GRANTED = "childcare_granted", _("Childcare from its waiting list")
        REMINDER = "reminder", _("Reminder")

    application = models.ForeignKey(
        Application,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="emails",
        verbose_name=_("application"),
    )
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    to = models.EmailField(_("to"), max_length=254)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body_text = models.TextField(_("text body"), blank=True)
    body_html = models.TextField(_("HTML body"), blank=True)
    language = models.CharField(_("language"), max_length=2, default="ja")
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    # After a temporary failure (SMTP 4xx, connection lost) the next try waits until then.
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)

    class Meta:
        verbose_name = _("outbox e-mail")
        verbose_name_plural = _("outbox e-mails")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="outbox_status_created")]
        permissions = [("resend_outboxemail", _("Can send a failed e-mail again"))]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=OutboxStatus.values),
                name="outbox_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status=OutboxStatus.SENT, sent_at__isnull=False)
                | ~Q(status=OutboxStatus.SENT),
                name="outbox_sent_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {self.to} ({self.status})"


class AuditEvent(models.Model):
    """Append-only record of every state change: who, when, what, why."""

    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff member"),
    )
    actor_label = models.CharField(
        _("by"), max_length=50, help_text=_("'parent', 'system' or the staff user name.")
    )
    action = models.CharField(_("action"), max_length=50, db_index=True)
    edition = models.ForeignKey(
        Edition,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("edition"),
    )
    application = models.ForeignKey(
        Application,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_events",
        verbose_name=_("application"),
    )
    data: models.JSONField[Any] = models.JSONField(_("details"), default=dict, blank=True)
    reason = models.TextField(_("reason"), blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"


class Attendance(models.Model):
    """Reception on the day: who arrived, with how many people."""

    application = models.OneToOneField(
        Application,
        on_delete=models.PROTECT,
        related_name="attendance",
        verbose_name=_("application"),
    )
    heads = models.PositiveSmallIntegerField(_("people arrived"))
    arrived_at = models.DateTimeField(_("arrived at"), default=timezone.now)
    checked_in_by = models.CharField(_("checked in by"), max_length=150)

    class Meta:
        verbose_name = _("arrival")
        verbose_name_plural = _("arrivals")
        permissions = [("check_in", _("Can check people in at reception"))]
        constraints = [
            models.CheckConstraint(
                condition=Q(heads__gte=1, heads__lte=5), name="attendance_heads_1_to_5"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.application_id} ({self.heads})"
