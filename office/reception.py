"""Reception on the seminar day: find a parent, mark them arrived, see live counts.

Pages for users with the `registration.check_in` permission (the "reception" group). The QR
ticket carries a signed token (registration.tokens.make_ticket); scanning it with the phone
camera (static/js/checkin.js, optional) or typing the number leads to the same search. The
write is services.attendance_record.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core import signing
from django.db.models import Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from registration import services
from registration.models import Application, Attendance, Session
from registration.normalize import to_katakana
from registration.tokens import read_ticket
from seminar_site.admin_site import staff_member

from . import permissions


def counts(session: Session) -> dict[str, int]:
    expected = Application.objects.holding_venue(session)
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
    found = Application.objects.holding_venue(session).select_related("attendance", "place__option")
    if not query:
        return found.none()
    if ":" in query:  # a scanned ticket: the signed token, never personal data
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
    permissions.require(permissions.may_check_in(request.user))
    session = get_object_or_404(Session.objects.select_related("edition"), pk=session_id)
    query = request.GET.get("q", "")[:200]
    return TemplateResponse(
        request,
        "admin/office/checkin.html",
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
    permissions.require(permissions.may_check_in(request.user))
    session = get_object_or_404(Session, pk=session_id)
    application = get_object_or_404(Application.objects.holding_venue(session), pk=application_id)
    form = ArrivalForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please enter the number of people (1 to 5)."))
    else:
        n = form.cleaned_data["heads"]
        try:
            services.attendance_record(
                application=application, heads=n, actor=staff_member(request)
            )
        except services.AlreadyArrived:
            messages.warning(
                request, _("%(number)s had already arrived.") % {"number": application.number}
            )
        else:
            messages.success(
                request,
                ngettext(
                    "%(number)s arrived: %(n)d person.", "%(number)s arrived: %(n)d people.", n
                )
                % {"number": application.number, "n": n},
            )
    return HttpResponseRedirect(reverse("office:checkin", args=[session.pk]))


def counts_view(request: HttpRequest, session_id: int) -> JsonResponse:
    permissions.require(permissions.may_check_in(request.user))
    return JsonResponse(counts(get_object_or_404(Session, pk=session_id)))


def reception_list_view(request: HttpRequest, session_id: int) -> HttpResponse:
    """The printable list: every party expected, by furigana, with a box to tick."""
    permissions.require(permissions.may_check_in(request.user))
    session = get_object_or_404(Session.objects.select_related("edition"), pk=session_id)
    rows = (
        Application.objects.holding_venue(session)
        .select_related("place", "attendance")
        .order_by("family_name_kana", "given_name_kana")
    )
    return TemplateResponse(
        request,
        "admin/office/reception_list.html",
        {
            **admin.site.each_context(request),
            "title": _("Reception list: %(session)s") % {"session": session.name},
            "session": session,
            "rows": rows,
            "counts": counts(session),
        },
    )
