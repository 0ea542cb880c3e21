"""Reception on the seminar day: find a parent, mark them arrived, see live counts.

Pages live in the admin (staff log in there), for users with the `registration.check_in`
permission (the "reception" group). The QR ticket carries a signed token; scanning it with the
phone camera (static/js/checkin.js, optional) or typing the number leads to the same search.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from . import audit
from .models import Application, Attendance, Session
from .normalize import to_katakana


def _require_reception(request: HttpRequest) -> None:
    if not request.user.has_perm("registration.check_in"):
        raise PermissionDenied


def holders(session: Session) -> QuerySet[Application]:
    """Active applications holding this session's venue option: the people expected."""
    return Application.objects.active().filter(
        place__option__session=session, place__option__kind="venue"
    )


def counts(session: Session) -> dict[str, int]:
    expected = holders(session)
    arrived = Attendance.objects.filter(application__in=expected)
    return {
        "expected_parties": expected.count(),
        "expected_people": sum(a.heads for a in expected.only("adults", "children")),
        "arrived_parties": arrived.count(),
        "arrived_people": arrived.aggregate(n=Sum("heads"))["n"] or 0,
    }


def find(session: Session, query: str) -> QuerySet[Application]:
    """By number, ticket token, name, furigana or phone (hyphens are fine)."""
    query = query.strip()
    found = holders(session).select_related("attendance", "place__option")
    if not query:
        return found.none()
    if ":" in query:  # a scanned ticket: the signed token, never personal data
        from .tickets import read_ticket

        try:
            return found.filter(number=read_ticket(query))
        except signing.BadSignature:
            return found.none()
    digits = "".join(ch for ch in query if ch.isdigit())
    condition = (
        Q(number=query.upper())
        | Q(family_name__contains=query)
        | Q(given_name__contains=query)
        | Q(family_name_kana__contains=to_katakana(query))
        | Q(given_name_kana__contains=to_katakana(query))
    )
    if len(digits) >= 4:
        condition |= Q(phone__contains=digits)
    return found.filter(condition).order_by("family_name_kana")[:20]


class ArrivalForm(forms.Form):
    heads = forms.IntegerField(min_value=1, max_value=5, label=gettext_lazy("People arrived"))


def checkin_view(request: HttpRequest, session_id: int) -> HttpResponse:
    _require_reception(request)
    session = get_object_or_404(Session.objects.select_related("edition"), pk=session_id)
    query = request.GET.get("q", "")[:200]
    return TemplateResponse(
        request,
        "admin/registration/checkin.html",
        {
            **admin.site.each_context(request),
            "title": _("Reception: %(session)s") % {"session": session.name},
            "session": session,
            "query": query,
            "results": find(session, query) if query else [],
            "counts": counts(session),
        },
    )


@require_POST
def arrive_view(request: HttpRequest, session_id: int, application_id: int) -> HttpResponse:
    _require_reception(request)
    session = get_object_or_404(Session, pk=session_id)
    application = get_object_or_404(holders(session), pk=application_id)
    form = ArrivalForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please enter the number of people (1 to 5)."))
    else:
        try:
            with transaction.atomic():
                Attendance.objects.create(
                    application=application,
                    heads=form.cleaned_data["heads"],
                    checked_in_by=request.user.get_username(),
                )
                audit.log_action(
                    "application.arrived",
                    actor_label=request.user.get_username(),
                    application=application,
                    data={"heads": form.cleaned_data["heads"]},
                )
        except IntegrityError:
            messages.warning(
                request, _("%(number)s had already arrived.") % {"number": application.number}
            )
        else:
            n = form.cleaned_data["heads"]
            messages.success(
                request,
                ngettext(
                    "%(number)s arrived: %(n)d person.", "%(number)s arrived: %(n)d people.", n
                )
                % {"number": application.number, "n": n},
            )
    return HttpResponseRedirect(reverse("admin:registration_checkin", args=[session.pk]))


def counts_view(request: HttpRequest, session_id: int) -> JsonResponse:
    _require_reception(request)
    return JsonResponse(counts(get_object_or_404(Session, pk=session_id)))


def reception_list_view(request: HttpRequest, session_id: int) -> HttpResponse:
    """The printable list: every party expected, by furigana, with a box to tick."""
    _require_reception(request)
    session = get_object_or_404(Session.objects.select_related("edition"), pk=session_id)
    rows = (
        holders(session)
        .select_related("place", "attendance")
        .order_by("family_name_kana", "given_name_kana")
    )
    return TemplateResponse(
        request,
        "admin/registration/reception_list.html",
        {
            **admin.site.each_context(request),
            "title": _("Reception list: %(session)s") % {"session": session.name},
            "session": session,
            "rows": rows,
            "counts": counts(session),
        },
    )


def sessions_for_reception() -> list[Any]:
    return list(Session.objects.select_related("edition").order_by("-date"))
