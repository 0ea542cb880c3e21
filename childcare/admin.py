"""Childcare in the admin. Childcare staff (group "childcare") read the roster of the sessions
they are assigned to, with the children's health notes and nothing of the parents but the
application number; the office sees every child but never the health notes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import ForeignKey, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from seminar_site.admin_site import ChoiceListFilter, ReadOnlyAdminMixin

from .models import (
    Child,
    ChildcareAssignment,
    ChildcareBand,
    may_see_health_notes,
    sees_every_session,
    sessions_visible_to,
)


@admin.register(ChildcareBand)
class ChildcareBandAdmin(admin.ModelAdmin):
    list_display = ["__str__", "label_ja", "min_age_months", "max_age_months", "slots"]
    list_filter = ["session__edition"]
    list_select_related = ["session__edition"]


class RosterSessionFilter(ChoiceListFilter):
    title = _("session")
    parameter_name = "session"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        return [
            (s.pk, f"{s} {s.name} ({s.date:%Y-%m-%d})") for s in sessions_visible_to(request.user)
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        session_id = str(self.value() or "")  # an int while "Show counts" counts each
        if not session_id.isdigit():
            return queryset
        return queryset.filter(
            pk__in=Child.objects.at_sessions(
                sessions_visible_to(request.user).filter(pk=session_id)
            )
        )


@admin.register(Child)
class ChildAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The childcare roster. Read only: children change with their application, on its page,
    where the change is logged with a reason."""

    list_display = [
        "application_number",
        "position",
        "name",
        "name_kana",
        "date_of_birth",
        "roster_status",
        "notes",
    ]
    list_filter = [RosterSessionFilter]
    list_select_related = ["application__place__option__session"]
    search_fields = ["application__number", "name", "name_kana"]
    fields = readonly_fields = (
        "application_number",
        "position",
        "name",
        "name_kana",
        "date_of_birth",
        "roster_status",
        "notes",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Child]:
        children = super().get_queryset(request)
        if sees_every_session(request.user):
            return children
        return children.filter(pk__in=Child.objects.at_sessions(sessions_visible_to(request.user)))

    def get_list_display(self, request: HttpRequest) -> tuple[Any, ...]:
        return self._without_notes(request, super().get_list_display(request))

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[Any, ...]:
        return self._without_notes(request, super().get_fields(request, obj))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self._without_notes(request, super().get_readonly_fields(request, obj))

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # ?notes__contains=… would tell the office what it may not read.
        if lookup.split("__")[0] == "notes" and not (
            request and may_see_health_notes(request.user)
        ):
            return False
        return super().lookup_allowed(lookup, value, request)

    @staticmethod
    def _without_notes(request: HttpRequest, fields: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(f for f in fields if f != "notes" or may_see_health_notes(request.user))

    @admin.display(description=_("application number"), ordering="application__number")
    def application_number(self, obj: Child) -> str:
        # The number only: childcare staff do not see the parents' contact data.
        return obj.application.number

    @admin.display(description=_("place"))
    def roster_status(self, obj: Child) -> str:
        try:
            place = obj.application.place
        except ObjectDoesNotExist:
            return str(_("No place yet (before the draw or on a waiting list)"))
        return f"{place.option.code}: {place.get_childcare_display()}"


@admin.register(ChildcareAssignment)
class ChildcareAssignmentAdmin(admin.ModelAdmin):
    """Which childcare staff member works at which session (and so sees its roster)."""

    list_display = ["user", "session"]
    list_filter = ["session__edition", "session"]
    list_select_related = ["user", "session__edition"]
    search_fields = ["user__username", "user__last_name", "user__first_name"]

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        if db_field.name == "user":
            kwargs["queryset"] = get_user_model().objects.filter(is_staff=True, is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
