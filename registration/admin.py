from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from childcare.models import Child, ChildcareBand

from . import municipalities, reception, services
from .models import (
    GRADE_CHOICES,
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


class ReadOnlyAdminMixin:
    """For records nobody edits by hand: the audit log, the outbox."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
            reverse("admin:lottery_console", args=[obj.code]),
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


class SessionFilter(admin.SimpleListFilter):
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


class OptionFilter(admin.SimpleListFilter):
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


class ChildcareFilter(admin.SimpleListFilter):
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


class MunicipalityFilter(admin.SimpleListFilter):
    title = _("municipality")
    parameter_name = "municipality"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return municipalities.choices()

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(municipality=self.value()) if self.value() else queryset


class GradeFilter(admin.SimpleListFilter):
    title = _("grade")
    parameter_name = "grade"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return GRADE_CHOICES

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(grades__contains=self.value()) if self.value() else queryset


class DuplicateFilter(admin.SimpleListFilter):
    title = _("duplicate flag")
    parameter_name = "flagged"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("open", _("Flagged, not yet reviewed")), ("any", _("Flagged at any time"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        flags = DuplicateFlag.objects.filter(application=OuterRef("pk"))
        if self.value() == "open":
            return queryset.filter(Exists(flags.filter(resolution="")))
        if self.value() == "any":
            return queryset.filter(Exists(flags))
        return queryset


class ChildInline(admin.TabularInline):
    model = Child
    extra = 0


class DuplicateFlagInline(admin.TabularInline):
    model = DuplicateFlag
    fk_name = "application"
    extra = 0
    fields = ["other", "reason", "resolution", "created_at"]
    readonly_fields = ["other", "reason", "created_at"]
    can_delete = False


class AuditEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = AuditEvent
    extra = 0
    fields = ["at", "actor_label", "action", "reason", "data"]
    readonly_fields = ["at", "actor_label", "action", "reason", "data"]
    ordering = ["at", "id"]


class StatusForm(forms.Form):
    action = forms.ChoiceField(
        label=_("What to do"),
        choices=[
            ("withdrawn", _("Withdraw on the parent's request (phone)")),
            ("duplicate", _("Mark as a duplicate")),
            ("invalid", _("Mark as invalid")),
        ],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label=_("Reason (kept in the history)"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=1000,
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
    readonly_fields = [
        "number",
        "edition",
        "email",
        "created_at",
        "updated_at",
        "withdrawn_at",
        "privacy_consent_at",
        "health_consent_at",
        "language",
    ]
    filter_horizontal = ["booths_of_interest"]
    inlines = [ChildInline, DuplicateFlagInline, AuditEventInline]
    list_per_page = 50
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Application]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                open_flag_count=Count("duplicate_flags", filter=Q(duplicate_flags__resolution=""))
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
        return super().get_search_results(request, queryset, to_katakana(term) or term)

    change_form_template = "admin/registration/application/change_form.html"

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:pk>/status/",
                self.admin_site.admin_view(self.status_view),
                name="registration_application_status",
            ),
            *super().get_urls(),
        ]

    def status_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Withdraw on a parent's phone request, or mark duplicate/invalid: always with a reason."""
        application = get_object_or_404(Application, pk=pk)
        if not self.has_change_permission(request, application):
            raise PermissionDenied
        form = StatusForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            action, reason = form.cleaned_data["action"], form.cleaned_data["reason"]
            user = request.user if isinstance(request.user, User) else None
            try:
                if action == "withdrawn":
                    done = services.application_withdraw(
                        application=application, actor=user, reason=reason
                    )
                else:
                    done = services.application_remove(
                        application=application, status=action, actor=user, reason=reason
                    )
            except services.NotChangeable:
                messages.error(request, _("The session has started: it can no longer change."))
            else:
                if done:
                    messages.success(request, _("Saved, with the reason, in the history."))
                else:
                    messages.warning(request, _("The application was not active: nothing changed."))
            return HttpResponseRedirect(
                reverse("admin:registration_application_change", args=[application.pk])
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Withdraw or mark %(number)s") % {"number": application.number},
            "application": application,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/registration/application/status.html", context)

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
class DuplicateFlagAdmin(admin.ModelAdmin):
    list_display = ["application", "other", "reason", "resolution", "created_at"]
    list_filter = ["reason", "resolution"]
    list_select_related = ["application", "other"]
    raw_id_fields = ["application", "other"]


@admin.register(OutboxEmail)
class OutboxEmailAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "kind", "to", "subject", "status", "attempts", "sent_at"]
    list_filter = ["status", "kind", "language"]
    search_fields = ["to", "application__number"]
    list_select_related = ["application"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "actor_label", "action", "application", "edition", "reason"]
    list_filter = ["action", "actor_label", "edition"]
    search_fields = ["application__number", "action", "reason"]
    list_select_related = ["application", "edition"]
    date_hierarchy = "at"


@admin.register(Attendance)
class AttendanceAdmin(admin.ModelAdmin):
    """Arrivals on the day; reception works from the check-in pages linked on this list."""

    list_display = ["application", "heads", "arrived_at", "checked_in_by"]
    list_filter = ["application__place__option__session"]
    list_select_related = ["application"]
    search_fields = ["application__number"]
    raw_id_fields = ["application"]
    change_list_template = "admin/registration/attendance/change_list.html"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("registration.check_in") or super().has_view_permission(
            request, obj
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        extra = {"reception_sessions": reception.sessions_for_reception(), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path(
                "checkin/<int:session_id>/",
                view(reception.checkin_view),
                name="registration_checkin",
            ),
            path(
                "checkin/<int:session_id>/arrive/<int:application_id>/",
                view(reception.arrive_view),
                name="registration_arrive",
            ),
            path(
                "checkin/<int:session_id>/counts.json",
                view(reception.counts_view),
                name="registration_checkin_counts",
            ),
            path(
                "checkin/<int:session_id>/list/",
                view(reception.reception_list_view),
                name="registration_reception_list",
            ),
            *super().get_urls(),
        ]
