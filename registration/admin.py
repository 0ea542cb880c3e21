"""Registration's models in the admin: declarative lists and forms. Every change goes through
a service (registration.services, outbox.queue); the pages beyond these lists are office/."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from childcare.models import Child, ChildcareBand, may_see_health_notes
from office import permissions
from seminar_site.admin_site import ChoiceListFilter, ReadOnlyAdminMixin, staff_member

from . import municipalities, services
from .models import (
    GRADE_CHOICES,
    NUMBER_ALPHABET,
    NUMBER_LENGTH,
    Application,
    Attendance,
    AuditEvent,
    Booth,
    DuplicateFlag,
    Edition,
    Option,
    Organisation,
    OutboxEmail,
    Session,
)
from .normalize import to_katakana
from .outbox.queue import outbox_resend


class SessionInline(admin.StackedInline):
    model = Session
    extra = 0
    show_change_link = True


@admin.register(Edition)
class EditionAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "title_ja",
        "registration_opens_at",
        "registration_closes_at",
        "freeze_at",
        "draw_at",
        "is_published",
        "lottery_console",
    ]
    inlines = [SessionInline]

    @admin.display(description=_("lottery"))
    def lottery_console(self, obj: Edition) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("office:lottery_console", args=[obj.code]),
            _("Lottery console"),
        )


class OptionInline(admin.TabularInline):
    model = Option
    extra = 0
    max_num = 2


class ChildcareBandInline(admin.TabularInline):
    model = ChildcareBand
    extra = 0


class BoothInline(admin.TabularInline):
    model = Booth
    extra = 0
    autocomplete_fields = ["organisation"]


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "name_ja", "date", "venue_ja", "promotion_deadline"]
    list_filter = ["edition"]
    list_select_related = ["edition"]
    inlines = [OptionInline, ChildcareBandInline, BoothInline]


@admin.register(Option)
class OptionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "session", "kind", "capacity"]
    list_filter = ["session__edition", "kind"]
    list_select_related = ["session__edition"]


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name_ja", "name_en", "category", "website"]
    list_filter = ["category"]
    search_fields = ["name_ja", "name_en"]


@admin.register(Booth)
class BoothAdmin(admin.ModelAdmin):
    list_display = ["number", "organisation", "session"]
    list_filter = ["session__edition", "session"]
    list_select_related = ["organisation", "session__edition"]
    search_fields = ["organisation__name_ja", "organisation__name_en"]
    autocomplete_fields = ["organisation"]


class SessionFilter(ChoiceListFilter):
    title = _("session")
    parameter_name = "session"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        return [(s.pk, str(s)) for s in Session.objects.select_related("edition")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value():
            return queryset.filter(
                Q(choice_1__session=self.value())
                | Q(choice_2__session=self.value())
                | Q(choice_3__session=self.value())
            )
        return queryset


class OptionFilter(ChoiceListFilter):
    title = _("option")
    parameter_name = "option"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        return [
            (o.pk, f"{o.session.edition.code} {o.code}")
            for o in Option.objects.select_related("session__edition")
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value():
            return queryset.filter(
                Q(choice_1=self.value()) | Q(choice_2=self.value()) | Q(choice_3=self.value())
            )
        return queryset


class ChildcareFilter(ChoiceListFilter):
    title = _("childcare")
    parameter_name = "childcare"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Booked childcare")), ("no", _("No childcare"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        has = Exists(Child.objects.filter(application=OuterRef("pk")))
        if self.value() == "yes":
            return queryset.filter(has)
        if self.value() == "no":
            return queryset.exclude(has)
        return queryset


class MunicipalityFilter(ChoiceListFilter):
    title = _("municipality")
    parameter_name = "municipality"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return municipalities.choices()

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(municipality=self.value()) if self.value() else queryset


class GradeFilter(ChoiceListFilter):
    title = _("grade")
    parameter_name = "grade"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return GRADE_CHOICES

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(grades__contains=self.value()) if self.value() else queryset


class DuplicateFilter(ChoiceListFilter):
    title = _("duplicate flag")
    parameter_name = "flagged"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("open", _("Flagged, not yet reviewed")), ("any", _("Flagged at any time"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        flags = DuplicateFlag.objects.filter(application=OuterRef("pk"))
        if self.value() == "open":
            return queryset.filter(Exists(flags.filter(resolution=DuplicateFlag.Resolution.OPEN)))
        if self.value() == "any":
            return queryset.filter(Exists(flags))
        return queryset


class ChildInline(admin.TabularInline):
    model = Child
    extra = 0
    fields = ["position", "name", "name_kana", "date_of_birth", "notes"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[Any, ...]:
        fields = super().get_fields(request, obj)
        return tuple(f for f in fields if f != "notes" or may_see_health_notes(request.user))


class DuplicateFlagInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Flags are resolved in the review queue, where every decision is logged."""

    model = DuplicateFlag
    fk_name = "application"
    extra = 0
    fields = readonly_fields = (
        "other",
        "reason",
        "resolution",
        "resolved_by",
        "resolved_at",
        "created_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[DuplicateFlag]:
        return super().get_queryset(request).select_related("other", "resolved_by")


class AuditEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = AuditEvent
    extra = 0
    fields = ["at", "actor_label", "action", "reason", "data"]
    readonly_fields = ["at", "actor_label", "action", "reason", "data"]
    ordering = ["at", "id"]


class ApplicationAdminForm(forms.ModelForm):
    change_reason = forms.CharField(
        label=_("Reason for this change"),
        help_text=_("Kept in the application's history with what changed, e.g. a phone call."),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=1000,
    )

    class Meta:
        model = Application
        # What staff may edit; the status changes only through its own workflows.
        fields = [
            "choice_1",
            "choice_2",
            "choice_3",
            "family_name",
            "given_name",
            "family_name_kana",
            "given_name_kana",
            "phone",
            "municipality",
            "grades",
            "adults",
            "children",
            "childcare_fallback",
            "needs_sign_language",
            "needs_wheelchair_space",
            "needs_other",
            "questions",
            "booths_of_interest",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "municipality" in self.fields:
            self.fields["municipality"] = forms.ChoiceField(
                label=self.fields["municipality"].label, choices=municipalities.choices()
            )


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "full_name",
        "full_name_kana",
        "email",
        "phone",
        "municipality_name",
        "choice_1",
        "choice_2",
        "choice_3",
        "heads",
        "status",
        "open_flags",
        "created_at",
    ]
    list_select_related = ["edition", "choice_1__session", "choice_2__session", "choice_3__session"]
    list_filter = [
        "edition",
        SessionFilter,
        OptionFilter,
        "status",
        ChildcareFilter,
        MunicipalityFilter,
        GradeFilter,
        DuplicateFilter,
    ]
    search_fields = [
        "number",
        "family_name",
        "given_name",
        "family_name_kana",
        "given_name_kana",
        "email",
        "phone",
    ]
    search_help_text = _("Number, name, furigana, e-mail or phone (hyphens are fine).")
    date_hierarchy = "created_at"
    form = ApplicationAdminForm
    # The status changes only through the status page and the duplicate review, which give
    # places back to the waiting lists and e-mail the parent.
    readonly_fields = [
        "number",
        "edition",
        "status",
        "status_reason",
        "email",
        "created_at",
        "updated_at",
        "withdrawn_at",
        "privacy_consent_at",
        "health_consent_at",
        "language",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "number",
                    "edition",
                    "status",
                    "status_reason",
                    "language",
                    "created_at",
                    "updated_at",
                    "withdrawn_at",
                ]
            },
        ),
        (_("Choices"), {"fields": ["choice_1", "choice_2", "choice_3"]}),
        (
            _("Applicant"),
            {
                "fields": [
                    ("family_name", "given_name"),
                    ("family_name_kana", "given_name_kana"),
                    "email",
                    "phone",
                    "municipality",
                    "grades",
                ]
            },
        ),
        (_("Party"), {"fields": ["adults", "children", "childcare_fallback"]}),
        (
            _("Needs and interests"),
            {
                "fields": [
                    "needs_sign_language",
                    "needs_wheelchair_space",
                    "needs_other",
                    "questions",
                    "booths_of_interest",
                ]
            },
        ),
        (_("Consent"), {"fields": ["privacy_consent_at", "health_consent_at"]}),
    ]
    reason_fieldset = (_("Reason for this change"), {"fields": ["change_reason"]})
    filter_horizontal = ["booths_of_interest"]
    inlines = [ChildInline, DuplicateFlagInline, AuditEventInline]
    list_per_page = 50
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Applications come from parents (services.application_submit: receipt, duplicate
        # flags, the audit log); there is no way around that in the admin.
        return False

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        fieldsets: list[Any] = list(super().get_fieldsets(request, obj))
        if obj is not None and self.has_change_permission(request, obj):
            fieldsets.append(self.reason_fieldset)
        return fieldsets

    def save_model(self, request: HttpRequest, obj: Application, form: Any, change: bool) -> None:
        """Saved in save_related, with its children, by services.application_staff_change."""

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """The children are saved by the service too (save_related); the other inlines are
        read only."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        children = services.ChildEdits()
        for formset in formsets:
            # Saves nothing; fills new_objects, changed_objects and deleted_objects, which the
            # service saves for the children and the admin's own history message reads.
            formset.save(commit=False)
            if formset.model is Child:
                children = services.ChildEdits(
                    added=list(formset.new_objects),
                    changed=list(formset.changed_objects),
                    deleted=list(formset.deleted_objects),
                )
        services.application_staff_change(
            application=form.instance,
            fields={n: form.cleaned_data[n] for n in form.changed_data if n != "change_reason"},
            children=children,
            actor=staff_member(request),
            reason=form.cleaned_data["change_reason"],
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Application]:
        return (
            super()
            .get_queryset(request)
            # A correlated subquery, not a JOIN + GROUP BY: PostgreSQL then counts flags for
            # the 50 rows of the page only, not for all 100,000 applications.
            .annotate(
                open_flag_count=Coalesce(
                    Subquery(
                        DuplicateFlag.objects.filter(
                            application=OuterRef("pk"), resolution=DuplicateFlag.Resolution.OPEN
                        )
                        .values("application")
                        .annotate(n=Count("pk"))
                        .values("n")[:1]
                    ),
                    0,
                )
            )
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        # Staff type what the parent says on the phone: hyphenated numbers, hiragana.
        term = search_term.strip()
        digits = "".join(ch for ch in term if ch.isdigit())
        if digits and len(digits) >= 6 and not any(ch.isalpha() for ch in term):
            return queryset.filter(phone__contains=digits), False
        number = term.upper()
        if len(number) == NUMBER_LENGTH and set(number) <= set(NUMBER_ALPHABET):
            # An application number read out on the phone: the unique index answers at once.
            exact = queryset.filter(number=number)
            if exact.exists():
                return exact, False
        return super().get_search_results(request, queryset, to_katakana(term) or term)

    @admin.display(description=_("name"), ordering="family_name_kana")
    def full_name(self, obj: Application) -> str:
        return obj.full_name

    @admin.display(description=_("furigana"), ordering="family_name_kana")
    def full_name_kana(self, obj: Application) -> str:
        return obj.full_name_kana

    @admin.display(description=_("municipality"), ordering="municipality")
    def municipality_name(self, obj: Application) -> str:
        return obj.municipality_label

    @admin.display(description=_("people"))
    def heads(self, obj: Application) -> int:
        return obj.heads

    @admin.display(description=_("open duplicate flags"), ordering="open_flag_count")
    def open_flags(self, obj: Any) -> int:
        return int(obj.open_flag_count)


@admin.register(DuplicateFlag)
class DuplicateFlagAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every flag, for the record; decisions are taken in the review queue."""

    list_display = ["application", "other", "reason", "resolution", "resolved_by", "created_at"]
    list_filter = ["reason", "resolution", "application__edition"]
    list_select_related = ["application", "other", "resolved_by"]
    search_fields = ["application__number", "other__number"]


@admin.register(OutboxEmail)
class OutboxEmailAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every e-mail and its fate. Those the mail server refused for good (status "failed",
    counted on the admin index) can be sent again, to the application's current address."""

    list_display = [
        "created_at",
        "kind",
        "to",
        "application",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error",
    ]
    list_filter = ["status", "kind", "language"]
    search_fields = ["to", "application__number"]
    list_select_related = ["application"]
    actions = ["resend"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[OutboxEmail]:
        # A link request not yet looked up may be for an address that never applied: the worker
        # deletes it then, and staff never see it (outbox.send._resolve_link_requests).
        return (
            super()
            .get_queryset(request)
            .exclude(kind=OutboxEmail.Kind.LINK, application__isnull=True)
        )

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return permissions.may_resend_emails(request.user)

    @admin.action(permissions=["resend"], description=_("Send the selected failed e-mails again"))
    def resend(self, request: HttpRequest, queryset: QuerySet[OutboxEmail]) -> None:
        selected = queryset.count()  # before: the selection may be filtered on "failed"
        count = outbox_resend(queryset, actor=staff_member(request))
        skipped = selected - count
        self.message_user(
            request,
            ngettext(
                "%(count)d e-mail queued to be sent again.",
                "%(count)d e-mails queued to be sent again.",
                count,
            )
            % {"count": count},
            messages.SUCCESS if count else messages.WARNING,
        )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d selected e-mail was not failed and was left as it is.",
                    "%(count)d selected e-mails were not failed and were left as they are.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit log: read only for everyone, superusers included (ReadOnlyAdminMixin)."""

    list_display = ["at", "actor_label", "action", "application", "edition", "reason"]
    list_filter = [
        "action",
        ("actor", admin.RelatedOnlyFieldListFilter),
        "actor_label",
        "edition",
        ("at", admin.DateFieldListFilter),
    ]
    search_fields = ["application__number", "action", "reason"]
    list_select_related = ["application", "edition"]
    date_hierarchy = "at"
    actions = None


@admin.register(Attendance)
class AttendanceAdmin(admin.ModelAdmin):
    """Arrivals on the day; reception works from the check-in pages linked on this list."""

    list_display = ["application", "heads", "arrived_at", "checked_in_by"]
    list_filter = ["application__place__option__session"]
    list_select_related = ["application"]
    search_fields = ["application__number"]
    raw_id_fields = ["application"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return permissions.may_check_in(request.user) or super().has_view_permission(request, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)
