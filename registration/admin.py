from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypedDict

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import models
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from childcare.models import Child, ChildcareBand
from seminar_site.admin_site import ChoiceListFilter

from . import audit, exports, mail, municipalities, reception, review, services
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
            return queryset.filter(Exists(flags.filter(resolution="")))
        if self.value() == "any":
            return queryset.filter(Exists(flags))
        return queryset


HEALTH_NOTES_PERMISSION = "childcare.view_health_notes"


def may_see_health_notes(request: HttpRequest) -> bool:
    """Children's allergies and notes: childcare staff and administrators, not the office."""
    return request.user.has_perm(HEALTH_NOTES_PERMISSION)


class ChildInline(admin.TabularInline):
    model = Child
    extra = 0
    fields = ["position", "name", "name_kana", "date_of_birth", "notes"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[Any, ...]:
        fields = super().get_fields(request, obj)
        return tuple(f for f in fields if f != "notes" or may_see_health_notes(request))


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


class FieldChange(TypedDict):
    """``{"changed": {field: [old, new]}, "values_not_recorded": [field, ...]}``"""

    changed: dict[str, list[str]]
    values_not_recorded: list[str]


class ChildChange(FieldChange):
    child: int
    change: str  # added, changed, deleted


class StaffChangeData(TypedDict, total=False):
    """AuditEvent.data of ``application.staff_changed``."""

    changed: dict[str, list[str]]
    children: list[ChildChange]


# Health information never goes into the audit log, which the office reads: only the fact
# that it changed.
VALUES_NOT_RECORDED = {"notes"}


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, Iterable) and not isinstance(value, str):
        return ", ".join(sorted(as_text(v) for v in value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _child_change(change: str, position: int, fields: dict[str, tuple[Any, Any]]) -> ChildChange:
    return {
        "child": position,
        "change": change,
        "changed": {
            name: [as_text(old), as_text(new)]
            for name, (old, new) in fields.items()
            if name not in VALUES_NOT_RECORDED
        },
        "values_not_recorded": sorted(set(fields) & VALUES_NOT_RECORDED),
    }


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
        # Filled by ApplicationAdmin.save_model and save_formset, logged by save_related.
        self.audit_data: StaffChangeData = {}
        if "municipality" in self.fields:
            self.fields["municipality"] = forms.ChoiceField(
                label=self.fields["municipality"].label, choices=municipalities.choices()
            )


IDENTITY_FIELDS = {"family_name", "given_name", "family_name_kana", "given_name_kana", "phone"}


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
        """Note what changes, old → new, for the audit event that save_related writes."""
        if change:
            # The admin saves in a transaction: the lock makes "old" exactly what this save
            # replaces, even when the parent or another staff member saves at the same moment.
            before = Application.objects.select_for_update().get(pk=obj.pk)
            changed: dict[str, list[str]] = {}
            for name in form.changed_data:
                if name == "change_reason":
                    continue
                if Application._meta.get_field(name).many_to_many:
                    old: Any = getattr(before, name).all()
                    new: Any = form.cleaned_data[name]
                else:
                    old, new = getattr(before, name), getattr(obj, name)
                changed[name] = [as_text(old), as_text(new)]
            if changed:
                form.audit_data["changed"] = changed
                obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not Child:
            super().save_formset(request, form, formset, change)
            return
        initial = {f.instance.pk: dict(f.initial) for f in formset.initial_forms}
        super().save_formset(request, form, formset, change)
        children: list[ChildChange] = form.audit_data.setdefault("children", [])
        for child in formset.new_objects:
            fields = {
                f: (None, getattr(child, f))
                for f in formset.form.base_fields
                if getattr(child, f) not in (None, "")
            }
            children.append(_child_change("added", child.position, fields))
        for child, names in formset.changed_objects:
            before = initial.get(child.pk, {})
            fields = {n: (before.get(n), getattr(child, n)) for n in names}
            children.append(_child_change("changed", child.position, fields))
        for child in formset.deleted_objects:
            children.append(_child_change("deleted", child.position, {}))
        if not children:
            del form.audit_data["children"]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Write one audit event for the whole edit: fields, children, who and why."""
        super().save_related(request, form, formsets, change)
        data: StaffChangeData = form.audit_data
        if not (change and data):
            return
        application = form.instance
        audit.log_action(
            "application.staff_changed",
            actor=request.user if isinstance(request.user, User) else None,
            actor_label=request.user.get_username(),
            application=application,
            data=dict(data),
            reason=form.cleaned_data["change_reason"],
        )
        identity_changed = IDENTITY_FIELDS & set(data.get("changed", {})) or data.get("children")
        if identity_changed and application.status == Application.Status.ACTIVE:
            services.flag_duplicates(application)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Application]:
        return (
            super()
            .get_queryset(request)
            # A correlated subquery, not a JOIN + GROUP BY: PostgreSQL then counts flags for
            # the 50 rows of the page only, not for all 100,000 applications.
            .annotate(
                open_flag_count=Coalesce(
                    Subquery(
                        DuplicateFlag.objects.filter(application=OuterRef("pk"), resolution="")
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

    change_form_template = "admin/registration/application/change_form.html"

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:pk>/status/",
                self.admin_site.admin_view(self.status_view),
                name="registration_application_status",
            ),
            *exports.export_urls(self.admin_site),
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


def _children_text(application: Application) -> str:
    # Names and birth dates only: the children's health notes are not for this page.
    return "; ".join(
        f"{c.name} ({c.name_kana}) {c.date_of_birth.isoformat()}"
        for c in application.childcare_children.all()
    )


def comparison_rows(pair: review.DuplicatePair) -> list[tuple[str, str, str, bool]]:
    """(label, first, second, same) for the two applications side by side."""
    rows: list[tuple[Any, Callable[[Application], str]]] = [
        (_("name"), lambda a: a.full_name),
        (_("furigana"), lambda a: a.full_name_kana),
        (_("email"), lambda a: a.email),
        (_("phone"), lambda a: a.phone),
        (_("municipality"), lambda a: a.municipality_label),
        (_("children in childcare"), _children_text),
        (_("children's grades"), lambda a: ", ".join(a.grade_labels)),
        (_("choices"), lambda a: ", ".join(o.code for o in a.choices)),
        (_("people"), lambda a: f"{a.adults} + {a.children}"),
        (_("submitted"), lambda a: f"{timezone.localtime(a.created_at):%Y-%m-%d %H:%M}"),
        (_("language"), lambda a: a.get_language_display()),
    ]
    out = []
    for label, value in rows:
        first, second = value(pair.first), value(pair.second)
        out.append((str(label), first, second, bool(first) and first == second))
    return out


class ReviewForm(forms.Form):
    """One decision on a pair of likely duplicates; a reason is required to remove one."""

    reason = forms.CharField(
        label=_("Reason (kept in the history)"),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=1000,
        required=False,
    )

    def __init__(self, *args: Any, pair: review.DuplicatePair, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pair = pair
        self.fields["action"] = forms.ChoiceField(
            choices=[("keep", _("Keep both: not duplicates")), *self.removals()]
        )

    def removals(self) -> list[tuple[str, str]]:
        return [
            (f"{status}:{application.pk}", f"{application.number}: {status.label}")
            for application in self.pair.applications
            for status in (Application.Status.DUPLICATE, Application.Status.INVALID)
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action", "keep") != "keep" and not data.get("reason", "").strip():
            self.add_error("reason", _("Give the reason for marking an application."))
        return data


@admin.register(DuplicateFlag)
class DuplicateFlagAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every flag, for the record; decisions are taken in the review queue."""

    list_display = ["application", "other", "reason", "resolution", "resolved_by", "created_at"]
    list_filter = ["reason", "resolution", "application__edition"]
    list_select_related = ["application", "other", "resolved_by"]
    search_fields = ["application__number", "other__number"]
    change_list_template = "admin/registration/duplicates/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("review/", view(self.review_view), name="registration_duplicate_review"),
            path(
                "review/<int:application_id>/<int:other_id>/",
                view(require_POST(self.decide_view)),
                name="registration_duplicate_decide",
            ),
            *super().get_urls(),
        ]

    @staticmethod
    def may_review(request: HttpRequest) -> bool:
        # The queue shows both applications' contact data.
        return request.user.has_perms(
            ["registration.view_duplicateflag", "registration.view_application"]
        )

    @staticmethod
    def may_decide(request: HttpRequest, action: str) -> bool:
        needed = ["registration.change_duplicateflag", "registration.view_application"]
        if action != "keep":
            needed.append("registration.change_application")
        return request.user.has_perms(needed)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        extra = {"open_pairs": review.open_pair_count(), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def review_view(self, request: HttpRequest) -> HttpResponse:
        """The open pairs side by side, each with its decisions."""
        if not self.may_review(request):
            raise PermissionDenied
        edition = None
        if request.GET.get("edition"):
            edition = get_object_or_404(Edition, code=request.GET["edition"])
        page = Paginator(review.open_pairs(edition), 20).get_page(request.GET.get("page"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Likely duplicates to review"),
            "opts": self.model._meta,
            "page": page,
            "pairs": [
                (
                    pair,
                    comparison_rows(pair),
                    ReviewForm(pair=pair, auto_id=f"pair-{pair.first.pk}-{pair.second.pk}-%s"),
                )
                for pair in page
            ],
            "editions": Edition.objects.all(),
            "edition": edition,
            "may_decide": self.may_decide(request, "keep"),
            "may_remove": self.may_decide(request, "remove"),
        }
        return TemplateResponse(request, "admin/registration/duplicates/review.html", context)

    def decide_view(self, request: HttpRequest, application_id: int, other_id: int) -> HttpResponse:
        """Keep both, or mark one of the pair duplicate or invalid (with a reason)."""
        if not self.may_decide(request, request.POST.get("action", "")):
            raise PermissionDenied
        queue_url = reverse("admin:registration_duplicate_review")
        if request.POST.get("edition"):
            queue_url += "?" + urlencode({"edition": request.POST["edition"]})
        queue = HttpResponseRedirect(queue_url)
        a = get_object_or_404(Application, pk=application_id)
        b = get_object_or_404(Application, pk=other_id)
        first, second = sorted((a, b), key=lambda x: (x.created_at, x.pk))
        form = ReviewForm(request.POST, pair=review.DuplicatePair(first=first, second=second))
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, f"{a.number} / {b.number}: {error}")
            return queue
        user = request.user if isinstance(request.user, User) else None
        action, reason = form.cleaned_data["action"], form.cleaned_data["reason"].strip()
        try:
            if action == "keep":
                review.duplicate_keep_both(application=a, other=b, actor=user, reason=reason)
                messages.success(
                    request,
                    _("%(a)s and %(b)s: kept both.") % {"a": a.number, "b": b.number},
                )
            else:
                status, pk = action.split(":")
                remove, keep = (a, b) if int(pk) == a.pk else (b, a)
                review.duplicate_remove_one(
                    remove=remove, keep=keep, status=status, actor=user, reason=reason
                )
                messages.success(
                    request,
                    _("%(number)s: %(status)s. %(kept)s stays active.")
                    % {
                        "number": remove.number,
                        "status": Application.Status(status).label,
                        "kept": keep.number,
                    },
                )
        except review.AlreadyReviewed:
            messages.warning(
                request, _("This pair was already reviewed, or one of them is no longer active.")
            )
        return queue


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
        # deletes it then, and staff never see it (mail._resolve_link_requests).
        return (
            super()
            .get_queryset(request)
            .exclude(kind=OutboxEmail.Kind.LINK, application__isnull=True)
        )

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("registration.resend_outboxemail")

    @admin.action(permissions=["resend"], description=_("Send the selected failed e-mails again"))
    def resend(self, request: HttpRequest, queryset: QuerySet[OutboxEmail]) -> None:
        selected = queryset.count()  # before: the selection may be filtered on "failed"
        count = mail.outbox_resend(queryset)
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
